# SPDX-License-Identifier: Apache-2.0
"""The HTTP guard's pure logic: Host matching, Content-Type parsing, admin routes, admin key."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from quote.server.auth import require_admin
from quote.server.http_policy import (
    LOOPBACK_NAMES,
    content_type_error,
    host_policy,
    is_admin_path,
    is_json_content_type,
    is_loopback,
    request_host,
)
from quote.server.options import QuoteHTTPError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("localhost", "localhost"),
        ("localhost:8000", "localhost"),
        ("LocalHost:8000", "localhost"),
        ("127.0.0.1:1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("[::1]:8000", "::1"),
        ("evil.example", "evil.example"),
        (None, None),
        ("", None),
        ("::1", None),  # IPv6 literals need brackets
        ("[evil]", None),
        ("a:b", None),
        ("host:99999", None),
        ("a b", None),
        ("user@localhost", None),
        ("localhost/x", None),
        ("localhost\x00", None),
        (":80", None),
    ],
)
def test_request_host(header: str | None, host: str | None) -> None:
    assert request_host(header) == host


@pytest.mark.parametrize(
    ("bind", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.5", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("myhost", False),
    ],
)
def test_is_loopback(bind: str, loopback: bool) -> None:
    assert is_loopback(bind) is loopback


def test_default_on_loopback_allows_only_loopback_names_any_port() -> None:
    policy = host_policy("127.0.0.1", None)
    assert not policy.allow_any
    for ok in ("localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000", "[::1]"):
        assert policy.allows(ok), ok
    for bad in ("evil.example", "evil.example:8000", "localhost.evil.example", "", None, "::1"):
        assert not policy.allows(bad), bad


def test_default_includes_the_bind_address() -> None:
    assert host_policy("127.0.0.9", "").allows("127.0.0.9:8000")
    assert not host_policy("127.0.0.1", "").allows("127.0.0.9:8000")


@pytest.mark.parametrize("bind", ["0.0.0.0", "::", "10.0.0.1", "myhost"])
def test_default_elsewhere_allows_any_host(bind: str) -> None:
    policy = host_policy(bind, None)
    assert policy.allow_any and policy.allows("evil.example") and policy.allows(None)


def test_configured_names_and_wildcards() -> None:
    policy = host_policy("0.0.0.0", " api.example.com , *.internal ,[fd00::1]")
    assert policy.allows("api.example.com:443") and policy.allows("API.EXAMPLE.COM")
    assert policy.allows("a.internal") and policy.allows("a.b.internal:80")
    assert policy.allows("[fd00::1]:8000")
    assert not policy.allows("internal") and not policy.allows("evil.example")
    assert not policy.allows("localhost")  # not bound to loopback: only the list
    assert not policy.allows("api.example.com.evil.example")


def test_configured_names_add_to_loopback_names_on_a_loopback_server() -> None:
    policy = host_policy("127.0.0.1", "quote.test")
    assert policy.patterns == LOOPBACK_NAMES | {"quote.test"}
    assert policy.allows("quote.test:8000") and policy.allows("localhost:8000")
    assert not policy.allows("evil.example")


@pytest.mark.parametrize("value", ["*", "a.example,*", " * "])
def test_star_allows_any_host(value: str) -> None:
    assert host_policy("127.0.0.1", value).allow_any


@pytest.mark.parametrize("value", ["a.*.example", "*example.com", "example.com:8000", "**"])
def test_malformed_allowed_hosts_raise(value: str) -> None:
    with pytest.raises(ValueError, match="QUOTE_ALLOWED_HOSTS"):
        host_policy("127.0.0.1", value)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("application/json", True),
        ("Application/JSON; charset=UTF-8", True),
        ("application/json;charset=utf-8", True),
        (" application/json ", True),
        ("text/plain", False),
        ("text/plain; charset=utf-8", False),
        ("application/x-www-form-urlencoded", False),
        ("multipart/form-data; boundary=x", False),
        ("application/jsonx", False),
        ("application/vnd.api+json", False),
        ("application/json, text/plain", False),
        ("", False),
        ("application", False),
    ],
)
def test_is_json_content_type(value: str, ok: bool) -> None:
    assert is_json_content_type(value) is ok


def _headers(*pairs: tuple[str, str]) -> Headers:
    return Headers(raw=[(k.lower().encode(), v.encode()) for k, v in pairs])


@pytest.mark.parametrize(
    ("method", "pairs", "refused"),
    [
        ("POST", [("content-type", "application/json"), ("content-length", "2")], False),
        ("POST", [("content-type", "application/json; charset=utf-8")], False),
        ("POST", [("content-type", "text/plain"), ("content-length", "2")], True),
        ("POST", [("content-type", "text/plain"), ("content-length", "0")], True),
        ("POST", [("content-length", "2")], True),  # a body without a type (a Blob)
        ("POST", [("transfer-encoding", "chunked")], True),
        ("POST", [], False),  # no body, no type: the route decides
        ("POST", [("content-length", "0")], False),
        (
            "POST",
            [("content-type", "application/json"), ("content-type", "text/plain")],
            True,
        ),
        ("PUT", [("content-type", "text/plain"), ("content-length", "2")], True),
        ("PATCH", [("content-type", "text/plain"), ("content-length", "2")], True),
        ("GET", [("content-type", "text/plain"), ("content-length", "2")], False),
        ("DELETE", [("content-length", "2")], False),
    ],
)
def test_content_type_error(method: str, pairs: list[tuple[str, str]], refused: bool) -> None:
    error = content_type_error(method, _headers(*pairs))
    assert (error is not None) is refused
    if error is not None:
        assert error.status == 415 and error.code == "unsupported_media_type"
        assert "application/json" in error.body()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "admin"),
    [
        ("/reset_prefix_cache", True),
        ("/reset_prefix_cache/", True),
        ("/v1/load_lora_adapter", True),
        ("/v1/unload_lora_adapter", True),
        ("/max_internal/eplb_stats_reset", True),
        ("/max_internal/eplb_stats", True),
        ("/max_internal", True),
        ("/v1/chat/completions", False),
        ("/v1/mods", False),
        ("/health", False),
        ("/reset_prefix_cache_x", False),
    ],
)
def test_is_admin_path(path: str, admin: bool) -> None:
    assert is_admin_path(path) is admin


def _admin(headers: Headers) -> None:
    require_admin(headers, disabled_message="off", disabled_code="admin_disabled")


def test_require_admin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUOTE_ADMIN_KEY", raising=False)
    with pytest.raises(QuoteHTTPError) as off:
        _admin(_headers(("authorization", "Bearer anything")))
    assert (off.value.status, off.value.code, off.value.message) == (403, "admin_disabled", "off")
    monkeypatch.setenv("QUOTE_ADMIN_KEY", "k3y")
    with pytest.raises(QuoteHTTPError) as missing:
        _admin(_headers())
    assert missing.value.status == 401
    with pytest.raises(QuoteHTTPError) as wrong:
        _admin(_headers(("authorization", "Bearer nope")))
    assert (wrong.value.status, wrong.value.code) == (403, "invalid_api_key")
    _admin(_headers(("authorization", "Bearer k3y")))
    _admin(_headers(("Authorization", "bearer  k3y ")))
