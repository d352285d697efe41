# SPDX-License-Identifier: Apache-2.0
"""Mixed batches are exact: every request equals its run alone, token for token.

Rounds of requests with and without mods (forcing at ``Prefilled``, masking,
backtracking, forcing the output, emitting tool calls, failing) join a continuously
batched engine at different steps, so a request without mods may first run MAX's
stock step and then share Quote's step with modded requests (the defect of issue 14:
its earlier tokens were sent again). Identical and different prompts, prefix caching
on and off, chunked prefill, greedy and seeded sampling, streaming and not.
Each request's outcome is compared with the same request run alone on the same
pipeline; one mismatch fails. The server-level version of this check (HTTP, real
scheduler, ``--max-batch-size 8``) is in ``test_mixed_batches_server.py``.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from quote.hot.state import RequestOptions
from quote.pipelines.local import LocalEngine, Request, Result
from quote.sdk import Sampled, mod

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import mixed_mods  # noqa: E402

pytestmark = pytest.mark.integration

ROUNDS_PER_CONFIG = 55
"""Rounds per (prefix caching, chunked prefill) configuration: 4 x 55 = 220 in all."""


@mod
def raises(e: Any, a: Any, t: Any) -> Any:
    """Fails its request at the second Sampled."""
    if isinstance(e, Sampled) and e.step == 1:
        raise ValueError("boom")
    return None


MODS = {
    None: [],
    "noop": [mixed_mods.noop],
    "force": [mixed_mods.force],  # ForceTokens at Prefilled
    "mask": [mixed_mods.mask],
    "backtrack": [mixed_mods.backtrack],
    "fixed": [mixed_mods.fixed],  # ForceOutput
    "tool": [mixed_mods.tool],  # ToolCalls
    "raises": [raises],
    "force+mask": [mixed_mods.force, mixed_mods.mask],
}
TEXTS = [
    "hi",
    "request number 1",
    "Tell me about the weather in a long and winding sentence, please, with details. " * 4,
    "Tell me about the weather in a long and winding sentence, please, with details. " * 4
    + "And then stop.",
]


def _outcome(r: Result) -> tuple[Any, ...]:
    return (tuple(r.tokens), r.finish_reason, r.error, r.tool_calls)


class Rounds:
    """Draws rounds and keeps each distinct request's solo outcome (run once)."""

    def __init__(self, engine: LocalEngine, prompts: list[list[int]], chunk: int | None) -> None:
        self.engine, self.prompts, self.chunk = engine, prompts, chunk
        self.solo: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def request(self, key: tuple[Any, ...]) -> Request:
        mod_name, prompt_i, max_new, stream, temperature, seed = key
        options = RequestOptions(mods=MODS[mod_name], stream=stream)
        return Request(
            self.prompts[prompt_i], max_new, temperature=temperature, seed=seed, options=options
        )

    def alone(self, key: tuple[Any, ...]) -> tuple[Any, ...]:
        if key not in self.solo:
            (r,) = self.engine.generate([self.request(key)], prefill_chunk=self.chunk)
            self.solo[key] = _outcome(r)
        return self.solo[key]

    def draw(self, rng: random.Random) -> list[tuple[Any, ...]]:
        n = rng.randint(2, 6)
        same_prompt = rng.random() < 0.3
        shared = rng.randrange(len(self.prompts))
        keys = []
        for _ in range(n):
            sampled = rng.random() < 0.25
            keys.append(
                (
                    rng.choice(list(MODS)),
                    shared if same_prompt else rng.randrange(len(self.prompts)),
                    rng.choice((4, 8, 12)),
                    rng.random() < 0.5,
                    0.8 if sampled else 0.0,
                    rng.randrange(1000) if sampled else 0,
                )
            )
        if not any(k[0] is None for k in keys):  # every round has a request without mods
            keys[0] = (None, *keys[0][1:])
        return keys


@pytest.mark.parametrize("prefix_caching", [False, True], ids=["no-prefix-cache", "prefix-cache"])
@pytest.mark.parametrize("chunk", [None, 8], ids=["whole-prefill", "chunked-prefill"])
def test_mixed_batches_equal_solo_runs(
    pipeline_factory: Any, prefix_caching: bool, chunk: int | None
) -> None:
    engine = LocalEngine(pipeline_factory("default", prefix_caching=prefix_caching))
    tok = engine.loaded.hf_tokenizer
    prompts = [
        [
            int(t)
            for t in tok.apply_chat_template(
                [{"role": "user", "content": text}],
                add_generation_prompt=True,
                tokenize=True,
                return_dict=False,
            )
        ]
        for text in TEXTS
    ]
    rounds = Rounds(engine, prompts, chunk)
    rng = random.Random(f"{prefix_caching}-{chunk}")
    t0 = time.perf_counter()
    checked = 0
    mismatches = []
    for i in range(ROUNDS_PER_CONFIG):
        keys = rounds.draw(rng)
        arrivals = [rng.randint(0, 5) for _ in keys]
        got = engine.generate(
            [rounds.request(k) for k in keys], arrivals=arrivals, prefill_chunk=chunk
        )
        for k, r in zip(keys, got, strict=True):
            checked += 1
            assert len(r.tokens) <= k[2] or k[0] == "fixed", (i, k, r)
            if _outcome(r) != rounds.alone(k):
                mismatches.append((i, k, arrivals, _outcome(r), rounds.alone(k)))
    elapsed = time.perf_counter() - t0
    print(
        f"\nmixed batches (prefix_caching={prefix_caching}, chunk={chunk}): "
        f"{ROUNDS_PER_CONFIG} rounds, {checked} requests, {len(mismatches)} mismatches, "
        f"{elapsed:.1f} s"
    )
    assert mismatches == [], mismatches[:3]
