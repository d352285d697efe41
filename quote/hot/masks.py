# SPDX-License-Identifier: Apache-2.0
"""Allow/ban masks applied on the device by MAX's bitmask sampler.

An ``AdjustedLogits`` that only allows or bans tokens (no full row, no bias) does
not need the logits on the host: the engine turns it into one row of a packed
int32 bitmask (bit ``t % 32`` of word ``t // 32`` set = token ``t`` allowed) and
lets the sampler graph mask on the device. Packed rows are cached by content.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from quote.sdk.actions import AdjustedLogits
from quote.sdk.errors import InvalidActionError

__all__ = ["RowMask", "apply_packed", "is_mask_only", "pack"]

_CACHE_SIZE = 256
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Lru(OrderedDict[K, V]):
    """A small least-recently-used cache of :data:`_CACHE_SIZE` entries."""

    def hit(self, key: K) -> V | None:
        """The cached value (now the most recent), or None."""
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def keep(self, key: K, value: V) -> V:
        """Cache ``value``, evicting the least recently used entry when full."""
        self[key] = value
        if len(self) > _CACHE_SIZE:
            self.popitem(last=False)
        return value


_CACHE: _Lru[tuple[int, bytes, bytes], npt.NDArray[np.int32]] = _Lru()


def is_mask_only(action: AdjustedLogits) -> bool:
    """Whether ``action`` only allows/bans tokens (so it can run on the device)."""
    return (
        action.logits is None and not action.bias and (action.allow is not None or bool(action.ban))
    )


class RowMask:
    """The combined allow/ban edits of one request's mods for one step."""

    __slots__ = ("allow", "ban")

    def __init__(self) -> None:
        self.allow: npt.NDArray[np.int64] | None = None
        self.ban: npt.NDArray[np.int64] | None = None

    def add(self, action: AdjustedLogits, vocab: int) -> RowMask:
        """Combine ``action`` (allow-lists intersect, bans accumulate); checks ids."""
        allow = None if action.allow is None else _token_ids(action.allow, vocab)
        ban = _token_ids(action.ban, vocab) if action.ban else None
        if allow is not None:
            self.allow = allow if self.allow is None else np.intersect1d(self.allow, allow)
        if ban is not None:
            self.ban = ban if self.ban is None else np.union1d(self.ban, ban)
        return self

    def apply(self, row: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The masked copy of ``row`` (host path, when a later mod reads the logits)."""
        out = row.astype(np.float32, copy=True)
        if self.ban is not None:
            out[self.ban] = -np.inf
        if self.allow is not None:
            masked = np.full_like(out, -np.inf)
            masked[self.allow] = out[self.allow]
            out = masked
        return out

    def packed(self, vocab: int) -> npt.NDArray[np.int32]:
        """This mask as one packed bitmask row for a ``vocab``-wide logits row."""
        allow = b"" if self.allow is None else self.allow.tobytes()
        ban = b"" if self.ban is None else self.ban.tobytes()
        key = (vocab, allow, ban)
        hit = _CACHE.hit(key)
        if hit is not None:
            return hit
        keep = np.zeros(vocab, dtype=bool) if self.allow is not None else np.ones(vocab, dtype=bool)
        if self.allow is not None:
            keep[self.allow] = True
        if self.ban is not None:
            keep[self.ban] = False
        return _CACHE.keep(key, pack(keep))


_CACHED_IDS = 4096
_IDS: _Lru[tuple[int, tuple[int, ...]], npt.NDArray[np.int64]] = _Lru()


def _token_ids(ids: Sequence[int], vocab: int) -> npt.NDArray[np.int64]:
    """``ids`` as a sorted, unique, read-only array, checked against ``vocab``.

    Mods often send the same list step after step (a grammar state, a choice set), so
    lists of up to :data:`_CACHED_IDS` ids are cached by content.
    """
    key = (vocab, ids) if isinstance(ids, tuple) and len(ids) <= _CACHED_IDS else None
    hit = _IDS.hit(key) if key is not None else None
    if hit is not None:
        return hit
    arr = np.asarray(ids, dtype=np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= vocab):
        bad = arr[(arr < 0) | (arr >= vocab)][:8].tolist()
        raise InvalidActionError(
            f"AdjustedLogits: token ids outside the vocabulary (size {vocab}): {bad}"
        )
    out = np.unique(arr)
    out.flags.writeable = False
    return _IDS.keep(key, out) if key is not None else out


def pack(keep: npt.NDArray[np.bool_]) -> npt.NDArray[np.int32]:
    """Pack a boolean keep-mask into int32 words (token t -> word t//32, bit t%32)."""
    words = (keep.shape[0] + 31) // 32
    padded = np.zeros(words * 32, dtype=bool)
    padded[: keep.shape[0]] = keep
    return np.packbits(padded, bitorder="little").view("<i4").astype(np.int32)


def apply_packed(
    row: npt.NDArray[np.float32], packed: npt.NDArray[np.int32]
) -> npt.NDArray[np.float32]:
    """A copy of ``row`` with every token not set in the packed bitmask at ``-inf``."""
    keep = np.unpackbits(packed.view(np.uint8), bitorder="little")[: row.shape[0]].astype(bool)
    out = np.where(keep, row, np.float32(-np.inf)).astype(np.float32)
    return out
