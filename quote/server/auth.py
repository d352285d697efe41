# SPDX-License-Identifier: Apache-2.0
"""Who is calling: the admin key, a user's API key, or nobody in particular.

The admin key (``Authorization: Bearer $QUOTE_ADMIN_KEY``, compared in constant time) guards
MAX's state-changing routes (:mod:`quote.server.guard`), ``/v1/keys`` and the shared mods;
without ``QUOTE_ADMIN_KEY`` set every such request is refused (403). User keys
(:mod:`quote.server.keys`) own a namespace of mods. Keys are read per request and never
logged. :func:`identify` also takes the original engine's ``X-User-Api-Key`` header.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from quote.server.keys import KeyStore
from quote.server.options import QuoteHTTPError

__all__ = ["ADMIN_KEY_ENV", "Caller", "credential", "identify", "require_admin", "require_writer"]

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


@dataclass(frozen=True)
class Caller:
    """The identity a request's credential proves.

    ``kind`` is ``"admin"``, ``"user"`` (``owner`` is the key's id) or ``"anonymous"``;
    ``presented`` tells whether an unrecognised credential came with an anonymous request.
    """

    kind: Literal["admin", "user", "anonymous"]
    owner: str | None = None
    presented: bool = False


def credential(headers: Mapping[str, str]) -> str | None:
    """The key a request presents: ``Authorization: Bearer`` or ``X-User-Api-Key``."""
    header = headers.get("authorization", "")
    if header.lower().startswith("bearer ") and header[7:].strip():
        return header[7:].strip()
    other = headers.get("x-user-api-key", "").strip()
    return other or None


def identify(headers: Mapping[str, str], keys: KeyStore, fallback: str | None = None) -> Caller:
    """Who presents ``headers`` (or ``fallback``, the original's ``user_api_key`` body field).

    An unknown credential is anonymous (OpenAI clients always send some key); routes that
    need a key refuse it with :func:`require_writer`.
    """
    given = credential(headers) or fallback
    if given is None:
        return Caller("anonymous")
    admin = os.environ.get(ADMIN_KEY_ENV, "")
    if admin and hmac.compare_digest(given.encode(), admin.encode()):
        return Caller("admin")
    record = keys.lookup(given)
    if record is not None:
        return Caller("user", record.id)
    return Caller("anonymous", presented=True)


def require_writer(caller: Caller, keys: KeyStore) -> None:
    """Raise unless ``caller`` may register or delete mods (the admin or a user key).

    403 ``registration_disabled`` when the server has neither an admin key nor user keys
    (as before keys existed), 401 without a credential, 403 ``invalid_api_key`` otherwise.
    """
    if caller.kind != "anonymous":
        return
    if not os.environ.get(ADMIN_KEY_ENV, "") and keys.empty():
        raise QuoteHTTPError(
            403,
            "mod registration is disabled on this server (start it with QUOTE_ADMIN_KEY set)",
            "permission_error",
            "registration_disabled",
        )
    if not caller.presented:
        raise QuoteHTTPError(
            401, "missing 'Authorization: Bearer <API key>'", "authentication_error"
        )
    raise QuoteHTTPError(403, "invalid API key", "permission_error", "invalid_api_key")
