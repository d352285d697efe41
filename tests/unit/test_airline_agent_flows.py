# SPDX-License-Identifier: Apache-2.0
"""The airline agent's flows, played turn by turn in the offline harness (no MAX).

Each request runs the real mod (``AGENT``) with :func:`quote.sdk.testing.run_mod` on a real
BPE tokenizer; the client side (tool calls on :class:`ReservationDesk`, results fed back as
``tool`` messages, the user's next message) is :func:`play_turns`, the same loop the HTTP
client uses. Every value the flows need is in the user's words, so the answers are exact.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from sdk_tokenizer import bpe_tokenizer

from quote.examples.airline_agent import replies as r
from quote.examples.airline_agent.agent import AGENT
from quote.examples.airline_agent.client import Turn, play_turns
from quote.examples.airline_agent.desk import RESERVATIONS, ReservationDesk
from quote.examples.airline_agent.tools import TOOLS, WRITE_TOOLS
from quote.sdk import Conversation
from quote.sdk.testing import run_mod

pytestmark = pytest.mark.unit

TOK = bpe_tokenizer()
_IDS = itertools.count()


class Chat:
    """One conversation with the agent: ``say(text)`` plays a user message to the reply."""

    def __init__(self, tools: list[dict[str, Any]] | None = None) -> None:
        self.desk = ReservationDesk()
        self.history: list[dict[str, Any]] = []
        self.tools = TOOLS if tools is None else tools
        self.calls_per_message: list[list[tuple[str, dict[str, Any]]]] = []

    def _send(self, messages: list[dict[str, Any]]) -> Turn:
        n = next(_IDS)
        conv = Conversation(messages=[dict(m) for m in messages], tools=self.tools)
        res = run_mod(
            AGENT, TOK, prompt="chat:", max_tokens=256, conversation=conv, request_id=f"r{n}"
        )
        res.raise_for_error()
        calls = [(f"call_{n}_{i}", c.name, dict(c.arguments)) for i, c in enumerate(res.tool_calls)]
        return Turn("" if calls else res.text, calls, res.finish_reason)

    def say(self, text: str) -> str:
        """The agent's text reply to ``text`` (after any tool calls it makes)."""
        before = len(self.desk.calls)
        turns, self.history = play_turns(self._send, text, self.desk, history=self.history)
        self.calls_per_message.append(self.desk.calls[before:])
        assert turns[-1].finish_reason == "stop" and not turns[-1].tool_calls
        return turns[-1].content

    @property
    def last_calls(self) -> list[str]:
        return [name for name, _ in self.calls_per_message[-1]]


def test_cancel_refundable_then_not_refundable() -> None:
    chat = Chat()
    assert chat.say("Please cancel my reservation ABC123.") == r.CONFIRM_REPLY.format(
        reservation_id="ABC123"
    )
    assert chat.last_calls == ["get_reservation", "cancel_reservation"]
    assert chat.say("I want to cancel reservation XYZ789.") == r.POLICY_REPLY
    assert chat.last_calls == ["get_reservation"]
    assert chat.desk.reservations["ABC123"]["status"] == "cancelled"
    assert chat.desk.reservations["XYZ789"]["status"] == "confirmed"


def test_baggage_asks_then_adds_the_bags() -> None:
    chat = Chat()
    question = chat.say("Please add 2 checked bags to DEF456.")
    # Business: 2 free bags per passenger, DEF456 has 2 already: both new bags cost $50.
    assert question == (
        "Adding 2 checked bags to reservation DEF456 costs $100 (credit_card_9012)."
        + r.CONFIRM_SUFFIX
    )
    assert chat.last_calls == ["get_reservation"]
    assert chat.say("yes") == "Reservation DEF456 now has 4 checked bags."
    assert chat.calls_per_message[-1] == [
        ("get_reservation", {"reservation_id": "DEF456"}),
        (
            "update_reservation_baggages",
            {
                "reservation_id": "DEF456",
                "total_baggages": 4,
                "nonfree_baggages": 2,
                "payment_id": "credit_card_9012",
            },
        ),
    ]
    stored = chat.desk.reservations["DEF456"]
    assert (stored["total_baggages"], stored["nonfree_baggages"]) == (4, 2)


def test_declining_changes_nothing() -> None:
    chat = Chat()
    assert chat.say("Add one more suitcase to ABC123").startswith(
        "Adding 1 checked bag to reservation ABC123 costs $50"
    )
    assert chat.say("no, thanks") == r.DECLINED_REPLY
    assert chat.last_calls == []
    assert chat.desk.reservations["ABC123"] == RESERVATIONS["ABC123"]


def test_cabin_upgrade_and_its_rules() -> None:
    chat = Chat()
    question = chat.say("Can you upgrade ABC123 to business?")
    assert question == (
        "Moving reservation ABC123 from economy to business costs $250 (credit_card_4421)."
        + r.CONFIRM_SUFFIX
    )
    assert chat.say("Sure, go ahead") == "Reservation ABC123 is now in business."
    assert chat.last_calls == ["get_reservation", "update_reservation_flights"]
    assert chat.desk.reservations["ABC123"]["cabin"] == "business"
    assert chat.say("Downgrade DEF456 to economy") == (
        "Moving reservation DEF456 from business to economy refunds $230 (credit_card_9012)."
        + r.CONFIRM_SUFFIX
    )
    assert chat.say("no") == r.DECLINED_REPLY
    flown = r.FLOWN_REPLY.format(reservation_id="GHI012")
    assert chat.say("Please upgrade GHI012 to business") == flown
    assert chat.say("Upgrade DEF456 to business") == r.SAME_CABIN_REPLY.format(
        reservation_id="DEF456", cabin="business"
    )


def test_flight_changes() -> None:
    chat = Chat()
    assert chat.say("I need to change the flight date of XYZ789") == r.BASIC_ECONOMY_REPLY
    assert chat.say("Please change my flight on ABC123 to a later one") == (
        r.TRANSFER_REPLY.format(reservation_id="ABC123")
    )
    assert not any(name in WRITE_TOOLS for name, _ in chat.desk.calls)


def test_passenger_change() -> None:
    chat = Chat()
    question = chat.say("Please change the passenger on ABC123 to Anna Lee, born 1990-04-12.")
    assert question == (
        "Changing the passenger of reservation ABC123 to Anna Lee (1990-04-12)." + r.CONFIRM_SUFFIX
    )
    assert chat.say("Yes please") == "The passenger of reservation ABC123 is now Anna Lee."
    assert chat.desk.reservations["ABC123"]["passengers"] == [
        {"first_name": "Anna", "last_name": "Lee", "dob": "1990-04-12"}
    ]
    several = chat.say("Change the passenger on XYZ789 to Bo Kim 1980-01-01")
    assert several == r.MULTI_PASSENGER_REPLY.format(reservation_id="XYZ789")


def test_insurance_only_at_booking() -> None:
    chat = Chat()
    assert chat.say("Can I add travel insurance to XYZ789?") == (
        r.ALREADY_INSURED_REPLY.format(reservation_id="XYZ789")
    )
    assert chat.say("I'd like insurance on ABC123 please") == r.INSURANCE_REPLY
    assert chat.last_calls == ["get_reservation"]


def test_booking_asks_for_the_date_then_confirms() -> None:
    chat = Chat()
    assert (
        chat.say("Book a new flight from JFK to SEA in economy for mia_li_3668 without insurance")
        == r.NEED_DATE_REPLY
    )
    assert chat.last_calls == []
    assert chat.say("2025-09-10") == (
        "Flight HAT500 JFK-SEA on 2025-09-10 in economy costs $210 without travel insurance, "
        "for user mia_li_3668." + r.CONFIRM_SUFFIX
    )
    assert chat.say("yes") == "Your reservation NEW004 is booked: flight HAT500 on 2025-09-10."
    assert chat.calls_per_message[-1][-1] == (
        "book_reservation",
        {
            "user_id": "mia_li_3668",
            "flight_number": "HAT500",
            "date": "2025-09-10",
            "cabin": "economy",
            "insurance": "no",
        },
    )
    assert chat.desk.flights[0]["seats"]["economy"] == 3
    assert chat.desk.reservations["NEW004"]["cabin"] == "economy"
    # A finished booking is not mixed into the next one: its date is asked for again.
    assert chat.say("Book a flight from JFK to SEA in business for mia_li_3668") == (
        r.NEED_DATE_REPLY
    )
    assert chat.say("On 2025-09-10, with insurance").startswith(
        "Flight HAT502 JFK-SEA on 2025-09-10 in business costs $510 with travel insurance"
    )


def test_booking_with_no_seat_left() -> None:
    chat = Chat()
    reply = chat.say(
        "Please book a flight from JFK to SEA on 2025-09-11 in economy, user mia_li_3668"
    )
    assert reply == r.NO_FLIGHT_REPLY.format(
        origin="JFK", destination="SEA", date="2025-09-11", cabin="economy"
    )
    assert chat.last_calls == ["search_direct_flight"]


def test_status_and_help() -> None:
    chat = Chat()
    assert chat.say("What is the status of DEF456?") == r.status_reply(
        "DEF456", RESERVATIONS["DEF456"]
    )


def test_without_the_tools_the_agent_says_so() -> None:
    chat = Chat(tools=[])
    assert chat.say("Please add 2 bags to ABC123") == r.NO_TOOLS_REPLY
    assert chat.desk.calls == []
