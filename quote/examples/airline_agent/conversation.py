# SPDX-License-Identifier: Apache-2.0
"""What the agent reads from the conversation, gathered once per request in :class:`AgentState`.

:meth:`AgentState.for_request` is the flow's ``state_factory``: it runs at the start of each
request (one turn) and keeps the user's texts, this turn's tool results, the tools the request
declares and whether the agent's last reply asked the user to confirm a change.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from quote.sdk import Conversation, get_conversation

from .replies import CONFIRM_SUFFIX, NEED_DATE_REPLY

__all__ = ["AgentState", "ToolResult", "call_parts"]

ID_PATTERN = "[A-Z0-9]{6}"


def _text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", "")) if isinstance(p, Mapping) else str(p) for p in content
        )
    return str(content or "")


def call_parts(call: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(name, arguments)`` of an OpenAI-style (or flat) tool call."""
    fn = call.get("function")
    fn = fn if isinstance(fn, Mapping) else call
    args: Any = fn.get("arguments") or {}
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            args = {}
    return str(fn.get("name", "")), dict(args) if isinstance(args, Mapping) else {}


def _result_json(message: Mapping[str, Any]) -> dict[str, Any]:
    """A tool result's content as a JSON object (``{"raw": text}`` when it is not one)."""
    content = _text(message.get("content"))
    try:
        value = json.loads(content)
    except ValueError:
        return {"raw": content}
    return dict(value) if isinstance(value, Mapping) else {"raw": value}


@dataclass(frozen=True)
class ToolResult:
    """One tool call of this turn and what the client answered."""

    name: str
    arguments: dict[str, Any]
    result: dict[str, Any]


@dataclass
class AgentState:
    """One turn's view of the conversation (the flow's per-request state).

    A *task* is what the user asks from one of the agent's final replies to the next: a
    reply that asks the user something (a confirmation, the travel date) keeps the task
    open, so the answer is read together with the request it answers.

    Attributes:
        request_id: The request (one turn).
        user_texts: The texts of the current task's user messages, latest first.
        results: This turn's tool calls with their results (after the last user message).
        tools: The names of the tools the request declares.
        confirming: The agent's last reply asked the user to confirm a change.
        answers: The flow's answers (filled by the engine).
    """

    request_id: str
    user_texts: list[str] = field(default_factory=list)
    results: list[ToolResult] = field(default_factory=list)
    tools: frozenset[str] = frozenset()
    confirming: bool = False
    answers: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_request(cls, request_id: str) -> AgentState:
        """Read the request's conversation (the ``state_factory`` of the agent's flow)."""
        return cls.from_conversation(request_id, get_conversation())

    @classmethod
    def from_conversation(cls, request_id: str, conv: Conversation) -> AgentState:
        """The state of a turn whose conversation is ``conv``."""
        messages = conv.messages
        users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
        last = users[-1] if users else -1
        replies = [
            _text(m.get("content"))
            for m in messages[: max(last, 0)]
            if m.get("role") == "assistant" and _text(m.get("content"))
        ]
        turn = Conversation(messages=messages[last + 1 :], tools=conv.tools)
        results = [
            ToolResult(*call_parts(call), _result_json(res))
            for call, res in turn.tool_call_pairs()
            if res is not None
        ]
        return cls(
            request_id,
            user_texts=_task_texts(messages),
            results=results,
            tools=frozenset(_tool_names(conv.tools)),
            confirming=bool(replies) and replies[-1].endswith(CONFIRM_SUFFIX),
        )

    def result(self, name: str, **match: str) -> dict[str, Any] | None:
        """The latest result of tool ``name`` this turn whose arguments include ``match``."""
        for r in reversed(self.results):
            if r.name == name and all(
                str(r.arguments.get(k, "")).upper() == v.upper() for k, v in match.items()
            ):
                return r.result
        return None

    def called_id(self) -> str | None:
        """The reservation id of this turn's latest tool call that carries one."""
        for r in reversed(self.results):
            rid = str(r.arguments.get("reservation_id", "")).upper()
            if re.fullmatch(ID_PATTERN, rid):
                return rid
        return None


def _asks_user(reply: str) -> bool:
    """Whether an agent reply asks the user something (the task goes on)."""
    return reply.endswith(CONFIRM_SUFFIX) or reply == NEED_DATE_REPLY


def _task_texts(messages: list[dict[str, Any]]) -> list[str]:
    """The current task's user texts, latest first."""
    texts: list[str] = []
    for m in messages:
        content = _text(m.get("content"))
        if m.get("role") == "user":
            texts.append(content)
        elif m.get("role") == "assistant" and content and not _asks_user(content):
            texts = []
    return texts[::-1]


def _tool_names(tools: list[dict[str, Any]]) -> list[str]:
    names = []
    for tool in tools:
        fn = tool.get("function")
        spec: Mapping[str, Any] = fn if isinstance(fn, Mapping) else tool
        names.append(str(spec.get("name", "")))
    return names
