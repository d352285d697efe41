# SPDX-License-Identifier: Apache-2.0
"""The client's side of the tools: :class:`ReservationDesk`, a small in-memory airline."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FLIGHTS", "RESERVATIONS", "USERS", "ReservationDesk"]


def _flight(number: str, route: str, date: str, status: str, *prices: int) -> dict[str, Any]:
    origin, destination = route.split("-")
    return {
        "flight_number": number,
        "origin": origin,
        "destination": destination,
        "date": date,
        "status": status,
        "prices": dict(zip(("basic_economy", "economy", "business"), prices, strict=True)),
    }


def _person(first: str, last: str, dob: str) -> dict[str, str]:
    return {"first_name": first, "last_name": last, "dob": dob}


def _reservation(rid: str, cabin: str, *flights: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "reservation_id": rid,
        "status": "confirmed",
        "cabin": cabin,
        "flights": list(flights),
        "total_baggages": 0,
        "nonfree_baggages": 0,
        "insurance": "no",
        **extra,
    }


RESERVATIONS: dict[str, dict[str, Any]] = {
    "ABC123": _reservation(
        "ABC123",
        "economy",
        _flight("HAT001", "JFK-LAX", "2025-06-01", "on time", 90, 150, 400),
        refundable=True,
        passengers=[_person("Mia", "Li", "1990-01-01")],
        total_baggages=1,
        payment_id="credit_card_4421",
    ),
    "XYZ789": _reservation(
        "XYZ789",
        "basic_economy",
        _flight("HAT120", "SFO-ORD", "2025-07-14", "on time", 80, 130, 380),
        refundable=False,
        passengers=[_person("Noah", "Kim", "1985-03-02"), _person("Ava", "Kim", "1987-11-30")],
        insurance="yes",
        payment_id="gift_card_1200",
    ),
    "DEF456": _reservation(
        "DEF456",
        "business",
        _flight("HAT333", "BOS-MIA", "2025-08-02", "delayed", 70, 120, 350),
        refundable=True,
        passengers=[_person("Omar", "Diaz", "1979-07-21")],
        total_baggages=2,
        payment_id="credit_card_9012",
    ),
    "GHI012": _reservation(
        "GHI012",
        "economy",
        _flight("HAT010", "ORD-DEN", "2025-05-01", "flown", 60, 110, 300),
        _flight("HAT011", "DEN-ORD", "2025-05-09", "on time", 60, 110, 300),
        refundable=False,
        passengers=[_person("Lena", "Berg", "1995-09-14")],
        payment_id="credit_card_3300",
    ),
}
"""The sample reservations (``ABC123`` refundable, ``XYZ789`` not, ``DEF456`` delayed,
``GHI012`` with a flown flight)."""

FLIGHTS: list[dict[str, Any]] = [
    {
        **_flight("HAT500", "JFK-SEA", "2025-09-10", "available", 120, 210, 520),
        "seats": {"basic_economy": 0, "economy": 4, "business": 0},
    },
    {
        **_flight("HAT502", "JFK-SEA", "2025-09-10", "available", 110, 190, 480),
        "seats": {"basic_economy": 3, "economy": 0, "business": 2},
    },
]
"""Flights open for booking (``search_direct_flight``)."""

USERS: dict[str, dict[str, Any]] = {"mia_li_3668": {"payment_id": "credit_card_4421"}}
"""Users who may book (``book_reservation`` charges their saved payment method)."""


@dataclass
class ReservationDesk:
    """The tools' implementation, on in-memory copies of the sample data."""

    reservations: dict[str, dict[str, Any]] = field(
        default_factory=lambda: copy.deepcopy(RESERVATIONS)
    )
    flights: list[dict[str, Any]] = field(default_factory=lambda: copy.deepcopy(FLIGHTS))
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def run(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Run one tool call; the result is what goes back to the agent (as JSON)."""
        self.calls.append((name, dict(arguments)))
        if name == "search_direct_flight":
            keys = ("origin", "destination", "date")
            return {
                "flights": [f for f in self.flights if all(f[k] == arguments.get(k) for k in keys)]
            }
        if name == "book_reservation":
            return self._book(arguments)
        rid = str(arguments.get("reservation_id", ""))
        found = self.reservations.get(rid)
        if found is None:
            return {"error": f"reservation {rid} not found"}
        if name == "get_reservation":
            return copy.deepcopy(found)
        if name == "cancel_reservation":
            if not found["refundable"] or found["status"] == "cancelled":
                return {"success": False, "error": "not cancellable"}
            found["status"] = "cancelled"
            return {"success": True, "reservation_id": rid, "status": "cancelled"}
        return self._update(name, found, arguments)

    def _update(self, name: str, found: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
        if name == "update_reservation_flights":
            if any(f["status"] == "flown" for f in found["flights"]):
                return {"success": False, "error": "a flight has flown"}
            found["cabin"] = str(args.get("cabin"))
        elif name == "update_reservation_baggages":
            found["total_baggages"] = int(args.get("total_baggages", 0))
            found["nonfree_baggages"] = int(args.get("nonfree_baggages", 0))
        elif name == "update_reservation_passengers":
            passengers = list(args.get("passengers") or [])
            if len(passengers) != len(found["passengers"]):
                return {"success": False, "error": "the number of passengers cannot change"}
            found["passengers"] = passengers
        else:
            return {"error": f"unknown tool {name}"}
        return {"success": True, **copy.deepcopy(found)}

    def _book(self, args: dict[str, Any]) -> dict[str, Any]:
        user = USERS.get(str(args.get("user_id")))
        cabin = str(args.get("cabin"))
        flight = next(
            (
                f
                for f in self.flights
                if f["flight_number"] == args.get("flight_number") and f["date"] == args.get("date")
            ),
            None,
        )
        if user is None or flight is None or flight["seats"].get(cabin, 0) < 1:
            return {"success": False, "error": "cannot book"}
        flight["seats"][cabin] -= 1
        rid = f"NEW{len(self.reservations):03d}"
        self.reservations[rid] = _reservation(
            rid,
            cabin,
            {k: v for k, v in flight.items() if k != "seats"},
            refundable=False,
            passengers=[],
            insurance=str(args.get("insurance", "no")),
            payment_id=user["payment_id"],
        )
        return {"success": True, "reservation_id": rid, "flight_number": flight["flight_number"]}
