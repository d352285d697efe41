# SPDX-License-Identifier: Apache-2.0
"""Run the JSON-schema mod in-process, or measure its validity table over the suite.

Usage::

    python -m examples.json_schema.run [MODEL_DIR]              # one schema, a few seeds
    python -m examples.json_schema.run [MODEL_DIR] --validity   # the whole suite, 3 seeds

``MODEL_DIR`` defaults to ``.quote/tiny-model`` (written when missing).
"""

from __future__ import annotations

import argparse
import json
import logging
import pathlib
from collections import defaultdict
from typing import Any

from examples.json_schema.mod import json_schema
from examples.json_schema.suite import SCHEMAS
from quote.hot.state import RequestOptions
from quote.sdk import Conversation

__all__ = ["main", "options_for"]

logger = logging.getLogger(__name__)

EXAMPLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 16},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "email": {"type": "string", "pattern": "^[a-z]{1,8}@[a-z]{1,8}\\.com$"},
        "tags": {"type": "array", "items": {"enum": ["new", "vip", "late"]}, "maxItems": 3},
    },
    "required": ["name", "age"],
}


def options_for(schema: Any, *, stream: bool = True) -> RequestOptions:
    """Request options carrying ``schema`` as an OpenAI ``response_format``."""
    rf = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
    return RequestOptions(
        mods=[json_schema], stream=stream, conversation=Conversation(response_format=rf)
    )


def _validity(engine: Any, prompt: list[int], seeds: int, max_tokens: int) -> None:
    import jsonschema

    from quote.pipelines.local import Request

    tok = engine.loaded.hf_tokenizer
    cases = [(g, s, seed) for g, _, s in SCHEMAS for seed in range(seeds)]
    reqs = [
        Request(
            prompt,
            max_tokens,
            temperature=1.0,
            seed=seed,
            options=options_for(s, stream=bool(i % 2)),
        )
        for i, (_, s, seed) in enumerate(cases)
    ]
    results = []
    for i in range(0, len(reqs), 16):
        results.extend(engine.generate(reqs[i : i + 16]))
    table: dict[str, list[int]] = defaultdict(
        lambda: [0, 0, 0, 0]
    )  # schemas ok, total, runs ok, runs
    per_schema: dict[int, bool] = {}
    for (group, schema, _), r in zip(cases, results, strict=True):
        ok = r.error is None
        if ok:
            try:
                jsonschema.validate(json.loads(tok.decode(r.tokens)), schema)
            except (ValueError, jsonschema.ValidationError):
                ok = False
        table[group][2] += int(ok)
        table[group][3] += 1
        per_schema[id(schema)] = per_schema.get(id(schema), True) and ok
    for group, _, schema in SCHEMAS:
        table[group][0] += int(per_schema[id(schema)])
        table[group][1] += 1
    print("| feature group | schemas passed / total | outputs valid / total |")
    print("|---|---|---|")
    totals = [0, 0, 0, 0]
    for group, row in table.items():
        print(f"| {group} | {row[0]}/{row[1]} | {row[2]}/{row[3]} |")
        totals = [a + b for a, b in zip(totals, row, strict=True)]
    print(f"| **all** | **{totals[0]}/{totals[1]}** | **{totals[2]}/{totals[3]}** |")


def main(argv: list[str] | None = None) -> None:
    """Load the model and generate constrained JSON (or the validity table)."""
    parser = argparse.ArgumentParser(description="JSON-schema mod, in-process")
    parser.add_argument("model", nargs="?", default=".quote/tiny-model")
    parser.add_argument("--validity", action="store_true", help="run the whole schema suite")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=160)
    args = parser.parse_args(argv)
    model = pathlib.Path(args.model)
    if not (model / "config.json").exists():
        from quote.tiny import write_tiny_model

        write_tiny_model(model)
    from quote.pipelines.loader import load_pipeline
    from quote.pipelines.local import LocalEngine, Request

    loaded = load_pipeline(model, devices="cpu", max_batch_size=16, max_length=2048)
    engine = LocalEngine(loaded)
    tok = loaded.hf_tokenizer
    prompt = [int(t) for t in tok.encode("Describe a customer as JSON:")]
    if args.validity:
        _validity(engine, prompt, args.seeds, args.max_tokens)
        return
    reqs = [
        Request(
            prompt, args.max_tokens, temperature=1.0, seed=s, options=options_for(EXAMPLE_SCHEMA)
        )
        for s in range(args.seeds)
    ]
    for r in engine.generate(reqs):
        print(tok.decode(r.tokens), f"(finish={r.finish_reason}, error={r.error})")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
