# SPDX-License-Identifier: Apache-2.0
"""``quote_mod_sdk.actions``: the original's builder module (alias of :mod:`quote.sdk.compat.builder`)."""

from quote.sdk.compat.builder import ActionBuilder, for_event
from quote.sdk.errors import InvalidActionError

__all__ = ["ActionBuilder", "InvalidActionError", "for_event"]
