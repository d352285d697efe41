# SPDX-License-Identifier: Apache-2.0
"""How a :class:`~quote.sdk.selfprompt.SelfPrompt` is configured: texts and refreshed choices.

A prompt or completion is text, token ids, or a dict in the original SDK's form
(``{"text": ...}`` / ``{"tokens": [...]}`` for a prompt; ``{"suffix": text or ids,
"force": bool}`` for a completion); :func:`normalize_text` turns each into text or a
tuple of ids. :func:`with_responses` gives a strategy with new choices
(``refresh_responses``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from quote.sdk.strategies.base import Strategy
from quote.sdk.strategies.choices import Choices
from quote.sdk.strategies.lists import ListOf
from quote.sdk.tokenize import tokenize

__all__ = ["Text", "TextSpec", "normalize_text", "text_tokens", "with_responses"]

Text = str | tuple[int, ...]
"""A normalised prompt or completion: text, or token ids."""

TextSpec = str | Sequence[int] | Mapping[str, Any]
"""What callers may give: text, token ids, or a dict (see :func:`normalize_text`)."""


def _ids(value: Any, what: str) -> tuple[int, ...]:
    out: list[int] = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or int(v) < 0:
            raise TypeError(f"SelfPrompt: {what} token ids must be non-negative ints, got {v!r}")
        out.append(int(v))
    return tuple(out)


def _plain(value: Any, what: str) -> Text:
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence | np.ndarray):
        return _ids(value, what)
    raise TypeError(f"SelfPrompt: {what} must be a str, token ids or a dict, got {value!r}")


def normalize_text(value: TextSpec | None, what: str) -> Text:
    """``value`` as text or token ids; ``what`` is ``"prompt"`` or ``"completion"``.

    Dicts: a prompt is ``{"text": str}`` or ``{"tokens": [ids]}`` (tokens win when both are
    given, as in the original SDK); a completion is ``{"suffix": str or [ids], "force":
    bool}`` where ``force=False`` means no suffix. ``None`` is empty. Unknown keys and
    wrong types raise ``ValueError``/``TypeError`` naming them.
    """
    if value is None:
        return ""
    if not isinstance(value, Mapping):
        return _plain(value, what)
    allowed = {"text", "tokens"} if what == "prompt" else {"suffix", "force"}
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ValueError(
            f"SelfPrompt: unknown {what} key(s) {unknown}; expected some of {sorted(allowed)}"
        )
    if what == "prompt":
        if value.get("tokens") is not None:
            return _ids(value["tokens"], "prompt")
        text = value.get("text") or ""
        if not isinstance(text, str):
            raise TypeError(f"SelfPrompt: prompt text must be a str, got {text!r}")
        return text
    force = value.get("force", True)
    if not isinstance(force, bool):
        raise TypeError(f"SelfPrompt: completion force must be a bool, got {force!r}")
    return _plain(value.get("suffix") or "", "completion suffix") if force else ""


def text_tokens(value: Text, tokenizer: Any) -> list[int]:
    """The token ids of a normalised prompt or completion."""
    if isinstance(value, str):
        return tokenize(value, tokenizer) if value else []
    return list(value)


def _choices(responses: Iterable[str]) -> Choices:
    if isinstance(responses, str):
        raise TypeError("refresh_responses: responses must be a list of strings, not one string")
    return Choices([str(r) for r in responses])


def with_responses(
    strategy: Strategy, responses: Iterable[str], idx: int | None = None
) -> Strategy:
    """``strategy`` with its choices replaced by ``responses``.

    ``strategy`` is :class:`~quote.sdk.strategies.Choices` (``idx`` omitted), or a
    :class:`~quote.sdk.strategies.ListOf` whose items are choices: one shared
    ``Choices`` item (``idx`` omitted), or per-position items where ``idx`` picks the
    position to refresh (it must hold ``Choices``).

    Raises:
        TypeError: The strategy (or the picked position) has no choices to refresh.
        IndexError: ``idx`` is not a position of the list.
    """
    if isinstance(strategy, Choices):
        if idx is not None:
            raise TypeError("refresh_responses: idx is only for a ListOf with positional items")
        return _choices(responses)
    if isinstance(strategy, ListOf):
        positions = strategy.positions
        if positions is None:
            if idx is not None:
                raise TypeError("refresh_responses: idx needs a ListOf with positional items")
            item = strategy.item
            assert isinstance(item, Strategy)  # no positions: one shared item strategy
            return dataclasses.replace(strategy, item=with_responses(item, responses))
        if idx is None:
            raise TypeError("refresh_responses: a ListOf with positional items needs idx")
        if not -len(positions) <= idx < len(positions):
            raise IndexError(f"refresh_responses: idx {idx} is not one of {len(positions)} items")
        if not isinstance(positions[idx], Choices):
            raise TypeError(
                f"refresh_responses: item {idx} is {type(positions[idx]).__name__}, not Choices"
            )
        items = list(positions)
        items[idx] = _choices(responses)
        return dataclasses.replace(strategy, item=tuple(items))
    raise TypeError(
        f"refresh_responses: {type(strategy).__name__} has no choices (use Choices or ListOf)"
    )
