# SPDX-License-Identifier: Apache-2.0
"""What the HTTP guard accepts (pure logic; the middleware is :mod:`quote.server.guard`).

* **Hosts** (against DNS rebinding): ``QUOTE_ALLOWED_HOSTS`` (comma-separated names,
  ``*.example.com`` wildcards, ``*`` for any). Unset: the loopback names when the server is
  bound to a loopback address, any host otherwise. The loopback names (``localhost``,
  ``127.0.0.1``, ``::1``) are always accepted on a loopback-bound server: no rebinding attack
  can make a browser send them for another site. Any port is accepted.
* **Content type** (against cross-site "simple requests", which need no CORS preflight):
  a ``POST``/``PUT``/``PATCH`` that carries a body or a ``Content-Type`` must declare
  ``application/json`` (parameters such as ``; charset=utf-8`` allowed).
* **Admin routes**: MAX's state-changing routes outside the OpenAI API need the admin key.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urlsplit

from starlette.datastructures import Headers

from quote.server.options import QuoteHTTPError

__all__ = [
    "ADMIN_PATHS",
    "ADMIN_PREFIXES",
    "ALLOWED_HOSTS_ENV",
    "LOOPBACK_NAMES",
    "HostPolicy",
    "content_type_error",
    "host_policy",
    "is_admin_path",
    "is_json_content_type",
    "is_loopback",
    "request_host",
]

ALLOWED_HOSTS_ENV = "QUOTE_ALLOWED_HOSTS"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})

ADMIN_PATHS = frozenset({"/reset_prefix_cache", "/v1/load_lora_adapter", "/v1/unload_lora_adapter"})
"""MAX routes that change server state and are not part of the OpenAI API."""
ADMIN_PREFIXES = ("/max_internal/",)
"""MAX's internal routes (``/max_internal/eplb_stats``, ``/max_internal/eplb_stats_reset``)."""

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_BAD_HOST_CHARS = frozenset("/?#@\\ \t")


def request_host(header: str | None) -> str | None:
    """The host name of a ``Host`` header, lower-case, without port or IPv6 brackets.

    ``None`` for a missing or malformed header (bad characters, bad port, bad IPv6 literal).
    """
    if not header or any(c in _BAD_HOST_CHARS or not c.isprintable() for c in header):
        return None
    try:
        parts = urlsplit("//" + header)
        _ = parts.port  # validates the port
    except ValueError:
        return None
    return parts.hostname or None


def is_loopback(bind_host: str) -> bool:
    """Whether the server's bind address only accepts local connections."""
    name = bind_host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _pattern(entry: str) -> str:
    name = entry.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if "*" in name[1:] or (name.startswith("*") and name != "*" and not name.startswith("*.")):
        raise ValueError(
            f"{ALLOWED_HOSTS_ENV}: wildcards must look like '*.example.com': {entry!r}"
        )
    if ":" in name:
        try:
            ipaddress.IPv6Address(name)
        except ValueError as exc:
            raise ValueError(
                f"{ALLOWED_HOSTS_ENV}: give host names without a port: {entry!r}"
            ) from exc
    return name


@dataclass(frozen=True)
class HostPolicy:
    """Which ``Host`` headers the server answers."""

    patterns: frozenset[str]
    allow_any: bool = False

    def allows(self, header: str | None) -> bool:
        """Whether a request with this ``Host`` header may proceed."""
        if self.allow_any:
            return True
        host = request_host(header)
        if host is None:
            return False
        return any(
            host == p or (p.startswith("*.") and host.endswith(p[1:])) for p in self.patterns
        )

    def describe(self) -> str:
        """A one-line summary for the server log."""
        return "any host" if self.allow_any else ", ".join(sorted(self.patterns))


def host_policy(bind_host: str, configured: str | None) -> HostPolicy:
    """The policy for a server bound to ``bind_host`` with ``QUOTE_ALLOWED_HOSTS=configured``.

    Raises ``ValueError`` for a malformed entry (a misplaced wildcard, a port).
    """
    loopback = is_loopback(bind_host)
    entries = [e for e in (configured or "").split(",") if e.strip()]
    if not entries:
        if not loopback:
            return HostPolicy(frozenset(), allow_any=True)
        return HostPolicy(LOOPBACK_NAMES | {_pattern(bind_host)})
    patterns = {_pattern(e) for e in entries}
    if "*" in patterns:
        return HostPolicy(frozenset(), allow_any=True)
    if loopback:
        patterns |= LOOPBACK_NAMES | {_pattern(bind_host)}
    return HostPolicy(frozenset(patterns))


def is_json_content_type(value: str) -> bool:
    """``application/json``, optionally with parameters (``; charset=utf-8``)."""
    msg = Message()
    msg["content-type"] = value
    return msg.get_content_type() == "application/json" and "," not in value


def content_type_error(method: str, headers: Headers) -> QuoteHTTPError | None:
    """415 for a request body that is not declared JSON; ``None`` when acceptable.

    Only ``POST``, ``PUT`` and ``PATCH`` are checked. A request with neither a body nor a
    ``Content-Type`` passes (the route decides what an empty request means).
    """
    if method.upper() not in BODY_METHODS:
        return None
    declared = headers.getlist("content-type")
    has_body = headers.get("content-length", "0").strip() != "0" or "transfer-encoding" in headers
    if not declared and not has_body:
        return None
    if len(declared) == 1 and is_json_content_type(declared[0]):
        return None
    got = f"got {declared[0][:100]!r}" if len(declared) == 1 else "none was given"
    if len(declared) > 1:
        got = "several were given"
    return QuoteHTTPError(
        415,
        f"request bodies must be JSON: send 'Content-Type: application/json' ({got})",
        "invalid_request_error",
        "unsupported_media_type",
    )


def is_admin_path(path: str) -> bool:
    """Whether ``path`` is one of MAX's state-changing (admin-only) routes."""
    normal = path.rstrip("/") or "/"
    return normal in ADMIN_PATHS or any(
        normal.startswith(p) or normal + "/" == p for p in ADMIN_PREFIXES
    )
