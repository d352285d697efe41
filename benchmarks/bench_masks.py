# SPDX-License-Identifier: Apache-2.0
"""Per-step cost of strategy masks on a synthetic 262,144-token vocabulary.

Usage: ``python benchmarks/bench_masks.py [--steps N] [--seed S]``

For each strategy, a random walk through valid answers calls the strategy's
per-step ``forward`` (the mask action a mod returns at ``ForwardPass``) and
times it; "apply" is the cost of applying that action to the float32 logits
row (what the engine does on the host). One-time costs (token table, llguidance tokenizer and
grammar compile, first mask) are reported separately.
"""

from __future__ import annotations

import argparse
import statistics
import string
import time

import numpy as np

from quote.sdk import ActionBuilder, AdjustedLogits, ForwardPass
from quote.sdk.strategies import Choices, Regex, Strategy, StrategyRunner
from quote.sdk.testing import ListTokenizer
from quote.sdk.tokens import token_table

VOCAB = 262_144


def synthetic_vocab(seed: int) -> ListTokenizer:
    """Single printable chars plus random 2-10 char strings, 262,144 tokens with <eos>."""
    rng = np.random.default_rng(seed)
    alphabet = np.array(
        list(string.ascii_lowercase * 3 + string.ascii_uppercase + string.digits + " .,-")
    )
    tokens = dict.fromkeys(string.printable[:95])
    while len(tokens) < VOCAB - 1:
        for n in rng.integers(2, 11, size=50_000):
            tokens["".join(rng.choice(alphabet, size=n))] = None
    return ListTokenizer(list(tokens)[: VOCAB - 1])


def bench(
    name: str, strategy: Strategy, tok: ListTokenizer, steps: int, seed: int
) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal(len(tok)).astype(np.float32)
    event = ForwardPass("bench", 0, logits)
    builder = ActionBuilder(event)
    t0 = time.perf_counter()
    StrategyRunner(strategy, tok).forward(event, builder)
    cold_ms = (time.perf_counter() - t0) * 1e3
    step_us: list[float] = []
    apply_us: list[float] = []
    sizes: list[int] = []
    paths: set[str] = set()
    done = 0
    while len(step_us) < steps:
        runner = StrategyRunner(strategy, tok)
        while not runner.done and len(step_us) < steps:
            t = time.perf_counter_ns()
            action = runner.forward(event, builder)
            step_us.append((time.perf_counter_ns() - t) / 1e3)
            if isinstance(action, AdjustedLogits):
                t = time.perf_counter_ns()
                row = action.apply(logits)
                apply_us.append((time.perf_counter_ns() - t) / 1e3)
                allowed = np.flatnonzero(np.isfinite(row))
                sizes.append(int(allowed.size))
                paths.add("allow" if action.allow is not None else "bitmask")
                choice = [int(rng.choice(allowed))]
                if runner.state.complete and choice[0] == runner.end_token:
                    runner.sampled(choice[0])
                    continue
            else:
                choice = list(action.tokens)  # type: ignore[union-attr]
                paths.add("force")
            runner.added(choice)
        done += 1
    return {
        "strategy": name,
        "path": "+".join(sorted(paths)),
        "allowed (median)": int(statistics.median(sizes)) if sizes else 0,
        "mask µs/step (median)": statistics.median(step_us),
        "mask µs/step (p90)": float(np.percentile(step_us, 90)),
        "apply µs/step (median)": statistics.median(apply_us) if apply_us else 0.0,
        "first state ms": cold_ms,
        "answers": done,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t0 = time.perf_counter()
    tok = synthetic_vocab(args.seed)
    t1 = time.perf_counter()
    token_table(tok)
    t2 = time.perf_counter()
    print(
        f"vocabulary: {len(tok):,} tokens (built in {t1 - t0:.1f} s; token table {t2 - t1:.2f} s)"
    )
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    cases: list[tuple[str, Strategy]] = [
        ("choices (10 words)", Choices(words)),
        (
            "choices (200 phrases)",
            Choices([f"{a} {b}" for a in words for b in words] + [f"{w}s" for w in words * 10]),
        ),
        ("regex [0-9]{1,6}", Regex("[0-9]{1,6}")),
        ("regex [a-z]+@[a-z]+\\.com", Regex("[a-z]+@[a-z]+\\.com")),
        ("regex [a-z ]+ (large mask)", Regex("[a-z ]{1,80}")),
    ]
    rows = [bench(name, s, tok, args.steps, args.seed) for name, s in cases]
    cols = list(rows[0])
    widths = [max(len(c), *(len(_fmt(r[c])) for r in rows)) for c in cols]
    print(" | ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(_fmt(r[c]).ljust(w) for c, w in zip(cols, widths, strict=True)))


def _fmt(v: object) -> str:
    return f"{v:.1f}" if isinstance(v, float) else str(v)


if __name__ == "__main__":
    main()
