# SPDX-License-Identifier: Apache-2.0
"""``/v1/keys``: the admin creates, lists and deletes user API keys.

Every route needs ``Authorization: Bearer $QUOTE_ADMIN_KEY`` (403 ``keys_disabled`` when the
server has none). ``POST /v1/keys`` (body optional: ``{"label": "..."}``) answers 201 with
the key's ``id`` and, once only, its plaintext ``key``; ``GET /v1/keys`` lists ids and labels;
``DELETE /v1/keys/{id}`` deletes the key **and its mods**.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from quote.server.admin import keystore, registry
from quote.server.auth import require_admin
from quote.server.keys import KeyStoreError, valid_id
from quote.server.options import QuoteHTTPError

__all__ = ["router"]

logger = logging.getLogger(__name__)

MAX_KEY_BODY = 4096
router = APIRouter()


def _admin(request: Request) -> None:
    require_admin(
        request.headers,
        disabled_message="API keys are disabled on this server (start it with QUOTE_ADMIN_KEY set)",
        disabled_code="keys_disabled",
    )


def _error(exc: QuoteHTTPError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


async def _label(request: Request) -> str:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_KEY_BODY:
            raise QuoteHTTPError(413, f"body exceeds {MAX_KEY_BODY} bytes")
    if not raw.strip():
        return ""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise QuoteHTTPError(400, "body is not valid JSON") from exc
    if not isinstance(body, dict) or set(body) - {"label"}:
        raise QuoteHTTPError(400, 'the body must be {"label": "..."} or empty')
    label = body.get("label", "")
    if not isinstance(label, str):
        raise QuoteHTTPError(400, "'label' must be a string")
    return label


@router.post("/keys")
async def create_key(request: Request) -> Any:
    """Create a user key; the response carries its plaintext, which is not stored."""
    try:
        _admin(request)
        label = await _label(request)
        record, plaintext = await asyncio.to_thread(keystore().create, label)
    except QuoteHTTPError as exc:
        return _error(exc)
    except KeyStoreError as exc:
        return _error(QuoteHTTPError(400, str(exc)))
    return JSONResponse(dict(record.public(), key=plaintext), status_code=201)


@router.get("/keys")
async def list_keys(request: Request) -> Any:
    """Every user key's id, label and creation time (never the key)."""
    try:
        _admin(request)
    except QuoteHTTPError as exc:
        return _error(exc)
    return {"object": "list", "data": [r.public() for r in keystore().list()]}


@router.delete("/keys/{key_id}")
async def delete_key(key_id: str, request: Request) -> Any:
    """Delete a user key and every mod it registered."""
    try:
        _admin(request)
    except QuoteHTTPError as exc:
        return _error(exc)
    if not valid_id(key_id) or not await asyncio.to_thread(keystore().delete, key_id):
        return _error(QuoteHTTPError(404, f"no API key '{key_id}'", "not_found_error"))
    await asyncio.to_thread(registry().drop_namespace, key_id)
    return Response(status_code=204)
