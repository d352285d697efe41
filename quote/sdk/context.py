# SPDX-License-Identifier: Apache-2.0
"""Per-request information visible to a request's own mods while they run.

The engine sets the current :class:`RequestInfo` (a context variable) around each
mod call, so helpers such as :func:`get_request` / :func:`get_conversation` /
:func:`mod_log` return or record data of that request only.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Conversation",
    "RequestInfo",
    "current_request",
    "get_conversation",
    "get_request",
    "mod_log",
]


@dataclass
class Conversation:
    """The request's chat messages, tool schemas and response_format (as sent by the client)."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)
    response_format: dict[str, Any] | None = None

    def tool_call_pairs(self) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
        """Assistant tool calls matched with their tool result message by ``tool_call_id``.

        Returns ``(call, result_message_or_None)`` in the order the calls were made.
        """
        results: dict[str, dict[str, Any]] = {}
        for m in self.messages:
            if m.get("role") == "tool" and m.get("tool_call_id"):
                results[str(m["tool_call_id"])] = m
        pairs: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        for m in self.messages:
            if m.get("role") != "assistant":
                continue
            for call in m.get("tool_calls") or []:
                pairs.append((call, results.get(str(call.get("id")))))
        return pairs

    def json_schema(self) -> dict[str, Any] | None:
        """The JSON schema of a ``response_format`` of type ``json_schema``, if any."""
        rf = self.response_format or {}
        if rf.get("type") == "json_schema":
            js = rf.get("json_schema") or {}
            schema = js.get("schema")
            return dict(schema) if isinstance(schema, Mapping) else None
        return None


@dataclass
class RequestInfo:
    """What a mod may know about its request.

    Attributes:
        request_id: The engine's id of the request.
        conversation: The chat context (empty for text completions).
        mod_args: Per-request arguments for mods (``chat_template_kwargs.quote.args``).
        logs: Mod log lines recorded for the request trace.
        choice_index: Which of the request's ``n`` choices this generation is (0 when
            ``n`` is 1); each choice runs its own mod instances.
    """

    request_id: str
    conversation: Conversation = field(default_factory=Conversation)
    mod_args: dict[str, Any] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)
    max_logs: int = 256
    choice_index: int = 0


current_request: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar(
    "quote_current_request", default=None
)


@contextlib.contextmanager
def bind_request(info: RequestInfo) -> Iterator[None]:
    """Make ``info`` the current request for the duration of the block (engine use)."""
    token = current_request.set(info)
    try:
        yield
    finally:
        current_request.reset(token)


def get_request() -> RequestInfo:
    """The request the calling mod is running for (raises ``LookupError`` outside a mod call)."""
    info = current_request.get()
    if info is None:
        raise LookupError("get_request() is only available while the engine runs a mod")
    return info


def get_conversation() -> Conversation:
    """The current request's conversation (empty outside a chat request)."""
    info = current_request.get()
    return info.conversation if info is not None else Conversation()


def mod_log(message: str, *args: object) -> None:
    """Record a log line in the current request's trace (bounded; ignored outside a mod call)."""
    info = current_request.get()
    if info is None or len(info.logs) >= info.max_logs:
        return
    text = message % args if args else message
    info.logs.append(text[:2000])


def messages_of(value: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Normalise a message list to plain dicts."""
    return [dict(m) for m in value or []]
