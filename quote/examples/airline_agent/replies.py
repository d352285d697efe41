# SPDX-License-Identifier: Apache-2.0
"""The agent's fixed replies (``str.format`` templates) and the replies built from tool JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "ALREADY_CANCELLED_REPLY",
    "ALREADY_INSURED_REPLY",
    "BAGS_DONE_REPLY",
    "BASIC_ECONOMY_REPLY",
    "BOOKED_REPLY",
    "CABIN_DONE_REPLY",
    "CANCEL_FAILED_REPLY",
    "CONFIRM_REPLY",
    "CONFIRM_SUFFIX",
    "DATE_MISMATCH_REPLY",
    "DECLINED_REPLY",
    "FLOWN_REPLY",
    "HELP_REPLY",
    "INSURANCE_REPLY",
    "MULTI_PASSENGER_REPLY",
    "NEED_DATE_REPLY",
    "NOT_FOUND_REPLY",
    "NO_FLIGHT_REPLY",
    "NO_TOOLS_REPLY",
    "PASSENGER_DONE_REPLY",
    "POLICY_REPLY",
    "SAME_CABIN_REPLY",
    "TRANSFER_REPLY",
    "UPDATE_FAILED_REPLY",
    "status_reply",
]

POLICY_REPLY = "This reservation cannot be cancelled under our policy."
CONFIRM_REPLY = "Your reservation {reservation_id} has been cancelled."
CANCEL_FAILED_REPLY = "The cancellation of reservation {reservation_id} did not go through."
ALREADY_CANCELLED_REPLY = "Reservation {reservation_id} is already cancelled."
NOT_FOUND_REPLY = "I could not find reservation {reservation_id}."
DATE_MISMATCH_REPLY = "Reservation {reservation_id} has no flight on {date}."
HELP_REPLY = (
    "I can check the status of a reservation, cancel it, change its cabin, bags or passenger, "
    "or book a new flight. Please tell me which, with your 6-character reservation id."
)
NO_TOOLS_REPLY = "I cannot look up reservations right now."

CONFIRM_SUFFIX = " Shall I proceed? (yes/no)"
"""Ends every question asking the user to confirm a change (how the next turn knows)."""
DECLINED_REPLY = "Okay, I have not changed anything."
UPDATE_FAILED_REPLY = "The change to reservation {reservation_id} did not go through."
FLOWN_REPLY = (
    "Reservation {reservation_id} has a flight that has already flown; it cannot be changed."
)
SAME_CABIN_REPLY = "Reservation {reservation_id} is already in {cabin}."
CABIN_DONE_REPLY = "Reservation {reservation_id} is now in {cabin}."
BASIC_ECONOMY_REPLY = "The flights of a basic economy reservation cannot be changed."
TRANSFER_REPLY = "A human agent will help you change the flights of reservation {reservation_id}."
BAGS_DONE_REPLY = "Reservation {reservation_id} now has {total_baggages} checked bags."
MULTI_PASSENGER_REPLY = (
    "Reservation {reservation_id} has several passengers; please contact a human agent to "
    "change one of them."
)
PASSENGER_DONE_REPLY = "The passenger of reservation {reservation_id} is now {first} {last}."
ALREADY_INSURED_REPLY = "Reservation {reservation_id} already has travel insurance."
INSURANCE_REPLY = "Travel insurance can only be added when a flight is booked."
NEED_DATE_REPLY = "Which date would you like to fly? Please give it as YYYY-MM-DD."
NO_FLIGHT_REPLY = "There is no direct flight from {origin} to {destination} on {date} in {cabin}."
BOOKED_REPLY = "Your reservation {reservation_id} is booked: flight {flight_number} on {date}."


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
