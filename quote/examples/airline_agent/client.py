# SPDX-License-Identifier: Apache-2.0
"""Play the client side of the airline agent with the ``openai`` client.

The client owns the tools: :class:`ReservationDesk` is a small in-memory reservation system.
Each turn sends the conversation with ``tools=TOOLS``; when the agent answers with tool calls,
the client runs them, appends the results as ``tool`` messages and sends the next turn, until
the agent replies with text.

Usage (server started with ``QUOTE_ADMIN_KEY=secret make serve``)::

    python -m quote.examples.airline_agent.client --admin-key secret     # registers, then plays
    python -m quote.examples.airline_agent.client "What is the status of DEF456?"
"""

from __future__ import annotations

import argparse
import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quote.examples.airline_agent.agent import TOOLS

__all__ = [
    "MOD_NAME",
    "RESERVATIONS",
    "ReservationDesk",
    "Turn",
    "chat_turn",
    "main",
    "play",
    "register",
]

MOD_NAME = "airline-agent"
"""The name the agent is registered under (requests use ``"<served>/airline-agent"``)."""

RESERVATIONS: dict[str, dict[str, Any]] = {
    "ABC123": {
        "reservation_id": "ABC123",
        "status": "confirmed",
        "refundable": True,
        "flights": [
            {
                "flight_number": "HAT001",
                "origin": "JFK",
                "destination": "LAX",
                "date": "2025-06-01",
                "status": "on time",
            }
        ],
    },
    "XYZ789": {
        "reservation_id": "XYZ789",
        "status": "confirmed",
        "refundable": False,
        "flights": [
            {
                "flight_number": "HAT120",
                "origin": "SFO",
                "destination": "ORD",
                "date": "2025-07-14",
                "status": "on time",
            }
        ],
    },
    "DEF456": {
        "reservation_id": "DEF456",
        "status": "confirmed",
        "refundable": True,
        "flights": [
            {
                "flight_number": "HAT333",
                "origin": "BOS",
                "destination": "MIA",
                "date": "2025-08-02",
                "status": "delayed",
            }
        ],
    },
}
"""The sample reservations."""


@dataclass
class ReservationDesk:
    """The tools' implementation, on an in-memory copy of :data:`RESERVATIONS`."""

    reservations: dict[str, dict[str, Any]] = field(
        default_factory=lambda: copy.deepcopy(RESERVATIONS)
    )
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def run(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Run one tool call; the result is what goes back to the agent (as JSON)."""
        self.calls.append((name, dict(arguments)))
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
        return {"error": f"unknown tool {name}"}


@dataclass
class Turn:
    """One agent reply: its text, tool calls ``(id, name, arguments)`` and finish reason."""

    content: str
    tool_calls: list[tuple[str, str, dict[str, Any]]]
    finish_reason: str | None


def chat_turn(
    client: Any, model: str, messages: list[dict[str, Any]], *, stream: bool = False, **kw: Any
) -> Turn:
    """Send one turn (``temperature=0``, ``tools=TOOLS`` unless given) and collect the reply."""
    kw.setdefault("tools", TOOLS)
    kw.setdefault("max_tokens", 128)
    kw.setdefault("temperature", 0)
    if not stream:
        choice = client.chat.completions.create(model=model, messages=messages, **kw).choices[0]
        calls = [
            (c.id, c.function.name, json.loads(c.function.arguments or "{}"))
            for c in choice.message.tool_calls or []
        ]
        return Turn(choice.message.content or "", calls, choice.finish_reason)
    text: list[str] = []
    parts: dict[int, dict[str, str]] = {}
    finish: str | None = None
    for chunk in client.chat.completions.create(model=model, messages=messages, stream=True, **kw):
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            for c in choice.delta.tool_calls or []:
                part = parts.setdefault(c.index, {"id": "", "name": "", "arguments": ""})
                part["id"] += c.id or ""
                if c.function is not None:
                    part["name"] += c.function.name or ""
                    part["arguments"] += c.function.arguments or ""
            finish = choice.finish_reason or finish
    calls = [
        (p["id"], p["name"], json.loads(p["arguments"] or "{}")) for _, p in sorted(parts.items())
    ]
    return Turn("".join(text), calls, finish)


def play(
    client: Any,
    model: str,
    user_text: str,
    desk: ReservationDesk,
    *,
    max_turns: int = 4,
    stream: bool = False,
) -> tuple[list[Turn], list[dict[str, Any]]]:
    """Run one user request to the agent's text reply; returns the turns and the messages."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": user_text}]
    turns: list[Turn] = []
    for _ in range(max_turns):
        turn = chat_turn(client, model, messages, stream=stream)
        turns.append(turn)
        if not turn.tool_calls:
            messages.append({"role": "assistant", "content": turn.content})
            break
        messages.append(
            {
                "role": "assistant",
                "content": turn.content or None,
                "tool_calls": [
                    {
                        "id": cid,
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps(args)},
                    }
                    for cid, name, args in turn.tool_calls
                ],
            }
        )
        for cid, name, args in turn.tool_calls:
            result = desk.run(name, args)
            messages.append({"role": "tool", "tool_call_id": cid, "content": json.dumps(result)})
    return turns, messages


def register(base_url: str, admin_key: str, name: str = MOD_NAME) -> None:
    """Register the agent (``agent.py`` as a one-file bundle) on the server."""
    import httpx

    source = (Path(__file__).parent / "agent.py").read_text()
    root = base_url.removesuffix("/v1")
    r = httpx.post(
        root + "/v1/mods",
        json={"name": name, "source": {"agent.py": source}, "entrypoint": "agent:AGENT"},
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=120,
    )
    r.raise_for_status()


def main(argv: list[str] | None = None) -> None:
    """Register the agent if a key is given, then play the sample requests."""
    from openai import OpenAI

    parser = argparse.ArgumentParser(description="The airline agent over HTTP")
    parser.add_argument("requests", nargs="*", help="user messages (default: three samples)")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default=None, help="served model name (default: the first)")
    parser.add_argument("--admin-key", default=os.environ.get("QUOTE_ADMIN_KEY"))
    parser.add_argument("--stream", action="store_true")
    args = parser.parse_args(argv)
    if args.admin_key:
        register(args.base_url, args.admin_key)
    client = OpenAI(base_url=args.base_url, api_key="unused")
    served = args.model or client.models.list().data[0].id
    desk = ReservationDesk()
    for text in args.requests or [
        "Please cancel my reservation ABC123.",
        "I want to cancel reservation XYZ789.",
        "What is the status of DEF456?",
    ]:
        print(f"user: {text}")
        turns, _ = play(client, f"{served}/{MOD_NAME}", text, desk, stream=args.stream)
        for turn in turns:
            for _, name, call_args in turn.tool_calls:
                print(f"  agent calls {name}({json.dumps(call_args)})")
            if turn.content:
                print(f"agent: {turn.content}")
    print(f"reservations: { {k: v['status'] for k, v in desk.reservations.items()} }")


if __name__ == "__main__":
    main()
