# SPDX-License-Identifier: Apache-2.0
"""Benchmark 3: forcing k tokens costs one forward pass, not k.

Usage::

    .venv/bin/python benchmarks/bench_forced.py [--model DIR] [--devices cpu|gpu]
        [--ks 4,16,64] [--reps 5] [--prompt-len 128] [--out /tmp/quote-bench/forced.json]

Two requests per k, same prompt, same mod class, interleaved per repetition:

- ``forced``: at the ``Added`` event of decode step 2 the mod returns ``ForceTokens`` of k
  tokens; the next forward pass runs them as one (k+1)-token chunk;
- ``single``: the same mod with forcing off; the model samples the same number of tokens,
  one forward pass each.

Both produce ``3 + k + 3`` completion tokens. Reported: forward passes
(``Result.forward_passes``, prefill included), the decode time of the whole request
(every ``execute`` after the prefill), and the step that consumes the forced tokens
against the k plain decode steps that produce k tokens.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from typing import Any

from _common import (
    add_common_args,
    load_kwargs,
    machine_info,
    markdown_table,
    model_dir,
    random_prompt,
    run_timed,
    write_json,
)

from quote.sdk import Mod
from quote.sdk.actions import Action, ForceTokens
from quote.sdk.events import Added, Event
from quote.sdk.mod import ModDefinition

AT_STEP = 2
"""The decode step whose ``Added`` event forces the tokens."""
TAIL = 3
"""Sampled steps after the forced chunk."""


def forcing_mod(k: int, force: bool) -> ModDefinition:
    """A mod that forces ``k`` ordinary tokens at step ``AT_STEP`` (or, with ``force=False``,
    does the same bookkeeping and returns Noop)."""
    tokens = tuple(200 + (i % 32) for i in range(k))

    class Forcer(Mod):
        hold_back = 0

        def handle(self, event: Event, actions: Any, tokenizer: Any) -> Action | None:
            if isinstance(event, Added) and event.step == AT_STEP and not event.forced and force:
                return ForceTokens(tokens)
            return None

    return ModDefinition(f"force{k}" if force else f"noforce{k}", Forcer, 0)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table; write JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p, reps=5, out="/tmp/quote-bench/forced.json")
    p.add_argument("--ks", default="4,16,64")
    p.add_argument("--prompt-len", type=int, default=128)
    args = p.parse_args(argv)
    ks = [int(k) for k in args.ks.split(",")]

    from quote.pipelines.loader import load_pipeline

    path = model_dir(args.model)
    loaded = load_pipeline(
        path,
        devices=args.devices,
        max_batch_size=1,
        max_length=args.prompt_len + max(ks) + 64,
        **load_kwargs(args),
    )
    prompt = random_prompt(args.prompt_len, int(loaded.pipeline.vocab_size), seed=0)

    def run(k: int, force: bool) -> Any:
        n = AT_STEP + 1 + k + TAIL
        return run_timed(loaded, [prompt], max_new_tokens=n, mods=[forcing_mod(k, force)])

    for k in ks:  # warm-up (the chunk shape of each k)
        run(k, True)
        run(k, False)

    data: dict[int, dict[str, list[float]]] = {
        k: {"forced_total": [], "single_total": [], "chunk": [], "k_single": [], "plain": []}
        for k in ks
    }
    passes: dict[int, tuple[int, int]] = {}
    for rep in range(args.reps):
        for k in ks:
            f = run(k, True)
            s = run(k, False)
            forced_tokens = f.tokens[0][AT_STEP + 1 : AT_STEP + 1 + k]
            assert forced_tokens == [200 + (i % 32) for i in range(k)], "forcing not applied"
            passes[k] = (f.forward_passes[0], s.forward_passes[0])
            d = data[k]
            d["forced_total"].append(sum(f.step_s[1:]))
            d["single_total"].append(sum(s.step_s[1:]))
            d["chunk"].append(f.step_s[AT_STEP + 1])
            d["k_single"].append(sum(s.step_s[AT_STEP + 1 : AT_STEP + 1 + k]))
            d["plain"].append(statistics.median(s.step_s[1:]))
        print(f"rep {rep + 1}/{args.reps} done", file=sys.stderr)

    rows = []
    results = []
    for k in ks:
        d = {name: statistics.median(v) * 1e3 for name, v in data[k].items()}
        fp, sp = passes[k]
        rows.append(
            [
                k,
                f"{sp} passes, {d['single_total']:.2f} ms",
                f"{fp} passes, {d['forced_total']:.2f} ms",
                f"{d['single_total'] / d['forced_total']:.2f}x faster",
                f"{d['k_single']:.2f} ms",
                f"{d['chunk']:.3f} ms",
                f"{d['chunk'] / d['plain']:.2f}x",
            ]
        )
        results.append(
            {
                "k": k,
                "forward_passes_forced": fp,
                "forward_passes_single": sp,
                "decode_ms_forced": d["forced_total"],
                "decode_ms_single": d["single_total"],
                "speedup": d["single_total"] / d["forced_total"],
                "chunk_step_ms": d["chunk"],
                "k_single_steps_ms": d["k_single"],
                "plain_step_ms": d["plain"],
                "chunk_over_plain": d["chunk"] / d["plain"],
            }
        )
    print(
        f"\n### Forced tokens ({args.devices}, batch 1, {args.prompt_len}-token prompt, "
        f"{args.reps} interleaved reps, medians)\n"
    )
    print(
        markdown_table(
            [
                "k",
                "baseline: k sampled steps (whole request)",
                "Quote: k forced in one step",
                "ratio",
                "k plain steps",
                "the one chunk step",
                "chunk step / plain step",
            ],
            rows,
        )
    )
    write_json(
        args.out,
        {
            "benchmark": "forced",
            "machine": machine_info(args.devices),
            "model": str(path),
            "args": vars(args),
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
