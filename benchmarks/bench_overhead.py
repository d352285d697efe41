# SPDX-License-Identifier: Apache-2.0
"""Benchmark 1: per-step overhead of Quote's mods against MAX's stock pipeline.

Usage::

    .venv/bin/python benchmarks/bench_overhead.py [--model DIR] [--devices cpu|gpu]
        [--batch-sizes 1,16,64] [--reps 3] [--steps 64] [--prompt-len 128]
        [--profile] [--out /tmp/quote-bench/overhead.json]

Four configurations, same checkpoint, same process. Each repetition runs one batch per
configuration side by side and steps them in turn (``stock none noop mask`` for every
decode step, the order rotating each round), so noise from other processes hits all alike:

- ``stock``: MAX's ``TextGenerationPipeline`` (``load_pipeline(stock=True)``);
- ``stock_same``: MAX's ``TextGenerationPipeline.execute`` called on the ``QuotePipeline``
  object (same weights and KV cache as the Quote configurations: separates Quote's step from
  differences between two pipeline instances; a second paired-ratio column uses it);
- ``none``: ``QuotePipeline``, no mod (it falls back to the stock step);
- ``noop``: ``QuotePipeline``, a mod that returns Noop on every event;
- ``mask``: ``QuotePipeline``, a mod returning a fixed sparse ``AdjustedLogits(allow=...)``
  at every ``ForwardPass`` (what ``constrain(Choices(...))`` does per step).

Every request is greedy with ``ignore_eos``, a fixed prompt and ``--steps`` decode steps;
only decode steps are timed (each ``execute`` call after the prefill). The tables give the
median ms/step, tokens/s (batch / step time), the ratio of medians and the paired ratio (the
median over rounds of stock's step time / the configuration's step time in the same round),
against which the targets are checked.

``--profile`` adds a cProfile of the ``noop`` configuration at each batch size;
``--breakdown`` times each phase of the step (us/step) for ``stock`` and ``noop``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from _common import (
    Stepper,
    add_common_args,
    load_kwargs,
    machine_info,
    markdown_table,
    median_ms,
    model_dir,
    random_prompt,
    run_timed,
    write_json,
)

from quote.sdk import mod
from quote.sdk.actions import AdjustedLogits
from quote.sdk.events import ForwardPass

ALLOW = tuple(range(200, 232))
"""The mask mod's allow-list: 32 ordinary token ids (the HF peer benchmark uses the same)."""

TARGETS = {("none", 1): 0.97, ("none", 16): 0.97, ("noop", 1): 0.90, ("noop", 16): 0.95}
"""Issue 8's targets: minimum tokens/s ratio to stock by (configuration, batch size)."""


@mod(name="noop", hold_back=0)
def noop_mod(event: Any, actions: Any, tokenizer: Any) -> None:
    """Returns Noop on every event."""
    return None


_MASK = AdjustedLogits(allow=ALLOW)


@mod(name="mask", hold_back=0)
def mask_mod(event: Any, actions: Any, tokenizer: Any) -> AdjustedLogits | None:
    """A fixed sparse allow-list at every ``ForwardPass`` (the action is built once)."""
    if isinstance(event, ForwardPass):
        return _MASK
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print tables; write JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p, reps=3, out="/tmp/quote-bench/overhead.json")
    p.add_argument("--batch-sizes", default="1,16,64")
    p.add_argument("--steps", type=int, default=64, help="decode steps per run")
    p.add_argument("--prompt-len", type=int, default=128)
    p.add_argument("--profile", action="store_true", help="cProfile the noop configuration")
    p.add_argument(
        "--breakdown",
        action="store_true",
        help="time each phase of the step (perf_counter) for stock and noop",
    )
    args = p.parse_args(argv)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]

    from quote.pipelines.loader import load_pipeline

    path = model_dir(args.model)
    kw: dict[str, Any] = {
        "devices": args.devices,
        "max_batch_size": max(batch_sizes),
        "max_length": max(2048, args.prompt_len + args.steps + 8),
        **load_kwargs(args),
    }
    t0 = time.perf_counter()
    stock = load_pipeline(path, stock=True, **kw)
    quote = load_pipeline(path, **kw)
    print(f"loaded both pipelines in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    vocab = int(quote.pipeline.vocab_size)
    prompt = random_prompt(args.prompt_len, vocab, seed=0)

    configs: dict[str, tuple[Any, list[Any], bool]] = {
        "stock": (stock, [], False),
        "stock_same": (quote, [], True),
        "none": (quote, [], False),
        "noop": (quote, [noop_mod], False),
        "mask": (quote, [mask_mod], False),
    }

    def stepper(name: str, b: int, steps: int) -> Stepper:
        loaded, mods, stock_step = configs[name]
        return Stepper(loaded, [prompt] * b, max_new_tokens=steps, mods=mods, stock_step=stock_step)

    def step(name: str, s: Stepper) -> float:
        return s.step()

    # Warm-up: a short run of each configuration at each batch size (first-step costs).
    for b in batch_sizes:
        for name in configs:
            s = stepper(name, b, 4)
            while not s.done:
                step(name, s)
            s.close()

    # Every configuration's batch runs side by side; each round steps each of them once
    # (rotating the order), so noise from other processes hits all of them alike.
    times: dict[tuple[str, int], list[float]] = {}
    paired: dict[tuple[str, int], list[float]] = {}
    same: dict[tuple[str, int], list[float]] = {}
    names = list(configs)
    for rep in range(args.reps):
        for b in batch_sizes:
            steppers = {n: stepper(n, b, args.steps) for n in names}
            for n, s in steppers.items():  # prefill, untimed
                step(n, s)
            for rnd in range(args.steps - 1):
                order = names[rnd % len(names) :] + names[: rnd % len(names)]
                got = {n: step(n, steppers[n]) for n in order}
                for n in names:
                    times.setdefault((n, b), []).append(got[n])
                    paired.setdefault((n, b), []).append(got["stock"] / got[n])
                    same.setdefault((n, b), []).append(got["stock_same"] / got[n])
            for n, s in steppers.items():
                timed = s.close()
                if n.startswith("mask") and rep == 0:
                    assert all(t in ALLOW for t in timed.tokens[0]), "mask mod not applied"
        print(f"rep {rep + 1}/{args.reps} done", file=sys.stderr)

    rows = []
    results = []
    for b in batch_sizes:
        base_ms = median_ms(times[("stock", b)])
        for name in names:
            ms = median_ms(times[(name, b)])
            ratio = statistics.median(paired[(name, b)])
            ratio_same = statistics.median(same[(name, b)])
            target = TARGETS.get((name, b))
            verdict = "" if target is None else ("met" if ratio >= target else "MISSED")
            rows.append(
                [
                    b,
                    name,
                    f"{base_ms:.3f} ms ({b / base_ms * 1e3:.0f} tok/s)",
                    f"{ms:.3f} ms ({b / ms * 1e3:.0f} tok/s)",
                    f"{base_ms / ms:.3f}x",
                    f"{ratio:.3f}x",
                    f"{ratio_same:.3f}x",
                    f">= {target}x {verdict}" if target else "",
                ]
            )
            results.append(
                {
                    "batch": b,
                    "config": name,
                    "stock_ms_per_step": base_ms,
                    "quote_ms_per_step": ms,
                    "stock_tok_s": b / base_ms * 1e3,
                    "quote_tok_s": b / ms * 1e3,
                    "ratio_of_medians": base_ms / ms,
                    "ratio_paired_median": ratio,
                    "ratio_paired_vs_same_instance": ratio_same,
                    "overhead_us_per_request_step": (ms - base_ms) * 1e3 / b,
                    "target": target,
                    "met": None if target is None else ratio >= target,
                    "steps_timed": len(times[(name, b)]),
                }
            )
    print(
        f"\n### Mod overhead ({args.devices}; {args.prompt_len}-token prompt, "
        f"{args.steps} decode steps, {args.reps} reps, configurations interleaved step by "
        "step; median ms/step)\n"
    )
    print(
        markdown_table(
            [
                "batch",
                "configuration",
                "stock MAX",
                "Quote",
                "ratio of medians (tok/s)",
                "paired ratio (median per round)",
                "paired vs stock step on the Quote instance",
                "target (paired)",
            ],
            rows,
        )
    )

    profiles: dict[str, str] = {}
    if args.profile:
        for b in batch_sizes:
            profiles[f"noop@{b}"] = _profile(
                lambda b=b: run_timed(
                    quote, [prompt] * b, max_new_tokens=args.steps, mods=[noop_mod]
                )
            )
            print(f"\n#### cProfile, noop mod, batch {b} (one run, top 25 by tottime)\n")
            print("```\n" + profiles[f"noop@{b}"] + "```")

    breakdown: dict[str, Any] = {}
    if args.breakdown:
        phase_cfgs = [("stock", stock, [], False), ("noop", quote, [noop_mod], False)]
        for b in batch_sizes:
            per: dict[str, dict[str, float]] = {}
            for _ in range(2):  # the second pass is kept (warm)
                for name, loaded, mods, pat in phase_cfgs:
                    per[name] = _phases(loaded, prompt, b, args.steps, mods, pat)
            breakdown[str(b)] = per
            phases = sorted({k for v in per.values() for k in v}, key=_PHASE_ORDER.index)
            print(f"\n#### Where the time goes, batch {b} (us per step, mean over a run)\n")
            print(
                markdown_table(
                    ["phase", *per],
                    [[ph, *(f"{per[n].get(ph, 0.0):.0f}" for n in per)] for ph in phases],
                )
            )

    write_json(
        args.out,
        {
            "benchmark": "overhead",
            "machine": machine_info(args.devices),
            "model": str(path),
            "args": vars(args),
            "allow": list(ALLOW),
            "results": results,
            "profiles": profiles,
            "breakdown_us_per_step": breakdown,
        },
    )
    return 0


_PHASE_ORDER = [
    "prepare_batch (MAX)",
    "model forward (MAX)",
    "start_requests",
    "sampling_processor (MAX, before the forward)",
    "run_sampler (MAX sampler graph)",
    "dispatch_forward_pass (copy + ForwardPass)",
    "sample (fetch tokens; resample after edits)",
    "dispatch_sampled (Sampled + append + Added)",
    "_drain (forced edits)",
    "finish_or_reschedule (schedule + KV)",
    "emit",
    "update_context_and_prepare_responses (MAX)",
    "kv.step (MAX)",
    "other (sampling etc.)",
    "total",
]


def _phases(
    loaded: Any, prompt: list[int], b: int, steps: int, mods: list[Any], patched: bool
) -> dict[str, float]:
    """Mean microseconds per decode step spent in each phase of the step."""
    import contextlib

    import max.pipelines.lib.pipeline_variants.text_generation as tg

    import quote.hot.execute_impl as ei

    acc: dict[str, float] = {}
    targets: list[tuple[Any, str, str]] = [
        (tg.TextGenerationPipeline, "prepare_batch", "prepare_batch (MAX)"),
        (type(loaded.pipeline._pipeline_model), "execute", "model forward (MAX)"),
        (tg, "update_context_and_prepare_responses", "update_context_and_prepare_responses (MAX)"),
        (ei, "start_requests", "start_requests"),
        (ei, "sampling_processor", "sampling_processor (MAX, before the forward)"),
        (ei, "run_sampler", "run_sampler (MAX sampler graph)"),
        (ei, "dispatch_forward_pass", "dispatch_forward_pass (copy + ForwardPass)"),
        (ei, "sample", "sample (fetch tokens; resample after edits)"),
        (ei, "dispatch_sampled", "dispatch_sampled (Sampled + append + Added)"),
        (ei, "_drain", "_drain (forced edits)"),
        (ei, "finish_or_reschedule", "finish_or_reschedule (schedule + KV)"),
        (ei, "emit", "emit"),
    ]
    if not mods:
        targets.append((type(loaded.pipeline.kv_manager), "step", "kv.step (MAX)"))

    def timer(fn: Callable[..., Any], label: str) -> Callable[..., Any]:
        def wrapped(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                acc[label] = acc.get(label, 0.0) + time.perf_counter() - t

        return wrapped

    with contextlib.nullcontext():
        runner = Stepper(loaded, [prompt] * b, max_new_tokens=steps, mods=mods)
        runner.step()  # the prefill, untimed
        saved = [(o, n, o.__dict__[n]) for o, n, _ in targets]
        total = 0.0
        n = 0
        try:
            for o, name, label in targets:
                setattr(o, name, timer(getattr(o, name), label))
            while not runner.done:
                total += runner.step()
                n += 1
        finally:
            for o, name, v in saved:
                setattr(o, name, v)
            runner.close()
    out = {k: v / n * 1e6 for k, v in acc.items()}
    out["total"] = total / n * 1e6
    out["other (sampling etc.)"] = out["total"] - sum(v for k, v in out.items() if k != "total")
    return out


def _profile(fn: Callable[[], Any]) -> str:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(25)
    text = s.getvalue()
    start = text.find("   ncalls")
    return text[start:] if start >= 0 else text


if __name__ == "__main__":
    raise SystemExit(main())
