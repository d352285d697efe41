# SPDX-License-Identifier: Apache-2.0
"""``/v1/mods``: register, list, read and delete mods.

Registering runs code in the server, so writes are **off unless** ``QUOTE_ADMIN_KEY``
is set, and then need ``Authorization: Bearer <key>`` (compared in constant time).
A new mod is imported in a separate interpreter first (with a time limit,
``QUOTE_MOD_CHECK_TIMEOUT_S``); only a mod whose check reports its entrypoint as a mod
is stored, atomically.
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
from pydantic import BaseModel, ConfigDict, ValidationError

from quote.mods.check import check_bundle
from quote.mods.registry import (
    ModRegistry,
    RegistryError,
    load_preloaded,
    normalise_source,
    validate_name,
    validate_path,
)
from quote.server.auth import require_admin
from quote.server.options import QuoteHTTPError, error_body

__all__ = ["MAX_MOD_BYTES", "ModCreate", "registry", "router"]

logger = logging.getLogger(__name__)

MAX_MOD_BYTES = 256 * 1024
"""Largest accepted registration body."""

router = APIRouter()
_registry: ModRegistry | None = None


def registry() -> ModRegistry:
    """The process's registry (mods dir from ``QUOTE_MODS_DIR``; recovered on first use)."""
    global _registry
    if _registry is None:
        _registry = ModRegistry(preloaded=load_preloaded())
        _registry.recover()
    return _registry


class ModCreate(BaseModel):
    """Body of ``POST /v1/mods``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    source: str | dict[str, str]
    entrypoint: str
    description: str = ""


def _check_admin(request: Request) -> None:
    require_admin(
        request.headers,
        disabled_message="mod registration is disabled on this server (start it with QUOTE_ADMIN_KEY set)",
        disabled_code="registration_disabled",
    )


def _error(exc: QuoteHTTPError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


@router.get("/mods")
async def list_mods() -> Any:
    """Every registered (and preloaded) mod."""
    return {"object": "list", "data": [s.public() for s in registry().list()]}


@router.get("/mods/{name}")
async def get_mod(name: str) -> Any:
    """One mod's metadata."""
    spec = registry().spec(name) if _valid(name) else None
    if spec is None:
        return _error(QuoteHTTPError(404, f"mod '{name}' is not registered", "not_found_error"))
    return spec.public()


@router.delete("/mods/{name}")
async def delete_mod(name: str, request: Request) -> Any:
    """Remove a registered mod (preloaded mods cannot be deleted)."""
    try:
        _check_admin(request)
    except QuoteHTTPError as exc:
        return _error(exc)
    reg = registry()
    if name in reg.preloaded:
        return _error(
            QuoteHTTPError(409, f"mod '{name}' is preloaded (--mod) and cannot be deleted")
        )
    if not _valid(name) or not await asyncio.to_thread(reg.delete, name):
        return _error(QuoteHTTPError(404, f"mod '{name}' is not registered", "not_found_error"))
    return Response(status_code=204)


@router.post("/mods")
async def create_mod(request: Request) -> Any:
    """Register (or replace) a mod: ``name``, ``source`` (code or ``{path: code}``), ``entrypoint``."""
    try:
        _check_admin(request)
        spec = await _register(request)
    except QuoteHTTPError as exc:
        return _error(exc)
    return JSONResponse(spec["spec"], status_code=201 if spec["created"] else 200)


async def _register(request: Request) -> dict[str, Any]:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_MOD_BYTES:
            raise QuoteHTTPError(413, f"mod body exceeds {MAX_MOD_BYTES} bytes")
    try:
        body = ModCreate.model_validate(json.loads(raw))
    except (ValueError, ValidationError, RecursionError) as exc:
        detail = (
            exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else "body is not valid JSON"
        )
        raise QuoteHTTPError(400, f"invalid mod registration: {detail}") from exc
    reg = registry()
    try:
        validate_name(body.name)
        files, entry = normalise_source(body.source, body.entrypoint)
    except RegistryError as exc:
        raise QuoteHTTPError(400, str(exc)) from exc
    if body.name in reg.preloaded:
        raise QuoteHTTPError(409, f"mod '{body.name}' is preloaded (--mod) and cannot be replaced")
    await asyncio.to_thread(_validate_in_subprocess, reg, body.name, files, entry)
    existed = reg.spec(body.name) is not None
    spec = await asyncio.to_thread(reg.write, body.name, files, entry, body.description)
    logger.info("registered mod %s (version %s)", spec.name, spec.version)
    return {"spec": spec.public(), "created": not existed}


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
