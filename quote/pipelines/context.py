# SPDX-License-Identifier: Apache-2.0
"""``QuoteContext`` and ``QuoteTokenizer``: carry a request's Quote options to the worker.

In ``max serve`` the API process builds each request's context with the
architecture's tokenizer and sends it to the model worker (msgspec over ZMQ).
Quote's route handlers put the request's options (mod names, args, stream, trace,
conversation, result ticket) in :data:`pending_options` (a context variable);
:class:`QuoteTokenizer` copies them into the declared ``quote_options`` field of a
:class:`QuoteContext`, which the worker's ``QuotePipeline`` reads.
"""

from __future__ import annotations

import contextvars
import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from max.pipelines.context import TextContext
from max.pipelines.lib import TextTokenizer

__all__ = ["QuoteContext", "QuoteTokenizer", "pending_options"]

pending_options: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "quote_pending_options", default=None
)
"""Options of the HTTP request being tokenized (set by Quote's routes)."""


@dataclass
class QuoteContext(TextContext):
    """A ``TextContext`` with Quote's per-request options (JSON) attached."""

    quote_options: str | None = None


class QuoteTokenizer(TextTokenizer):
    """MAX's ``TextTokenizer`` that returns :class:`QuoteContext` objects."""

    async def new_context(self, request: Any) -> QuoteContext:  # type: ignore[override]
        """Build the context as MAX does, then attach the pending Quote options."""
        options = request.chat_template_options
        if isinstance(options, dict) and "quote" in options:
            request.chat_template_options = {k: v for k, v in options.items() if k != "quote"}
        base = await super().new_context(request)
        fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.init}
        opts = pending_options.get()
        fields["quote_options"] = json.dumps(opts) if opts else None
        return QuoteContext(**fields)
