# SPDX-License-Identifier: Apache-2.0
"""Token tables: the decoded text of every token id, cached once per tokenizer.

Strategies keep their per-tokenizer caches here (``Choices`` tries, the llguidance
tokenizer and compiled grammars), and mods use the texts to pick tokens (a ban list of
every token containing a letter, say) without a per-step loop over the vocabulary.

Decoding rules: byte-level BPE tokens (GPT-2 style ``Ġ`` alphabet) are mapped
back to bytes; SentencePiece tokens (``▁`` for space, ``<0xNN>`` byte
fallbacks) likewise; other tokenizers fall back to ``decode([id])``. A token
whose bytes are not valid UTF-8 on their own (a fragment of a multi-byte
character) and special tokens have no text (``None``). (The llguidance strategies work
on token bytes instead, so they do allow such fragments where a character may follow.)
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["TokenTable", "token_table"]

logger = logging.getLogger(__name__)

_BYTE_TOKEN = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's ``bytes_to_unicode`` table."""
    bs = list(range(ord("!"), ord("~") + 1))
    bs += list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs, strict=True)}


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _strings_from_pieces(pieces: Sequence[str | None]) -> list[str | None] | None:
    """Decode token pieces if they are byte-level BPE or SentencePiece; else ``None``."""
    present = [p for p in pieces if p]
    if not present:
        return None
    bd = _byte_decoder()
    if any("▁" in p for p in present[:50_000]) or any(_BYTE_TOKEN.match(p) for p in present[:512]):
        out: list[str | None] = []
        for p in pieces:
            if not p:
                out.append(None)
                continue
            m = _BYTE_TOKEN.match(p)
            out.append(_utf8(bytes([int(m.group(1), 16)])) if m else p.replace("▁", " "))
        return out
    byte_level = sum(1 for p in present if all(c in bd for c in p))
    if byte_level >= 0.98 * len(present) and any("Ġ" in p for p in present):
        return [
            _utf8(bytes(bd[c] for c in p)) if p and all(c in bd for c in p) else None
            for p in pieces
        ]
    return None


class TokenTable:
    """The decoded text of each token id plus vectorised views of it.

    Attributes:
        texts: ``texts[i]`` is the text of token ``i`` or ``None`` (special/unusable).
        size: Number of token ids described (``len(tokenizer)``).
        eos_token_id: The tokenizer's EOS id, or ``None``.
        lengths: ``int32[size]``, number of characters of each token (0 when no text).
        valid: ``bool[size]``, tokens with non-empty text (usable by text strategies).
    """

    def __init__(self, texts: Sequence[str | None], eos_token_id: int | None = None) -> None:
        self.texts: list[str | None] = list(texts)
        self.size = len(self.texts)
        self.eos_token_id = eos_token_id
        self.lengths: npt.NDArray[np.int32] = np.fromiter(
            (len(t) if t else 0 for t in self.texts), dtype=np.int32, count=self.size
        )
        self.valid: npt.NDArray[np.bool_] = self.lengths > 0
        self._codes: npt.NDArray[np.int32] | None = None
        self._order: npt.NDArray[np.int64] | None = None
        self._uniq: npt.NDArray[np.int32] | None = None
        self._lock = threading.Lock()
        #: Per-table cache for strategies (tries, the llguidance tokenizer, compiled grammars).
        self.cache: dict[Any, Any] = {}

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> TokenTable:
        """Build the table of a Hugging Face-like tokenizer (see the module docs)."""
        strings_fn = getattr(tokenizer, "token_strings", None)
        eos = getattr(tokenizer, "eos_token_id", None)
        eos = int(eos) if isinstance(eos, int | np.integer) else None
        if callable(strings_fn):
            return cls(list(strings_fn()), eos)
        size = len(tokenizer)
        special = {int(i) for i in (getattr(tokenizer, "all_special_ids", None) or [])}
        texts: list[str | None] | None = None
        if hasattr(tokenizer, "convert_ids_to_tokens"):
            pieces = tokenizer.convert_ids_to_tokens(list(range(size)))
            texts = _strings_from_pieces([p if isinstance(p, str) else None for p in pieces])
        if texts is None:
            logger.info("token table: decoding %d tokens one by one", size)
            texts = []
            for i in range(size):
                text = tokenizer.decode([i])
                texts.append(text if text and "\ufffd" not in text else None)
        for i in special:
            if 0 <= i < size:
                texts[i] = None
        return cls(texts, eos)

    def _ensure_codes(self) -> None:
        with self._lock:
            if self._codes is not None:
                return
            width = int(self.lengths.max(initial=0))
            codes = np.full((self.size, max(width, 1)), -1, dtype=np.int32)
            for i, text in enumerate(self.texts):
                if text:
                    codes[i, : len(text)] = np.frombuffer(text.encode("utf-32-le"), dtype=np.int32)
            self._order = np.argsort(-self.lengths, kind="stable").astype(np.int64)
            uniq = np.unique(codes)
            self._uniq = uniq[uniq >= 0].astype(np.int32)
            self._codes = codes

    @property
    def codes(self) -> npt.NDArray[np.int32]:
        """``int32[size, max_len]``: code points of each token, padded with -1."""
        self._ensure_codes()
        assert self._codes is not None
        return self._codes

    @property
    def by_length(self) -> npt.NDArray[np.int64]:
        """Token ids sorted by decreasing length."""
        self._ensure_codes()
        assert self._order is not None
        return self._order

    @property
    def code_points(self) -> npt.NDArray[np.int32]:
        """Sorted distinct code points that occur in the vocabulary."""
        self._ensure_codes()
        assert self._uniq is not None
        return self._uniq

    def text(self, token: int) -> str | None:
        """The text of ``token`` (``None`` if special, unusable or out of range)."""
        return self.texts[token] if 0 <= token < self.size else None


_tables: dict[int, tuple[Any, TokenTable]] = {}
_tables_lock = threading.Lock()


def token_table(tokenizer: Any) -> TokenTable:
    """The cached :class:`TokenTable` of ``tokenizer`` (built on first use)."""
    key = id(tokenizer)
    hit = _tables.get(key)
    if hit is not None and hit[0]() is tokenizer:
        return hit[1]
    table = TokenTable.from_tokenizer(tokenizer)
    try:
        ref: Any = weakref.ref(tokenizer)
        weakref.finalize(tokenizer, _tables.pop, key, None)
    except TypeError:

        def ref() -> Any:  # not weak-referenceable: keep it alive with its table
            return tokenizer

    with _tables_lock:
        _tables[key] = (ref, table)
    return table
