# SPDX-License-Identifier: Apache-2.0
"""The llguidance strategies on the real engine (tiny Gemma3, CPU, sampling at temperature 1).

Every JSON output is checked with ``jsonschema`` (format checks on), an oracle that is not
Quote's; text strategies with Python's ``re``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from json_cases import SCHEMAS
from json_oracle import check_json

from quote.examples.json_schema.mod import VERDICT, verdict
from quote.hot.state import RequestOptions
from quote.pipelines.local import LocalEngine, Request, Result
from quote.sdk import Added, ForwardPass, Mod, ModDefinition
from quote.sdk.strategies import (
    Grammar,
    JsonSchema,
    Regex,
    Strategy,
    StrategyRunner,
    Until,
    UntilAny,
    constrain,
)
from quote.sdk.strategies import masks as mask_module

pytestmark = pytest.mark.integration

SEEDS = (0, 1, 2)
MAX_TOKENS = 160
BATCH = 16


@pytest.fixture(scope="module")
def engine(pipeline_factory: Any) -> LocalEngine:
    return LocalEngine(pipeline_factory("default"))


@pytest.fixture(scope="module")
def prompt(engine: LocalEngine) -> list[int]:
    return [int(t) for t in engine.loaded.hf_tokenizer.encode("Reply with JSON only:")]


def request(
    prompt: list[int], mod: Any, seed: int, *, stream: bool = False, **opts: Any
) -> Request:
    options = RequestOptions(mods=[mod], stream=stream, **opts)
    return Request(prompt, MAX_TOKENS, temperature=1.0, seed=seed, options=options)


def run_batched(engine: LocalEngine, reqs: list[Request]) -> list[Result]:
    out: list[Result] = []
    for i in range(0, len(reqs), BATCH):
        out.extend(engine.generate(reqs[i : i + BATCH]))
    return out


def text_of(engine: LocalEngine, result: Result) -> str:
    return str(engine.loaded.hf_tokenizer.decode(result.tokens, skip_special_tokens=True))


def test_every_json_output_is_valid(engine: LocalEngine, prompt: list[int]) -> None:
    """Every schema x seed, streaming every other request: valid, and streams are exact."""
    cases = [(name, schema, seed) for name, schema in SCHEMAS for seed in SEEDS]
    reqs = [
        request(prompt, constrain(JsonSchema(schema), hold_back=0), seed, stream=bool(i % 2))
        for i, (_, schema, seed) in enumerate(cases)
    ]
    failures = []
    for (name, schema, seed), req, r in zip(cases, reqs, run_batched(engine, reqs), strict=True):
        text = text_of(engine, r)
        try:
            assert r.error is None and r.finish_reason == "stop", (r.error, r.finish_reason)
            check_json(text, schema)
            if req.options.stream:
                assert [t for c in r.chunks for t in c] == r.tokens
        except (AssertionError, ValueError) as exc:
            failures.append((name, seed, text, str(exc)[:200]))
    assert not failures, failures


def test_packed_masks_on_the_engine(
    engine: LocalEngine, prompt: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Masks past SPARSE_LIMIT travel as allow_bitmask (the tiny vocabulary never gets there,
    so the limit is lowered): the engine applies them, outputs stay valid."""
    monkeypatch.setattr(mask_module, "SPARSE_LIMIT", 4)
    name, schema = SCHEMAS[0]
    mod = constrain(JsonSchema(schema))
    reqs = [request(prompt, mod, seed, stream=bool(seed % 2), trace=True) for seed in SEEDS]
    for r in engine.generate(reqs):
        assert r.error is None and r.finish_reason == "stop", (name, r.error)
        check_json(text_of(engine, r), schema)
        masks = [str(e.get("action", "")) for e in r.trace["entries"]]
        assert any("AdjustedLogits(allow=None" in m for m in masks), masks


TEXT_CASES: list[tuple[Strategy, str]] = [
    (Regex(r"[0-9]{2,4}-[a-z]{1,3}"), r"[0-9]{2,4}-[a-z]{1,3}"),
    (Regex(r"(cat|dog|bird)s?", max_chars=4), r"(cat|dog|bird)s?"),
    (Until("</a>", max_chars=30), r"(?s)(?:(?!</a>).){30}|(?:(?!</a>).)*</a>"),
    (UntilAny(".!?", max_chars=20), r"[^.!?]{20}|[^.!?]{0,19}[.!?]"),
    (
        Grammar('start: "(" NUM ("," NUM)* ")"\nNUM: /[1-9][0-9]?/'),
        r"\([1-9][0-9]?(,[1-9][0-9]?)*\)",
    ),
]


@pytest.mark.parametrize(("strategy", "oracle"), TEXT_CASES, ids=lambda x: type(x).__name__)
def test_text_strategies(
    engine: LocalEngine, prompt: list[int], strategy: Strategy, oracle: str
) -> None:
    reqs = [request(prompt, constrain(strategy), seed) for seed in range(4)]
    for r in engine.generate(reqs):
        assert r.error is None, r.error
        assert re.fullmatch(oracle, text_of(engine, r)), text_of(engine, r)


class TakeBack(Mod):
    """A JSON answer that backtracks three tokens once, mid-answer (the runner follows)."""

    SCHEMA: dict[str, Any] = {
        "type": "array",
        "items": {"type": "integer", "minimum": 0, "maximum": 99},
        "minItems": 3,
        "maxItems": 6,
    }

    def on_start(self, request: Any) -> None:
        self.runner: StrategyRunner | None = None
        self.undone = False

    def handle(self, event: Any, actions: Any, tokenizer: Any) -> Any:
        self.runner = self.runner or StrategyRunner(JsonSchema(self.SCHEMA), tokenizer)
        if isinstance(event, ForwardPass):
            if self.runner.done:
                return actions.force_tokens([tokenizer.eos_token_id])
            return self.runner.forward(event, actions)
        if isinstance(event, Added):
            self.runner.added(event.tokens)
            if not self.undone and len(self.runner.state.tokens) >= 4:
                self.undone = True
                self.runner.backtrack(3)
                return actions.backtrack(3)
        return None


@pytest.mark.parametrize("stream", [False, True])
def test_backtracking_mod_keeps_the_matcher_in_step(
    engine: LocalEngine, prompt: list[int], stream: bool
) -> None:
    take_back = ModDefinition("take_back", TakeBack)
    reqs = [request(prompt, take_back, seed, stream=stream, trace=True) for seed in range(4)]
    for r in engine.generate(reqs):
        assert r.error is None and r.finish_reason == "stop", r.error
        check_json(text_of(engine, r), TakeBack.SCHEMA)
        assert any("Backtrack" in str(e.get("action", "")) for e in r.trace["entries"])


def test_example_mod(engine: LocalEngine, prompt: list[int]) -> None:
    schema = {"type": "array", "items": {"type": "boolean"}, "minItems": 2, "maxItems": 2}
    reqs = [request(prompt, verdict, seed) for seed in SEEDS]
    reqs += [request(prompt, verdict, 0, args={"schema": schema})]
    reqs += [request(prompt, verdict, 0, args={"schema": {"type": "bogus"}})]
    *defaults, custom, bad = engine.generate(reqs)
    for r in defaults:
        assert r.error is None and r.finish_reason == "stop", r.error
        check_json(text_of(engine, r), VERDICT)
    check_json(text_of(engine, custom), schema)
    assert bad.finish_reason == "error" and "bogus" in (bad.error or "") and bad.tokens == []
