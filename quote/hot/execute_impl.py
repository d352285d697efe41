# SPDX-License-Identifier: Apache-2.0
"""The hot-swappable Quote step: one forward pass over a batch, with mods in the loop.

``execute(pipeline, inputs)`` reads like the algorithm::

    start new requests (Prefilled)  ->  forward  ->  ForwardPass  ->  sample
    ->  Sampled  ->  add tokens (Added)  ->  apply edits / rewind KV  ->  emit

A batch in which no request has mods takes MAX's stock step unchanged. In
development mode this file is reloaded when it changes (see ``quote.hot.reloader``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import deque
from typing import Any

import numpy as np

from quote.hot import sequence
from quote.hot.masks import RowMask, is_mask_only
from quote.hot.state import RequestState
from quote.mods.session import ModFailure
from quote.sdk.actions import (
    Action,
    AdjustedLogits,
    AdjustedPrefill,
    Backtrack,
    EmitError,
    ForceOutput,
    ForceTokens,
    ToolCalls,
)
from quote.sdk.errors import InvalidActionError
from quote.sdk.events import Added, Event, ForwardPass, Prefilled, Sampled

__all__ = ["execute"]

logger = logging.getLogger(__name__)

MAX_EDIT_ROUNDS = 64
"""Most Added rounds in one step (a mod forcing at every Added would never stop)."""

_SEED_BUMP = 0x9E3779B97F4A7C15
_U64 = (1 << 64) - 1


@dataclasses.dataclass
class _Row:
    """One request's work in the current step."""

    ctx: Any
    st: RequestState
    index: int = -1
    logits: np.ndarray | None = None
    temperature: float | None = None
    mask: RowMask | None = None
    suppressed: bool = False
    pending: deque[tuple[str, Any, bool, str]] = dataclasses.field(default_factory=deque)


def execute(pipeline: Any, inputs: Any) -> dict[Any, Any]:
    """Run one Quote step for ``inputs`` on ``pipeline`` (a ``QuotePipeline``)."""
    flat = inputs.flat_batch
    if not any(pipeline.quote_has_mods(ctx) for ctx in flat):
        stock: dict[Any, Any] = pipeline.stock_execute(inputs)
        return stock
    rows = [_Row(ctx, pipeline.quote_state(ctx)) for ctx in flat]
    start_requests(pipeline, rows)
    live = [r for r in rows if not r.st.finished]
    if live:
        step_live_rows(pipeline, inputs, live)
    return emit(pipeline, rows)


# ----------------------------------------------------------------------------- phases


def start_requests(pipeline: Any, rows: list[_Row]) -> None:
    """Dispatch ``Prefilled`` exactly once per request, before its first forward pass."""
    for row in rows:
        st, ctx = row.st, row.ctx
        if st.prefilled:
            continue
        st.prefilled = True
        st.prompt_len = ctx.tokens.prompt_length
        st.max_len = int(ctx.max_length)
        if st.session is None:
            continue
        event = Prefilled(
            st.request_id, 0, st.max_len - st.prompt_len, tuple(int(t) for t in ctx.tokens.all)
        )
        for d in _dispatch(row, event):
            if isinstance(d.action, AdjustedPrefill):
                _replace_prompt(pipeline, row, d.action, d.mod)
            else:
                _handle_common(row, d.mod, d.action, "Prefilled")
        if row.pending and not st.finished:
            st.kv_valid = ctx.tokens.processed_length
            _drain(pipeline, row)
            if not st.finished:
                _reschedule(pipeline, row)


def step_live_rows(pipeline: Any, inputs: Any, live: list[_Row]) -> None:
    """Forward, ForwardPass, sample, Sampled, add, edit — for every live request."""
    batch = [r.ctx for r in live]
    for i, r in enumerate(live):
        r.index = i
    model_inputs, bitmask, flat = pipeline.prepare_batch([batch])
    outputs = pipeline._pipeline_model.execute(model_inputs=model_inputs)
    chunked = {id(c) for c in flat if c.tokens.actively_chunked}
    host = dispatch_forward_pass(pipeline, live, outputs, chunked)
    sampled = sample(pipeline, live, flat, outputs, host, bitmask)
    for r in live:
        if id(r.ctx) in chunked:
            r.ctx.tokens.advance_chunk()
            pipeline.kv_manager.step(r.ctx)
            continue
        r.st.forward_passes += 1
        r.st.kv_valid = len(r.ctx.tokens)
        if not r.st.finished and not r.suppressed:
            dispatch_sampled(r, int(sampled[r.index]))
        if not r.st.finished:
            _drain(pipeline, r)
        finish_or_reschedule(pipeline, r)
        r.st.step += 1


class _BatchLogits:
    """The step's logits, copied to the host only when a mod first needs them."""

    def __init__(self, device_logits: Any) -> None:
        self._device = device_logits
        self.host: np.ndarray | None = None
        self.width = int(device_logits.shape[-1])

    def fetch(self) -> np.ndarray:
        if self.host is None:
            from max.driver import CPU

            self.host = np.asarray(self._device.to(CPU()).to_numpy())
        return self.host

    def row(self, index: int) -> np.ndarray:
        view: np.ndarray = self.fetch()[index].view()
        view.flags.writeable = False
        return view

    def loader(self, index: int) -> Any:
        return lambda: self.row(index)


def dispatch_forward_pass(pipeline: Any, live: list[_Row], outputs: Any, chunked: set[int]) -> Any:
    """Give each modded request its own logits row; collect edits and forced tokens.

    Logits leave the device only if a mod reads them or edits them; the edited
    batch is returned (or None when nothing changed).
    """
    wanting = [r for r in live if r.st.session is not None and id(r.ctx) not in chunked]
    if not wanting:
        return None
    batch = _BatchLogits(outputs.next_token_logits)
    device_masks = pipeline._sampler_with_bitmask is not None
    edited = []
    for r in wanting:
        event: Event = ForwardPass(r.st.request_id, r.st.step, batch.loader(r.index))
        for d in _dispatch(r, event, edit=_chain_logits(r, batch, device_masks)):
            if not isinstance(d.action, AdjustedLogits):
                _handle_common(r, d.mod, d.action, "ForwardPass", sample_step=True)
        if r.logits is not None:
            edited.append(r)
    if not edited:
        return None
    host = batch.fetch()
    for r in edited:
        host[r.index] = r.logits
    return host


def sample(
    pipeline: Any, live: list[_Row], flat: list[Any], outputs: Any, host: Any, bitmask: Any
) -> Any:
    """Sample the whole batch with MAX's fused sampler (edited rows written back first)."""
    from max.driver import CPU, Buffer
    from max.pipelines.sampling import FusedSamplingProcessor, apply_logits_processors

    logits = outputs.next_token_logits
    if host is not None:
        logits = Buffer.from_numpy(np.ascontiguousarray(host, dtype=np.float32)).to(logits.device)
    saved = [(r.ctx, r.ctx.sampling_params) for r in live if r.temperature is not None]
    for r in live:
        if r.temperature is not None:
            greedy = r.temperature == 0.0
            r.ctx.sampling_params = dataclasses.replace(
                r.ctx.sampling_params,
                temperature=r.temperature,
                top_k=1 if greedy else r.ctx.sampling_params.top_k,
            )
    masked = [r for r in live if r.mask is not None and r.logits is None]
    if masked:
        width = int(logits.shape[-1])
        if bitmask is None:
            bitmask = np.full((len(flat), (width + 31) // 32), -1, dtype=np.int32)
        for r in masked:
            assert r.mask is not None
            bitmask[r.index] &= r.mask.packed(width)  # MAX's own grammar mask, if any, still holds
    try:
        sampler = (
            pipeline._sampler_with_bitmask
            if bitmask is not None
            else pipeline._sampler_without_bitmask
        )
        proc = FusedSamplingProcessor(
            sampler=sampler,
            pipeline_config=pipeline._pipeline_config,
            context_batch=flat,
            device=pipeline._sampler_device,
            pinned_new_tokens=pipeline._pinned_new_tokens,
            identity_logit_offsets=pipeline._identity_logit_offsets,
            bitmask=bitmask,
            vocab_size=pipeline.vocab_size,
        )
        s_logits, s_offsets = proc.logits_for_sampling(
            logits=logits if host is not None else outputs.logits,
            next_token_logits=logits,
            logit_offsets=outputs.logit_offsets,
        )
        apply_logits_processors(
            context_batch=flat,
            batch_logits=s_logits,
            batch_logit_offsets=s_offsets,
            batch_processors=[proc],
        )
        tokens = proc.new_tokens.to(CPU()).to_numpy()
    finally:
        for ctx, params in saved:
            ctx.sampling_params = params
    return np.asarray(tokens).reshape(len(flat), -1)[:, -1]


def dispatch_sampled(row: _Row, token: int) -> None:
    """``Sampled``: mods may replace the sample (ForceTokens), backtrack or end."""
    if row.st.session is not None:
        for d in _dispatch(row, Sampled(row.st.request_id, row.st.step, token)):
            _handle_common(row, d.mod, d.action, "Sampled", sample_step=True)
    if not row.suppressed and not row.st.finished:
        row.pending.appendleft(("add", (token,), False, "the sampler"))


def finish_or_reschedule(pipeline: Any, row: _Row) -> None:
    """Record what the forward wrote; set up the next forward pass unless the request ended."""
    if row.st.finished:
        _set_final_status(row)
        pipeline.kv_manager.step(row.ctx)
        return
    _reschedule(pipeline, row, after_forward=True)


def _set_final_status(row: _Row) -> None:
    from max.pipelines.context.status import GenerationStatus

    if row.st.finish_reason == "length":
        row.ctx.status = GenerationStatus.MAXIMUM_LENGTH
    else:
        row.ctx.status = GenerationStatus.END_OF_SEQUENCE


def emit(pipeline: Any, rows: list[_Row]) -> dict[Any, Any]:
    """Hand the client every token it may safely see (hold-back respected)."""
    from max.pipelines.context.outputs import TextGenerationOutput

    res: dict[Any, Any] = {}
    for r in rows:
        st, ctx = r.st, r.ctx
        if ctx.tokens.actively_chunked:
            continue
        generated = ctx.tokens.generated
        if st.finished:
            _set_final_status(r)
        if st.finished:
            end = len(generated) if st.finish_reason in ("stop", "length") else st.delivered
        else:
            end = max(st.delivered, len(generated) - st.hold_back)
        new = generated[st.delivered : end].tolist()
        st.delivered = max(st.delivered, end)
        ctx.tokens._completion_range.start = min(st.prompt_len + st.delivered, len(ctx.tokens))
        if new or st.finished:
            res[ctx.request_id] = TextGenerationOutput(
                request_id=ctx.request_id, tokens=new, final_status=ctx.status
            )
        if st.finished:
            pipeline.quote_finish(st, [int(t) for t in generated])
    return res


# ----------------------------------------------------------------------------- actions


def _dispatch(row: _Row, event: Event, edit: Any = None) -> list[Any]:
    """Dispatch to this request's mods; a mod failure fails only this request."""
    st = row.st
    assert st.session is not None
    t0 = time.perf_counter() if st.trace is not None else 0.0
    try:
        result = st.session.dispatch(event, edit)
    except ModFailure as exc:
        _fail(row, str(exc))
        result = []
    if st.trace is not None:
        st.trace.add(
            step=st.step,
            event=type(event).__name__,
            actions=[f"{d.mod}:{type(d.action).__name__}" for d in result],
            ms=round((time.perf_counter() - t0) * 1000.0, 3),
        )
    return result


def _chain_logits(row: _Row, batch: _BatchLogits, device_masks: bool) -> Any:
    """Apply each mod's AdjustedLogits before the next mod sees the event.

    Allow/ban-only edits stay a :class:`RowMask` (applied on the device by the
    bitmask sampler) until some mod reads the logits or edits them otherwise.
    """

    def current() -> np.ndarray:
        if row.logits is None and row.mask is not None:
            row.logits = row.mask.apply(batch.row(row.index))
            row.mask = None
        return row.logits if row.logits is not None else batch.row(row.index)

    def edit(event: Event, action: Action, mod_name: str = "?") -> Event:
        if not isinstance(action, AdjustedLogits) or row.st.finished:
            return event
        if action.temperature is not None:
            row.temperature = action.temperature
        if device_masks and row.logits is None and is_mask_only(action):
            try:
                row.mask = (row.mask or RowMask()).add(action, batch.width)
            except InvalidActionError as exc:
                _fail(row, f"mod '{mod_name}' (AdjustedLogits at ForwardPass): {exc}")
                return event
            return ForwardPass(row.st.request_id, row.st.step, current)
        try:
            row.logits = action.apply(current())
        except InvalidActionError as exc:
            _fail(row, f"mod '{mod_name}' (AdjustedLogits at ForwardPass): {exc}")
            return event
        return ForwardPass(row.st.request_id, row.st.step, row.logits)

    return edit


def _handle_common(
    row: _Row, mod: str, action: Action, where: str, sample_step: bool = False
) -> None:
    """ForceTokens / Backtrack / terminal actions, shared by every event."""
    st = row.st
    if st.finished:
        return
    origin = f"mod '{mod}' ({type(action).__name__} at {where})"
    if isinstance(action, ForceTokens):
        row.pending.append(("add", action.tokens, True, origin))
        row.suppressed = row.suppressed or sample_step
    elif isinstance(action, Backtrack):
        row.pending.append(("backtrack", action, True, origin))
        row.suppressed = row.suppressed or sample_step
    elif isinstance(action, ForceOutput):
        _force_output(row, mod, action.tokens)
    elif isinstance(action, ToolCalls):
        st.tool_calls = [
            {"id": c.id, "name": c.name, "arguments": c.arguments} for c in action.calls
        ]
        st.finish_reason = "tool_calls"
    elif isinstance(action, EmitError):
        _fail(row, f"mod '{mod}' emitted an error at {where}: {action.message}")
    else:
        _fail(
            row,
            f"mod '{mod}' returned {type(action).__name__} at {where}, which has no effect there",
        )


def _drain(pipeline: Any, row: _Row) -> None:
    """Apply queued appends and backtracks in order, dispatching ``Added`` for each append."""
    st, ctx = row.st, row.ctx
    rounds = 0
    while row.pending and not st.finished:
        rounds += 1
        if rounds > MAX_EDIT_ROUNDS:
            _fail(row, f"mods kept editing the sequence for {MAX_EDIT_ROUNDS} rounds in one step")
            return
        kind, payload, forced, origin = row.pending.popleft()
        if kind == "backtrack":
            _backtrack(row, payload, origin)
            continue
        added = _append(pipeline, row, payload, origin)
        if st.finished or not added or st.session is None:
            continue
        for d in _dispatch(row, Added(st.request_id, st.step, tuple(added), forced)):
            _handle_common(row, d.mod, d.action, "Added")
    if not st.finished and st.stop_status is not None:
        st.finish_reason = st.stop_status
    del ctx


def _append(pipeline: Any, row: _Row, tokens: tuple[int, ...], origin: str) -> list[int]:
    """Append tokens, clipped at EOS and at the length cap; returns what entered."""
    st, ctx = row.st, row.ctx
    if st.stop_status is not None:
        return []
    vocab = int(pipeline.vocab_size)
    bad = [t for t in tokens if not 0 <= t < vocab]
    if bad:
        _fail(row, f"{origin}: token ids outside the vocabulary (size {vocab}): {bad[:8]}")
        return []
    room = st.max_len - len(ctx.tokens)
    take = list(tokens[: max(room, 0)])
    if not ctx.ignore_eos:
        for i, t in enumerate(take):
            if t in ctx.eos_tracker.eos_token_ids:
                take = take[: i + 1]
                st.stop_status = "stop"
                break
    sequence.append_tokens(ctx, take)
    if st.stop_status is None and len(ctx.tokens) >= st.max_len:
        st.stop_status = "length"
    return take


def _backtrack(row: _Row, action: Backtrack, origin: str) -> None:
    st, ctx = row.st, row.ctx
    generated = len(ctx.tokens) - st.prompt_len
    if action.n > generated:
        _fail(
            row,
            f"{origin}: Backtrack({action.n}) reaches into the prompt: only {generated} tokens were generated",
        )
        return
    new_generated = generated - action.n
    if new_generated < st.delivered:
        _fail(
            row,
            f"{origin}: Backtrack({action.n}) would remove text already delivered to the client "
            f"({st.delivered} tokens delivered; raise the mod's hold_back or use stream=false)",
        )
        return
    sequence.truncate(ctx, st.prompt_len + new_generated)
    st.kv_valid = min(st.kv_valid, len(ctx.tokens))
    st.stop_status = None
    st.rewound = True
    st.backtracks += 1
    if action.tokens:
        row.pending.appendleft(("add", action.tokens, True, origin))


def _force_output(row: _Row, mod: str, tokens: tuple[int, ...]) -> None:
    st, ctx = row.st, row.ctx
    delivered = [int(t) for t in ctx.tokens.generated[: st.delivered]]
    if list(tokens[: st.delivered]) != delivered:
        _fail(
            row,
            f"mod '{mod}': ForceOutput would change {st.delivered} tokens already delivered to the client",
        )
        return
    sequence.truncate(ctx, st.prompt_len)
    sequence.append_tokens(ctx, tokens)
    st.finish_reason = "stop"


def _replace_prompt(pipeline: Any, row: _Row, action: AdjustedPrefill, mod: str) -> None:
    st, ctx = row.st, row.ctx
    vocab = int(pipeline.vocab_size)
    bad = [t for t in action.tokens if not 0 <= t < vocab]
    if bad:
        _fail(row, f"mod '{mod}' (AdjustedPrefill): token ids outside the vocabulary: {bad[:8]}")
        return
    steps = st.max_len - st.prompt_len
    if action.max_steps is not None:
        steps = min(steps, action.max_steps)
    if len(action.tokens) + max(steps, 1) > pipeline.max_sequence_length:
        _fail(
            row,
            f"mod '{mod}' (AdjustedPrefill): the new prompt does not fit the model's max length",
        )
        return
    sequence.replace_prompt(ctx, action.tokens)
    st.prompt_len = len(action.tokens)
    st.max_len = st.prompt_len + steps
    ctx.max_length = st.max_len
    st.kv_valid = 0
    st.rewound = True
    _reschedule(pipeline, row)


def _reschedule(pipeline: Any, row: _Row, after_forward: bool = False) -> None:
    """Set the next forward's active window; rewind the KV cache where tokens changed."""
    st, ctx = row.st, row.ctx
    sequence.schedule_forward(ctx, st.kv_valid, st.prompt_len + st.delivered)
    if st.rewound and st.backtracks:
        # MAX seeds each draw with seed + length: after a backtrack the same position
        # would draw the same number again, so move the request's seed on.
        ctx.sampling_params = dataclasses.replace(
            ctx.sampling_params, seed=(ctx.sampling_params.seed + _SEED_BUMP) & _U64
        )
    pipeline.quote_sync_kv(ctx, rewound=st.rewound, after_forward=after_forward)
    st.rewound = False


def _fail(row: _Row, message: str) -> None:
    st = row.st
    if st.finished:
        return
    logger.info("request %s failed: %s", st.request_id, message)
    st.error = message
    st.finish_reason = "error"
