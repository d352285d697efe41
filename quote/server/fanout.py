# SPDX-License-Identifier: Apache-2.0
"""Running one OpenAI request as ``n`` MAX requests (its choices) and joining the answers.

Each choice is its own generation: its own MAX request id (``<id>-<i>`` for ``i >= 1``),
its own seed (:func:`quote.server.params.choice_seed`), and, with mods, its own mod
instances and result ticket (Quote options ``ticket`` and ``choice_index``). Whole
responses are joined into one (choices re-indexed, ``usage`` added up: the prompt
counted once, completion tokens of every choice); streams are interleaved as chunks
arrive, each chunk carrying its choice's ``index``, with one usage chunk and one
``[DONE]`` at the end. A choice that fails (a mod error, a MAX error) fails the request.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from quote.pipelines.context import pending_options
from quote.server.failures import max_error, normalise_error
from quote.server.params import choice_seed
from quote.server.shaping import ChoiceStream, Shape, event_text, parse_event, shape_response

__all__ = [
    "call_all",
    "call_choice",
    "choice_plans",
    "join_responses",
    "join_stream_responses",
    "join_streams",
]

logger = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Any]]
ChoicePlan = tuple[dict[str, Any], dict[str, Any] | None]


def choice_plans(body: dict[str, Any], options: dict[str, Any] | None, n: int) -> list[ChoicePlan]:
    """Per choice: the body MAX gets (seed offset, no ``n``) and the Quote options (own ticket).

    ``echo`` reaches MAX only with ``logprobs`` (the worker then computes the prompt tokens'
    log probabilities; the API prepends the prompt text itself).
    """
    plans: list[ChoicePlan] = []
    echo_logprobs = bool(body.get("echo")) and bool(body.get("logprobs"))
    for i in range(n):
        b = dict(body)
        for key in ("n", "best_of") if echo_logprobs else ("n", "best_of", "echo"):
            b.pop(key, None)
        if isinstance(b.get("seed"), int):
            b["seed"] = choice_seed(b["seed"], i)
        opts = None
        if options is not None:
            opts = dict(options, choice_index=i)
            if i:
                opts["ticket"] = uuid.uuid4().hex
        plans.append((b, opts))
    return plans


def sub_request(request: Request, body: bytes, index: int = 0) -> Request:
    """``request`` with ``body`` (and, past choice 0, its own request id)."""
    scope = request.scope
    if index:
        state = dict(scope.get("state") or {})
        state["request_id"] = f"{state.get('request_id') or uuid.uuid4().hex}-{index}"
        scope = {**scope, "state": state}
    sent = False

    async def receive() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await request.receive()  # after the body: wait for the client to leave

    return Request(scope, receive)


async def call_choice(request: Request, handler: Handler, plan: ChoicePlan, index: int) -> Any:
    """Run MAX's handler for one choice; MAX's HTTP errors come back as OpenAI error responses."""
    body, opts = plan
    pending_options.set(opts)
    try:
        return await handler(sub_request(request, json.dumps(body).encode(), index))
    except HTTPException as exc:
        return max_error(exc)


async def call_all(request: Request, handler: Handler, plans: list[ChoicePlan]) -> list[Any]:
    """Every choice's MAX response; choices past the first run concurrently in their own tasks
    (so each has its own Quote options); all are cancelled if one raises."""
    if len(plans) == 1:
        return [await call_choice(request, handler, plans[0], 0)]
    tasks = [
        asyncio.ensure_future(call_choice(request, handler, plan, i))
        for i, plan in enumerate(plans)
    ]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()


def _usage(usages: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """The prompt counted once (every choice had the same), completion tokens added up."""
    if not usages or not usages[0]:
        return None
    out = copy.deepcopy(usages[0])
    out["completion_tokens"] = sum(int((u or {}).get("completion_tokens") or 0) for u in usages)
    out["total_tokens"] = int(out.get("prompt_tokens") or 0) + out["completion_tokens"]
    details = out.get("completion_tokens_details")
    if isinstance(details, dict) and details.get("reasoning_tokens") is not None:
        details["reasoning_tokens"] = sum(
            int(((u or {}).get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
            for u in usages
        )
    return out


async def join_responses(
    results: list[Any],
    plans: list[ChoicePlan],
    shape: Shape,
    finish: Callable[[dict[str, Any], str, bool], Awaitable[JSONResponse]],
) -> Response:
    """Whole responses of every choice -> one response (or the first error)."""
    datas = []
    for result, (_, opts) in zip(results, plans, strict=True):
        if isinstance(result, Response):
            return normalise_error(result) if result.status_code >= 400 else result
        data = jsonable_encoder(result)
        if opts is not None:
            done = await finish(data, str(opts["ticket"]), shape.chat)
            if done.status_code != 200:
                return done
            data = json.loads(bytes(done.body))
        datas.append(shape_response(data, shape))
    n = len(datas)
    joined = datas[0]
    if n > 1:
        choices = []
        for i, data in enumerate(datas):
            for choice in data.get("choices") or []:
                choice["index"] = int(choice.get("index") or 0) * n + i
                choices.append(choice)
        joined["choices"] = sorted(choices, key=lambda c: c["index"])
        joined["usage"] = _usage([d.get("usage") for d in datas])
    return JSONResponse(joined)


async def join_stream_responses(
    request: Request,
    results: list[Any],
    plans: list[ChoicePlan],
    shape: Shape,
    finish: Callable[[AsyncIterator[Any], str, bool], AsyncIterator[Any]],
    guard: Callable[[AsyncIterator[Any]], AsyncIterator[Any]],
) -> Any:
    """One SSE response from the choices' streaming responses (or the first error response).

    ``finish`` adds a ticketed choice's Quote outcome to its stream; ``guard`` watches the
    joined stream for the worker's death.
    """
    error = next((r for r in results if not hasattr(r, "body_iterator")), None)
    if error is not None:
        for r in results:
            if hasattr(getattr(r, "body_iterator", None), "aclose"):
                await r.body_iterator.aclose()
        if isinstance(error, Response) and error.status_code >= 400:
            return normalise_error(error)
        return error
    response_id = str(request.state.request_id) if len(results) > 1 else None
    streams = []
    for i, (response, (_, opts)) in enumerate(zip(results, plans, strict=True)):
        items = response.body_iterator
        if opts is not None:
            items = finish(items, str(opts["ticket"]), shape.chat)
        streams.append(shape_stream(items, ChoiceStream(shape, i, response_id)))
    options = plans[0][0].get("stream_options")
    usage = isinstance(options, dict) and bool(options.get("include_usage"))
    first = results[0]
    first.body_iterator = guard(join_streams(streams, usage))
    return first


async def shape_stream(items: AsyncIterator[Any], choice: ChoiceStream) -> AsyncIterator[Any]:
    """One choice's stream, reshaped; usage chunks, errors and ``[DONE]`` pass unchanged."""
    async for item in items:
        text = event_text(item)
        data = parse_event(text) if text is not None else None
        if data is None or not data.get("choices"):
            if data is not None and "usage" in data and choice.response_id is not None:
                item = json.dumps(dict(data, id=choice.response_id))
            yield item
            continue
        shaped = choice.chunk(data)
        if shaped is not None:
            yield json.dumps(shaped)


async def join_streams(
    streams: list[AsyncIterator[Any]], include_usage: bool
) -> AsyncIterator[Any]:
    """Interleave the choices' streams; one usage chunk (if asked) and one ``[DONE]`` at the end.

    An error event from any choice ends the whole stream (after it, ``[DONE]``).
    """
    if len(streams) == 1:
        async for item in streams[0]:
            yield item
        return
    queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
    end = object()

    async def pump(i: int, items: AsyncIterator[Any]) -> None:
        try:
            async for item in items:
                await queue.put((i, item))
        finally:
            await queue.put((i, end))

    tasks = [asyncio.ensure_future(pump(i, s)) for i, s in enumerate(streams)]
    usages: list[dict[str, Any] | None] = [None] * len(streams)
    last: dict[str, Any] | None = None
    try:
        running = len(streams)
        while running:
            i, item = await queue.get()
            if item is end:
                running -= 1
                continue
            text = event_text(item)
            if text == "[DONE]":
                continue
            data = parse_event(text) if text is not None else None
            if data is not None and "error" in data:
                yield item
                break
            if data is not None and not data.get("choices") and data.get("usage"):
                usages[i], last = data["usage"], data
                continue
            yield item
        else:
            if include_usage and last is not None:
                yield json.dumps(dict(last, usage=_usage(usages)))
        yield "[DONE]"
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
