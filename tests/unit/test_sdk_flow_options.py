# SPDX-License-Identifier: Apache-2.0
"""Flow features of the original SDK: callbacks returning any action, a custom state per
request (``state_factory``), several flows in one engine, ``summary_builder``."""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from sdk_tokenizer import bpe_tokenizer

from quote.sdk import ActionBuilder, Conversation, get_conversation, mod
from quote.sdk.flow import (
    Callback,
    Flow,
    FlowEngine,
    FlowError,
    FlowState,
    Message,
    Output,
    Question,
    Stop,
    Summary,
    flow_mod,
    flow_state,
)
from quote.sdk.strategies import Choices
from quote.sdk.testing import RunResult, ScriptedModel, run_mod

pytestmark = pytest.mark.unit

TOK = bpe_tokenizer()
V = len(TOK)
EOS = TOK.eos_token_id


def ids(text: str) -> list[int]:
    return [int(t) for t in TOK.encode(text, add_special_tokens=False)]


def prefer(*words: str) -> ScriptedModel:
    return ScriptedModel.preferring(V, [ids(w)[0] for w in words] + [EOS])


def go(definition: Any, model: ScriptedModel, **kw: Any) -> RunResult:
    kw.setdefault("max_tokens", 80)
    return run_mod(definition, TOK, model, prompt="Order:", **kw)


def size_question(**kw: Any) -> Question:
    return Question("size", " size? ", Choices(["small", "large"]), **kw)


# --------------------------------------------------------------------------- callbacks
def test_callback_returns_a_tool_call_built_from_the_state() -> None:
    def book(actions: ActionBuilder, state: Any, tokenizer: Any) -> Any:
        return actions.tool_calls([{"name": "book", "arguments": {"size": state.answers["size"]}}])

    r = go(flow_mod(Flow(size_question().then(Callback(book)))), prefer("large"))
    assert r.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in r.tool_calls] == [("book", {"size": "large"})]


def test_callback_forces_tokens_then_the_flow_goes_on() -> None:
    note = Callback(lambda actions, state, tok: actions.force_tokens(ids(" [noted]")))
    q = size_question().then(Callback(note.fn, then=Summary(" {size}!")))
    r = go(flow_mod(Flow(q)), prefer("small"))
    assert r.text == " size? small [noted] small!" and r.completion_tokens[-1] == EOS


def test_callback_backtracks_then_goes_on() -> None:
    """A backtrack removes the question and its answer; ``then`` runs at the next event."""
    n = len(ids(" size? ")) + len(ids("small"))
    erase = Callback(lambda actions, state, tok: actions.backtrack(n), then=Stop())
    r = go(flow_mod(Flow(size_question().then(erase))), prefer("small"))
    assert r.text == "" and r.completion_tokens == [EOS]


def test_callback_routes_to_a_target_or_to_then() -> None:
    def pick(actions: ActionBuilder, state: Any, tokenizer: Any) -> Any:
        return Output("big one") if state.answers["size"] == "large" else None

    q = size_question().then(Callback(pick, then=Output("small one")))
    assert go(flow_mod(Flow(q)), prefer("large")).text == "big one"
    assert go(flow_mod(Flow(q)), prefer("small")).text == "small one"
    q2 = size_question().then(Callback(lambda a, s, t: a.noop(), then=Output("after noop")))
    assert go(flow_mod(Flow(q2)), prefer("small")).text == "after noop"


def test_callback_returning_something_else_fails_clearly() -> None:
    q = size_question().then(Callback(lambda a, s, t: 42))
    r = go(flow_mod(Flow(q)), prefer("small"))
    assert r.finish_reason == "error" and "returned 42" in (r.error or "")


# --------------------------------------------------------------------------- state
@dataclass
class Booking:
    request_id: str
    turn: int
    answers: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def test_state_factory_makes_one_state_per_request() -> None:
    made: list[Booking] = []

    def factory(rid: str) -> Booking:  # runs inside the request: it sees the conversation
        made.append(Booking(rid, len(get_conversation().messages)))
        return made[-1]

    def auto(env: dict[str, Any]) -> str | None:
        flow_state().notes.append("auto")
        return None

    q = size_question(auto=auto).assign(lambda state, answer: state.notes.append(f"got {answer}"))
    q.then(Callback(lambda a, state, t: Output(f"{state.request_id}: {state.notes}")))
    definition = flow_mod(Flow(q), state_factory=factory)
    turn = {"role": "user", "content": "hi"}
    r1 = go(definition, prefer("large"), request_id="a", conversation=Conversation([turn]))
    r2 = go(definition, prefer("small"), request_id="b", conversation=Conversation([turn] * 3))
    assert r1.text == "a: ['auto', 'got large']" and r2.text == "b: ['auto', 'got small']"
    assert [(b.request_id, b.turn) for b in made] == [("a", 1), ("b", 3)]
    assert made[0].answers == {"size": "large"}
    assert len(definition.engine) == 0  # type: ignore[attr-defined]


def test_default_state_and_engine_access() -> None:
    engine = FlowEngine(Flow(size_question(erase="all")))
    seen: list[Any] = []

    def fn(event: Any, actions: ActionBuilder, tokenizer: Any) -> Any:
        action = engine.handle(event, actions, tokenizer)
        seen.append(engine.state(event.request_id))
        return action

    go(mod(fn), prefer("large"), max_tokens=10, request_id="r1")
    assert isinstance(seen[-1], FlowState) and seen[-1].request_id == "r1"
    assert seen[-1].answers == {"size": "large"} and seen[-1].data == {}
    gc.collect()
    with pytest.raises(FlowError, match="only available"):
        flow_state()


def test_assign_function_takes_no_transform() -> None:
    with pytest.raises(TypeError, match="no transform"):
        size_question().assign(lambda s, a: None, str.upper)


# --------------------------------------------------------------------------- several flows
def test_untriggered_flows_run_in_order_then_a_triggered_one() -> None:
    first = Flow(size_question(), name="first")
    second = Flow(Message(" then", then=None), name="second")
    later = Flow(Message(" (asked)"), trigger="?", name="later")
    # The model writes "small" (the size), then "?", then EOS.
    model = ScriptedModel(
        lambda seq, n: _row({"small": 5.0} if "small" not in TOK.decode(seq[n:]) else {"?": 5.0})
    )
    r = go(flow_mod([first, second, later]), model, max_tokens=16)
    assert r.text.startswith(" size? small then?")
    assert r.text.count(" (asked)") == 1 and r.text.index(" (asked)") == len(" size? small then?")


def _row(weights: dict[str, float]) -> Any:
    row = np.zeros(V, dtype=np.float32)
    for word, w in weights.items():
        row[ids(word)[0]] = w
    return row


def test_a_route_enters_another_flow_and_its_summary_builder() -> None:
    def builder(state: Any) -> str:
        return f" booked {state.answers['size']}/{state.answers['colour']}"

    colour = Question("colour", " colour? ", Choices(["red", "blue"])).then(Summary())
    booking = Flow(colour, name="booking", summary_builder=builder)
    size = size_question().then(booking)
    main = Flow(size, name="main", summary_builder=lambda s: " main summary")
    r = go(flow_mod([main, booking]), prefer("large", "blue"))
    assert r.text == " size? large colour? blue booked large/blue" and r.finish_reason == "stop"
    solo = Flow(size_question().then(Summary()), name="solo", summary_builder=lambda s: " sum")
    assert go(flow_mod(solo), prefer("small")).text == " size? small sum"


def test_summary_without_text_needs_a_builder() -> None:
    r = go(flow_mod(Flow(size_question().then(Summary()), name="plain")), prefer("small"))
    assert r.finish_reason == "error" and "summary_builder on flow 'plain'" in (r.error or "")


def test_engine_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="non-empty"):
        FlowEngine([])
    with pytest.raises(ValueError, match="distinct"):
        FlowEngine([Flow(None), Flow(None)])
    with pytest.raises(TypeError, match="callable"):
        Callback(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="summary_builder"):
        Flow(None, summary_builder=" done")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name"):
        Flow(None, name="")
    with pytest.raises(ValueError, match="max_transitions"):
        Flow(None, max_transitions=0)


def test_question_refresh_responses() -> None:
    q = size_question().refresh_responses(["tiny", "huge"])
    q.then(Output("{size}"))
    assert go(flow_mod(Flow(q)), prefer("huge", "large")).text == "huge"
