# SPDX-License-Identifier: Apache-2.0
"""Log probabilities of tokens that no sampling step predicted: forced chunks and echoed prompts.

A step's next-token logits give a log probability to the first token entering after it
(see ``execute_impl._logprob_entry``). The other tokens of a forced chunk, tokens forced at
``Prefilled`` and, for ``echo``, the prompt's tokens are predicted by positions that the
*next* forward pass processes. When the model returns logits for every processed position
(MAX builds it with ``ReturnLogits.ALL`` under ``--enable-echo``), such a token's position
waits in :attr:`RequestState.lp_pending` until the forward that processes the position
before it; :func:`fill` then computes its entry from that forward's logits (MAX's ragged
log-probabilities kernel, on the device) into ``ctx._log_probabilities_data``. The step
never delivers a token whose entry is still pending (:func:`deliverable_end`), and a request
that ends with pending entries runs one more forward pass to compute them
(:func:`needs_flush`) before it finishes.

Without all-position logits nothing is tracked and the default path does no extra work.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from quote.hot import sequence
from quote.hot.state import RequestState

__all__ = [
    "KERNEL_TOP_MAX",
    "deliverable_end",
    "drop_from",
    "fill",
    "has_all_logits",
    "kv_floor",
    "mark",
    "needs_flush",
    "prompt_entries",
    "start_tracking",
    "track_prompt",
]

logger = logging.getLogger(__name__)

KERNEL_TOP_MAX = 7
"""Most alternatives per token MAX's log-probabilities graph returns (heap of 3 levels)."""


def has_all_logits(pipeline: Any) -> bool:
    """Whether the model returns logits for every processed position (``--enable-echo``)."""
    from max.nn.transformer import ReturnLogits

    mode = getattr(pipeline._pipeline_model, "return_logits", None)
    return mode in (ReturnLogits.ALL, ReturnLogits.VARIABLE)


def start_tracking(pipeline: Any, st: RequestState, ctx: Any) -> None:
    """Before ``Prefilled``: track pending entries when the request asked for log
    probabilities and the model returns all-position logits (else leave ``lp_pending`` None)."""
    if ctx.log_probabilities and has_all_logits(pipeline):
        st.lp_pending = set()


def track_prompt(st: RequestState, ctx: Any) -> None:
    """After ``Prefilled``: with ``echo``, every prompt token whose preceding position the
    first forward pass processes waits for its entry (the first prompt token has none;
    prompt tokens served from the prefix cache are not recomputed and get none)."""
    if st.lp_pending is None or not ctx.log_probabilities_echo:
        return
    first = max(1, sequence.window_start(ctx) + 1)
    st.lp_pending.update(range(first, st.prompt_len))
    st.echo_prompt = True


def mark(st: RequestState, start: int, end: int) -> None:
    """Positions ``[start, end)`` entered without an entry: they wait for the next forward."""
    if st.lp_pending is not None and end > start:
        st.lp_pending.update(range(start, end))


def drop_from(st: RequestState, length: int) -> None:
    """Tokens at ``>= length`` were removed (backtrack, new output): forget their entries."""
    if st.lp_pending:
        st.lp_pending.difference_update([p for p in st.lp_pending if p >= length])


def kv_floor(st: RequestState) -> int | None:
    """The first position the next forward pass must process so that it covers every
    pending entry (None when nothing is pending)."""
    if not st.lp_pending:
        return None
    return max(0, min(st.lp_pending) - 1)


def needs_flush(st: RequestState) -> bool:
    """Whether a request that ended with its tokens delivered still waits for entries (it
    runs one more forward pass, which samples nothing that is kept)."""
    return bool(st.lp_pending) and st.finish_reason in ("stop", "length")


def deliverable_end(st: RequestState, end: int) -> int:
    """``end`` (generated tokens that may be delivered) capped before the first pending entry."""
    if not st.lp_pending:
        return end
    return max(st.delivered, min(end, min(st.lp_pending) - st.prompt_len))


def prompt_entries(st: RequestState, ctx: Any) -> list[Any]:
    """The echoed prompt's entries, once, with the request's first delivery."""
    if not st.echo_prompt:
        return []
    st.echo_prompt = False
    data = ctx._log_probabilities_data
    return [data.pop(p) for p in range(1, st.prompt_len) if p in data]


def fill(
    pipeline: Any, rows: list[tuple[int, RequestState, Any]], model_inputs: Any, outputs: Any
) -> None:
    """After a forward pass: compute the pending entries it covers.

    ``rows`` are ``(batch index, state, context)`` of the batch's requests, in batch order.
    Entries come from MAX's ragged log-probabilities kernel over the forward's
    all-position logits (the model's own distribution). A pending position the forward
    could not cover and no later forward will (before the forward's window) is dropped.
    """
    wanting = [(i, st, ctx) for i, st, ctx in rows if st.lp_pending]
    if not wanting or outputs.logit_offsets is None:
        return
    from max.pipelines.lib.log_probabilities import compute_log_probabilities_ragged

    offsets = np.asarray(model_inputs.input_row_offsets.to_numpy()).astype(np.int64)
    tokens = np.asarray(model_inputs.tokens.to_numpy())
    batch = len(offsets) - 1
    top_n = [0] * batch
    echo = [False] * batch
    sampled = np.zeros(batch, dtype=np.int64)
    for i, _st, ctx in wanting:
        top_n[i] = min(KERNEL_TOP_MAX, max(1, int(ctx.log_probabilities)))
        echo[i] = True
        after = sequence.window_start(ctx) + int(offsets[i + 1] - offsets[i])
        if after < int(ctx.tokens._current_length):
            sampled[i] = int(ctx.tokens.array[after])  # the chunk's last row predicts it
    model = pipeline._pipeline_model
    results = compute_log_probabilities_ragged(
        model._logprobs_device,
        model._logprobs_model,
        input_row_offsets=offsets,
        logits=outputs.logits,
        next_token_logits=outputs.next_token_logits,
        tokens=tokens,
        sampled_tokens=sampled,
        batch_top_n=top_n,
        batch_echo=echo,
    )
    for i, st, ctx in wanting:
        _store(st, ctx, results[i], sequence.window_start(ctx))


def _store(st: RequestState, ctx: Any, result: Any, start: int) -> None:
    """Keep the entries of the pending positions ``result`` covers (row ``j`` predicts
    position ``start + j + 1``); drop pending positions no forward can cover any more."""
    from max.pipelines.context.log_probabilities import LogProbabilities

    assert st.lp_pending is not None and result is not None
    data = ctx._log_probabilities_data
    for j, (lp, top, tok) in enumerate(
        zip(
            result.token_log_probabilities,
            result.top_log_probabilities,
            result.sampled_token_ids,
            strict=True,
        )
    ):
        pos = start + j + 1
        if pos in st.lp_pending:
            data[pos] = LogProbabilities(
                token_log_probabilities=[lp], top_log_probabilities=[top], sampled_token_ids=[tok]
            )
            st.lp_pending.discard(pos)
    lost = [p for p in st.lp_pending if p <= start]
    if lost:
        logger.warning(
            "request %s: no forward pass covers positions %s; they have no log probability",
            st.request_id,
            lost[:8],
        )
        st.lp_pending.difference_update(lost)
