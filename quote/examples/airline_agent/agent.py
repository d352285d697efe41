# SPDX-License-Identifier: Apache-2.0
"""An airline customer-service agent (tau2 airline style) built with the Flow engine.

Every chat request is one turn of the agent. The flow asks three questions inside the
generation, each erased afterwards so none of it reaches the client:

1. ``intent`` — ``cancel``, ``status`` or ``other`` (:class:`~quote.sdk.strategies.Choices`).
   Auto-answered from keywords of the last user message; the model chooses only when the
   message is not obvious.
2. ``reservation_id`` — 6 uppercase letters/digits (:class:`~quote.sdk.strategies.Regex`).
   Auto-answered when a user message holds one (case-insensitive, with a digit); otherwise the
   model writes one under the regex.
3. ``date`` — an ISO date or ``none`` (Regex). Auto-answered from an ISO date in the user's
   messages, ``none`` when nothing looks like a date; the model normalises fuzzy dates
   ("June 1st") under the regex.

Then a branch reads the tool results of the current turn (the messages after the last user
message, :meth:`~quote.sdk.context.Conversation.tool_call_pairs`) and picks the next step:

- no result yet -> ``get_reservation(reservation_id)`` (a tool call; the request ends);
- ``get_reservation`` returned, intent ``status`` -> a reply built from the JSON (forced);
- ``get_reservation`` returned, intent ``cancel``: refundable -> ``cancel_reservation``; not
  refundable -> :data:`POLICY_REPLY`; already cancelled, not found, or no flight on the
  date the user gave -> a fixed reply;
- ``cancel_reservation`` returned -> :data:`CONFIRM_REPLY` (or :data:`CANCEL_FAILED_REPLY`).

Every reply is forced with :class:`~quote.sdk.flow.Output` (exact text, never generated).
The module imports only :mod:`quote.sdk`, so it registers over HTTP as a single file
(entrypoint ``agent:AGENT``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from quote.sdk import Conversation, get_conversation, mod_log
from quote.sdk.flow import CallTool, Flow, Output, Question, Target, flow_mod
from quote.sdk.strategies import Choices, Regex

__all__ = [
    "AGENT",
    "ALREADY_CANCELLED_REPLY",
    "CANCEL_FAILED_REPLY",
    "CONFIRM_REPLY",
    "DATE_MISMATCH_REPLY",
    "FLOW",
    "HELP_REPLY",
    "INTENTS",
    "NOT_FOUND_REPLY",
    "NO_TOOLS_REPLY",
    "POLICY_REPLY",
    "TOOLS",
    "auto_date",
    "auto_intent",
    "auto_reservation_id",
    "decide",
    "status_reply",
]

logger = logging.getLogger(__name__)

INTENTS = ("cancel", "status", "other")
"""What the user may want; ``other`` gets :data:`HELP_REPLY`."""

POLICY_REPLY = "This reservation cannot be cancelled under our policy."
CONFIRM_REPLY = "Your reservation {reservation_id} has been cancelled."
CANCEL_FAILED_REPLY = "The cancellation of reservation {reservation_id} did not go through."
ALREADY_CANCELLED_REPLY = "Reservation {reservation_id} is already cancelled."
NOT_FOUND_REPLY = "I could not find reservation {reservation_id}."
DATE_MISMATCH_REPLY = "Reservation {reservation_id} has no flight on {date}."
HELP_REPLY = (
    "I can check the status of a reservation or cancel it. "
    "Please tell me which, with your 6-character reservation id."
)
NO_TOOLS_REPLY = "I cannot look up reservations right now."
"""The fixed replies (``str.format`` templates over ``reservation_id`` and ``date``)."""

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {"reservation_id": {"type": "string"}},
                "required": ["reservation_id"],
            },
        },
    }
    for name, description in [
        ("get_reservation", "The details of a reservation, as JSON"),
        ("cancel_reservation", "Cancel a reservation"),
    ]
]
"""The tools a request must declare (OpenAI ``tools`` format)."""

ID_PATTERN = "[A-Z0-9]{6}"
DATE_PATTERN = "none|20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"

_CANCEL_WORDS = re.compile(r"\b(cancel\w*|refund\w*)\b", re.IGNORECASE)
_STATUS_WORDS = re.compile(
    r"\b(status|check|delay\w*|on time|depart\w*|when does|is my flight)\b", re.IGNORECASE
)
_ID_WORD = re.compile(r"\b[A-Za-z0-9]{6}\b")
_ISO_DATE = re.compile(r"\b20\d\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])\b")
_MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_FUZZY_DATE = re.compile(
    rf"\b{_MONTH}\s+\d{{1,2}}|\b\d{{1,2}}(st|nd|rd|th)?\s+(of\s+)?{_MONTH}"
    r"|\b\d{1,2}/\d{1,2}(/\d{2,4})?\b",
    re.IGNORECASE,
)


# --------------------------------------------------------------------------- conversation
def _user_texts(conv: Conversation) -> list[str]:
    """The user messages' texts, latest first."""
    texts: list[str] = []
    for m in reversed(conv.messages):
        if m.get("role") != "user":
            continue
        content = m.get("content")
        if isinstance(content, list):
            content = " ".join(
                str(p.get("text", "")) if isinstance(p, Mapping) else str(p) for p in content
            )
        texts.append(str(content or ""))
    return texts


def _current_turn(conv: Conversation) -> Conversation:
    """The messages after the last user message: this turn's tool calls and results."""
    last = max((i for i, m in enumerate(conv.messages) if m.get("role") == "user"), default=-1)
    return Conversation(messages=conv.messages[last + 1 :], tools=conv.tools)


def _call_parts(call: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(name, arguments)`` of an OpenAI-style (or flat) tool call."""
    fn = call.get("function")
    fn = fn if isinstance(fn, Mapping) else call
    args: Any = fn.get("arguments") or {}
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            args = {}
    return str(fn.get("name", "")), dict(args) if isinstance(args, Mapping) else {}


def _result_json(message: Mapping[str, Any]) -> dict[str, Any]:
    """A tool result's content as a JSON object (``{"raw": text}`` when it is not one)."""
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(
            str(p.get("text", "")) if isinstance(p, Mapping) else str(p) for p in content
        )
    try:
        value = json.loads(str(content or ""))
    except ValueError:
        return {"raw": str(content or "")}
    return dict(value) if isinstance(value, Mapping) else {"raw": value}


def _results(conv: Conversation, reservation_id: str) -> dict[str, dict[str, Any]]:
    """The latest result of each tool called this turn for ``reservation_id``."""
    found: dict[str, dict[str, Any]] = {}
    for call, result in _current_turn(conv).tool_call_pairs():
        name, args = _call_parts(call)
        if result is not None and str(args.get("reservation_id", "")).upper() == reservation_id:
            found[name] = _result_json(result)
    return found


def _calls_this_turn(conv: Conversation) -> dict[str, str]:
    """``{tool name: reservation id}`` of the agent's own tool calls this turn (latest last)."""
    calls: dict[str, str] = {}
    for call, _ in _current_turn(conv).tool_call_pairs():
        name, args = _call_parts(call)
        rid = str(args.get("reservation_id", "")).upper()
        if re.fullmatch(ID_PATTERN, rid):
            calls.pop(name, None)
            calls[name] = rid
    return calls


def _declared(conv: Conversation, name: str) -> bool:
    """Whether the request declares the tool ``name``."""
    for tool in conv.tools:
        fn = tool.get("function")
        spec: Mapping[str, Any] = fn if isinstance(fn, Mapping) else tool
        if spec.get("name") == name:
            return True
    return False


# --------------------------------------------------------------------------- auto answers
def auto_intent(env: dict[str, Any]) -> str | None:
    """``cancel`` / ``status`` from keywords of the last user message; ``None`` = ask the model."""
    conv = get_conversation()
    if "cancel_reservation" in _calls_this_turn(conv):
        return "cancel"
    texts = _user_texts(conv)
    text = texts[0] if texts else ""
    if _CANCEL_WORDS.search(text):
        return "cancel"
    if _STATUS_WORDS.search(text):
        return "status"
    return None


def auto_reservation_id(env: dict[str, Any]) -> str | None:
    """The id of this turn's earlier tool calls, else the latest 6-character word with a digit
    in the user's messages (upper-cased); ``None`` = ask the model."""
    conv = get_conversation()
    called = _calls_this_turn(conv)
    if called:
        return str(next(reversed(called.values())))
    for text in _user_texts(conv):
        for word in _ID_WORD.findall(text):
            if any(c.isdigit() for c in word):
                return str(word).upper()
    return None


def auto_date(env: dict[str, Any]) -> str | None:
    """An ISO date from the user's messages; ``None`` (the model normalises) for a fuzzy date;
    ``"none"`` when nothing looks like a date."""
    texts = _user_texts(get_conversation())
    for text in texts:
        match = _ISO_DATE.search(text)
        if match:
            return match.group(0)
    if any(_FUZZY_DATE.search(t) for t in texts):
        return None
    return "none"


# --------------------------------------------------------------------------- replies
def _say(text: str) -> Output:
    """An :class:`Output` of exactly ``text`` (a callable, so braces in it are never parsed)."""
    return Output(lambda _env: text)


def _flight_dates(reservation: Mapping[str, Any]) -> list[str]:
    dates = [str(f.get("date")) for f in reservation.get("flights") or [] if isinstance(f, Mapping)]
    if reservation.get("date"):
        dates.append(str(reservation["date"]))
    return dates


def status_reply(reservation_id: str, reservation: Mapping[str, Any]) -> str:
    """The status reply built from a ``get_reservation`` result."""
    parts = [f"Reservation {reservation_id} is {reservation.get('status', 'unknown')}."]
    for f in reservation.get("flights") or []:
        if isinstance(f, Mapping):
            number = f.get("flight_number", "?")
            parts.append(
                f"Flight {number} {f.get('origin', '?')}-{f.get('destination', '?')} "
                f"on {f.get('date', '?')}: {f.get('status', 'unknown')}."
            )
    return " ".join(parts)


def decide(env: dict[str, Any]) -> Target:
    """The next step from the answers and this turn's tool results."""
    conv = get_conversation()
    rid = str(env["reservation_id"])
    date = str(env.get("date") or "none")
    fill = {"reservation_id": rid, "date": date}
    results = _results(conv, rid)
    mod_log(
        "airline: intent=%s id=%s date=%s results=%s", env.get("intent"), rid, date, list(results)
    )
    if "cancel_reservation" in results:
        done = results["cancel_reservation"]
        ok = "error" not in done and (
            done.get("success") is True or str(done.get("status", "")).lower() == "cancelled"
        )
        return _say((CONFIRM_REPLY if ok else CANCEL_FAILED_REPLY).format(**fill))
    if "get_reservation" in results:
        reservation = results["get_reservation"]
        if "error" in reservation or "raw" in reservation:
            return _say(NOT_FOUND_REPLY.format(**fill))
        if date != "none" and date not in _flight_dates(reservation):
            return _say(DATE_MISMATCH_REPLY.format(**fill))
        if env.get("intent") == "status":
            return _say(status_reply(rid, reservation))
        if str(reservation.get("status", "")).lower() == "cancelled":
            return _say(ALREADY_CANCELLED_REPLY.format(**fill))
        if reservation.get("refundable") is True:
            return _call("cancel_reservation", conv, rid)
        return _say(POLICY_REPLY)
    return _call("get_reservation", conv, rid)


def _call(name: str, conv: Conversation, rid: str) -> Target:
    if not _declared(conv, name):
        logger.warning("airline agent: the request does not declare the %s tool", name)
        return _say(NO_TOOLS_REPLY)
    return CallTool(name, {"reservation_id": rid})


# --------------------------------------------------------------------------- the flow
intent = Question(
    "intent",
    "\nIntent: ",
    Choices(INTENTS),
    completion="\n",
    erase="all",
    greedy=True,
    auto=auto_intent,
)
reservation_id = Question(
    "reservation_id",
    "Reservation id: ",
    Regex(ID_PATTERN),
    completion="\n",
    erase="all",
    greedy=True,
    auto=auto_reservation_id,
)
date = Question(
    "date",
    "Flight date (YYYY-MM-DD or none): ",
    Regex(DATE_PATTERN),
    completion="\n",
    erase="all",
    greedy=True,
    auto=auto_date,
)
intent.on("other", _say(HELP_REPLY)).otherwise(reservation_id)
reservation_id.then(date)
date.branch(lambda _answer, env: decide(env))

FLOW = Flow(intent, max_transitions=10)
"""The agent's flow (one per turn)."""

AGENT = flow_mod(FLOW, name="airline_agent", hold_back=32)
"""The mod: serve it as ``"<served>/airline-agent"`` (entrypoint ``agent:AGENT``)."""
