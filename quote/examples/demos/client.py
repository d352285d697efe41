# SPDX-License-Identifier: Apache-2.0
"""The demos over HTTP with the ``openai`` client.

**Needs the server** (``make serve``: ``quote serve`` with the demo mods registered), which
is still being built; this script is not tested yet. Each request selects its mod through
the model name: ``"<served>/<mod>"``.

Usage::

    python -m quote.examples.demos.client [--base-url http://127.0.0.1:8000/v1] [--model NAME]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from quote.examples.demos.mods import WEATHER_TOOL

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Send one chat request per demo mod and print the replies."""
    from openai import OpenAI

    parser = argparse.ArgumentParser(description="Quote demos over HTTP")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default=None, help="served model name (default: the first)")
    args = parser.parse_args(argv)
    client = OpenAI(base_url=args.base_url, api_key="unused")
    served = args.model or client.models.list().data[0].id

    def chat(mod: str, content: str, **extra: Any) -> Any:
        return client.chat.completions.create(
            model=f"{served}/{mod}",
            messages=extra.pop("messages", [{"role": "user", "content": content}]),
            max_tokens=extra.pop("max_tokens", 24),
            **extra,
        )

    quote_args = {
        "chat_template_kwargs": {"quote": {"args": {"phrase": "data", "replacement": "DATA"}}}
    }
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("greeting", "Say something.", {}),
        ("no_letter_e", "Write a sentence.", {}),
        ("replace_phrase", "Where is the data?", {"extra_body": quote_args}),
        ("stop_early", "Tell me a story.", {}),
        ("rewrite_prompt", "What is Quote?", {}),
        ("json_report", "The weather as JSON:", {"max_tokens": 48}),
    ]
    for mod, content, extra in cases:
        reply = chat(mod, content, **extra)
        print(f"{mod}: {reply.choices[0].message.content!r} ({reply.choices[0].finish_reason})")

    # The tool round trip: a tool call, then the answer from the tool's result.
    question = [{"role": "user", "content": "What is the weather in Paris?"}]
    reply = chat("weather_tool", "", messages=question, tools=[WEATHER_TOOL])
    calls = reply.choices[0].message.tool_calls or []
    print(f"weather_tool: {[(c.function.name, c.function.arguments) for c in calls]}")
    if calls:
        messages = [
            *question,
            {"role": "assistant", "tool_calls": [c.model_dump() for c in calls]},
            {"role": "tool", "tool_call_id": calls[0].id, "content": json.dumps("sunny, 21 C")},
        ]
        reply = chat("weather_tool", "", messages=messages, tools=[WEATHER_TOOL])
        print(f"weather_tool, turn 2: {reply.choices[0].message.content!r}")


if __name__ == "__main__":
    main()
