# SPDX-License-Identifier: Apache-2.0
"""The tiny Gemma3 checkpoint in the ``Gemma3ForConditionalGeneration`` layout (Gemma 3 4B/12B/27B).

The released Gemma 3 4B, 12B and 27B checkpoints are multimodal: ``config.json`` nests the
language model's config under ``text_config`` (next to a SigLIP ``vision_config``,
``mm_tokens_per_image`` and the image token ids), and the safetensors hold the language model
under a prefix, a vision tower and a multimodal projector. :func:`write_tiny_multimodal_model`
writes that layout around a tiny-model variant's language model (the same weights as
:func:`quote.tiny.tiny_weights`, with three more embedding rows for the image tokens) and a tiny,
deterministic vision tower that ``transformers``' ``Gemma3ForConditionalGeneration`` loads.

Weight name layouts (:data:`LAYOUTS`):

- ``"v4"``: the released checkpoints (saved by transformers 4.50): ``language_model.model.*``,
  ``vision_tower.vision_model.*``, ``multi_modal_projector.*``.
- ``"v5"``: the module names of transformers >= 5 (what saving the model's own ``state_dict``
  writes): ``model.language_model.*``, ``model.vision_tower.*``, ``model.multi_modal_projector.*``.
"""

from __future__ import annotations

import logging
import pathlib
from typing import Any

from quote import tiny
from quote.tiny import _normal, _write_json

__all__ = [
    "IMAGE_TOKENS",
    "LAYOUTS",
    "VISION_CONFIG",
    "multimodal_config",
    "multimodal_weights",
    "preprocessor_config",
    "vision_weights",
    "write_tiny_multimodal_model",
]

logger = logging.getLogger(__name__)

#: The image special tokens, appended after the shipped tokenizer's 1,024 tokens (Gemma 3 has
#: them at 255999, 256000 and 262144).
IMAGE_TOKENS: dict[str, int] = {
    "<start_of_image>": 1024,
    "<end_of_image>": 1025,
    "<image_soft_token>": 1026,
}
BOI_ID = IMAGE_TOKENS["<start_of_image>"]
EOI_ID = IMAGE_TOKENS["<end_of_image>"]
IMAGE_ID = IMAGE_TOKENS["<image_soft_token>"]
VOCAB_SIZE = 1027
#: Image embeddings per image (Gemma 3: 256 = a 64x64 patch grid average-pooled to 16x16).
MM_TOKENS_PER_IMAGE = 4

#: A tiny SigLIP vision tower: 56x56 images, 14x14 patches (a 4x4 grid pooled to 2x2).
VISION_CONFIG: dict[str, Any] = {
    "model_type": "siglip_vision_model",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_channels": 3,
    "image_size": 56,
    "patch_size": 14,
    "hidden_act": "gelu_pytorch_tanh",
    "layer_norm_eps": 1e-6,
    "attention_dropout": 0.0,
    "vision_use_head": False,
}

_PREFIXES: dict[str, tuple[str, str, str]] = {
    # layout: (language model, vision tower, projector)
    "v4": ("language_model.model.", "vision_tower.vision_model.", "multi_modal_projector."),
    "v5": ("model.language_model.", "model.vision_tower.", "model.multi_modal_projector."),
}
#: The weight name layouts :func:`write_tiny_multimodal_model` can write.
LAYOUTS = tuple(_PREFIXES)


def _prefixes(layout: str) -> tuple[str, str, str]:
    try:
        return _PREFIXES[layout]
    except KeyError:
        known = ", ".join(LAYOUTS)
        raise ValueError(f"unknown multimodal weight layout {layout!r} (known: {known})") from None


def multimodal_config(variant: str = "default") -> dict[str, Any]:
    """Return the ``config.json`` of the multimodal layout around tiny-model ``variant``."""
    text = tiny.tiny_config(variant)
    del text["architectures"]
    text.pop("torch_dtype")
    text["vocab_size"] = VOCAB_SIZE
    return {
        "architectures": ["Gemma3ForConditionalGeneration"],
        "model_type": "gemma3",
        "torch_dtype": "float32",
        "boi_token_index": BOI_ID,
        "eoi_token_index": EOI_ID,
        "image_token_index": IMAGE_ID,
        "mm_tokens_per_image": MM_TOKENS_PER_IMAGE,
        "initializer_range": 0.02,
        "tie_word_embeddings": True,
        "eos_token_id": [tiny.EOS_ID, tiny.SPECIAL_TOKENS["<end_of_turn>"]],
        "text_config": text,
        "vision_config": dict(VISION_CONFIG),
    }


def vision_weights(seed: int) -> dict[str, Any]:
    """SigLIP weights under their ``vision_model.`` names (without the tower prefix)."""
    cfg = VISION_CONFIG
    hidden, inter = cfg["hidden_size"], cfg["intermediate_size"]
    patch, channels = cfg["patch_size"], cfg["num_channels"]
    n_patches = (cfg["image_size"] // patch) ** 2
    shapes: dict[str, tuple[int, ...]] = {
        "embeddings.patch_embedding.weight": (hidden, channels, patch, patch),
        "embeddings.position_embedding.weight": (n_patches, hidden),
    }
    for i in range(cfg["num_hidden_layers"]):
        layer = f"encoder.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            shapes[f"{layer}self_attn.{proj}.weight"] = (hidden, hidden)
        shapes[f"{layer}mlp.fc1.weight"] = (inter, hidden)
        shapes[f"{layer}mlp.fc2.weight"] = (hidden, inter)
    weights: dict[str, Any] = {}
    for name, shape in shapes.items():
        fan_in = int(shape[1]) * (patch * patch if "patch_embedding" in name else 1)
        weights[name] = _normal(seed, "vision." + name, shape, fan_in**-0.5)
    biases = ["embeddings.patch_embedding.bias"]
    norms = ["post_layernorm."]
    for i in range(cfg["num_hidden_layers"]):
        layer = f"encoder.layers.{i}."
        biases += [f"{layer}self_attn.{p}.bias" for p in ("q_proj", "k_proj", "v_proj", "out_proj")]
        biases += [f"{layer}mlp.fc2.bias"]
        norms += [f"{layer}layer_norm1.", f"{layer}layer_norm2."]
        weights[f"{layer}mlp.fc1.bias"] = _normal(seed, f"vision.{layer}fc1.b", (inter,), 0.02)
    for name in biases:
        weights[name] = _normal(seed, "vision." + name, (hidden,), 0.02)
    for norm in norms:  # LayerNorm: weight around 1, bias around 0
        weights[norm + "weight"] = _normal(seed, f"vision.{norm}w", (hidden,), 0.1, 1.0)
        weights[norm + "bias"] = _normal(seed, f"vision.{norm}b", (hidden,), 0.02)
    return weights


def multimodal_weights(
    variant: str = "default", seed: int = 0, layout: str = "v4"
) -> dict[str, Any]:
    """Return the float32 weights of the multimodal layout, keyed as ``layout`` names them.

    The language model is :func:`quote.tiny.tiny_weights` (``variant``, ``seed``) with
    :data:`VOCAB_SIZE` embedding rows; the lm_head is tied to the embedding and not stored.
    """
    lm_prefix, vision_prefix, projector_prefix = _prefixes(layout)
    out: dict[str, Any] = {}
    for name, value in tiny.tiny_weights(variant, seed, vocab_size=VOCAB_SIZE).items():
        out[lm_prefix + name.removeprefix("model.")] = value
    for name, value in vision_weights(seed).items():
        out[vision_prefix + name] = value
    vision_hidden = int(VISION_CONFIG["hidden_size"])
    text_hidden = int(tiny.VARIANTS[variant].hidden_size)
    out[projector_prefix + "mm_input_projection_weight"] = _normal(
        seed, "mm_input_projection_weight", (vision_hidden, text_hidden), vision_hidden**-0.5
    )
    out[projector_prefix + "mm_soft_emb_norm.weight"] = _normal(
        seed, "mm_soft_emb_norm.weight", (vision_hidden,), 0.1
    )
    return out


def _tokenizer_json() -> str:
    from tokenizers import AddedToken, Tokenizer

    tokenizer = Tokenizer.from_file(str(tiny.TOKENIZER_PATH))
    tokenizer.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in IMAGE_TOKENS]
    )
    for token, expected in IMAGE_TOKENS.items():
        if tokenizer.token_to_id(token) != expected:  # the shipped tokenizer changed size
            raise RuntimeError(f"{token} got id {tokenizer.token_to_id(token)}, not {expected}")
    text: str = tokenizer.to_str(pretty=True)
    return text


def _tokenizer_config() -> dict[str, Any]:
    config = tiny.tokenizer_config()
    config["additional_special_tokens"] = [*config["additional_special_tokens"], *IMAGE_TOKENS]
    config["boi_token"] = "<start_of_image>"
    config["eoi_token"] = "<end_of_image>"
    config["image_token"] = "<image_soft_token>"
    return config


def preprocessor_config() -> dict[str, Any]:
    """``preprocessor_config.json``: Gemma 3's image processor at the tiny tower's image size.

    As the released checkpoints: resize (bilinear) to the tower's square input, rescale to
    [0, 1], normalise with mean and std 0.5, no pan-and-scan; :data:`MM_TOKENS_PER_IMAGE`
    soft tokens per image.
    """
    side = int(VISION_CONFIG["image_size"])
    return {
        "image_processor_type": "Gemma3ImageProcessor",
        "processor_class": "Gemma3Processor",
        "do_convert_rgb": None,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "do_pan_and_scan": None,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "image_seq_length": MM_TOKENS_PER_IMAGE,
        "resample": 2,
        "rescale_factor": 1 / 255,
        "size": {"height": side, "width": side},
    }


def write_tiny_multimodal_model(
    out_dir: str | pathlib.Path, *, variant: str = "default", seed: int = 0, layout: str = "v4"
) -> pathlib.Path:
    """Write the multimodal tiny checkpoint into ``out_dir`` and return its path.

    Same files as :func:`quote.tiny.write_tiny_model` (byte-identical for the same arguments),
    with ``config.json`` in the ``Gemma3ForConditionalGeneration`` layout, the weights named as
    ``layout`` says, the image tokens added to the tokenizer, and Gemma 3's processor files
    (``preprocessor_config.json``, ``processor_config.json``, ``chat_template.jinja``).
    """
    from safetensors.numpy import save_file

    weights = multimodal_weights(variant, seed, layout)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "config.json", multimodal_config(variant))
    _write_json(out / "generation_config.json", tiny.generation_config())
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "tokenizer.json").write_text(_tokenizer_json() + "\n", encoding="utf-8")
    _write_json(out / "tokenizer_config.json", _tokenizer_config())
    special = tiny._special_tokens_map()
    special["additional_special_tokens"] = [*special["additional_special_tokens"], *IMAGE_TOKENS]
    _write_json(out / "special_tokens_map.json", special)
    _write_json(out / "preprocessor_config.json", preprocessor_config())
    _write_json(
        out / "processor_config.json",
        {"processor_class": "Gemma3Processor", "image_seq_length": MM_TOKENS_PER_IMAGE},
    )
    (out / "chat_template.jinja").write_text(
        tiny.CHAT_TEMPLATE_PATH.read_text(encoding="utf-8"), encoding="utf-8"
    )
    logger.info("wrote tiny multimodal Gemma3 %r (%s, seed %d) to %s", variant, layout, seed, out)
    return out
