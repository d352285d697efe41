# SPDX-License-Identifier: Apache-2.0
"""The hot-swappable Quote step: one forward pass over a batch, with mods in the loop.

``execute(pipeline, inputs)`` reads like the algorithm::

    start new requests (Prefilled)  ->  forward  ->  ForwardPass  ->  sample
    ->  Sampled  ->  add tokens (Added)  ->  apply edits / rewind KV  ->  emit

The sampler itself runs right after the forward, as in MAX's step, and again after
``ForwardPass`` only if a mod edited the step's sampling (see ``step_live_rows``).
A batch in which no request has mods takes MAX's stock step unchanged. In
development mode this file is reloaded when it changes (see ``quote.hot.reloader``).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import os
import time
from collections import deque
from typing import Any

import numpy as np

from quote.hot import logprobs, sequence
from quote.hot.constraint import ORIGIN as CONSTRAINT
from quote.hot.masks import RowMask, apply_packed, is_mask_only
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
from quote.sdk.grammar import fill_masks

__all__ = ["execute"]

logger = logging.getLogger(__name__)

FAST_FORWARD = os.environ.get("QUOTE_GRAMMAR_FAST_FORWARD", "1") != "0"
"""Force a constraint's fast-forward tokens as one chunk (else: one masked sample each)."""

MAX_EDIT_ROUNDS = 64
"""Most Added rounds in one step (a mod forcing at every Added would never stop)."""

_SEED_BUMP = 0x9E3779B97F4A7C15
_U64 = (1 << 64) - 1


class _Row:
    """One request's work in the current step (a plain slotted class: built per row per step)."""

    __slots__ = (
        "batch",
        "ctx",
        "device_masks",
        "grammar_forced",
        "grammar_mask",
        "index",
        "logits",
        "lp_pos",
        "mask",
        "pending",
        "st",
        "suppressed",
        "temperature",
    )

    def __init__(self, ctx: Any, st: RequestState) -> None:
        self.ctx = ctx
        self.st = st
        self.index = -1
        self.logits: np.ndarray | None = None
        self.temperature: float | None = None
        self.mask: RowMask | None = None
        self.suppressed = False
        self.pending: deque[tuple[str, Any, bool, str]] | None = None
        self.batch: _BatchLogits | None = None
        self.device_masks = False
        self.grammar_mask: np.ndarray | None = None
        self.grammar_forced: list[int] | None = None
        self.lp_pos = -1  # position this step's logits predict, while logprobs may be taken

    def queue(self) -> deque[tuple[str, Any, bool, str]]:
        """Edits waiting to be applied this step, in order (created on first use)."""
        if self.pending is None:
            self.pending = deque()
        return self.pending

    def current_logits(self) -> np.ndarray:
        """The row's logits as edited so far (a pending device mask is applied on the host)."""
        assert self.batch is not None
        if self.logits is None and self.mask is not None:
            self.logits = self.mask.apply(self.batch.row(self.index))
            self.mask = None
        return self.logits if self.logits is not None else self.batch.row(self.index)

    def edit_logits(self, event: Event, action: Action, mod_name: str = "?") -> Event:
        """Apply one mod's ``AdjustedLogits`` before the next mod sees the event.

        Allow/ban-only edits stay a :class:`RowMask` (applied on the device by the
        bitmask sampler) until some mod reads the logits or edits them otherwise.
        """
        st = self.st
        if not isinstance(action, AdjustedLogits) or st.finish_reason is not None:
            return event
        assert self.batch is not None
        if action.temperature is not None:
            self.temperature = action.temperature
        if self.device_masks and self.logits is None and is_mask_only(action):
            try:
                self.mask = (self.mask or RowMask()).add(action, self.batch.width)
            except InvalidActionError as exc:
                _fail(self, f"mod '{mod_name}' (AdjustedLogits at ForwardPass): {exc}")
                return event
            return ForwardPass(st.request_id, st.step, self.current_logits)
        try:
            self.logits = action.apply(self.current_logits())
        except InvalidActionError as exc:
            _fail(self, f"mod '{mod_name}' (AdjustedLogits at ForwardPass): {exc}")
            return event
        return ForwardPass(st.request_id, st.step, self.logits)


def execute(pipeline: Any, inputs: Any) -> dict[Any, Any]:
    """Run one Quote step for ``inputs`` on ``pipeline`` (a ``QuotePipeline``)."""
    flat = inputs.flat_batch
    if not any(pipeline.quote_has_mods(ctx) for ctx in flat):
        stock: dict[Any, Any] = pipeline.stock_execute(inputs)
        return stock
    rows = [_Row(ctx, pipeline.quote_state(ctx)) for ctx in flat]
    start_requests(pipeline, rows)
    live = [r for r in rows if r.st.finish_reason is None or logprobs.needs_flush(r.st)]
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
        # A request without mods may have run MAX's stock step before (its batches had no
        # mods): what that step handed to the client counts as delivered.
        st.delivered = sequence.delivered(ctx)
        logprobs.start_tracking(pipeline, st, ctx)
        if st.session is not None:
            dispatch_prefilled(pipeline, row)
        logprobs.track_prompt(st, ctx)


def dispatch_prefilled(pipeline: Any, row: _Row) -> None:
    """``Prefilled``: mods may replace the prompt, force tokens, backtrack or end."""
    st, ctx = row.st, row.ctx
    assert st.session is not None
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
        if not st.finished or logprobs.needs_flush(st):
            _reschedule(pipeline, row)


def step_live_rows(pipeline: Any, inputs: Any, live: list[_Row]) -> None:
    """Forward, ForwardPass, sample, then each request's Sampled / Added / edits."""
    batch = [r.ctx for r in live]
    for i, r in enumerate(live):
        r.index = i
    model_inputs, bitmask, flat = pipeline.prepare_batch([batch])
    # As in MAX's step, the sampler is built before the forward and runs right after it,
    # before the mods see ForwardPass (its result stands unless a mod edits this step's
    # sampling). A batch where a request edited its sampling last step (and so likely will
    # again) samples once, after the mods.
    edits_expected = any(r.st.edits_sampling for r in live)
    proc = None if edits_expected else sampling_processor(pipeline, flat, bitmask)
    chunked = {id(c) for c in flat if c.tokens.actively_chunked}
    masks = grammar_masks(pipeline, live, chunked)  # in a thread, while the forward launches
    outputs = pipeline._pipeline_model.execute(model_inputs=model_inputs)
    if proc is not None and _sampler_keeps_logits(pipeline, flat):
        run_sampler(proc, flat, outputs, outputs.next_token_logits)
    if masks is not None:
        masks.result()
    if any(r.st.lp_pending for r in live):  # entries for tokens that entered without one
        logprobs.fill(pipeline, [(r.index, r.st, r.ctx) for r in live], model_inputs, outputs)
    host, changed = dispatch_forward_pass(pipeline, live, outputs, chunked)
    sampled = sample(pipeline, live, flat, outputs, host, bitmask, proc, changed)
    want_logprobs(live, outputs, chunked)
    for r in live:
        if chunked and id(r.ctx) in chunked:
            r.ctx.tokens.advance_chunk()
            pipeline.kv_manager.step(r.ctx)
        else:
            advance_request(pipeline, r, sampled[r.index])


def want_logprobs(live: list[_Row], outputs: Any, chunked: set[int]) -> None:
    """Rows whose request asked for logprobs keep this step's logits for the token that
    enters next (see :func:`_logprob_entry`)."""
    batch = next((r.batch for r in live if r.batch is not None), None)
    for r in live:
        if r.ctx.log_probabilities and id(r.ctx) not in chunked:
            if r.batch is None:
                batch = batch or _BatchLogits(outputs.next_token_logits)
                r.batch = batch
            r.lp_pos = sequence.length(r.ctx)


def _logprob_entry(row: _Row, token: int, sampled: bool) -> Any:
    """The logprob of ``token`` at the position this step's forward pass predicted: from the
    distribution it was sampled from (the mods' edits and masks applied, before temperature)
    when sampled, from the model's distribution when forced."""
    from max.pipelines.context.log_probabilities import LogProbabilities

    assert row.batch is not None
    if sampled:
        dist = row.current_logits()
        if row.mask is not None:
            dist = row.mask.apply(dist)
        if row.grammar_mask is not None:
            dist = apply_packed(dist, row.grammar_mask)
    else:
        dist = row.batch.row(row.index)
    x = dist.astype(np.float64)
    peak = float(np.max(x))
    lp = x - (peak + np.log(np.sum(np.exp(x - peak))))
    k = max(1, int(row.ctx.log_probabilities))
    top = np.argpartition(-lp, min(k, lp.shape[0] - 1))[:k]
    alternatives = {int(t): float(lp[t]) for t in top}
    alternatives[int(token)] = float(lp[token])  # as MAX's kernel: the token is always listed
    return LogProbabilities(
        token_log_probabilities=[float(lp[token])],
        top_log_probabilities=[alternatives],
        sampled_token_ids=[int(token)],
    )


class _BatchLogits:
    """The step's logits, copied to the host only when a mod first needs them."""

    def __init__(self, device_logits: Any) -> None:
        self._device = device_logits
        self.host: np.ndarray | None = None

    @property
    def width(self) -> int:
        """The vocabulary width of a row."""
        return int(self._device.shape[-1])

    def fetch(self) -> np.ndarray:
        if self.host is None:
            from max.driver import CPU

            self.host = np.asarray(self._device.to(CPU()).to_numpy())
        return self.host

    def row(self, index: int) -> np.ndarray:
        view: np.ndarray = self.fetch()[index].view()
        view.flags.writeable = False
        return view


def dispatch_forward_pass(
    pipeline: Any, live: list[_Row], outputs: Any, chunked: set[int]
) -> tuple[Any, list[_Row]]:
    """Give each modded request its own logits row; collect edits and forced tokens.

    Logits leave the device only if a mod reads them or edits them. Returns the edited
    batch on the host (None when no row's logits changed) and the rows whose sampling
    changed (logits, mask or temperature).
    """
    wanting = [
        r
        for r in live
        if (r.st.session is not None or r.st.constraint is not None)
        and id(r.ctx) not in chunked
        and r.st.finish_reason is None  # a request that ended may still run to fill logprobs
    ]
    if not wanting:
        return None, []
    batch = _BatchLogits(outputs.next_token_logits)
    device_masks = pipeline._sampler_with_bitmask is not None
    changed = []
    for r in wanting:
        r.batch, r.device_masks = batch, device_masks
        st = r.st
        if st.session is not None:
            event = ForwardPass(st.request_id, st.step, r.current_logits)
            for d in _dispatch(r, event, r.edit_logits):
                if not isinstance(d.action, AdjustedLogits):
                    _handle_common(r, d.mod, d.action, "ForwardPass", sample_step=True)
        if st.constraint is not None:
            constrain(r)
        if (
            r.logits is not None
            or r.mask is not None
            or r.temperature is not None
            or r.grammar_mask is not None
        ):
            changed.append(r)
    edited = [r for r in changed if r.logits is not None]
    if not edited:
        return None, changed
    host = batch.fetch()
    for r in edited:
        host[r.index] = r.logits
    return host, changed


_MASK_THREAD = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="quote-masks")


def grammar_masks(pipeline: Any, live: list[_Row], chunked: set[int]) -> Any:
    """Start computing the built-in constraints' next step in a thread, while the forward
    launches: each row's forced tokens, then, for rows with none, the masks (in parallel,
    off the GIL). Both depend only on tokens already consumed. Returns the future (None
    when no row is constrained)."""
    rows = [
        r
        for r in live
        if r.st.constraint is not None and not r.st.finished and id(r.ctx) not in chunked
    ]
    if not rows:
        return None
    width = int(pipeline.vocab_size)

    def fill() -> None:
        choosing = []
        for r in rows:
            assert r.st.constraint is not None
            r.grammar_forced = r.st.constraint.forced() if FAST_FORWARD else []
            if not r.grammar_forced:
                choosing.append(r)
        if choosing:
            matchers = [r.st.constraint.matcher for r in choosing if r.st.constraint]
            for r, m in zip(choosing, fill_masks(matchers, width), strict=True):
                r.grammar_mask = m

    return _MASK_THREAD.submit(fill)


def constrain(row: _Row) -> None:
    """The built-in constraint's turn, after the mods': force what the grammar forces,
    else mask the sample to what it allows (on the device when the bitmask sampler exists)."""
    st, g = row.st, row.st.constraint
    mask, row.grammar_mask = row.grammar_mask, None
    forced, row.grammar_forced = row.grammar_forced, None
    if g is None or st.finished or row.suppressed:
        return
    if forced is None:
        forced = g.forced() if FAST_FORWARD else None
    if forced:
        row.queue().append(("add", tuple(forced), True, CONSTRAINT))
        row.suppressed = True
        return
    assert row.batch is not None
    if mask is None:
        mask = g.mask(row.batch.width)
    if row.device_masks:
        row.grammar_mask = mask
    else:
        row.logits = apply_packed(row.current_logits(), mask)


def sampling_processor(pipeline: Any, flat: list[Any], bitmask: Any) -> Any:
    """MAX's ``FusedSamplingProcessor`` for the batch's sampling parameters and bitmask."""
    from max.pipelines.sampling import FusedSamplingProcessor

    # A packed bitmask goes to the device through the pipeline's reused staging buffers:
    # MAX's processor would allocate pinned memory for it at every step.
    packed = bitmask is not None and bitmask.shape[1] != pipeline.vocab_size
    proc = FusedSamplingProcessor(
        sampler=(
            pipeline._sampler_with_bitmask
            if bitmask is not None
            else pipeline._sampler_without_bitmask
        ),
        pipeline_config=pipeline._pipeline_config,
        context_batch=flat,
        device=pipeline._sampler_device,
        pinned_new_tokens=pipeline._pinned_new_tokens,
        identity_logit_offsets=pipeline._identity_logit_offsets,
        bitmask=None if packed else bitmask,
        vocab_size=pipeline.vocab_size,
    )
    if packed:
        proc.tensor_bitmask = pipeline.quote_device_bitmask(bitmask)
    return proc


def sample(
    pipeline: Any,
    live: list[_Row],
    flat: list[Any],
    outputs: Any,
    host: Any,
    bitmask: Any,
    proc: Any,
    changed: list[_Row],
) -> list[int]:
    """The batch's sampled tokens, from MAX's fused sampler.

    ``proc`` was built (and maybe already run) before the mods saw ``ForwardPass``, or is
    None. If a mod edited logits, masked a row or set a temperature (the ``changed`` rows),
    the batch is sampled (again) with the edits: edited rows written back, their parameters
    and bitmask.
    """
    from max.driver import Buffer

    logits = outputs.next_token_logits
    if host is not None:
        logits = Buffer.from_numpy(np.ascontiguousarray(host, dtype=np.float32)).to(logits.device)
    if proc is None:  # sampling edits were expected: last step's marks are cleared
        for r in live:
            r.st.edits_sampling = False
    saved = []
    masked = []
    for r in changed:
        r.st.edits_sampling = True
        if r.temperature is not None:
            params = r.ctx.sampling_params
            saved.append((r.ctx, params))
            r.ctx.sampling_params = dataclasses.replace(
                params, temperature=r.temperature, top_k=1 if r.temperature == 0.0 else params.top_k
            )
        if (r.mask is not None and r.logits is None) or r.grammar_mask is not None:
            masked.append(r)
    if masked:
        width = int(logits.shape[-1])
        if bitmask is None:
            bitmask = np.full((len(flat), (width + 31) // 32), -1, dtype=np.int32)
        for r in masked:  # MAX's own grammar mask, if any, still holds
            if r.mask is not None and r.logits is None:
                bitmask[r.index] &= r.mask.packed(width)
            if r.grammar_mask is not None:
                bitmask[r.index] &= r.grammar_mask
    try:
        if proc is None or changed:
            proc = sampling_processor(pipeline, flat, bitmask)
        if proc.new_tokens is None:
            run_sampler(proc, flat, outputs, logits)
        tokens = proc.new_tokens.to_numpy()  # copies from the device when not on the host
    finally:
        for ctx, params in saved:
            ctx.sampling_params = params
    out: list[int] = np.asarray(tokens).reshape(len(flat), -1)[:, -1].tolist()
    return out


def run_sampler(proc: Any, flat: list[Any], outputs: Any, next_token_logits: Any) -> None:
    """Launch MAX's sampler on ``next_token_logits``; tokens land in ``proc.new_tokens``."""
    from max.pipelines.sampling import apply_logits_processors

    s_logits, s_offsets = proc.logits_for_sampling(
        logits=outputs.logits,
        next_token_logits=next_token_logits,
        logit_offsets=outputs.logit_offsets,
    )
    apply_logits_processors(
        context_batch=flat,
        batch_logits=s_logits,
        batch_logit_offsets=s_offsets,
        batch_processors=[proc],
    )


def _sampler_keeps_logits(pipeline: Any, flat: list[Any]) -> bool:
    """Whether sampling leaves the logits buffer as the model wrote it.

    MAX's penalty and min-token processors, and per-request logits processors, edit the
    buffer in place: then mods must see it before the sampler runs.
    """
    cfg = pipeline._pipeline_config.sampling
    if cfg.enable_penalties or cfg.enable_min_tokens:
        return False
    return all(ctx.sampling_params.logits_processors is None for ctx in flat)


def advance_request(pipeline: Any, row: _Row, token: int) -> None:
    """After the forward: ``Sampled``, add the token (``Added``), apply edits, reschedule."""
    st = row.st
    st.forward_passes += 1
    st.kv_valid = sequence.length(row.ctx)
    if st.finish_reason is None and not row.suppressed:
        dispatch_sampled(pipeline, row, token)
    _drain(pipeline, row)
    finish_or_reschedule(pipeline, row)
    st.step += 1


def dispatch_sampled(pipeline: Any, row: _Row, token: int) -> None:
    """``Sampled``: mods may replace the sample (ForceTokens), backtrack or end."""
    st = row.st
    if st.session is not None:
        for d in _dispatch(row, Sampled(st.request_id, st.step, token)):
            _handle_common(row, d.mod, d.action, "Sampled", sample_step=True)
    # Only ForceTokens / Backtrack queue edits at ForwardPass or Sampled, and both suppress
    # the sample: a sample that is kept is the step's first edit.
    if not row.suppressed and st.finish_reason is None:
        _add(pipeline, row, (token,), False, "the sampler")


def finish_or_reschedule(pipeline: Any, row: _Row) -> None:
    """Record what the forward wrote; set up the next forward pass unless the request ended."""
    if row.st.finish_reason is not None and not logprobs.needs_flush(row.st):
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
    output = _output_type()
    res: dict[Any, Any] = {}
    for r in rows:
        st, ctx = r.st, r.ctx
        # A request that ended with log probabilities still to compute runs one more forward.
        finished = st.finish_reason is not None and not logprobs.needs_flush(st)
        if ctx.tokens.actively_chunked and not finished:
            continue  # a prompt chunk: nothing to emit yet (a request can end at Prefilled)
        n_generated = sequence.length(ctx) - st.prompt_len
        if finished and st.finish_reason == "stop" and st.constraint and st.constraint.tools:
            _tool_call_from_text(pipeline, r, n_generated)
        if finished:
            _set_final_status(r)
            end = n_generated if st.finish_reason in ("stop", "length") else st.delivered
        else:
            end = max(st.delivered, n_generated - st.hold_back)
        end = logprobs.deliverable_end(st, end)
        new: list[int] = []
        if end > st.delivered:
            new = sequence.tokens_between(ctx, st.prompt_len + st.delivered, st.prompt_len + end)
            st.delivered = end
            sequence.deliver(ctx, st.prompt_len + end)
        if new or finished:
            res[ctx.request_id] = output(
                request_id=ctx.request_id,
                tokens=new,
                final_status=ctx.status,
                num_cached_tokens=ctx.cached_prefix_length,
                log_probabilities=_delivered_logprobs(st, ctx, st.prompt_len + end - len(new), new),
            )
        if finished:
            generated = sequence.tokens_between(ctx, st.prompt_len, st.prompt_len + n_generated)
            pipeline.quote_finish(st, generated)
    return res


def _delivered_logprobs(st: RequestState, ctx: Any, start: int, new: list[int]) -> list[Any] | None:
    """The logprob entries of the tokens at ``[start, start + len(new))``, after the echoed
    prompt's with the first delivery (None unless asked)."""
    if not ctx.log_probabilities:
        return None
    data = ctx._log_probabilities_data
    head = logprobs.prompt_entries(st, ctx) if new else []
    return head + [data.pop(p) for p in range(start, start + len(new)) if p in data]


_OUTPUT: Any = None


def _output_type() -> Any:
    """MAX's ``TextGenerationOutput`` (imported once, on first use)."""
    global _OUTPUT
    if _OUTPUT is None:
        from max.pipelines.context.outputs import TextGenerationOutput

        _OUTPUT = TextGenerationOutput
    return _OUTPUT


# ----------------------------------------------------------------------------- actions


def _dispatch(row: _Row, event: Event, edit: Any = None) -> list[Any]:
    """Dispatch to this request's mods; a mod failure fails only this request."""
    st = row.st
    assert st.session is not None
    if st.trace is not None:
        return _dispatch_traced(row, event, edit)
    try:
        return st.session.dispatch(event, edit)
    except ModFailure as exc:
        _fail(row, str(exc))
        return []


def _dispatch_traced(row: _Row, event: Event, edit: Any) -> list[Any]:
    st = row.st
    assert st.session is not None and st.trace is not None
    t0 = time.perf_counter()
    try:
        result = st.session.dispatch(event, edit)
    except ModFailure as exc:
        _fail(row, str(exc))
        result = []
    st.trace.add(
        step=st.step,
        event=type(event).__name__,
        actions=[f"{d.mod}:{type(d.action).__name__}" for d in result],
        ms=round((time.perf_counter() - t0) * 1000.0, 3),
    )
    return result


def _handle_common(
    row: _Row, mod: str, action: Action, where: str, sample_step: bool = False
) -> None:
    """ForceTokens / Backtrack / terminal actions, shared by every event."""
    st = row.st
    if st.finished:
        return
    origin = f"mod '{mod}' ({type(action).__name__} at {where})"
    if isinstance(action, ForceTokens):
        row.queue().append(("add", action.tokens, True, origin))
        row.suppressed = row.suppressed or sample_step
    elif isinstance(action, Backtrack):
        row.queue().append(("backtrack", action, True, origin))
        row.suppressed = row.suppressed or sample_step
    elif isinstance(action, ForceOutput):
        _force_output(row, mod, action.tokens)
    elif isinstance(action, ToolCalls) and st.no_tools:
        _fail(row, f"{origin}: tool calls are not allowed (the request set tool_choice 'none')")
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
    """Apply queued appends and backtracks in order, dispatching ``Added`` for each append;
    then end the request if EOS or the length cap was reached."""
    st, pending = row.st, row.pending
    rounds = 0
    while pending and not st.finished:
        rounds += 1
        if rounds > MAX_EDIT_ROUNDS:
            _fail(row, f"mods kept editing the sequence for {MAX_EDIT_ROUNDS} rounds in one step")
            return
        kind, payload, forced, origin = pending.popleft()
        if kind == "backtrack":
            _backtrack(row, payload, origin)
        else:
            _add(pipeline, row, payload, forced, origin)
    if not st.finished and st.stop_status is None and st.session is not None:
        if _hits_stop_string(pipeline, row):
            st.stop_status = "stop"  # the mods see the end (on_end); the API trims the text
    if not st.finished and st.stop_status is not None:
        st.finish_reason = st.stop_status


def _hits_stop_string(pipeline: Any, row: _Row) -> bool:
    """Whether the request's last tokens decode to text that contains one of its ``stop``
    strings (a window long enough for the longest one; requests without stops: no work)."""
    stops = row.ctx.eos_tracker.eos_stop_strings
    if not stops:
        return False
    st = row.st
    end = sequence.length(row.ctx)
    start = max(st.prompt_len, end - max(len(s) for s in stops) - 2)
    text = pipeline.tokenizer.delegate.decode(sequence.tokens_between(row.ctx, start, end))
    return any(s in text for s in stops)


def _add(pipeline: Any, row: _Row, tokens: tuple[int, ...], forced: bool, origin: str) -> None:
    """Append ``tokens`` and dispatch ``Added`` for what entered; actions queue up."""
    added = _append(pipeline, row, tokens, origin)
    st = row.st
    if not added or st.finish_reason is not None or st.session is None:
        return
    for d in _dispatch(row, Added(st.request_id, st.step, added, forced)):
        _handle_common(row, d.mod, d.action, "Added")


def _append(pipeline: Any, row: _Row, tokens: tuple[int, ...], origin: str) -> tuple[int, ...]:
    """Append tokens, clipped at EOS and at the length cap; returns what entered."""
    st, ctx = row.st, row.ctx
    if st.stop_status is not None or not tokens:
        return ()
    vocab = pipeline.vocab_size
    if min(tokens) < 0 or max(tokens) >= vocab:
        bad = [t for t in tokens if not 0 <= t < vocab]
        _fail(row, f"{origin}: token ids outside the vocabulary (size {vocab}): {bad[:8]}")
        return ()
    room = st.max_len - sequence.length(ctx)
    take = tuple(tokens) if room >= len(tokens) else tuple(tokens[: max(room, 0)])
    if not ctx.ignore_eos:
        eos = ctx.eos_tracker.eos_token_ids
        for i, t in enumerate(take):
            if t in eos:
                take = take[: i + 1]
                st.stop_status = "stop"
                break
    g = st.constraint
    if g is not None and take:
        n = g.admit(take)
        if n < len(take):
            _fail(row, f"{origin}: token {take[n]} is not allowed here by the {CONSTRAINT}")
            return ()
        if g.done and st.stop_status is None:
            st.stop_status = "stop"  # the value is complete: nothing may follow
    pos = sequence.length(ctx)
    first_pending = pos
    if take and row.lp_pos == pos:  # this step's logits predict take[0]
        ctx._log_probabilities_data[pos] = _logprob_entry(row, take[0], origin == "the sampler")
        first_pending = pos + 1
    row.lp_pos = -1
    logprobs.mark(st, first_pending, pos + len(take))  # the next forward predicts the others
    sequence.append_tokens(ctx, take)
    if st.stop_status is None and sequence.length(ctx) >= st.max_len:
        st.stop_status = "length"
    return take


def _backtrack(row: _Row, action: Backtrack, origin: str) -> None:
    st, ctx = row.st, row.ctx
    generated = sequence.length(ctx) - st.prompt_len
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
    logprobs.drop_from(st, st.prompt_len + new_generated)
    row.lp_pos = -1
    if st.constraint is not None:
        st.constraint.rollback(action.n)
    st.kv_valid = min(st.kv_valid, sequence.length(ctx))
    st.stop_status = None
    st.rewound = True
    st.backtracks += 1
    if action.tokens:
        row.queue().appendleft(("add", action.tokens, True, origin))


def _force_output(row: _Row, mod: str, tokens: tuple[int, ...]) -> None:
    st, ctx = row.st, row.ctx
    delivered = [int(t) for t in ctx.tokens.generated[: st.delivered]]
    if list(tokens[: st.delivered]) != delivered:
        _fail(
            row,
            f"mod '{mod}': ForceOutput would change {st.delivered} tokens already delivered to the client",
        )
        return
    g = st.constraint
    if g is not None:
        g.restart()
        if g.admit(tokens) < len(tokens) or not (g.done or g.matcher.accepting):
            _fail(row, f"mod '{mod}': ForceOutput is not a complete value of the {CONSTRAINT}")
            return
    sequence.truncate(ctx, st.prompt_len)
    logprobs.drop_from(st, st.prompt_len)  # the forced output's tokens get no entries
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
    if getattr(ctx, "images", None):  # their soft tokens' positions would no longer hold
        _fail(row, f"mod '{mod}' (AdjustedPrefill): a prompt with images cannot be replaced")
        return
    sequence.replace_prompt(ctx, action.tokens)
    logprobs.drop_from(st, 0)
    st.prompt_len = len(action.tokens)
    st.max_len = st.prompt_len + steps
    ctx.max_length = st.max_len
    st.kv_valid = 0
    st.rewound = True
    _reschedule(pipeline, row)


def _reschedule(pipeline: Any, row: _Row, after_forward: bool = False) -> None:
    """Set the next forward's active window; rewind the KV cache where tokens changed."""
    st, ctx = row.st, row.ctx
    floor = logprobs.kv_floor(st)
    if floor is not None and floor < st.kv_valid:  # the forward must cover pending entries
        st.kv_valid, st.rewound = floor, True
    active = sequence.schedule_forward(ctx, st.kv_valid, st.prompt_len + st.delivered)
    if st.rewound and st.backtracks:
        # MAX seeds each draw with seed + length: after a backtrack the same position
        # would draw the same number again, so move the request's seed on.
        ctx.sampling_params = dataclasses.replace(
            ctx.sampling_params, seed=(ctx.sampling_params.seed + _SEED_BUMP) & _U64
        )
    pipeline.quote_sync_kv(ctx, rewound=st.rewound, after_forward=after_forward, active=active)
    st.rewound = False


def _tool_call_from_text(pipeline: Any, row: _Row, n_generated: int) -> None:
    """A finished tool-constrained completion becomes ``tool_calls`` (its text is not sent)."""
    st, ctx = row.st, row.ctx
    assert st.constraint is not None
    tokens = sequence.tokens_between(ctx, st.prompt_len, st.prompt_len + n_generated)
    eos = ctx.eos_tracker.eos_token_ids
    text = pipeline.tokenizer.delegate.decode([t for t in tokens if t not in eos])
    try:
        st.tool_calls = st.constraint.tool_calls(text)
    except (ValueError, KeyError, TypeError) as exc:
        st.finish_reason = None
        _fail(row, f"{CONSTRAINT}: the tool call could not be read back ({exc})")
        return
    st.finish_reason = "tool_calls"


def _fail(row: _Row, message: str) -> None:
    st = row.st
    if st.finished:
        return
    logger.info("request %s failed: %s", st.request_id, message)
    st.error = message
    st.finish_reason = "error"
