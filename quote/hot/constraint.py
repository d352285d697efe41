# SPDX-License-Identifier: Apache-2.0
"""A request's built-in structured-output constraint (``response_format``, ``tool_choice``).

The API process checks the client's schema and sends a *constraint spec* with the
request (see ``quote.server.structured``)::

    {"schema": {...}, "tools": ["name", ...] | null}

``schema`` is the JSON schema the whole completion must match; with ``tools`` the
completion is a tool call ``{"name": ..., "arguments": {...}}`` that the engine
returns as ``tool_calls``. The step keeps one :class:`Constraint` per request: it
masks every sample, forces the grammar's fast-forward tokens, checks every token
that enters (a mod's forced tokens included) and rolls back on a backtrack.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quote.sdk.grammar import GrammarError, GrammarSpec, Matcher, compile_grammar, llg_tokenizer

__all__ = ["Constraint", "ORIGIN"]

ORIGIN = "response_format"
"""How the engine names the built-in constraint in errors and traces."""


@dataclass
class Constraint:
    """One request's matcher and what its completion becomes at the end."""

    matcher: Matcher
    tools: tuple[str, ...] | None = None
    consumed: list[int] = field(default_factory=list)

    @classmethod
    def from_spec(
        cls, spec: dict[str, Any], tokenizer: Any, eos_ids: Iterable[int], vocab_size: int
    ) -> Constraint:
        """Compile ``spec`` for this tokenizer (:class:`GrammarError` if it cannot be)."""
        lltok = llg_tokenizer(tokenizer, eos_ids, n_vocab=vocab_size)
        schema = spec.get("schema")
        if schema is None:
            raise GrammarError("a response_format constraint needs a schema")
        spec_ = GrammarSpec.json_schema(schema, strict=bool(spec.get("strict")))
        matcher = Matcher(compile_grammar(spec_, lltok), lltok)
        tools = spec.get("tools")
        return cls(matcher, tuple(tools) if tools else None)

    def admit(self, tokens: Sequence[int]) -> int:
        """Consume the longest prefix of ``tokens`` the grammar allows; return its length."""
        n = self.matcher.advance(tokens)
        if n:
            self.consumed.extend(tokens[:n])
        return n

    def rollback(self, n: int) -> None:
        """Forget the last ``n`` tokens that entered (a backtrack)."""
        n = min(n, len(self.consumed))
        if n:
            self.matcher.rollback(n)
            del self.consumed[len(self.consumed) - n :]

    def restart(self) -> None:
        """Forget every token (the completion is replaced)."""
        self.rollback(len(self.consumed))

    def mask(self, width: int) -> np.ndarray:
        """The packed allow-mask of the next token."""
        return self.matcher.mask(width)

    def forced(self) -> list[int]:
        """Tokens the grammar forces next (empty when there is a choice)."""
        return self.matcher.forced()

    @property
    def done(self) -> bool:
        """Whether the completion is a complete value and nothing may follow."""
        return self.matcher.done

    def tool_calls(self, text: str) -> list[dict[str, Any]]:
        """The tool call a finished tool-constrained completion encodes."""
        call = json.loads(text)
        return [{"id": None, "name": str(call["name"]), "arguments": call["arguments"]}]
