# SPDX-License-Identifier: Apache-2.0
"""Flow engine: linear, branching, loops, tool routes, outputs, eviction and EOS checks."""

from __future__ import annotations

import gc
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from sdk_tokenizer import bpe_tokenizer

from quote.sdk import ActionBuilder, Event, mod
from quote.sdk.flow import (
    CallTool,
    Flow,
    FlowEngine,
    Message,
    Output,
    Question,
    Stop,
    Summary,
    flow_mod,
)
from quote.sdk.strategies import Chars, Choices
from quote.sdk.testing import ListTokenizer, RunResult, ScriptedModel, run_mod

pytestmark = pytest.mark.unit

TOK = bpe_tokenizer()
V = len(TOK)
EOS = TOK.eos_token_id


def first(text: str) -> int:
    return int(TOK.encode(text, add_special_tokens=False)[0])


def prefer(*words: str) -> ScriptedModel:
    return ScriptedModel.preferring(V, [first(w) for w in words] + [EOS])


def go(definition: Any, model: ScriptedModel, **kw: Any) -> RunResult:
    kw.setdefault("max_tokens", 80)
    return run_mod(definition, TOK, model, prompt="Order:", **kw)


def test_linear_flow_to_output() -> None:
    size = Question("size", " size? ", Choices(["small", "large"]))
    color = Question("color", " color? ", Choices(["red", "blue"]))
    size.then(color)
    color.then(Output("{size} {color}"))
    r = go(flow_mod(Flow(size)), prefer("large", "blue"))
    assert (r.text, r.finish_reason) == ("large blue", "stop")


def test_branching_message_and_summary() -> None:
    size = Question("size", "\nSize? ", Choices(["small", "large"]), completion="\n")
    color = Question("color", "Color? ", Choices(["red", "blue"]), erase="prompt")
    size.on("small", Output("tiny")).otherwise(Message("Large it is. ", then=color))
    color.then(Summary(" => {size}/{color}"))
    r = go(flow_mod(Flow(size)), prefer("large", "red"))
    assert r.text == "\nSize? large\nLarge it is. red => large/red"
    assert r.finish_reason == "stop" and r.completion_tokens[-1] == EOS
    r = go(flow_mod(Flow(size)), prefer("small"))
    assert r.text == "tiny"


def test_loop_asks_again_with_a_fresh_answer() -> None:
    """Regression: a re-entered question replayed its old answer."""
    history: list[str] = []
    again = Question("again", " more? ", Choices(["yes", "no"]))
    again.assign("last", lambda a: history.append(a) or a)
    again.on("yes", again).on("no", Output("{last} after {again}"))

    def model(seq: list[int], n_prompt: int) -> npt.NDArray[np.float32]:
        row = np.zeros(V, dtype=np.float32)
        asked = TOK.decode(seq).count("more?")
        row[first("yes") if asked < 3 else first("no")] = 5.0
        return row

    r = go(flow_mod(Flow(again)), ScriptedModel(model))
    assert history == ["yes", "yes", "no"]
    assert r.text == "no after no"


def test_tool_call_route_and_branch() -> None:
    city = Question("city", " city: ", Choices(["Paris", "London"]))
    city.assign("where", str.upper)
    city.branch(lambda answer, env: CallTool("weather", lambda e: {"city": e["where"]}))
    r = go(flow_mod(Flow(city)), prefer("London"))
    assert r.finish_reason == "tool_calls"
    assert r.tool_calls[0].name == "weather" and r.tool_calls[0].arguments == {"city": "LONDON"}


def test_auto_answer_and_stop() -> None:
    known = Question("known", " kind: ", Choices(["cat", "dog"]), auto=lambda env: "dog")
    known.then(Stop())
    r = go(flow_mod(Flow(known)), prefer("cat"))
    assert r.text == " kind: dog" and r.finish_reason == "stop"


def test_trigger_starts_mid_generation() -> None:
    q = Question("n", " n=", Chars("numeric", 2))
    q.then(Output("got {n}"))
    model = ScriptedModel.stream(V, list(TOK.encode("Hi? 7", add_special_tokens=False)), then=EOS)
    r = go(flow_mod(Flow(q, trigger="?")), model)
    assert r.text.startswith("got ") and r.finish_reason == "stop"


def test_state_is_evicted() -> None:
    """Regression: flow state was never evicted."""
    q = Question("x", " x? ", Choices(["a", "b"]))
    definition = flow_mod(Flow(q))  # the flow ends with None: the model continues freely
    engine = definition.engine  # type: ignore[attr-defined]
    for i in range(30):
        go(definition, prefer("a"), max_tokens=8, request_id=f"r{i}")
    assert len(engine) == 0
    # A function mod sharing one engine has no on_end: the RequestInfo finaliser evicts.
    shared = FlowEngine(Flow(q))

    @mod
    def fn(event: Event, actions: ActionBuilder, tokenizer: Any) -> Any:
        return shared.handle(event, actions, tokenizer)

    for i in range(30):
        go(fn, prefer("b"), max_tokens=8, request_id=f"f{i}")
    gc.collect()
    assert len(shared) == 0


def test_eos_routes_fail_clearly_without_eos() -> None:
    """Regression: a route needing EOS looped forever when the tokenizer had none."""
    tok = ListTokenizer(list("abcdefghijklmnopqrstuvwxyz ?!"), eos_token=None)
    q = Question("x", " x? ", Choices(["a", "b"]), end_token=None)
    q.then(Stop())
    r = run_mod(flow_mod(Flow(q)), tok, prompt="go", max_tokens=50)
    assert r.finish_reason == "error" and "EOS" in (r.error or "")
    q2 = Question("x", " x? ", Choices(["a", "b"]), end_token=None)
    q2.branch(lambda a, env: Summary("s"))
    r = run_mod(flow_mod(Flow(q2)), tok, prompt="go", max_tokens=50)
    assert r.finish_reason == "error" and "EOS" in (r.error or "")
    q3 = Question("x", " x? ", Choices(["a", "b"]), end_token=None).then(Output("{x}!"))
    r = run_mod(flow_mod(Flow(q3)), tok, prompt="go", max_tokens=50)
    assert r.text in ("a!", "b!")


def test_runaway_loop_is_stopped() -> None:
    q = Question("x", " x? ", Choices(["again"]), erase="all")
    q.then(q)
    r = go(flow_mod(Flow(q, max_transitions=5)), prefer("again"), max_tokens=500)
    assert r.finish_reason == "error" and "more than 5" in (r.error or "")
