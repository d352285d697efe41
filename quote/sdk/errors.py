# SPDX-License-Identifier: Apache-2.0
"""Exceptions raised by the SDK."""

from __future__ import annotations

__all__ = ["InvalidActionError", "ModError", "QuoteSDKError"]


class QuoteSDKError(Exception):
    """Base class of every SDK error."""


class InvalidActionError(QuoteSDKError, ValueError):
    """An action is malformed or not legal for the current event."""


class ModError(QuoteSDKError, RuntimeError):
    """A mod failed (raised, returned garbage or asked for something impossible)."""
