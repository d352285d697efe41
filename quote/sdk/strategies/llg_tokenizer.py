# SPDX-License-Identifier: Apache-2.0
"""llguidance's view of whatever tokenizer a mod is given, cached on its token table.

A Hugging Face fast tokenizer goes through :func:`quote.sdk.grammar.llg_tokenizer`
(its Rust backend, every byte-level token included). Any other tokenizer (the SDK's
:class:`~quote.sdk.testing.ListTokenizer`, a slow Hugging Face tokenizer) is described
by the text of each token (:func:`~quote.sdk.tokens.token_table`) and its ``encode``;
tokens without text are special. With no EOS, a virtual EOS one past the vocabulary is
added (llguidance needs one; strategies never allow it).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from quote.sdk.grammar import llg_tokenizer
from quote.sdk.tokenize import tokenize
from quote.sdk.tokens import TokenTable, token_table

__all__ = ["strategy_tokenizer"]

logger = logging.getLogger(__name__)

_KEY = ("llguidance-tokenizer",)
_LOCK = threading.Lock()


class _TextTokenizer:
    """The duck type ``llguidance.TokenizerWrapper`` reads: token bytes, EOS, ``__call__``."""

    def __init__(self, tokenizer: Any, table: TokenTable) -> None:
        self._tokenizer = tokenizer
        self.tokens = [
            t.encode("utf-8") if t else f"<|special_{i}|>".encode()
            for i, t in enumerate(table.texts)
        ]
        self.special_token_ids = [i for i, t in enumerate(table.texts) if not t]
        self.bos_token_id = None
        eos = table.eos_token_id
        if eos is None:
            eos = len(self.tokens)
            self.tokens.append(b"<|quote_end|>")
            self.special_token_ids.append(eos)
        self.eos_token_id = eos
        self._ids = {t: i for i, t in enumerate(table.texts) if t}
        self._longest = max((len(t) for t in self._ids), default=1)

    def __call__(self, text: str | bytes) -> list[int]:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        try:
            return tokenize(text, self._tokenizer)
        except (ValueError, TypeError, KeyError):
            return self._greedy(text)

    def _greedy(self, text: str) -> list[int]:
        """Longest-match over the token texts, skipping characters no token holds."""
        out: list[int] = []
        i = 0
        while i < len(text):
            for n in range(min(self._longest, len(text) - i), 0, -1):
                tid = self._ids.get(text[i : i + n])
                if tid is not None:
                    out.append(tid)
                    i += n
                    break
            else:
                i += 1
        return out


def strategy_tokenizer(tokenizer: Any) -> Any:
    """The ``llguidance.LLTokenizer`` for ``tokenizer`` (built once per tokenizer)."""
    table = token_table(tokenizer)
    hit = table.cache.get(_KEY)
    if hit is not None:
        return hit
    with _LOCK:
        hit = table.cache.get(_KEY)
        if hit is None:
            hit = _build(tokenizer, table)
            table.cache[_KEY] = hit
    return hit


def _build(tokenizer: Any, table: TokenTable) -> Any:
    import llguidance

    eos = table.eos_token_id
    if hasattr(tokenizer, "backend_tokenizer"):
        if eos is not None:
            return llg_tokenizer(tokenizer, [eos])
        n = len(tokenizer)
        return llg_tokenizer(tokenizer, [n], n_vocab=n + 1)
    logger.debug("llguidance tokenizer from %d token texts", table.size)
    return llguidance.LLTokenizer(llguidance.TokenizerWrapper(_TextTokenizer(tokenizer, table)))
