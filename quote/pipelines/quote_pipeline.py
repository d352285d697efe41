# SPDX-License-Identifier: Apache-2.0
"""``QuotePipeline``: MAX's ``TextGenerationPipeline`` with mods in the loop.

Installed as the ``pipeline_cls`` of Quote's architecture. Its per-step entry point
``execute`` delegates to the hot-swappable ``quote.hot.execute_impl.execute``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from max.pipelines.lib.pipeline_variants.text_generation import TextGenerationPipeline

from quote.hot.constraint import ORIGIN, Constraint
from quote.hot.reloader import HotModule
from quote.hot.state import RequestOptions, RequestState, Trace
from quote.mods.channel import worker_channel
from quote.mods.registry import ModRegistry, RegistryError, load_preloaded
from quote.mods.session import ModFailure, ModSession
from quote.sdk.context import Conversation, RequestInfo
from quote.sdk.grammar import GrammarError

__all__ = ["QuotePipeline"]

logger = logging.getLogger(__name__)


class QuotePipeline(TextGenerationPipeline):  # type: ignore[misc]
    """A ``TextGenerationPipeline`` whose step runs each request's mods.

    Per-request state lives in :attr:`quote_states` from a request's first step until
    :meth:`release`; attach mods to a request with :meth:`set_request_options` before
    its first step.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.quote_states: dict[Any, RequestState] = {}
        self.quote_results: dict[Any, dict[str, Any]] = {}
        self._pending_options: dict[Any, RequestOptions] = {}
        self.hot = HotModule()
        self.max_sequence_length = int(self._pipeline_config.model.max_length or 1 << 30)
        self.enable_prefix_caching = bool(
            self._pipeline_config.model.kv_cache.enable_prefix_caching
        )
        self.registry = ModRegistry(preloaded=load_preloaded())
        self._stats_written = 0.0
        if getattr(self, "_sampler_with_bitmask", None) is None:
            self._sampler_with_bitmask: Any = self._compile_bitmask_sampler()
        self._bitmask_buffers: dict[tuple[int, ...], tuple[Any, Any]] = {}
        self.channel = worker_channel()  # to the API process, under ``max serve``
        if self.channel is not None:
            self.channel.send("hello", pid=os.getpid())

    def _compile_bitmask_sampler(self) -> Any:
        """MAX's sampler with a packed-bitmask input, for mods' allow/ban masks on the device.

        MAX compiles it only with structured output enabled; Quote always needs it.
        Without it (compile failure), masks fall back to editing logits on the host.
        """
        from max.graph import DeviceRef
        from max.pipelines.lib.graph_specs import GraphRole, GraphSpec, compile_graphs, init_graphs
        from max.pipelines.sampling import TopKSampler

        try:
            sampler = TopKSampler(
                self._pipeline_config.sampling,
                device=DeviceRef.from_device(self._sampler_device),
                needs_bitmask_input=True,
                unpadded_vocab_size=self.vocab_size,
            )
            specs = {
                GraphRole.SAMPLER_BITMASK: GraphSpec(
                    sampler, TopKSampler.GRAPH_NAME, sampler.input_types
                )
            }
            artifacts = compile_graphs(self.session, specs)
            return init_graphs(self.session, artifacts, specs)[GraphRole.SAMPLER_BITMASK]
        except Exception as exc:  # noqa: BLE001 - optional fast path; fall back to host masks
            logger.warning("bitmask sampler unavailable, masks run on the host: %s", exc)
            return None

    # --- MAX entry points -------------------------------------------------------------
    def execute(self, inputs: Any) -> Any:
        """One step: the current ``execute_impl.execute``."""
        with self._request_validator:
            return self.hot.get().execute(self, inputs)

    def stock_execute(self, inputs: Any) -> Any:
        """MAX's own step (used when no request in the batch has mods)."""
        return self._execute(inputs)

    def release(self, request_id: Any) -> None:
        """Free the request's mod instances, trace and state (after MAX's own release)."""
        super().release(request_id)
        self._pending_options.pop(request_id, None)
        self.quote_results.pop(request_id, None)
        state = self.quote_states.pop(request_id, None)
        if state is not None and state.ticket and not state.finished and self.channel:
            # Ended by MAX, not by the step (a stop string seen by the API process, a
            # cancel): the API process still waits for an outcome, which has nothing to add.
            self.channel.send("result", ticket=state.ticket, result={"ended_by": "max"})
        if state is not None and state.session is not None:
            state.session.close()
        self._publish_stats()

    def quote_stats(self) -> dict[str, Any]:
        """Live counts: requests with Quote state, KV blocks in use (for health checks and tests)."""
        stats: dict[str, Any] = {
            "live_requests": len(self.quote_states),
            "pending_options": len(self._pending_options),
            "unread_results": len(self.quote_results),
        }
        try:
            blocks = self.kv_manager.block_count(0)
            stats.update(kv_blocks_used=int(blocks.used), kv_blocks_total=int(blocks.total))
        except (AttributeError, TypeError, ValueError):
            pass
        return stats

    def _publish_stats(self) -> None:
        """Send :meth:`quote_stats` to the API process (throttled; always when idle)."""
        now = time.monotonic()
        if self.channel is None or (self.quote_states and now - self._stats_written < 0.25):
            return
        self._stats_written = now
        self.channel.send("stats", stats=self.quote_stats())

    def quote_device_bitmask(self, packed: Any) -> Any:
        """``packed`` (int32 ``[batch, words]``) on the sampler's device, through staging
        buffers kept per shape (pinned host memory is slow to allocate at every step)."""
        from max.driver import Buffer, Usage
        from max.dtype import DType

        shape = tuple(int(d) for d in packed.shape)
        bufs = self._bitmask_buffers.pop(shape, None)
        if bufs is None:
            dev = self._sampler_device
            if dev.is_host:
                staging = Buffer(shape=shape, dtype=DType.int32, device=dev)
                bufs = (staging, staging)
            else:
                staging = Buffer(
                    shape=shape,
                    dtype=DType.int32,
                    device=dev,
                    usage=Usage.STAGING | Usage.UNTRACKED,
                )
                bufs = (staging, Buffer(shape=shape, dtype=DType.int32, device=dev))
        self._bitmask_buffers[shape] = bufs  # most recently used last
        while len(self._bitmask_buffers) > 8:
            del self._bitmask_buffers[next(iter(self._bitmask_buffers))]
        staging, device_buf = bufs
        staging.to_numpy()[:] = packed
        if device_buf is not staging:
            device_buf.inplace_copy_from(staging)
        return device_buf

    # --- Quote API ----------------------------------------------------------------------
    def set_request_options(self, request_id: Any, options: RequestOptions) -> None:
        """Attach mods and options to a request before its first step."""
        self._pending_options[request_id] = options

    def take_result(self, request_id: Any) -> dict[str, Any] | None:
        """The finished request's outcome (finish reason, error, tool calls, trace)."""
        return self.quote_results.pop(request_id, None)

    # --- used by execute_impl -----------------------------------------------------------
    def quote_has_mods(self, ctx: Any) -> bool:
        """Whether the request runs Quote's step (it has, or had, mods); cheap, no allocation."""
        rid = ctx.request_id
        if rid in self.quote_states or getattr(ctx, "log_probabilities_echo", False):
            return True  # ``echo`` with log probabilities: Quote's step computes the prompt's
        options = self._pending_options.get(rid)
        if options is not None:
            return bool(options.mods or options.constraint or options.no_tools)
        return bool(getattr(ctx, "quote_options", None))

    def quote_state(self, ctx: Any) -> RequestState:
        """The request's state, created (and its mods started) on first sight."""
        rid = ctx.request_id
        state = self.quote_states.get(rid)
        if state is not None:
            return state
        options = self._pending_options.pop(rid, None)
        ticket, load_error = None, None
        if options is None and getattr(ctx, "quote_options", None):
            options, ticket, load_error = self._options_from_wire(str(ctx.quote_options))
        options = options if isinstance(options, RequestOptions) else RequestOptions()
        info = RequestInfo(
            str(rid),
            conversation=options.conversation,
            mod_args=dict(options.args),
            choice_index=options.choice_index,
        )
        state = RequestState(
            request_id=str(rid),
            session=None,
            info=info,
            stream=options.stream,
            trace=Trace() if options.trace else None,
            raw_id=rid,
            ticket=ticket,
            no_tools=options.no_tools,
        )
        if options.constraint is not None and load_error is None:
            try:
                state.constraint = Constraint.from_spec(
                    options.constraint,
                    self.tokenizer.delegate,
                    ctx.eos_tracker.eos_token_ids,
                    int(self.vocab_size),
                )
            except GrammarError as exc:
                load_error = f"{ORIGIN}: {exc}"
        if load_error is not None:
            state.session = ModSession(info, self.tokenizer.delegate, [])
            self._fail_at_start(state, ctx, load_error)
        if options.mods:
            session = ModSession(info, self.tokenizer.delegate, list(options.mods))
            if state.trace is not None:
                trace = state.trace

                def on_action(mod: str, event: Any, action: Any) -> None:
                    trace.add(mod=mod, event=type(event).__name__, action=repr(action)[:200])

                session.on_action = on_action
            state.session = session
            try:
                session.start()
            except ModFailure as exc:
                self._fail_at_start(state, ctx, str(exc))
        self.quote_states[rid] = state
        return state

    @staticmethod
    def _fail_at_start(state: RequestState, ctx: Any, message: str) -> None:
        state.error = message
        state.finish_reason = "error"
        state.prefilled = True
        state.prompt_len = ctx.tokens.prompt_length
        state.max_len = int(ctx.max_length)

    def _options_from_wire(self, raw: str) -> tuple[RequestOptions | None, str | None, str | None]:
        """Options sent by Quote's HTTP routes: resolve mod names in the registry."""
        try:
            data = json.loads(raw)
        except ValueError:
            return None, None, "malformed Quote options"
        ticket = data.get("ticket")
        mods = []
        for name in data.get("mods", []):
            try:
                mods.append(self.registry.load(str(name)))
            except KeyError:
                return None, ticket, f"mod '{name}' is not registered"
            except RegistryError as exc:
                return None, ticket, str(exc)
        conv = data.get("conversation") or {}
        options = RequestOptions(
            mods=mods,
            args=dict(data.get("args") or {}),
            stream=bool(data.get("stream", True)),
            trace=bool(data.get("trace", False)),
            conversation=Conversation(
                messages=list(conv.get("messages") or []),
                tools=list(conv.get("tools") or []),
                response_format=conv.get("response_format"),
            ),
            constraint=data.get("constraint"),
            no_tools=bool(data.get("no_tools", False)),
            choice_index=int(data.get("choice_index") or 0),
        )
        return options, ticket, None

    def quote_finish(self, state: RequestState, generated: list[int]) -> None:
        """Record a finished request's outcome for :meth:`take_result`."""
        result = state.result(generated)
        if state.ticket and self.channel is not None:
            # Sent before the request's last output leaves this step: the API process
            # has it in memory when the final chunk arrives.
            del result["completion_tokens"]
            self.channel.send("result", ticket=state.ticket, result=result)
            return
        self.quote_results[state.raw_id] = result

    def quote_sync_kv(self, ctx: Any, *, rewound: bool, after_forward: bool, active: int) -> None:
        """Keep the KV cache consistent with the context's tokens.

        After a forward pass the manager records what was written (``step``). A
        rewound sequence (backtrack, new prompt) is exact in place when prefix
        caching is off (the cache keeps every page; lengths follow
        ``processed_length``). With prefix caching on, shared pages must not be
        rewritten, so the request releases its pages and re-claims them: the next
        alloc re-matches the unchanged full pages and recomputes only the tail.
        ``active`` is the number of tokens the next forward will run.
        """
        kv = self.kv_manager
        if after_forward:
            kv.step(ctx)
        if rewound and self.enable_prefix_caching and not _tail_only_rewind(kv, ctx):
            from quote.hot import sequence

            kv.release(ctx)
            kv.claim(ctx, replica_idx=0)
            sequence.schedule_forward(ctx, 0, ctx.tokens._completion_range.start)
        if rewound or active > 1:
            # A plain one-token step needs nothing here: the scheduler allocates
            # before every step. New prompts, rewinds and forced chunks do.
            kv.alloc(ctx)


def _tail_only_rewind(kv: Any, ctx: Any) -> bool:
    """Whether the rewound sequence still holds every block the prefix cache has hashed.

    Then only the request's own, unpublished last page(s) changed, which nothing
    shares, so the in-place rewind (as without prefix caching) is exact and the
    regenerate step recomputes one token instead of up to a page of tail. Reads MAX
    26.7 ``JengaBlockManager`` internals; anything unexpected falls back to
    release-and-reclaim.
    """
    state_of = getattr(kv, "_state_of", None)
    block = int(getattr(kv, "_block_size", 0) or 0)
    if state_of is None or block <= 0:
        return False
    try:
        state = state_of(ctx)
        published = max(len(state.hashes) * block, int(state.committed_idx))
    except (AttributeError, KeyError, TypeError, ValueError):
        return False
    return int(ctx.tokens._current_length) >= published
