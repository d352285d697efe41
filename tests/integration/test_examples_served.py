# SPDX-License-Identifier: Apache-2.0
"""The airline agent (quote/examples/airline_agent) on a real ``quote serve`` subprocess (tiny model, CPU).

The client side is played with the ``openai`` client; tool results are fed back as ``tool``
messages. The tiny model's weights are random, so routing and extraction are auto-answered from
the user's text here and every reply is forced: the assertions are exact.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import openai
import pytest
from server_proc import openai_client, register_mod

from quote.examples.airline_agent import replies
from quote.examples.airline_agent.agent import (
    CONFIRM_REPLY,
    HELP_REPLY,
    ID_PATTERN,
    NO_TOOLS_REPLY,
    NOT_FOUND_REPLY,
    POLICY_REPLY,
    status_reply,
)
from quote.examples.airline_agent.client import (
    MOD_NAME,
    PACKAGE_FILES,
    RESERVATIONS,
    ReservationDesk,
    Turn,
    chat_turn,
    play,
)
from quote.examples.demos import DEMOS
from quote.examples.demos.client import run_demos
from quote.examples.demos.mods import GREETING, REPORT
from quote.examples.json_schema import VERDICT
from quote.server.process import ServerProcess

pytestmark = pytest.mark.integration

KEY = "test-admin-key"
PRELOADED = [
    "quote.examples.airline_agent:AGENT",
    "quote.examples.json_schema:verdict",
    *(f"quote.examples.demos:{n}" for n in DEMOS),
]
PACKAGE = Path(__file__).resolve().parents[2] / "quote" / "examples" / "airline_agent"


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    d = tmp_path_factory.mktemp("airline")
    srv = ServerProcess(
        tiny_model,
        mods_dir=d / "mods",
        log=d / "server.log",
        env={"QUOTE_ADMIN_KEY": KEY},
        max_length=4096,  # seven tool schemas and a few turns outgrow 2048 tokens
        extra_args=[arg for spec in PRELOADED for arg in ("--mod", spec)],
    )
    try:
        srv.wait_ready()
        bundle = {f"airline_agent/{name}": (PACKAGE / name).read_text() for name in PACKAGE_FILES}
        register_mod(
            srv, KEY, MOD_NAME, bundle, "airline_agent.agent:AGENT", "tau2-style airline agent"
        )
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> openai.OpenAI:
    return openai_client(server)


@pytest.fixture(scope="module")
def model(client: openai.OpenAI) -> str:
    return f"{client.models.list().data[0].id}/{MOD_NAME}"


def _assistant(turn: Turn) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": turn.content or None,
        "tool_calls": [
            {"id": cid, "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
            for cid, n, a in turn.tool_calls
        ],
    }


def _result(turn: Turn, content: dict[str, Any]) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": turn.tool_calls[0][0], "content": json.dumps(content)}


def test_cancel_refundable(client: openai.OpenAI, model: str) -> None:
    """get_reservation -> (refundable) cancel_reservation -> the exact confirmation."""
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Hi, please cancel my reservation ABC123."}
    ]
    first = chat_turn(client, model, messages)
    assert first.finish_reason == "tool_calls" and first.content == ""
    assert [(n, a) for _, n, a in first.tool_calls] == [
        ("get_reservation", {"reservation_id": "ABC123"})
    ]
    messages += [_assistant(first), _result(first, RESERVATIONS["ABC123"])]
    second = chat_turn(client, model, messages)
    assert second.finish_reason == "tool_calls"
    assert [(n, a) for _, n, a in second.tool_calls] == [
        ("cancel_reservation", {"reservation_id": "ABC123"})
    ]
    messages += [_assistant(second), _result(second, {"success": True, "status": "cancelled"})]
    third = chat_turn(client, model, messages)
    assert third.tool_calls == [] and third.finish_reason == "stop"
    assert third.content == CONFIRM_REPLY.format(reservation_id="ABC123")


def test_cancel_not_refundable(client: openai.OpenAI, model: str) -> None:
    """A non-refundable reservation gets the policy text and no cancel call; state unchanged."""
    desk = ReservationDesk()
    turns, _ = play(client, model, "I want to cancel reservation XYZ789 please", desk)
    assert [name for name, _ in desk.calls] == ["get_reservation"]
    assert turns[-1].content == POLICY_REPLY and turns[-1].finish_reason == "stop"
    assert desk.reservations["XYZ789"]["status"] == "confirmed"


def test_status_from_tool_result(client: openai.OpenAI, model: str) -> None:
    """A status request: get_reservation, then a reply built from the tool's JSON."""
    desk = ReservationDesk()
    turns, _ = play(client, model, "What is the status of my booking def456?", desk)
    assert desk.calls == [("get_reservation", {"reservation_id": "DEF456"})]
    reply = turns[-1].content
    assert reply == status_reply("DEF456", RESERVATIONS["DEF456"])
    assert "confirmed" in reply and "delayed" in reply and "2025-08-02" in reply


def test_streaming_round_trip(client: openai.OpenAI, model: str) -> None:
    """The whole cancellation streamed: tool calls as deltas, the confirmation as text."""
    desk = ReservationDesk()
    turns, _ = play(client, model, "Cancel ABC123 for 2025-06-01, thanks.", desk, stream=True)
    assert [name for name, _ in desk.calls] == ["get_reservation", "cancel_reservation"]
    assert [t.finish_reason for t in turns] == ["tool_calls", "tool_calls", "stop"]
    assert turns[0].content == "" and turns[1].content == ""
    assert turns[-1].content == CONFIRM_REPLY.format(reservation_id="ABC123")
    assert desk.reservations["ABC123"]["status"] == "cancelled"


def test_model_routes_unclear_requests(client: openai.OpenAI, model: str) -> None:
    """No keyword, no id: the model answers the questions, under their constraints; the id it
    chose is reused on the next turn (read back from the agent's own tool call)."""
    first = chat_turn(client, model, [{"role": "user", "content": "hello there"}])
    again = chat_turn(client, model, [{"role": "user", "content": "hello there"}])
    # The questions are answered greedily: the same request gets the same answer.
    assert (again.content, [c[1:] for c in again.tool_calls]) == (
        first.content,
        [c[1:] for c in first.tool_calls],
    )
    desk = ReservationDesk()
    turns, _ = play(client, model, "hello there", desk)
    assert len(desk.calls) <= 1 and turns[-1].finish_reason == "stop"
    if desk.calls:
        [(name, args)] = desk.calls
        rid = args["reservation_id"]
        assert name == "get_reservation" and re.fullmatch(ID_PATTERN, rid)
        assert turns[-1].content in (HELP_REPLY, NOT_FOUND_REPLY.format(reservation_id=rid))
    else:
        assert turns[-1].content == HELP_REPLY


def test_tools_not_declared(client: openai.OpenAI, model: str) -> None:
    """Without the tools in the request, the agent says so instead of calling them."""
    turn = chat_turn(
        client, model, [{"role": "user", "content": "cancel ABC123"}], tools=openai.NOT_GIVEN
    )
    assert turn.tool_calls == [] and turn.content == NO_TOOLS_REPLY


def test_baggage_over_two_user_turns(client: openai.OpenAI, model: str) -> None:
    """A change waits for the user's yes: the price question, then the update on "yes"."""
    desk = ReservationDesk()
    turns, history = play(client, model, "Please add 2 checked bags to DEF456.", desk)
    assert [t.finish_reason for t in turns] == ["tool_calls", "stop"]
    assert turns[-1].content == (
        "Adding 2 checked bags to reservation DEF456 costs $100 (credit_card_9012)."
        + replies.CONFIRM_SUFFIX
    )
    assert [name for name, _ in desk.calls] == ["get_reservation"]
    turns, _ = play(client, model, "yes", desk, history=history)
    assert turns[-1].content == "Reservation DEF456 now has 4 checked bags."
    assert [name for name, _ in desk.calls][1:] == [
        "get_reservation",
        "update_reservation_baggages",
    ]
    assert desk.reservations["DEF456"]["total_baggages"] == 4


def test_booking_over_three_user_turns(client: openai.OpenAI, model: str) -> None:
    """The booking flow asks for the date, then for the user's yes, then books."""
    desk = ReservationDesk()
    text = "Book a new flight from JFK to SEA in economy for mia_li_3668 without insurance"
    turns, history = play(client, model, text, desk)
    assert turns[-1].content == replies.NEED_DATE_REPLY and desk.calls == []
    turns, history = play(client, model, "2025-09-10", desk, history=history)
    assert turns[-1].content.startswith("Flight HAT500 JFK-SEA on 2025-09-10 in economy costs $210")
    turns, _ = play(client, model, "yes, please", desk, history=history, stream=True)
    assert turns[-1].content == "Your reservation NEW004 is booked: flight HAT500 on 2025-09-10."
    assert desk.calls[-1][0] == "book_reservation" and "NEW004" in desk.reservations


def test_preloaded_agent_from_the_package(client: openai.OpenAI) -> None:
    """``--mod quote.examples.airline_agent:AGENT`` serves the same agent as the bundle."""
    served = client.models.list().data[0].id
    desk = ReservationDesk()
    turns, _ = play(client, f"{served}/airline_agent", "Add a bag to ABC123", desk)
    assert turns[-1].content.startswith("Adding 1 checked bag to reservation ABC123 costs $50")


def test_demos_client_over_http(client: openai.OpenAI, model: str) -> None:
    """quote/examples/demos/client.py against the preloaded demo mods."""
    served = client.models.list().data[0].id
    # Seeded: the sampled replies are the same on every run.
    replies_by_mod = {mod: rest for mod, *rest in run_demos(client, served, seed=7)}
    content, finish, _ = replies_by_mod["greeting"]
    assert content.startswith(GREETING)
    content, finish, _ = replies_by_mod["stop_early"]
    assert content.endswith(" [end]") and finish == "stop"
    content, _, _ = replies_by_mod["no_letter_e"]
    assert "e" not in content.lower()
    _, finish, calls = replies_by_mod["weather_tool"]
    assert finish == "tool_calls"
    assert [(name, json.loads(args)) for name, args in calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    content, finish, _ = replies_by_mod["weather_tool/2"]
    assert content.startswith("The weather: ") and "sunny, 21 C" in content
    content, finish, _ = replies_by_mod["json_report"]
    assert finish == "stop" and set(json.loads(content)) == set(REPORT["properties"])
    assert set(replies_by_mod) == {*DEMOS, "weather_tool/2"}


def test_json_schema_verdict_preloaded(client: openai.OpenAI) -> None:
    """``--mod quote.examples.json_schema:verdict``: the reply is JSON valid against VERDICT."""
    served = client.models.list().data[0].id
    reply = client.chat.completions.create(
        model=f"{served}/verdict",
        messages=[{"role": "user", "content": "Is the sky green?"}],
        max_tokens=120,
        temperature=0,
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "stop"
    jsonschema.validate(json.loads(choice.message.content or ""), VERDICT)
