# SPDX-License-Identifier: Apache-2.0
"""The Gemma 3 vision path (``QuoteGemma3Vision``) against transformers, on CPU in float32.

The tiny multimodal checkpoint in both weight name layouts; one compiled graph serves both
(the weights are bound at load). The oracle is ``Gemma3Model.get_image_features``.
"""

from __future__ import annotations

import logging
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.integration

logger = logging.getLogger(__name__)

TOL = 1e-4
LAYOUTS = ("v4", "v5")


def _pixels() -> np.ndarray:
    rng = np.random.default_rng(1234)
    return rng.uniform(-1.0, 1.0, size=(2, 3, 56, 56)).astype(np.float32)


def _build(config: dict[str, Any]) -> Any:
    from max.dtype import DType
    from max.graph import DeviceRef

    from quote.custom_arch.gemma3.vision import QuoteGemma3Vision

    return QuoteGemma3Vision(
        vision_config=types.SimpleNamespace(**config["vision_config"]),
        mm_tokens_per_image=config["mm_tokens_per_image"],
        text_hidden_size=config["text_config"]["hidden_size"],
        dtype=DType.float32,
        device=DeviceRef.CPU(),
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Checkpoints, the config, raw weights per layout, and the model compiled once."""
    import json

    from max.driver import CPU
    from max.dtype import DType
    from max.engine import InferenceSession
    from safetensors.numpy import load_file

    from quote.custom_arch.gemma3.vision import convert_vision_state_dict
    from quote.tiny.multimodal import write_tiny_multimodal_model

    root = tmp_path_factory.mktemp("gemma3-vision")
    dirs = {lay: write_tiny_multimodal_model(root / lay, layout=lay) for lay in LAYOUTS}
    config = json.loads((dirs["v4"] / "config.json").read_text())
    raw = {lay: load_file(str(d / "model.safetensors")) for lay, d in dirs.items()}

    module = _build(config)
    module.load_state_dict(convert_vision_state_dict(raw["v4"], dtype=DType.float32))
    session = InferenceSession(devices=[CPU()])
    start = time.perf_counter()
    model = session.load(module.build_graph(), weights_registry=module.state_dict())
    compile_s = time.perf_counter() - start
    logger.warning("quote_gemma3_vision compiled in %.1fs", compile_s)
    return {
        "dirs": dirs,
        "config": config,
        "raw": raw,
        "model": model,
        "session": session,
        "compile_s": compile_s,
        "outputs": {},
    }


def _run_max(setup: dict[str, Any], layout: str) -> np.ndarray:
    """The model's output on :func:`_pixels` with ``layout``'s weights (computed once)."""
    outputs: dict[str, np.ndarray] = setup["outputs"]
    if layout not in outputs:
        outputs[layout] = _execute(setup, layout)
    return outputs[layout]


def _execute(setup: dict[str, Any], layout: str) -> np.ndarray:
    from max.driver import Buffer
    from max.dtype import DType
    from max.engine import InferenceSession

    from quote.custom_arch.gemma3.vision import convert_vision_state_dict

    if layout == "v4":
        model = setup["model"]
    else:  # the same graph (a compile-cache hit), the other layout's weights bound at load
        module = _build(setup["config"])
        module.load_state_dict(convert_vision_state_dict(setup["raw"][layout], dtype=DType.float32))
        session: InferenceSession = setup["session"]
        start = time.perf_counter()
        model = session.load(module.build_graph(), weights_registry=module.state_dict())
        logger.warning("layout %s: loaded in %.1fs", layout, time.perf_counter() - start)
    (out,) = model.execute(Buffer.from_numpy(_pixels()))
    assert isinstance(out, Buffer)
    return np.asarray(out.to_numpy())


def _run_hf(path: Path) -> np.ndarray:
    import torch
    from transformers import Gemma3ForConditionalGeneration

    hf = Gemma3ForConditionalGeneration.from_pretrained(path, torch_dtype=torch.float32).eval()
    with torch.no_grad():
        feats = hf.model.get_image_features(torch.from_numpy(_pixels()))
    out = getattr(feats, "pooler_output", feats)
    return np.asarray(out.reshape(-1, out.shape[-1]).float().numpy())


@pytest.mark.parametrize("layout", LAYOUTS)
def test_matches_transformers(setup: dict[str, Any], layout: str) -> None:
    config = setup["config"]
    got = _run_max(setup, layout)
    want = _run_hf(setup["dirs"][layout])
    n_tokens = 2 * config["mm_tokens_per_image"]
    assert got.shape == want.shape == (n_tokens, config["text_config"]["hidden_size"])
    diff = float(np.abs(got - want).max())
    logger.warning("layout %s: max |MAX - transformers| = %.3g", layout, diff)
    assert diff <= TOL, f"layout {layout}: max diff {diff}"


def test_layouts_identical(setup: dict[str, Any]) -> None:
    np.testing.assert_array_equal(_run_max(setup, "v4"), _run_max(setup, "v5"))


def test_missing_weights_raise(setup: dict[str, Any]) -> None:
    from max.dtype import DType

    from quote.custom_arch.gemma3.vision import convert_vision_state_dict

    raw = dict(setup["raw"]["v5"])
    del raw["model.multi_modal_projector.mm_input_projection_weight"]
    with pytest.raises(ValueError, match="mm_input_projection_weight"):
        convert_vision_state_dict(raw)
    # Text-only weights are not a vision checkpoint.
    text = {k: v for k, v in setup["raw"]["v4"].items() if k.startswith("language_model.")}
    with pytest.raises(ValueError, match="not a Gemma3 vision checkpoint"):
        convert_vision_state_dict(text)
    # A missing per-layer weight is caught when the module loads them.
    weights = convert_vision_state_dict(setup["raw"]["v4"], dtype=DType.float32)
    del weights["encoder.layers.1.mlp.fc1.bias"]
    with pytest.raises(ValueError, match=r"encoder\.layers\.1\.mlp\.fc1\.bias"):
        _build(setup["config"]).load_state_dict(weights)


def test_casts_to_model_dtype(setup: dict[str, Any]) -> None:
    from max.dtype import DType

    from quote.custom_arch.gemma3.vision import convert_vision_state_dict

    weights = convert_vision_state_dict(setup["raw"]["v4"], dtype=DType.bfloat16)
    assert {w.dtype for w in weights.values()} == {DType.bfloat16}
    assert "multi_modal_projector.mm_soft_emb_norm.weight" in weights


def test_bfloat16_checkpoint_casts_to_float32(setup: dict[str, Any], tmp_path: Path) -> None:
    """A bfloat16 checkpoint (as released) read through ``max.graph.weights`` loads in float32."""
    import torch
    from max.dtype import DType
    from max.graph.weights import load_weights
    from safetensors.torch import save_file

    from quote.custom_arch.gemma3.vision import convert_vision_state_dict

    raw = setup["raw"]["v4"]
    bf16 = {k: torch.from_numpy(v).to(torch.bfloat16).contiguous() for k, v in raw.items()}
    path = tmp_path / "model.safetensors"
    save_file(bf16, path, metadata={"format": "pt"})
    weights = convert_vision_state_dict(dict(load_weights([path]).items()), dtype=DType.float32)
    assert {w.dtype for w in weights.values()} == {DType.float32}
    name = "multi_modal_projector.mm_input_projection_weight"
    got = np.from_dlpack(weights[name])
    want = bf16["multi_modal_projector.mm_input_projection_weight"].float().numpy()
    np.testing.assert_array_equal(got, want)
    _build(setup["config"]).load_state_dict(weights)  # every name and shape fits
