# SPDX-License-Identifier: Apache-2.0
"""Compile a JSON schema into a small tree of generation nodes (pure Python, no MAX).

The tree describes a *subset* of the JSON texts valid for the schema, chosen so that
every text in it is valid and generation always terminates:

- :class:`Lit` is fixed text (``{``, ``"key": ``, ``, ``...), forced by the mod;
- :class:`Leaf` is a scalar (string, number, integer, boolean, null, enum/const)
  whose text is a regular language, enforced character by character with a DFA;
- :class:`Obj`, :class:`Arr` and :class:`Alt` are objects, arrays and ``anyOf``-style
  choices; :class:`Ref` is an internal ``$ref`` (recursion is allowed).

Output style is fixed: ``{"a": 1, "b": [1, 2]}`` (``": "`` and ``", "`` separators, no
other whitespace). Defaults where the schema sets no bound (documented in the README):
strings at most :data:`DEFAULT_MAX_STRING` characters, arrays at most
:data:`DEFAULT_MAX_ITEMS` items, integers at most :data:`DEFAULT_INT_DIGITS` digits,
numbers at most :data:`DEFAULT_FRACTION_DIGITS` fraction digits and no exponent.

Anything the compiler cannot guarantee raises :class:`UnsupportedSchemaError` naming
the feature; it never produces a grammar that could yield invalid output.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import interegular
from interegular.fsm import FSM

from quote.sdk.strategies.automaton import escape

__all__ = [
    "DEFAULT_FRACTION_DIGITS",
    "DEFAULT_INT_DIGITS",
    "DEFAULT_MAX_ITEMS",
    "DEFAULT_MAX_STRING",
    "Alt",
    "Arr",
    "CompiledSchema",
    "Leaf",
    "Lit",
    "Node",
    "Obj",
    "Ref",
    "UnsupportedSchemaError",
    "compile_schema",
    "int_range_regex",
]

DEFAULT_MAX_STRING = 32
"""Most characters of a string whose schema sets no ``maxLength``."""
DEFAULT_MAX_ITEMS = 8
"""Most items of an array whose schema sets no ``maxItems``."""
DEFAULT_INT_DIGITS = 8
"""Most digits of an integer whose schema leaves a side unbounded."""
DEFAULT_FRACTION_DIGITS = 4
"""Most fraction digits of a generated number."""

KEY_SEP = ": "
ITEM_SEP = ", "

_STRING_UNIT = '([^"\\\\\\x00-\\x1f]|\\\\["\\\\bfnrt])'  # one JSON string character
_SAFE_CHAR = '[^"\\\\\\x00-\\x1f]'  # a value character written without escaping
_UNBOUNDED = 10**DEFAULT_INT_DIGITS - 1

ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "$comment",
        "$schema",
        "$id",
        "readOnly",
        "writeOnly",
        "deprecated",
        "$defs",
        "definitions",
        "contentSchema",
    }
)
"""Keywords that never constrain an instance (ignored)."""

UNSUPPORTED = (
    "patternProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "unevaluatedProperties",
    "unevaluatedItems",
    "if",
    "then",
    "else",
    "not",
    "contains",
    "minContains",
    "maxContains",
    "additionalItems",
    "multipleOf",
    "$dynamicRef",
    "$recursiveRef",
    "contentEncoding",
    "contentMediaType",
)
"""Assertion keywords this compiler rejects (the request fails naming the keyword)."""

FORMATS: dict[str, str] = {
    "date": "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])",
    "time": "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z",
    "date-time": "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T"
    "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z",
    "uuid": "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
}
"""String formats generated (others are rejected)."""

_TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")


class UnsupportedSchemaError(ValueError):
    """The schema uses a feature the mod cannot guarantee; ``feature`` names it."""

    def __init__(self, feature: str, detail: str = "") -> None:
        self.feature = feature
        msg = f"unsupported JSON schema feature: {feature}"
        super().__init__(msg + (f" ({detail})" if detail else ""))


# ----------------------------------------------------------------------------- nodes
@dataclass(eq=False)
class Node:
    """Base class of generation nodes."""


@dataclass(eq=False)
class Lit(Node):
    """Fixed text."""

    text: str


@dataclass(eq=False)
class Leaf(Node):
    """A scalar whose JSON text is a regular language.

    Attributes:
        key: A stable identity for caching the automaton (its regex or a description).
        regex: The regex of the text, when the language is one regex.
        fsm_parts: Otherwise, a builder of the automaton (pattern intersections).
    """

    key: str
    regex: str | None = None
    parts: tuple[Any, ...] = ()

    def fsm(self) -> FSM:
        """The character automaton of this leaf's texts."""
        if self.regex is not None:
            return _rx(self.regex)
        return _build_fsm(self.parts)


@dataclass(eq=False)
class Obj(Node):
    """An object: ``props`` in order as ``(key, value node, required)``."""

    props: list[tuple[str, Node, bool]]


@dataclass(eq=False)
class Arr(Node):
    """An array: ``prefix`` item nodes, then ``item`` for the rest, ``lo..hi`` items."""

    prefix: list[Node]
    item: Node | None
    lo: int
    hi: int

    def item_at(self, k: int) -> Node | None:
        """The node of item ``k`` (``None`` when no item may stand there)."""
        return self.prefix[k] if k < len(self.prefix) else self.item


@dataclass(eq=False)
class Alt(Node):
    """One of ``options`` (``anyOf``, or ``oneOf`` with provably disjoint options)."""

    options: list[Node]


@dataclass(eq=False)
class Ref(Node):
    """An internal ``$ref``; ``target`` is set once the referenced schema is compiled."""

    pointer: str
    target: Node | None = None


@dataclass
class CompiledSchema:
    """The root node plus each node's minimal text length (characters)."""

    root: Node
    min_chars: dict[int, float] = field(default_factory=dict)

    def min_len(self, node: Node) -> float:
        """Fewest characters a text of ``node`` can have (``inf`` if none is finite)."""
        return self.min_chars.get(id(node), math.inf)


# ----------------------------------------------------------------------------- regex helpers
def _rx(pattern: str) -> FSM:
    return interegular.parse_pattern(pattern).to_fsm()


def _build_fsm(parts: tuple[Any, ...]) -> FSM:
    """``parts``: ``("cat", a, b, ...)``, ``("and", a, b)``, ``("or", ...)`` or a regex string."""
    if isinstance(parts, str):
        return _rx(parts)
    op, *args = parts
    fsms = [_build_fsm(a) for a in args]
    if op == "cat":
        return FSM.concatenate(*fsms)
    if op == "and":
        return FSM.intersection(*fsms)
    return FSM.union(*fsms)


def _nat_same_len(a: str, b: str) -> str:
    """Regex of the decimal strings of equal length ``len(a)`` between ``a`` and ``b``."""
    if a == b:
        return a
    if len(a) == 1:
        return f"[{a}-{b}]"
    if a[0] == b[0]:
        return a[0] + _nat_same_len(a[1:], b[1:])
    n = len(a) - 1
    parts = []
    if a[1:] == "0" * n:
        lo_first = a[0]
    else:
        parts.append(a[0] + _nat_same_len(a[1:], "9" * n))
        lo_first = str(int(a[0]) + 1)
    if b[1:] == "9" * n:
        hi_first = b[0]
    else:
        parts.append(b[0] + _nat_same_len("0" * n, b[1:]))
        hi_first = str(int(b[0]) - 1)
    if int(lo_first) <= int(hi_first):
        parts.append(f"[{lo_first}-{hi_first}][0-9]{{{n}}}")
    return "(" + "|".join(parts) + ")"


def _nat_range(lo: int, hi: int) -> str:
    """Regex of the canonical decimal naturals in ``[lo, hi]`` (``0 <= lo <= hi``)."""
    parts = []
    for digits in range(len(str(lo)), len(str(hi)) + 1):
        a = max(lo, 10 ** (digits - 1) if digits > 1 else 0)
        b = min(hi, 10**digits - 1)
        if a <= b:
            parts.append(_nat_same_len(str(a), str(b)))
    return "(" + "|".join(parts) + ")"


def int_range_regex(lo: int, hi: int) -> str | None:
    """Regex of the canonical decimal integers in ``[lo, hi]`` (``None`` if empty)."""
    if lo > hi:
        return None
    parts = []
    if lo < 0:
        parts.append("-" + _nat_range(max(1, -hi), -lo))
    if hi >= 0:
        parts.append(_nat_range(max(lo, 0), hi))
    return "(" + "|".join(parts) + ")"


def _dec(value: Any, keyword: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnsupportedSchemaError(keyword, f"non-numeric bound {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise UnsupportedSchemaError(keyword, f"non-finite bound {value!r}")
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _bounds(schema: Mapping[str, Any]) -> tuple[Decimal | None, bool, Decimal | None, bool]:
    """``(low, low_exclusive, high, high_exclusive)`` from draft-4 or draft-6+ keywords."""
    lo: Decimal | None = None
    hi: Decimal | None = None
    lo_ex = hi_ex = False
    if "minimum" in schema:
        lo = _dec(schema["minimum"], "minimum")
    if "maximum" in schema:
        hi = _dec(schema["maximum"], "maximum")
    emin, emax = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(emin, bool):
        lo_ex = emin and lo is not None
    elif emin is not None:
        v = _dec(emin, "exclusiveMinimum")
        if lo is None or v >= lo:
            lo, lo_ex = v, True
    if isinstance(emax, bool):
        hi_ex = emax and hi is not None
    elif emax is not None:
        v = _dec(emax, "exclusiveMaximum")
        if hi is None or v <= hi:
            hi, hi_ex = v, True
    return lo, lo_ex, hi, hi_ex


def _int_bounds(
    lo: Decimal | None, lo_ex: bool, hi: Decimal | None, hi_ex: bool
) -> tuple[int, int]:
    """The integer interval inside the bounds, with defaults for unbounded sides."""
    if lo is None:
        ilo = -_UNBOUNDED if hi is None else min(-_UNBOUNDED, int(hi) - _UNBOUNDED)
    else:
        ilo = int(lo.to_integral_value(ROUND_CEILING))
        if lo_ex and ilo == lo:
            ilo += 1
    if hi is None:
        ihi = max(_UNBOUNDED, ilo + _UNBOUNDED)
    else:
        ihi = int(hi.to_integral_value(ROUND_FLOOR))
        if hi_ex and ihi == hi:
            ihi -= 1
    return ilo, ihi


def _number_regex(schema: Mapping[str, Any], integer: bool) -> str | None:
    """Regex of canonical numbers (no exponent, no trailing fraction zeros) in the bounds."""
    lo, lo_ex, hi, hi_ex = _bounds(schema)
    ilo, ihi = _int_bounds(lo, lo_ex, hi, hi_ex)
    parts = []
    whole = int_range_regex(ilo, ihi)
    if whole:
        parts.append(whole)
    if not integer:
        frac = f"\\.[0-9]{{0,{DEFAULT_FRACTION_DIGITS - 1}}}[1-9]"
        # "I.f" (I >= 0) lies in (I, I+1): needs I >= ilo and I + 1 <= the high bound.
        pos = int_range_regex(max(ilo, 0), ihi - 1)
        if pos:
            parts.append(pos + frac)
        # "-I.f" (I >= 0) lies in (-(I+1), -I): needs -(I+1) >= low and -I <= high.
        neg_lo = max(0, -ihi)
        neg_hi = -ilo - 1
        neg = int_range_regex(neg_lo, neg_hi)
        if neg:
            parts.append("-" + neg + frac)
        if not parts:
            parts.extend(_narrow_decimals(lo, lo_ex, hi, hi_ex))
    if not parts:
        return None
    return "(" + "|".join(parts) + ")"


def _narrow_decimals(lo: Decimal | None, lo_ex: bool, hi: Decimal | None, hi_ex: bool) -> list[str]:
    """A few fixed-point decimals inside a range that holds no integer."""
    assert lo is not None and hi is not None
    for digits in range(1, 9):
        scale = Decimal(10) ** digits
        a = int((lo * scale).to_integral_value(ROUND_CEILING))
        b = int((hi * scale).to_integral_value(ROUND_FLOOR))
        out = []
        for n in range(a, b + 1):
            v = Decimal(n) / scale
            if (lo_ex and v <= lo) or (hi_ex and v >= hi) or v < lo or v > hi:
                continue
            text = format(v.normalize(), "f")
            out.append(escape(text))
            if len(out) >= 16:
                break
        if out:
            return out
    return []


# ----------------------------------------------------------------------------- compiler
def _json_literal(value: Any) -> str:
    return json.dumps(value, separators=(ITEM_SEP, KEY_SEP), ensure_ascii=True)


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_matches(value: Any, types: Iterable[str]) -> bool:
    t = _type_of(value)
    ts = set(types)
    return t in ts or (t == "integer" and "number" in ts)


_OBJ_KEYS = ("properties", "required", "additionalProperties")
_ARR_KEYS = ("items", "prefixItems", "minItems", "maxItems")
_STR_KEYS = ("minLength", "maxLength", "pattern", "format")
_NUM_KEYS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _inferred_types(schema: Mapping[str, Any]) -> list[str]:
    """The JSON types to generate for ``schema`` (from ``type`` or its keywords)."""
    t = schema.get("type")
    if isinstance(t, str):
        return [t]
    if isinstance(t, list):
        return [str(x) for x in t]
    if any(k in schema for k in _OBJ_KEYS):
        return ["object"]
    if any(k in schema for k in _ARR_KEYS):
        return ["array"]
    if any(k in schema for k in _STR_KEYS):
        return ["string"]
    if any(k in schema for k in _NUM_KEYS):
        return ["number"]
    return ["string", "integer", "boolean", "null"]


def _value_types(
    schema: Any, root: Mapping[str, Any], seen: frozenset[str] = frozenset()
) -> set[str]:
    """Every JSON type an instance valid for ``schema`` may have (conservative)."""
    everything = set(_TYPES)
    if schema is True or schema == {}:
        return everything
    if schema is False:
        return set()
    if not isinstance(schema, Mapping):
        return everything
    if "$ref" in schema:
        ref = str(schema["$ref"])
        if ref in seen:
            return everything
        try:
            return _value_types(_resolve(root, ref), root, seen | {ref})
        except UnsupportedSchemaError:
            return everything
    out = everything
    if "const" in schema:
        out = {_type_of(schema["const"])}
    elif "enum" in schema and isinstance(schema["enum"], list):
        out = {_type_of(v) for v in schema["enum"]}
    t = schema.get("type")
    if t is not None:
        declared = {t} if isinstance(t, str) else set(t)
        if "number" in declared:
            declared.add("integer")
        out = out & declared
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            union: set[str] = set()
            for sub in schema[key]:
                union |= _value_types(sub, root, seen)
            out = out & union
    return out


def _const_values(schema: Any) -> list[Any] | None:
    if isinstance(schema, Mapping):
        if "const" in schema:
            return [schema["const"]]
        if isinstance(schema.get("enum"), list):
            return list(schema["enum"])
    return None


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return bool(a == b)
    return _json_literal(a) == _json_literal(b)


def _disjoint(a: Any, b: Any, root: Mapping[str, Any], depth: int = 0) -> bool:
    """Whether no instance can be valid for both schemas (a sound, incomplete test)."""
    if depth > 8:
        return False
    if isinstance(a, Mapping) and "$ref" in a:
        return _disjoint(_resolve(root, str(a["$ref"])), b, root, depth + 1)
    if isinstance(b, Mapping) and "$ref" in b:
        return _disjoint(a, _resolve(root, str(b["$ref"])), root, depth + 1)
    ta, tb = _value_types(a, root), _value_types(b, root)
    if not (ta & tb):
        return True
    ca, cb = _const_values(a), _const_values(b)
    if ca is not None and cb is not None:
        return not any(_same_value(x, y) for x in ca for y in cb)
    if ta <= {"object"} and tb <= {"object"} and isinstance(a, Mapping) and isinstance(b, Mapping):
        pa, pb = a.get("properties") or {}, b.get("properties") or {}
        both = set(a.get("required") or ()) & set(b.get("required") or ())
        for key in both:
            if key in pa and key in pb and _disjoint(pa[key], pb[key], root, depth + 1):
                return True
    return False


def _resolve(root: Mapping[str, Any], ref: str) -> Any:
    """The subschema an internal ``$ref`` (a JSON pointer fragment) names."""
    if not ref.startswith("#"):
        raise UnsupportedSchemaError("external $ref", ref)
    node: Any = root
    path = ref[1:]
    if path and not path.startswith("/"):
        raise UnsupportedSchemaError("$ref to an anchor", ref)
    for raw in path.split("/")[1:] if path else []:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise UnsupportedSchemaError("unresolvable $ref", ref)
    return node


class _Compiler:
    def __init__(self, root: Any) -> None:
        self.root = root
        self.refs: dict[str, Ref] = {}

    def compile(self, schema: Any, path: str = "#") -> Node | None:
        """A node for ``schema`` or ``None`` when no text can be generated for it."""
        if schema is True:
            return self._any()
        if schema is False:
            return None
        if not isinstance(schema, Mapping):
            raise UnsupportedSchemaError("non-object schema", f"{schema!r} at {path}")
        for key in UNSUPPORTED:
            if key in schema:
                raise UnsupportedSchemaError(key, f"at {path}")
        if "allOf" in schema:
            subs = schema["allOf"]
            rest = {k: v for k, v in schema.items() if k != "allOf" and k not in ANNOTATIONS}
            if not isinstance(subs, list) or len(subs) != 1 or rest:
                raise UnsupportedSchemaError("allOf", f"only a single-schema allOf, at {path}")
            return self.compile(subs[0], path + "/allOf/0")
        if "$ref" in schema:
            others = [k for k in schema if k != "$ref" and k not in ANNOTATIONS]
            if others:
                raise UnsupportedSchemaError(
                    "$ref with sibling keywords", f"{', '.join(sorted(others))} at {path}"
                )
            return self._ref(str(schema["$ref"]))
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return self._alternatives(schema, key, path)
        if "const" in schema or "enum" in schema:
            return self._enum(schema, path)
        types = _inferred_types(schema)
        nodes = []
        for t in types:
            if t not in _TYPES:
                raise UnsupportedSchemaError("type", f"unknown type {t!r} at {path}")
            if t == "number" and "integer" in types:
                continue
            node = self._typed(t, schema, path)
            if node is not None:
                nodes.append(node)
        return self._union(nodes)

    def _any(self) -> Node:
        return Leaf(
            key="any",
            regex=f'("{_STRING_UNIT}{{0,{DEFAULT_MAX_STRING}}}"|'
            f"{int_range_regex(-_UNBOUNDED, _UNBOUNDED)}|true|false|null)",
        )

    def _ref(self, ref: str) -> Node | None:
        hit = self.refs.get(ref)
        if hit is not None:
            return hit
        node = Ref(ref)
        self.refs[ref] = node
        node.target = self.compile(_resolve(self.root, ref), ref)
        return node

    def _alternatives(self, schema: Mapping[str, Any], key: str, path: str) -> Node | None:
        subs = schema[key]
        if not isinstance(subs, list) or not subs:
            raise UnsupportedSchemaError(key, f"must be a non-empty list, at {path}")
        rest = {k: v for k, v in schema.items() if k != key and k not in ANNOTATIONS}
        if rest:
            raise UnsupportedSchemaError(
                f"{key} with sibling keywords", f"{', '.join(sorted(rest))} at {path}"
            )
        if key == "oneOf":
            for i in range(len(subs)):
                for j in range(i + 1, len(subs)):
                    if not _disjoint(subs[i], subs[j], self.root):
                        raise UnsupportedSchemaError(
                            "oneOf with overlapping alternatives",
                            f"alternatives {i} and {j} at {path} may both match one value",
                        )
        nodes = [self.compile(s, f"{path}/{key}/{i}") for i, s in enumerate(subs)]
        return self._union([n for n in nodes if n is not None])

    def _union(self, nodes: list[Node]) -> Node | None:
        if not nodes:
            return None
        if len(nodes) == 1:
            return nodes[0]
        if all(isinstance(n, Leaf) for n in nodes):
            leaves = [n for n in nodes if isinstance(n, Leaf)]
            key = "|".join(n.key for n in leaves)
            if all(n.regex is not None for n in leaves):
                return Leaf(key, regex="(" + "|".join(f"({n.regex})" for n in leaves) + ")")
            return Leaf(key, parts=("or", *[n.regex or n.parts for n in leaves]))
        return Alt(nodes)

    def _enum(self, schema: Mapping[str, Any], path: str) -> Node | None:
        values = [schema["const"]] if "const" in schema else schema["enum"]
        if not isinstance(values, list):
            raise UnsupportedSchemaError("enum", f"must be a list, at {path}")
        extra = [k for k in schema if k not in ("const", "enum", "type") and k not in ANNOTATIONS]
        if extra:
            raise UnsupportedSchemaError(
                "enum/const with other keywords", f"{', '.join(sorted(extra))} at {path}"
            )
        if "type" in schema:
            t = schema["type"]
            types = [t] if isinstance(t, str) else list(t)
            values = [v for v in values if _type_matches(v, types)]
        if "const" in schema and "enum" in schema:
            values = [v for v in values if any(_same_value(v, e) for e in schema["enum"])]
        texts = list(dict.fromkeys(_json_literal(v) for v in values))
        if not texts:
            return None
        return Leaf("enum:" + "|".join(texts), regex="(" + "|".join(escape(t) for t in texts) + ")")

    def _typed(self, t: str, schema: Mapping[str, Any], path: str) -> Node | None:
        if t == "null":
            return Leaf("null", regex="null")
        if t == "boolean":
            return Leaf("boolean", regex="(true|false)")
        if t in ("integer", "number"):
            regex = _number_regex(schema, integer=t == "integer")
            return None if regex is None else Leaf(regex, regex=regex)
        if t == "string":
            return self._string(schema, path)
        if t == "array":
            return self._array(schema, path)
        return self._object(schema, path)

    def _string(self, schema: Mapping[str, Any], path: str) -> Node | None:
        lo = int(schema.get("minLength", 0))
        hi_raw = schema.get("maxLength")
        hi = int(hi_raw) if hi_raw is not None else max(DEFAULT_MAX_STRING, lo)
        if lo > hi:
            return None
        pattern, fmt = schema.get("pattern"), schema.get("format")
        if fmt is not None and fmt not in FORMATS:
            raise UnsupportedSchemaError("format", f"{fmt!r} at {path}")
        if pattern is None and fmt is None:
            regex = f'"{_STRING_UNIT}{{{lo},{hi}}}"'
            return Leaf(regex, regex=regex)
        content: list[Any] = [f"{_SAFE_CHAR}{{{lo},{hi}}}"]
        if fmt is not None:
            content.append(FORMATS[fmt])
        if pattern is not None:
            content.append(_search_pattern(str(pattern), path))
        parts = ("cat", '"', ("and", *content), '"')
        try:
            fsm = _build_fsm(parts)
        except Exception as exc:  # noqa: BLE001 - interegular raises many exception types
            raise UnsupportedSchemaError("pattern", f"{pattern!r} at {path}: {exc}") from exc
        if fsm.empty():
            return None
        return Leaf(f"string:{lo}:{hi}:{fmt}:{pattern}", parts=parts)

    def _array(self, schema: Mapping[str, Any], path: str) -> Node | None:
        items = schema.get("items", True)
        if isinstance(items, list):
            raise UnsupportedSchemaError("items (array form)", f"use prefixItems, at {path}")
        if schema.get("uniqueItems") is True:
            raise UnsupportedSchemaError("uniqueItems", f"at {path}")
        prefix_schemas = schema.get("prefixItems") or []
        lo = int(schema.get("minItems", 0))
        hi_raw = schema.get("maxItems")
        prefix: list[Node] = []
        for i, sub in enumerate(prefix_schemas):
            node = self.compile(sub, f"{path}/prefixItems/{i}")
            if node is None:
                break  # no item can stand at position i
            prefix.append(node)
        item = self.compile(items, f"{path}/items") if items is not False else None
        reachable = len(prefix) if len(prefix) < len(prefix_schemas) or item is None else None
        hi = int(hi_raw) if hi_raw is not None else max(DEFAULT_MAX_ITEMS, lo, len(prefix))
        if reachable is not None:
            hi = min(hi, reachable)
        if lo > hi:
            return None
        return Arr(prefix, item, lo, hi)

    def _object(self, schema: Mapping[str, Any], path: str) -> Node | None:
        props = schema.get("properties") or {}
        required = list(schema.get("required") or [])
        additional = schema.get("additionalProperties", True)
        out: list[tuple[str, Node, bool]] = []
        for key, sub in props.items():
            node = self.compile(sub, f"{path}/properties/{key}")
            if node is None:
                if key in required:
                    return None
                continue
            out.append((key, node, key in required))
        for key in required:
            if key in props:
                continue
            if additional is False:
                return None
            node = self.compile(additional, f"{path}/additionalProperties")
            if node is None:
                return None
            out.append((key, node, True))
        return Obj(out)


def _search_pattern(pattern: str, path: str) -> str:
    """A full-match regex equivalent to JSON schema's (unanchored, search) ``pattern``."""
    body = pattern
    start = body.startswith("^")
    if start:
        body = body[1:]
    end = body.endswith("$") and not body.endswith("\\$")
    if end:
        body = body[:-1]
    if "^" in body.replace("[^", "").replace("\\^", "") or "(?" in body:
        raise UnsupportedSchemaError("pattern", f"anchors inside or look-around in {pattern!r}")
    body = f"({body})"
    if not start:
        body = f"{_SAFE_CHAR}*" + body
    if not end:
        body = body + f"{_SAFE_CHAR}*"
    return body


# ----------------------------------------------------------------------------- lengths
def _min_chars(node: Node, memo: dict[int, float], leaf_len: Any) -> float:
    if isinstance(node, Lit):
        return len(node.text)
    if isinstance(node, Leaf):
        return float(leaf_len(node))
    if isinstance(node, Ref):
        return memo.get(id(node), math.inf)
    if isinstance(node, Alt):
        return min(_min_chars(o, memo, leaf_len) for o in node.options)
    if isinstance(node, Obj):
        total = 2.0
        first = True
        for key, value, req in node.props:
            if req:
                total += (0 if first else len(ITEM_SEP)) + len(_json_literal(key)) + len(KEY_SEP)
                total += _min_chars(value, memo, leaf_len)
                first = False
        return total
    assert isinstance(node, Arr)
    total = 2.0
    for k in range(node.lo):
        item = node.item_at(k)
        if item is None:
            return math.inf
        total += (len(ITEM_SEP) if k else 0) + _min_chars(item, memo, leaf_len)
    return total


def _walk(node: Node, seen: set[int]) -> Iterable[Node]:
    if id(node) in seen:
        return
    seen.add(id(node))
    yield node
    children: Sequence[Node] = ()
    if isinstance(node, Ref) and node.target is not None:
        children = [node.target]
    elif isinstance(node, Alt):
        children = node.options
    elif isinstance(node, Obj):
        children = [v for _, v, _ in node.props]
    elif isinstance(node, Arr):
        children = [*node.prefix, *([node.item] if node.item is not None else [])]
    for child in children:
        yield from _walk(child, seen)


def compile_schema(schema: Any, leaf_len: Any = None) -> CompiledSchema:
    """Compile ``schema`` (raises :class:`UnsupportedSchemaError`).

    Args:
        schema: A JSON schema (dict or bool).
        leaf_len: ``leaf_len(leaf) -> int`` minimal text length of a leaf; defaults to a
            search over the leaf's automaton.
    """
    compiler = _Compiler(schema)
    root = compiler.compile(schema)
    if root is None:
        raise UnsupportedSchemaError("unsatisfiable schema", "no JSON value can be generated")
    measure = leaf_len or _leaf_min_len
    nodes = list(_walk(root, set()))
    memo: dict[int, float] = {}
    refs = [n for n in nodes if isinstance(n, Ref)]
    for _ in range(len(refs) + 2):  # shortest lengths through recursion: a fixpoint
        changed = False
        for r in refs:
            v = math.inf if r.target is None else _min_chars(r.target, memo, measure)
            if v < memo.get(id(r), math.inf):
                memo[id(r)] = v
                changed = True
        if not changed:
            break
    out = {id(n): _min_chars(n, memo, measure) for n in nodes}
    if not math.isfinite(out[id(root)]):
        raise UnsupportedSchemaError("unsatisfiable schema", "no finite JSON value (recursion)")
    return CompiledSchema(root, out)


def _leaf_min_len(leaf: Leaf) -> int:
    """Shortest text of a leaf's automaton (breadth-first search)."""
    fsm = leaf.fsm()
    frontier = {fsm.initial}
    seen = set(frontier)
    for n in range(10_000):
        if frontier & set(fsm.finals):
            return n
        nxt = set()
        for s in frontier:
            for t in fsm.map.get(s, {}).values():
                if t not in seen:
                    seen.add(t)
                    nxt.add(t)
        if not nxt:
            break
        frontier = nxt
    return 10_000
