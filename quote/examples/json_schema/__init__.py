# SPDX-License-Identifier: Apache-2.0
"""Structured output: ``response_format`` with the ``openai`` client, and a ``JsonSchema`` mod.

``quote serve --mod quote.examples.json_schema:verdict`` serves the mod as ``"<served>/verdict"``.
"""

from .mod import VERDICT, verdict

__all__ = ["VERDICT", "verdict"]
