# SPDX-License-Identifier: Apache-2.0
"""``quote_mod_sdk.tokenizer``: the original's ``tokenize`` (alias of :mod:`quote.sdk.compat.helpers`)."""

from quote.sdk.compat.helpers import tokenize

__all__ = ["tokenize"]
