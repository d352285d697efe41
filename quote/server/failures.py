# SPDX-License-Identifier: Apache-2.0
"""How failures reach an OpenAI client: MAX's errors reshaped, and the model worker's death.

* :func:`max_error` / :func:`normalise_error`: MAX's own 4xx/5xx in OpenAI's shape
  (``param``/``code`` null rather than ``""``/``"400"``; the reason behind MAX's bare
  ``"Value error."``);
* :func:`unless_worker_dies` / :func:`guard_stream`: if the model worker dies, a waiting
  request gets 503 at once and an open stream ends with an error event and ``[DONE]``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from fastapi import HTTPException, Response
from fastapi.responses import JSONResponse

from quote.server.options import error_body
from quote.server.worker_link import link

__all__ = ["guard_stream", "max_error", "normalise_error", "unless_worker_dies", "worker_died"]


def _kind(status: int) -> str:
    return "server_error" if status >= 500 else "invalid_request_error"


def max_error(exc: HTTPException) -> JSONResponse:
    """MAX's ``HTTPException`` as an OpenAI error, with the real reason behind "Value error."."""
    detail = str(exc.detail)
    if detail == "Value error." and isinstance(exc.__cause__, ValueError):
        detail = str(exc.__cause__)
    return JSONResponse(error_body(detail, _kind(exc.status_code)), status_code=exc.status_code)


def normalise_error(response: Response) -> Response:
    """A MAX error response in OpenAI's shape (``param``/``code`` null rather than ``""``)."""
    try:
        data = json.loads(bytes(response.body))
    except (AttributeError, TypeError, ValueError):
        return response
    err = data.get("error") if isinstance(data, dict) else None
    status = response.status_code
    if not isinstance(err, dict):
        message = (data.get("message") or data.get("detail")) if isinstance(data, dict) else data
        return JSONResponse(error_body(str(message), _kind(status)), status)
    code = err.get("code")
    body = error_body(
        str(err.get("message", "")),
        str(err.get("type") or _kind(status)),
        None if code in ("", None) or str(code).isdigit() else str(code),
        err.get("param") or None,
    )
    return JSONResponse(body, status)


def worker_died(reason: str) -> dict[str, Any]:
    """The error body of a request that the model worker's death cut short."""
    return error_body(
        f"{reason}; the request was not completed and the server is shutting down",
        "server_error",
        "worker_died",
    )


async def unless_worker_dies(call: Awaitable[Any]) -> Any:
    """Await MAX's handler, or answer 503 at once if the model worker dies meanwhile."""
    current = link()
    if current is None:
        return await call
    task = asyncio.ensure_future(call)
    death = current.death()
    await asyncio.wait({task, death}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        return task.result()
    task.cancel()
    return JSONResponse(worker_died(str(death.result())), status_code=503)


async def guard_stream(items: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """Pass a stream's events on; if the worker dies mid-stream, end with an error and [DONE]."""
    current = link()
    if current is None:
        async for item in items:
            yield item
        return
    death = current.death()
    it = aiter(items)
    while True:
        step = asyncio.ensure_future(anext(it))
        try:
            await asyncio.wait({step, death}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not step.done():
                step.cancel()
        if not step.done() or step.cancelled():
            yield json.dumps(worker_died(str(death.result())))
            yield "[DONE]"
            return
        try:
            item = step.result()
        except StopAsyncIteration:
            return
        yield item
