# SPDX-License-Identifier: Apache-2.0
"""The next step of a turn, from the answers and this turn's tool results.

:func:`decide` returns a flow target: a tool call (the request ends with it; the client runs
the tool and sends the next request), or a reply forced as the exact completion. Tools that
change data (:data:`~.tools.WRITE_TOOLS`) are called only after the user said yes to a
question ending with :data:`~.replies.CONFIRM_SUFFIX`; on the turn that answers it the agent
looks the reservation up again and re-checks the rules before calling.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from quote.sdk import mod_log
from quote.sdk.flow import CallTool, Output, Target

from . import replies as r
from .conversation import AgentState
from .policy import bag_change, booking_price, cabin_cost, has_flown, pick_flight

__all__ = ["decide", "say"]

logger = logging.getLogger(__name__)


def say(text: str) -> Output:
    """An :class:`Output` of exactly ``text`` (a callable, so braces in it are never parsed)."""
    return Output(lambda _env: text)


def _call(state: AgentState, name: str, args: dict[str, Any]) -> Target:
    if name not in state.tools:
        logger.warning("airline agent: the request does not declare the %s tool", name)
        return say(r.NO_TOOLS_REPLY)
    return CallTool(name, args)


def _confirmed(state: AgentState, name: str, args: dict[str, Any], question: str) -> Target:
    """Ask the user to confirm ``question``; call the tool once they said yes."""
    if state.confirming and state.answers.get("confirm") == "yes":
        return _call(state, name, args)
    return say(question + r.CONFIRM_SUFFIX)


def _ok(result: Mapping[str, Any]) -> bool:
    return "error" not in result and result.get("success", True) is not False


def _flight_dates(reservation: Mapping[str, Any]) -> list[str]:
    dates = [str(f.get("date")) for f in reservation.get("flights") or [] if isinstance(f, Mapping)]
    if reservation.get("date"):
        dates.append(str(reservation["date"]))
    return dates


def decide(state: AgentState) -> Target:
    """The next step of the turn described by ``state``."""
    a = state.answers
    mod_log("airline: answers=%s results=%s", a, [x.name for x in state.results])
    if state.confirming and a.get("confirm") == "no":
        return say(r.DECLINED_REPLY)
    if a.get("intent") == "book":
        return _book(state)
    rid = str(a["reservation_id"])
    fill = {"reservation_id": rid, "date": str(a.get("date") or "none")}
    done = _written(state, rid, fill)
    if done is not None:
        return done
    reservation = state.result("get_reservation", reservation_id=rid)
    if reservation is None:
        return _call(state, "get_reservation", {"reservation_id": rid})
    if "error" in reservation or "raw" in reservation:
        return say(r.NOT_FOUND_REPLY.format(**fill))
    date = fill["date"]
    if a.get("intent") in ("cancel", "status") and date != "none":
        if date not in _flight_dates(reservation):
            return say(r.DATE_MISMATCH_REPLY.format(**fill))
    step = _STEPS.get(str(a.get("intent")), _cancel)
    return step(state, rid, reservation)


def _written(state: AgentState, rid: str, fill: dict[str, str]) -> Target | None:
    """The reply to a change already made this turn, if any."""
    cancelled = state.result("cancel_reservation", reservation_id=rid)
    if cancelled is not None:
        ok = _ok(cancelled) and (
            cancelled.get("success") is True or str(cancelled.get("status", "")) == "cancelled"
        )
        return say((r.CONFIRM_REPLY if ok else r.CANCEL_FAILED_REPLY).format(**fill))
    for name, template in [
        ("update_reservation_flights", r.CABIN_DONE_REPLY),
        ("update_reservation_baggages", r.BAGS_DONE_REPLY),
        ("update_reservation_passengers", r.PASSENGER_DONE_REPLY),
    ]:
        result = state.result(name, reservation_id=rid)
        if result is not None:
            if not _ok(result):
                return say(r.UPDATE_FAILED_REPLY.format(**fill))
            return say(template.format(**fill, **_done_fields(result)))
    return None


def _done_fields(result: Mapping[str, Any]) -> dict[str, Any]:
    passengers = result.get("passengers") or [{}]
    first = passengers[0] if isinstance(passengers[0], Mapping) else {}
    return {
        "cabin": result.get("cabin", "?"),
        "total_baggages": result.get("total_baggages", "?"),
        "first": first.get("first_name", "?"),
        "last": first.get("last_name", "?"),
    }


def _cancel(state: AgentState, rid: str, reservation: Mapping[str, Any]) -> Target:
    fill = {"reservation_id": rid}
    if str(reservation.get("status", "")).lower() == "cancelled":
        return say(r.ALREADY_CANCELLED_REPLY.format(**fill))
    if reservation.get("refundable") is True:
        return _call(state, "cancel_reservation", {"reservation_id": rid})
    return say(r.POLICY_REPLY)


def _status(state: AgentState, rid: str, reservation: Mapping[str, Any]) -> Target:
    return say(r.status_reply(rid, reservation))


def _modify(state: AgentState, rid: str, reservation: Mapping[str, Any]) -> Target:
    cabin = str(reservation.get("cabin", "economy"))
    if state.answers.get("change") == "flight":
        if cabin == "basic_economy":
            return say(r.BASIC_ECONOMY_REPLY)
        return say(r.TRANSFER_REPLY.format(reservation_id=rid))
    new = str(state.answers.get("cabin"))
    if has_flown(reservation):
        return say(r.FLOWN_REPLY.format(reservation_id=rid))
    if new == cabin:
        return say(r.SAME_CABIN_REPLY.format(reservation_id=rid, cabin=cabin))
    cost = cabin_cost(reservation, new)
    money = f"costs ${cost}" if cost >= 0 else f"refunds ${-cost}"
    payment = str(reservation.get("payment_id", ""))
    question = f"Moving reservation {rid} from {cabin} to {new} {money} ({payment})."
    args = {"reservation_id": rid, "cabin": new, "payment_id": payment}
    return _confirmed(state, "update_reservation_flights", args, question)


def _baggage(state: AgentState, rid: str, reservation: Mapping[str, Any]) -> Target:
    added = int(str(state.answers.get("bags", "1")))
    total, nonfree, cost = bag_change(reservation, added)
    payment = str(reservation.get("payment_id", ""))
    question = (
        f"Adding {added} checked bag{'s' if added > 1 else ''} to reservation {rid} "
        f"costs ${cost} ({payment})."
    )
    args = {
        "reservation_id": rid,
        "total_baggages": total,
        "nonfree_baggages": nonfree,
        "payment_id": payment,
    }
    return _confirmed(state, "update_reservation_baggages", args, question)


def _passengers(state: AgentState, rid: str, reservation: Mapping[str, Any]) -> Target:
    if len(reservation.get("passengers") or []) != 1:
        return say(r.MULTI_PASSENGER_REPLY.format(reservation_id=rid))
    first, last, dob = (str(x) for x in state.answers["passenger"])
    question = f"Changing the passenger of reservation {rid} to {first} {last} ({dob})."
    passenger = {"first_name": first, "last_name": last, "dob": dob}
    args = {"reservation_id": rid, "passengers": [passenger]}
    return _confirmed(state, "update_reservation_passengers", args, question)


def _insurance(state: AgentState, rid: str, reservation: Mapping[str, Any]) -> Target:
    if str(reservation.get("insurance", "no")) == "yes":
        return say(r.ALREADY_INSURED_REPLY.format(reservation_id=rid))
    return say(r.INSURANCE_REPLY)


_STEPS = {
    "cancel": _cancel,
    "status": _status,
    "modify": _modify,
    "baggage": _baggage,
    "passengers": _passengers,
    "insurance": _insurance,
}


def _book(state: AgentState) -> Target:
    a = state.answers
    origin, destination = (str(x) for x in a["route"])
    date, cabin, insured = str(a["date"]), str(a["cabin"]), a.get("insurance") == "yes"
    if date == "none":
        return say(r.NEED_DATE_REPLY)
    booked = state.result("book_reservation")
    if booked is not None:
        if not _ok(booked):
            return say(r.UPDATE_FAILED_REPLY.format(reservation_id="(new)"))
        fields = {"reservation_id": booked.get("reservation_id", "?"), "date": date}
        return say(r.BOOKED_REPLY.format(**fields, flight_number=booked.get("flight_number")))
    search = state.result("search_direct_flight")
    if search is None:
        args = {"origin": origin, "destination": destination, "date": date}
        return _call(state, "search_direct_flight", args)
    flight = pick_flight(search, cabin)
    if flight is None:
        fill = {"origin": origin, "destination": destination, "date": date, "cabin": cabin}
        return say(r.NO_FLIGHT_REPLY.format(**fill))
    number = str(flight.get("flight_number"))
    price = booking_price(flight, cabin, insured)
    question = (
        f"Flight {number} {origin}-{destination} on {date} in {cabin} costs ${price} "
        f"{'with' if insured else 'without'} travel insurance, for user {a['user_id']}."
    )
    args = {
        "user_id": str(a["user_id"]),
        "flight_number": number,
        "date": date,
        "cabin": cabin,
        "insurance": "yes" if insured else "no",
    }
    return _confirmed(state, "book_reservation", args, question)
