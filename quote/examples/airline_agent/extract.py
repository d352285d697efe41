# SPDX-License-Identifier: Apache-2.0
"""Auto answers: what the user's own words settle, so the model is asked only about the rest.

Each function is a question's ``auto=`` hook: it reads the turn's
:class:`~.conversation.AgentState` with :func:`~quote.sdk.flow.flow_state` and returns the
answer, or ``None`` to let the model answer under the question's strategy. User messages are
searched latest first (the intent: earliest first), back to the start of the current task (see
:class:`~.conversation.AgentState`), so a follow-up ("yes", "2025-06-10") keeps the request it
answers and an earlier, finished request is not mixed in.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from quote.sdk.flow import flow_state

from .conversation import AgentState

__all__ = [
    "INTENTS",
    "auto_bags",
    "auto_cabin",
    "auto_change",
    "auto_confirm",
    "auto_date",
    "auto_insurance",
    "auto_intent",
    "auto_passenger",
    "auto_reservation_id",
    "auto_route",
    "auto_user_id",
]

INTENTS = ("cancel", "status", "modify", "baggage", "passengers", "insurance", "book", "other")
"""What the user may want; ``other`` gets the help text."""

_KEYWORDS: list[tuple[str, re.Pattern[str]]] = [
    ("cancel", re.compile(r"\b(cancel\w*|refund\w*)\b", re.I)),
    ("book", re.compile(r"\b(book|new (flight|reservation)|fly from)\b", re.I)),
    ("insurance", re.compile(r"\binsur\w*", re.I)),
    ("baggage", re.compile(r"\b(bags?|baggages?|luggage|suitcases?)\b", re.I)),
    ("passengers", re.compile(r"\b(passengers?|travell?ers?)\b", re.I)),
    ("modify", re.compile(r"\b(upgrade|downgrade|cabin|change|modify|switch)\w*", re.I)),
    (
        "status",
        re.compile(r"\b(status|check|delay\w*|on time|depart\w*|when does|is my flight)\b", re.I),
    ),
]
_ID_WORD = re.compile(r"\b[A-Za-z0-9]{6}\b")
_ISO_DATE = re.compile(r"\b20\d\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])\b")
_MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_FUZZY_DATE = re.compile(
    rf"\b{_MONTH}\s+\d{{1,2}}|\b\d{{1,2}}(st|nd|rd|th)?\s+(of\s+)?{_MONTH}"
    r"|\b\d{1,2}/\d{1,2}(/\d{2,4})?\b",
    re.IGNORECASE,
)
_CABINS = [
    ("basic_economy", re.compile(r"\bbasic[ _]economy\b", re.I)),
    ("business", re.compile(r"\bbusiness\b", re.I)),
    ("economy", re.compile(r"\beconomy\b", re.I)),
]
_FLIGHT_CHANGE = re.compile(r"\b(flights?|dates?|reschedul\w*)\b", re.I)
_NUMBERS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "a": "1", "an": "1"}
_BAGS = re.compile(
    r"\b([1-9]|one|two|three|four|five|an?)\s+(?:(?:more|extra|additional|checked)\s+)*"
    r"(?:bags?|suitcases?|pieces of luggage)\b",
    re.I,
)
_PASSENGER = re.compile(r"\b([A-Z][a-z]+) ([A-Z][a-z]+)\b\D{0,40}?(20\d\d|19\d\d)-(\d\d)-(\d\d)")
_ROUTE = re.compile(r"\bfrom ([A-Z]{3}) to ([A-Z]{3})\b")
_USER_ID = re.compile(r"\b[a-z]+_[a-z]+_\d+\b")
_YES = re.compile(r"^\s*(yes|yeah|yep|sure|ok(ay)?|please do|go ahead|proceed|confirm)\b", re.I)
_NO = re.compile(r"^\s*(no|nope|don'?t|do not|stop|never ?mind)\b", re.I)
_WITH_INSURANCE = re.compile(r"\bwith (travel )?insurance\b|\binsured\b", re.I)
_WITHOUT_INSURANCE = re.compile(r"\b(without|no) (travel )?insurance\b", re.I)


def _state() -> AgentState:
    state = flow_state()
    assert isinstance(state, AgentState)
    return state


def _first(find: Callable[[str], str | None]) -> str | None:
    """The first answer ``find`` gets from the user's messages, latest first."""
    for text in _state().user_texts:
        found = find(text)
        if found is not None:
            return found
    return None


def auto_intent(env: dict[str, Any]) -> str | None:
    """The first intent keyword of the task (its earliest message first: follow-ups such as
    "yes" or "with insurance" answer it); ``cancel`` after the agent's own
    ``cancel_reservation`` call; ``None`` = ask the model."""
    state = _state()
    if any(r.name == "cancel_reservation" for r in state.results):
        return "cancel"
    for text in reversed(state.user_texts):
        found = next((i for i, rx in _KEYWORDS if rx.search(text)), None)
        if found is not None:
            return found
    return None


def auto_reservation_id(env: dict[str, Any]) -> str | None:
    """The id of this turn's tool calls, else the latest 6-character word with a digit."""
    called = _state().called_id()
    if called is not None:
        return called

    def find(text: str) -> str | None:
        words = [w for w in _ID_WORD.findall(text) if any(c.isdigit() for c in w)]
        return str(words[-1]).upper() if words else None

    return _first(find)


def auto_date(env: dict[str, Any]) -> str | None:
    """An ISO date from the user's messages; ``None`` (the model normalises) for a fuzzy
    date; ``"none"`` when nothing looks like a date."""
    found = _first(lambda text: m.group(0) if (m := _ISO_DATE.search(text)) else None)
    if found is not None:
        return found
    return None if any(_FUZZY_DATE.search(t) for t in _state().user_texts) else "none"


def auto_cabin(env: dict[str, Any]) -> str | None:
    """The cabin the user names (``basic_economy``, ``economy`` or ``business``)."""
    return _first(lambda text: next((c for c, rx in _CABINS if rx.search(text)), None))


def auto_change(env: dict[str, Any]) -> str | None:
    """``flight`` when the user wants other flights or dates, ``cabin`` when a cabin is named."""

    def find(text: str) -> str | None:
        if _FLIGHT_CHANGE.search(text):
            return "flight"
        return "cabin" if any(rx.search(text) for _, rx in _CABINS) else None

    return _first(find)


def auto_bags(env: dict[str, Any]) -> str | None:
    """How many bags to add ("2 extra bags", "one more suitcase")."""
    return _first(
        lambda t: _NUMBERS.get(m.group(1).lower(), m.group(1)) if (m := _BAGS.search(t)) else None
    )


def auto_passenger(env: dict[str, Any]) -> str | None:
    """``"First Last YYYY-MM-DD"`` from "change the passenger to Anna Lee, born 1990-04-12"."""
    return _first(
        lambda t: f"{m[1]} {m[2]} {m[3]}-{m[4]}-{m[5]}" if (m := _PASSENGER.search(t)) else None
    )


def auto_route(env: dict[str, Any]) -> str | None:
    """``"JFK-LAX"`` from "from JFK to LAX"."""
    return _first(lambda t: f"{m[1]}-{m[2]}" if (m := _ROUTE.search(t)) else None)


def auto_user_id(env: dict[str, Any]) -> str | None:
    """A user id like ``mia_li_3668``."""
    return _first(lambda t: m.group(0) if (m := _USER_ID.search(t)) else None)


def auto_insurance(env: dict[str, Any]) -> str | None:
    """``yes`` for "with insurance", ``no`` for "without insurance"."""

    def find(text: str) -> str | None:
        if _WITHOUT_INSURANCE.search(text):
            return "no"
        return "yes" if _WITH_INSURANCE.search(text) else None

    return _first(find)


def auto_confirm(env: dict[str, Any]) -> str | None:
    """The user's reply to a confirmation question: ``yes``, ``no`` or ``None`` (unclear)."""
    texts = _state().user_texts
    text = texts[0] if texts else ""
    if _NO.search(text):
        return "no"
    return "yes" if _YES.search(text) else None
