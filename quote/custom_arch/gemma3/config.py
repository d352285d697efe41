# SPDX-License-Identifier: Apache-2.0
"""``QuoteGemma3Config``: MAX's Gemma3 config, widened to float32 and a single KV cache.

Differences from MAX's built-in Gemma3 config:

* encodings ``float32`` (CPU; the default, weights cast to bfloat16 at load on GPU) and
  ``bfloat16`` (bfloat16 releases are cast to float32 at load on CPU);
* which layers slide comes from Hugging Face's ``layer_types`` (the config's own truth);
* a multimodal ``Gemma3ForConditionalGeneration`` config (Gemma 3 4B/12B/27B) is read through
  its ``text_config`` (:func:`text_config_of`): this architecture runs the language model only;
* one KV cache for all layers. Sliding layers mask their window inside the attention
  kernel but keep their pages, so truncating a sequence (a mod's backtrack) can
  rewind the cache in place, exactly, without recomputing the sequence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from max.dtype import DType
from max.graph import DeviceRef
from max.nn.kv_cache import KVCacheParams
from max.pipelines.architectures.gemma3.model_config import Gemma3Config
from max.pipelines.kv_cache import cache_dtype_for_encoding
from max.pipelines.lib import KVCacheConfig, PipelineConfig
from max.pipelines.modeling.config_enums import SupportedEncoding

__all__ = ["QuoteGemma3Config", "UnsupportedConfigError", "layer_types_of", "text_config_of"]


class UnsupportedConfigError(ValueError):
    """The checkpoint asks for a Gemma3 feature this architecture does not implement."""


def text_config_of(hf_config: Any) -> Any:
    """The language model's config: ``text_config`` of a multimodal config, else the config."""
    text = getattr(hf_config, "text_config", None)
    return hf_config if text is None else text


def layer_types_of(hf_config: Any) -> list[str]:
    """``"sliding_attention"`` / ``"full_attention"`` per layer, as Hugging Face decides."""
    n = int(hf_config.num_hidden_layers)
    types = getattr(hf_config, "layer_types", None)
    if types:
        return [str(t) for t in types][:n]
    raw = getattr(hf_config, "_sliding_window_pattern", None) or getattr(
        hf_config, "sliding_window_pattern", None
    )
    pattern = int(raw) if raw else 6
    return ["full_attention" if (i + 1) % pattern == 0 else "sliding_attention" for i in range(n)]


@dataclass(kw_only=True)
class QuoteGemma3Config(Gemma3Config):
    """MAX arch config for Quote's Gemma3 (see module docstring)."""

    DEFAULT_ENCODING: ClassVar[SupportedEncoding] = "float32"
    SUPPORTED_ENCODINGS: ClassVar[set[SupportedEncoding]] = {"float32", "bfloat16"}

    layer_types: list[str] = field(default_factory=list)
    """Per layer: ``sliding_attention`` or ``full_attention``."""

    @staticmethod
    def get_num_layers(huggingface_config: Any) -> int:
        """Number of decoder layers (of the language model)."""
        return int(text_config_of(huggingface_config).num_hidden_layers)

    @classmethod
    def calculate_max_seq_len(cls, huggingface_config: Any, model_config: Any) -> int:
        """``max_length`` bounded by the language model's ``max_position_embeddings``."""
        bounded: int = super().calculate_max_seq_len(
            text_config_of(huggingface_config), model_config
        )
        return bounded

    @classmethod
    def construct_kv_params(  # type: ignore[override]
        cls,
        huggingface_config: Any,
        pipeline_config: PipelineConfig,
        devices: list[DeviceRef],
        kv_cache_config: KVCacheConfig,
        cache_dtype: DType,
        *,
        allow_kv_head_replication: bool = False,
    ) -> KVCacheParams:
        """One paged KV cache covering every layer (sliding layers included)."""
        huggingface_config = text_config_of(huggingface_config)
        return kv_cache_config.to_params(
            dtype=cache_dtype,
            n_kv_heads=huggingface_config.num_key_value_heads,
            head_dim=huggingface_config.head_dim,
            num_layers=huggingface_config.num_hidden_layers,
            devices=devices,
            data_parallel_degree=pipeline_config.model.data_parallel_degree,
            allow_kv_head_replication=allow_kv_head_replication,
        )

    @classmethod
    def initialize_from_config(
        cls, pipeline_config: PipelineConfig, huggingface_config: Any, *, max_seq_len: int
    ) -> QuoteGemma3Config:
        """Build the config from the pipeline and Hugging Face configs; reject what we cannot run."""
        huggingface_config = text_config_of(huggingface_config)
        if len(pipeline_config.model.device_specs) != 1:
            raise UnsupportedConfigError(
                "Quote's Gemma3 runs on exactly one device; pass a single --devices entry"
            )
        config = super().initialize_from_config(
            pipeline_config, huggingface_config, max_seq_len=max_seq_len
        )
        assert isinstance(config, QuoteGemma3Config)
        config.layer_types = layer_types_of(huggingface_config)
        # The parent builds a sliding/full hybrid cache; replace it with one cache.
        assert config.quantization_encoding is not None
        config.kv_params = cls.construct_kv_params(
            huggingface_config,
            pipeline_config,
            list(config.devices),
            pipeline_config.model.kv_cache,
            cache_dtype_for_encoding(
                config.quantization_encoding, pipeline_config.model.kv_cache.kv_cache_format
            ),
        )
        bad = sorted(set(config.layer_types) - {"sliding_attention", "full_attention"})
        if bad:
            raise UnsupportedConfigError(f"unknown Gemma3 layer types: {bad}")
        return config
