# SPDX-License-Identifier: Apache-2.0
"""Hugging Face ``transformers`` as the reference model for Quote's Gemma3 (tests, benchmarks).

transformers 5.12's ``Gemma3Attention`` keeps ``attn_logit_softcapping`` but never passes it
to its attention function (its Gemma2 does); transformers' own ``eager_attention_forward``
applies it when given. :func:`load_reference` registers an attention implementation that
passes it on, so the reference soft-caps exactly as the checkpoint's config says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["SOFTCAP_EAGER", "load_reference"]

SOFTCAP_EAGER = "quote_softcap_eager"
"""Name of the registered attention implementation: transformers' eager attention + soft-cap."""


def _softcap_eager(module: Any, query: Any, key: Any, value: Any, mask: Any, **kw: Any) -> Any:
    from transformers.models.gemma3.modeling_gemma3 import eager_attention_forward

    kw["softcap"] = getattr(module, "attn_logit_softcapping", None)
    return eager_attention_forward(module, query, key, value, mask, **kw)


def load_reference(
    model_dir: str | Path, *, dtype: Any = None, device: str = "cpu", attention: str = SOFTCAP_EAGER
) -> Any:
    """``Gemma3ForCausalLM`` from ``model_dir`` in eval mode (float32 on CPU by default).

    ``attention`` is a transformers attention implementation; the default is eager attention
    with the config's soft-cap applied (``"eager"`` gives transformers' behaviour, no cap).
    """
    import torch
    from transformers import AttentionInterface, Gemma3ForCausalLM
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(SOFTCAP_EAGER, _softcap_eager)
    AttentionMaskInterface.register(SOFTCAP_EAGER, eager_mask)
    model = Gemma3ForCausalLM.from_pretrained(
        model_dir, dtype=dtype or torch.float32, attn_implementation=attention
    )
    return model.to(device).eval()
