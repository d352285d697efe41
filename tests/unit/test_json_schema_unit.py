# SPDX-License-Identifier: Apache-2.0
"""The JSON-schema example's compiler and mod, offline (scripted model, no MAX)."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from examples.json_schema.compiler import (
    Alt,
    Leaf,
    Obj,
    UnsupportedSchemaError,
    compile_schema,
    int_range_regex,
)
from examples.json_schema.mod import json_schema
from examples.json_schema.suite import SCHEMAS, UNSUPPORTED
from quote.sdk import Conversation
from quote.sdk.testing import ScriptedModel, run_mod
from quote.tiny import load_tokenizer


@pytest.fixture(scope="module")
def tok() -> Any:
    return load_tokenizer()


def generate(tok: Any, schema: Any, seed: int = 0, max_tokens: int = 160) -> Any:
    return run_mod(
        json_schema,
        tok,
        ScriptedModel.random(len(tok), seed),
        prompt="Hi",
        max_tokens=max_tokens,
        temperature=1.0,
        seed=seed,
        mod_args={"schema": schema},
    )


@given(st.integers(-5000, 5000), st.integers(0, 3000), st.integers(-9000, 9000))
@settings(max_examples=200, deadline=None)
def test_int_range_regex_is_exact(lo: int, width: int, n: int) -> None:
    hi = lo + width
    pattern = re.compile(int_range_regex(lo, hi) or "(?!)")
    assert (pattern.fullmatch(str(n)) is not None) == (lo <= n <= hi)
    assert pattern.fullmatch(f"0{abs(n)}") is None or n == 0 and lo <= 0 <= hi


@pytest.mark.parametrize(("group", "name", "schema"), SCHEMAS, ids=[n for _, n, _ in SCHEMAS])
def test_suite_offline_outputs_are_valid(tok: Any, group: str, name: str, schema: Any) -> None:
    for seed in range(3):
        r = generate(tok, schema, seed)
        assert r.error is None and r.finish_reason == "stop", r.error
        jsonschema.validate(json.loads(r.text), schema)


@pytest.mark.parametrize(("feature", "schema"), UNSUPPORTED, ids=[f for f, _ in UNSUPPORTED])
def test_unsupported_features_are_named(tok: Any, feature: str, schema: Any) -> None:
    with pytest.raises(UnsupportedSchemaError) as info:
        compile_schema(schema)
    assert info.value.feature == feature
    r = generate(tok, schema)
    assert r.finish_reason == "error" and feature in (r.error or "") and r.text == ""


def test_schema_from_response_format(tok: Any) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    conv = Conversation(response_format={"type": "json_schema", "json_schema": {"schema": schema}})
    r = run_mod(json_schema, tok, ScriptedModel.random(len(tok)), prompt="x", conversation=conv)
    assert json.loads(r.text)["ok"] in (True, False)
    assert run_mod(json_schema, tok, prompt="x").finish_reason == "error"  # no schema at all


def test_compiled_shapes() -> None:
    c = compile_schema({"anyOf": [{"type": "integer"}, {"type": "null"}]})
    assert isinstance(c.root, Leaf)  # scalar alternatives merge into one automaton
    c = compile_schema({"anyOf": [{"type": "object"}, {"type": "null"}]})
    assert isinstance(c.root, Alt)
    c = compile_schema(
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    )
    assert isinstance(c.root, Obj) and c.min_len(c.root) == len('{"a": ""}')


def test_oneof_disjointness() -> None:
    compile_schema({"oneOf": [{"const": 1}, {"const": 2}]})
    compile_schema({"oneOf": [{"type": "string"}, {"type": "array"}]})
    with pytest.raises(UnsupportedSchemaError):
        compile_schema({"oneOf": [{"type": "object"}, {"properties": {"a": {"type": "integer"}}}]})
    with pytest.raises(UnsupportedSchemaError):
        compile_schema({"oneOf": [{"const": 1}, {"const": 1.0}]})


@given(
    lo=st.one_of(st.none(), st.floats(-1e4, 1e4, allow_nan=False)),
    width=st.floats(0.001, 1e4, allow_nan=False),
    exclusive=st.booleans(),
    integer=st.booleans(),
    seed=st.integers(0, 1000),
)
@settings(max_examples=40, deadline=None)
def test_number_bounds_hold(
    tok: Any, lo: float | None, width: float, exclusive: bool, integer: bool, seed: int
) -> None:
    schema: dict[str, Any] = {"type": "integer" if integer else "number"}
    hi = (lo if lo is not None else 0.0) + width
    if lo is not None:
        schema["exclusiveMinimum" if exclusive else "minimum"] = lo
    schema["exclusiveMaximum" if exclusive else "maximum"] = hi
    try:
        compile_schema(schema)
    except UnsupportedSchemaError as exc:
        assert exc.feature == "unsatisfiable schema"  # e.g. no integer in a narrow range
        return
    r = generate(tok, schema, seed, max_tokens=40)
    assert r.error is None, r.error
    jsonschema.validate(json.loads(r.text), schema)


@pytest.mark.parametrize("budget", [8, 10, 14, 20, 40])
def test_budget_closes_the_document(tok: Any, budget: int) -> None:
    schema = next(s for _, n, s in SCHEMAS if n == "recursive_tree")
    for seed in range(3):
        r = generate(tok, schema, seed, max_tokens=budget)
        assert r.finish_reason == "stop" and len(r.completion_tokens) <= budget
        jsonschema.validate(json.loads(r.text), schema)
