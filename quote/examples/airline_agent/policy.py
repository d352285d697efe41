# SPDX-License-Identifier: Apache-2.0
"""The airline's rules as pure functions of the tools' JSON (prices, bags, flown flights).

A reservation (``get_reservation``) has ``cabin``, ``passengers``, ``total_baggages``,
``nonfree_baggages``, ``insurance``, ``payment_id`` and ``flights`` (each with ``status``
and per-cabin ``prices``). A search result (``search_direct_flight``) has ``flights``, each
with ``prices`` and free ``seats`` per cabin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "BAG_FEE",
    "CABINS",
    "FREE_BAGS",
    "INSURANCE_FEE",
    "bag_change",
    "booking_price",
    "cabin_cost",
    "has_flown",
    "pick_flight",
]

CABINS = ("basic_economy", "economy", "business")
FREE_BAGS = {"basic_economy": 0, "economy": 1, "business": 2}
"""Free checked bags per passenger, by cabin."""
BAG_FEE = 50
"""Dollars per checked bag beyond the free ones."""
INSURANCE_FEE = 30
"""Dollars of travel insurance per passenger."""


def _flights(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [f for f in data.get("flights") or [] if isinstance(f, Mapping)]


def _passengers(reservation: Mapping[str, Any]) -> int:
    return max(len(reservation.get("passengers") or []), 1)


def has_flown(reservation: Mapping[str, Any]) -> bool:
    """Whether a flight of the reservation has already flown (then it cannot change)."""
    return any(
        str(f.get("status", "")).lower() in ("flown", "landed") for f in _flights(reservation)
    )


def cabin_cost(reservation: Mapping[str, Any], cabin: str) -> int:
    """What moving every flight and passenger to ``cabin`` costs (negative: a refund)."""
    old = str(reservation.get("cabin", "economy"))
    total = 0
    for f in _flights(reservation):
        prices = f.get("prices") or {}
        total += int(prices.get(cabin, 0)) - int(prices.get(old, 0))
    return total * _passengers(reservation)


def bag_change(reservation: Mapping[str, Any], added: int) -> tuple[int, int, int]:
    """``(total, nonfree, cost)`` after adding ``added`` checked bags."""
    free = FREE_BAGS.get(str(reservation.get("cabin", "economy")), 0) * _passengers(reservation)
    total = int(reservation.get("total_baggages", 0)) + added
    nonfree = max(total - free, 0)
    cost = (nonfree - int(reservation.get("nonfree_baggages", 0))) * BAG_FEE
    return total, nonfree, max(cost, 0)


def pick_flight(search: Mapping[str, Any], cabin: str) -> Mapping[str, Any] | None:
    """The first flight of a search result with a free seat in ``cabin``."""
    for f in _flights(search):
        if int((f.get("seats") or {}).get(cabin, 0)) > 0:
            return f
    return None


def booking_price(flight: Mapping[str, Any], cabin: str, insurance: bool) -> int:
    """One passenger's price for ``flight`` in ``cabin``, with insurance when asked."""
    return int((flight.get("prices") or {}).get(cabin, 0)) + (INSURANCE_FEE if insurance else 0)
