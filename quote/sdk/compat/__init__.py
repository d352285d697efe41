# SPDX-License-Identifier: Apache-2.0
"""Compatibility layer for mods written for the original engine's SDK (``quote_mod_sdk``).

The top-level package ``quote_mod_sdk`` re-exports this module, so such mods
run unchanged: the original's ``@mod`` forms, event field names, builder
arguments and action field names are thin adapters over :mod:`quote.sdk`.
The mapping table is in ``docs/guides/migrating.md``. Pure Python: importable
without MAX.
"""

from quote.sdk.compat.actions import (
    AdjustedLogits,
    AdjustedPrefill,
    Backtrack,
    EmitError,
    ForceOutput,
    ForceTokens,
    ModAction,
    Noop,
    ToolCalls,
    parse_tool_calls,
    to_quote_action,
)
from quote.sdk.compat.builder import ActionBuilder, for_event
from quote.sdk.compat.events import (
    Added,
    AddedEvent,
    ContextInfo,
    ForwardPass,
    ForwardPassEvent,
    LegacyLogits,
    ModEvent,
    Prefilled,
    PrefilledEvent,
    Sampled,
    SampledEvent,
    legacy_event,
)
from quote.sdk.compat.helpers import (
    get_conversation,
    get_schemas,
    serialize_mod,
    tokenize,
    tool_call_pairs,
)
from quote.sdk.compat.mod import (
    LegacyModDefinition,
    ModCallable,
    QuoteModSDKDeprecationWarning,
    adapt_callable,
    create_mod,
    mod,
    validate_action,
)
from quote.sdk.errors import InvalidActionError

__all__ = [
    "ActionBuilder",
    "Added",
    "AddedEvent",
    "AdjustedLogits",
    "AdjustedPrefill",
    "Backtrack",
    "ContextInfo",
    "EmitError",
    "ForceOutput",
    "ForceTokens",
    "ForwardPass",
    "ForwardPassEvent",
    "InvalidActionError",
    "LegacyLogits",
    "LegacyModDefinition",
    "ModAction",
    "ModCallable",
    "ModEvent",
    "Noop",
    "Prefilled",
    "PrefilledEvent",
    "QuoteModSDKDeprecationWarning",
    "Sampled",
    "SampledEvent",
    "ToolCalls",
    "adapt_callable",
    "create_mod",
    "for_event",
    "get_conversation",
    "get_schemas",
    "legacy_event",
    "mod",
    "parse_tool_calls",
    "serialize_mod",
    "to_quote_action",
    "tokenize",
    "tool_call_pairs",
    "validate_action",
]
