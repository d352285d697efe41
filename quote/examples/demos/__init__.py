# SPDX-License-Identifier: Apache-2.0
"""One small mod per action (see README.md).

Every demo is importable from here, e.g. ``quote serve --mod quote.examples.demos:greeting``
(served as ``"<served>/greeting"``).
"""

from .mods import (
    DEMOS,
    greeting,
    json_report,
    no_letter_e,
    replace_phrase,
    rewrite_prompt,
    stop_early,
    weather_tool,
)

__all__ = [
    "DEMOS",
    "greeting",
    "json_report",
    "no_letter_e",
    "replace_phrase",
    "rewrite_prompt",
    "stop_early",
    "weather_tool",
]
