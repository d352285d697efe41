# SPDX-License-Identifier: Apache-2.0
"""Reading Quote's per-request options out of an OpenAI request body (pure logic).

* Mods are selected by the model name: ``"<served>/<mod>"`` or ``"<served>/<m1>+<m2>"``.
* Per-request options travel under a ``quote`` key, either in
  ``chat_template_kwargs`` (chat completions) or at the top level of the body
  (``extra_body={"quote": ...}`` with the ``openai`` client; chat and text completions):

  .. code-block:: json

      {"args": {"any": "json"}, "trace": true}

  ``args`` reaches the mods as ``get_request().mod_args``; ``trace`` adds the
  request's mod trace to the response under ``quote.trace``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["QuoteHTTPError", "Selection", "error_body", "select"]

ALLOWED_OPTION_KEYS = frozenset({"args", "trace"})


class QuoteHTTPError(Exception):
    """A client error with an HTTP status and an OpenAI-style body."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        """``{"error": {...}}`` as OpenAI clients expect."""
        return error_body(self.message, self.type, self.code, self.param)


def error_body(
    message: str, type_: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """An OpenAI-style error object."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


@dataclass
class Selection:
    """What a request asked of Quote, and the body to hand to MAX."""

    body: dict[str, Any]
    mods: list[str]
    options: dict[str, Any] | None

    @property
    def ticket(self) -> str | None:
        """Key of the worker's result for this request (None without mods)."""
        return None if self.options is None else str(self.options["ticket"])


def _quote_options(body: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for holder in (body, body.get("chat_template_kwargs")):
        if isinstance(holder, dict) and "quote" in holder:
            value = holder.pop("quote")
            if not isinstance(value, dict):
                raise QuoteHTTPError(
                    400, '\'quote\' must be an object like {"args": {...}, "trace": true}'
                )
            unknown = sorted(set(value) - ALLOWED_OPTION_KEYS)
            if unknown:
                raise QuoteHTTPError(
                    400, f"unknown 'quote' option(s) {unknown}; allowed: args, trace"
                )
            if "args" in value and not isinstance(value["args"], dict):
                raise QuoteHTTPError(400, "'quote.args' must be an object")
            found.update(value)
    if isinstance(body.get("chat_template_kwargs"), dict) and not body["chat_template_kwargs"]:
        del body["chat_template_kwargs"]
    return found


def select(
    body: dict[str, Any], served: str, exists: Callable[[str], bool], *, chat: bool
) -> Selection:
    """Parse the model name, Quote options and built-in constraints (``response_format``,
    ``tool_choice``); raise :class:`QuoteHTTPError` on bad input."""
    from quote.server.structured import read_constraint  # it raises this module's errors

    model = body.get("model")
    opts = _quote_options(body)
    response_format = body.get("response_format")
    constraint, no_tools = read_constraint(body)
    mods: list[str] = []
    if isinstance(model, str) and model.startswith(served + "/") and model != served:
        mods = model[len(served) + 1 :].split("+")
        for name in mods:
            if not name or not exists(name):
                raise QuoteHTTPError(
                    404,
                    f"mod '{name}' is not registered on this server (model '{model}'); "
                    "GET /v1/mods lists the registered mods",
                    "not_found_error",
                    "model_not_found",
                )
        body["model"] = served
    if not mods and constraint is None and not no_tools:
        return Selection(body, [], None)
    conversation = {
        "messages": body.get("messages") if chat else [],
        "tools": body.get("tools") or [],
        "response_format": response_format,
    }
    options = {
        "mods": mods,
        "args": opts.get("args") or {},
        "trace": bool(opts.get("trace", False)),
        "stream": bool(body.get("stream", False)),
        "conversation": conversation,
        "ticket": uuid.uuid4().hex,
        "constraint": constraint,
        "no_tools": no_tools,
        "choice_index": 0,  # set per choice when a request asks for n > 1
    }
    return Selection(body, mods, options)
