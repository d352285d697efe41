# SPDX-License-Identifier: Apache-2.0
"""The JSON-schema mod over HTTP with the ``openai`` client.

**Needs the server** (``make serve``: ``quote serve`` with the ``json_schema`` mod
registered), which is still being built; this script is not tested yet. The schema travels
in the standard ``response_format``; the mod is selected with ``"<served>/json_schema"``.

Usage::

    python -m examples.json_schema.client [--base-url http://127.0.0.1:8000/v1] [--model NAME]
"""

from __future__ import annotations

import argparse
import json

from examples.json_schema.run import EXAMPLE_SCHEMA

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Ask for a JSON answer matching ``EXAMPLE_SCHEMA``, streaming and not."""
    from openai import OpenAI

    parser = argparse.ArgumentParser(description="JSON-schema mod over HTTP")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default=None, help="served model name (default: the first)")
    args = parser.parse_args(argv)
    client = OpenAI(base_url=args.base_url, api_key="unused")
    served = args.model or client.models.list().data[0].id
    request = {
        "model": f"{served}/json_schema",
        "messages": [{"role": "user", "content": "Describe a customer as JSON."}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "customer", "schema": EXAMPLE_SCHEMA},
        },
        "max_tokens": 160,
        "temperature": 1.0,
    }
    reply = client.chat.completions.create(**request)
    print(json.loads(reply.choices[0].message.content or "null"))
    text = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in client.chat.completions.create(**request, stream=True)
        if chunk.choices
    )
    print(json.loads(text))


if __name__ == "__main__":
    main()
