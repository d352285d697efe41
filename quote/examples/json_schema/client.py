# SPDX-License-Identifier: Apache-2.0
"""Structured output from ``quote serve`` with the ``openai`` client: ``response_format``.

``quote serve`` enforces ``response_format`` on every request (no mod needed), so the reply
is always JSON valid against the schema, streamed or not; a schema it cannot enforce is a
400 naming the problem.

Usage (server started with ``make serve``)::

    python -m quote.examples.json_schema.client [--base-url http://127.0.0.1:8000/v1] [--model NAME]
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

__all__ = ["CUSTOMER", "main", "request"]

logger = logging.getLogger(__name__)

CUSTOMER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 16},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "email": {"type": "string", "format": "email", "maxLength": 32},
        "since": {"type": "string", "format": "date"},
        "tags": {"type": "array", "items": {"enum": ["new", "vip", "late"]}, "maxItems": 3},
    },
    "required": ["name", "age", "email", "since", "tags"],
    "additionalProperties": False,
}
"""The schema of the example's answer."""


def request(model: str, schema: dict[str, Any] = CUSTOMER) -> dict[str, Any]:
    """The chat request: an OpenAI ``response_format`` of type ``json_schema``."""
    return {
        "model": model,
        "messages": [{"role": "user", "content": "Describe a customer as JSON."}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "customer", "schema": schema, "strict": True},
        },
        "max_tokens": 200,
        "temperature": 1.0,
    }


def _check(text: str) -> Any:
    """Parse the reply; validate it with ``jsonschema`` when installed (formats checked)."""
    value = json.loads(text)
    try:
        import jsonschema
    except ImportError:
        return value
    jsonschema.validate(value, CUSTOMER, format_checker=jsonschema.FormatChecker())
    return value


def main(argv: list[str] | None = None) -> None:
    """Ask for a customer as JSON, without and with streaming, and print both."""
    from openai import OpenAI

    parser = argparse.ArgumentParser(description="response_format json_schema over HTTP")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default=None, help="served model name (default: the first)")
    args = parser.parse_args(argv)
    client = OpenAI(base_url=args.base_url, api_key="unused")
    body = request(args.model or client.models.list().data[0].id)
    reply = client.chat.completions.create(**body)
    choice = reply.choices[0]
    if choice.finish_reason == "length":  # max_tokens ended it inside the value: a prefix
        print("cut by max_tokens:", choice.message.content)
    else:
        print(_check(choice.message.content or ""))
    text = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in client.chat.completions.create(**body, stream=True)
        if chunk.choices
    )
    print(_check(text))
    anything = client.chat.completions.create(
        **{**body, "response_format": {"type": "json_object"}}
    )
    print(json.loads(anything.choices[0].message.content or ""))


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
