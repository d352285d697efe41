# SPDX-License-Identifier: Apache-2.0
"""Hugging Face safetensors names -> Quote Gemma3 graph names."""

from __future__ import annotations

from typing import Any

from max.graph.weights import WeightData, Weights

__all__ = ["convert_safetensor_state_dict"]


def convert_safetensor_state_dict(
    state_dict: dict[str, Weights], **_: Any
) -> dict[str, WeightData]:
    """Strip the ``model.`` prefix (and a multimodal ``language_model.`` one); keep ``lm_head.``."""
    out: dict[str, WeightData] = {}
    for name, value in state_dict.items():
        key = name
        for prefix in ("model.language_model.", "language_model.model.", "model."):
            if key.startswith(prefix):
                key = key[len(prefix) :]
                break
        if key.startswith("language_model.lm_head."):
            key = key[len("language_model.") :]
        out[key] = value.data()
    return out
