# SPDX-License-Identifier: Apache-2.0
"""``quote_mod_sdk.serialization``: the original's ``serialize_mod`` (see :mod:`quote.sdk.compat.helpers`)."""

from quote.sdk.compat.helpers import serialize_mod

__all__ = ["serialize_mod"]
