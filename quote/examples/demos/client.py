# SPDX-License-Identifier: Apache-2.0
"""The demos over HTTP with the ``openai`` client.

Start a server with the demos preloaded (``quote serve`` imports them from the installed
package)::

    quote serve --mod quote.examples.demos:greeting --mod quote.examples.demos:no_letter_e \\
        --mod quote.examples.demos:replace_phrase --mod quote.examples.demos:stop_early \\
        --mod quote.examples.demos:weather_tool --mod quote.examples.demos:rewrite_prompt \\
        --mod quote.examples.demos:json_report

Each request selects its mod through the model name, ``"<served>/<mod>"``. Usage::

    python -m quote.examples.demos.client [--base-url http://127.0.0.1:8000/v1] [--model NAME]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from quote.examples.demos.mods import WEATHER_TOOL

__all__ = ["Reply", "main", "run_demos"]

Reply = tuple[str, str, str | None, list[tuple[str, str]]]
"""One demo request's ``(mod, content, finish_reason, [(tool name, arguments JSON)])``."""


def run_demos(client: Any, served: str, *, seed: int | None = None) -> list[Reply]:
    """One chat request per demo mod, then the tool round trip's second turn
    (``"weather_tool/2"``); returns what each request answered. ``seed`` makes the sampled
    replies reproducible."""

    def chat(mod: str, content: str, **extra: Any) -> Any:
        if seed is not None:
            extra.setdefault("seed", seed)
        return client.chat.completions.create(
            model=f"{served}/{mod}",
            messages=extra.pop("messages", [{"role": "user", "content": content}]),
            max_tokens=extra.pop("max_tokens", 24),
            **extra,
        )

    def reply(mod: str, answer: Any) -> Reply:
        choice = answer.choices[0]
        calls = [(c.function.name, c.function.arguments) for c in choice.message.tool_calls or []]
        return mod, choice.message.content or "", choice.finish_reason, calls

    quote_args = {
        "chat_template_kwargs": {"quote": {"args": {"phrase": "data", "replacement": "DATA"}}}
    }
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("greeting", "Say something.", {}),
        ("no_letter_e", "Write a sentence.", {}),
        ("replace_phrase", "Where is the data?", {"extra_body": quote_args}),
        ("stop_early", "Tell me a story.", {}),
        ("rewrite_prompt", "What is Quote?", {}),
        ("json_report", "The weather as JSON:", {"max_tokens": 64}),
    ]
    out = [reply(mod, chat(mod, content, **extra)) for mod, content, extra in cases]

    # The tool round trip: a tool call, then the answer from the tool's result.
    question = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = chat("weather_tool", "", messages=question, tools=[WEATHER_TOOL])
    out.append(reply("weather_tool", first))
    calls = first.choices[0].message.tool_calls or []
    if calls:
        messages = [
            *question,
            {"role": "assistant", "tool_calls": [c.model_dump() for c in calls]},
            {"role": "tool", "tool_call_id": calls[0].id, "content": json.dumps("sunny, 21 C")},
        ]
        second = chat("weather_tool", "", messages=messages, tools=[WEATHER_TOOL])
        out.append(reply("weather_tool/2", second))
    return out


def main(argv: list[str] | None = None) -> None:
    """Send one chat request per demo mod and print the replies."""
    from openai import OpenAI

    parser = argparse.ArgumentParser(description="Quote demos over HTTP")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default=None, help="served model name (default: the first)")
    args = parser.parse_args(argv)
    client = OpenAI(base_url=args.base_url, api_key="unused")
    served = args.model or client.models.list().data[0].id
    for mod, content, finish, calls in run_demos(client, served):
        print(f"{mod}: {content!r} ({finish})" + (f" calls {calls}" if calls else ""))


if __name__ == "__main__":
    main()
