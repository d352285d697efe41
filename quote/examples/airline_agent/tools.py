# SPDX-License-Identifier: Apache-2.0
"""The tools the client owns (OpenAI ``tools`` format) and which of them change data."""

from __future__ import annotations

from typing import Any

__all__ = ["READ_TOOLS", "TOOLS", "WRITE_TOOLS"]


def _tool(name: str, description: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": list(properties),
            },
        },
    }


_ID = {"type": "string"}
_PASSENGER = {
    "type": "object",
    "properties": {
        "first_name": {"type": "string"},
        "last_name": {"type": "string"},
        "dob": {"type": "string"},
    },
}

TOOLS: list[dict[str, Any]] = [
    _tool("get_reservation", "The details of a reservation, as JSON", reservation_id=_ID),
    _tool("cancel_reservation", "Cancel a reservation", reservation_id=_ID),
    _tool(
        "update_reservation_flights",
        "Move a reservation to another cabin",
        reservation_id=_ID,
        cabin=_ID,
        payment_id=_ID,
    ),
    _tool(
        "update_reservation_baggages",
        "Set a reservation's checked bags",
        reservation_id=_ID,
        total_baggages={"type": "integer"},
        nonfree_baggages={"type": "integer"},
        payment_id=_ID,
    ),
    _tool(
        "update_reservation_passengers",
        "Replace a reservation's passengers",
        reservation_id=_ID,
        passengers={"type": "array", "items": _PASSENGER},
    ),
    _tool(
        "search_direct_flight",
        "Direct flights between two airports on a date",
        origin=_ID,
        destination=_ID,
        date=_ID,
    ),
    _tool(
        "book_reservation",
        "Book a flight for a user (paid with the user's saved payment method)",
        user_id=_ID,
        flight_number=_ID,
        date=_ID,
        cabin=_ID,
        insurance=_ID,
    ),
]
"""The tools a request must declare."""

READ_TOOLS = frozenset({"get_reservation", "search_direct_flight"})
"""Tools the agent calls without asking the user."""

WRITE_TOOLS = frozenset(
    {
        "update_reservation_flights",
        "update_reservation_baggages",
        "update_reservation_passengers",
        "book_reservation",
    }
)
"""Tools the agent calls only after the user confirmed (``cancel_reservation`` is
called at once for a refundable reservation, as before)."""
