# SPDX-License-Identifier: Apache-2.0
"""Packed token bitmasks: 1-D 32-bit words, bit ``t % 32`` of word ``t // 32`` = token ``t``.

The layout of MAX's bitmask sampler and of llguidance (:meth:`quote.sdk.grammar.Matcher.mask`),
used by ``AdjustedLogits.allow_bitmask``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from quote.sdk.errors import InvalidActionError

__all__ = ["as_bitmask", "bitmask_ids", "pack_ids", "popcount", "set_bit", "unpack_bitmask"]

_LANES = np.arange(32, dtype=np.int64)


def as_bitmask(value: Any, what: str = "AdjustedLogits: allow_bitmask") -> npt.NDArray[np.int32]:
    """``value`` as contiguous int32 words; :class:`InvalidActionError` unless it is a non-empty
    1-D array of 32-bit integers with at least one bit set."""
    arr = np.asarray(value)
    if arr.ndim != 1 or arr.size == 0 or arr.dtype.kind not in "iu" or arr.dtype.itemsize != 4:
        raise InvalidActionError(
            f"{what} must be a non-empty 1-D array of 32-bit words, "
            f"got dtype {arr.dtype} and shape {arr.shape}"
        )
    arr = np.ascontiguousarray(arr).view(np.int32)
    if not arr.any():
        raise InvalidActionError(f"{what} allows no token")
    return arr


def unpack_bitmask(words: npt.NDArray[np.int32], vocab: int) -> npt.NDArray[np.bool_]:
    """The ``bool[vocab]`` keep-mask of a packed bitmask (tokens past its words: ``False``)."""
    bits = np.unpackbits(np.ascontiguousarray(words).view(np.uint8), bitorder="little")
    if bits.shape[0] >= vocab:
        return bits[:vocab].astype(bool)
    keep = np.zeros(vocab, dtype=bool)
    keep[: bits.shape[0]] = bits.astype(bool)
    return keep


def popcount(words: npt.NDArray[np.int32]) -> int:
    """How many bits are set in a packed bitmask."""
    u = np.ascontiguousarray(words).view(np.uint32)
    if hasattr(np, "bitwise_count"):
        return int(np.bitwise_count(u).sum())
    return int(np.unpackbits(u.view(np.uint8)).sum())  # numpy < 2.0


def bitmask_ids(words: npt.NDArray[np.int32]) -> npt.NDArray[np.int64]:
    """The sorted token ids set in a packed bitmask (work grows with its non-zero words)."""
    words = np.ascontiguousarray(words)
    nz = np.flatnonzero(words)
    bits = np.unpackbits(words[nz].view(np.uint8), bitorder="little").reshape(-1, 32)
    ids: npt.NDArray[np.int64] = (nz[:, None] * 32 + _LANES)[bits.astype(bool)]
    return ids


def pack_ids(ids: npt.NDArray[np.int64], width: int) -> npt.NDArray[np.int32]:
    """A packed bitmask of ``ceil(width / 32)`` words with ``ids`` set."""
    keep = np.zeros(((width + 31) // 32) * 32, dtype=bool)
    keep[ids] = True
    return np.packbits(keep, bitorder="little").view("<i4").astype(np.int32)


def set_bit(words: npt.NDArray[np.int32], token: int) -> npt.NDArray[np.int32]:
    """``words`` with ``token``'s bit set, in place (a grown copy when ``token`` is past its end)."""
    need = token // 32 + 1
    if need > words.shape[0]:
        words = np.concatenate([words, np.zeros(need - words.shape[0], dtype=np.int32)])
    u = words.view(np.uint32)
    u[token // 32] |= np.uint32(1 << (token % 32))
    return words
