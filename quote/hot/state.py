# SPDX-License-Identifier: Apache-2.0
"""Per-request engine state (one dataclass) and the options a caller attaches to a request."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from quote.hot.constraint import Constraint
from quote.mods.session import ModSession
from quote.sdk.context import Conversation, RequestInfo
from quote.sdk.mod import ModDefinition

__all__ = ["FinishReason", "RequestOptions", "RequestState", "Trace", "MAX_TRACE_ENTRIES"]

MAX_TRACE_ENTRIES = 2048
"""A trace keeps at most this many entries; later ones are counted, not stored."""

FinishReason = str
"""One of ``"stop"``, ``"length"``, ``"tool_calls"``, ``"error"``."""


@dataclass
class RequestOptions:
    """What a caller asks of Quote for one request.

    Attributes:
        mods: The request's mods, run in this order.
        args: Free-form per-request arguments for the mods (``RequestInfo.mod_args``).
        stream: Whether tokens are streamed; a non-streaming request withholds its whole
            completion until the end, so its mods may backtrack anywhere in it.
        trace: Record a structured trace of events, actions, mod logs and timings.
        conversation: Chat messages, tools and response_format for the SDK helpers.
        constraint: Built-in structured output: ``{"schema": {...}, "tools": [...] | None}``
            (see :mod:`quote.hot.constraint`); None for free text.
        no_tools: ``tool_choice: "none"``: a mod's ``ToolCalls`` fails the request.
        choice_index: Which of the request's ``n`` choices this generation is.
    """

    mods: Sequence[ModDefinition] = ()
    args: dict[str, Any] = field(default_factory=dict)
    stream: bool = True
    trace: bool = False
    conversation: Conversation = field(default_factory=Conversation)
    constraint: dict[str, Any] | None = None
    no_tools: bool = False
    choice_index: int = 0


@dataclass
class Trace:
    """A bounded, in-memory record of one request's events, actions and mod logs."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0
    started: float = field(default_factory=time.perf_counter)

    def add(self, **entry: Any) -> None:
        """Record one entry (timestamped in ms since the request started)."""
        if len(self.entries) >= MAX_TRACE_ENTRIES:
            self.dropped += 1
            return
        entry["t_ms"] = round((time.perf_counter() - self.started) * 1000.0, 3)
        self.entries.append(entry)

    def to_dict(self, logs: list[str]) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {"entries": list(self.entries), "dropped": self.dropped, "mod_logs": list(logs)}


@dataclass
class RequestState:
    """Everything the engine keeps for one live request; freed when it is released."""

    request_id: str
    session: ModSession | None
    info: RequestInfo
    stream: bool = True
    trace: Trace | None = None
    prefilled: bool = False
    step: int = 0
    prompt_len: int = 0
    max_len: int = 0
    kv_valid: int = 0
    delivered: int = 0
    backtracks: int = 0
    rewound: bool = False
    finish_reason: FinishReason | None = None
    stop_status: Any = None
    error: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    forward_passes: int = 0
    edits_sampling: bool = False
    raw_id: Any = None
    ticket: str | None = None
    constraint: Constraint | None = None
    no_tools: bool = False
    lp_pending: set[int] | None = None
    """Positions whose log probability waits for the next forward pass (None: not tracked;
    see :mod:`quote.hot.logprobs`)."""
    echo_prompt: bool = False
    """The echoed prompt's log probabilities are still to be delivered."""

    @property
    def finished(self) -> bool:
        """Whether a terminal action, an error, EOS or the length cap ended the request."""
        return self.finish_reason is not None

    @property
    def hold_back(self) -> int:
        """Generated tokens withheld from the client while the request runs."""
        if not self.stream or (self.constraint is not None and self.constraint.tools):
            return 1 << 62  # a tool call is sent whole, at the end
        return self.session.hold_back if self.session is not None else 0

    def result(self, completion: list[int]) -> dict[str, Any]:
        """The request's outcome, for in-process callers and the server."""
        out: dict[str, Any] = {
            "finish_reason": self.finish_reason,
            "completion_tokens": completion,
            "error": self.error,
            "tool_calls": self.tool_calls,
            "forward_passes": self.forward_passes,
        }
        if self.trace is not None:
            out["trace"] = self.trace.to_dict(self.info.logs)
        return out
