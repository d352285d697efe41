# SPDX-License-Identifier: Apache-2.0
"""Proposed per-step savings, applied by monkeypatching (``bench_overhead.py --patched``).

Each replacement is the code of the proposed change to ``quote/`` (see the README's
"Proposed fix" section for the diff); :func:`installed` swaps them in for a block:

(Two earlier items, no ``kv.alloc`` after a plain decode step and no ``bind_request``
context manager per mod call, are in ``quote/`` since commit 5906f81; they are not repeated.)

1. ``QuotePipeline.quote_sync_kv``: with prefix caching, a rewind that keeps every hashed
   (publishable) block is done in place, as without prefix caching, instead of release +
   re-claim, which made the regenerate step recompute up to a page (128 tokens) of tail.
3. ``execute_impl._dispatch``: read the clock only when the request is traced.
4. ``sequence.schedule_forward``: no imports inside the per-step function.
5. ``ModSession.hold_back``: computed once per session, not per step.
6. ``execute_impl.emit`` / ``_append`` and ``sequence.append_tokens``: read lengths from
   ``TokenBuffer._current_length`` (``len(ctx.tokens)`` builds a numpy slice each time),
   slice the new tokens once with ``tolist()``, write a single appended token directly.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from max.pipelines.context.outputs import TextGenerationOutput
from max.pipelines.context.status import GenerationStatus
from max.pipelines.context.tokens import Range

import quote.hot.execute_impl as ei
from quote.hot import sequence
from quote.mods import session as session_mod
from quote.mods.session import ModFailure, ModSession
from quote.pipelines.quote_pipeline import QuotePipeline
from quote.sdk.events import Event

__all__ = ["installed"]

_ACTION_TYPES = session_mod._ACTION_TYPES


def quote_sync_kv(self: Any, ctx: Any, *, rewound: bool, after_forward: bool) -> None:
    """``QuotePipeline.quote_sync_kv`` without the per-step ``alloc`` (the scheduler's job),
    rewinding in place under prefix caching when only the unpublished tail changed."""
    kv = self.kv_manager
    if after_forward:
        kv.step(ctx)
    if rewound and self.enable_prefix_caching and not _tail_only_rewind(kv, ctx):
        kv.release(ctx)
        kv.claim(ctx, replica_idx=0)
        sequence.schedule_forward(ctx, 0, ctx.tokens._completion_range.start)
    if rewound or ctx.tokens.active_length > 1:
        kv.alloc(ctx)


def _tail_only_rewind(kv: Any, ctx: Any) -> bool:
    """Whether the rewound sequence still holds every block the prefix cache has hashed.

    Then the rewind only moves back inside the request's own, unpublished last page(s), which
    nothing else shares, so rewinding in place (as without prefix caching) is exact and the
    regenerate step recomputes one token instead of the tail of the last page.
    """
    state_of = getattr(kv, "_state_of", None)
    block = int(getattr(kv, "_block_size", 0) or 0)
    if state_of is None or block <= 0:
        return False
    try:
        state = state_of(ctx)
    except ValueError:
        return False
    published = max(len(state.hashes) * block, int(state.committed_idx))
    return int(ctx.tokens._current_length) >= published


def _dispatch(row: Any, event: Event, edit: Any = None) -> list[Any]:
    """``execute_impl._dispatch`` that reads the clock only for traced requests."""
    st = row.st
    assert st.session is not None
    t0 = time.perf_counter() if st.trace is not None else 0.0
    try:
        result = st.session.dispatch(event, edit)
    except ModFailure as exc:
        ei._fail(row, str(exc))
        result = []
    if st.trace is not None:
        st.trace.add(
            step=st.step,
            event=type(event).__name__,
            actions=[f"{d.mod}:{type(d.action).__name__}" for d in result],
            ms=round((time.perf_counter() - t0) * 1000.0, 3),
        )
    return result


def schedule_forward(ctx: Any, kv_valid: int, delivered_end: int) -> None:
    """``sequence.schedule_forward`` with its imports hoisted to module level."""
    buf = ctx.tokens
    length = buf._current_length
    start = max(0, min(kv_valid, length - 1))
    buf._processing_range = Range(start, length)
    buf._processing_offset = 0
    buf._actively_chunked = False
    start_c = min(max(delivered_end, buf._prompt_length), length)
    buf._completion_range = Range(start_c, length)
    ctx.status = GenerationStatus.ACTIVE


def emit(pipeline: Any, rows: list[Any]) -> dict[Any, Any]:
    """``execute_impl.emit`` with direct length reads and one ``tolist()`` per request."""
    res: dict[Any, Any] = {}
    for r in rows:
        st, ctx = r.st, r.ctx
        buf = ctx.tokens
        if buf.actively_chunked:
            continue
        p0, cur = buf._prompt_length, buf._current_length
        n_gen = cur - p0
        if st.finished:
            ei._set_final_status(r)
            end = n_gen if st.finish_reason in ("stop", "length") else st.delivered
        else:
            end = max(st.delivered, n_gen - st.hold_back)
        new = buf.array[p0 + st.delivered : p0 + end].tolist() if end > st.delivered else []
        st.delivered = max(st.delivered, end)
        buf._completion_range.start = min(st.prompt_len + st.delivered, cur)
        if new or st.finished:
            res[ctx.request_id] = TextGenerationOutput(
                request_id=ctx.request_id, tokens=new, final_status=ctx.status
            )
        if st.finished:
            pipeline.quote_finish(st, buf.array[p0:cur].tolist())
    return res


def _append(pipeline: Any, row: Any, tokens: tuple[int, ...], origin: str) -> list[int]:
    """``execute_impl._append`` with direct length reads."""
    st, ctx = row.st, row.ctx
    if st.stop_status is not None:
        return []
    vocab = int(pipeline.vocab_size)
    for t in tokens:
        if not 0 <= t < vocab:
            bad = [t for t in tokens if not 0 <= t < vocab]
            ei._fail(row, f"{origin}: token ids outside the vocabulary (size {vocab}): {bad[:8]}")
            return []
    room = st.max_len - ctx.tokens._current_length
    take = list(tokens[: max(room, 0)])
    if not ctx.ignore_eos:
        eos = ctx.eos_tracker.eos_token_ids
        for i, t in enumerate(take):
            if t in eos:
                take = take[: i + 1]
                st.stop_status = "stop"
                break
    sequence.append_tokens(ctx, take)
    if st.stop_status is None and ctx.tokens._current_length >= st.max_len:
        st.stop_status = "length"
    return take


def append_tokens(ctx: Any, tokens: Any) -> None:
    """``sequence.append_tokens`` with a one-token fast path."""
    buf = ctx.tokens
    if not tokens:
        return
    cur = buf._current_length
    new_len = cur + len(tokens)
    buf._expand_capacity(new_len)
    if len(tokens) == 1:
        buf.array[cur] = tokens[0]
    else:
        buf.array[cur:new_len] = np.asarray(tokens, dtype=np.int64)
    buf._current_length = new_len


def _hold_back(self: ModSession) -> int:
    """``ModSession.hold_back``, computed once per session."""
    cached: int | None = self.__dict__.get("_hold_back_cache")
    if cached is None:
        cached = max((d.hold_back for d in self.definitions), default=0)
        self.__dict__["_hold_back_cache"] = cached
    return cached


@contextlib.contextmanager
def installed() -> Iterator[None]:
    """Swap the proposed versions in for the duration of the block."""
    saved = [
        (QuotePipeline, "quote_sync_kv", QuotePipeline.__dict__["quote_sync_kv"]),
        (ModSession, "hold_back", ModSession.__dict__["hold_back"]),
        (ei, "_dispatch", ei._dispatch),
        (sequence, "schedule_forward", sequence.schedule_forward),
        (sequence, "append_tokens", sequence.append_tokens),
        (ei, "emit", ei.emit),
        (ei, "_append", ei._append),
    ]
    QuotePipeline.quote_sync_kv = quote_sync_kv
    ModSession.hold_back = property(_hold_back)  # type: ignore[assignment, method-assign]
    ei._dispatch = _dispatch
    sequence.schedule_forward = schedule_forward
    sequence.append_tokens = append_tokens
    ei.emit = emit
    ei._append = _append
    try:
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)
