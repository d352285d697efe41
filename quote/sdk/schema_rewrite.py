# SPDX-License-Identifier: Apache-2.0
"""Sound rewrites of a JSON schema before llguidance compiles it.

A grammar can only check what it can express token by token. Some schema keywords it
cannot express (``uniqueItems``, ``if``/``then``, ``dependencies``, overlapping ``oneOf``)
and some it expresses too loosely for clients (numbers past float64). Each rewrite here
replaces a keyword by a *stricter or equal* one, so every value the rewritten schema
accepts is still valid against the original schema; none widens it:

* ``oneOf`` whose branches are provably disjoint (different types, different constants, a
  required discriminator property with different constants) becomes ``anyOf`` (exact).
* ``not: {}`` becomes ``false``; ``not: {"type": ...}`` becomes the complement type (exact).
* ``uniqueItems: true`` arrays hold at most one item (stricter).
* ``if``/``then``/``else``: the value satisfies ``then`` (and ``if`` or ``else``) (stricter).
* ``dependencies`` / ``dependentRequired`` / ``dependentSchemas``: when the property is
  required its dependencies are enforced, otherwise the property is left out (stricter).
* formats llguidance does not know: standard ones get a pattern that admits only valid
  values (stricter); non-standard ones are dropped, as JSON Schema validators ignore them.
* numbers and integers without bounds are kept within +/-(2**53 - 1), the interoperable
  range of RFC 7493 (I-JSON), so a parsed value is never infinite (stricter).
* ``strict``: objects without ``additionalProperties`` admit no unlisted property, as in
  OpenAI's strict structured outputs (stricter).

What cannot be made sound is left alone, and llguidance refuses it with a message naming it.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from quote.sdk.schema_any import ANY, ANY_NAME, ANY_REF, bound_open_values, is_open
from quote.sdk.schema_disjoint import disjoint_branches

__all__ = ["SAFE_INTEGER", "prepare_schema"]

logger = logging.getLogger(__name__)

SAFE_INTEGER = 2**53 - 1
"""Largest magnitude Quote generates for a number the schema leaves unbounded (I-JSON)."""

_ALL_TYPES = ("null", "boolean", "object", "array", "string", "number", "integer")
_LLG_FORMATS = {
    "date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid",
    "unknown",
}  # fmt: skip
_FORMAT_PATTERNS = {
    "uri": r"^https://[a-z0-9]+(\.[a-z0-9]+)*(/[A-Za-z0-9._~-]+)*$",
    "iri": r"^https://[a-z0-9]+(\.[a-z0-9]+)*(/[A-Za-z0-9._~-]+)*$",
    "uri-reference": r"^[A-Za-z0-9._~-]*(/[A-Za-z0-9._~-]*)*$",
    "iri-reference": r"^[A-Za-z0-9._~-]*(/[A-Za-z0-9._~-]*)*$",
    "uri-template": r"^[A-Za-z0-9._~-]*(/[A-Za-z0-9._~-]*)*$",
    "json-pointer": r"^(/([A-Za-z0-9._ -]|~[01])*)*$",
    "relative-json-pointer": r"^(0|[1-9][0-9]*)(#|(/([A-Za-z0-9._ -]|~[01])*)*)$",
    "regex": r"^[A-Za-z0-9 ]*$",
}
_STANDARD_FORMATS = _LLG_FORMATS | set(_FORMAT_PATTERNS) | {"idn-email", "idn-hostname"}
_CHILD_MAPS = ("properties", "patternProperties", "definitions", "$defs", "dependentSchemas")
_CHILD_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
# not `not`: a stricter rewrite inside a negation would widen the schema; not `if`: its
# condition is read as written (leaving it unrewritten only keeps it as loose as the original)
_CHILD_ONE = ("additionalProperties", "additionalItems", "contains", "propertyNames",
              "unevaluatedProperties", "unevaluatedItems", "then", "else")  # fmt: skip


def prepare_schema(schema: dict[str, Any] | bool, *, strict: bool = False) -> dict[str, Any] | bool:
    """A copy of ``schema`` with the sound rewrites above applied (the input is not changed)."""
    if not isinstance(schema, dict):
        return schema
    root = copy.deepcopy(schema)
    if is_open(root):
        root = {"$ref": ANY_REF}
        rewriter = _Rewriter(root, strict)
        rewriter.any_used = True
    else:
        rewriter = _Rewriter(root, strict)
        rewriter.visit(root, in_all_of=False, parent=None)
    if rewriter.any_used:
        root.setdefault("$defs", {})[ANY_NAME] = copy.deepcopy(ANY)
    return root


class _Rewriter:
    def __init__(self, root: dict[str, Any], strict: bool) -> None:
        self.root = root
        self.original = copy.deepcopy(root)
        self.strict = strict
        self.any_used = False

    def visit(self, node: Any, *, in_all_of: bool, parent: dict[str, Any] | None = None) -> None:
        if not isinstance(node, dict):
            return
        for key in _CHILD_MAPS:
            if isinstance(node.get(key), dict):
                for child in node[key].values():
                    self.visit(child, in_all_of=key == "dependentSchemas")
        for key in _CHILD_LISTS:
            if isinstance(node.get(key), list):
                for child in node[key]:
                    all_of = key == "allOf"
                    self.visit(child, in_all_of=all_of, parent=node if all_of else None)
        for key in _CHILD_ONE:
            # if/then/else end up in an allOf: never closed on their own
            self.visit(node.get(key), in_all_of=key in ("then", "else"))
        items = node.get("items")
        for child in items if isinstance(items, list) else [items]:
            self.visit(child, in_all_of=False)
        if isinstance(node.get("dependencies"), dict):
            for child in node["dependencies"].values():
                self.visit(child, in_all_of=True)
        self.rewrite(node, in_all_of, parent)

    def rewrite(self, node: dict[str, Any], in_all_of: bool, parent: dict[str, Any] | None) -> None:
        _one_of(node, self.original)
        _not(node)
        _unique_items(node)
        _conditional(node, parent)
        _dependencies(node)
        _format(node)
        _number_bounds(node)
        if self.strict and not in_all_of:
            _closed_object(node)
        if bound_open_values(node, strict=self.strict, in_all_of=in_all_of):
            self.any_used = True


def _types(node: dict[str, Any]) -> set[str] | None:
    kind = node.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {k for k in kind if isinstance(k, str)}
    return None


def _one_of(node: dict[str, Any], root: dict[str, Any]) -> None:
    branches = node.get("oneOf")
    if not isinstance(branches, list):
        return
    declared = _types(node)
    within = None if declared is None else frozenset(_NUMERIC.get(t, t) for t in declared)
    how = disjoint_branches(branches, root, within)
    if how is None:
        return
    if how == "objects":  # disjoint as objects only: other values would match every branch
        if declared is not None and "object" not in declared:
            return
        node["type"] = "object"
    node.pop("oneOf")
    if "anyOf" in node:
        _add_all_of(node, {"anyOf": branches})
    else:
        node["anyOf"] = branches


def _not(node: dict[str, Any]) -> None:
    neg = node.get("not")
    if neg == {} or neg is True:
        node.clear()
        node["enum"] = []  # nothing is valid: the property may not appear
        return
    if isinstance(neg, dict) and set(neg) == {"type"} and _types(neg):
        allowed = _types(node) or set(_ALL_TYPES)
        banned = _types(neg) or set()
        if "number" in banned:
            banned.add("integer")
        node.pop("not")
        node["type"] = [t for t in _ALL_TYPES if t in allowed and t not in banned]


def _unique_items(node: dict[str, Any]) -> None:
    if "uniqueItems" not in node:
        return
    if node.get("uniqueItems") is True:
        if int(node.get("minItems", 0)) > 1:
            return  # at least two distinct items: a grammar cannot promise it; refused
        node["maxItems"] = min(int(node.get("maxItems", 1)), 1)
    node.pop("uniqueItems")


def _conditional(node: dict[str, Any], parent: dict[str, Any] | None) -> None:
    if "if" not in node and "then" not in node and "else" not in node:
        return
    cond, then, other = node.pop("if", None), node.pop("then", None), node.pop("else", None)
    if cond is None or (then is None and other is None):
        return
    yes = then if other is None else {"allOf": [then, other]}
    no = _negation(cond, node) or (_negation(cond, parent) if parent is not None else None)
    if then is None:
        _add_all_of(node, {"anyOf": [cond, other]})
    elif no is not None:
        # exact when `if` tests one property against constants the object enumerates
        _add_all_of(node, {"anyOf": [{"allOf": [cond, then]}, {"allOf": [no, other or {}]}]})
    else:
        _add_all_of(node, yes if other is None else {"anyOf": [{"allOf": [cond, then]}, yes]})


def _negation(cond: Any, node: dict[str, Any]) -> dict[str, Any] | None:
    """A schema of the values ``cond`` refuses, when ``cond`` is ``{properties: {p: consts}}``."""
    if not isinstance(cond, dict) or set(cond) - {"properties", "required"}:
        return None
    props = cond.get("properties")
    if not isinstance(props, dict) or len(props) != 1:
        return None
    ((name, test),) = props.items()
    if cond.get("required", [name]) != [name] or not isinstance(test, dict):
        return None
    tested = [test["const"]] if "const" in test else test.get("enum")
    declared = (node.get("properties") or {}).get(name)
    declared_values = declared.get("enum") if isinstance(declared, dict) else None
    if not isinstance(tested, list) or not isinstance(declared_values, list):
        return None
    rest = [v for v in declared_values if v not in tested]
    # an object: other values satisfy `if` vacuously and must take its `then`
    return {"type": "object", "properties": {name: {"enum": rest}}, "required": [name]}


def _dependencies(node: dict[str, Any]) -> None:
    deps: dict[str, Any] = {}
    for key in ("dependencies", "dependentRequired", "dependentSchemas"):
        if isinstance(node.get(key), dict):
            deps.update(node.pop(key))
    required = node.setdefault("required", []) if deps else []
    for prop, dep in deps.items():
        if prop not in required:
            node.setdefault("properties", {})[prop] = False
        elif isinstance(dep, list):
            required.extend(d for d in dep if d not in required)
        else:
            _add_all_of(node, dep)


def _format(node: dict[str, Any]) -> None:
    fmt = node.get("format")
    if not isinstance(fmt, str) or fmt in _LLG_FORMATS:
        return
    if fmt in _FORMAT_PATTERNS and "pattern" not in node:
        node["pattern"] = _FORMAT_PATTERNS[fmt]
        node.pop("format")
    elif fmt not in _STANDARD_FORMATS:
        node.pop("format")  # an annotation only: validators ignore formats they do not define


_NUMERIC = {"integer": "number"}
_UNTYPED_SKIP = ("$ref", "enum", "const", "allOf", "anyOf", "oneOf", "not")


def _number_bounds(node: dict[str, Any]) -> None:
    kinds = _types(node)
    if kinds is None:  # no "type": a number is one of the values it admits
        if any(k in node for k in _UNTYPED_SKIP) or not node or is_open(node):
            return  # combined with other schemas, constants, or left to the open-value rule
    elif not kinds & {"number", "integer"}:
        return
    if "minimum" not in node and "exclusiveMinimum" not in node:
        node["minimum"] = -SAFE_INTEGER
    if "maximum" not in node and "exclusiveMaximum" not in node:
        node["maximum"] = SAFE_INTEGER


def _closed_object(node: dict[str, Any]) -> None:
    kinds = _types(node)
    is_object = "properties" in node or (kinds is not None and "object" in kinds)
    open_keys = ("additionalProperties", "unevaluatedProperties", "allOf", "anyOf", "oneOf", "$ref")
    listed = node.get("properties") or {}
    if any(name not in listed for name in node.get("required") or []):
        return  # a required property only other keywords describe: closing could forbid it
    if is_object and not any(k in node for k in open_keys):
        node["additionalProperties"] = False


def _add_all_of(node: dict[str, Any], extra: Any) -> None:
    node.setdefault("allOf", []).append(extra)
