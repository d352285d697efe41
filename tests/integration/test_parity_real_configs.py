# SPDX-License-Identifier: Apache-2.0
"""Parity with the real Gemma 3 configurations: 270m, 1b, 4b, 12b and 27b, scaled down.

Each checkpoint keeps its release's structural values (head_dim, ``query_pre_attn_scalar``
256 or 168, the ratio of query to KV heads, sliding window 512 or 1024 with five sliding layers
to one global, RoPE bases 1e6/1e4 with linear factor 8 on global layers for 4b/12b/27b, no
soft-capping) and its layout (``Gemma3ForCausalLM`` or ``Gemma3ForConditionalGeneration``), with
small sizes (see ``tests/gemma3_configs.py``). A prompt longer than the real window is
prefilled and decoded greedily through MAX's paged KV cache; every step's logits must match
transformers' (CPU, float32, eager attention) within 1e-3 and the greedy tokens must agree.
Three MAX compiles in all: 1b and 12b reuse the graphs of 270m and 4b (same structure).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gemma3_configs import CAUSAL, PUBLISHED, full_text_config, write_scaled

pytestmark = pytest.mark.integration

log = logging.getLogger(__name__)

DECODE_STEPS = 8
TOL = 1e-3


def _prompt(tokenizer: Any, length: int) -> list[int]:
    text = " ".join(
        f"Item {i}: the quick brown fox #{i * 7} jumps over {{'k': {i}}} lazy dogs."
        for i in range(length // 4)
    )
    ids = [int(t) for t in tokenizer.encode(text, add_special_tokens=True)]
    assert len(ids) >= length
    return ids[:length]


def _reference_logits(name: str, path: Path, seq: list[int]) -> Any:
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3ForConditionalGeneration

    cls = Gemma3ForCausalLM if name in CAUSAL else Gemma3ForConditionalGeneration
    model = cls.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").eval()
    config = model.config if name in CAUSAL else model.config.text_config
    # The checkpoint reads back as the release describes it.
    assert config.layer_types == ["sliding_attention"] * 5 + ["full_attention"]
    assert config.sliding_window == full_text_config(name)["sliding_window"]
    assert config.query_pre_attn_scalar == full_text_config(name)["query_pre_attn_scalar"]
    full_rope = config.rope_parameters["full_attention"]
    assert full_rope.get("factor", 1.0) == (1.0 if name in CAUSAL else 8.0)
    assert config.rope_parameters["sliding_attention"]["rope_theta"] == 10_000.0
    with torch.no_grad():
        out = model(input_ids=torch.tensor([seq]))
    return out.logits[0].numpy().astype(np.float64)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_logits_match_transformers_on_real_config(
    name: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from quote.pipelines.loader import load_pipeline
    from quote.pipelines.local import greedy_with_logits

    path = write_scaled(name, tmp_path_factory.mktemp(name))
    window = int(full_text_config(name)["sliding_window"])
    prompt_len = window + 80  # the first tokens slide out of every sliding layer's window
    lp = load_pipeline(path, stock=True, max_batch_size=2, max_length=prompt_len + 64)
    prompt = _prompt(lp.hf_tokenizer, prompt_len)
    sequences, logits = greedy_with_logits(lp.pipeline, [prompt], DECODE_STEPS)
    seq = sequences[0]
    assert len(seq) == prompt_len + DECODE_STEPS

    ref = _reference_logits(name, path, seq)
    diffs = []
    for step, row in enumerate(logits[0]):
        expected = ref[prompt_len - 1 + step]
        diffs.append(float(np.max(np.abs(np.asarray(row, dtype=np.float64) - expected))))
        assert seq[prompt_len + step] == int(np.argmax(expected)), f"step {step}: token differs"
    log.warning("parity %s: max|diff| per step %s", name, [f"{d:.2g}" for d in diffs])
    assert max(diffs) <= TOL, diffs
    assert len(set(seq[prompt_len:])) > 2  # a decode that is not one repeated token
