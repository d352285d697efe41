# SPDX-License-Identifier: Apache-2.0
"""The published Gemma 3 configurations, and scaled-down checkpoints built from them.

``PUBLISHED`` holds the language-model part of the ``config.json`` files of
google/gemma-3-{270m,1b-it,4b-it,12b-it,27b-it} as released (transformers 4.50/4.55 encoding;
the 4B/12B/27B files nest it under ``text_config`` and leave the rest to
``Gemma3TextConfig``'s defaults, which ``TEXT_DEFAULTS`` spells out). No hub access here: the
values were written down from the published files and cross-checked against transformers'
``Gemma3TextConfig`` defaults (``test_published_defaults_match_transformers``).

:func:`write_scaled` keeps every structural value (head_dim, ``query_pre_attn_scalar``, the
ratio of query to KV heads, sliding window, five sliding layers to one global, RoPE bases and
linear scaling, soft-capping as set, tied embeddings) and scales down what only sets the size:
hidden size 128, intermediate size 512, 6 layers (one period of the pattern), query heads
halved down to 8 at most (KV heads alike), the tiny tokenizer's vocabulary, and
``max_position_embeddings`` 4,096 (positions beyond are never used; linear RoPE scaling does
not read it). Each distinct graph is one MAX compile (minutes on CPU), so releases whose
structure is the same scale to the same shapes and share a compile: 270m and 1b (they differ
in size only), 4b and 12b (they differ in size and head count, not in the ratio). Their weights
differ (seeded by release name).
"""

from __future__ import annotations

import json
import shutil
import zlib
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CAUSAL",
    "MULTIMODAL",
    "PUBLISHED",
    "HIDDEN",
    "TEXT_DEFAULTS",
    "scaled_text_config",
    "write_scaled",
]

#: ``Gemma3TextConfig`` defaults the 4B/12B/27B ``text_config`` entries rely on.
TEXT_DEFAULTS: dict[str, Any] = {
    "vocab_size": 262208,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 256,
    "query_pre_attn_scalar": 256,
    "max_position_embeddings": 131072,
    "rope_theta": 1_000_000.0,
    "rope_local_base_freq": 10_000.0,
    "sliding_window_pattern": 6,
    "final_logit_softcapping": None,
    "attn_logit_softcapping": None,
    "hidden_activation": "gelu_pytorch_tanh",
    "rms_norm_eps": 1e-6,
}

_SMALL_COMMON: dict[str, Any] = {
    "attention_bias": False,
    "attn_logit_softcapping": None,
    "final_logit_softcapping": None,
    "head_dim": 256,
    "hidden_activation": "gelu_pytorch_tanh",
    "max_position_embeddings": 32768,
    "num_attention_heads": 4,
    "num_key_value_heads": 1,
    "query_pre_attn_scalar": 256,
    "rms_norm_eps": 1e-6,
    "rope_local_base_freq": 10000.0,
    "rope_scaling": None,
    "rope_theta": 1000000.0,
    "sliding_window": 512,
    "vocab_size": 262144,
}
_LINEAR8 = {"factor": 8.0, "rope_type": "linear"}

PUBLISHED: dict[str, dict[str, Any]] = {
    # google/gemma-3-270m (Gemma3ForCausalLM; also lists the 18 layer_types, 5 sliding : 1 full)
    "gemma-3-270m": {
        **_SMALL_COMMON,
        "hidden_size": 640,
        "intermediate_size": 2048,
        "num_hidden_layers": 18,
        "_sliding_window_pattern": 6,
    },
    # google/gemma-3-1b-it (Gemma3ForCausalLM)
    "gemma-3-1b-it": {
        **_SMALL_COMMON,
        "hidden_size": 1152,
        "intermediate_size": 6912,
        "num_hidden_layers": 26,
        "sliding_window_pattern": 6,
    },
    # google/gemma-3-4b-it text_config (Gemma3ForConditionalGeneration)
    "gemma-3-4b-it": {
        "hidden_size": 2560,
        "intermediate_size": 10240,
        "num_hidden_layers": 34,
        "rope_scaling": _LINEAR8,
        "sliding_window": 1024,
    },
    # google/gemma-3-12b-it text_config
    "gemma-3-12b-it": {
        "hidden_size": 3840,
        "intermediate_size": 15360,
        "num_attention_heads": 16,
        "num_hidden_layers": 48,
        "num_key_value_heads": 8,
        "rope_scaling": _LINEAR8,
        "sliding_window": 1024,
    },
    # google/gemma-3-27b-it text_config
    "gemma-3-27b-it": {
        "head_dim": 128,
        "hidden_size": 5376,
        "intermediate_size": 21504,
        "num_attention_heads": 32,
        "num_hidden_layers": 62,
        "num_key_value_heads": 16,
        "query_pre_attn_scalar": 168,
        "rope_scaling": _LINEAR8,
        "sliding_window": 1024,
    },
}
#: The top-level multimodal keys of the 4B/12B/27B ``config.json`` files.
MULTIMODAL: dict[str, Any] = {
    "architectures": ["Gemma3ForConditionalGeneration"],
    "model_type": "gemma3",
    "boi_token_index": 255999,
    "eoi_token_index": 256000,
    "image_token_index": 262144,
    "mm_tokens_per_image": 256,
    "initializer_range": 0.02,
}
#: The checkpoints released as ``Gemma3ForCausalLM``; the others are multimodal.
CAUSAL = ("gemma-3-270m", "gemma-3-1b-it")
HIDDEN, INTERMEDIATE, LAYERS, MAX_HEADS = 128, 512, 6, 8


def full_text_config(name: str) -> dict[str, Any]:
    """The published language-model config with transformers' defaults filled in."""
    return {**TEXT_DEFAULTS, **PUBLISHED[name]}


def scaled_text_config(name: str, vocab_size: int) -> dict[str, Any]:
    """The scaled-down language-model config of ``name`` (see module docstring)."""
    config = full_text_config(name)
    config.pop("_sliding_window_pattern", None)
    while config["num_attention_heads"] > MAX_HEADS:
        config["num_attention_heads"] //= 2
        config["num_key_value_heads"] //= 2
    config.update(
        model_type="gemma3_text",
        hidden_size=HIDDEN,
        intermediate_size=INTERMEDIATE,
        num_hidden_layers=LAYERS,
        vocab_size=vocab_size,
        max_position_embeddings=4096,
        sliding_window_pattern=6,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
        tie_word_embeddings=True,
    )
    return config


def _normal(seed: int, name: str, shape: tuple[int, ...], std: float, mean: float = 0.0) -> Any:
    rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
    return np.ascontiguousarray(rng.standard_normal(shape) * std + mean, dtype=np.float32)


def decoder_weights(config: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """Random float32 ``Gemma3ForCausalLM`` weights (``model.*``) for ``config``.

    Same scheme as the tiny model: linears with std ``fan_in ** -0.5``, norms around 0 (Gemma
    scales by ``1 + w``), q/k norms around 1, the final norm around -2 (keeps greedy decoding
    off a single repeated token).
    """
    hidden, inter = config["hidden_size"], config["intermediate_size"]
    hd = config["head_dim"]
    q_dim, kv_dim = config["num_attention_heads"] * hd, config["num_key_value_heads"] * hd
    out = {
        "model.embed_tokens.weight": _normal(seed, "embed", (config["vocab_size"], hidden), 0.05),
        "model.norm.weight": _normal(seed, "norm", (hidden,), 0.1, -2.0),
    }
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes = {
            "self_attn.q_proj.weight": (q_dim, hidden),
            "self_attn.k_proj.weight": (kv_dim, hidden),
            "self_attn.v_proj.weight": (kv_dim, hidden),
            "self_attn.o_proj.weight": (hidden, q_dim),
            "mlp.gate_proj.weight": (inter, hidden),
            "mlp.up_proj.weight": (inter, hidden),
            "mlp.down_proj.weight": (hidden, inter),
        }
        for n, shape in shapes.items():
            out[p + n] = _normal(seed, p + n, shape, shape[1] ** -0.5)
        for n in ("input", "post_attention", "pre_feedforward", "post_feedforward"):
            out[f"{p}{n}_layernorm.weight"] = _normal(seed, f"{p}{n}", (hidden,), 0.1)
        for n in ("q_norm", "k_norm"):
            out[f"{p}self_attn.{n}.weight"] = _normal(seed, p + n, (hd,), 0.1, 1.0)
    return out


def write_scaled(name: str, out_dir: Path) -> Path:
    """Write the scaled-down checkpoint of ``name`` in its released layout; return its path.

    gemma-3-270m and 1b: ``Gemma3ForCausalLM``. 4B/12B/27B: ``Gemma3ForConditionalGeneration``
    as released (``text_config``, ``language_model.model.*`` weights, a tiny vision tower), with
    the image token ids of the tiny multimodal tokenizer.
    """
    from safetensors.numpy import save_file

    from quote.tiny import multimodal as mm
    from quote.tiny import write_tiny_model

    multimodal = name not in CAUSAL
    seed = zlib.crc32(name.encode("utf-8"))
    tokenizer_src = out_dir / "tokenizer-src"
    if multimodal:
        mm.write_tiny_multimodal_model(tokenizer_src)
        text = scaled_text_config(name, mm.VOCAB_SIZE)
        config: dict[str, Any] = {
            **MULTIMODAL,
            "boi_token_index": mm.BOI_ID,
            "eoi_token_index": mm.EOI_ID,
            "image_token_index": mm.IMAGE_ID,
            "mm_tokens_per_image": mm.MM_TOKENS_PER_IMAGE,
            "torch_dtype": "float32",
            "text_config": text,
            "vision_config": dict(mm.VISION_CONFIG),
        }
        weights = {"language_model." + k: v for k, v in decoder_weights(text, seed).items()}
        weights.update(
            {"vision_tower.vision_model." + k: v for k, v in mm.vision_weights(seed).items()}
        )
        vision_hidden = int(mm.VISION_CONFIG["hidden_size"])
        weights["multi_modal_projector.mm_input_projection_weight"] = _normal(
            seed, "proj", (vision_hidden, text["hidden_size"]), vision_hidden**-0.5
        )
        weights["multi_modal_projector.mm_soft_emb_norm.weight"] = _normal(
            seed, "proj_norm", (vision_hidden,), 0.1
        )
    else:
        write_tiny_model(tokenizer_src)
        vocab = json.loads((tokenizer_src / "config.json").read_text())["vocab_size"]
        config = {
            **scaled_text_config(name, vocab),
            "architectures": ["Gemma3ForCausalLM"],
            "torch_dtype": "float32",
        }
        weights = decoder_weights(config, seed)
    out = out_dir / name
    out.mkdir(parents=True, exist_ok=True)
    files = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]
    if multimodal:  # the image processor, as the releases ship it
        files += ["preprocessor_config.json", "processor_config.json", "chat_template.jinja"]
    for f in files:
        shutil.copy(tokenizer_src / f, out / f)
    shutil.copy(tokenizer_src / "generation_config.json", out / "generation_config.json")
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out
