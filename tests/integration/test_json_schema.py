# SPDX-License-Identifier: Apache-2.0
"""The JSON-schema example mod on the real engine (tiny Gemma3, CPU): every output is valid."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from typing import Any

import jsonschema
import pytest

from examples.json_schema.mod import json_schema
from examples.json_schema.suite import SCHEMAS, UNSUPPORTED
from quote.hot.state import RequestOptions
from quote.pipelines.local import LocalEngine, Request, Result
from quote.sdk import Conversation

pytestmark = pytest.mark.integration

logger = logging.getLogger(__name__)

SEEDS = (0, 1, 2)
MAX_TOKENS = 160
BATCH = 16


@pytest.fixture(scope="module")
def engine(pipeline_factory: Any) -> LocalEngine:
    return LocalEngine(pipeline_factory("default"))


@pytest.fixture(scope="module")
def prompt(engine: LocalEngine) -> list[int]:
    return [int(t) for t in engine.loaded.hf_tokenizer.encode("Reply with JSON only:")]


def response_format(schema: Any) -> Conversation:
    return Conversation(
        messages=[{"role": "user", "content": "Reply with JSON only."}],
        response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema}},
    )


def request(prompt: list[int], schema: Any, seed: int, *, stream: bool) -> Request:
    return Request(
        prompt,
        MAX_TOKENS,
        temperature=1.0,
        seed=seed,
        options=RequestOptions(
            mods=[json_schema], stream=stream, conversation=response_format(schema)
        ),
    )


def run_batched(engine: LocalEngine, reqs: list[Request]) -> list[Result]:
    out: list[Result] = []
    for i in range(0, len(reqs), BATCH):
        out.extend(engine.generate(reqs[i : i + BATCH]))
    return out


def text_of(engine: LocalEngine, result: Result) -> str:
    return str(engine.loaded.hf_tokenizer.decode(result.tokens))


def test_every_output_is_valid(engine: LocalEngine, prompt: list[int]) -> None:
    """All suite schemas x seeds, sampled at temperature 1.0, streaming and not."""
    cases = [(g, n, s, seed) for g, n, s in SCHEMAS for seed in SEEDS]
    reqs = [request(prompt, s, seed, stream=bool(i % 2)) for i, (_, _, s, seed) in enumerate(cases)]
    results = run_batched(engine, reqs)
    table: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    failures = []
    for (group, name, schema, seed), req, r in zip(cases, reqs, results, strict=True):
        text = text_of(engine, r)
        ok = r.error is None and r.finish_reason == "stop"
        if ok:
            try:
                jsonschema.validate(json.loads(text), schema)
                if req.options.stream:
                    assert [t for c in r.chunks for t in c] == r.tokens
            except (ValueError, jsonschema.ValidationError, AssertionError) as exc:
                ok = False
                failures.append((name, seed, text, str(exc)[:200]))
        else:
            failures.append((name, seed, text, r.error))
        table[group][0] += int(ok)
        table[group][1] += 1
    for group, (passed, total) in table.items():
        logger.info("json_schema validity %-12s %d/%d", group, passed, total)
    assert not failures, failures
    assert len(SCHEMAS) >= 30


def test_schema_from_mod_args(engine: LocalEngine, prompt: list[int]) -> None:
    schema = SCHEMAS[0][2]
    req = Request(
        prompt,
        MAX_TOKENS,
        temperature=1.0,
        options=RequestOptions(mods=[json_schema], args={"schema": schema}),
    )
    (r,) = engine.generate([req])
    assert r.error is None and r.finish_reason == "stop"
    jsonschema.validate(json.loads(text_of(engine, r)), schema)


def test_streaming_chunks_equal_final_output(engine: LocalEngine, prompt: list[int]) -> None:
    schema = next(s for _, n, s in SCHEMAS if n == "object_in_object")
    reqs = [request(prompt, schema, seed, stream=True) for seed in range(4)]
    for r in engine.generate(reqs):
        streamed = [t for c in r.chunks for t in c]
        assert streamed == r.tokens and len(r.chunks) > 1
        jsonschema.validate(json.loads(text_of(engine, r)), schema)


def test_unsupported_features_fail_naming_the_feature(
    engine: LocalEngine, prompt: list[int]
) -> None:
    reqs = [request(prompt, s, 0, stream=True) for _, s in UNSUPPORTED]
    for (feature, _), r in zip(UNSUPPORTED, engine.generate(reqs), strict=True):
        assert r.finish_reason == "error", (feature, r.tokens)
        assert r.tokens == [] and feature in (r.error or ""), (feature, r.error)


def test_short_budget_still_valid_or_refused(engine: LocalEngine, prompt: list[int]) -> None:
    """Near max_tokens the mod closes the document; below its minimum it refuses."""
    schema = next(s for _, n, s in SCHEMAS if n == "recursive_tree")
    reqs = [
        Request(
            prompt,
            n,
            temperature=1.0,
            seed=n,
            options=RequestOptions(mods=[json_schema], conversation=response_format(schema)),
        )
        for n in (8, 12, 20, 30)
    ]
    for n, r in zip((8, 12, 20, 30), engine.generate(reqs), strict=True):
        assert r.error is None and r.finish_reason == "stop", (n, r.error)
        assert len(r.tokens) <= n
        jsonschema.validate(json.loads(text_of(engine, r)), schema)
    tight = Request(
        prompt, 3, options=RequestOptions(mods=[json_schema], conversation=response_format(schema))
    )
    (r,) = engine.generate([tight])
    assert r.finish_reason == "error" and "too small" in (r.error or "")
