# SPDX-License-Identifier: Apache-2.0
"""The ``JsonSchema`` strategy offline (scripted models, the tiny tokenizer, no MAX).

Every output is checked with ``jsonschema`` (format checks on), not with Quote's own code.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from json_cases import INVALID, SCHEMAS
from json_oracle import check_json
from sdk_tokenizer import bpe_tokenizer

from quote.sdk import ForceTokens, ForwardPass
from quote.sdk.strategies import GrammarError, JsonSchema, StrategyRunner, constrain
from quote.sdk.testing import ScriptedModel, run_mod

pytestmark = pytest.mark.unit

TOK = bpe_tokenizer()


def generate(strategy: JsonSchema, seed: int, max_tokens: int = 160) -> Any:
    return run_mod(
        constrain(strategy),
        TOK,
        ScriptedModel.random(len(TOK), seed),
        prompt="Reply with JSON:",
        max_tokens=max_tokens,
        temperature=1.0,
        seed=seed,
    )


@pytest.mark.parametrize(("name", "schema"), SCHEMAS, ids=[n for n, _ in SCHEMAS])
def test_outputs_are_valid(name: str, schema: Any) -> None:
    strategy = JsonSchema(schema)
    for seed in range(3):
        r = generate(strategy, seed)
        assert r.error is None and r.finish_reason == "stop", (r.error, r.text)
        value = check_json(r.text, schema)
        assert r.completion_tokens[-1] == TOK.eos_token_id
        runner = StrategyRunner(strategy, TOK)
        runner.added(r.completion_tokens[:-1])
        assert runner.state.complete and runner.value() == value


def test_recursive_schema_follows_the_model() -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": "#"}},
        },
        "required": ["name", "children"],
        "additionalProperties": False,
    }
    text = '{"name":"a","children":[{"name":"b","children":[]},{"name":"c","children":[]}]}'
    model = ScriptedModel.text(TOK, text)
    r = run_mod(constrain(JsonSchema(schema)), TOK, model, max_tokens=80)
    assert r.raise_for_error().text == text and r.finish_reason == "stop"
    check_json(r.text, schema)


def test_required_keys_are_forced_in_one_chunk() -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 4}},
        "required": ["name"],
        "additionalProperties": False,
    }
    r = generate(JsonSchema(schema), 0)
    first = next(e.action for e in r.trace if isinstance(e.event, ForwardPass))
    assert isinstance(first, ForceTokens) and len(first.tokens) > 1
    assert '{"name":"'.startswith(TOK.decode(list(first.tokens)))
    check_json(r.raise_for_error().text, schema)


@pytest.mark.parametrize(("schema", "word"), INVALID, ids=[w for _, w in INVALID])
def test_invalid_schemas_are_refused_naming_the_problem(schema: Any, word: str) -> None:
    with pytest.raises(GrammarError) as info:
        JsonSchema(schema)
    message = str(info.value)
    assert message.startswith("JsonSchema(") and word in message


def test_schema_as_json_text_and_equality() -> None:
    schema = {"type": "boolean"}
    a, b = JsonSchema(json.dumps(schema)), JsonSchema(schema)
    assert a == b and hash(a) == hash(b) and a.schema == schema
    r = generate(a, 3)
    assert r.raise_for_error().text in ("true", "false")
    with pytest.raises(GrammarError, match="not valid JSON"):
        JsonSchema("{'type': 'boolean'}")
    with pytest.raises(GrammarError, match="object or a boolean"):
        JsonSchema(42)  # type: ignore[arg-type]


def test_value_is_none_until_the_json_is_whole() -> None:
    runner = StrategyRunner(JsonSchema({"type": "array", "items": {"type": "integer"}}), TOK)
    runner.added(TOK.encode("[1,", add_special_tokens=False))
    assert runner.value() is None and not runner.state.complete
    runner.added(TOK.encode("2]", add_special_tokens=False))
    assert runner.value() == [1, 2] and runner.done


def test_json_object_accepts_any_object() -> None:
    text = '{"a":[1,{"b":null}],"c":"d"}'
    r = run_mod(constrain(JsonSchema({"type": "object"})), TOK, ScriptedModel.text(TOK, text))
    assert json.loads(r.raise_for_error().text) == json.loads(text)
