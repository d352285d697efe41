# SPDX-License-Identifier: Apache-2.0
"""The original engine's documented mod examples (``tests/legacy_documented.py``) run offline.

Original-style mods keep state in module-level dicts keyed by request id, so each
run uses a fresh id. ``docs/guides/migrating.md`` lists these results.
"""

from __future__ import annotations

import uuid
import warnings
from typing import Any

import pytest

from quote.sdk.compat import QuoteModSDKDeprecationWarning
from quote.sdk.testing import RunResult, ScriptedModel, char_tokenizer, run_mod

with warnings.catch_warnings():
    warnings.simplefilter("ignore", QuoteModSDKDeprecationWarning)  # one per mod: tested elsewhere
    from legacy_documented import (
        doublecheck,
        forward_injection,
        inject_at_position,
        inspect_fields,
        mask_token_1d_index,
        mask_token_2d,
        replace_phrase,
        states,
        stop_at_answer,
    )

pytestmark = pytest.mark.unit

TOK = char_tokenizer()


def _run(
    definition: Any, prompt: str = "hi", text: str = "abcdefghijklmnop", n: int = 24
) -> RunResult:
    model = ScriptedModel.text(TOK, text)
    rid = f"{uuid.uuid4().hex}-req"
    return run_mod(definition, TOK, model, prompt=prompt, max_tokens=n, request_id=rid)


def test_readme_forward_injection() -> None:
    assert _run(forward_injection, n=6).text == "[F][F]"


def test_replace_phrase_edits_the_prompt_once() -> None:
    result = _run(replace_phrase, prompt="Say hi.")
    assert TOK.decode(result.prompt_tokens) == "Say bye."


def test_logit_edits_on_the_2d_copy() -> None:
    assert _run(mask_token_2d, n=3).text == "yyy"


def test_printed_1d_index_fails_as_it_would_have_in_the_original() -> None:
    result = _run(mask_token_1d_index)
    assert result.finish_reason == "error"
    assert result.error is not None and "IndexError" in result.error


def test_inject_at_position() -> None:
    assert _run(inject_at_position, n=12).text == "abcd [!] jkl"


def test_doublecheck_backtracks_and_reinserts() -> None:
    result = _run(doublecheck, text="so the answer is 4", n=40)
    assert result.text.startswith("so the answer is (checked)")


def test_stop_at_answer_keeps_only_the_answer() -> None:
    result = _run(stop_at_answer, text="think. FINAL ANSWER: 42.", n=40)
    assert (result.finish_reason, result.text) == ("stop", "42.")


def test_fields_the_debugging_tips_read() -> None:
    rid = f"{uuid.uuid4().hex}-req"
    run_mod(inspect_fields, TOK, prompt="hey", max_tokens=4, request_id=rid)
    assert states[rid].text == repr((4, 3, 3)) and states[rid].count == len(TOK)
