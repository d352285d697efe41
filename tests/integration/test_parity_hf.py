# SPDX-License-Identifier: Apache-2.0
"""Reference parity: Quote's MAX Gemma3 vs Hugging Face transformers (torch, CPU, float32).

A >= 300-token prompt (longer than the 256-token sliding window) is prefilled and
decoded greedily for 24 steps through MAX's paged KV cache; every step's logits must
match HF's logits for the same token sequence within 1e-3, and the greedy tokens must
be identical. Run on configurations of different shape so the graph is not tuned to one.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest

from quote.pipelines.local import greedy_with_logits
from quote.tiny.reference import SOFTCAP_EAGER, load_reference

pytestmark = pytest.mark.integration

log = logging.getLogger(__name__)

PROMPT_LEN = 320
DECODE_STEPS = 24
TOL = 1e-3


def _prompt(tokenizer: Any) -> list[int]:
    text = " ".join(
        f"Item {i}: the quick brown fox #{i * 7} jumps over {{'k': {i}}} lazy dogs."
        for i in range(80)
    )
    ids = tokenizer.encode(text, add_special_tokens=True)
    assert len(ids) >= PROMPT_LEN
    return [int(t) for t in ids[:PROMPT_LEN]]


def _hf_logits(model_dir: Any, seq: list[int], *, attention: str = SOFTCAP_EAGER) -> Any:
    import torch

    model = load_reference(model_dir, attention=attention)
    with torch.no_grad():
        out = model(torch.tensor([seq]))
    return out.logits[0].numpy().astype(np.float64)


@pytest.mark.parametrize("variant", ["default", "softcap", "mha"])
def test_logits_match_transformers(
    variant: str, pipeline_factory: Any, tiny_model_factory: Any
) -> None:
    lp = pipeline_factory(variant, stock=True)
    prompt = _prompt(lp.hf_tokenizer)
    sequences, logits = greedy_with_logits(lp.pipeline, [prompt], DECODE_STEPS)
    seq = sequences[0]
    max_logits = [row.astype(np.float64) for row in logits[0]]
    assert len(seq) == PROMPT_LEN + DECODE_STEPS
    assert len(max_logits) == DECODE_STEPS

    hf = _hf_logits(tiny_model_factory(variant), seq)
    diffs = []
    for step, row in enumerate(max_logits):
        ref = hf[PROMPT_LEN - 1 + step]
        diffs.append(float(np.max(np.abs(row - ref))))
        # Greedy token identical to the reference's argmax.
        assert seq[PROMPT_LEN + step] == int(np.argmax(ref)), f"step {step}: token differs"
    prefill, decode = diffs[0], max(diffs[1:])
    log.warning("parity %s: prefill max|diff|=%.3g decode max|diff|=%.3g", variant, prefill, decode)
    assert prefill <= TOL and decode <= TOL, diffs
    # The decode must not be degenerate (otherwise identical tokens prove little).
    assert len(set(seq[PROMPT_LEN:])) > 3
    if variant == "softcap":
        # The attention cap must bite: without it the reference is far from ours.
        uncapped = _hf_logits(tiny_model_factory(variant), seq, attention="eager")
        assert float(np.max(np.abs(uncapped - hf))) > 100 * TOL


def test_softcap_attention_batched_ragged(pipeline_factory: Any, tiny_model_factory: Any) -> None:
    """Soft-capped attention with several requests of different lengths in one batch."""
    lp = pipeline_factory("softcap", stock=True)
    full = _prompt(lp.hf_tokenizer)
    prompts = [full[:7], full[:300], full[40:95]]
    steps = 6
    sequences, logits = greedy_with_logits(lp.pipeline, prompts, steps)
    model_dir = tiny_model_factory("softcap")
    worst = 0.0
    for i, prompt in enumerate(prompts):
        seq = sequences[i]
        hf = _hf_logits(model_dir, seq)
        for step, row in enumerate(logits[i]):
            ref = hf[len(prompt) - 1 + step]
            worst = max(worst, float(np.max(np.abs(np.asarray(row, dtype=np.float64) - ref))))
            assert seq[len(prompt) + step] == int(np.argmax(ref)), (i, step)
    log.warning("parity softcap batched ragged: max|diff|=%.3g", worst)
    assert worst <= TOL
