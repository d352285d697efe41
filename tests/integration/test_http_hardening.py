# SPDX-License-Identifier: Apache-2.0
"""The hardened HTTP surface of a real server: JSON-only bodies, allowed hosts, admin routes.

One `quote serve` process for the module, bound to 127.0.0.1, with ``QUOTE_ADMIN_KEY`` and
``QUOTE_ALLOWED_HOSTS=quote.test`` (added to the loopback names, which stay allowed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_proc import Server, openai_client, register_mod

pytestmark = pytest.mark.integration

KEY = "hardening-admin-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
ERROR_KEYS = {"message", "type", "param", "code"}

MARKER = """
from quote.sdk import Prefilled, get_request, mod

@mod
def marker(event, actions, tokenizer):
    if isinstance(event, Prefilled):
        with open({path!r}, "a") as f:
            f.write(str(get_request().mod_args.get("tag", "?")) + "\\n")
"""


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    d = tmp_path_factory.mktemp("hardening")
    srv = Server(
        tiny_model,
        d / "mods",
        d / "server.log",
        QUOTE_ADMIN_KEY=KEY,
        QUOTE_ALLOWED_HOSTS="quote.test",
    )
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def served(server: Server) -> str:
    return str(openai_client(server).models.list().data[0].id)


def _error(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == ERROR_KEYS, err
    if code is not None:
        assert err["code"] == code, err
    return dict(err)


def _chat_body(model: str, tag: str) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 4,
        "temperature": 0,
        "quote": {"args": {"tag": tag}},
    }


def test_non_json_bodies_are_415_and_generate_nothing(
    server: Server, served: str, tmp_path: Path
) -> None:
    marks = tmp_path / "marks.txt"
    register_mod(server, KEY, "marker", MARKER.format(path=str(marks)), "marker")
    model = f"{served}/marker"
    chat_body = json.dumps(_chat_body(model, "plain")).encode()
    text = {"model": model, "prompt": "hi", "max_tokens": 4, "quote": {"args": {"tag": "plain"}}}
    for path, content in (
        ("/v1/chat/completions", chat_body),
        ("/v1/completions", json.dumps(text).encode()),
    ):
        for ctype in (
            "text/plain",
            "text/plain; charset=utf-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ):
            r = httpx.post(server.base + path, content=content, headers={"content-type": ctype})
            err = _error(r, 415, "unsupported_media_type")
            assert "application/json" in err["message"]
        # A body with no Content-Type at all (what a Blob body sends) is refused too.
        _error(httpx.post(server.base + path, content=content), 415)
    assert not marks.exists(), marks.read_text()

    ok = httpx.post(
        server.base + "/v1/chat/completions", json=_chat_body(model, "json"), timeout=120
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["choices"][0]["message"]["role"] == "assistant"
    r = httpx.post(
        server.base + "/v1/chat/completions",
        content=chat_body.replace(b'"plain"', b'"json-charset"'),
        headers={"content-type": "application/json; charset=utf-8"},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    assert marks.read_text().split() == ["json", "json-charset"]


def test_registry_post_needs_json(server: Server) -> None:
    body = b'{"name": "sneaky", "source": "x = 1", "entrypoint": "x"}'
    r = httpx.post(
        server.base + "/v1/mods", content=body, headers={**AUTH, "content-type": "text/plain"}
    )
    _error(r, 415, "unsupported_media_type")
    assert httpx.get(server.base + "/v1/mods/sneaky").status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/chat/completions"), ("GET", "/v1/models"), ("GET", "/health")],
)
def test_foreign_host_is_400(server: Server, served: str, method: str, path: str) -> None:
    body = _chat_body(served, "evil") if method == "POST" else None
    for host in ("evil.example", f"evil.example:{server.port}", "localhost.evil.example"):
        r = httpx.request(method, server.base + path, json=body, headers={"Host": host})
        _error(r, 400, "host_not_allowed")


@pytest.mark.parametrize("host", ["localhost:{port}", "127.0.0.1:{port}", "quote.test:{port}"])
def test_allowed_hosts_pass(server: Server, host: str) -> None:
    headers = {"Host": host.format(port=server.port)}
    assert httpx.get(server.base + "/health", headers=headers).status_code == 200
    r = httpx.get(server.base + "/v1/models", headers=headers)
    assert r.status_code == 200 and r.json()["data"], r.text


def test_reset_prefix_cache_needs_the_admin_key(server: Server) -> None:
    url = server.base + "/reset_prefix_cache"
    _error(httpx.post(url), 401)
    _error(httpx.post(url, headers={"Authorization": "Bearer wrong"}), 403, "invalid_api_key")
    r = httpx.post(url, headers=AUTH)
    # MAX's own answers: 200 when prefix caching is on, 400 when it is off.
    assert (r.status_code, r.text) in {
        (200, "Success"),
        (400, "Prefix caching is not enabled. Ignoring request"),
    }


def test_lora_routes_need_the_admin_key(server: Server) -> None:
    body = {"lora_name": "x", "lora_path": "/nonexistent"}
    for path in ("/v1/load_lora_adapter", "/v1/unload_lora_adapter"):
        _error(httpx.post(server.base + path, json=body), 401)
        r = httpx.post(server.base + path, json=body, headers=AUTH)
        assert r.status_code not in (401, 403), r.text  # MAX's answer (LoRA is off here)
