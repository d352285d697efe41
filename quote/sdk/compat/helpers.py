# SPDX-License-Identifier: Apache-2.0
"""The original SDK's helpers: ``tokenize``, ``serialize_mod`` and the conversation accessors."""

from __future__ import annotations

import inspect
import textwrap
from typing import Any

from quote.sdk.context import get_conversation as _conversation
from quote.sdk.errors import QuoteSDKError

__all__ = ["get_conversation", "get_schemas", "serialize_mod", "tokenize", "tool_call_pairs"]


def tokenize(text: str, tokenizer: Any, *, add_special_tokens: bool = False) -> list[int]:
    """Token ids of ``text`` (no BOS/EOS unless ``add_special_tokens``).

    Raises:
        QuoteSDKError: no tokenizer, or one without ``encode``.
    """
    if tokenizer is None or not hasattr(tokenizer, "encode"):
        raise QuoteSDKError("tokenize() needs a tokenizer with encode(text, add_special_tokens=)")
    ids = tokenizer.encode(text, add_special_tokens=add_special_tokens)
    if hasattr(ids, "ids"):
        ids = ids.ids
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    return [int(t) for t in ids]


def serialize_mod(
    mod_fn: Any, *, name: str | None = None, description: str | None = None
) -> dict[str, Any]:
    """The original's ``POST /v1/mods`` body for the module that defines ``mod_fn``.

    Returns ``{"language": "python", "module", "entrypoint", "source"}`` plus
    ``name``/``description`` when given. Only the defining module's source is
    included (Quote's :func:`quote.sdk.serialize.serialize_mod` bundles local
    imports too).

    Raises:
        QuoteSDKError: the mod's module or its source cannot be found.
    """
    module = inspect.getmodule(mod_fn)
    if module is None:
        raise QuoteSDKError(f"{mod_fn!r} is not defined in a module")
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError) as exc:
        raise QuoteSDKError(f"cannot read the source of module {module.__name__}") from exc
    payload: dict[str, Any] = {
        "language": "python",
        "module": module.__name__,
        "entrypoint": str(getattr(mod_fn, "__name__", "")),
        "source": textwrap.dedent(source),
    }
    if name is not None:
        payload["name"] = name
    if description is not None:
        payload["description"] = description
    return payload


def get_conversation() -> list[dict[str, Any]]:
    """The current request's chat messages (empty outside a chat request)."""
    return _conversation().messages


def tool_call_pairs() -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """The request's assistant tool calls with their tool result message (or ``None``)."""
    return _conversation().tool_call_pairs()


def get_schemas() -> list[dict[str, Any]]:
    """The request's tool schemas (the ``tools`` the client sent)."""
    return _conversation().tools
