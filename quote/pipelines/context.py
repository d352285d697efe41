# SPDX-License-Identifier: Apache-2.0
"""``QuoteContext`` and ``QuoteTokenizer``: carry a request's Quote options to the worker.

In ``max serve`` the API process builds each request's context with the
architecture's tokenizer and sends it to the model worker (msgspec over ZMQ).
Quote's route handlers put the request's options (mod names, args, stream, trace,
conversation, result ticket) in :data:`pending_options` (a context variable);
:class:`QuoteTokenizer` copies them into the declared ``quote_options`` field of a
:class:`QuoteContext`, which the worker's ``QuotePipeline`` reads.

Checkpoints with a vision tower (``Gemma3ForConditionalGeneration``) use
:class:`QuoteVisionTokenizer` and :class:`QuoteVisionContext`: MAX's text-and-vision
tokenizer (the checkpoint's own processor expands each image into its soft tokens and
preprocesses the pixels), with the same options attached.
"""

from __future__ import annotations

import contextvars
import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from max.pipelines.context import TextAndVisionContext, TextContext
from max.pipelines.lib import TextAndVisionTokenizer, TextTokenizer

__all__ = [
    "QuoteContext",
    "QuoteTokenizer",
    "QuoteVisionContext",
    "QuoteVisionTokenizer",
    "pending_options",
]

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
        _strip_quote_options(request)
        context: QuoteContext = _with_options(await super().new_context(request), QuoteContext)
        return context


@dataclass
class QuoteVisionContext(TextAndVisionContext):
    """A ``TextAndVisionContext`` (prompt images included) with Quote's options attached."""

    quote_options: str | None = None


class QuoteVisionTokenizer(TextAndVisionTokenizer):
    """MAX's ``TextAndVisionTokenizer`` that returns :class:`QuoteVisionContext` objects.

    One image per request: MAX 26.7's tokenizer keeps only the first image's pixels of the
    processor's output, so a second image would fail; MAX's server answers a request with
    more images than :attr:`max_images_per_request` with a 400 before fetching any.
    """

    max_images_per_request = 1

    async def new_context(self, request: Any) -> QuoteVisionContext:  # type: ignore[override]
        """Build the context (images included) as MAX does, then attach the Quote options."""
        _strip_quote_options(request)
        base = await super().new_context(request)
        context: QuoteVisionContext = _with_options(base, QuoteVisionContext)
        return context


def _strip_quote_options(request: Any) -> None:
    """Drop Quote's key from the chat template options (it is not a template variable)."""
    options = request.chat_template_options
    if isinstance(options, dict) and "quote" in options:
        request.chat_template_options = {k: v for k, v in options.items() if k != "quote"}


def _with_options(base: Any, cls: type[Any]) -> Any:
    """``base`` rebuilt as ``cls`` with the pending Quote options (JSON) attached."""
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.init}
    opts = pending_options.get()
    fields["quote_options"] = json.dumps(opts) if opts else None
    return cls(**fields)
