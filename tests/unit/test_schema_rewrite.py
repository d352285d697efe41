# SPDX-License-Identifier: Apache-2.0
"""Sound schema rewrites (``quote.sdk.schema_rewrite``): what a grammar cannot check.

The oracle is ``jsonschema`` on the *original* schema: every value the rewritten schema
admits (random generations through llguidance, and a pool of hand-picked values) must be
valid against the schema the user sent.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest
from json_oracle import FORMATS, check_json
from sdk_tokenizer import bpe_tokenizer

from quote.sdk.grammar import GrammarError, GrammarSpec, Matcher, compile_grammar, llg_tokenizer
from quote.sdk.schema_rewrite import SAFE_INTEGER, prepare_schema
from quote.sdk.strategies import JsonSchema, constrain
from quote.sdk.testing import ScriptedModel, run_mod

pytestmark = pytest.mark.unit

TOK = bpe_tokenizer()
LLTOK = llg_tokenizer(TOK, [TOK.eos_token_id])

SHAPES = {"kind": {"enum": ["circle", "square"]}, "size": {"type": "integer"}}
CASES: dict[str, dict[str, Any]] = {
    "oneOf by type": {"oneOf": [{"type": "string", "maxLength": 5}, {"type": "null"}]},
    "oneOf by const": {"oneOf": [{"const": 1}, {"const": 2}, {"const": 3}]},
    "oneOf by discriminator": {
        "$defs": {
            "circle": {
                "type": "object",
                "properties": {"kind": {"const": "circle"}, "r": {"type": "integer"}},
                "required": ["kind", "r"],
                "additionalProperties": False,
            },
            "square": {
                "type": "object",
                "properties": {"kind": {"const": "square"}, "side": {"type": "integer"}},
                "required": ["kind", "side"],
                "additionalProperties": False,
            },
        },
        "oneOf": [{"$ref": "#/$defs/circle"}, {"$ref": "#/$defs/square"}],
    },
    "oneOf by discriminator, untyped": {  # numbers match every branch: only objects are disjoint
        "oneOf": [
            {"properties": {"kind": {"enum": ["solid"]}}, "required": ["kind"]},
            {"properties": {"kind": {"enum": ["striped"]}}, "required": ["kind"]},
        ]
    },
    "if then, untyped": {  # a number satisfies `if` vacuously, so it must satisfy `then`
        "properties": {"kind": {"enum": ["a", "b"]}},
        "if": {"properties": {"kind": {"const": "a"}}},
        "then": {"type": "object", "required": ["size"]},
    },
    "not type": {"not": {"type": "object"}, "anyOf": [{"type": "string", "maxLength": 4}]},
    "not anything": {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"not": {}}},
        "required": ["a"],
    },
    "uniqueItems": {
        "type": "array",
        "items": {"enum": ["x", "y"]},
        "uniqueItems": True,
    },
    "if then": {
        "type": "object",
        "properties": SHAPES,
        "required": ["kind"],
        "additionalProperties": False,
        "if": {"properties": {"kind": {"const": "circle"}}},
        "then": {"required": ["size"]},
    },
    "if then else": {
        "type": "object",
        "properties": {**SHAPES, "w": {"type": "integer"}},
        "required": ["kind"],
        "additionalProperties": False,
        "if": {"properties": {"kind": {"const": "circle"}}},
        "then": {"required": ["size"]},
        "else": {"required": ["w"]},
    },
    "dependentRequired": {
        "type": "object",
        "properties": {"card": {"type": "string", "maxLength": 4}, "zip": {"type": "string"}},
        "required": ["card"],
        "dependentRequired": {"card": ["zip"]},
        "additionalProperties": False,
    },
    "dependencies (optional property)": {
        "type": "object",
        "properties": {"card": {"type": "string", "maxLength": 4}, "zip": {"type": "string"}},
        "dependencies": {"card": ["zip"]},
        "additionalProperties": False,
    },
    "formats": {
        "type": "object",
        "properties": {
            "ref": {"type": "string", "format": "uri-reference", "maxLength": 12},
            "ptr": {"type": "string", "format": "json-pointer", "maxLength": 12},
            "path": {"type": "string", "format": "path", "maxLength": 8},
        },
        "required": ["ref", "ptr", "path"],
        "additionalProperties": False,
    },
    "numbers": {"type": "array", "items": {"type": "number"}, "maxItems": 4},
}


def _admits(schema: Any, value: Any) -> bool:
    return jsonschema.Draft202012Validator(schema, format_checker=FORMATS).is_valid(value)


@pytest.mark.parametrize("name", list(CASES))
def test_generations_are_valid_against_the_original_schema(name: str) -> None:
    schema = CASES[name]
    strategy = JsonSchema(schema)
    for seed in range(6):
        r = run_mod(
            constrain(strategy),
            TOK,
            ScriptedModel.random(len(TOK), seed),
            prompt="JSON:",
            max_tokens=120,
            temperature=1.0,
            seed=seed,
        )
        assert r.error is None, r.error
        if r.finish_reason == "stop":
            check_json(r.text, schema)  # the user's schema, not the rewritten one


POOL: list[Any] = [
    None, True, 0, 1, 2, 3, 1.5, -7, 1e300, 2**60, "", "abc", "toolong", [], ["x"], ["x", "x"],
    ["x", "y"], {}, {"a": 1}, {"a": 1, "b": 2}, {"kind": "circle"}, {"kind": "circle", "size": 2},
    {"kind": "square"}, {"kind": "square", "w": 1}, {"kind": "circle", "r": 1},
    {"kind": "square", "side": 2}, {"card": "1234"}, {"card": "1234", "zip": "9"}, {"zip": "9"},
    [1.5, 2e400], [1, 2], {"kind": "solid"}, {"kind": "a"}, {"kind": "a", "size": 1},
    {"kind": "b"},
]  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_rewrites_never_widen_a_schema(name: str) -> None:
    schema = CASES[name]
    rewritten = prepare_schema(schema)
    admitted = [v for v in POOL if _admits(rewritten, v)]
    assert all(_admits(schema, v) for v in admitted), [
        v for v in admitted if not _admits(schema, v)
    ]


def test_the_input_schema_is_not_changed() -> None:
    for schema in CASES.values():
        before = copy.deepcopy(schema)
        prepare_schema(schema, strict=True)
        assert schema == before


def _accepts(schema: Any, text: str, *, strict: bool = False) -> bool:
    matcher = Matcher(compile_grammar(GrammarSpec.json_schema(schema, strict=strict), LLTOK), LLTOK)
    ids = TOK.encode(text, add_special_tokens=False)
    return matcher.accepts(ids) == len(ids)


def test_unbounded_numbers_stay_within_the_interoperable_range() -> None:
    number = {"type": "number"}
    assert _accepts(number, "12.5") and _accepts(number, "-0.25") and _accepts(number, "42")
    assert not _accepts(number, "1e400")  # json.loads reads inf
    assert not _accepts(number, "1" + "0" * 20)
    assert _accepts({"type": "integer"}, str(SAFE_INTEGER))
    assert not _accepts({"type": "integer"}, str(SAFE_INTEGER + 1))
    wide = {"type": "integer", "minimum": 0, "maximum": 10**17}
    assert _accepts(wide, str(10**17))  # bounds the schema sets are kept


def test_strict_refuses_unlisted_properties() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert _accepts(schema, '{"a":1,"zz":2}')
    assert not _accepts(schema, '{"a":1,"zz":2}', strict=True)
    assert _accepts(schema, '{"a":1}', strict=True)
    opened = {**schema, "additionalProperties": {"type": "integer"}}
    assert _accepts(opened, '{"a":1,"zz":2}', strict=True)  # the schema's own choice wins


def test_overlapping_one_of_is_refused_naming_it() -> None:
    schema = {"oneOf": [{"type": "integer"}, {"type": "number"}]}
    with pytest.raises(GrammarError, match="oneOf"):
        compile_grammar(GrammarSpec.json_schema(schema), LLTOK)
    with pytest.raises(GrammarError, match="oneOf"):
        compile_grammar(GrammarSpec.json_schema({"oneOf": [{}, {"type": "null"}]}), LLTOK)


def test_unique_items_needing_two_items_is_refused() -> None:
    schema = {"type": "array", "items": {"type": "integer"}, "uniqueItems": True, "minItems": 2}
    with pytest.raises(GrammarError, match="uniqueItems"):
        compile_grammar(GrammarSpec.json_schema(schema), LLTOK)


def test_unique_items_arrays_hold_at_most_one_item() -> None:
    schema = CASES["uniqueItems"]
    assert _accepts(schema, '["x"]') and _accepts(schema, "[]")
    assert not _accepts(schema, '["x","y"]')


def test_negated_conditional_keeps_the_other_branch_open() -> None:
    schema = CASES["if then"]
    assert _accepts(schema, '{"kind":"square"}')
    assert not _accepts(schema, '{"kind":"circle"}')  # `then` requires size
    assert _accepts(schema, '{"kind":"circle","size":3}')
    assert json.dumps(prepare_schema(schema)).count('"square"') >= 2


def test_strict_flags_reach_the_constraint() -> None:
    from quote.server.structured import read_constraint

    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}, "strict": True}}
    spec, _ = read_constraint({"response_format": fmt})
    assert spec is not None and spec["strict"] is True
    fmt["json_schema"]["strict"] = False  # type: ignore[index]
    spec, _ = read_constraint({"response_format": fmt})
    assert spec is not None and spec["strict"] is False
    tool = {"type": "function", "function": {"name": "f", "parameters": {}, "strict": True}}
    spec, _ = read_constraint({"tools": [tool], "tool_choice": "required"})
    assert spec is not None and spec["strict"] is True and spec["tools"] == ["f"]


def test_open_values_keep_numbers_interoperable() -> None:
    free_object = {"type": "object"}
    assert _accepts(free_object, '{"a":12,"b":[1,"x",null],"c":{"d":true}}')
    assert not _accepts(free_object, '{"a":1e400')
    assert not _accepts(free_object, '{"a":[1e400')
    assert _accepts({}, "[1,2]") and not _accepts({}, "1e400")
    described = {"type": "object", "properties": {"x": {"description": "anything"}}}
    assert _accepts(described, '{"x":"s"}') and not _accepts(described, '{"x":1e400')
    assert not _accepts({"type": "array"}, "[1e400")


def test_untyped_schemas_bound_their_numbers_too() -> None:
    untyped = {"title": "root", "properties": {"a": {"type": "string", "maxLength": 3}}}
    assert _accepts(untyped, "42") and _accepts(untyped, '{"a":"x"}')
    assert not _accepts(untyped, "20602e61230241083432918025")  # read as inf


def test_open_items_and_pattern_values_of_untyped_schemas_are_bounded() -> None:
    camera = {"properties": {"x": {"type": "number"}}, "additionalProperties": False}
    assert _accepts(camera, "[1,2]") and not _accepts(camera, "[1e400")
    extensions = {"type": "object", "patternProperties": {"^x-": {}}}
    assert _accepts(extensions, '{"x-a":3}') and not _accepts(extensions, '{"x-a":1e400')
