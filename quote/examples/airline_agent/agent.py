# SPDX-License-Identifier: Apache-2.0
"""An airline customer-service agent (tau2 airline style) built with the Flow engine.

Every chat request is one turn of the agent. The flow asks its questions inside the
generation, each erased afterwards (``erase="all"``) so none of it reaches the client, and
most are auto-answered from the user's words (:mod:`.extract`); the model answers, under the
question's strategy, only what the words do not settle:

1. ``intent`` — cancel, status, modify (cabin or flights), baggage, passengers, insurance,
   book or other (:class:`~quote.sdk.strategies.Choices`).
2. For a reservation: ``reservation_id`` (:class:`~quote.sdk.strategies.Regex`), then per
   intent ``date`` (cancel, status), ``change`` and ``cabin`` (modify), ``bags`` (baggage),
   ``passenger`` (a :class:`~quote.sdk.strategies.ListOf` with one strategy per position:
   first name, last name, birth date).
3. For a booking, the ``booking`` flow: ``user_id``, ``route`` (a positional ``ListOf`` of
   two airport codes), ``date``, ``cabin``, ``insurance``.
4. When the agent's last reply asked the user to confirm a change, ``confirm`` (yes/no).

Then a :class:`~quote.sdk.flow.Callback` runs :func:`~.decide.decide` on the turn's
:class:`~.conversation.AgentState` (the flow's ``state_factory``): a tool call, a question
that ends with :data:`~.replies.CONFIRM_SUFFIX`, or a reply forced as the exact completion.
The package imports only :mod:`quote.sdk` (relative imports inside), so it registers over
HTTP as a bundle (entrypoint ``airline_agent.agent:AGENT``) and preloads with
``quote serve --mod quote.examples.airline_agent:AGENT``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from quote.sdk.flow import Callback, Flow, Question, Target, flow_mod
from quote.sdk.strategies import Choices, ListOf, Regex, Strategy

from . import extract
from .conversation import AgentState
from .decide import decide, say
from .extract import INTENTS
from .policy import CABINS
from .replies import (
    CANCEL_FAILED_REPLY,
    CONFIRM_REPLY,
    CONFIRM_SUFFIX,
    DECLINED_REPLY,
    HELP_REPLY,
    NO_TOOLS_REPLY,
    NOT_FOUND_REPLY,
    POLICY_REPLY,
    status_reply,
)
from .tools import TOOLS

__all__ = [
    "AGENT",
    "BOOKING",
    "CANCEL_FAILED_REPLY",
    "CONFIRM_REPLY",
    "CONFIRM_SUFFIX",
    "DATE_PATTERN",
    "DECLINED_REPLY",
    "FLOW",
    "HELP_REPLY",
    "ID_PATTERN",
    "INTENTS",
    "NOT_FOUND_REPLY",
    "NO_TOOLS_REPLY",
    "POLICY_REPLY",
    "TOOLS",
    "status_reply",
]

ID_PATTERN = "[A-Z0-9]{6}"
MONTH_DAY = "(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
ISO_DATE = f"20[0-9]{{2}}-{MONTH_DAY}"
DATE_PATTERN = f"none|{ISO_DATE}"
BIRTH_DATE = f"(19|20)[0-9]{{2}}-{MONTH_DAY}"
NAME = "[A-Z][a-z]{1,15}"
AIRPORT = "[A-Z]{3}"

AutoAnswer = Callable[[dict[str, Any]], str | None]


def _ask(name: str, prompt: str, strategy: Strategy, auto: AutoAnswer) -> Question:
    """A question asked greedily and erased afterwards, auto-answered by ``auto``."""
    return Question(name, prompt, strategy, completion="\n", erase="all", greedy=True, auto=auto)


DECIDE = Callback(lambda actions, state, tokenizer: decide(state))
"""The last step of every turn: :func:`~.decide.decide` on the turn's state."""
confirm = _ask(
    "confirm", "Did the user confirm (yes/no)? ", Choices(["yes", "no"]), extract.auto_confirm
)
confirm.then(DECIDE)
DECISION = Callback(lambda actions, state, tokenizer: confirm if state.confirming else DECIDE)
"""Ask ``confirm`` first when the agent's last reply asked for a confirmation."""

intent = _ask("intent", "\nIntent: ", Choices(INTENTS), extract.auto_intent)
reservation_id = _ask(
    "reservation_id", "Reservation id: ", Regex(ID_PATTERN), extract.auto_reservation_id
)
date = _ask("date", "Flight date (YYYY-MM-DD or none): ", Regex(DATE_PATTERN), extract.auto_date)
change = _ask(
    "change", "Change the cabin or the flights? ", Choices(["cabin", "flight"]), extract.auto_change
)
cabin = _ask("cabin", "Cabin: ", Choices(CABINS), extract.auto_cabin)
bags = _ask("bags", "Bags to add: ", Regex("[1-9]"), extract.auto_bags)
passenger = _ask(
    "passenger",
    "New passenger (first last YYYY-MM-DD): ",
    ListOf([Regex(NAME), Regex(NAME), Regex(BIRTH_DATE)], open="", close="", sep=" "),
    extract.auto_passenger,
)

date.then(DECISION)
change.on("flight", DECISION).otherwise(cabin)
cabin.then(DECISION)
bags.then(DECISION)
passenger.then(DECISION)
_AFTER_ID: dict[str, Target] = {
    "cancel": date,
    "status": date,
    "modify": change,
    "baggage": bags,
    "passengers": passenger,
    "insurance": DECISION,
}
reservation_id.branch(lambda _answer, env: _AFTER_ID.get(str(env.get("intent")), DECISION))

# The booking flow: its own questions (a second Flow, entered from the intent question).
user_id = _ask("user_id", "User id: ", Regex("[a-z]+_[a-z]+_[0-9]{1,6}"), extract.auto_user_id)
route = _ask(
    "route",
    "Route (FROM-TO): ",
    ListOf([Regex(AIRPORT), Regex(AIRPORT)], open="", close="", sep="-"),
    extract.auto_route,
)
travel_date = _ask(
    "date", "Travel date (YYYY-MM-DD or none): ", Regex(DATE_PATTERN), extract.auto_date
)
book_cabin = _ask("cabin", "Cabin: ", Choices(CABINS), extract.auto_cabin)
insurance = _ask(
    "insurance", "Travel insurance (yes/no)? ", Choices(["yes", "no"]), extract.auto_insurance
)
user_id.then(route)
route.then(travel_date)
travel_date.then(book_cabin)
book_cabin.then(insurance)
insurance.then(DECISION)

BOOKING = Flow(user_id, name="booking", max_transitions=20)
"""The booking questions, a flow of their own."""

intent.on("other", say(HELP_REPLY)).on("book", BOOKING).otherwise(reservation_id)

FLOW = Flow(intent, max_transitions=20, name="airline")
"""The agent's flow (one per turn)."""

AGENT = flow_mod(FLOW, name="airline_agent", hold_back=32, state_factory=AgentState.for_request)
"""The mod: registered as ``"<served>/airline-agent"`` by ``client.py``."""
