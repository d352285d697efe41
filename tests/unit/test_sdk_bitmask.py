# SPDX-License-Identifier: Apache-2.0
"""``AdjustedLogits.allow_bitmask``: validation, host application, and the strategy helpers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quote.sdk import ActionBuilder, AdjustedLogits, ForwardPass, InvalidActionError
from quote.sdk.bitmask import bitmask_ids, pack_ids, popcount, set_bit, unpack_bitmask

pytestmark = pytest.mark.unit


def words_of(ids: list[int], width: int) -> np.ndarray:
    return pack_ids(np.asarray(sorted(set(ids)), dtype=np.int64), width)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 299), min_size=1, max_size=80), st.integers(300, 400))
def test_pack_and_unpack_agree(ids: list[int], width: int) -> None:
    words = words_of(ids, width)
    assert words.dtype == np.int32 and words.shape == ((width + 31) // 32,)
    assert bitmask_ids(words).tolist() == sorted(set(ids))
    assert popcount(words) == len(set(ids))
    keep = unpack_bitmask(words, width)
    assert np.flatnonzero(keep).tolist() == sorted(set(ids))


def test_bit_layout_is_little_endian_per_word() -> None:
    """Token t is bit t % 32 of word t // 32 (MAX's bitmask sampler, llguidance)."""
    words = words_of([0, 31, 32, 63], 64)
    u = words.view(np.uint32)
    assert u[0] == (1 | 1 << 31) and u[1] == (1 | 1 << 31)
    assert words[0] < 0  # bit 31 is the sign bit of an int32 word
    grown = set_bit(words.copy(), 70)
    assert grown.shape == (3,) and bitmask_ids(grown).tolist() == [0, 31, 32, 63, 70]


def test_apply_masks_every_clear_bit() -> None:
    rng = np.random.default_rng(0)
    row = rng.standard_normal(100).astype(np.float32)
    before = row.copy()
    keep = [3, 40, 99]
    action = AdjustedLogits(allow_bitmask=words_of(keep, 100))
    out = action.apply(row)
    assert np.flatnonzero(np.isfinite(out)).tolist() == keep
    assert np.array_equal(out[keep], row[keep]) and out.dtype == np.float32
    assert np.array_equal(row, before)  # the row itself is left alone


def test_short_masks_mask_the_rest_and_long_ones_are_cut() -> None:
    row = np.zeros(100, dtype=np.float32)
    short = AdjustedLogits(allow_bitmask=words_of([5], 32))  # one word covers tokens 0..31
    assert np.flatnonzero(np.isfinite(short.apply(row))).tolist() == [5]
    long = AdjustedLogits(allow_bitmask=words_of([5, 150], 160))
    assert np.flatnonzero(np.isfinite(long.apply(row))).tolist() == [5]


def test_combines_with_allow_ban_and_bias() -> None:
    row = np.arange(64, dtype=np.float32)
    action = AdjustedLogits(
        allow=(1, 2, 3, 4), ban=(2,), bias={3: 10.0}, allow_bitmask=words_of([2, 3, 4, 9], 64)
    )
    out = action.apply(row)
    assert np.flatnonzero(np.isfinite(out)).tolist() == [3, 4]
    assert out[3] == 13.0 and out[4] == 4.0


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros(4, dtype=np.int32),
        np.zeros((2, 2), dtype=np.int32),
        np.zeros(0, dtype=np.int32),
        np.ones(4, dtype=np.float32),
        np.ones(4, dtype=np.int64),
    ],
    ids=["no-token", "2-d", "empty", "float", "int64"],
)
def test_malformed_bitmasks_are_refused(bad: np.ndarray) -> None:
    with pytest.raises(InvalidActionError, match="allow_bitmask"):
        AdjustedLogits(allow_bitmask=bad)


def test_uint32_words_and_the_builder() -> None:
    event = ForwardPass("r", 0, np.zeros(64, dtype=np.float32))
    words = words_of([1, 33], 64).view(np.uint32)
    action = ActionBuilder(event).adjust_logits(allow_bitmask=words, temperature=0.0)
    assert isinstance(action, AdjustedLogits) and action.allow_bitmask is not None
    assert action.allow_bitmask.dtype == np.int32 and action.temperature == 0.0
    assert action.allow is None and action.token_ids() == []
    assert "allow_bitmask" not in repr(action)
