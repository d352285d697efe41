# SPDX-License-Identifier: Apache-2.0
"""Events with the original engine's field names, as subclasses of Quote's events.

A mod written for the original engine reads ``event.context_info.tokens``,
``event.sampled_token``, ``event.added_tokens`` and ``event.logits.to_numpy()``.
These classes add those names to Quote's events (every Quote field stays), so
``isinstance(event, quote.sdk.Sampled)`` holds for them too. The compatibility
adapter builds one from each engine event before calling an original-style mod.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from quote.sdk import events as q

__all__ = [
    "Added",
    "AddedEvent",
    "ContextInfo",
    "ForwardPass",
    "ForwardPassEvent",
    "LegacyLogits",
    "ModEvent",
    "Prefilled",
    "PrefilledEvent",
    "Sampled",
    "SampledEvent",
    "as_logits_row",
    "legacy_event",
]


class LegacyLogits(np.ndarray):  # type: ignore[type-arg]
    """The logits row (1-D float32) that also answers the original's tensor API.

    ``to_numpy()`` returns a writable ``(1, vocab)`` copy, as the original's
    logits tensor did, so ``logits[0, token_id] = -np.inf`` edits work unchanged.
    """

    def to_numpy(self) -> npt.NDArray[np.float32]:
        """A writable ``(1, vocab)`` float32 copy of the row."""
        return np.array(self, dtype=np.float32, copy=True).reshape(1, -1)


def as_logits_row(value: Any) -> npt.NDArray[np.float32]:
    """A 1-D float32 row from an array, a ``(1, vocab)`` array or a tensor with ``to_numpy()``.

    Raises:
        ValueError: the value is not one row of logits.
    """
    if hasattr(value, "to_numpy"):
        value = value.to_numpy()
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise ValueError(f"logits must be one row (vocab,) or (1, vocab), got shape {arr.shape}")
    return arr


@dataclass(frozen=True)
class ContextInfo:
    """The original's ``Prefilled.context_info``: the prompt's tokens and length.

    Attributes:
        tokens: The prompt's token ids (Quote sends ``Prefilled`` once, before any
            completion token, so this is the whole context at that point).
        prompt_len: How many of ``tokens`` are the prompt (also ``_prompt_len``).
        max_tokens: The request's cap on completion tokens.
        logprobs: Always empty (kept for mods that read it).
    """

    tokens: list[int]
    prompt_len: int
    max_tokens: int
    logprobs: list[float] = field(default_factory=list)

    @property
    def _prompt_len(self) -> int:
        return self.prompt_len


class Prefilled(q.Prefilled):
    """Quote's ``Prefilled`` plus ``context_info`` and ``tokens_so_far_len``.

    Built either the Quote way (``prompt_tokens``) or the original way
    (``context_info=`` an object with ``tokens`` and ``_prompt_len``).
    """

    def __init__(
        self,
        request_id: str,
        step: int = 0,
        max_steps: int = 0,
        prompt_tokens: Sequence[int] | None = None,
        *,
        context_info: Any = None,
    ) -> None:
        if prompt_tokens is None:
            if context_info is None:
                raise TypeError("Prefilled needs prompt_tokens or context_info")
            tokens = list(context_info.tokens)
            plen = getattr(context_info, "_prompt_len", getattr(context_info, "prompt_len", None))
            prompt_tokens = tokens[: len(tokens) if plen is None else int(plen)]
        super().__init__(request_id, step, max_steps, tuple(int(t) for t in prompt_tokens))

    @property
    def context_info(self) -> ContextInfo:
        """The original's context view of the prompt."""
        return ContextInfo(list(self.prompt_tokens), len(self.prompt_tokens), self.max_steps)

    @property
    def tokens_so_far_len(self) -> int:
        """Length of the sequence so far (the prompt: nothing is generated yet)."""
        return len(self.prompt_tokens)


class ForwardPass(q.ForwardPass):
    """Quote's ``ForwardPass`` whose ``logits`` also has the original's ``to_numpy()``.

    ``logits`` may be given as a 1-D row, a ``(1, vocab)`` array, a tensor with
    ``to_numpy()`` or a zero-argument callable returning one (read lazily).
    """

    def __init__(self, request_id: str, step: int, logits: Any) -> None:
        if isinstance(logits, np.ndarray) and logits.ndim == 1:
            super().__init__(request_id, step, logits)
            return
        source = logits if callable(logits) and not hasattr(logits, "to_numpy") else None

        def load() -> npt.NDArray[np.float32]:
            return as_logits_row(source() if source is not None else logits)

        super().__init__(request_id, step, load)

    @property
    def logits(self) -> LegacyLogits:
        """The row (read-only, 1-D); ``.to_numpy()`` gives a writable ``(1, vocab)`` copy."""
        row: LegacyLogits = super().logits.view(LegacyLogits)
        return row


class Sampled(q.Sampled):
    """Quote's ``Sampled`` plus the original's ``sampled_token``."""

    def __init__(
        self,
        request_id: str,
        step: int,
        token: int | None = None,
        *,
        sampled_token: int | None = None,
    ) -> None:
        value = token if token is not None else sampled_token
        if value is None:
            raise TypeError("Sampled needs token or sampled_token")
        super().__init__(request_id, step, int(value))

    @property
    def sampled_token(self) -> int:
        """The sampled token id (Quote's ``token``)."""
        return self.token


class Added(q.Added):
    """Quote's ``Added`` plus the original's ``added_tokens``."""

    def __init__(
        self,
        request_id: str,
        step: int,
        tokens: Sequence[int] | None = None,
        forced: bool = False,
        *,
        added_tokens: Sequence[int] | None = None,
    ) -> None:
        value = tokens if tokens is not None else added_tokens
        if value is None:
            raise TypeError("Added needs tokens or added_tokens")
        super().__init__(request_id, step, tuple(int(t) for t in value), bool(forced))

    @property
    def added_tokens(self) -> list[int]:
        """The added token ids, as a list (Quote's ``tokens`` tuple)."""
        return list(self.tokens)


ModEvent = Prefilled | ForwardPass | Sampled | Added

# The names the original SDK's README used.
PrefilledEvent = Prefilled
ForwardPassEvent = ForwardPass
SampledEvent = Sampled
AddedEvent = Added


def _forward_pass(event: q.ForwardPass) -> ForwardPass:
    return ForwardPass(event.request_id, event.step, lambda: event.logits)


_CONVERT: dict[type, Callable[[Any], q.Event]] = {
    q.Prefilled: lambda e: Prefilled(e.request_id, e.step, e.max_steps, e.prompt_tokens),
    q.ForwardPass: _forward_pass,
    q.Sampled: lambda e: Sampled(e.request_id, e.step, e.token),
    q.Added: lambda e: Added(e.request_id, e.step, e.tokens, e.forced),
}


def legacy_event(event: q.Event) -> q.Event:
    """The original-style view of an engine event (returned as is if it already is one)."""
    if isinstance(event, Prefilled | ForwardPass | Sampled | Added):
        return event
    convert = _CONVERT.get(type(event))
    if convert is None:
        raise TypeError(f"not a Quote event: {event!r}")
    return convert(event)
