# SPDX-License-Identifier: Apache-2.0
"""Packed bitmask rows for device-side allow/ban masks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quote.hot.masks import RowMask, is_mask_only, pack
from quote.sdk import AdjustedLogits, InvalidActionError

pytestmark = pytest.mark.unit


def _unpack(words: np.ndarray, vocab: int) -> np.ndarray:
    bits = np.unpackbits(words.astype("<i4").view(np.uint8), bitorder="little")
    return bits[:vocab].astype(bool)


@given(st.lists(st.booleans(), min_size=1, max_size=200))
def test_pack_round_trips(keep: list[bool]) -> None:
    arr = np.array(keep)
    assert np.array_equal(_unpack(pack(arr), len(keep)), arr)


def test_row_mask_matches_host_apply() -> None:
    vocab = 100
    m = (
        RowMask()
        .add(AdjustedLogits(allow=(1, 5, 7, 9)), vocab)
        .add(AdjustedLogits(allow=(5, 7, 9, 11), ban=(9,)), vocab)
    )
    row = np.arange(vocab, dtype=np.float32)
    host = m.apply(row)
    keep = _unpack(m.packed(vocab), vocab)
    assert np.array_equal(np.isfinite(host), keep) and keep.sum() == 2  # 5 and 7
    assert is_mask_only(AdjustedLogits(ban=(1,))) and not is_mask_only(
        AdjustedLogits(bias={1: 1.0})
    )
    with pytest.raises(InvalidActionError):
        RowMask().add(AdjustedLogits(allow=(vocab,)), vocab)


def test_repeated_id_lists_are_cached_and_still_checked() -> None:
    """The same allow-list step after step is normalised once; bad ids raise every time."""
    vocab = 50
    a = RowMask().add(AdjustedLogits(allow=(7, 3, 3, 9)), vocab)
    b = RowMask().add(AdjustedLogits(allow=(7, 3, 3, 9)), vocab)
    assert a.allow is b.allow and a.allow is not None and a.allow.tolist() == [3, 7, 9]
    assert not a.allow.flags.writeable  # shared: nobody may edit it in place
    c = RowMask().add(AdjustedLogits(allow=(7, 3, 3, 9)), vocab + 1)  # other vocab: own entry
    assert c.allow is not a.allow and c.allow is not None and c.allow.tolist() == [3, 7, 9]
    for _ in range(2):
        with pytest.raises(InvalidActionError, match="outside the vocabulary"):
            RowMask().add(AdjustedLogits(ban=(1, vocab)), vocab)
    combined = (
        RowMask()
        .add(AdjustedLogits(allow=(7, 3, 9)), vocab)
        .add(AdjustedLogits(allow=(3, 9, 11)), vocab)
    )
    assert combined.allow is not None and combined.allow.tolist() == [3, 9]
    assert a.allow.tolist() == [3, 7, 9]  # the cached array was not changed by the intersection
