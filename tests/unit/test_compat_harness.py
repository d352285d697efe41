# SPDX-License-Identifier: Apache-2.0
"""Original-style mods (``quote_mod_sdk``) through the offline harness: one per event x action.

Each mod in ``tests/legacy_mods.py`` is shaped like the original SDK's own test
mods; here each runs a whole request on a scripted model and must produce the
completion, tool calls or error the original mod was written to produce.
"""

from __future__ import annotations

import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest

from quote.mods.check import check_bundle
from quote.sdk import Mod, ModDefinition, as_definition
from quote.sdk.compat import LegacyModDefinition, QuoteModSDKDeprecationWarning
from quote.sdk.testing import RunResult, ScriptedModel, char_tokenizer, run_mod

with warnings.catch_warnings():
    warnings.simplefilter("ignore", QuoteModSDKDeprecationWarning)
    import legacy_mods as L

pytestmark = pytest.mark.unit

TOK = char_tokenizer()
MODEL_TEXT = "abcdefghijklmnop"


def _run(definition: Any, prompt: str = "hi", text: str = MODEL_TEXT, **kw: Any) -> RunResult:
    # Original-style mods keep module-level state keyed by request id: each run gets a fresh id.
    rid = f"{uuid.uuid4().hex}-req"
    model = ScriptedModel.text(TOK, text)
    return run_mod(definition, TOK, model, prompt=prompt, max_tokens=24, request_id=rid, **kw)


# (mod, prompt, model text, finish reason, completion text)
TEXT_CASES = [
    ("prefilled_noop", "hi", MODEL_TEXT, "stop", MODEL_TEXT),
    ("prefilled_adjust_prefill", "Say hello", MODEL_TEXT, "stop", MODEL_TEXT),
    ("prefilled_force_output", "an emergency", MODEL_TEXT, "stop", "EMERGENCY PROTOCOL ACTIVATED."),
    ("forward_pass_noop", "hi", MODEL_TEXT, "stop", MODEL_TEXT),
    ("forward_pass_force_tokens", "hi", MODEL_TEXT, "stop", " [INJECTED]lmnop"),
    ("forward_pass_backtrack", "hi", MODEL_TEXT, "stop", "abc [BACKTRACKED]"),
    ("forward_pass_force_output", "hi", MODEL_TEXT, "stop", " [END]"),
    ("added_noop", "hi", MODEL_TEXT, "stop", MODEL_TEXT),
    ("added_force_tokens", "hi", "oh hello there", "stop", "oh hello world"),
    ("added_backtrack", "hi", "a bad phrase!", "stop", "a good phrase"),
    ("added_force_output", "hi", "a stop word", "stop", " [STOPPED]"),
    ("sampled_noop", "hi", MODEL_TEXT, "stop", MODEL_TEXT),
    ("sampled_force_tokens", "hi", MODEL_TEXT, "stop", " [OBSERVED]lmnop"),
    ("sampled_backtrack", "hi", MODEL_TEXT, "stop", "a [RESAMPLED]nop"),
    ("sampled_force_output", "hi", MODEL_TEXT, "stop", " [SAMPLED_END]"),
]


@pytest.mark.parametrize(("name", "prompt", "text", "finish", "expected"), TEXT_CASES)
def test_original_mod_produces_its_output(
    name: str, prompt: str, text: str, finish: str, expected: str
) -> None:
    result = _run(getattr(L, name), prompt, text)
    assert result.error is None
    assert (result.finish_reason, result.text) == (finish, expected)


def test_adjust_prefill_replaced_the_prompt() -> None:
    result = _run(L.prefilled_adjust_prefill, "Say hello")
    assert TOK.decode(result.prompt_tokens) == "Say goodbye"
    untouched = _run(L.prefilled_adjust_prefill, "Say hi")
    assert TOK.decode(untouched.prompt_tokens) == "Say hi"


def test_adjust_logits_edits_the_original_2d_copy() -> None:
    """The mod bans the model's three best tokens each step with ``logits[0, id] = -inf``."""
    row = [0.0] * len(TOK)
    best = TOK.encode("abc")
    for rank, token in enumerate(best):
        row[token] = 30.0 - rank
    row[TOK.encode("z")[0]] = 20.0
    model = ScriptedModel(lambda _tokens, _n: row)
    rid = f"{uuid.uuid4().hex}-req"
    result = run_mod(L.forward_pass_adjust_logits, TOK, model, max_tokens=3, request_id=rid)
    assert result.text == "zzz"
    assert result.finish_reason == "length"


@pytest.mark.parametrize(
    ("name", "prompt", "text", "call"),
    [
        ("prefilled_tool_calls", "weather today?", MODEL_TEXT, ("get_weather", "New York")),
        ("forward_pass_tool_calls", "hi", MODEL_TEXT, ("calculator", "add")),
        ("added_tool_calls", "hi", "I search for it", ("search", "test query")),
        ("sampled_tool_calls", "hi", MODEL_TEXT, ("query_database", "users")),
    ],
)
def test_original_tool_calls_end_the_request(
    name: str, prompt: str, text: str, call: tuple[str, str]
) -> None:
    result = _run(getattr(L, name), prompt, text)
    assert result.finish_reason == "tool_calls"
    [tool_call] = result.tool_calls
    assert tool_call.name == call[0]
    assert call[1] in str(tool_call.arguments)
    assert tool_call.id is not None and tool_call.id.startswith("call_")


def test_emit_error_fails_the_request_with_err_str() -> None:
    result = _run(L.prefilled_emit_error)
    assert result.finish_reason == "error"
    assert result.error is not None and "refused: prompt blocked" in result.error


def test_two_argument_handler_form() -> None:
    result = _run(L.two_argument_handler)
    assert result.completion_tokens[:2] == [40, 41]
    assert result.text[2:] == MODEL_TEXT[2:]


def test_bare_event_tokenizer_callable_is_adapted_by_the_loader() -> None:
    with pytest.warns(QuoteModSDKDeprecationWarning, match="bare_callable"):
        definition = as_definition(L.bare_callable)
    assert type(definition) is ModDefinition  # the only class the registry's check accepts
    assert _run(definition).text == " [BARE]" + MODEL_TEXT[len(" [BARE]") :]


def test_state_is_kept_per_request_id_like_the_original() -> None:
    first, second = _run(L.forward_pass_force_tokens), _run(L.forward_pass_force_tokens)
    assert first.text == second.text == " [INJECTED]lmnop"


def test_a_garbage_return_fails_only_the_request() -> None:
    from quote_mod_sdk import mod

    with pytest.warns(QuoteModSDKDeprecationWarning):

        @mod
        def garbage(event, actions, tokenizer):
            return "not an action"

    result = _run(garbage)
    assert result.finish_reason == "error"
    assert result.error is not None and "str, not an action" in result.error


def test_deprecation_warning_once_per_mod_not_per_call() -> None:
    from quote_mod_sdk import mod

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        @mod
        def counted(event, actions, tokenizer):
            return actions.noop()

        for _ in range(3):
            _run(counted)
    ours = [w for w in caught if issubclass(w.category, QuoteModSDKDeprecationWarning)]
    assert len(ours) == 1
    assert "'counted'" in str(ours[0].message) and "migrating.md" in str(ours[0].message)
    assert ours[0].filename == __file__  # points at the decorated mod, not the SDK


def test_quote_handlers_are_untouched() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", QuoteModSDKDeprecationWarning)
        definition = as_definition(lambda event, actions, tokenizer: None)

        class Plain(Mod):
            pass

        assert type(as_definition(Plain)) is ModDefinition
    assert type(definition) is ModDefinition


def test_illegal_action_fails_the_request_naming_mod_and_event() -> None:
    from quote_mod_sdk import Prefilled, mod

    with pytest.warns(QuoteModSDKDeprecationWarning):

        @mod(hold_back=64)
        def early(event, actions, tokenizer):
            if isinstance(event, Prefilled):
                return actions.backtrack(steps=1)
            return None

    assert early.hold_back == 64
    result = _run(early)
    assert result.finish_reason == "error"
    assert result.error is not None
    assert "mod 'early' raised at Prefilled" in result.error
    assert "Action 'backtrack' not permitted for event type Prefilled" in result.error


def test_loaders_get_the_exact_definition_class() -> None:
    assert isinstance(L.prefilled_noop, LegacyModDefinition)
    loaded = as_definition(L.prefilled_noop, name="prefilled_noop")
    assert type(loaded) is ModDefinition and loaded.name == "prefilled_noop"
    assert _run(loaded).text == MODEL_TEXT


@pytest.mark.parametrize(
    "source",
    [
        "from quote_mod_sdk import mod\n@mod\ndef m(event, actions, tokenizer):\n"
        "    return actions.noop()\n",
        "from quote_mod_sdk import mod\n@mod\ndef m(event, actions):\n    return actions.noop()\n",
        "from quote_mod_sdk import Noop\ndef m(event, tokenizer):\n    return Noop()\n",
    ],
    ids=["three-arguments", "two-arguments", "bare"],
)
def test_registration_check_accepts_original_sources(tmp_path: Path, source: str) -> None:
    """The check process that ``POST /v1/mods`` runs accepts mods registered by function name."""
    (tmp_path / "main.py").write_text(source)
    verdict = check_bundle(tmp_path, "main:m", "m")
    assert verdict["ok"] is True and verdict["type"] == "ModDefinition"
