# SPDX-License-Identifier: Apache-2.0
"""The Quote mod-authoring SDK (pure Python: importable without MAX).

Events (:mod:`quote.sdk.events`), actions (:mod:`quote.sdk.actions`), the
:class:`ActionBuilder`, the ``@mod`` decorator and class-based :class:`Mod`,
and per-request helpers (:func:`get_conversation`, :func:`mod_log`).
"""

from quote.sdk.actions import (
    LEGAL_EVENTS,
    Action,
    AdjustedLogits,
    AdjustedPrefill,
    Backtrack,
    EmitError,
    ForceOutput,
    ForceTokens,
    Noop,
    ToolCall,
    ToolCalls,
    is_legal,
)
from quote.sdk.builder import ActionBuilder
from quote.sdk.context import Conversation, RequestInfo, get_conversation, get_request, mod_log
from quote.sdk.errors import InvalidActionError, ModError, QuoteSDKError
from quote.sdk.events import Added, Event, ForwardPass, Prefilled, Sampled
from quote.sdk.mod import DEFAULT_HOLD_BACK, Mod, ModDefinition, as_definition, mod
from quote.sdk.tokenize import tokenize

__all__ = [
    "DEFAULT_HOLD_BACK",
    "LEGAL_EVENTS",
    "Action",
    "ActionBuilder",
    "Added",
    "AdjustedLogits",
    "AdjustedPrefill",
    "Backtrack",
    "Conversation",
    "EmitError",
    "Event",
    "ForceOutput",
    "ForceTokens",
    "ForwardPass",
    "InvalidActionError",
    "Mod",
    "ModDefinition",
    "ModError",
    "Noop",
    "Prefilled",
    "QuoteSDKError",
    "RequestInfo",
    "Sampled",
    "ToolCall",
    "ToolCalls",
    "as_definition",
    "get_conversation",
    "get_request",
    "is_legal",
    "mod",
    "mod_log",
    "tokenize",
]
