"""``/v1/mods``: register, list, read and delete mods.

Registering runs code in the server, so writes are **off unless** ``QUOTE_ADMIN_KEY``
is set or user keys exist (:mod:`quote.server.keys`), and then need
``Authorization: Bearer <key>`` (compared in constant time). The admin key writes the
shared mods; a user key writes its own namespace (:mod:`quote.server.mod_views`). Bodies
in Quote's form, the original engine's and :func:`~quote.sdk.serialize.serialize_mod`'s are
accepted (:mod:`quote.mods.payload`). A new mod is imported in a separate interpreter first
(with a time limit, ``QUOTE_MOD_CHECK_TIMEOUT_S``); only a mod whose check reports its
entrypoint as a mod is stored, atomically.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from quote.mods.check import check_bundle
from quote.mods.payload import body_credential, parse_registration
from quote.mods.registry import (
    ModRegistry,
    RegistryError,
    load_preloaded,
    validate_name,
    validate_path,
)
from quote.server.auth import identify, require_writer
from quote.server.keys import KeyStore
from quote.server.mod_views import ModView
from quote.server.options import QuoteHTTPError, error_body

__all__ = ["MAX_MOD_BYTES", "keystore", "registry", "router", "view"]

logger = logging.getLogger(__name__)

MAX_MOD_BYTES = 256 * 1024
"""Largest accepted registration body."""

router = APIRouter()
_registry: ModRegistry | None = None
_keys: KeyStore | None = None


def registry() -> ModRegistry:
    """The process's registry (mods dir from ``QUOTE_MODS_DIR``; recovered on first use)."""
    global _registry
    if _registry is None:
        _registry = ModRegistry(preloaded=load_preloaded())
        _registry.recover()
    return _registry


def keystore() -> KeyStore:
    """The process's API keys (stored in the registry's directory)."""
    global _keys
    if _keys is None:
        _keys = KeyStore(registry().root)
    return _keys


def view(request: Request) -> ModView:
    """The registry as the request's credential sees it."""
    return ModView(registry(), identify(request.headers, keystore()))


def _error(exc: QuoteHTTPError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


@router.get("/mods")
async def list_mods(request: Request) -> Any:
    """The shared (and preloaded) mods, plus the caller's own when it presents a user key."""
    return {"object": "list", "data": view(request).list()}


@router.get("/mods/{name}")
async def get_mod(name: str, request: Request) -> Any:
    """One mod's metadata (the caller's own first, then the shared one)."""
    v = view(request)
    found = v.find(name) if _valid(name) else None
    if found is None:
        return _error(QuoteHTTPError(404, f"mod '{name}' is not registered", "not_found_error"))
    return v.public(found[1], found[0])


@router.delete("/mods/{name}")
async def delete_mod(name: str, request: Request) -> Any:
    """Remove a mod: the admin key removes shared mods, a user key its own."""
    v = view(request)
    try:
        require_writer(v.caller, keystore())
        await _delete(v, name)
    except QuoteHTTPError as exc:
        return _error(exc)
    return Response(status_code=204)


async def _delete(v: ModView, name: str) -> None:
    target = v.writable()
    if target is v.registry and name in target.preloaded:
        raise QuoteHTTPError(409, f"mod '{name}' is preloaded (--mod) and cannot be deleted")
    if _valid(name) and await asyncio.to_thread(target.delete, name):
        logger.info("deleted mod %s (%s)", name, v.caller.owner or v.caller.kind)
        return
    if target is not v.registry and _valid(name) and v.registry.spec(name) is not None:
        raise QuoteHTTPError(
            403,
            f"mod '{name}' is shared; only the admin key can delete it",
            "permission_error",
            "shared_mod",
        )
    raise QuoteHTTPError(404, f"mod '{name}' is not registered", "not_found_error")


@router.post("/mods")
async def create_mod(request: Request) -> Any:
    """Register (or replace) a mod; see :mod:`quote.mods.payload` for the accepted bodies."""
    try:
        spec = await _register(request)
    except QuoteHTTPError as exc:
        return _error(exc)
    return JSONResponse(spec["spec"], status_code=201 if spec["created"] else 200)


async def _read_body(request: Request) -> tuple[bytes, bool]:
    """The body (up to :data:`MAX_MOD_BYTES`) and whether it was longer."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_MOD_BYTES:
            return raw, True
    return raw, False


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


async def _register(request: Request) -> dict[str, Any]:
    keys = keystore()
    caller = identify(request.headers, keys)
    raw, too_big = b"", False
    if caller.kind == "anonymous" and not caller.presented:  # the key may be in the body
        raw, too_big = await _read_body(request)
        fallback = None if too_big else body_credential(_json(raw))
        caller = identify(request.headers, keys, fallback)
    require_writer(caller, keys)
    if not raw and not too_big:
        raw, too_big = await _read_body(request)
    if too_big:
        raise QuoteHTTPError(413, f"mod body exceeds {MAX_MOD_BYTES} bytes")
    body = _json(raw)
    if body is None:
        raise QuoteHTTPError(400, "invalid mod registration: body is not valid JSON")
    try:
        reg = parse_registration(body)
    except RegistryError as exc:
        raise QuoteHTTPError(400, f"invalid mod registration: {exc}") from exc
    if reg.reads_server_files and caller.kind != "admin":
        raise QuoteHTTPError(
            403,
            "registering from the server's files ('dir'/'files') needs the admin key",
            "permission_error",
            "admin_only",
        )
    target = ModView(registry(), caller).writable()
    if reg.name in target.preloaded:
        raise QuoteHTTPError(409, f"mod '{reg.name}' is preloaded (--mod) and cannot be replaced")
    await asyncio.to_thread(_validate_in_subprocess, target, reg.name, reg.files, reg.entrypoint)
    existed = target.spec(reg.name) is not None
    spec = await asyncio.to_thread(
        target.write, reg.name, reg.files, reg.entrypoint, reg.description
    )
    logger.info(
        "registered mod %s (version %s, %s)", spec.name, spec.version, caller.owner or caller.kind
    )
    public = spec.public() if caller.owner is None else dict(spec.public(), owner=caller.owner)
    return {"spec": public, "created": not existed}


def _validate_in_subprocess(reg: ModRegistry, name: str, files: dict[str, str], entry: str) -> None:
    """Import the mod in a check process; 400 unless it positively yields its entrypoint mod.

    The check process reports a verdict on a pipe (:mod:`quote.mods.check`): exiting the
    interpreter at import (``sys.exit(0)``, ``os._exit(0)``), ``KeyboardInterrupt``, a missing
    or wrong-typed entrypoint and a hanging import are all refused, never accepted on exit
    status alone.
    """
    scratch = reg.root / f".tmp-check-{uuid.uuid4().hex}"
    try:
        for rel, code in files.items():
            path = scratch / validate_path(rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(code)
        verdict = check_bundle(scratch, entry, name)
    except RegistryError as exc:
        reason = str(exc).removeprefix(f"mod '{name}'").lstrip(": ")
        logger.info("mod %s rejected: %s", name, reason)
        raise QuoteHTTPError(400, f"mod '{name}' rejected: {reason[:500]}") from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    logger.debug("mod %s passed the import check: %s", name, verdict)


def _valid(name: str) -> bool:
    try:
        validate_name(name)
    except RegistryError:
        return False
    return True


def disabled_body() -> dict[str, Any]:
    """The error body returned while registration is off (for docs and tests)."""
    return error_body("mod registration is disabled", "permission_error", "registration_disabled")
