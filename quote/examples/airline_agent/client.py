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
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quote.examples.airline_agent.desk import RESERVATIONS, ReservationDesk
from quote.examples.airline_agent.tools import TOOLS

__all__ = [
    "MOD_NAME",
    "PACKAGE_FILES",
    "RESERVATIONS",
    "ReservationDesk",
    "Turn",
    "chat_turn",
    "main",
    "play",
    "play_turns",
    "register",
]

MOD_NAME = "airline-agent"
"""The name the agent is registered under (requests use ``"<served>/airline-agent"``)."""

SAMPLE_CONVERSATION = (
    "Please cancel my reservation ABC123.",
    "I want to cancel reservation XYZ789.",
    "What is the status of DEF456?",
    "Please add 2 checked bags to DEF456.",
    "yes",
)
"""The user messages :func:`main` plays by default (one conversation)."""

PACKAGE_FILES = (
    "__init__.py",
    "agent.py",
    "conversation.py",
    "decide.py",
    "extract.py",
    "policy.py",
    "replies.py",
    "tools.py",
)
"""The agent's modules: the bundle :func:`register` sends (the client and desk stay here)."""


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


def _assistant(turn: Turn) -> dict[str, Any]:
    if not turn.tool_calls:
        return {"role": "assistant", "content": turn.content}
    return {
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


def play_turns(
    send: Callable[[list[dict[str, Any]]], Turn],
    user_text: str,
    desk: ReservationDesk,
    *,
    history: list[dict[str, Any]] | None = None,
    max_turns: int = 6,
) -> tuple[list[Turn], list[dict[str, Any]]]:
    """Run one user message to the agent's text reply with ``send(messages) -> Turn``.

    ``history`` holds the earlier messages of the conversation (kept, not changed); tool
    calls run on ``desk`` and their results go back as ``tool`` messages. Returns the
    agent's turns and the whole conversation so far.
    """
    messages: list[dict[str, Any]] = [*(history or []), {"role": "user", "content": user_text}]
    turns: list[Turn] = []
    for _ in range(max_turns):
        turn = send(messages)
        turns.append(turn)
        messages.append(_assistant(turn))
        if not turn.tool_calls:
            break
        for cid, name, args in turn.tool_calls:
            result = desk.run(name, args)
            messages.append({"role": "tool", "tool_call_id": cid, "content": json.dumps(result)})
    return turns, messages


def play(
    client: Any,
    model: str,
    user_text: str,
    desk: ReservationDesk,
    *,
    history: list[dict[str, Any]] | None = None,
    max_turns: int = 6,
    stream: bool = False,
) -> tuple[list[Turn], list[dict[str, Any]]]:
    """Run one user message to the agent's text reply over HTTP (see :func:`play_turns`)."""

    def send(messages: list[dict[str, Any]]) -> Turn:
        return chat_turn(client, model, messages, stream=stream)

    return play_turns(send, user_text, desk, history=history, max_turns=max_turns)


def register(base_url: str, admin_key: str, name: str = MOD_NAME) -> None:
    """Register the agent (its modules as the bundle ``airline_agent/``) on the server."""
    import httpx

    here = Path(__file__).parent
    source = {f"airline_agent/{f}": (here / f).read_text() for f in PACKAGE_FILES}
    root = base_url.removesuffix("/v1")
    r = httpx.post(
        root + "/v1/mods",
        json={"name": name, "source": source, "entrypoint": "airline_agent.agent:AGENT"},
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=120,
    )
    r.raise_for_status()


def main(argv: list[str] | None = None) -> None:
    """Register the agent if a key is given, then play the sample requests."""
    from openai import OpenAI

    parser = argparse.ArgumentParser(description="The airline agent over HTTP")
    parser.add_argument("requests", nargs="*", help="user messages (default: a sample chat)")
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
    history: list[dict[str, Any]] = []
    for text in args.requests or SAMPLE_CONVERSATION:
        print(f"user: {text}")
        turns, history = play(
            client, f"{served}/{MOD_NAME}", text, desk, history=history, stream=args.stream
        )
        for turn in turns:
            for _, name, call_args in turn.tool_calls:
                print(f"  agent calls {name}({json.dumps(call_args)})")
            if turn.content:
                print(f"agent: {turn.content}")
    print(f"reservations: { {k: v['status'] for k, v in desk.reservations.items()} }")


if __name__ == "__main__":
    main()
