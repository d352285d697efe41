# SPDX-License-Identifier: Apache-2.0
"""Remote image URLs are refused unless the operator allows fetching (``quote.server.images``)."""

from __future__ import annotations

from typing import Any

import pytest

from quote.server.images import ENV, check_image_urls
from quote.server.options import QuoteHTTPError


def _body(url: Any) -> dict[str, Any]:
    part = {"type": "image_url", "image_url": {"url": url}}
    return {"messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": [part]}]}


@pytest.mark.parametrize("url", ["http://10.0.0.1/x.png", "HTTPS://example.com/a.jpg"])
def test_remote_urls_are_refused_by_default(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(QuoteHTTPError) as info:
        check_image_urls(_body(url))
    assert info.value.status == 400
    body = info.value.body()["error"]
    assert body["code"] == "image_fetch_disabled"
    assert body["param"] == "messages[1].content"
    assert "--allow-image-fetch" in body["message"]


@pytest.mark.parametrize(
    "body",
    [
        _body("data:image/png;base64,AAAA"),
        _body("file:///tmp/x.png"),  # MAX refuses it unless --allowed-image-roots
        {"messages": "not a list"},
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": 3}]}]},
        {},
    ],
)
def test_data_urls_and_malformed_bodies_pass(
    body: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    check_image_urls(body)  # MAX validates the rest and answers 400 itself


def test_operator_can_allow_fetching(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "1")
    check_image_urls(_body("https://example.com/a.jpg"))
