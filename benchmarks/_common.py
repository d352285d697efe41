# SPDX-License-Identifier: Apache-2.0
"""Shared helpers for the MAX benchmarks: arguments, a timed step loop, tables and JSON.

The timed loop plays the scheduler's part exactly like ``quote.pipelines.local.LocalEngine``
(claim, then ``alloc`` + ``execute`` per step, ``release`` at the end) and records the wall
time of every ``pipeline.execute`` call, so prefill and decode steps can be told apart.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("MAX_SERVE_DISABLE_TELEMETRY", "1")

__all__ = [
    "Timed",
    "add_common_args",
    "load_kwargs",
    "machine_info",
    "markdown_table",
    "median_ms",
    "model_dir",
    "random_prompt",
    "register_mod",
    "Stepper",
    "run_timed",
    "write_json",
]


def add_common_args(parser: argparse.ArgumentParser, *, reps: int, out: str) -> None:
    """``--model``, ``--devices``, ``--reps`` and ``--out``, shared by every benchmark."""
    parser.add_argument(
        "--model",
        default=None,
        help="Hugging Face checkpoint directory (default: the tiny Gemma3 in a temp dir)",
    )
    parser.add_argument("--devices", default="cpu", help="MAX device spec: cpu, gpu, gpu:0")
    parser.add_argument("--reps", type=int, default=reps, help="interleaved repetitions")
    parser.add_argument("--out", default=out, help="where to write the JSON results")
    parser.add_argument(
        "--mem",
        type=float,
        default=None,
        help="MAX device_memory_utilization (default: MAX's); lower it on a GPU shared with "
        "another pipeline or with torch",
    )


def load_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Extra ``load_pipeline`` fields from :func:`add_common_args`' flags (``--mem``)."""
    mem = getattr(args, "mem", None)
    return {} if mem is None else {"device_memory_utilization": mem}


def model_dir(model: str | None) -> Path:
    """``model`` as a path, or the tiny default checkpoint written to a temp dir."""
    if model:
        return Path(model)
    from quote.tiny import write_tiny_model

    return write_tiny_model(Path(tempfile.mkdtemp(prefix="quote-bench-tiny-")))


def random_prompt(n: int, vocab: int, seed: int) -> list[int]:
    """``n`` token ids drawn uniformly from ``[16, vocab)`` (no special tokens)."""
    rng = np.random.default_rng(seed)
    return [int(t) for t in rng.integers(16, vocab, size=n)]


@dataclass
class Timed:
    """One timed run: the seconds of every ``execute`` call and each request's outcome.

    Attributes:
        step_s: Wall time of each ``execute`` call; index 0 is the prefill step.
        batch: Live requests in each call.
        tokens: Generated tokens per request.
        forward_passes: Quote's forward-pass count per request (0 for the stock pipeline).
        outcomes: ``take_result`` of each request (QuotePipeline only).
    """

    step_s: list[float] = field(default_factory=list)
    batch: list[int] = field(default_factory=list)
    tokens: list[list[int]] = field(default_factory=list)
    forward_passes: list[int] = field(default_factory=list)
    outcomes: list[dict[str, Any] | None] = field(default_factory=list)

    def decode_steps(self, skip: int = 1) -> list[float]:
        """Step times after the first ``skip`` calls (the prefill), full batches only."""
        full = self.batch[0] if self.batch else 0
        return [t for t, b in zip(self.step_s[skip:], self.batch[skip:], strict=True) if b == full]


class StockStep:
    """A ``QuotePipeline`` stepped by MAX's own ``TextGenerationPipeline.execute``.

    Same object, weights and KV cache as the Quote configurations, so the ratio
    against it isolates Quote's step from differences between pipeline instances.
    """

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.kv_manager = pipe.kv_manager
        self.vocab_size = pipe.vocab_size

    def execute(self, inputs: Any) -> Any:
        """MAX's step on the wrapped pipeline."""
        from max.pipelines.lib.pipeline_variants.text_generation import TextGenerationPipeline

        return TextGenerationPipeline.execute(self.pipe, inputs)

    def release(self, request_id: Any) -> None:
        """Release as the wrapped pipeline does."""
        self.pipe.release(request_id)


class Stepper:
    """One batch of greedy requests on a pipeline, advanced one timed ``execute`` at a time.

    Several steppers may share a pipeline (their requests are claimed side by side), so
    configurations can be interleaved step by step: noise then hits all of them alike.
    ``mods`` are attached to every request (QuotePipeline only); an empty list leaves the
    requests without mods (Quote then takes MAX's stock step). ``stock_step`` steps with MAX's
    own ``TextGenerationPipeline.execute`` even on a ``QuotePipeline`` (same weights and cache:
    a baseline free of differences between pipeline instances). ``constraint`` is Quote's
    built-in structured output for every request (``quote.hot.constraint``).
    """

    def __init__(
        self,
        loaded: Any,
        prompts: Sequence[Sequence[int]],
        *,
        max_new_tokens: int,
        mods: Sequence[Any] = (),
        ignore_eos: bool = True,
        stock_step: bool = False,
        constraint: dict[str, Any] | None = None,
    ) -> None:
        from quote.hot.state import RequestOptions
        from quote.pipelines.local import LocalEngine, Request

        self.engine = LocalEngine(loaded)
        self.pipeline = loaded.pipeline
        self.kv = self.pipeline.kv_manager
        self._execute = StockStep(self.pipeline).execute if stock_step else self.pipeline.execute
        reqs = [
            Request(
                prompt=list(p),
                max_new_tokens=max_new_tokens,
                ignore_eos=ignore_eos,
                options=RequestOptions(mods=list(mods), constraint=constraint),
            )
            for p in prompts
        ]
        self.ctxs = [self.engine.make_context(r) for r in reqs]
        self.live = dict(enumerate(self.ctxs))
        self.out = Timed(
            tokens=[[] for _ in reqs],
            forward_passes=[0 for _ in reqs],
            outcomes=[None for _ in reqs],
        )
        self.quote = hasattr(self.pipeline, "set_request_options")
        for i, ctx in self.live.items():
            if self.quote and (reqs[i].options.mods or constraint is not None):
                self.pipeline.set_request_options(ctx.request_id, reqs[i].options)
            self.kv.claim(ctx, replica_idx=0)

    @property
    def done(self) -> bool:
        """Whether every request finished."""
        return not self.live

    def step(self) -> float:
        """Run one step (``alloc`` each live request, then a timed ``execute``); its seconds."""
        from max.pipelines.modeling.types import TextGenerationInputs

        for ctx in self.live.values():
            self.kv.alloc(ctx)
        inputs = TextGenerationInputs(batches=[list(self.live.values())])
        t0 = time.perf_counter()
        outputs = self._execute(inputs)
        dt = time.perf_counter() - t0
        self.out.step_s.append(dt)
        self.out.batch.append(len(self.live))
        for i, ctx in list(self.live.items()):
            o = outputs.get(ctx.request_id)
            if o is None:
                continue
            self.out.tokens[i].extend(int(t) for t in o.tokens)
            if o.is_done:
                if self.quote:
                    res = self.pipeline.take_result(ctx.request_id)
                    self.out.outcomes[i] = res
                    self.out.forward_passes[i] = int((res or {}).get("forward_passes", 0))
                self.engine._release(ctx)
                del self.live[i]
        return dt

    def close(self) -> Timed:
        """Release what is still live; raise if a request failed; the timings."""
        for ctx in self.live.values():
            self.engine._release(ctx)
        self.live.clear()
        for o in self.out.outcomes:
            if o and o.get("error"):
                raise RuntimeError(f"request failed: {o['error']}")
        return self.out


def run_timed(
    loaded: Any,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    mods: Sequence[Any] = (),
    ignore_eos: bool = True,
    max_steps: int = 100_000,
) -> Timed:
    """Run ``prompts`` as one batch (greedy) to the end and time each ``execute`` call."""
    s = Stepper(loaded, prompts, max_new_tokens=max_new_tokens, mods=mods, ignore_eos=ignore_eos)
    try:
        for _ in range(max_steps):
            if s.done:
                break
            s.step()
        else:
            raise RuntimeError(f"requests did not finish within {max_steps} steps")
    finally:
        out = s.close()
    return out


def median_ms(values: Sequence[float]) -> float:
    """Median of ``values`` (seconds) in milliseconds."""
    return statistics.median(values) * 1e3 if values else float("nan")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON to ``path`` (parents created)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nwrote {p}")


def machine_info(devices: str) -> dict[str, Any]:
    """Where the numbers came from (CPU count, load, devices)."""
    import platform

    info: dict[str, Any] = {
        "devices": devices,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    try:
        info["loadavg"] = os.getloadavg()
    except OSError:
        pass
    return info


def register_mod(base: str, key: str, name: str, source: str, entrypoint: str) -> None:
    """Register (or replace) a mod on the server at ``base`` (``POST /v1/mods``)."""
    from quote.server.process import register_mod as post_mod

    status, text = post_mod(base, key, name, source, entrypoint)
    if status != 201:
        raise RuntimeError(f"registering mod {name!r} failed: {status} {text}")
