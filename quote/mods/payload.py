# SPDX-License-Identifier: Apache-2.0
"""The bodies ``POST /v1/mods`` accepts, read into one :class:`Registration` (pure logic).

Three forms:

* **Quote's**: ``{"name", "source", "entrypoint", "description"}``; ``source`` is one module's
  code or a ``{path: code}`` bundle, ``entrypoint`` is ``ATTR`` or ``module.path:ATTR``.
* **The original engine's** (``concai mod upload``, ``serialize_mod`` of ``quote_mod_sdk``): the
  same plus ``language`` (``"python"``), ``module`` (the entry module's import path; with it,
  ``entrypoint`` is the attribute name) and ``user_api_key`` (a credential, see
  :mod:`quote.server.auth`); or, instead of ``source``, ``dir`` (a folder) or ``files`` (a list
  of files) **on the server's file system**, read into a bundle here (callers allow that to the
  admin key only).
* **Quote's** :func:`quote.sdk.serialize.serialize_mod` **payload**
  (``{"format": "quote-mod/1", "modules", "entry", "attr", "sha256", ...}``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quote.mods.registry import RegistryError, normalise_source, validate_name
from quote.sdk.serialize import PAYLOAD_FORMAT

__all__ = [
    "MAX_SERVER_BYTES",
    "MAX_SERVER_FILES",
    "Registration",
    "body_credential",
    "parse_registration",
]

MAX_SERVER_FILES = 500
"""Most ``.py`` files a ``dir``/``files`` registration may read."""
MAX_SERVER_BYTES = 8 * 1024 * 1024
"""Most bytes of code a ``dir``/``files`` registration may read."""

_OURS = {"name", "source", "entrypoint", "description"}
_ORIGINAL = {"language", "module", "dir", "files", "user_api_key"}
_SERIALIZED = {"format", "entry", "attr", "modules", "sha256"}


@dataclass(frozen=True)
class Registration:
    """A registration request, normalised: what :meth:`ModRegistry.write` stores."""

    name: str
    files: dict[str, str]
    entrypoint: str
    description: str = ""
    reads_server_files: bool = False
    """True when the bundle was read from the server's file system (``dir``/``files``)."""


def body_credential(body: Any) -> str | None:
    """The original engine's ``user_api_key`` body field, if the body carries one."""
    if isinstance(body, dict) and isinstance(body.get("user_api_key"), str):
        return str(body["user_api_key"]).strip() or None
    return None


def parse_registration(body: Any) -> Registration:
    """Read any accepted body form; raise :class:`RegistryError` with a clear reason."""
    if not isinstance(body, dict):
        raise RegistryError("the body must be a JSON object")
    unknown = sorted(set(body) - _OURS - _ORIGINAL - _SERIALIZED)
    if unknown:
        raise RegistryError(f"Extra inputs are not permitted: {unknown}")
    description = _text(body, "description", required=False)
    if body.get("format") is not None:
        return _serialized(body, description)
    language = body.get("language", "python")
    if language != "python":
        raise RegistryError(f"'language' must be 'python' (got {language!r})")
    name = validate_name(_text(body, "name"))
    entrypoint = _text(body, "entrypoint")
    module = _text(body, "module", required=False) or None
    if body.get("dir") is not None or body.get("files") is not None:
        if body.get("source") is not None:
            raise RegistryError("give either 'source' or 'dir'/'files', not both")
        if module is None:
            raise RegistryError("'dir'/'files' registrations need 'module' (the entry module)")
        files = _server_files(body.get("dir"), body.get("files"), module)
        files, entry = normalise_source(files, f"{module}:{entrypoint}")
        return Registration(name, files, entry, description, reads_server_files=True)
    source = body.get("source")
    if not isinstance(source, str | dict):
        raise RegistryError("'source' must be a string or a {path: code} object")
    if module is not None:
        if ":" in entrypoint:
            raise RegistryError("with 'module', 'entrypoint' is an attribute name (no ':')")
        if isinstance(source, str):
            source = {module.replace(".", "/") + ".py": source}
        entrypoint = f"{module}:{entrypoint}"
    if isinstance(source, dict) and not all(isinstance(v, str) for v in source.values()):
        raise RegistryError("'source' values must be strings (the files' code)")
    files, entry = normalise_source(source, entrypoint)
    return Registration(name, files, entry, description)


def _text(body: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = body.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise RegistryError(f"'{key}' must be a non-empty string")
    return value


def _serialized(body: dict[str, Any], description: str) -> Registration:
    """A :func:`~quote.sdk.serialize.serialize_mod` payload: checksum, then its modules."""
    if body.get("format") != PAYLOAD_FORMAT:
        raise RegistryError(f"unknown payload format {body.get('format')!r} ({PAYLOAD_FORMAT})")
    content = {k: v for k, v in body.items() if k in _SERIALIZED - {"sha256"} or k == "name"}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode("utf-8")).hexdigest()
    if body.get("sha256") != digest:
        raise RegistryError(
            "payload checksum mismatch (the payload was edited after serialize_mod)"
        )
    modules = body.get("modules")
    if not isinstance(modules, dict) or not modules:
        raise RegistryError("'modules' must be a non-empty object")
    files: dict[str, str] = {}
    for module, item in modules.items():
        if not isinstance(item, dict) or not isinstance(item.get("source"), str):
            raise RegistryError(f"module {module!r}: needs a 'source' string")
        path = str(module).replace(".", "/")
        files[path + ("/__init__.py" if item.get("package") else ".py")] = item["source"]
    entry = f"{_text(body, 'entry')}:{_text(body, 'attr')}"
    files, entry = normalise_source(files, entry)
    return Registration(validate_name(_text(body, "name")), files, entry, description)


def _server_files(directory: Any, listed: Any, module: str) -> dict[str, str]:
    """``{path: code}`` from a folder or file list on this machine, keyed from the package base.

    The base is the nearest folder (the given one or a parent) that holds ``module`` as a
    file, so keys mirror import paths (``examples/tau2/mod.py`` for ``examples.tau2.mod``).
    """
    if directory is not None:
        if not isinstance(directory, str) or not Path(directory).is_dir():
            raise RegistryError(f"'dir' is not a folder on the server: {directory!r}")
        root = Path(directory).resolve()
        found = (p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
        paths = sorted(itertools.islice(found, MAX_SERVER_FILES + 1))
    else:
        if (
            not isinstance(listed, list)
            or not listed
            or not all(isinstance(p, str) for p in listed)
        ):
            raise RegistryError("'files' must be a non-empty list of paths")
        paths = [Path(p).resolve() for p in listed]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise RegistryError(f"'files' not found on the server: {missing[:5]}")
        root = Path(os.path.commonpath([str(p.parent) for p in paths]))
    if len(paths) > MAX_SERVER_FILES:
        raise RegistryError(f"more than {MAX_SERVER_FILES} .py files under {str(root)!r}")
    base = _package_base(root, module)
    try:
        if sum(p.stat().st_size for p in paths) > MAX_SERVER_BYTES:
            raise RegistryError(f"the .py files under {str(root)!r} exceed {MAX_SERVER_BYTES} B")
        return {p.relative_to(base).as_posix(): p.read_text(encoding="utf-8") for p in paths}
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(f"cannot read the mod's files: {exc}") from exc


def _package_base(root: Path, module: str) -> Path:
    parts = module.split(".")
    for candidate in (root, *root.parents):
        stem = candidate.joinpath(*parts)
        if stem.with_suffix(".py").is_file() or (stem / "__init__.py").is_file():
            return candidate
    raise RegistryError(f"module {module!r} is not under {str(root)!r} or its parents")
