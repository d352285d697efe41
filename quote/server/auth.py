# SPDX-License-Identifier: Apache-2.0
"""The admin key: ``Authorization: Bearer $QUOTE_ADMIN_KEY``, compared in constant time.

Used by the mod registry's writes (:mod:`quote.server.admin`) and by the HTTP guard for
MAX's state-changing routes (:mod:`quote.server.guard`). Without ``QUOTE_ADMIN_KEY`` set
every such request is refused (403); the key is read per request and never logged.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping

from quote.server.options import QuoteHTTPError

__all__ = ["ADMIN_KEY_ENV", "require_admin"]

ADMIN_KEY_ENV = "QUOTE_ADMIN_KEY"


def require_admin(
    headers: Mapping[str, str],
    *,
    disabled_message: str,
    disabled_code: str,
) -> None:
    """Raise :class:`QuoteHTTPError` unless ``headers`` carry the admin key.

    403 (``disabled_code``) when no key is configured, 401 without a bearer header,
    403 ``invalid_api_key`` with a wrong key. ``headers`` must be case-insensitive
    (Starlette's ``Headers``) or use lower-case names.
    """
    key = os.environ.get(ADMIN_KEY_ENV, "")
    if not key:
        raise QuoteHTTPError(403, disabled_message, "permission_error", disabled_code)
    header = headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        raise QuoteHTTPError(
            401, "missing 'Authorization: Bearer <QUOTE_ADMIN_KEY>'", "authentication_error"
        )
    given = header[7:].strip().encode()
    if not hmac.compare_digest(given, key.encode()):
        raise QuoteHTTPError(403, "invalid admin key", "permission_error", "invalid_api_key")
