# SPDX-License-Identifier: Apache-2.0
"""Which image URLs a chat request may carry: data URLs always, remote ones if allowed.

MAX's server fetches ``http(s)`` image URLs itself, so any client could make the server
download from any address (including internal ones). Quote refuses them unless the operator
allows fetching (``quote serve --allow-image-fetch``, which sets ``QUOTE_ALLOW_IMAGE_FETCH=1``);
``data:`` URLs need no fetch. ``file:`` URLs are left to MAX, which refuses them unless
``--allowed-image-roots`` lists a directory.
"""

from __future__ import annotations

import os
from typing import Any

from quote.server.options import QuoteHTTPError

__all__ = ["ENV", "check_image_urls", "fetch_allowed"]

ENV = "QUOTE_ALLOW_IMAGE_FETCH"
"""Set to ``1`` to let MAX fetch ``http(s)`` image URLs."""


def fetch_allowed() -> bool:
    """Whether this server may fetch remote image URLs."""
    return os.environ.get(ENV, "") == "1"


def check_image_urls(body: dict[str, Any]) -> None:
    """Raise a 400 for an ``http(s)`` ``image_url`` while fetching is not allowed."""
    if fetch_allowed():
        return
    messages = body.get("messages")
    for i, message in enumerate(messages if isinstance(messages, list) else ()):
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else ():
            image = part.get("image_url") if isinstance(part, dict) else None
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str) and url.split(":", 1)[0].lower() in ("http", "https"):
                raise QuoteHTTPError(
                    400,
                    "remote image URLs are not fetched by this server: send the image as a "
                    "data URL (data:image/png;base64,...), or start the server with "
                    "--allow-image-fetch",
                    "invalid_request_error",
                    "image_fetch_disabled",
                    param=f"messages[{i}].content",
                )
