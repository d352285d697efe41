# SPDX-License-Identifier: Apache-2.0
"""Structured strategies on llguidance: a JSON value valid against a schema, a Lark grammar."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from quote.sdk.grammar import GrammarError, GrammarSpec
from quote.sdk.strategies.llg import GrammarStrategy

__all__ = ["Grammar", "JsonSchema"]


@dataclass(frozen=True, init=False)
class JsonSchema(GrammarStrategy):
    """A JSON value valid against ``schema``; the value is the parsed JSON.

    The JSON is compact (no whitespace outside strings) unless the schema says otherwise
    in llguidance's ``"x-guidance"`` options. The supported keywords are llguidance's
    (``properties``, ``required``, ``additionalProperties``, ``items``, ``prefixItems``,
    ``anyOf``/``oneOf``, ``$ref``/``$defs``, ``enum``/``const``, string ``pattern``,
    ``format`` and lengths, numeric bounds, array lengths...); an unsupported or invalid
    schema raises :class:`~quote.sdk.grammar.GrammarError` when the strategy is built,
    naming the keyword.

    Args:
        schema: The JSON schema: a mapping, ``True``/``False``, or its JSON text.
    """

    schema: Any

    def __init__(self, schema: Mapping[str, Any] | bool | str) -> None:
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except ValueError as exc:
                raise GrammarError(f"JsonSchema: the schema is not valid JSON: {exc}") from exc
        if isinstance(schema, Mapping):
            schema = dict(schema)
        if not isinstance(schema, dict | bool):
            raise GrammarError(
                f"JsonSchema: a schema must be an object or a boolean, not {type(schema).__name__}"
            )
        object.__setattr__(self, "schema", schema)
        self.check()

    def __hash__(self) -> int:
        return hash(json.dumps(self.schema, sort_keys=True))

    def describe(self) -> str:
        text = json.dumps(self.schema)
        return f"JsonSchema({text if len(text) <= 140 else text[:137] + '...'})"

    def spec(self) -> GrammarSpec:
        return GrammarSpec.json_schema(self.schema)

    def parse(self, text: str) -> Any:
        """The parsed JSON value (``None`` while the text is not a whole JSON value)."""
        try:
            return json.loads(text)
        except ValueError:
            return None


@dataclass(frozen=True)
class Grammar(GrammarStrategy):
    """Text of a Lark grammar (llguidance's Lark dialect); the value is the text.

    The grammar starts at its ``start`` rule. llguidance's extensions work: ``%json {...}``
    embeds a JSON schema, ``A & B`` / ``~A`` combine terminals, ``/regex/`` terminals use
    Rust ``regex`` syntax. An invalid grammar raises :class:`~quote.sdk.grammar.GrammarError`
    when the strategy is built, with llguidance's message (line and column).

    Attributes:
        source: The Lark grammar text.
    """

    source: str

    def __post_init__(self) -> None:
        if not isinstance(self.source, str) or not self.source.strip():
            raise GrammarError("Grammar: the source must be a non-empty Lark grammar")
        self.check()

    def spec(self) -> GrammarSpec:
        return GrammarSpec("lark", self.source)
