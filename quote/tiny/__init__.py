# SPDX-License-Identifier: Apache-2.0
"""The embedded tiny Gemma3 checkpoint: a deterministic, download-free model for tests and demos.

:func:`write_tiny_model` writes a Hugging Face layout directory (``config.json``, float32
``model.safetensors``, ``generation_config.json`` and the tokenizer files) that loads in
``transformers`` as ``Gemma3ForCausalLM`` and in MAX through ``quote.custom_arch``. The weights are
drawn with numpy from a fixed seed, so the same variant and seed always give byte-identical files.
The byte-level BPE tokenizer (``tokenizer.json``, 1,024 tokens) ships in this package; it was
trained once by :mod:`quote.tiny.build_tokenizer`.

Variants (all use a sliding window of 256 tokens, global RoPE base 1e6, local RoPE base 1e4):

- ``default``: 2 layers (sliding, global), 4 query heads, 2 KV heads, head_dim 32.
- ``softcap``: 3 layers (sliding, sliding, global), 4 query heads, 1 KV head, head_dim 64,
  attention soft-capping 50 and final-logit soft-capping 30 (Gemma 2's values), linear RoPE
  scaling (factor 2) on global layers. (transformers 5.12's ``Gemma3Attention`` stores
  ``attn_logit_softcapping`` but never passes it to its attention function; the parity test
  wires it into transformers' own eager attention.)
- ``mha``: 4 layers (sliding, global, sliding, global), 2 query heads, 2 KV heads, head_dim 48.
"""

from __future__ import annotations

import json
import logging
import pathlib
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

__all__ = [
    "CHAT_TEMPLATE_PATH",
    "TOKENIZER_PATH",
    "VARIANTS",
    "load_tokenizer",
    "tiny_config",
    "write_tiny_model",
]

logger = logging.getLogger(__name__)

_HERE = pathlib.Path(__file__).resolve().parent
#: The shipped byte-level BPE tokenizer.
TOKENIZER_PATH = _HERE / "tokenizer.json"
#: The Gemma-style chat template (embedded into ``tokenizer_config.json``).
CHAT_TEMPLATE_PATH = _HERE / "chat_template.jinja"

PAD_ID = 0
EOS_ID = 1
BOS_ID = 2
UNK_ID = 3
SPECIAL_TOKENS: dict[str, int] = {
    "<pad>": PAD_ID,
    "<eos>": EOS_ID,
    "<bos>": BOS_ID,
    "<unk>": UNK_ID,
    "<start_of_turn>": 4,
    "<end_of_turn>": 5,
}
SLIDING_WINDOW = 256
MAX_POSITION_EMBEDDINGS = 4096
ROPE_THETA_GLOBAL = 1_000_000.0
ROPE_THETA_LOCAL = 10_000.0


@dataclass(frozen=True)
class _Variant:
    """Shape and initialisation of one tiny-model variant."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    sliding_window_pattern: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    attn_logit_softcapping: float | None = None
    final_logit_softcapping: float | None = None
    rope_linear_factor: float | None = None
    embed_std: float = 0.05
    norm_std: float = 0.1
    # Means of the q/k norm weights and of the final norm weight (Gemma scales by 1 + w). A final
    # scale near -1 steers greedy decoding away from repeating the current token (with tied
    # embeddings a random model otherwise settles on one token forever); larger magnitudes make
    # the soft-capping variant's caps actually bite.
    qk_norm_offset: float = 1.0
    final_norm_offset: float = -2.0


VARIANTS: dict[str, _Variant] = {
    "default": _Variant(
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        sliding_window_pattern=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
    ),
    "softcap": _Variant(
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=3,
        sliding_window_pattern=3,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=64,
        attn_logit_softcapping=50.0,
        final_logit_softcapping=30.0,
        rope_linear_factor=2.0,
        final_norm_offset=-21.0,
    ),
    "mha": _Variant(
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=4,
        sliding_window_pattern=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=48,
    ),
}


def _variant(name: str) -> _Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        known = ", ".join(sorted(VARIANTS))
        raise ValueError(f"unknown tiny-model variant {name!r} (known: {known})") from None


def _vocab_size() -> int:
    from tokenizers import Tokenizer

    return int(Tokenizer.from_file(str(TOKENIZER_PATH)).get_vocab_size(with_added_tokens=True))


def layer_types(variant: str = "default") -> list[str]:
    """Return the attention type of every layer: ``sliding_attention`` or ``full_attention``.

    Layer ``i`` is global exactly when ``(i + 1) % sliding_window_pattern == 0``, the rule that both
    ``transformers`` (when ``layer_types`` is absent) and MAX's built-in Gemma3 use, so the two
    encodings written to ``config.json`` always agree.
    """
    spec = _variant(variant)
    pattern = spec.sliding_window_pattern
    return [
        "full_attention" if (i + 1) % pattern == 0 else "sliding_attention"
        for i in range(spec.num_hidden_layers)
    ]


def tiny_config(variant: str = "default") -> dict[str, Any]:
    """Return the ``config.json`` contents of a variant (a fresh dict each call).

    Both the transformers >= 5 encoding (``layer_types``, ``rope_parameters`` per layer type) and the
    4.x encoding (``sliding_window_pattern``, ``rope_theta``, ``rope_local_base_freq``,
    ``rope_scaling``) are written, and they describe the same model.
    """
    spec = _variant(variant)
    rope_scaling: dict[str, Any] | None = None
    full_rope: dict[str, Any] = {"rope_type": "default", "rope_theta": ROPE_THETA_GLOBAL}
    if spec.rope_linear_factor is not None:
        rope_scaling = {"rope_type": "linear", "factor": spec.rope_linear_factor}
        full_rope = {**rope_scaling, "rope_theta": ROPE_THETA_GLOBAL}
    return {
        "architectures": ["Gemma3ForCausalLM"],
        "model_type": "gemma3_text",
        "torch_dtype": "float32",
        "vocab_size": _vocab_size(),
        "hidden_size": spec.hidden_size,
        "intermediate_size": spec.intermediate_size,
        "num_hidden_layers": spec.num_hidden_layers,
        "num_attention_heads": spec.num_attention_heads,
        "num_key_value_heads": spec.num_key_value_heads,
        "head_dim": spec.head_dim,
        "hidden_activation": "gelu_pytorch_tanh",
        "max_position_embeddings": MAX_POSITION_EMBEDDINGS,
        "initializer_range": 0.02,
        "rms_norm_eps": 1e-6,
        "use_cache": True,
        "pad_token_id": PAD_ID,
        "eos_token_id": EOS_ID,
        "bos_token_id": BOS_ID,
        "tie_word_embeddings": True,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "query_pre_attn_scalar": spec.head_dim,
        "sliding_window": SLIDING_WINDOW,
        "sliding_window_pattern": spec.sliding_window_pattern,
        "layer_types": layer_types(variant),
        "rope_theta": ROPE_THETA_GLOBAL,
        "rope_local_base_freq": ROPE_THETA_LOCAL,
        "rope_scaling": rope_scaling,
        "rope_parameters": {
            "full_attention": full_rope,
            "sliding_attention": {"rope_type": "default", "rope_theta": ROPE_THETA_LOCAL},
        },
        "attn_logit_softcapping": spec.attn_logit_softcapping,
        "final_logit_softcapping": spec.final_logit_softcapping,
        "use_bidirectional_attention": False,
    }


def generation_config() -> dict[str, Any]:
    """Return the ``generation_config.json`` contents: stop on ``<eos>`` or ``<end_of_turn>``."""
    return {
        "bos_token_id": BOS_ID,
        "eos_token_id": [EOS_ID, SPECIAL_TOKENS["<end_of_turn>"]],
        "pad_token_id": PAD_ID,
    }


def _special_tokens_map() -> dict[str, Any]:
    return {
        "bos_token": "<bos>",
        "eos_token": "<eos>",
        "pad_token": "<pad>",
        "unk_token": "<unk>",
        "additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"],
    }


def tokenizer_config() -> dict[str, Any]:
    """Return the ``tokenizer_config.json`` contents, the chat template included."""
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **_special_tokens_map(),
        "add_bos_token": True,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": MAX_POSITION_EMBEDDINGS,
        "padding_side": "left",
        "chat_template": CHAT_TEMPLATE_PATH.read_text(encoding="utf-8"),
    }


def load_tokenizer() -> PreTrainedTokenizerFast:
    """Load the shipped tokenizer as a ``transformers`` fast tokenizer (with the chat template)."""
    from transformers import PreTrainedTokenizerFast

    config = tokenizer_config()
    config.pop("tokenizer_class")
    return PreTrainedTokenizerFast(tokenizer_file=str(TOKENIZER_PATH), **config)


def _normal(seed: int, name: str, shape: tuple[int, ...], std: float, mean: float = 0.0) -> Any:
    # One generator per tensor, keyed by its name, so tensors do not depend on each other's order.
    rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
    values = rng.standard_normal(shape) * std + mean
    return np.ascontiguousarray(values, dtype=np.float32)


def tiny_weights(
    variant: str = "default", seed: int = 0, *, vocab_size: int | None = None
) -> dict[str, Any]:
    """Return the float32 weights of a variant, keyed by Hugging Face ``Gemma3ForCausalLM`` names.

    Linear layers are drawn with std ``fan_in ** -0.5``; the decoder layers' RMSNorm weights (used
    as ``1 + w``) are small values around 0; the q/k norms and the final norm are offset (see
    ``_Variant``); the lm_head is tied to ``model.embed_tokens.weight`` and not stored.
    ``vocab_size`` (default: the shipped tokenizer's) sets the embedding rows; the first rows do
    not depend on it.
    """
    spec = _variant(variant)
    hidden = spec.hidden_size
    q_dim = spec.num_attention_heads * spec.head_dim
    kv_dim = spec.num_key_value_heads * spec.head_dim
    weights: dict[str, Any] = {
        "model.embed_tokens.weight": _normal(
            seed,
            "model.embed_tokens.weight",
            (vocab_size or _vocab_size(), hidden),
            spec.embed_std,
        ),
        "model.norm.weight": _normal(
            seed, "model.norm.weight", (hidden,), spec.norm_std, spec.final_norm_offset
        ),
    }
    for i in range(spec.num_hidden_layers):
        prefix = f"model.layers.{i}."
        linears = {
            "self_attn.q_proj.weight": (q_dim, hidden),
            "self_attn.k_proj.weight": (kv_dim, hidden),
            "self_attn.v_proj.weight": (kv_dim, hidden),
            "self_attn.o_proj.weight": (hidden, q_dim),
            "mlp.gate_proj.weight": (spec.intermediate_size, hidden),
            "mlp.up_proj.weight": (spec.intermediate_size, hidden),
            "mlp.down_proj.weight": (hidden, spec.intermediate_size),
        }
        for name, shape in linears.items():
            weights[prefix + name] = _normal(seed, prefix + name, shape, shape[1] ** -0.5)
        for name in (
            "input_layernorm.weight",
            "post_attention_layernorm.weight",
            "pre_feedforward_layernorm.weight",
            "post_feedforward_layernorm.weight",
        ):
            weights[prefix + name] = _normal(seed, prefix + name, (hidden,), spec.norm_std)
        for name in ("self_attn.q_norm.weight", "self_attn.k_norm.weight"):
            weights[prefix + name] = _normal(
                seed, prefix + name, (spec.head_dim,), spec.norm_std, spec.qk_norm_offset
            )
    return weights


def _write_json(path: pathlib.Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")


def write_tiny_model(
    out_dir: str | pathlib.Path, *, variant: str = "default", seed: int = 0
) -> pathlib.Path:
    """Write the tiny Gemma3 checkpoint of ``variant`` into ``out_dir`` and return its path.

    The directory is created if needed; existing files of the same names are overwritten. The same
    ``variant`` and ``seed`` always produce byte-identical files.
    """
    from safetensors.numpy import save_file

    out = pathlib.Path(out_dir)
    config = tiny_config(variant)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "config.json", config)
    _write_json(out / "generation_config.json", generation_config())
    save_file(
        tiny_weights(variant, seed), str(out / "model.safetensors"), metadata={"format": "pt"}
    )
    (out / "tokenizer.json").write_bytes(TOKENIZER_PATH.read_bytes())
    _write_json(out / "tokenizer_config.json", tokenizer_config())
    _write_json(out / "special_tokens_map.json", _special_tokens_map())
    logger.info("wrote tiny Gemma3 %r (seed %d) to %s", variant, seed, out)
    return out
