# SPDX-License-Identifier: Apache-2.0
"""Hugging Face safetensors names -> Quote Gemma3 graph names.

Three checkpoint layouts hold the same language model:

- ``Gemma3ForCausalLM`` (gemma-3-270m, gemma-3-1b): ``model.*`` and, untied, ``lm_head.*``;
- ``Gemma3ForConditionalGeneration`` as released (gemma-3-4b/12b/27b, saved by transformers
  4.x): ``language_model.model.*`` and ``language_model.lm_head.*``;
- ``Gemma3ForConditionalGeneration`` with transformers 5.x module names:
  ``model.language_model.*`` and ``lm_head.*``.

The vision tower and the multimodal projector of the multimodal layouts are dropped here:
``quote.custom_arch.gemma3.vision.convert_vision_state_dict`` reads them. Weights whose dtype differs from the model's (a bfloat16 release run
in float32 on CPU, a float32 checkpoint run in bfloat16 on GPU) are cast here, at load.
"""

from __future__ import annotations

import logging
from typing import Any

from max.dtype import DType
from max.graph.weights import WeightData, Weights

__all__ = ["convert_safetensor_state_dict", "language_model_name", "model_dtype"]

logger = logging.getLogger(__name__)

_LANGUAGE_PREFIXES = ("model.language_model.", "language_model.model.", "model.")
_MULTIMODAL_PARTS = (
    "vision_tower.",
    "multi_modal_projector.",
    "model.vision_tower.",
    "model.multi_modal_projector.",
)
_CASTABLE = {DType.float32, DType.bfloat16, DType.float16}


def language_model_name(name: str) -> str | None:
    """The graph name of checkpoint weight ``name``; ``None`` for a vision/projector weight."""
    if name.startswith(_MULTIMODAL_PARTS):
        return None
    if name.startswith("language_model.lm_head."):
        return name.removeprefix("language_model.")
    for prefix in _LANGUAGE_PREFIXES:
        if name.startswith(prefix):
            return name.removeprefix(prefix)
    return name


def model_dtype(pipeline_config: Any) -> DType | None:
    """The dtype the model runs in (from the pipeline's encoding); None without a config."""
    if pipeline_config is None:
        return None
    from max.pipelines.lib.config.model_config import _select_quantization_encoding
    from max.pipelines.modeling.config_enums import supported_encoding_dtype

    from quote.custom_arch.gemma3.config import QuoteGemma3Config

    encoding = _select_quantization_encoding(
        pipeline_config.model, QuoteGemma3Config.DEFAULT_ENCODING
    )
    dtype: DType = supported_encoding_dtype(encoding)
    return dtype


def convert_safetensor_state_dict(
    state_dict: dict[str, Weights], *, pipeline_config: Any = None, **_: Any
) -> dict[str, WeightData]:
    """Map names to the graph's, drop vision weights, cast floats to the model's dtype."""
    dtype = model_dtype(pipeline_config)
    out: dict[str, WeightData] = {}
    dropped = cast = 0
    for name, value in state_dict.items():
        key = language_model_name(name)
        if key is None:
            dropped += 1
            continue
        data = value.data()
        if dtype is not None and data.dtype != dtype and data.dtype in _CASTABLE:
            data = data.astype(dtype)
            cast += 1
        out[key] = data
    if dropped or cast:
        logger.info("weights: %d vision/projector dropped, %d cast to %s", dropped, cast, dtype)
    return out
