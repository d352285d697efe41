# SPDX-License-Identifier: Apache-2.0
"""``verdict``: a mod whose completion is JSON valid against a schema, with ``JsonSchema``.

Clients do not need a mod for JSON: ``quote serve`` enforces ``response_format`` on any
request (see ``README.md``). This mod shows the same constraint from inside a mod, where
your own code picks the schema: the request's ``args["schema"]`` if given, else
:data:`VERDICT`. An invalid schema fails the request with an error naming the keyword.
"""

from __future__ import annotations

from typing import Any

from quote.sdk import Action, ActionBuilder, Event, Mod, ModDefinition, RequestInfo
from quote.sdk.strategies import JsonSchema, constrain

__all__ = ["VERDICT", "verdict"]

VERDICT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answer": {"enum": ["yes", "no", "unsure"]},
        "confidence": {"type": "integer", "minimum": 0, "maximum": 100},
        "reason": {"type": "string", "maxLength": 40},
    },
    "required": ["answer", "confidence", "reason"],
    "additionalProperties": False,
}
"""The default schema: a yes/no verdict with a confidence and a short reason."""

_DEFAULT = constrain(JsonSchema(VERDICT), hold_back=0)


class Verdict(Mod):
    """The completion is one JSON value valid against the request's schema (or VERDICT)."""

    name = "verdict"
    hold_back = 0  # never takes text back: streamed tokens go out at once

    def on_start(self, request: RequestInfo) -> None:
        """Build the constraint of this request (per-request schemas are compiled once each)."""
        schema = request.mod_args.get("schema")
        definition = _DEFAULT if schema is None else constrain(JsonSchema(schema), hold_back=0)
        self.inner = definition.instantiate()

    def handle(self, event: Event, actions: ActionBuilder, tokenizer: Any) -> Action | None:
        """Delegate to the ``constrain`` mod of the schema."""
        return self.inner.handle(event, actions, tokenizer)


verdict = ModDefinition("verdict", Verdict, hold_back=0)
"""The mod, served as ``"<served>/verdict"``."""
