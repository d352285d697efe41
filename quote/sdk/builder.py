# SPDX-License-Identifier: Apache-2.0
"""``ActionBuilder``: builds only the actions that are legal for the current event."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from quote.sdk.actions import (
    LEGAL_EVENTS,
    AdjustedLogits,
    AdjustedPrefill,
    Backtrack,
    EmitError,
    ForceOutput,
    ForceTokens,
    Noop,
    ToolCall,
    ToolCalls,
)
from quote.sdk.errors import InvalidActionError
from quote.sdk.events import EVENT_NAMES, Event

__all__ = ["ActionBuilder"]


class ActionBuilder:
    """Factory of actions for one event; illegal actions raise :class:`InvalidActionError`.

    Example:
        >>> actions.force_tokens([42])  # doctest: +SKIP
    """

    __slots__ = ("_kind",)

    def __init__(self, event: Event) -> None:
        self._kind: type = type(event)

    @classmethod
    def for_event_type(cls, kind: type) -> ActionBuilder:
        """The (stateless, shared) builder for events of class ``kind``."""
        builder = _BUILDERS.get(kind)
        if builder is None:
            builder = cls.__new__(cls)
            builder._kind = kind
            _BUILDERS[kind] = builder
        return builder

    def _check(self, action_cls: type) -> None:
        if self._kind not in LEGAL_EVENTS[action_cls]:
            legal = sorted(EVENT_NAMES[e] for e in LEGAL_EVENTS[action_cls])
            raise InvalidActionError(
                f"{action_cls.__name__} is not legal at {EVENT_NAMES[self._kind]}; "
                f"it is legal at: {', '.join(legal)}"
            )

    def noop(self) -> Noop:
        """Do nothing (legal everywhere)."""
        return Noop()

    def adjust_prefill(
        self, tokens: Iterable[int], max_steps: int | None = None
    ) -> AdjustedPrefill:
        """Replace the prompt (``Prefilled`` only)."""
        self._check(AdjustedPrefill)
        return AdjustedPrefill(tuple(tokens), max_steps)

    def force_tokens(self, tokens: Iterable[int]) -> ForceTokens:
        """Append tokens (legal everywhere)."""
        self._check(ForceTokens)
        return ForceTokens(tuple(tokens))

    def adjust_logits(
        self,
        logits: npt.NDArray[np.float32] | None = None,
        *,
        allow: Iterable[int] | None = None,
        ban: Iterable[int] | None = None,
        bias: Mapping[int, float] | None = None,
        temperature: float | None = None,
        allow_bitmask: npt.NDArray[np.int32] | None = None,
    ) -> AdjustedLogits:
        """Replace or sparsely edit this step's logits (``ForwardPass`` only).

        ``allow_bitmask`` is a packed allow-mask (see :class:`AdjustedLogits`).
        """
        self._check(AdjustedLogits)
        return AdjustedLogits(
            logits=logits,
            allow=None if allow is None else tuple(allow),
            ban=None if ban is None else tuple(ban),
            bias=bias,
            temperature=temperature,
            allow_bitmask=allow_bitmask,
        )

    def backtrack(self, n: int, tokens: Iterable[int] | None = None) -> Backtrack:
        """Remove the last ``n`` generated tokens, then append ``tokens``."""
        self._check(Backtrack)
        return Backtrack(n, None if tokens is None else tuple(tokens))

    def force_output(self, tokens: Iterable[int]) -> ForceOutput:
        """End the request with exactly ``tokens`` as its completion."""
        self._check(ForceOutput)
        return ForceOutput(tuple(tokens))

    def tool_calls(self, calls: Iterable[ToolCall | Mapping[str, Any]]) -> ToolCalls:
        """End the request with these tool calls."""
        self._check(ToolCalls)
        return ToolCalls(tuple(calls))  # type: ignore[arg-type]

    def emit_error(self, message: str) -> EmitError:
        """End the request with an error."""
        self._check(EmitError)
        return EmitError(str(message))


_BUILDERS: dict[type, ActionBuilder] = {}
