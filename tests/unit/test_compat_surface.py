# SPDX-License-Identifier: Apache-2.0
"""The ``quote_mod_sdk`` surface: names, event fields, builder arguments, action fields, errors.

Mods are also called here the way the original SDK's own unit tests called
them: ``mod(event, tokenizer)`` with events built from the original's fields.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import quote.sdk as q
import quote_mod_sdk as sdk
from quote.sdk.compat import QuoteModSDKDeprecationWarning, legacy_event, to_quote_action
from quote.sdk.testing import char_tokenizer

pytestmark = pytest.mark.unit

TOK = char_tokenizer()
VOCAB = len(TOK)


class FakeTensor:
    """Stands in for the original's logits tensor: a ``to_numpy()`` of shape ``(1, vocab)``."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def to_numpy(self) -> np.ndarray:
        return self.array


def _quiet_mod(fn: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuoteModSDKDeprecationWarning)
        return sdk.mod(fn)


def test_original_names_resolve() -> None:
    for name in ["ActionBuilder", "InvalidActionError", "for_event", "ModEvent", "ModAction",
                 "ModCallable", "create_mod", "mod", "validate_action", "serialize_mod",
                 "tokenize", "get_conversation", "tool_call_pairs", "get_schemas"]:  # fmt: skip
        assert hasattr(sdk, name), name
    assert sdk.InvalidActionError is q.InvalidActionError
    assert sdk.Noop is q.Noop and sdk.ForceTokens is q.ForceTokens and sdk.Backtrack is q.Backtrack
    from quote_mod_sdk.actions import for_event
    from quote_mod_sdk.mod import create_mod
    from quote_mod_sdk.serialization import serialize_mod
    from quote_mod_sdk.tokenizer import tokenize

    assert callable(sdk.mod) and not isinstance(sdk.mod, type(sdk))  # not shadowed by the module
    assert (for_event, create_mod, serialize_mod, tokenize) == (
        sdk.for_event, sdk.create_mod, sdk.serialize_mod, sdk.tokenize,
    )  # fmt: skip


def test_events_built_the_original_way_carry_both_names() -> None:
    ctx = SimpleNamespace(tokens=[1, 2, 3, 4], _prompt_len=3, logprobs=[], max_tokens=9)
    pre = sdk.Prefilled(request_id="r", step=0, max_steps=9, context_info=ctx)
    assert pre.prompt_tokens == (1, 2, 3) and pre.context_info.tokens == [1, 2, 3]
    assert pre.context_info._prompt_len == pre.context_info.prompt_len == 3
    assert pre.context_info.max_tokens == 9 and pre.tokens_so_far_len == 3
    sampled = sdk.Sampled(request_id="r", step=1, sampled_token=7)
    added = sdk.Added(request_id="r", step=1, added_tokens=[7, 8], forced=False)
    assert (sampled.sampled_token, sampled.token) == (7, 7)
    assert (added.added_tokens, added.tokens, added.forced) == ([7, 8], (7, 8), False)
    for event, base in [(pre, q.Prefilled), (sampled, q.Sampled), (added, q.Added)]:
        assert isinstance(event, base)
    with pytest.raises(TypeError, match="sampled_token"):
        sdk.Sampled(request_id="r", step=1)


def test_forward_pass_logits_are_usable_as_the_original_tensor() -> None:
    row = np.arange(VOCAB, dtype=np.float32)
    event = legacy_event(q.ForwardPass("r", 0, row))
    assert isinstance(event, sdk.ForwardPass) and isinstance(event, q.ForwardPass)
    copy = event.logits.to_numpy()
    assert copy.shape == (1, VOCAB) and copy.flags.writeable
    copy[0, 5] = -np.inf  # the original's in-place edit of its own copy
    assert row[5] == 5.0 and event.logits[5] == 5.0
    assert event.argmax() == VOCAB - 1  # Quote's helpers still work
    from_tensor = sdk.ForwardPass("r", 0, FakeTensor(row.reshape(1, -1)))
    assert from_tensor.logits.shape == (VOCAB,) and from_tensor.logits[3] == 3.0


def test_builder_arguments_and_action_fields() -> None:
    fp = sdk.ForwardPass("r", 0, np.zeros(VOCAB, dtype=np.float32))
    actions = sdk.for_event(fp)
    back = actions.backtrack(steps=2, tokens=[4])
    assert (back.n, back.tokens) == (2, (4,)) and actions.backtrack(n=1).n == 1
    edited = np.zeros((1, VOCAB), dtype=np.float32)
    edited[0, 3] = 9.0
    adj = actions.adjust_logits(FakeTensor(edited), token_temp=0.5)
    assert adj.token_temp == adj.temperature == 0.5 and adj.logits.shape == (VOCAB,)
    assert type(to_quote_action(adj)) is q.AdjustedLogits
    assert actions.adjust_logits(token_temp=0.0).logits is None
    sparse = actions.adjust_logits(ban=[1], token_temp=1.0)
    assert type(sparse) is q.AdjustedLogits and sparse.ban == (1,)
    assert actions.adjust_logits(temperature=0.25).token_temp == 0.25
    with pytest.raises(sdk.InvalidActionError, match="not both"):
        actions.adjust_logits(token_temp=1.0, temperature=1.0)
    err = actions.emit_error("boom")
    assert err.err_str == err.message == "boom" and type(to_quote_action(err)) is q.EmitError
    pre = sdk.for_event(sdk.Prefilled("r", 0, 5, (1, 2)))
    assert pre.adjust_prefill([3], max_steps=0).max_steps is None  # the original's "unchanged"
    assert pre.adjust_prefill([3], max_steps=4).max_steps == 4
    assert isinstance(actions.noop(), q.Noop)


def test_tool_call_payload_shapes() -> None:
    openai = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    one = sdk.ToolCalls(openai)
    assert one.tool_calls == [openai]
    assert one.calls == (q.ToolCall("f", '{"a": 1}', "c1"),)
    listed = sdk.ToolCalls([openai, {"name": "g", "arguments": {"b": 2}}])
    assert [c.name for c in listed.calls] == ["f", "g"]
    assert json.loads(listed.tool_calls[1]["function"]["arguments"]) == {"b": 2}
    wrapped = sdk.ToolCalls({"tool_calls": [openai]})
    rebuilt = to_quote_action(wrapped)
    assert type(rebuilt) is q.ToolCalls and rebuilt.calls == one.calls


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({"type": "function", "function": {"arguments": "{}"}}, "needs a function name"),
        ({"function": {"name": "f", "arguments": "{nope"}}, "not valid JSON"),
        ({"function": {"name": "f", "arguments": "[1]"}}, "must be a JSON object"),
        ([], "at least one call"),
        ("get_weather", "not a tool call payload"),
        ([42], "not a tool call"),
    ],
)
def test_bad_tool_call_payloads_are_clear_errors(payload: Any, needle: str) -> None:
    with pytest.raises(sdk.InvalidActionError, match=needle):
        sdk.ToolCalls(payload)


def test_illegal_actions_name_the_event() -> None:
    pre = sdk.for_event(sdk.Prefilled("r", 0, 5, (1,)))
    with pytest.raises(sdk.InvalidActionError, match="'backtrack' not permitted for event type"):
        pre.backtrack(steps=1)
    with pytest.raises(sdk.InvalidActionError, match="adjust_logits"):
        pre.adjust_logits(token_temp=1.0)
    sampled = sdk.for_event(sdk.Sampled("r", 0, 1))
    with pytest.raises(sdk.InvalidActionError, match="Prefilled"):
        sampled.adjust_prefill([1])
    with pytest.raises(sdk.InvalidActionError, match="shape"):
        sdk.for_event(sdk.ForwardPass("r", 0, np.zeros(4, np.float32))).adjust_logits(
            np.zeros((2, 4))
        )


def test_mods_called_the_original_way() -> None:
    """``mod(event, tokenizer)`` returns the validated action, as the original's wrapper did."""

    @_quiet_mod
    def by_event(event, actions, tokenizer):
        if isinstance(event, sdk.Sampled):
            return actions.backtrack(steps=1, tokens=tokenizer.encode("x"))
        if isinstance(event, sdk.Added):
            return actions.tool_calls({"function": {"name": "t", "arguments": "{}"}})
        return None

    back = by_event(sdk.Sampled(request_id="r", step=1, sampled_token=3), TOK)
    assert isinstance(back, sdk.Backtrack) and back.n == 1 and back.tokens == (TOK.encode("x")[0],)
    tools = by_event(sdk.Added(request_id="r", step=1, added_tokens=[3]), TOK)
    assert tools.tool_calls[0]["function"]["name"] == "t"
    assert isinstance(by_event(q.Prefilled("r", 0, 4, (1,)), TOK), q.Noop)
    assert type(by_event(q.Sampled("r", 1, 3), None, TOK)) is q.Backtrack  # Quote's call form
    with pytest.raises(sdk.InvalidActionError, match="not legal at Prefilled"):
        sdk.validate_action(sdk.Prefilled("r", 0, 4, (1,)), q.Backtrack(1))


def test_handler_arity_is_checked_once() -> None:
    with pytest.raises(TypeError, match=r"\(event, actions, tokenizer\) or \(event, actions\)"):
        sdk.mod(lambda event: None)
    with pytest.warns(QuoteModSDKDeprecationWarning, match="create_mod"):
        made = sdk.create_mod(lambda event, actions, tokenizer: actions.noop())
    assert isinstance(made, q.ModDefinition)


def test_helpers(tmp_path: Any) -> None:
    assert sdk.tokenize("ab", TOK) == TOK.encode("ab")
    with pytest.raises(q.QuoteSDKError, match="tokenizer"):
        sdk.tokenize("ab", None)
    payload = sdk.serialize_mod(sdk.tokenize, name="n", description="d")
    assert set(payload) == {"language", "module", "entrypoint", "source", "name", "description"}
    assert payload["language"] == "python" and payload["entrypoint"] == "tokenize"
    assert "def tokenize" in payload["source"]
    assert sdk.get_conversation() == [] and sdk.tool_call_pairs() == [] and sdk.get_schemas() == []


def test_unported_modules_fail_with_a_pointer() -> None:
    for name in ["quote_mod_sdk.flow", "quote_mod_sdk.self_prompt", "quote_mod_sdk.strategies"]:
        with pytest.raises(ImportError, match="migrating.md"):
            __import__(name)


def test_imports_without_max_and_ships_no_generic_packages() -> None:
    code = (
        "import sys\nsys.modules['max'] = None\n"
        "import quote_mod_sdk, quote_mod_sdk.mod, quote_mod_sdk.actions\n"
        "import quote_mod_sdk.tokenizer, quote_mod_sdk.serialization\n"
        "from setuptools import find_packages\n"
        "tops = {p.split('.')[0] for p in find_packages(include=['quote*', 'quote_mod_sdk*'])}\n"
        "print(sorted(tops))\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=root
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['quote', 'quote_mod_sdk']"
