# SPDX-License-Identifier: Apache-2.0
"""The HTTP guard middleware, and how it is installed into MAX's app factory (pinned here)."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from quote.server.guard import ENTRYPOINT_MODULE, HTTPGuardMiddleware, add_guard, install_guard
from quote.server.http_policy import host_policy

pytestmark = pytest.mark.unit

KEY = "unit-admin-key"


def _app(bind: str = "127.0.0.1") -> tuple[Starlette, list[str]]:
    seen: list[str] = []

    async def endpoint(request: Request) -> PlainTextResponse:
        seen.append(request.url.path)
        return PlainTextResponse("ok")

    paths = ["/health", "/v1/chat/completions", "/reset_prefix_cache"]
    app = Starlette(routes=[Route(p, endpoint, methods=["GET", "POST"]) for p in paths])
    add_guard(app, bind)
    return app, seen


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, list[str]]]:
    monkeypatch.delenv("QUOTE_ALLOWED_HOSTS", raising=False)
    monkeypatch.setenv("QUOTE_ADMIN_KEY", KEY)
    app, seen = _app()
    yield TestClient(app, base_url="http://localhost:8000"), seen


def test_guard_is_outermost_user_middleware() -> None:
    app, _ = _app()
    assert app.user_middleware[0].cls is HTTPGuardMiddleware


def test_host_check_covers_every_route(client: tuple[TestClient, list[str]]) -> None:
    c, seen = client
    for path in ("/health", "/v1/chat/completions"):
        r = c.get(path, headers={"host": "evil.example:8000"})
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "host_not_allowed"
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    assert seen == []
    assert c.get("/health").status_code == 200
    assert c.get("/health", headers={"host": "127.0.0.1:8000"}).status_code == 200
    assert c.get("/health", headers={"host": "[::1]:8000"}).status_code == 200


def test_text_plain_post_never_reaches_the_route(client: tuple[TestClient, list[str]]) -> None:
    c, seen = client
    r = c.post("/v1/chat/completions", content=b"{}", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    r = c.post("/v1/chat/completions", content=b"{}", headers={"content-type": ""})
    assert r.status_code == 415
    assert seen == []
    r = c.post("/v1/chat/completions", json={})
    assert r.status_code == 200 and seen == ["/v1/chat/completions"]


def test_admin_route_needs_the_key(
    client: tuple[TestClient, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    c, seen = client
    assert c.post("/reset_prefix_cache").status_code == 401
    bad = c.post("/reset_prefix_cache", headers={"authorization": "Bearer nope"})
    assert bad.status_code == 403
    ok = c.post("/reset_prefix_cache", headers={"authorization": f"Bearer {KEY}"})
    assert ok.status_code == 200 and seen == ["/reset_prefix_cache"]
    monkeypatch.delenv("QUOTE_ADMIN_KEY")
    off = c.post("/reset_prefix_cache", headers={"authorization": f"Bearer {KEY}"})
    assert off.status_code == 403 and off.json()["error"]["code"] == "admin_disabled"


def test_allowed_hosts_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUOTE_ALLOWED_HOSTS", "quote.test")
    app, _ = _app()
    c = TestClient(app, base_url="http://quote.test:8000")
    assert c.get("/health").status_code == 200
    assert c.get("/health", headers={"host": "localhost:8000"}).status_code == 200
    assert c.get("/health", headers={"host": "other.test"}).status_code == 400
    monkeypatch.setenv("QUOTE_ALLOWED_HOSTS", "bad:80")
    with pytest.raises(ValueError, match="QUOTE_ALLOWED_HOSTS"):
        _app()


def test_bound_elsewhere_any_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUOTE_ALLOWED_HOSTS", raising=False)
    app, _ = _app("0.0.0.0")
    c = TestClient(app, base_url="http://anything.example")
    assert c.get("/health").status_code == 200
    assert c.get("/health", headers={"host": ""}).status_code == 200
    assert c.post("/v1/chat/completions", content=b"x").status_code == 415


def test_missing_or_repeated_host_is_refused(client: tuple[TestClient, list[str]]) -> None:
    c, _ = client
    assert c.get("/health", headers={"host": ""}).status_code == 400
    guard = HTTPGuardMiddleware(_app()[0], host_policy("127.0.0.1", None))
    twice = Headers(raw=[(b"host", b"localhost"), (b"host", b"localhost")])
    error = guard.check({"type": "http", "method": "GET", "path": "/health"}, twice)
    assert error is not None and error.code == "host_not_allowed"


# --- MAX internals the guard relies on (fail here first when MAX changes) -------------------


@pytest.fixture
def max_factory() -> Iterator[tuple[Any, Any]]:
    from max.serve import api_server

    entry = importlib.import_module(ENTRYPOINT_MODULE)
    saved = (api_server.fastapi_app, entry.fastapi_app)
    try:
        yield api_server, entry
    finally:
        api_server.fastapi_app, entry.fastapi_app = saved


def test_max_entrypoint_calls_the_factory_by_its_module_global(
    max_factory: tuple[Any, Any],
) -> None:
    api_server, entry = max_factory
    serve = entry.serve_api_server_and_model_worker
    assert "fastapi_app" in serve.__code__.co_names
    assert "_import_custom_architectures" in inspect.getsource(serve)
    source = inspect.getsource(serve)
    assert source.index("_import_custom_architectures") < source.index("fastapi_app(")
    assert list(inspect.signature(api_server.fastapi_app).parameters)[:2] == [
        "settings",
        "serving_settings",
    ]


def test_install_guard_wraps_max_factory(
    max_factory: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from max.serve.config import Settings

    api_server, entry = max_factory
    monkeypatch.delenv("QUOTE_ALLOWED_HOSTS", raising=False)
    monkeypatch.delenv("QUOTE_ADMIN_KEY", raising=False)
    install_guard()
    install_guard()  # idempotent
    assert entry.fastapi_app is api_server.fastapi_app
    settings = Settings(MAX_SERVE_HOST="127.0.0.1", MAX_SERVE_DISABLE_TELEMETRY=True)
    app = api_server.fastapi_app(settings, SimpleNamespace())
    assert app.state.settings is settings  # where the guard reads the bind address
    guards = [m for m in app.user_middleware if m.cls is HTTPGuardMiddleware]
    assert len(guards) == 1 and app.user_middleware[0].cls is HTTPGuardMiddleware
    c = TestClient(app, base_url="http://localhost:8000")  # no lifespan: no model worker
    assert c.get("/health").status_code == 200
    assert c.get("/health", headers={"host": "evil.example"}).status_code == 400
    assert c.post("/reset_prefix_cache").status_code == 403
    r = c.post("/v1/chat/completions", content=b"{}", headers={"content-type": "text/plain"})
    assert r.status_code == 415
