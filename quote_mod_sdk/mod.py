# SPDX-License-Identifier: Apache-2.0
"""``quote_mod_sdk.mod``: the original's decorator module (alias of :mod:`quote.sdk.compat.mod`)."""

from quote.sdk.compat.actions import to_quote_action
from quote.sdk.compat.mod import ModCallable, create_mod, mod, validate_action
from quote.sdk.errors import InvalidActionError

__all__ = [
    "InvalidActionError",
    "ModCallable",
    "create_mod",
    "mod",
    "to_quote_action",
    "validate_action",
]
