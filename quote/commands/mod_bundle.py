# SPDX-License-Identifier: Apache-2.0
"""Build a ``POST /v1/mods`` body from a mod file, a mod folder or a saved payload (pure logic).

* **A file** (``polite.py``): its code is the source; the entrypoint is ``--entrypoint`` or
  the one mod the file defines (a function decorated with ``@mod`` or a ``Mod`` subclass).
* **A folder** (``mymod/``): every ``.py`` file under it, keyed ``mymod/...`` so that both
  relative imports and absolute ones starting at the folder's name work; the entry module
  is ``mymod/mod.py`` (the original engine's convention), ``mymod/main.py`` or
  ``mymod/__init__.py``, unless ``--entrypoint module:ATTR`` names another.
* **A ``.json`` file**: a payload saved from :func:`quote.sdk.serialize.serialize_mod` (or
  any body the server accepts), sent as it is unless ``--name``/``--description`` change it.

The mod's name is ``--name`` or its entrypoint attribute, lower-cased.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

from quote.mods.payload import parse_registration
from quote.mods.registry import RegistryError, validate_name

__all__ = ["ENTRY_MODULES", "BundleError", "build_body", "find_mods"]

ENTRY_MODULES = ("mod.py", "main.py", "__init__.py")
"""Entry modules looked for in a folder, in order."""
_SKIP_DIRS = {"__pycache__", "venv", "site-packages", "node_modules"}


class BundleError(ValueError):
    """The path cannot be made into a mod registration."""


def find_mods(source: str, filename: str = "<mod>") -> list[str]:
    """Top-level names that define a mod: ``@mod``-decorated functions, ``Mod`` subclasses."""
    try:
        tree = ast.parse(source, filename)
    except SyntaxError as exc:
        raise BundleError(f"{filename}: {exc.msg} (line {exc.lineno})") from exc
    found: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if any(_names(d) == "mod" for d in node.decorator_list):
                found.append(node.name)
        elif isinstance(node, ast.ClassDef) and any(_names(b) == "Mod" for b in node.bases):
            found.append(node.name)
    return found


def _names(node: ast.expr) -> str | None:
    """``mod`` for ``@mod``, ``@mod(...)`` and ``@sdk.mod``."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else None


def default_name(attr: str) -> str:
    """A valid mod name from an entrypoint attribute (``MyMod`` -> ``mymod``)."""
    name = re.sub(r"[^a-z0-9_-]", "-", attr.lower()).lstrip("-_")
    return validate_name(name[:64])


def _pick(found: list[str], where: str) -> str:
    if len(found) == 1:
        return found[0]
    if not found:
        raise BundleError(f"no @mod function or Mod subclass in {where}; pass --entrypoint")
    raise BundleError(f"{where} defines several mods {found}; choose one with --entrypoint")


def _file_body(path: Path, entrypoint: str | None) -> tuple[dict[str, str] | str, str]:
    source = path.read_text(encoding="utf-8")
    attr = entrypoint or _pick(find_mods(source, str(path)), str(path))
    return source, attr


def _folder_files(folder: Path, prefix: str) -> dict[str, str]:
    files: dict[str, str] = {}
    for p in sorted(folder.rglob("*.py")):
        rel = p.relative_to(folder)
        if any(part.startswith(".") or part in _SKIP_DIRS for part in rel.parts):
            continue
        files[prefix + rel.as_posix()] = p.read_text(encoding="utf-8")
    if not files:
        raise BundleError(f"no .py files under {folder}")
    return files


def _folder_body(folder: Path, entrypoint: str | None) -> tuple[dict[str, str], str]:
    prefix = folder.resolve().name + "/" if folder.resolve().name.isidentifier() else ""
    files = _folder_files(folder, prefix)
    if entrypoint and ":" in entrypoint:
        return files, entrypoint
    entry = next((prefix + m for m in ENTRY_MODULES if prefix + m in files), None)
    if entry is None:
        raise BundleError(
            f"{folder} has none of {list(ENTRY_MODULES)}; pass --entrypoint module:ATTR"
        )
    attr = entrypoint or _pick(find_mods(files[entry], str(folder / Path(entry).name)), entry)
    module = entry.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    if entry == "__init__.py":
        raise BundleError(f"{folder}: name the entry module with --entrypoint module:ATTR")
    return files, f"{module}:{attr}"


def _json_body(path: Path, name: str | None, description: str | None) -> dict[str, Any]:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise BundleError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BundleError(f"{path}: a payload is a JSON object")
    if name is None and description is None:
        return body
    try:
        reg = parse_registration(body)
    except RegistryError as exc:
        raise BundleError(f"{path}: {exc}") from exc
    return {
        "name": validate_name(name) if name is not None else reg.name,
        "source": reg.files,
        "entrypoint": reg.entrypoint,
        "description": reg.description if description is None else description,
    }


def build_body(
    path: Path,
    *,
    name: str | None = None,
    entrypoint: str | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """The registration body for ``path`` (a ``.py`` file, a folder or a ``.json`` payload)."""
    try:
        if path.is_file() and path.suffix == ".json":
            return _json_body(path, name, description)
        if path.is_dir():
            source: dict[str, str] | str
            source, entry = _folder_body(path, entrypoint)
        elif path.is_file():
            source, entry = _file_body(path, entrypoint)
        else:
            raise BundleError(f"no such file or folder: {path}")
        mod_name = validate_name(name) if name is not None else default_name(entry.split(":")[-1])
    except (RegistryError, UnicodeDecodeError, OSError) as exc:
        raise BundleError(str(exc)) from exc
    return {
        "name": mod_name,
        "source": source,
        "entrypoint": entry,
        "description": description or "",
    }
