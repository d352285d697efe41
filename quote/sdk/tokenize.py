# SPDX-License-Identifier: Apache-2.0
"""``tokenize``: text to token ids with the model's tokenizer, without special tokens."""

from __future__ import annotations

from typing import Any

__all__ = ["tokenize"]


def tokenize(text: str, tokenizer: Any) -> list[int]:
    """Encode ``text`` without adding BOS/EOS (works with Hugging Face tokenizers)."""
    try:
        ids = tokenizer.encode(text, add_special_tokens=False)
    except TypeError:
        ids = tokenizer.encode(text)
    if hasattr(ids, "ids"):
        ids = ids.ids
    return [int(t) for t in ids]
