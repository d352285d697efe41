# SPDX-License-Identifier: Apache-2.0
"""The on-disk mod registry shared by the API process (writes) and the model worker (loads).

Layout under the mods directory (``--mods-dir``, env ``QUOTE_MODS_DIR``)::

    <name>/meta.json      {"name", "entrypoint", "description", "version", "created"}
    <name>/files/...      the mod's source files
    _users/<key id>/...   the same layout, per API key (:meth:`ModRegistry.namespace`)
    .keys.json            API keys, hashed (:mod:`quote.server.keys`)

Writes are atomic: a new version is built in ``.tmp-*`` and renamed into place; a
replaced version is moved to ``.trash-*`` first and deleted after. :func:`recover`
(run at start-up) removes leftovers and restores a version whose replacement was
interrupted, so a crash never leaves a half-registered mod.

Loading executes the mod's code in the calling process: registering a mod is
running code on the server (see SECURITY.md). Whatever a mod's import raises
(``SystemExit`` and ``KeyboardInterrupt`` included) becomes a :class:`RegistryError`;
``os._exit`` and signals cannot be caught, which is why registration first imports a
new mod in a check process (:mod:`quote.mods.check`).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import re
import shutil
import sys
import time
import types
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quote.mods.bundle_import import forget_bundle, register_bundle
from quote.mods.session import describe_exception
from quote.sdk.mod import ModDefinition, as_definition

__all__ = [
    "ModRegistry",
    "ModSpec",
    "RegistryError",
    "default_mods_dir",
    "load_preloaded",
    "validate_name",
    "validate_path",
]

logger = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
PATH_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}\.py$")
ENTRY_RE = re.compile(r"^(?:([A-Za-z_][A-Za-z0-9_.]*):)?([A-Za-z_][A-Za-z0-9_]*)$")
SINGLE_FILE = "main.py"
USERS_DIR = "_users"
"""Folder of the per-key namespaces under the mods directory (not a valid mod name)."""
_PKG = "quote_user_mods"


class RegistryError(ValueError):
    """A registration request is invalid (bad name, path, entrypoint or code)."""


def default_mods_dir() -> Path:
    """``$QUOTE_MODS_DIR`` or ``.quote/mods`` (relative to the working directory)."""
    return Path(os.environ.get("QUOTE_MODS_DIR", ".quote/mods"))


def validate_name(name: str) -> str:
    """Mod names: lowercase letters, digits, ``-`` and ``_``; 1-64 chars; no path tricks."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise RegistryError(
            f"invalid mod name {name!r}: use 1-64 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return name


def validate_path(path: str) -> str:
    """Bundle paths: relative ``.py`` paths that cannot escape the bundle."""
    parts = path.split("/")
    if not PATH_RE.match(path) or any(p in ("", ".", "..") for p in parts):
        raise RegistryError(f"invalid source path {path!r}: use relative paths like 'pkg/mod.py'")
    return path


@dataclass(frozen=True)
class ModSpec:
    """A registered mod as stored (metadata only)."""

    name: str
    entrypoint: str
    description: str
    version: str
    created: float
    files: tuple[str, ...] = ()
    preloaded: bool = False

    def public(self) -> dict[str, Any]:
        """JSON form for the HTTP API."""
        return {
            "name": self.name,
            "entrypoint": self.entrypoint,
            "description": self.description,
            "version": self.version,
            "created": int(self.created),
            "files": list(self.files),
            "preloaded": self.preloaded,
        }


def normalise_source(
    source: str | Mapping[str, str], entrypoint: str
) -> tuple[dict[str, str], str]:
    """``(files, module:attr)`` from a single source or a ``{path: code}`` bundle."""
    m = ENTRY_RE.match(entrypoint or "")
    if not m:
        raise RegistryError(f"invalid entrypoint {entrypoint!r}: use 'ATTR' or 'module.path:ATTR'")
    module, attr = m.group(1), m.group(2)
    if isinstance(source, str):
        files = {SINGLE_FILE: source}
        module = module or "main"
    elif isinstance(source, Mapping) and source:
        files = {validate_path(str(k)): str(v) for k, v in source.items()}
        if module is None:
            if len(files) != 1:
                raise RegistryError("a bundle of several files needs an entrypoint 'module:ATTR'")
            module = next(iter(files))[:-3].replace("/", ".")
    else:
        raise RegistryError("source must be a string or a non-empty {path: code} object")
    candidates = {module.replace(".", "/") + ".py", module.replace(".", "/") + "/__init__.py"}
    if not candidates & set(files):
        raise RegistryError(f"entrypoint module {module!r} is not in the source files")
    return files, f"{module}:{attr}"


def load_from_dir(files_dir: Path, entrypoint: str, tag: str, name: str) -> ModDefinition:
    """Import ``entrypoint`` from a bundle directory under a private package; return the mod."""
    module, attr = entrypoint.split(":", 1)
    if _PKG not in sys.modules:
        root = types.ModuleType(_PKG)
        root.__path__ = []
        sys.modules[_PKG] = root
    pkg_name = f"{_PKG}.m_{tag}"
    if pkg_name not in sys.modules:
        pkg = types.ModuleType(pkg_name)
        pkg.__path__ = [str(files_dir)]
        sys.modules[pkg_name] = pkg
    register_bundle(pkg_name, files_dir)  # absolute imports of the bundle's own modules
    full = f"{pkg_name}.{module}"
    try:
        mod = importlib.import_module(full)
    except BaseException as exc:  # noqa: BLE001 - user code: SystemExit & co. must not end the process
        _forget(pkg_name)
        raise RegistryError(f"mod '{name}' failed to import: {describe_exception(exc)}") from exc
    try:
        obj = getattr(mod, attr, None)
        if obj is None:
            raise RegistryError(f"mod '{name}': module {module!r} has no attribute {attr!r}")
        return as_definition(obj, name=name)
    except RegistryError:
        _forget(pkg_name)
        raise
    except TypeError as exc:
        _forget(pkg_name)
        raise RegistryError(f"mod '{name}': {exc}") from exc
    except BaseException as exc:  # noqa: BLE001 - a module __getattr__ or a decorator is user code
        _forget(pkg_name)
        raise RegistryError(f"mod '{name}': {describe_exception(exc)}") from exc


def _forget(pkg_name: str) -> None:
    """Drop a bundle's modules from ``sys.modules`` after a failed load."""
    for key in [k for k in sys.modules if k == pkg_name or k.startswith(pkg_name + ".")]:
        del sys.modules[key]
    forget_bundle(pkg_name)


def load_preloaded(specs: str | None = None) -> dict[str, ModDefinition]:
    """Mods named by ``--mod MODULE:ATTR`` (env ``QUOTE_PRELOAD_MODS``, comma-separated)."""
    raw = specs if specs is not None else os.environ.get("QUOTE_PRELOAD_MODS", "")
    out: dict[str, ModDefinition] = {}
    for item in filter(None, (s.strip() for s in raw.split(","))):
        module, _, attr = item.partition(":")
        if not attr:
            raise RegistryError(f"--mod {item!r}: use MODULE:ATTR")
        try:
            definition = as_definition(getattr(importlib.import_module(module), attr))
        except BaseException as exc:  # noqa: BLE001 - SystemExit at import must not end the server silently
            raise RegistryError(
                f"--mod {item!r} failed to load: {describe_exception(exc)}"
            ) from exc
        definition.preload_source = (module, attr)  # type: ignore[attr-defined]
        out[validate_name(definition.name.lower().replace(".", "-"))] = definition
    return out


class ModRegistry:
    """Registered mods in a directory: list, read, write atomically, load (cached by version)."""

    def __init__(
        self, root: Path | str | None = None, preloaded: Mapping[str, ModDefinition] | None = None
    ) -> None:
        self.root = Path(root) if root is not None else default_mods_dir()
        self.preloaded = dict(preloaded or {})
        self._cache: dict[str, tuple[str, ModDefinition]] = {}
        self._namespaces: dict[str, ModRegistry] = {}

    # --- namespaces ---------------------------------------------------------------
    def namespace(self, owner: str) -> ModRegistry:
        """The mods of one API key (``<root>/_users/<owner>``; nothing preloaded there).

        Its mods load through this registry as ``"<owner>/<name>"`` (:meth:`load`).
        """
        validate_name(owner)
        child = self._namespaces.get(owner)
        if child is None:
            child = self._namespaces[owner] = ModRegistry(self.root / USERS_DIR / owner)
        return child

    def drop_namespace(self, owner: str) -> None:
        """Delete every mod of ``owner`` (when its key is deleted)."""
        validate_name(owner)
        folder = self.root / USERS_DIR / owner
        if folder.is_dir():
            trash = self.root / USERS_DIR / f".trash-{owner}-{uuid.uuid4().hex}"
            os.rename(folder, trash)
            shutil.rmtree(trash, ignore_errors=True)
        self._namespaces.pop(owner, None)

    # --- reading ------------------------------------------------------------------
    def spec(self, name: str) -> ModSpec | None:
        """The stored metadata of ``name`` (or a preloaded mod), or None."""
        if name in self.preloaded:
            d = self.preloaded[name]
            return ModSpec(name, f"<preloaded {d!r}>", "", "preloaded", 0.0, preloaded=True)
        if not NAME_RE.match(name):
            return None
        meta = self.root / name / "meta.json"
        try:
            data = json.loads(meta.read_text())
        except (OSError, ValueError):
            return None
        files = sorted(
            str(p.relative_to(self.root / name / "files"))
            for p in (self.root / name / "files").rglob("*.py")
        )
        return ModSpec(
            data["name"],
            data["entrypoint"],
            data.get("description", ""),
            data["version"],
            float(data.get("created", 0)),
            tuple(files),
        )

    def list(self) -> list[ModSpec]:
        """Every registered and preloaded mod, by name."""
        names = set(self.preloaded)
        if self.root.is_dir():
            names |= {p.name for p in self.root.iterdir() if p.is_dir() and NAME_RE.match(p.name)}
        specs = [self.spec(n) for n in sorted(names)]
        return [s for s in specs if s is not None]

    def load(self, name: str) -> ModDefinition:
        """The current definition of ``name``.

        ``"<owner>/<name>"`` names a mod of an API key's namespace (:meth:`namespace`).
        A registered mod is re-imported when a new version is registered; in
        development mode (``QUOTE_RELOAD=1``) also when its files change on disk,
        and a preloaded (``--mod``) module is re-imported when its file changes.
        """
        owner, slash, own_name = name.partition("/")
        if slash:
            return self.namespace(owner).load(own_name)
        if name in self.preloaded:
            if _reload_enabled():
                self.preloaded[name] = _reload_preloaded(self.preloaded[name])
            return self.preloaded[name]
        spec = self.spec(name)
        if spec is None:
            raise KeyError(name)
        files = self.root / name / "files"
        key = spec.version + (_tree_signature(files) if _reload_enabled() else "")
        cached = self._cache.get(name)
        if cached is not None and cached[0] == key:
            return cached[1]
        tag = spec.version if key == spec.version else f"{spec.version}_{uuid.uuid4().hex[:8]}"
        definition = load_from_dir(files, spec.entrypoint, tag, name)
        self._cache[name] = (key, definition)
        return definition

    # --- writing ------------------------------------------------------------------
    def write(
        self, name: str, files: Mapping[str, str], entrypoint: str, description: str
    ) -> ModSpec:
        """Store a new version of ``name`` atomically and return its spec."""
        validate_name(name)
        self.root.mkdir(parents=True, exist_ok=True)
        version = uuid.uuid4().hex
        tmp = self.root / f".tmp-{version}"
        files_dir = tmp / "files"
        for rel, code in files.items():
            target = (files_dir / validate_path(rel)).resolve()
            if not str(target).startswith(str(files_dir.resolve()) + os.sep):
                raise RegistryError(f"source path {rel!r} escapes the bundle")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(code)
        meta = {
            "name": name,
            "entrypoint": entrypoint,
            "description": description,
            "version": version,
            "created": time.time(),
        }
        (tmp / "meta.json").write_text(json.dumps(meta))
        _fsync_dir(tmp)
        final = self.root / name
        trash = self.root / f".trash-{name}-{version}"
        if final.exists():
            os.rename(final, trash)
        os.rename(tmp, final)
        _fsync_dir(self.root)
        shutil.rmtree(trash, ignore_errors=True)
        spec = self.spec(name)
        assert spec is not None
        return spec

    def delete(self, name: str) -> bool:
        """Remove ``name``; False when it was not registered."""
        if not NAME_RE.match(name) or not (self.root / name).is_dir():
            return False
        trash = self.root / f".trash-{name}-{uuid.uuid4().hex}"
        os.rename(self.root / name, trash)
        shutil.rmtree(trash, ignore_errors=True)
        self._cache.pop(name, None)
        return True

    def recover(self) -> None:
        """Clean up after an interrupted write (run at start-up)."""
        if not self.root.is_dir():
            return
        users = self.root / USERS_DIR
        for p in users.iterdir() if users.is_dir() else ():
            if p.name.startswith(".trash-"):
                shutil.rmtree(p, ignore_errors=True)
            elif NAME_RE.match(p.name):
                self.namespace(p.name).recover()
        for p in self.root.iterdir():
            if p.name.startswith(".tmp-"):
                shutil.rmtree(p, ignore_errors=True)
            elif p.name.startswith(".trash-"):
                name = p.name[len(".trash-") :].rsplit("-", 1)[0]
                if NAME_RE.match(name) and not (self.root / name).exists():
                    os.rename(p, self.root / name)
                    logger.warning("restored mod %s after an interrupted replacement", name)
                else:
                    shutil.rmtree(p, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _reload_enabled() -> bool:
    return os.environ.get("QUOTE_RELOAD", "").lower() in ("1", "true", "yes")


def _tree_signature(root: Path) -> str:
    """Cheap change detector for a bundle directory: sizes and mtimes of its files."""
    parts = []
    for p in sorted(root.rglob("*.py")):
        try:
            st = p.stat()
        except OSError:
            continue
        parts.append(f"{p.name}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


_PRELOAD_MTIMES: dict[str, int] = {}


def _reload_preloaded(definition: ModDefinition) -> ModDefinition:
    """Re-import the module named by ``--mod MODULE:ATTR`` if its file changed (development mode)."""
    source = getattr(definition, "preload_source", None)
    if source is None:
        return definition
    module_name, attr = source
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    if module is None or path is None:
        return definition
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError:
        return definition
    previous = _PRELOAD_MTIMES.setdefault(path, mtime)
    if previous == mtime:
        return definition
    _PRELOAD_MTIMES[path] = mtime
    try:
        fresh = as_definition(getattr(importlib.reload(module), attr), name=definition.name)
    except BaseException as exc:  # noqa: BLE001 - a broken edit (even sys.exit) keeps the previous version
        logger.error(
            "reloading mod %s failed, keeping the previous version: %s",
            definition.name,
            describe_exception(exc),
        )
        return definition
    fresh.preload_source = source  # type: ignore[attr-defined]
    logger.info("reloaded preloaded mod %s from %s", definition.name, path)
    return fresh
