# SPDX-License-Identifier: Apache-2.0
"""Structured output: ``response_format`` with the ``openai`` client, and a ``JsonSchema`` mod."""
