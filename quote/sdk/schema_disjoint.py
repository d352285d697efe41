# SPDX-License-Identifier: Apache-2.0
"""Whether the branches of a ``oneOf`` can never match the same value.

When they cannot, ``oneOf`` means exactly ``anyOf``, which a grammar can enforce. The
proof is deliberately simple and conservative: two branches are disjoint when the JSON
types they admit do not meet, when both are finite sets of constants that do not meet, or
when both are objects requiring one property whose constants do not meet (a discriminator,
as in ``{"kind": {"const": "circle"}}``). Anything it cannot prove counts as overlapping.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

__all__ = ["disjoint_branches"]

_TYPES = frozenset({"null", "boolean", "object", "array", "string", "number"})
_MAX_DEPTH = 8


def disjoint_branches(
    branches: list[Any], root: dict[str, Any], within: frozenset[str] | None = None
) -> str | None:
    """Whether no value can match two of ``branches`` (local ``$ref``s resolved).

    ``within``: the JSON types the enclosing schema already allows. Returns ``"exact"``
    when no value can, ``"objects"`` when no *object* can (a discriminator property proves
    nothing for other values, which satisfy ``properties``/``required`` vacuously: the
    caller must restrict the value to objects), None when the branches may overlap.
    """
    outer = _Shape(within, None, {})
    shapes = [outer.meet(_Shape.of(b, root, 0)) for b in branches]
    how = "exact"
    for a, b in itertools.combinations(shapes, 2):
        verdict = a.disjoint(b)
        if verdict is None:
            return None
        if verdict == "tags":
            how = "objects"
    return how


class _Shape:
    """What a schema admits, coarsely: its JSON types, its constants, its discriminators."""

    def __init__(
        self,
        types: frozenset[str] | None,
        values: frozenset[str] | None,
        tags: dict[str, frozenset[str]],
    ) -> None:
        self.types = types  # None: any type
        self.values = values  # None: not a finite set of constants
        self.tags = tags  # required property -> its finite constants

    @classmethod
    def of(cls, schema: Any, root: dict[str, Any], depth: int) -> _Shape:
        if schema is False:
            return cls(frozenset(), frozenset(), {})
        if not isinstance(schema, dict) or depth > _MAX_DEPTH:
            return cls(None, None, {})
        shape = cls(_declared_types(schema), _constants(schema), {})
        ref = schema.get("$ref")
        if isinstance(ref, str):
            shape = shape.meet(cls.of(_resolve(ref, root), root, depth + 1))
        for part in schema.get("allOf") or []:
            shape = shape.meet(cls.of(part, root, depth + 1))
        shape.tags.update(_tags(schema, root, depth))
        return shape

    def meet(self, other: _Shape) -> _Shape:
        types = _meet(self.types, other.types)
        values = _meet(self.values, other.values)
        return _Shape(types, values, {**other.tags, **self.tags})

    def disjoint(self, other: _Shape) -> str | None:
        """ "exact", "tags" (disjoint as objects only) or None (may overlap)."""
        if self.types is not None and other.types is not None and not self.types & other.types:
            return "exact"
        if self.values is not None and other.values is not None:
            return None if self.values & other.values else "exact"
        for prop in self.tags.keys() & other.tags.keys():
            if not self.tags[prop] & other.tags[prop]:
                objects = {"object"}
                both_objects = bool(self.types) and bool(other.types)
                if both_objects and self.types <= objects and other.types <= objects:  # type: ignore[operator]
                    return "exact"
                return "tags"
        return None


def _meet(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    if a is None:
        return b
    if b is None:
        return a
    return a & b


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict):
        return "object"
    return "array" if isinstance(value, list) else "string"


def _declared_types(schema: dict[str, Any]) -> frozenset[str] | None:
    kind = schema.get("type")
    names = [kind] if isinstance(kind, str) else kind if isinstance(kind, list) else None
    types = None if names is None else frozenset("number" if n == "integer" else n for n in names)
    values = _raw_constants(schema)
    if values is not None:
        from_values = frozenset(_json_type(v) for v in values)
        types = from_values if types is None else types & from_values
    return types


def _raw_constants(schema: dict[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    enum = schema.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _constants(schema: dict[str, Any]) -> frozenset[str] | None:
    values = _raw_constants(schema)
    if values is None:
        return None
    # 1 and 1.0 are the same JSON number: compare numbers as floats
    return frozenset(
        json.dumps(float(v) if _json_type(v) == "number" and not isinstance(v, bool) else v)
        for v in values
    )


def _tags(schema: dict[str, Any], root: dict[str, Any], depth: int) -> dict[str, frozenset[str]]:
    props = schema.get("properties")
    required = schema.get("required")
    if not isinstance(props, dict) or not isinstance(required, list):
        return {}
    tags: dict[str, frozenset[str]] = {}
    for name in required:
        sub = props.get(name)
        if isinstance(sub, dict):
            values = _Shape.of(sub, root, depth + 1).values
            if values is not None:
                tags[name] = values
    return tags


def _resolve(ref: str, root: dict[str, Any]) -> Any:
    if not ref.startswith("#"):
        return None  # remote: unknown, so it proves nothing
    node: Any = root
    for part in ref[1:].split("/")[1:] if ref != "#" else []:
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
