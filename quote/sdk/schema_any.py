# SPDX-License-Identifier: Apache-2.0
"""Values a schema leaves open ("any JSON value") with their numbers kept interoperable.

A schema position that admits any value (``additionalProperties: true``, an array without
``items``, a property whose schema is ``{}`` or only annotations) would let a grammar write
a number of any length, which a client's parser reads as ``inf``. Those positions are
pointed at :data:`ANY`, a schema of every JSON value whose numbers (at its first two
levels) stay within ``+/-(2**53 - 1)`` (RFC 7493), the bound
:mod:`quote.sdk.schema_rewrite` gives typed numbers. It admits a subset of what the
position admitted: never wider.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ANY", "ANY_NAME", "ANY_REF", "bound_open_values"]

ANY_NAME = "__quote_any"
ANY_REF = f"#/$defs/{ANY_NAME}"
SAFE = 2**53 - 1
_SCALAR: list[dict[str, Any]] = [
    {"type": ["null", "boolean", "string"]},
    {"type": "number", "minimum": -SAFE, "maximum": SAFE},
]
ANY: dict[str, Any] = {
    "anyOf": [
        *_SCALAR,
        {"type": "array", "items": {"anyOf": [*_SCALAR, {"type": ["array", "object"]}]}},
        {
            "type": "object",
            "additionalProperties": {"anyOf": [*_SCALAR, {"type": ["array", "object"]}]},
        },
    ]
}
"""Any JSON value; numbers within the interoperable range down to the second level (a
recursive definition costs llguidance far more to compile and to intersect)."""

_ANNOTATIONS = {
    "title", "description", "default", "examples", "$comment", "deprecated", "readOnly",
    "writeOnly", "$schema", "$id", "id", "markdownDescription", "format",
}  # fmt: skip
_COMBINED = ("allOf", "anyOf", "oneOf", "$ref", "not", "if")
_CONSTANT = {"enum", "const"}


def is_open(schema: Any) -> bool:
    """Whether ``schema`` admits every JSON value (``true``, ``{}``, annotations only)."""
    if schema is True:
        return True
    return isinstance(schema, dict) and set(schema) <= _ANNOTATIONS - {"format"}


def bound_open_values(node: dict[str, Any], *, strict: bool, in_all_of: bool) -> bool:
    """Point ``node``'s open value positions at :data:`ANY`; whether it was needed."""
    if in_all_of or any(k in node for k in _COMBINED):
        return False  # merged with sibling schemas: an added keyword could change the meaning
    used = False
    props = node.get("properties")
    if isinstance(props, dict):
        for name, sub in props.items():
            if is_open(sub):
                props[name] = {"$ref": ANY_REF}
                used = True
    kinds = node.get("type")
    kinds = {kinds} if isinstance(kinds, str) else set(kinds) if isinstance(kinds, list) else None
    is_object = "properties" in node or (kinds is not None and "object" in kinds)
    extra = node.get("additionalProperties", None if strict else True)
    if is_object and extra is not None and is_open(extra) and "patternProperties" not in node:
        node["additionalProperties"] = {"$ref": ANY_REF}
        used = True
    patterns = node.get("patternProperties")
    if isinstance(patterns, dict):
        for pattern, sub in patterns.items():
            if is_open(sub):
                patterns[pattern] = {"$ref": ANY_REF}
                used = True
    # an untyped schema admits arrays too (unless it is open itself or a set of constants)
    arrays = "array" in kinds if kinds is not None else not (is_open(node) or _CONSTANT & set(node))
    if arrays and is_open(node.get("items", True)):
        if "prefixItems" not in node and "additionalItems" not in node:
            node["items"] = {"$ref": ANY_REF}
            used = True
    return used
