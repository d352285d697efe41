# SPDX-License-Identifier: Apache-2.0
"""Quote's HTTP routes inside MAX's OpenAI-compatible server.

* ``POST /v1/chat/completions`` and ``POST /v1/completions``: select mods by model
  name, pass options to the worker, then hand the request to MAX's own handler and
  finish its response with Quote's outcome (tool calls, mod errors, trace).
* ``GET /v1/models``: MAX's list plus one ``<served>/<mod>`` entry per mod.
* ``/v1/mods``: the mod registry (writes need ``QUOTE_ADMIN_KEY`` or a user key);
  ``/v1/keys``: user keys (admin only). A request with a user key also sees that key's mods.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from quote.server import fanout
from quote.server.admin import router as admin_router
from quote.server.admin import view
from quote.server.failures import guard_stream, unless_worker_dies, worker_died
from quote.server.images import check_image_urls
from quote.server.key_routes import router as key_router
from quote.server.mod_views import ModView
from quote.server.options import QuoteHTTPError, error_body, select
from quote.server.params import (
    check_limits,
    check_model,
    check_params,
    echo_logprobs_refusal,
)
from quote.server.shaping import Shape, echo_texts
from quote.server.structured import check_constraint
from quote.server.worker_link import link

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1")
router.include_router(admin_router)
router.include_router(key_router)

Handler = Callable[[Request], Awaitable[Any]]


def _max_routes() -> Any:
    from max.serve.router import openai_routes

    return openai_routes


@router.post("/chat/completions", response_model=None)
async def chat_completions(request: Request) -> Any:
    """MAX's chat completions, with mods selected by ``model: "<served>/<mod>"``."""
    return await _proxy(request, _max_routes().openai_create_chat_completion, chat=True)


@router.post("/completions", response_model=None)
async def completions(request: Request) -> Any:
    """MAX's text completions, with mods selected by ``model: "<served>/<mod>"``."""
    return await _proxy(request, _max_routes().openai_create_completion, chat=False)


@router.get("/models", response_model=None)
async def models(request: Request) -> Any:
    """The served model (MAX's entry) plus one entry per registered mod."""
    listing = await _max_routes().openai_get_models(request)
    data = jsonable_encoder(listing)
    served = request.app.state.pipeline.model_name
    base = data["data"][0] if data.get("data") else {"created": 0, "owned_by": ""}
    for spec in view(request).list():
        entry = dict(base)
        entry.update(id=f"{served}/{spec['name']}", owned_by="quote")
        data["data"].append(entry)
    return JSONResponse(data)


@router.get("/quote/stats", response_model=None)
async def stats() -> Any:
    """The model worker's live counts (requests with mod state, KV blocks in use)."""
    current = link()
    data = current.stats if current is not None else None
    if data is None:
        return JSONResponse(error_body("no worker stats yet", "not_found_error"), status_code=404)
    return data


MAX_BODY_BYTES = int(os.environ.get("QUOTE_MAX_BODY_BYTES", str(16 * 1024 * 1024)))
"""Largest completion request body Quote's routes accept (413 beyond)."""


async def _proxy(request: Request, handler: Handler, *, chat: bool) -> Any:
    raw = b""
    async for part in request.stream():
        raw += part
        if len(raw) > MAX_BODY_BYTES:
            return JSONResponse(
                error_body(f"request body exceeds {MAX_BODY_BYTES} bytes", "invalid_request_error"),
                status_code=413,
            )
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        body = None
    if body is None and raw:
        return JSONResponse(
            error_body(
                "request body is not valid JSON (or nests too deeply)", "invalid_request_error"
            ),
            status_code=400,
        )
    if not isinstance(body, dict):
        return await handler(fanout.sub_request(request, raw))  # MAX answers 400 itself
    served = request.app.state.pipeline.model_name
    mods = view(request)
    try:
        check_model(body.get("model"), served, _lora_names(request))
        refusal = echo_logprobs_refusal(getattr(request.app.state, "pipeline_config", None))
        n = check_params(body, chat=chat, echo_refusal=refusal)
        if chat:
            check_image_urls(body)
        check_limits(body, _max_routes()._resolve_max_model_len(request))
        sel = select(body, served, lambda name: mods.find(name) is not None, chat=chat)
        if sel.options is not None:  # the worker loads a key's own mods by "<key id>/<name>"
            sel.options["mods"] = [_wire(mods, name) for name in sel.options["mods"]]
        if sel.options is not None and sel.options.get("constraint") is not None:
            tokenizer = request.app.state.pipeline.tokenizer.delegate
            await check_constraint(sel.options["constraint"], tokenizer)
        echo = _echo(request, body) if not chat and body.get("echo") else ()
    except QuoteHTTPError as exc:
        return JSONResponse(exc.body(), status_code=exc.status)
    shape = Shape.of(sel.body, chat=chat, echo=echo)
    plans = fanout.choice_plans(sel.body, sel.options, n)
    results = await unless_worker_dies(fanout.call_all(request, handler, plans))
    if isinstance(results, Response):
        return results  # the worker died
    if not sel.body.get("stream"):
        return await fanout.join_responses(results, plans, shape, _finish_json)
    return await fanout.join_stream_responses(
        request, results, plans, shape, _finish_stream, guard_stream
    )


def _wire(mods: ModView, name: str) -> str:
    found = mods.find(name)
    return found[0] if found is not None else name


def _lora_names(request: Request) -> list[str]:
    queue = getattr(request.app.state.pipeline, "lora_queue", None)
    return list(queue.list_loras()) if queue else []


def _echo(request: Request, body: dict[str, Any]) -> tuple[str, ...]:
    """The prompt text(s) that ``echo`` prepends (token-id prompts decoded)."""
    tokenizer = request.app.state.pipeline.tokenizer.delegate
    try:
        return echo_texts(body.get("prompt"), lambda ids: str(tokenizer.decode(list(ids))))
    except (OverflowError, TypeError, ValueError) as exc:
        raise QuoteHTTPError(400, f"invalid prompt token ids: {exc}", param="prompt") from exc


async def _result(ticket: str) -> dict[str, Any] | None:
    """The ticketed request's outcome from the worker (in memory; None if it never came)."""
    current = link()
    return await current.result(ticket) if current is not None else None


def _mod_error(message: str) -> tuple[int, dict[str, Any]]:
    """EmitError -> 400; a failing mod (raised, garbage, impossible edit, timeout) -> 422.

    Both are 4xx: the client chose the mod, and the server itself is healthy.
    """
    emitted = " emitted an error" in message
    status = 400 if emitted else 422
    return status, error_body(
        message, "mod_error", "mod_emitted_error" if emitted else "mod_failed"
    )


def _tool_calls(calls: list[dict[str, Any]], ticket: str) -> list[dict[str, Any]]:
    out = []
    for i, c in enumerate(calls):
        args = c.get("arguments", {})
        out.append(
            {
                "index": i,
                "id": c.get("id") or f"call_{ticket[:12]}_{i}",
                "type": "function",
                "function": {
                    "name": c["name"],
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                },
            }
        )
    return out


async def _finish_json(data: dict[str, Any], ticket: str, chat: bool) -> JSONResponse:
    result = await _result(ticket)
    if result is None:
        return JSONResponse(_lost(), status_code=503)
    if result.get("error"):
        status, body = _mod_error(str(result["error"]))
        return JSONResponse(body, status_code=status)
    choice = data["choices"][0]
    if result.get("tool_calls"):
        calls = _tool_calls(result["tool_calls"], ticket)
        for c in calls:
            del c["index"]
        choice["finish_reason"] = "tool_calls"
        if chat:
            choice["message"]["tool_calls"] = calls
            choice["message"]["content"] = choice["message"].get("content") or None
        else:
            data["quote"] = {"tool_calls": calls}
    if "trace" in result:
        data.setdefault("quote", {})["trace"] = result["trace"]
    return JSONResponse(data)


def _lost() -> dict[str, Any]:
    current = link()
    if current is not None and current.dead is not None:
        return worker_died(current.dead)
    return error_body(
        "the request's outcome did not arrive from the model worker", "server_error", "outcome_lost"
    )


async def _finish_stream(items: AsyncIterator[Any], ticket: str, chat: bool) -> AsyncIterator[Any]:
    done = False
    outcome: dict[str, Any] | None = None
    async for item in items:
        text = item if isinstance(item, str) else getattr(item, "data", None)
        if text == "[DONE]":
            done = True
            yield item
            continue
        try:
            chunk = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            chunk = None
        finish = _finish_reason(chunk)
        if chunk is None or finish is None:
            yield item
            continue
        if outcome is None:  # asked once: a later finish chunk reuses it
            outcome = await _result(ticket)
            if outcome is None:
                yield json.dumps(_lost())
                yield "[DONE]"
                return
        result = outcome
        if result.get("error"):
            chunk["choices"][0]["finish_reason"] = None
            if _has_content(chunk, chat):
                yield json.dumps(chunk)
            yield json.dumps(_mod_error(str(result["error"]))[1])
            yield "[DONE]"
            return
        if result.get("tool_calls"):
            if chat:
                head = json.loads(json.dumps(chunk))
                head["choices"][0]["delta"] = {
                    "role": "assistant",
                    "tool_calls": _tool_calls(result["tool_calls"], ticket),
                }
                head["choices"][0]["finish_reason"] = None
                yield json.dumps(head)
            else:
                chunk.setdefault("quote", {})["tool_calls"] = _tool_calls(
                    result["tool_calls"], ticket
                )
            chunk["choices"][0]["finish_reason"] = "tool_calls"
        if "trace" in result:
            chunk.setdefault("quote", {})["trace"] = result["trace"]
        yield json.dumps(chunk)
    if not done:
        yield "[DONE]"


def _finish_reason(chunk: Any) -> str | None:
    if not isinstance(chunk, dict):
        return None
    choices = chunk.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return None
    reason = choices[0].get("finish_reason")
    return str(reason) if reason else None


def _has_content(chunk: dict[str, Any], chat: bool) -> bool:
    c = chunk["choices"][0]
    return bool((c.get("delta") or {}).get("content")) if chat else bool(c.get("text"))
