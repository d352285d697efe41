# SPDX-License-Identifier: Apache-2.0
"""A tau2-style airline customer-service agent built with the Flow engine (see README.md).

``quote serve --mod quote.examples.airline_agent:AGENT`` serves it as ``airline_agent``.
"""

from .agent import AGENT, FLOW, TOOLS

__all__ = ["AGENT", "FLOW", "TOOLS"]
