# SPDX-License-Identifier: Apache-2.0
"""@mod, class-based Mod lifecycle, per-request state and the conversation helpers."""

from __future__ import annotations

from typing import Any

import pytest

from quote.sdk import (
    ActionBuilder,
    Added,
    Conversation,
    Event,
    Mod,
    ModDefinition,
    Prefilled,
    RequestInfo,
    as_definition,
    get_conversation,
    get_request,
    mod,
    mod_log,
)
from quote.sdk.testing import ScriptedModel, char_tokenizer, run_mod

pytestmark = pytest.mark.unit

TOK = char_tokenizer("abcdefghij ")


def test_mod_decorator_bare_and_options() -> None:
    @mod
    def plain(event: Event, actions: ActionBuilder, tokenizer: Any) -> None:
        return None

    @mod(name="named", hold_back=3)
    def other(event: Event, actions: ActionBuilder, tokenizer: Any) -> None:
        return None

    assert isinstance(plain, ModDefinition) and plain.name == "plain"
    assert other.name == "named" and other.hold_back == 3
    assert plain.instantiate() is not plain.instantiate()
    with pytest.raises(TypeError, match="event, actions, tokenizer"):
        mod(lambda event, actions: None)


def test_handler_called_once_on_type_error() -> None:
    """Regression: @mod re-called the handler when it raised TypeError."""
    calls: list[int] = []

    @mod
    def broken(event: Event, actions: ActionBuilder, tokenizer: Any) -> None:
        calls.append(1)
        raise TypeError("inside the handler")

    with pytest.raises(TypeError, match="inside the handler"):
        broken(Prefilled("r", 0, 4, (1,)), ActionBuilder(Prefilled("r", 0, 4, (1,))), TOK)
    assert len(calls) == 1
    result = run_mod(broken, TOK, prompt="ab")
    assert result.finish_reason == "error" and "broken" in (result.error or "")
    assert len(calls) == 2


class Recorder(Mod):
    """Keeps per-request state on the instance."""

    log: list[str] = []  # class-level on purpose: lifecycle order across requests

    def __init__(self) -> None:
        self.seen: list[int] = []

    def on_start(self, request: RequestInfo) -> None:
        Recorder.log.append(f"start {request.request_id}")

    def handle(self, event: Event, actions: ActionBuilder, tokenizer: Any) -> None:
        if isinstance(event, Added):
            self.seen.extend(event.tokens)
            mod_log("seen %d", len(self.seen))
            assert get_request().request_id == event.request_id
        return None

    def on_end(self, request: RequestInfo) -> None:
        Recorder.log.append(f"end {request.request_id} {len(self.seen)}")


def test_class_mod_lifecycle_and_isolation() -> None:
    """Regression: a per-instance list was shared across instances."""
    Recorder.log = []
    definition = as_definition(Recorder)
    a, b = definition.instantiate(), definition.instantiate()
    assert isinstance(a, Recorder) and a.seen is not b.seen
    model = ScriptedModel.preferring(len(TOK), [TOK.encode("a")[0]])
    r1 = run_mod(definition, TOK, model, prompt="ab", max_tokens=3, request_id="r1")
    r2 = run_mod(definition, TOK, model, prompt="ab", max_tokens=5, request_id="r2")
    assert r1.finish_reason == r2.finish_reason == "length"
    assert Recorder.log == ["start r1", "end r1 3", "start r2", "end r2 5"]
    assert r2.logs[-1] == "seen 5"


def test_on_end_runs_after_failure() -> None:
    ended: list[str] = []

    class Fails(Mod):
        def handle(self, event: Event, actions: ActionBuilder, tokenizer: Any) -> None:
            raise RuntimeError("nope")

        def on_end(self, request: RequestInfo) -> None:
            ended.append(request.request_id)

    result = run_mod(Fails, TOK, prompt="a")
    assert result.finish_reason == "error" and "Fails" in (result.error or "")
    assert ended == ["req-0"]


def test_as_definition_rejects_non_mods() -> None:
    with pytest.raises(TypeError):
        as_definition(42)
    assert as_definition(Recorder, name="x").name == "x"


def test_tool_call_pairs_and_schema() -> None:
    conv = Conversation(
        messages=[
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "a", "function": {"name": "f"}},
                    {"id": "b", "function": {"name": "g"}},
                ],
            },
            {"role": "tool", "tool_call_id": "b", "content": "B"},
            {"role": "tool", "tool_call_id": "a", "content": "A"},
            {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "h"}}]},
        ],
        response_format={"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},
    )
    pairs = conv.tool_call_pairs()
    assert [(c["id"], r["content"] if r else None) for c, r in pairs] == [
        ("a", "A"),
        ("b", "B"),
        ("c", None),
    ]
    assert conv.json_schema() == {"type": "object"}
    assert Conversation().tool_call_pairs() == [] and Conversation().json_schema() is None


def test_conversation_visible_only_inside_its_request() -> None:
    seen: list[int] = []

    @mod
    def peek(event: Event, actions: ActionBuilder, tokenizer: Any) -> None:
        seen.append(len(get_conversation().messages))
        return None

    conv = Conversation(messages=[{"role": "user", "content": "x"}])
    run_mod(peek, TOK, prompt="a", max_tokens=1, conversation=conv)
    run_mod(peek, TOK, prompt="a", max_tokens=1)
    assert seen[0] == 1 and seen[-1] == 0
    assert get_conversation().messages == []
    with pytest.raises(LookupError):
        get_request()
