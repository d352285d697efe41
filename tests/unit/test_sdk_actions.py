# SPDX-License-Identifier: Apache-2.0
"""ActionBuilder legality (exhaustive), action validation and AdjustedLogits sparse edits."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from quote.sdk import (
    LEGAL_EVENTS,
    ActionBuilder,
    Added,
    AdjustedLogits,
    AdjustedPrefill,
    Backtrack,
    EmitError,
    ForceOutput,
    ForceTokens,
    ForwardPass,
    InvalidActionError,
    Noop,
    Prefilled,
    Sampled,
    ToolCall,
    ToolCalls,
    is_legal,
)

pytestmark = pytest.mark.unit

EVENTS = {
    Prefilled: Prefilled("r", 0, 8, (1, 2)),
    ForwardPass: ForwardPass("r", 0, np.zeros(16, dtype=np.float32)),
    Sampled: Sampled("r", 0, 3),
    Added: Added("r", 0, (3,), False),
}
BUILD = {
    Noop: lambda b: b.noop(),
    AdjustedPrefill: lambda b: b.adjust_prefill([1, 2], max_steps=4),
    ForceTokens: lambda b: b.force_tokens([5]),
    AdjustedLogits: lambda b: b.adjust_logits(allow=[1]),
    Backtrack: lambda b: b.backtrack(1, [2]),
    ForceOutput: lambda b: b.force_output([1]),
    ToolCalls: lambda b: b.tool_calls([{"name": "f", "arguments": {"x": 1}}]),
    EmitError: lambda b: b.emit_error("boom"),
}
TABLE = {  # the issue's table, written out independently of LEGAL_EVENTS
    Noop: "PFSA",
    AdjustedPrefill: "P",
    ForceTokens: "PFSA",
    AdjustedLogits: "F",
    Backtrack: "FSA",
    ForceOutput: "PFSA",
    ToolCalls: "PFSA",
    EmitError: "PFSA",
}
LETTER = {Prefilled: "P", ForwardPass: "F", Sampled: "S", Added: "A"}


def test_table_matches_the_issue() -> None:
    assert set(LEGAL_EVENTS) == set(TABLE)
    for action, letters in TABLE.items():
        assert {LETTER[e] for e in LEGAL_EVENTS[action]} == set(letters)


@pytest.mark.parametrize("shared", [False, True], ids=["own", "shared"])
@pytest.mark.parametrize(("action", "event"), list(itertools.product(BUILD, EVENTS)))
def test_builder_every_pair(action: type, event: type, shared: bool) -> None:
    # The engine passes one shared, stateless builder per event type.
    builder = ActionBuilder.for_event_type(event) if shared else ActionBuilder(EVENTS[event])
    assert not shared or builder is ActionBuilder.for_event_type(event)
    if LETTER[event] in TABLE[action]:
        built = BUILD[action](builder)
        assert type(built) is action
        assert is_legal(built, EVENTS[event])
    else:
        with pytest.raises(InvalidActionError) as info:
            BUILD[action](builder)
        message = str(info.value)
        assert action.__name__ in message and event.__name__ in message


def test_actions_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ForceTokens((1,)).tokens = (2,)  # type: ignore[misc]
    assert ForceTokens([np.int64(3)]).tokens == (3,)
    with pytest.raises(InvalidActionError):
        ForceTokens([True])
    with pytest.raises(InvalidActionError):
        ForceTokens([])
    with pytest.raises(InvalidActionError):
        Backtrack(-1)
    with pytest.raises(InvalidActionError):
        ToolCalls(("nope",))  # type: ignore[arg-type]
    assert ToolCalls([{"name": "f"}]).calls == (ToolCall("f"),)


def test_sparse_edits_order_and_copy() -> None:
    row = np.arange(8, dtype=np.float32)
    original = row.copy()
    out = AdjustedLogits(bias={1: 10.0, 2: -1.0}, ban=(3,), allow=(1, 2, 3)).apply(row)
    assert np.array_equal(row, original)
    assert out[1] == 11.0 and out[2] == 1.0
    assert out[3] == -np.inf and np.isneginf(out[[0, 4, 5, 6, 7]]).all()
    full = AdjustedLogits(logits=np.ones(8, dtype=np.float32), ban=(0,)).apply(row)
    assert full[0] == -np.inf and (full[1:] == 1).all()


def test_sparse_allow_on_large_vocab() -> None:
    row = np.zeros(262_144, dtype=np.float32)
    out = AdjustedLogits(allow=(7, 262_143)).apply(row)
    assert np.isfinite(out).sum() == 2 and out[262_143] == 0.0


def test_bad_ids_and_shapes() -> None:
    row = np.zeros(4, dtype=np.float32)
    with pytest.raises(InvalidActionError, match="outside the vocabulary"):
        AdjustedLogits(allow=(4,)).apply(row)
    with pytest.raises(InvalidActionError):
        AdjustedLogits(logits=np.zeros(5, dtype=np.float32)).apply(row)
    with pytest.raises(InvalidActionError):
        AdjustedLogits(logits=np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(InvalidActionError):
        AdjustedLogits(allow=())
    with pytest.raises(InvalidActionError):
        AdjustedLogits(temperature=-1.0)


def test_temperature_zero_is_kept() -> None:
    """Regression: a temperature of 0.0 was treated as 'unset'."""
    builder = ActionBuilder(EVENTS[ForwardPass])
    assert builder.adjust_logits(allow=[1], temperature=0.0).temperature == 0.0
    assert builder.adjust_logits(allow=[1]).temperature is None


def test_events_are_frozen_values() -> None:
    """Sampled / Added (built with a fast ``__init__``) behave as frozen dataclasses."""
    import copy
    import pickle

    for event, other in (
        (Sampled("r", 3, 7), Sampled("r", 3, 8)),
        (Added("r", 3, (7, 8), True), Added("r", 3, (7, 8), False)),
    ):
        assert event == copy.deepcopy(event) == pickle.loads(pickle.dumps(event))
        assert event != other and hash(event) == hash(copy.copy(event))
        assert dataclasses.replace(event, step=4).step == 4 and event.step == 3
        assert repr(event).startswith(type(event).__name__ + "(request_id='r', step=3")
        with pytest.raises(dataclasses.FrozenInstanceError):
            event.step = 5  # type: ignore[misc]
    assert [f.name for f in dataclasses.fields(Added)] == ["request_id", "step", "tokens", "forced"]
