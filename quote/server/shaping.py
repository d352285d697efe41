# SPDX-License-Identifier: Apache-2.0
"""Reshaping MAX's responses into OpenAI's, choice by choice (pure logic).

* ``stop``: the text ends *before* the first stop string (MAX keeps it in
  ``/v1/completions`` and in streamed chat deltas); a streamed choice holds back a
  tail that could be the start of a stop string until the next chunk tells;
* exactly one chunk per streamed choice carries ``finish_reason`` (MAX sends a second,
  empty one after a stop string);
* ``refusal`` is ``null`` (MAX: ``""`` and ``[]``), ``logprobs`` is ``null`` unless
  asked for, and chat ``top_logprobs`` has exactly the requested number of entries;
* ``echo`` (completions): the prompt text is prepended; with ``logprobs``, the prompt's
  entries (computed by the worker) lead the list, after a ``null`` for the first prompt
  token, as OpenAI's;
* ``index`` and ``id``: set by the caller when a request fans out into ``n`` choices.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ChoiceStream",
    "Shape",
    "StopTrimmer",
    "echo_texts",
    "event_text",
    "parse_event",
    "shape_response",
]


@dataclass(frozen=True)
class Shape:
    """What a request asked for that decides how its responses are reshaped.

    Attributes:
        chat: Chat completions (``message``/``delta``) rather than text completions.
        stops: The request's stop strings.
        echo: Per prompt, the text to prepend (completions with ``echo``); empty otherwise.
        logprobs: Whether log probabilities were asked for.
        top_logprobs: Chat only: alternatives per token to keep.
        echo_logprobs: Completions with ``echo`` and ``logprobs``: the first entries are the
            prompt's (a ``null`` is put first, for the first prompt token).
    """

    chat: bool
    stops: tuple[str, ...] = ()
    echo: tuple[str, ...] = ()
    logprobs: bool = False
    top_logprobs: int = 0
    echo_logprobs: bool = False

    @classmethod
    def of(cls, body: dict[str, Any], *, chat: bool, echo: tuple[str, ...] = ()) -> Shape:
        """The shape of a (validated) request body."""
        stop = body.get("stop")
        stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
        if chat:
            asked = bool(body.get("logprobs"))
            return cls(True, stops, (), asked, int(body.get("top_logprobs") or 0) if asked else 0)
        asked = body.get("logprobs") is not None
        return cls(
            False, stops, echo, asked, echo_logprobs=bool(echo) and bool(body.get("logprobs"))
        )


class StopTrimmer:
    """Cuts a growing text before the first stop string, holding back possible prefixes."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = stops
        self.held = ""
        self.hit = False

    def feed(self, text: str) -> str:
        """Add ``text``; return what may be sent now (nothing more once a stop string is seen)."""
        if self.hit:
            return ""
        buf = self.held + text
        cut = first_stop(buf, self.stops)
        if cut is not None:
            self.hit, self.held = True, ""
            return buf[:cut]
        keep = _held_tail(buf, self.stops)
        self.held = buf[len(buf) - keep :] if keep else ""
        return buf[: len(buf) - keep]

    def flush(self) -> str:
        """The held-back tail (the text ended without completing a stop string)."""
        out, self.held = self.held, ""
        return out


def first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    """Index of the earliest stop string in ``text`` (None if there is none)."""
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(found) if found else None


def _held_tail(text: str, stops: tuple[str, ...]) -> int:
    """Length of the longest tail of ``text`` that is a proper prefix of a stop string."""
    best = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:k]):
                best = k
                break
    return best


def _fix_logprobs(choice: dict[str, Any], shape: Shape) -> None:
    if not shape.logprobs:
        choice["logprobs"] = None
        return
    lp = choice.get("logprobs")
    if not shape.chat or not isinstance(lp, dict):
        return
    if not lp.get("refusal"):
        lp["refusal"] = None
    for entry in lp.get("content") or []:
        top = entry.get("top_logprobs")
        if isinstance(top, list) and len(top) > shape.top_logprobs:
            top.sort(key=lambda t: -float(t.get("logprob", -math.inf)))
            del top[shape.top_logprobs :]


def _lead_with_null(choice: dict[str, Any]) -> bool:
    """Put OpenAI's ``null`` for the first prompt token ahead of the echoed prompt's entries;
    returns whether the choice carried entries."""
    lp = choice.get("logprobs")
    if not isinstance(lp, dict) or not lp.get("token_logprobs"):
        return False
    lp["token_logprobs"].insert(0, None)
    if isinstance(lp.get("top_logprobs"), list):
        lp["top_logprobs"].insert(0, None)
    return True


def shape_choice(choice: dict[str, Any], shape: Shape) -> None:
    """Reshape one choice of a whole (non-streamed) response in place."""
    key = "message" if shape.chat else "text"
    holder = choice.get("message") if shape.chat else choice
    if isinstance(holder, dict):
        field = "content" if shape.chat else key
        text = holder.get(field)
        if isinstance(text, str) and shape.stops:
            cut = first_stop(text, shape.stops)
            if cut is not None:
                holder[field] = text[:cut]
                choice["finish_reason"] = "stop"
        if shape.chat and not holder.get("refusal"):
            holder["refusal"] = None
    if not shape.chat and shape.echo:
        prompt = int(choice.get("index") or 0)
        choice["text"] = shape.echo[min(prompt, len(shape.echo) - 1)] + (choice.get("text") or "")
    if shape.echo_logprobs:
        _lead_with_null(choice)
    _fix_logprobs(choice, shape)


def shape_response(data: dict[str, Any], shape: Shape) -> dict[str, Any]:
    """Reshape a whole response (every choice) in place; returns ``data``."""
    for choice in data.get("choices") or []:
        if isinstance(choice, dict):
            shape_choice(choice, shape)
    return data


def event_text(item: Any) -> str | None:
    """The data of one SSE item (MAX yields strings; some layers yield objects with ``data``)."""
    text = item if isinstance(item, str) else getattr(item, "data", None)
    return text if isinstance(text, str) else None


class ChoiceStream:
    """Reshapes the streamed chunks of one choice (one MAX request).

    :meth:`chunk` takes one parsed chunk that carries this choice and returns it reshaped,
    or None to drop it (empty, or after this choice's finish chunk).
    """

    def __init__(self, shape: Shape, index: int = 0, response_id: str | None = None) -> None:
        self.shape = shape
        self.index = index
        self.response_id = response_id
        self.trimmer = StopTrimmer(shape.stops)
        self.finished = False
        self.echoed = not shape.echo
        self.null_led = not shape.echo_logprobs

    def chunk(self, data: dict[str, Any]) -> dict[str, Any] | None:
        """Reshape a chunk whose ``choices`` is non-empty (one choice)."""
        if self.finished:
            return None
        choice = data["choices"][0]
        holder = choice.get("delta") if self.shape.chat else choice
        field = "content" if self.shape.chat else "text"
        has_text = isinstance(holder, dict) and isinstance(holder.get(field), str)
        text = self.trimmer.feed(holder[field]) if has_text and holder else ""
        if self.trimmer.hit:
            choice["finish_reason"] = "stop"
        if choice.get("finish_reason"):
            self.finished = True
            text += self.trimmer.flush()
        if not self.echoed:
            text, self.echoed = self.shape.echo[0] + text, True
        if not self.null_led:
            self.null_led = _lead_with_null(choice)
        if isinstance(holder, dict) and (has_text or text):
            holder[field] = text
        if not self.finished and not text and not _carries_more(choice, self.shape):
            return None
        choice["index"] = self.index
        if self.response_id is not None:
            data["id"] = self.response_id
        _fix_logprobs(choice, self.shape)
        return data


def _carries_more(choice: dict[str, Any], shape: Shape) -> bool:
    """Whether a text-less chunk still carries something (tool calls, reasoning, logprobs)."""
    if shape.logprobs and choice.get("logprobs"):
        return True
    delta = choice.get("delta") or {}
    return bool(delta.get("tool_calls") or delta.get("reasoning") or delta.get("reasoning_content"))


def parse_event(text: str) -> dict[str, Any] | None:
    """A JSON chunk (None for ``[DONE]`` or anything that is not a JSON object)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def echo_texts(prompt: Any, decode: Callable[[Sequence[int]], str]) -> tuple[str, ...]:
    """The text of each prompt of a completions request (token ids are decoded)."""
    if isinstance(prompt, str):
        return (prompt,)
    if not isinstance(prompt, list) or not prompt:
        return ("",)
    if all(isinstance(p, str) for p in prompt):
        return tuple(prompt)
    if all(isinstance(p, int) for p in prompt):
        return (decode(prompt),)
    return tuple(
        decode(p) if isinstance(p, list) and all(isinstance(t, int) for t in p) else str(p)
        for p in prompt
    )
