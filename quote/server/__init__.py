# SPDX-License-Identifier: Apache-2.0
"""Quote's additions to MAX's OpenAI-compatible server (``max serve``).

:func:`install` puts Quote's routes in front of MAX's OpenAI routes and wraps MAX's app
factory so that every app carries Quote's HTTP guard (:mod:`quote.server.guard`: allowed
hosts, JSON-only bodies, the admin key on MAX's state-changing routes); it runs when
``quote.custom_arch`` is imported (by ``max serve --custom-architectures
quote.custom_arch`` and by ``quote serve``).
"""

from __future__ import annotations

__all__ = ["install"]

_installed = False


def install() -> None:
    """Register Quote's router ahead of MAX's OpenAI routes and add the HTTP guard (idempotent)."""
    global _installed
    if _installed:
        return
    from max.serve import api_server
    from max.serve.config import APIType

    from quote.server import compat_routes, routes
    from quote.server.guard import install_guard

    current = tuple(api_server.ROUTES[APIType.OPENAI])
    if routes not in current:  # compat_routes: the original engine's /add_user
        api_server.ROUTES[APIType.OPENAI] = (routes, compat_routes, *current)
    from quote.server import worker_link

    worker_link.install()  # results channel, worker-death handling (API process)
    install_guard()  # wraps the factory last: the guard is the outermost middleware
    _installed = True
