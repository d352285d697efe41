# SPDX-License-Identifier: Apache-2.0
"""``Gemma3ForConditionalGeneration`` checkpoints (the Gemma 3 4B/12B/27B layout), text-only.

The tiny multimodal checkpoint (``quote tiny-model --layout multimodal``) in both weight name
layouts, and a bfloat16 copy of it (as the releases are saved), run on CPU in float32 through
Quote's architecture: logits match transformers' ``Gemma3ForConditionalGeneration`` within
1e-3 over a prompt longer than the sliding window; mods run on it, in-process and through
``quote serve``. All three checkpoints share one compiled graph. (Images:
``test_gemma3_images.py``.)
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from server_proc import mod_server, served_name

from quote.hot.state import RequestOptions
from quote.pipelines.local import LocalEngine, Request, greedy_with_logits
from quote.sdk import Prefilled, mod

pytestmark = pytest.mark.integration

PROMPT_LEN = 300  # longer than the 256-token sliding window
DECODE_STEPS = 12
TOL = 1e-3


def _write_bfloat16_copy(src: Path, dst: Path) -> Path:
    """``src`` with every weight saved in bfloat16 by torch, as the releases are."""
    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    weights = load_file(src / "model.safetensors")
    bf16 = {k: v.to(torch.bfloat16).contiguous() for k, v in weights.items()}
    save_file(bf16, dst / "model.safetensors", metadata={"format": "pt"})
    config = json.loads((dst / "config.json").read_text())
    config["torch_dtype"] = "bfloat16"
    (dst / "config.json").write_text(json.dumps(config, indent=2))
    return dst


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from quote.tiny.multimodal import write_tiny_multimodal_model

    root = tmp_path_factory.mktemp("gemma3-multimodal")
    out = {
        "v4": write_tiny_multimodal_model(root / "v4", layout="v4"),
        "v5": write_tiny_multimodal_model(root / "v5", layout="v5"),
    }
    out["v4-bfloat16"] = _write_bfloat16_copy(out["v4"], root / "v4-bfloat16")
    return out


@pytest.fixture(scope="module")
def load(checkpoints: dict[str, Path]) -> Callable[..., Any]:
    from quote.pipelines.loader import load_pipeline

    cache: dict[tuple[str, bool], Any] = {}

    def get(name: str, *, stock: bool = True) -> Any:
        if (name, stock) not in cache:
            cache[name, stock] = load_pipeline(
                checkpoints[name], stock=stock, max_batch_size=4, max_length=2048
            )
        return cache[name, stock]

    return get


def _prompt(tokenizer: Any) -> list[int]:
    text = " ".join(f"Row {i}: a long sentence about item {i * 3}." for i in range(120))
    ids = [int(t) for t in tokenizer.encode(text, add_special_tokens=True)]
    assert len(ids) >= PROMPT_LEN
    return ids[:PROMPT_LEN]


def _reference_logits(path: Path, seq: list[int]) -> Any:
    import torch
    from transformers import Gemma3ForConditionalGeneration

    model = Gemma3ForConditionalGeneration.from_pretrained(
        path, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    with torch.no_grad():
        out = model(input_ids=torch.tensor([seq]))
    return out.logits[0].numpy().astype(np.float64)


@pytest.mark.parametrize("name", ["v4", "v5", "v4-bfloat16"])
def test_logits_match_transformers(
    name: str, load: Callable[..., Any], checkpoints: dict[str, Path]
) -> None:
    lp = load(name)
    assert lp.config.model.quantization_encoding == "float32"
    prompt = _prompt(lp.hf_tokenizer)
    sequences, logits = greedy_with_logits(lp.pipeline, [prompt], DECODE_STEPS)
    seq = sequences[0]
    ref = _reference_logits(checkpoints[name], seq)
    worst = 0.0
    for step, row in enumerate(logits[0]):
        expected = ref[PROMPT_LEN - 1 + step]
        worst = max(worst, float(np.max(np.abs(np.asarray(row, dtype=np.float64) - expected))))
        assert seq[PROMPT_LEN + step] == int(np.argmax(expected)), f"step {step}"
    assert worst <= TOL
    assert len(set(seq[PROMPT_LEN:])) > 3


def test_bfloat16_weights_are_the_rounded_float32_ones(load: Callable[..., Any]) -> None:
    """The bfloat16 checkpoint really is another model (rounded weights), not the float32 one."""
    prompt = _prompt(load("v4").hf_tokenizer)[:40]
    _, f32 = greedy_with_logits(load("v4").pipeline, [prompt], 1)
    _, bf16 = greedy_with_logits(load("v4-bfloat16").pipeline, [prompt], 1)
    diff = float(np.max(np.abs(np.asarray(f32[0][0]) - np.asarray(bf16[0][0]))))
    assert 1e-5 < diff < 0.5, diff


def test_mod_forces_tokens_on_multimodal_checkpoint(load: Callable[..., Any]) -> None:
    lp = load("v4", stock=False)
    engine = LocalEngine(lp)
    forced = [int(t) for t in lp.hf_tokenizer.encode("Sure: ", add_special_tokens=False)]

    @mod
    def sure(event: Any, actions: Any, tokenizer: Any) -> Any:
        if isinstance(event, Prefilled):
            return actions.force_tokens(forced)
        return None

    prompt = _prompt(lp.hf_tokenizer)[:30]
    (plain,) = engine.generate([Request(prompt, 6, ignore_eos=True)])
    (modded,) = engine.generate(
        [Request(prompt, 6, ignore_eos=True, options=RequestOptions(mods=[sure]))]
    )
    assert plain.error is None and modded.error is None, (plain.error, modded.error)
    assert modded.tokens[: len(forced)] == forced
    # After the forced prefix, greedy decoding continues from prompt + forced tokens.
    seq, _ = greedy_with_logits(load("v4").pipeline, [prompt + forced], 6 - len(forced))
    assert modded.tokens == forced + seq[0][len(prompt) + len(forced) :]
    assert plain.tokens != modded.tokens


_SERVED_MODS = """
from quote.sdk import Prefilled, mod

@mod
def sure(e, a, t):
    if isinstance(e, Prefilled):
        return a.force_tokens(t.encode("Sure: ", add_special_tokens=False))
    return None
"""


def test_quote_serve_bfloat16_release_layout_on_cpu(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    """``quote serve`` on CPU serves a bfloat16 multimodal checkpoint with a mod."""
    with mod_server(checkpoints["v4-bfloat16"], tmp_path, "mm-key", _SERVED_MODS, ["sure"]) as srv:
        served = served_name(srv)
        body = {
            "model": f"{served}/sure",
            "messages": [{"role": "user", "content": "hello"}],
            "max_tokens": 6,
            "temperature": 0,
        }
        r = httpx.post(srv.base + "/v1/chat/completions", json=body, timeout=120)
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"].startswith("Sure:")
        body["model"] = served
        r = httpx.post(srv.base + "/v1/chat/completions", json=body, timeout=120)
        assert r.status_code == 200, r.text
        assert not r.json()["choices"][0]["message"]["content"].startswith("Sure:")
