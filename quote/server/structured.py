# SPDX-License-Identifier: Apache-2.0
"""Built-in structured output: ``response_format`` and ``tool_choice`` as Quote constraints.

:func:`read_constraint` takes the OpenAI fields out of a request body (MAX never sees
them) and turns them into the engine's constraint spec (``quote.hot.constraint``):

* ``response_format: {"type": "json_object"}`` -> any JSON object;
* ``response_format: {"type": "json_schema", "json_schema": {"schema": ..., "strict": ...}}``
  -> a value valid against that schema (strict or not: always enforced; ``strict: true``
  also refuses object properties the schema does not list, unless its
  ``additionalProperties`` says otherwise);
* ``tool_choice: "required"`` or ``{"type": "function", "function": {"name": ...}}`` -> one
  call ``{"name": ..., "arguments": ...}`` whose arguments match the tool's ``parameters``,
  returned as ``message.tool_calls``;
* ``tool_choice: "none"`` -> a mod's ``ToolCalls`` fails the request.

:func:`check_constraint` compiles the schema once in the API process, within a budget
(``QUOTE_GRAMMAR_BUDGET_S``, default 2 s), so bad input is a 400 naming what is wrong.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from quote.sdk.grammar import DEFAULT_BUDGET_S, GrammarError, GrammarSpec, compile_grammar
from quote.sdk.grammar import llg_tokenizer as _llg_tokenizer
from quote.server.options import QuoteHTTPError

__all__ = ["budget_s", "check_constraint", "read_constraint"]


def budget_s() -> float:
    """The compile budget in seconds (``QUOTE_GRAMMAR_BUDGET_S``)."""
    try:
        return float(os.environ.get("QUOTE_GRAMMAR_BUDGET_S", DEFAULT_BUDGET_S))
    except ValueError:
        return DEFAULT_BUDGET_S


def _bad(message: str, param: str) -> QuoteHTTPError:
    return QuoteHTTPError(400, message, "invalid_request_error", "invalid_value", param=param)


def _response_schema(rf: Any) -> tuple[dict[str, Any] | bool | None, bool]:
    """The schema a ``response_format`` asks for (None: free text) and its ``strict`` flag."""
    if rf is None:
        return None, False
    if not isinstance(rf, dict) or not isinstance(rf.get("type"), str):
        raise _bad("'response_format' must be an object with a 'type'", "response_format")
    kind = rf["type"]
    if kind == "text":
        return None, False
    if kind == "json_object":
        return {"type": "object"}, False
    if kind != "json_schema":
        raise _bad(
            f"response_format type '{kind}' is not supported (use text, json_object or "
            "json_schema)",
            "response_format.type",
        )
    spec = rf.get("json_schema")
    if not isinstance(spec, dict):
        raise _bad("response_format json_schema needs a 'json_schema' object", "response_format")
    schema = spec.get("schema", {})
    if not isinstance(schema, dict | bool):
        raise _bad("'json_schema.schema' must be a JSON schema object", "response_format")
    return schema, spec.get("strict") is True


def _tools(body: dict[str, Any]) -> dict[str, tuple[dict[str, Any], bool]]:
    out: dict[str, tuple[dict[str, Any], bool]] = {}
    for tool in body.get("tools") or []:
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise _bad("each tool needs {'type': 'function', 'function': {'name': ...}}", "tools")
        params = fn.get("parameters")
        schema = params if isinstance(params, dict) else {"type": "object"}
        out[fn["name"]] = schema, fn.get("strict") is True
    return out


def _call_schema(name: str, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"name": {"const": name}, "arguments": params},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def read_constraint(body: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    """Pop ``response_format`` / ``tool_choice`` from ``body``: (constraint spec, no_tools)."""
    schema, strict = _response_schema(body.pop("response_format", None))
    choice = body.pop("tool_choice", None)
    plain = {"schema": schema, "tools": None, "strict": strict} if schema is not None else None
    if choice in (None, "auto"):
        return plain, False
    if choice == "none":
        return plain, True
    tools = _tools(body)
    if choice == "required":
        names = list(tools)
    elif isinstance(choice, dict) and isinstance((choice.get("function") or {}).get("name"), str):
        names = [choice["function"]["name"]]
        if names[0] not in tools:
            raise _bad(f"tool_choice names '{names[0]}', which is not in 'tools'", "tool_choice")
    else:
        raise _bad(
            "tool_choice must be 'none', 'auto', 'required' or "
            "{'type': 'function', 'function': {'name': ...}}",
            "tool_choice",
        )
    if not names:
        raise _bad("tool_choice 'required' needs at least one tool in 'tools'", "tools")
    calls = [_call_schema(n, tools[n][0]) for n in names]
    call_schema = calls[0] if len(calls) == 1 else {"anyOf": calls}
    strict = all(tools[n][1] for n in names)
    return {"schema": call_schema, "tools": names, "strict": strict}, False


async def check_constraint(spec: dict[str, Any], tokenizer: Any) -> None:
    """Compile ``spec`` for ``tokenizer`` within the budget; 400 naming what is wrong."""
    param = "tools" if spec.get("tools") else "response_format"
    try:
        lltok = _llg_tokenizer(tokenizer)
        await asyncio.to_thread(
            compile_grammar,
            GrammarSpec.json_schema(spec["schema"], strict=bool(spec.get("strict"))),
            lltok,
            budget_s(),
        )
    except GrammarError as exc:
        raise _bad(str(exc), param) from exc
