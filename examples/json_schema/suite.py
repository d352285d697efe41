# SPDX-License-Identifier: Apache-2.0
"""The schema suite used by the tests and by ``python -m examples.json_schema.run --validity``.

``SCHEMAS`` are ``(feature group, name, schema)``; ``UNSUPPORTED`` are ``(feature, schema)``
pairs the mod must refuse with an error naming the feature.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SCHEMAS", "UNSUPPORTED"]

_NAME = {"type": "string", "minLength": 1, "maxLength": 12}

SCHEMAS: list[tuple[str, str, Any]] = [
    # objects
    (
        "objects",
        "required_only",
        {
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    ),
    (
        "objects",
        "optional_props",
        {
            "type": "object",
            "properties": {
                "x": {"type": "integer"},
                "y": {"type": "boolean"},
                "z": {"type": "null"},
            },
        },
    ),
    (
        "objects",
        "mixed_required",
        {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "note": {"type": "string", "maxLength": 8},
                "ok": {"type": "boolean"},
            },
            "required": ["ok"],
            "additionalProperties": False,
        },
    ),
    ("objects", "empty_object", {"type": "object"}),
    (
        "objects",
        "required_undeclared",
        {
            "type": "object",
            "required": ["k"],
            "additionalProperties": {"type": "integer"},
        },
    ),
    # arrays
    (
        "arrays",
        "bounded_items",
        {
            "type": "array",
            "items": {"type": "integer"},
            "minItems": 2,
            "maxItems": 4,
        },
    ),
    ("arrays", "unbounded_items", {"type": "array", "items": {"type": "boolean"}}),
    (
        "arrays",
        "prefix_items_closed",
        {
            "type": "array",
            "prefixItems": [{"type": "string"}, {"type": "integer"}],
            "items": False,
            "minItems": 2,
        },
    ),
    (
        "arrays",
        "prefix_then_items",
        {
            "type": "array",
            "prefixItems": [{"const": "head"}],
            "items": {"type": "null"},
            "minItems": 1,
            "maxItems": 3,
        },
    ),
    (
        "arrays",
        "exact_length",
        {
            "type": "array",
            "items": {"enum": [1, 2, 3]},
            "minItems": 3,
            "maxItems": 3,
        },
    ),
    # strings
    ("strings", "enum", {"type": "string", "enum": ["red", "green", "blue"]}),
    ("strings", "const", {"const": "fixed value"}),
    ("strings", "pattern_anchored", {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{3}$"}),
    ("strings", "pattern_search", {"type": "string", "pattern": "ab+c", "maxLength": 10}),
    ("strings", "min_max_length", {"type": "string", "minLength": 3, "maxLength": 5}),
    ("strings", "format_date", {"type": "string", "format": "date"}),
    # numbers
    ("numbers", "integer_bounds", {"type": "integer", "minimum": -20, "maximum": 35}),
    (
        "numbers",
        "integer_exclusive",
        {
            "type": "integer",
            "exclusiveMinimum": 10,
            "exclusiveMaximum": 13,
        },
    ),
    ("numbers", "number_bounds", {"type": "number", "minimum": -1.5, "maximum": 2.25}),
    (
        "numbers",
        "number_exclusive_narrow",
        {
            "type": "number",
            "exclusiveMinimum": 0.1,
            "exclusiveMaximum": 0.2,
        },
    ),
    ("numbers", "number_unbounded", {"type": "number"}),
    ("numbers", "integer_min_only", {"type": "integer", "minimum": 1000}),
    # booleans, null and literals
    ("literals", "boolean", {"type": "boolean"}),
    ("literals", "null", {"type": "null"}),
    ("literals", "type_list", {"type": ["string", "null"], "maxLength": 4}),
    ("literals", "mixed_enum", {"enum": [1, "one", None, True, [1, 2], {"k": "v"}]}),
    # nested objects
    (
        "nested",
        "object_in_object",
        {
            "type": "object",
            "properties": {
                "user": {
                    "type": "object",
                    "properties": {"name": _NAME, "age": {"type": "integer", "minimum": 0}},
                    "required": ["name"],
                },
                "active": {"type": "boolean"},
            },
            "required": ["user", "active"],
        },
    ),
    (
        "nested",
        "array_of_objects",
        {
            "type": "array",
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {
                    "sku": {"type": "string", "pattern": "^[0-9]{4}$"},
                    "qty": {"type": "integer", "minimum": 1, "maximum": 9},
                },
                "required": ["sku", "qty"],
            },
        },
    ),
    (
        "nested",
        "matrix",
        {
            "type": "array",
            "maxItems": 3,
            "items": {"type": "array", "items": {"type": "number"}, "maxItems": 3},
        },
    ),
    # anyOf / oneOf
    ("anyOf/oneOf", "anyof_scalars", {"anyOf": [{"type": "integer"}, {"type": "string"}]}),
    (
        "anyOf/oneOf",
        "anyof_objects",
        {
            "anyOf": [
                {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                {"type": "array", "items": {"type": "string"}, "maxItems": 2},
            ],
        },
    ),
    (
        "anyOf/oneOf",
        "oneof_discriminated",
        {
            "oneOf": [
                {
                    "type": "object",
                    "properties": {"kind": {"const": "cat"}, "lives": {"type": "integer"}},
                    "required": ["kind", "lives"],
                },
                {
                    "type": "object",
                    "properties": {"kind": {"const": "dog"}, "good": {"type": "boolean"}},
                    "required": ["kind", "good"],
                },
            ],
        },
    ),
    (
        "anyOf/oneOf",
        "oneof_types",
        {
            "oneOf": [{"type": "string", "maxLength": 3}, {"type": "integer"}, {"type": "null"}],
        },
    ),
    # internal $ref
    (
        "$ref",
        "defs_ref",
        {
            "$defs": {
                "point": {
                    "type": "object",
                    "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
                    "required": ["x", "y"],
                }
            },
            "type": "object",
            "properties": {"a": {"$ref": "#/$defs/point"}, "b": {"$ref": "#/$defs/point"}},
            "required": ["a", "b"],
        },
    ),
    (
        "$ref",
        "definitions_ref",
        {
            "definitions": {"color": {"enum": ["r", "g", "b"]}},
            "type": "array",
            "items": {"$ref": "#/definitions/color"},
            "maxItems": 4,
        },
    ),
    (
        "$ref",
        "recursive_tree",
        {
            "$defs": {
                "node": {
                    "type": "object",
                    "properties": {
                        "v": {"type": "integer", "minimum": 0, "maximum": 9},
                        "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2},
                    },
                    "required": ["v"],
                }
            },
            "$ref": "#/$defs/node",
        },
    ),
    (
        "$ref",
        "recursive_root",
        {
            "type": "object",
            "properties": {"name": _NAME, "next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}},
            "required": ["name", "next"],
        },
    ),
]
"""``(feature group, name, schema)`` of the validity suite."""

UNSUPPORTED: list[tuple[str, Any]] = [
    ("patternProperties", {"type": "object", "patternProperties": {"^a": {"type": "integer"}}}),
    ("if", {"if": {"type": "string"}, "then": {"minLength": 2}, "else": {"type": "null"}}),
    ("external $ref", {"$ref": "https://example.com/schema.json"}),
    ("uniqueItems", {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}),
    ("multipleOf", {"type": "integer", "multipleOf": 3}),
    ("not", {"not": {"type": "string"}}),
    ("minProperties", {"type": "object", "minProperties": 1}),
    ("oneOf with overlapping alternatives", {"oneOf": [{"type": "integer"}, {"type": "number"}]}),
    ("format", {"type": "string", "format": "email"}),
    ("allOf", {"allOf": [{"type": "string"}, {"maxLength": 3}]}),
]
"""``(feature named in the error, schema)`` pairs the mod refuses."""
