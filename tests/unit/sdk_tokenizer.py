# SPDX-License-Identifier: Apache-2.0
"""A real byte-level BPE tokenizer for SDK unit tests (the tiny model's, or one trained here)."""

from __future__ import annotations

import functools
from typing import Any

_CORPUS = [
    "The quick brown fox jumps over the lazy dog. Yes, please answer with yes or no.",
    'JSON numbers like -12.5e3, 0.25 and 42 appear in {"key": "value", "list": [1, 2, 3]}.',
    "def answer(question):\n    return 'Paris' if question else None  # the capital city\n",
    "small medium large red green blue; true false null. Hello world! Ça va? naïve café",
] * 20


@functools.lru_cache(maxsize=1)
def bpe_tokenizer() -> Any:
    """The project's tiny tokenizer if present, else a ~600-token BPE trained on a fixed corpus."""
    try:
        from quote.tiny import load_tokenizer

        return load_tokenizer()
    except (ImportError, AttributeError, OSError):
        pass
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<pad>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_CORPUS, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>")
