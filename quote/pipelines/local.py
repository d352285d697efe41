# SPDX-License-Identifier: Apache-2.0
"""``LocalEngine``: run requests through a loaded pipeline in-process (no server).

It plays the scheduler's part the way ``max generate`` does: claim KV for each
request, ``alloc`` + ``execute`` per step over the live batch, ``release`` at the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quote.hot.state import RequestOptions

__all__ = ["LocalEngine", "Request", "Result", "greedy_with_logits"]

logger = logging.getLogger(__name__)


@dataclass
class Request:
    """One in-process request: prompt token ids, sampling and Quote options."""

    prompt: Sequence[int]
    max_new_tokens: int = 16
    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int = 0
    ignore_eos: bool = False
    options: RequestOptions = field(default_factory=RequestOptions)
    logprobs: int = 0
    """Alternatives per token to return with each token's log probability (0: none)."""
    echo: bool = False
    """With ``logprobs``, also the prompt tokens' (needs a model built with ``enable_echo``)."""
    images: Sequence[Any] = ()
    """MAX ``ImageMetadata`` of the prompt's images (checkpoints with a vision tower)."""


@dataclass
class Result:
    """What a request produced: the streamed tokens and Quote's outcome."""

    tokens: list[int]
    chunks: list[list[int]]
    finish_reason: str | None
    error: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    trace: dict[str, Any] | None = None
    forward_passes: int = 0
    final_sequence: list[int] = field(default_factory=list)
    logprobs: list[Any] = field(default_factory=list)
    """MAX ``LogProbabilities`` entries in delivery order (with ``Request.logprobs``)."""


class LocalEngine:
    """Runs batches of :class:`Request` on a ``LoadedPipeline``."""

    def __init__(self, loaded: Any) -> None:
        self.loaded = loaded
        self.pipeline = loaded.pipeline

    def make_context(self, req: Request) -> Any:
        """A MAX ``TextContext`` for ``req`` (``TextAndVisionContext`` with images)."""
        from max.pipelines.context import EOSTracker, SamplingParams, TextContext, TokenBuffer
        from max.pipelines.request.base import RequestID

        # Every id that ends generation for this model (``<eos>`` and ``<end_of_turn>`` for
        # Gemma), as MAX's server uses; the Hugging Face ``eos_token_id`` alone misses some.
        eos_ids = getattr(self.loaded.tokenizer, "eos_token_ids", None) or {
            self.loaded.hf_tokenizer.eos_token_id
        }
        params: dict[str, Any] = {
            "temperature": req.temperature,
            "seed": req.seed,
            "ignore_eos": req.ignore_eos,
        }
        if req.top_k is not None:
            params["top_k"] = req.top_k
        if req.top_p is not None:
            params["top_p"] = req.top_p
        fields: dict[str, Any] = {}
        cls: Any = TextContext
        if req.images:
            from max.pipelines.context import TextAndVisionContext

            hf = self.loaded.config.model.huggingface_config
            cls = TextAndVisionContext
            fields = {"images": list(req.images), "vision_token_ids": [hf.image_token_index]}
        return cls(
            **fields,
            request_id=RequestID(),
            max_length=len(req.prompt) + req.max_new_tokens,
            tokens=TokenBuffer(np.asarray(list(req.prompt), dtype=np.int64)),
            eos_tracker=EOSTracker(eos_token_ids={int(t) for t in eos_ids}),
            sampling_params=SamplingParams(**params),
            ignore_eos=req.ignore_eos,
            log_probabilities=req.logprobs,
            log_probabilities_echo=req.echo,
            vocab_size=int(self.pipeline.vocab_size),
        )

    def generate(
        self,
        requests: Sequence[Request],
        max_steps: int = 10_000,
        prefill_chunk: int | None = None,
        arrivals: Sequence[int] | None = None,
    ) -> list[Result]:
        """Run ``requests`` as one continuously-batched group until all finish.

        ``prefill_chunk`` splits longer prompts into chunks of that many tokens, one per
        step, as MAX's scheduler does when a prompt exceeds its token budget.
        ``arrivals[i]`` is the step at which request ``i`` joins the batch (default: all at
        step 0), as requests reach a server's scheduler at different times.
        """
        from max.pipelines.modeling.types import TextGenerationInputs

        kv = self.pipeline.kv_manager
        ctxs = [self.make_context(r) for r in requests]
        chunks: list[list[list[int]]] = [[] for _ in requests]
        logprobs: list[list[Any]] = [[] for _ in requests]
        outcome: list[dict[str, Any] | None] = [None for _ in requests]
        waiting = dict(enumerate(ctxs))
        start = list(arrivals) if arrivals is not None else [0] * len(ctxs)
        live: dict[int, Any] = {}
        try:
            for step in range(max_steps):
                for i in [i for i in waiting if start[i] <= step]:
                    ctx = live[i] = waiting.pop(i)
                    if hasattr(self.pipeline, "set_request_options"):
                        self.pipeline.set_request_options(ctx.request_id, requests[i].options)
                    kv.claim(ctx, replica_idx=0)
                if not live:
                    if not waiting:
                        break
                    continue
                for ctx in live.values():
                    kv.alloc(ctx)  # MAX's scheduler: alloc (prefix match), then the budget chunks
                    if prefill_chunk and ctx.tokens.active_length > prefill_chunk:
                        ctx.tokens.chunk(prefill_chunk)
                outputs = self.pipeline.execute(TextGenerationInputs(batches=[list(live.values())]))
                for i, ctx in list(live.items()):
                    out = outputs.get(ctx.request_id)
                    if out is None:
                        continue
                    if out.tokens:
                        chunks[i].append([int(t) for t in out.tokens])
                    logprobs[i].extend(out.log_probabilities or [])
                    if out.is_done:
                        if hasattr(self.pipeline, "take_result"):
                            outcome[i] = self.pipeline.take_result(ctx.request_id)
                        self._release(ctx)
                        del live[i]
            else:
                raise RuntimeError(f"requests did not finish within {max_steps} steps")
        finally:
            for ctx in live.values():
                self._release(ctx)
        results = []
        for i, ctx in enumerate(ctxs):
            o = outcome[i] or {}
            toks = [t for c in chunks[i] for t in c]
            reason = o.get("finish_reason") or _reason(ctx)
            results.append(
                Result(
                    tokens=toks,
                    chunks=chunks[i],
                    finish_reason=reason,
                    error=o.get("error"),
                    tool_calls=o.get("tool_calls"),
                    trace=o.get("trace"),
                    forward_passes=int(o.get("forward_passes", 0)),
                    final_sequence=[int(t) for t in ctx.tokens.all],
                    logprobs=logprobs[i],
                )
            )
        return results

    def _release(self, ctx: Any) -> None:
        kv = self.pipeline.kv_manager
        if kv.contains(ctx):
            kv.release(ctx)
        self.pipeline.release(ctx.request_id)


def _reason(ctx: Any) -> str:
    from max.pipelines.context.status import GenerationStatus

    return "length" if ctx.status == GenerationStatus.MAXIMUM_LENGTH else "stop"


def replace_options(req: Request, **changes: Any) -> Request:
    """Copy of ``req`` with its options changed."""
    return dataclasses.replace(req, options=dataclasses.replace(req.options, **changes))


def greedy_with_logits(
    pipeline: Any, prompts: Sequence[Sequence[int]], max_new_tokens: int
) -> tuple[list[list[int]], list[list[np.ndarray]]]:
    """Decode ``prompts`` greedily as one batch with MAX's ``GenerateIterator``.

    Returns each row's full sequence (prompt + generated) and the logits of each
    generated token (float32 rows); ``ignore_eos`` keeps every row to ``max_new_tokens``.
    Used as the engine side of reference comparisons (tests, benchmarks).
    """
    from max.pipelines.lib.generate import GenerateIterator

    with (
        _text_rows_allowed(),
        GenerateIterator(
            pipeline,
            [list(p) for p in prompts],
            max_new_tokens=max_new_tokens,
            temperature=0.0,
            top_k=1,
            ignore_eos=True,
            output_logits=True,
        ) as batch,
    ):
        for _ in batch:
            pass
    sequences = [[int(t) for t in seq] for seq in batch.sequences]
    logits = [[np.asarray(r, dtype=np.float32) for r in rows] for rows in batch.logits]
    return sequences, logits


@contextlib.contextmanager
def _text_rows_allowed() -> Iterator[None]:
    """Let MAX's ``GenerateIterator`` run Quote's vision architecture on text rows.

    MAX 26.7 refuses every architecture whose context type is a ``TextAndVisionContext``
    (``max/pipelines/lib/generate.py``, ``_check_supported``), since it builds text-only
    rows; Quote's ``Gemma3ForConditionalGeneration`` takes text-only rows, so only that
    refusal is skipped, for :class:`~quote.pipelines.context.QuoteVisionContext` only.
    """
    from max.pipelines.lib import PIPELINE_REGISTRY
    from max.pipelines.lib import generate as max_generate

    from quote.pipelines.context import QuoteVisionContext

    original = max_generate._check_supported

    def check(pipeline_config: Any, caller: str = "generate()") -> None:
        context_type = PIPELINE_REGISTRY.retrieve_context_type(pipeline_config)
        if not issubclass(context_type, QuoteVisionContext):
            original(pipeline_config, caller)

    max_generate._check_supported = check
    try:
        yield
    finally:
        max_generate._check_supported = original
