# SPDX-License-Identifier: Apache-2.0
"""The HTTP guard: an ASGI middleware in front of every route of MAX's server.

In order, for every HTTP request (``/health`` included):

1. ``Host`` must be allowed (:func:`quote.server.http_policy.host_policy`), else 400;
2. MAX's state-changing routes (:data:`~quote.server.http_policy.ADMIN_PATHS`, ``/max_internal/*``)
   need ``Authorization: Bearer $QUOTE_ADMIN_KEY`` (403 when no key is configured, 401/403);
3. a request body must be declared ``application/json``, else 415.

Every refusal is an OpenAI-style JSON error. :func:`install_guard` wraps MAX's app factory
``max.serve.api_server.fastapi_app`` (and the name the ``max serve`` entrypoint imported
from it), so the guard is added to the app that ``max serve`` builds, whether it was started
by ``quote serve`` or by ``max serve --custom-architectures quote.custom_arch``.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from quote.server.auth import require_admin
from quote.server.http_policy import (
    ALLOWED_HOSTS_ENV,
    HostPolicy,
    content_type_error,
    host_policy,
    is_admin_path,
)
from quote.server.options import QuoteHTTPError

__all__ = ["ENTRYPOINT_MODULE", "HTTPGuardMiddleware", "add_guard", "install_guard"]

logger = logging.getLogger(__name__)

ENTRYPOINT_MODULE = "max._entrypoints.cli.serve.serve_api_and_model_worker"
"""The ``max serve`` module that calls ``fastapi_app`` (it imports the name from api_server)."""

_GUARDED = "__quote_guarded__"


class HTTPGuardMiddleware:
    """Pure ASGI middleware: Host check, admin key on MAX's admin routes, JSON bodies only."""

    def __init__(self, app: ASGIApp, hosts: HostPolicy) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse the request with a JSON error, or pass it on unchanged."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        error = self.check(scope, Headers(scope=scope))
        if error is None:
            await self.app(scope, receive, send)
            return
        logger.info(
            "refused %s %s: %d %s",
            scope.get("method", "WEBSOCKET"),
            scope.get("path", ""),
            error.status,
            error.code or error.type,
        )
        if scope["type"] == "websocket":
            await WebSocketClose(code=1008)(scope, receive, send)
            return
        await JSONResponse(error.body(), status_code=error.status)(scope, receive, send)

    def check(self, scope: Scope, headers: Headers) -> QuoteHTTPError | None:
        """The refusal for this request, or ``None`` when it may proceed."""
        hosts = headers.getlist("host")
        if not self.hosts.allow_any and (len(hosts) != 1 or not self.hosts.allows(hosts[0])):
            given = repr(hosts[0][:100]) if len(hosts) == 1 else f"{len(hosts)} Host headers"
            return QuoteHTTPError(
                400,
                f"this server does not answer for Host {given} "
                f"(add the name to {ALLOWED_HOSTS_ENV} or --allowed-hosts)",
                "invalid_request_error",
                "host_not_allowed",
            )
        path = str(scope.get("path", ""))
        if is_admin_path(path):
            try:
                require_admin(
                    headers,
                    disabled_message=f"{path} needs the admin key, and this server has none "
                    "(start it with QUOTE_ADMIN_KEY set)",
                    disabled_code="admin_disabled",
                )
            except QuoteHTTPError as exc:
                return exc
        if scope["type"] == "http":
            return content_type_error(str(scope["method"]), headers)
        return None


def add_guard(app: Starlette, bind_host: str) -> HostPolicy:
    """Add the guard as the outermost user middleware of ``app`` (before it first runs).

    Raises ``ValueError`` for a malformed ``QUOTE_ALLOWED_HOSTS``.
    """
    policy = host_policy(bind_host, os.environ.get(ALLOWED_HOSTS_ENV))
    app.add_middleware(HTTPGuardMiddleware, hosts=policy)
    logger.info("HTTP guard on (bound to %s): allowed hosts: %s", bind_host, policy.describe())
    return policy


def _bind_host(app: Any) -> str:
    settings = getattr(app.state, "settings", None)
    host = getattr(settings, "host", None)
    if isinstance(host, str) and host:
        return host
    logger.warning("MAX's app has no settings.host: allowing loopback hosts only")
    return "127.0.0.1"


def _wrap(factory: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(factory)
    def fastapi_app(*args: Any, **kwargs: Any) -> Any:
        app = factory(*args, **kwargs)
        add_guard(app, _bind_host(app))
        return app

    setattr(fastapi_app, _GUARDED, True)
    return fastapi_app


def install_guard() -> None:
    """Wrap MAX's app factory so every app it builds carries the guard (idempotent)."""
    from max.serve import api_server

    original = api_server.fastapi_app
    if getattr(original, _GUARDED, False):
        return
    guarded = _wrap(original)
    api_server.fastapi_app = guarded  # type: ignore[assignment]
    # ``max serve`` imports this module before custom architectures, so it may already
    # hold the unwrapped name; if it is imported later it picks up the wrapped one.
    entry = sys.modules.get(ENTRYPOINT_MODULE)
    if entry is not None and getattr(entry, "fastapi_app", None) is original:
        setattr(entry, "fastapi_app", guarded)  # noqa: B010 - a module attribute
    if entry is not None and not getattr(getattr(entry, "fastapi_app", None), _GUARDED, False):
        logger.warning("%s.fastapi_app is not MAX's factory: HTTP guard not installed", entry)
    logger.debug("wrapped max.serve.api_server.fastapi_app with Quote's HTTP guard")
