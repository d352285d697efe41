# SPDX-License-Identifier: Apache-2.0
"""JSON schemas for the ``JsonSchema`` strategy's tests, offline and on the engine.

``SCHEMAS`` bound every free-running value (string lengths, integer ranges, array sizes),
so a random model finishes a document well within 160 tokens. ``INVALID`` pairs schemas
llguidance refuses with a word its error message names.
"""

from __future__ import annotations

from typing import Any

__all__ = ["INVALID", "SCHEMAS"]

_SMALL = {"type": "integer", "minimum": 0, "maximum": 9}
_POINT = {
    "type": "object",
    "properties": {"x": _SMALL, "y": _SMALL},
    "required": ["x", "y"],
    "additionalProperties": False,
}

SCHEMAS: list[tuple[str, Any]] = [
    (
        "object_required",
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 12},
                "age": {"type": "integer", "minimum": 0, "maximum": 120},
            },
            "required": ["name", "age"],
            "additionalProperties": False,
        },
    ),
    (
        "optional_properties",
        {
            "type": "object",
            "properties": {
                "flag": {"type": "boolean"},
                "nothing": {"type": "null"},
                "kind": {"enum": ["x", "y"]},
            },
            "additionalProperties": False,
        },
    ),
    (
        "nested",
        {
            "type": "object",
            "properties": {
                "user": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer", "minimum": 1, "maximum": 999},
                        "tags": {
                            "type": "array",
                            "items": {"enum": ["new", "vip", "late"]},
                            "maxItems": 3,
                        },
                    },
                    "required": ["id", "tags"],
                    "additionalProperties": False,
                }
            },
            "required": ["user"],
            "additionalProperties": False,
        },
    ),
    (
        "array_bounds",
        {
            "type": "array",
            "items": {"type": "integer", "minimum": -50, "maximum": 50},
            "minItems": 1,
            "maxItems": 4,
        },
    ),
    (
        "prefix_items",
        {
            "type": "array",
            "prefixItems": [{"type": "string", "maxLength": 5}, {"type": "boolean"}],
            "items": False,
            "minItems": 2,
        },
    ),
    ("string_pattern", {"type": "string", "pattern": "^[a-z]{2,6}@[a-z]{2,6}\\.com$"}),
    ("string_lengths", {"type": "string", "minLength": 3, "maxLength": 5}),
    (
        "formats",
        {
            "type": "object",
            "properties": {
                "day": {"type": "string", "format": "date"},
                "at": {"type": "string", "format": "date-time"},
                "clock": {"type": "string", "format": "time"},
                "mail": {"type": "string", "format": "email", "maxLength": 20},
                "id": {"type": "string", "format": "uuid"},
                "ip": {"type": "string", "format": "ipv4"},
            },
            "required": ["day", "at", "clock", "mail", "id", "ip"],
            "additionalProperties": False,
        },
    ),
    ("integer_exclusive", {"type": "integer", "exclusiveMinimum": 5, "exclusiveMaximum": 9}),
    (
        "const_enum",
        {
            "type": "object",
            "properties": {"kind": {"const": "point"}, "tier": {"enum": [1, "two", None, True]}},
            "required": ["kind", "tier"],
            "additionalProperties": False,
        },
    ),
    ("any_of", {"anyOf": [_SMALL, {"type": "string", "maxLength": 4}, {"type": "null"}]}),
    (
        "one_of_tagged",
        {
            "oneOf": [
                {
                    "type": "object",
                    "properties": {"t": {"const": "a"}, "x": _SMALL},
                    "required": ["t", "x"],
                    "additionalProperties": False,
                },
                {
                    "type": "object",
                    "properties": {"t": {"const": "b"}, "y": {"type": "boolean"}},
                    "required": ["t", "y"],
                    "additionalProperties": False,
                },
            ]
        },
    ),
    (
        "refs",
        {
            "$defs": {"point": _POINT},
            "type": "object",
            "properties": {"a": {"$ref": "#/$defs/point"}, "b": {"$ref": "#/$defs/point"}},
            "required": ["a", "b"],
            "additionalProperties": False,
        },
    ),
    (
        "recursive",
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 3},
                "children": {"type": "array", "items": {"$ref": "#"}, "maxItems": 1},
            },
            "required": ["name", "children"],
            "additionalProperties": False,
        },
    ),
]
"""``(name, schema)`` pairs, each a feature group of JSON Schema."""

INVALID: list[tuple[Any, str]] = [
    ({"type": "foo"}, "foo"),
    ({"not": {"type": "string", "maxLength": 3}}, "not"),
    ({"$ref": "#/$defs/missing"}, "missing"),
    ({"type": "array", "uniqueItems": True, "minItems": 2}, "uniqueItems"),
    ({"oneOf": [{"type": "integer"}, {"type": "number"}]}, "oneOf"),
    ({"type": "string", "pattern": "(a"}, "regex"),
    ({"allOf": [{"type": "string"}, {"type": "integer"}]}, "Unsatisfiable"),
    ({"type": "integer", "minimum": "x"}, "minimum"),
]
"""``(schema, word)``: schemas llguidance refuses and a word their error names."""
