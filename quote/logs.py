# SPDX-License-Identifier: Apache-2.0
"""The one place that configures Quote's logging.

Library code only calls ``logging.getLogger(__name__)``. The ``quote`` CLI and the
server processes (which import :mod:`quote.custom_arch`) call :func:`configure_from_env`,
which sets the level of the ``quote`` logger from ``QUOTE_LOG_LEVEL`` (default
``WARNING``; ``quote serve --log-level`` sets it for the server). At INFO Quote logs
no keys and no prompt text.
"""

from __future__ import annotations

import logging
import os

__all__ = ["configure_from_env", "level_from_env"]


def level_from_env(default: str = "WARNING") -> int:
    """The level named by ``QUOTE_LOG_LEVEL`` (``default`` when unset or unknown)."""
    name = os.environ.get("QUOTE_LOG_LEVEL", default).upper()
    level = logging.getLevelName(name)
    return level if isinstance(level, int) else logging.getLevelName(default.upper())


def configure_from_env() -> None:
    """Set the ``quote`` logger's level from ``QUOTE_LOG_LEVEL`` (idempotent)."""
    logger = logging.getLogger("quote")
    logger.setLevel(level_from_env())
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
