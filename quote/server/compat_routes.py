# SPDX-License-Identifier: Apache-2.0
"""``POST /add_user``: the original engine's way to add a user key, kept for its clients.

Body: ``{"user_api_key": "<key the admin chose>", "admin_key": "<QUOTE_ADMIN_KEY>"}`` (the
admin key may come in ``Authorization: Bearer`` instead). The key is stored hashed like
the keys of ``POST /v1/keys`` (:mod:`quote.server.key_routes`) and owns a namespace of mods.
Answers 200 ``{"ok": true, "id", "existed"}``; the key is never echoed.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from quote.server.admin import keystore
from quote.server.auth import require_admin
from quote.server.keys import KeyStoreError
from quote.server.options import QuoteHTTPError

__all__ = ["router"]

MAX_BODY = 4096
router = APIRouter()


async def _body(request: Request) -> dict[str, Any]:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise QuoteHTTPError(413, f"body exceeds {MAX_BODY} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise QuoteHTTPError(400, "body is not valid JSON") from exc
    if not isinstance(body, dict) or set(body) - {"user_api_key", "admin_key", "label"}:
        raise QuoteHTTPError(400, 'the body must be {"user_api_key": "...", "admin_key": "..."}')
    return body


@router.post("/add_user")
async def add_user(request: Request) -> Any:
    """Add a user key chosen by the admin (idempotent: ``existed`` tells a repeat)."""
    try:
        body = await _body(request)
        admin = body.get("admin_key")
        headers = (
            {"authorization": f"Bearer {admin}"} if isinstance(admin, str) else request.headers
        )
        require_admin(
            headers,
            disabled_message="API keys are disabled on this server (start it with "
            "QUOTE_ADMIN_KEY set)",
            disabled_code="keys_disabled",
        )
        key, label = body.get("user_api_key"), body.get("label", "")
        if not isinstance(key, str) or not isinstance(label, str):
            raise QuoteHTTPError(400, "'user_api_key' (and 'label') must be strings")
        record, existed = await asyncio.to_thread(keystore().add, key, label)
    except QuoteHTTPError as exc:
        return JSONResponse(exc.body(), status_code=exc.status)
    except KeyStoreError as exc:
        return JSONResponse(QuoteHTTPError(400, str(exc)).body(), status_code=400)
    return {"ok": True, "id": record.id, "existed": existed}
