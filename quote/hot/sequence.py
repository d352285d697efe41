# SPDX-License-Identifier: Apache-2.0
"""Token-buffer surgery on MAX ``TextContext`` objects, in one place.

MAX 26.7 has no public way to delete tokens from a context, so truncation sets
``TokenBuffer``'s private fields here (and only here; tests cover each use):
``_current_length``, ``_processing_range``, ``_processing_offset``,
``_prompt_length``, ``_completion_range``, plus ``ctx._log_probabilities_data``
and ``ctx.status``.

The model is: a request's sequence is ``tokens.all``; the first ``kv_valid``
tokens have KV entries that match the sequence; the next forward pass runs every
token from ``min(kv_valid, len - 1)`` to the end as one chunk, so its last-token
logits equal those of a fresh prefill of the sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "append_tokens",
    "deliver",
    "delivered",
    "length",
    "replace_prompt",
    "schedule_forward",
    "tokens_between",
    "truncate",
    "window_start",
]


_RANGE: Any = None


def _range(start: int, end: int) -> Any:
    global _RANGE
    if _RANGE is None:
        from max.pipelines.context.tokens import Range

        _RANGE = Range
    return _RANGE(start, end)


def append_tokens(ctx: Any, tokens: Sequence[int]) -> None:
    """Append ``tokens`` to the sequence (no status change, no forward scheduling)."""
    buf = ctx.tokens
    if not tokens:
        return
    new_len = buf._current_length + len(tokens)
    if new_len >= buf.array.size:  # MAX's own growth rule (``_expand_capacity``)
        buf._expand_capacity(new_len)
    if len(tokens) == 1:
        buf.array[buf._current_length] = tokens[0]
    else:
        buf.array[buf._current_length : new_len] = np.asarray(tokens, dtype=np.int64)
    buf._current_length = new_len


def truncate(ctx: Any, length: int) -> None:
    """Drop every token at index ``>= length`` (never into the prompt)."""
    buf = ctx.tokens
    if length < buf._prompt_length:
        raise ValueError(f"cannot truncate to {length}: the prompt has {buf._prompt_length} tokens")
    if length > buf._current_length:
        raise ValueError(f"cannot truncate to {length}: the sequence has {buf._current_length}")
    buf._current_length = length
    for pos in [p for p in ctx._log_probabilities_data if p >= length]:
        del ctx._log_probabilities_data[pos]


def length(ctx: Any) -> int:
    """Tokens in the sequence (``len(ctx.tokens)`` without building a slice)."""
    n: int = ctx.tokens._current_length
    return n


def schedule_forward(ctx: Any, kv_valid: int, delivered_end: int) -> int:
    """Make the next forward run tokens ``[min(kv_valid, len-1), len)`` as one chunk.

    ``delivered_end`` is the absolute index up to which tokens were handed to the
    client; MAX's completion range is set to start there. Returns the chunk's length.
    The range objects are updated in place, as MAX's own ``advance_with_token`` does.
    """
    buf = ctx.tokens
    length_: int = buf._current_length
    start = max(0, min(kv_valid, length_ - 1))
    rng = buf._processing_range
    rng.start, rng.end = start, length_
    buf._processing_offset = 0
    buf._actively_chunked = False
    rng = buf._completion_range
    rng.start, rng.end = min(max(delivered_end, buf._prompt_length), length_), length_
    ctx.status = _active()
    return length_ - start


def window_start(ctx: Any) -> int:
    """Index of the first token the next (or current) forward pass processes (MAX's
    ``tokens.active`` starts there)."""
    buf = ctx.tokens
    return int(buf._processing_range.start) + int(buf._processing_offset)


def tokens_between(ctx: Any, start: int, end: int) -> list[int]:
    """The token ids at absolute positions ``[start, end)`` as a list."""
    out: list[int] = ctx.tokens.array[start:end].tolist()
    return out


def deliver(ctx: Any, delivered_end: int) -> None:
    """Record that tokens before absolute index ``delivered_end`` reached the client."""
    buf = ctx.tokens
    buf._completion_range.start = min(delivered_end, buf._current_length)


def delivered(ctx: Any) -> int:
    """Generated tokens already handed to the client (MAX's completion range start)."""
    buf = ctx.tokens
    return max(0, int(buf._completion_range.start) - int(buf._prompt_length))


def replace_prompt(ctx: Any, prompt: Sequence[int]) -> None:
    """Replace the whole sequence by ``prompt`` (before the first forward pass)."""
    buf = ctx.tokens
    n = len(prompt)
    buf._expand_capacity(n)
    buf.array[:n] = np.asarray(prompt, dtype=np.int64)
    buf._current_length = n
    buf._prompt_length = n
    buf._processing_range = _range(0, n)
    buf._processing_offset = 0
    buf._actively_chunked = False
    buf._completion_range = _range(n, n)
    ctx._log_probabilities_data.clear()


_ACTIVE: Any = None


def _active() -> Any:
    global _ACTIVE
    if _ACTIVE is None:
        from max.pipelines.context.status import GenerationStatus

        _ACTIVE = GenerationStatus.ACTIVE
    return _ACTIVE
