# SPDX-License-Identifier: Apache-2.0
"""Package a mod and the local modules it imports as one payload; load it elsewhere.

:func:`serialize_mod` finds the module that defines the mod, then (statically,
by parsing imports) every module it imports that lives in the same source tree
(relative imports included, parent packages too), and stores their sources in
one JSON payload. :func:`load_mod` recreates those modules under a private
package prefix in a fresh interpreter (absolute imports of bundled modules are
rewritten to the prefix) and returns the :class:`ModDefinition`.

Loading executes the payload's code: only load payloads you trust.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import logging
import pathlib
import sys
import types
from dataclasses import dataclass
from typing import Any

from quote.sdk.errors import QuoteSDKError
from quote.sdk.mod import ModDefinition, as_definition

__all__ = [
    "PAYLOAD_FORMAT",
    "ImportRewriter",
    "SerializationError",
    "load_mod",
    "serialize_mod",
]

logger = logging.getLogger(__name__)

PAYLOAD_FORMAT = "quote-mod/1"
_NEVER_BUNDLED = {"quote", "max"}


_SERVER_PACKAGES = ("quote", "quote_mod_sdk")
"""Packages every Quote server has installed: never bundled into a payload."""


class SerializationError(QuoteSDKError, ValueError):
    """A mod cannot be serialised, or a payload cannot be loaded."""


@dataclass
class _Source:
    name: str
    path: pathlib.Path
    is_package: bool


def _find(root: pathlib.Path, name: str) -> _Source | None:
    parts = name.split(".")
    if parts[0] in _NEVER_BUNDLED:
        return None
    base = root.joinpath(*parts)
    if (base / "__init__.py").is_file():
        return _Source(name, base / "__init__.py", True)
    if base.with_suffix(".py").is_file():
        return _Source(name, base.with_suffix(".py"), False)
    return None


def _imports(src: _Source, tree: ast.AST) -> list[str]:
    """Absolute names of every module ``src`` may import (candidates, not checked)."""
    package = src.name if src.is_package else src.name.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".") if package else []
                if node.level - 1 > len(base_parts):
                    raise SerializationError(f"{src.name}: relative import beyond the top package")
                base = ".".join(base_parts[: len(base_parts) - (node.level - 1)])
                mod = ".".join(p for p in (base, node.module or "") if p)
            else:
                mod = node.module or ""
            if mod:
                names.append(mod)
            names.extend(f"{mod}.{a.name}" if mod else a.name for a in node.names)
    out: list[str] = []
    for name in names:  # parent packages are imported too
        parts = name.split(".")
        out.extend(".".join(parts[: i + 1]) for i in range(len(parts)))
    return out


def serialize_mod(obj: Any, *, name: str | None = None) -> bytes:
    """Serialise a mod (``@mod`` definition, ``Mod`` subclass or handler) defined in a module.

    Returns UTF-8 JSON bytes: ``{"format", "name", "entry", "attr", "modules": {name:
    {"source", "package"}}, "sha256"}``.
    """
    definition = as_definition(obj, name)
    module_name = getattr(obj, "__module__", None)
    module = sys.modules.get(module_name or "")
    path = getattr(module, "__file__", None)
    if module is None or not path:
        raise SerializationError(f"{obj!r} is not defined in a module file")
    attrs = [k for k, v in vars(module).items() if v is obj]
    if not attrs:
        raise SerializationError(f"{obj!r} is not a global of {module_name}")
    entry = module_name if module_name != "__main__" else pathlib.Path(path).stem
    assert entry is not None
    file = pathlib.Path(path).resolve()
    root = file.parent
    for _ in range(entry.count(".") + (1 if file.name == "__init__.py" else 0)):
        root = root.parent
    if entry.split(".")[0] in _SERVER_PACKAGES and entry.count(".") >= 2:
        # a mod shipped inside Quote (quote.examples...): bundle its own package only; its
        # imports of Quote itself resolve to the server's installed copy
        entry = ".".join(entry.split(".")[-1 if file.name == "__init__.py" else -2 :])
        root = file.parent.parent
    first = _find(root, entry) or _Source(entry, file, file.name == "__init__.py")
    modules: dict[str, dict[str, Any]] = {}
    todo = [first]
    parents = entry.split(".")
    todo.extend(s for i in range(1, len(parents)) if (s := _find(root, ".".join(parents[:i]))))
    while todo:
        src = todo.pop()
        if src.name in modules:
            continue
        text = src.path.read_text(encoding="utf-8")
        modules[src.name] = {"source": text, "package": src.is_package}
        for dep in _imports(src, ast.parse(text, str(src.path))):
            found = _find(root, dep)
            if found is not None and found.name not in modules:
                todo.append(found)
    body = {
        "format": PAYLOAD_FORMAT,
        "name": definition.name,
        "entry": entry,
        "attr": attrs[0],
        "modules": dict(sorted(modules.items())),
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()
    logger.info("serialised mod %r with %d module(s)", definition.name, len(modules))
    return json.dumps({**body, "sha256": digest}, sort_keys=True).encode("utf-8")


class ImportRewriter(ast.NodeTransformer):
    """Prefix absolute imports of bundled top-level names (``tops``) with ``prefix``.

    Used for payloads here and for registered bundles (:mod:`quote.mods.bundle_import`).
    """

    def __init__(self, prefix: str, tops: set[str]) -> None:
        self.prefix = prefix
        self.tops = tops

    def _ours(self, name: str) -> bool:
        return name.split(".")[0] in self.tops

    def visit_Import(self, node: ast.Import) -> Any:
        out: list[ast.stmt] = []
        for alias in node.names:
            if not self._ours(alias.name):
                out.append(ast.Import(names=[alias]))
                continue
            full = f"{self.prefix}.{alias.name}"
            if alias.asname:
                out.append(ast.Import(names=[ast.alias(full, alias.asname)]))
            else:  # `import a.b` binds `a`
                top = alias.name.split(".")[0]
                out.append(ast.Import(names=[ast.alias(full)]))
                out.append(
                    ast.parse(f"{top} = __import__('sys').modules['{self.prefix}.{top}']").body[0]
                )
        return [ast.copy_location(n, node) for n in out]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> Any:
        if node.level == 0 and node.module and self._ours(node.module):
            node.module = f"{self.prefix}.{node.module}"
        return node


def load_mod(payload: bytes | str) -> ModDefinition:
    """Load a payload from :func:`serialize_mod` and return its :class:`ModDefinition`."""
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise SerializationError(f"not a mod payload: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != PAYLOAD_FORMAT:
        raise SerializationError(f"not a {PAYLOAD_FORMAT} payload")
    digest = data.pop("sha256", None)
    if hashlib.sha256(json.dumps(data, sort_keys=True).encode("utf-8")).hexdigest() != digest:
        raise SerializationError("payload checksum mismatch")
    modules: dict[str, dict[str, Any]] = data["modules"]
    prefix = f"_quote_mod_{digest[:16]}"
    if prefix not in sys.modules:
        root = types.ModuleType(prefix)
        root.__path__ = []
        sys.modules[prefix] = root
        tops = {n.split(".")[0] for n in modules}
        for name in sorted(modules, key=lambda n: n.count(".")):
            _create(prefix, name, modules[name], tops)
        for name in sorted(modules, key=lambda n: n.count(".")):
            if modules[name]["package"] or name == data["entry"]:
                importlib.import_module(f"{prefix}.{name}")
    entry = sys.modules[f"{prefix}.{data['entry']}"]
    return as_definition(getattr(entry, data["attr"]), data["name"])


class _Loader(importlib.abc.Loader):
    def __init__(self, code: types.CodeType) -> None:
        self.code = code

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        exec(self.code, module.__dict__)  # noqa: S102 - loading a trusted mod payload


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.specs: dict[str, importlib.machinery.ModuleSpec] = {}

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        return self.specs.get(fullname)


_FINDER = _Finder()


def _create(prefix: str, name: str, entry: dict[str, Any], tops: set[str]) -> None:
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    full = f"{prefix}.{name}"
    tree = ImportRewriter(prefix, tops).visit(ast.parse(entry["source"], f"<{full}>"))
    code = compile(ast.fix_missing_locations(tree), f"<quote-mod {name}>", "exec")
    spec = importlib.util.spec_from_loader(full, _Loader(code), is_package=entry["package"])
    assert spec is not None
    if entry["package"]:
        spec.submodule_search_locations = []
    _FINDER.specs[full] = spec
