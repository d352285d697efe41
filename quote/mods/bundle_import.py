# SPDX-License-Identifier: Apache-2.0
"""Import a registered mod's bundle under a private package, absolute imports included.

A bundle's files live in a directory and are imported as ``<package>.<module>``
(``package`` is private to one version of one mod). Relative imports work as they
would anywhere; **absolute** imports of the bundle's own top-level names
(``from examples.tau2.prompts import entry`` in a bundle holding ``examples/...``, as the
original engine's folder uploads and :func:`quote.sdk.serialize.serialize_mod` payloads
use) are rewritten to the private package, so two mods may both ship a ``helpers`` module
without seeing each other's.
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

from quote.sdk.serialize import ImportRewriter

__all__ = ["bundle_tops", "register_bundle"]

_NEVER_REWRITTEN = frozenset({"quote", "max", "__pycache__"})


def bundle_tops(files_dir: Path) -> frozenset[str]:
    """The bundle's top-level module and package names (what absolute imports may name)."""
    if not files_dir.is_dir():
        return frozenset()
    names = {p.stem for p in files_dir.glob("*.py")}
    names |= {p.name for p in files_dir.iterdir() if p.is_dir() and p.name.isidentifier()}
    return frozenset(names - _NEVER_REWRITTEN)


class _Loader(importlib.abc.Loader):
    """Executes one bundle file with its absolute bundle imports rewritten."""

    def __init__(self, path: Path | None, prefix: str, tops: frozenset[str]) -> None:
        self.path = path
        self.prefix = prefix
        self.tops = tops

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        if self.path is None:  # a folder without __init__.py: an empty package
            return
        source = self.path.read_text(encoding="utf-8")
        tree = ImportRewriter(self.prefix, set(self.tops)).visit(ast.parse(source, str(self.path)))
        code = compile(ast.fix_missing_locations(tree), str(self.path), "exec")
        exec(code, module.__dict__)  # noqa: S102 - a registered mod (see SECURITY.md)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``<package>.<module>`` of every registered bundle package."""

    def __init__(self) -> None:
        self.bundles: dict[str, tuple[Path, frozenset[str]]] = {}

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        for prefix, (root, tops) in self.bundles.items():
            if fullname.startswith(prefix + "."):
                return _spec(fullname, prefix, root, tops, fullname[len(prefix) + 1 :])
        return None


def _spec(
    fullname: str, prefix: str, root: Path, tops: frozenset[str], rest: str
) -> importlib.machinery.ModuleSpec | None:
    base = root.joinpath(*rest.split("."))
    if (base / "__init__.py").is_file():
        return importlib.util.spec_from_file_location(
            fullname,
            base / "__init__.py",
            loader=_Loader(base / "__init__.py", prefix, tops),
            submodule_search_locations=[str(base)],
        )
    if base.with_suffix(".py").is_file():
        return importlib.util.spec_from_file_location(
            fullname, base.with_suffix(".py"), loader=_Loader(base.with_suffix(".py"), prefix, tops)
        )
    if base.is_dir():
        spec = importlib.machinery.ModuleSpec(
            fullname, _Loader(None, prefix, tops), is_package=True
        )
        spec.submodule_search_locations = [str(base)]
        return spec
    return None


_FINDER = _Finder()


def register_bundle(package: str, files_dir: Path) -> None:
    """Make ``package.<module>`` import from ``files_dir`` (idempotent)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    _FINDER.bundles[package] = (files_dir, bundle_tops(files_dir))


def forget_bundle(package: str) -> None:
    """Stop finding ``package``'s modules (after a failed load)."""
    _FINDER.bundles.pop(package, None)
