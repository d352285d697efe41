# SPDX-License-Identifier: Apache-2.0
"""Built-in structured output through a real ``quote serve``, driven by the ``openai`` client.

``response_format`` (json_object, json_schema strict or not), ``chat.completions.parse``
with a pydantic model, ``tool_choice`` required / named / none, streaming and not, with
and without mods; bad schemas are 400s naming what is wrong. Outputs are checked with
``jsonschema`` (format checks on), an oracle that is not Quote's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import openai
import pydantic
import pytest
from server_proc import mod_server, served_name

from quote.server.process import ServerProcess

pytestmark = pytest.mark.integration

KEY = "structured-key"
MODS = (
    (Path(__file__).parents[2] / "benchmarks" / "mixed_mods.py").read_text()
    + """

@mod
def badforce(e, a, t):
    if isinstance(e, Prefilled):
        return a.force_tokens(t.encode("not json", add_special_tokens=False))
"""
)
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "email": {"type": "string", "format": "email", "maxLength": 24},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 3},
    },
    "required": ["name", "age", "email", "tags"],
    "additionalProperties": False,
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look a booking up",
            "parameters": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer", "minimum": 0, "maximum": 9999},
                    "urgent": {"type": "boolean"},
                },
                "required": ["id", "urgent"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "cancel",
            "parameters": {
                "type": "object",
                "properties": {"reason": {"enum": ["plans changed", "price"]}},
                "required": ["reason"],
            },
        },
    },
]
CHECKER = jsonschema.FormatChecker()


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("structured")
    with mod_server(
        tiny_model, workdir, KEY, MODS, ("mask", "backtrack", "tool", "badforce", "noop")
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base + "/v1", api_key="x", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def served(server: ServerProcess) -> str:
    return served_name(server)


def _schema_format(schema: dict[str, Any], strict: bool = True) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": strict}}


@pytest.mark.parametrize("mod", [None, "mask", "noop"])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
@pytest.mark.parametrize("strict", [True, False])
def test_json_schema_output_is_valid(
    client: openai.OpenAI, served: str, mod: str | None, temperature: float, strict: bool
) -> None:
    r = client.chat.completions.create(
        model=served if mod is None else f"{served}/{mod}",
        messages=[{"role": "user", "content": "a person, please"}],
        response_format=_schema_format(PERSON, strict),  # type: ignore[arg-type]
        max_tokens=400,
        temperature=temperature,
        seed=7,
    )
    choice = r.choices[0]
    assert choice.finish_reason == "stop", choice
    jsonschema.validate(json.loads(choice.message.content or ""), PERSON, format_checker=CHECKER)


def test_mod_forcing_what_the_schema_forbids(client: openai.OpenAI, served: str) -> None:
    for mod in ("badforce",):
        with pytest.raises(openai.UnprocessableEntityError) as err:
            client.chat.completions.create(
                model=f"{served}/{mod}",
                messages=[{"role": "user", "content": "hi"}],
                response_format={"type": "json_object"},
                max_tokens=200,
            )
        assert f"mod '{mod}'" in str(err.value) and "response_format" in str(err.value)


def test_json_object_streaming(client: openai.OpenAI, served: str) -> None:
    """Any JSON object: the tiny random model may wander until max_tokens, so several seeds
    run; every completed one must be an object, every other one must have hit the cap."""
    completed = 0
    for seed in range(6):
        stream = client.chat.completions.create(
            model=served,
            messages=[{"role": "user", "content": "json"}],
            response_format={"type": "json_object"},
            max_tokens=120,
            stream=True,
            stream_options={"include_usage": True},
            temperature=1.0,
            seed=seed,
        )
        parts, reasons, used = [], [], 0
        for chunk in stream:
            used = chunk.usage.completion_tokens if chunk.usage else used
            for c in chunk.choices:
                parts.append(c.delta.content or "")
                if c.finish_reason:
                    reasons.append(c.finish_reason)
        assert len(reasons) == 1, reasons
        if reasons[0] == "stop":
            completed += 1
            assert isinstance(json.loads("".join(parts)), dict)
        else:
            assert reasons == ["length"] and used == 120, (reasons, used)
    assert completed >= 1


class Person(pydantic.BaseModel):
    name: str = pydantic.Field(max_length=10)
    age: int = pydantic.Field(ge=0, le=120)
    likes_cats: bool


def test_parse_with_pydantic_model(client: openai.OpenAI, served: str) -> None:
    r = client.chat.completions.parse(
        model=served,
        messages=[{"role": "user", "content": "a person"}],
        response_format=Person,
        max_tokens=300,
    )
    person = r.choices[0].message.parsed
    assert isinstance(person, Person), r


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("choice", ["required", "lookup", "cancel"])
def test_tool_choice_forces_a_valid_call(
    client: openai.OpenAI, served: str, choice: str, stream: bool
) -> None:
    tool_choice: Any = (
        choice if choice == "required" else {"type": "function", "function": {"name": choice}}
    )
    kwargs: dict[str, Any] = {
        "model": served,
        "messages": [{"role": "user", "content": "cancel booking 7"}],
        "tools": TOOLS,
        "tool_choice": tool_choice,
        "max_tokens": 300,
        # `cancel` allows extra argument keys: sampled without a seed, the random model can
        # extend them past max_tokens (seen once in CI); greedy makes the run reproducible.
        "temperature": 0,
    }
    if stream:
        calls: list[Any] = []
        reasons = []
        for chunk in client.chat.completions.create(stream=True, **kwargs):
            for c in chunk.choices:
                assert not c.delta.content
                calls += c.delta.tool_calls or []
                if c.finish_reason:
                    reasons.append(c.finish_reason)
        assert reasons == ["tool_calls"]
        name, arguments = calls[0].function.name, calls[0].function.arguments
    else:
        r = client.chat.completions.create(**kwargs)
        msg = r.choices[0].message
        assert r.choices[0].finish_reason == "tool_calls" and msg.content is None, r
        assert msg.tool_calls and len(msg.tool_calls) == 1
        name, arguments = msg.tool_calls[0].function.name, msg.tool_calls[0].function.arguments
    if choice != "required":
        assert name == choice
    params = next(t["function"]["parameters"] for t in TOOLS if t["function"]["name"] == name)
    jsonschema.validate(json.loads(arguments), params, format_checker=CHECKER)


def test_tool_choice_none_forbids_a_mods_tool_call(client: openai.OpenAI, served: str) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as err:
        client.chat.completions.create(
            model=f"{served}/tool",
            messages=[{"role": "user", "content": "hi"}],
            tools=TOOLS,  # type: ignore[arg-type]
            tool_choice="none",
            max_tokens=20,
        )
    assert "tool_choice 'none'" in str(err.value)


def test_length_inside_a_value_is_length(client: openai.OpenAI, served: str) -> None:
    r = client.chat.completions.create(
        model=served,
        messages=[{"role": "user", "content": "a person"}],
        response_format=_schema_format(PERSON),  # type: ignore[arg-type]
        max_tokens=6,
    )
    assert r.choices[0].finish_reason == "length"


@pytest.mark.parametrize(
    ("response_format", "needle", "param"),
    [
        (_schema_format({"type": "strin"}), "strin", "response_format"),
        (_schema_format({"type": "string", "pattern": "(a"}), "regex", "response_format"),
        (_schema_format({"$ref": "#/definitions/missing"}), "missing", "response_format"),
        ({"type": "yaml"}, "yaml", "response_format.type"),
        ({"type": "json_schema"}, "json_schema", "response_format"),
    ],
    ids=["bad-type", "bad-pattern", "bad-ref", "unknown-kind", "no-schema"],
)
def test_bad_schemas_are_400_naming_the_problem(
    server: ServerProcess, served: str, response_format: Any, needle: str, param: str
) -> None:
    body = {
        "model": served,
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": response_format,
        "max_tokens": 4,
    }
    r = httpx.post(server.base + "/v1/chat/completions", json=body, timeout=60)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert needle in err["message"] and err["param"] == param, err
    assert server.healthy()


def test_bad_tool_choice_is_400(server: ServerProcess, served: str) -> None:
    body = {
        "model": served,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": TOOLS,
        "tool_choice": {"type": "function", "function": {"name": "nope"}},
    }
    r = httpx.post(server.base + "/v1/chat/completions", json=body, timeout=60)
    assert r.status_code == 400 and "nope" in r.json()["error"]["message"], r.text
