# SPDX-License-Identifier: Apache-2.0
"""Throughput of JSON-schema-constrained requests vs the same requests unconstrained.

Both configurations run on one pipeline, their batches claimed side by side and stepped
alternately (noise hits both alike); the constrained batch uses Quote's built-in
structured output (llguidance mask on the device bitmask sampler every step, fast-forward
tokens in chunks), the unconstrained one takes MAX's stock step. Reported per batch size:
median decode-step time while the batch is full and its ratio (unconstrained / constrained
ms), and throughput: tokens generated over the seconds of all those steps (a step that
forces a grammar's fast-forward tokens yields several tokens per request) and its ratio
(constrained / unconstrained tokens per second).

    python benchmarks/bench_constrained.py --batch-sizes 1,16,64           # CPU, tiny model
    python benchmarks/bench_constrained.py --devices gpu --model DIR ...   # H100/H200
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import tempfile
from pathlib import Path
from typing import Any

from _common import (
    Stepper,
    add_common_args,
    load_kwargs,
    machine_info,
    markdown_table,
    model_dir,
    random_prompt,
    write_json,
)

RECORDS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "id": {"type": "integer", "minimum": 0},
            "name": {"type": "string", "maxLength": 24},
            "kind": {"enum": ["alpha", "beta", "gamma", "delta"]},
            "active": {"type": "boolean"},
            "score": {"type": "number"},
        },
        "required": ["id", "name", "kind", "active", "score"],
        "additionalProperties": False,
    },
    "minItems": 40,
}
"""A typical record-list schema (integers, short strings, enums, booleans, numbers)."""

SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 40, "maxLength": 60},
        "body": {"type": "string", "minLength": 400, "maxLength": 400},
        "score": {"type": "integer", "minimum": 0, "maximum": 100},
    },
    "required": ["title", "body", "score"],
    "additionalProperties": False,
}
"""Long bounded strings (a costly lexer state for masks): every request stays live."""
SCHEMAS = {"long-strings": SCHEMA, "records": RECORDS}


def measure(
    loaded: Any,
    batch: int,
    steps: int,
    prompt_len: int,
    reps: int,
    schema: Any = SCHEMA,
    profile: Any = None,
) -> dict[str, float]:
    """Interleaved constrained / unconstrained batches; per-step medians over ``reps`` runs."""
    vocab = int(loaded.pipeline.vocab_size)
    tok_len = len(loaded.hf_tokenizer)
    times: dict[str, list[float]] = {"free": [], "json": []}
    tokens: dict[str, list[float]] = {"free": [], "json": []}
    totals = {"free": [0.0, 0.0], "json": [0.0, 0.0]}  # tokens, seconds while the batch is full
    for rep in range(reps):
        prompts = [
            random_prompt(prompt_len, min(vocab, tok_len), 1000 * rep + i) for i in range(batch)
        ]
        runs = {
            "free": Stepper(loaded, prompts, max_new_tokens=steps + 2),
            "json": Stepper(
                loaded, prompts, max_new_tokens=steps + 2, constraint={"schema": schema}
            ),
        }
        for s in runs.values():
            s.step()  # prefill
        for _ in range(steps):
            for name, s in runs.items():
                if len(s.live) == batch:
                    before = sum(len(t) for t in s.out.tokens)
                    if profile is not None and name == "json":
                        profile.enable()
                    dt = s.step()
                    if profile is not None and name == "json":
                        profile.disable()
                    made = sum(len(t) for t in s.out.tokens) - before
                    times[name].append(dt)
                    tokens[name].append(made / dt)
                    totals[name][0] += made
                    totals[name][1] += dt
        for s in runs.values():
            while not s.done:
                s.step()
            s.close()
    free_ms = statistics.median(times["free"]) * 1e3
    json_ms = statistics.median(times["json"]) * 1e3
    return {
        "batch": batch,
        "free_ms": free_ms,
        "json_ms": json_ms,
        "free_tok_s": statistics.median(tokens["free"]),
        "json_tok_s": statistics.median(tokens["json"]),
        "ratio": free_ms / json_ms,
        "free_total_tok_s": totals["free"][0] / totals["free"][1],
        "json_total_tok_s": totals["json"][0] / totals["json"][1],
        "throughput_ratio": (totals["json"][0] / totals["json"][1])
        / (totals["free"][0] / totals["free"][1]),
        "json_steps": len(times["json"]),
    }


def with_tokenizer(model: Path, size: int) -> Path:
    """A view of ``model`` (weights linked) with a synthetic ``size``-token tokenizer
    (``_structured.synthetic_tokenizer``): mask costs as on Gemma 3's 262,144-token vocabulary."""
    from _structured import synthetic_tokenizer

    out = Path(tempfile.mkdtemp(prefix=f"quote-{size}-tok-"))
    for f in model.iterdir():
        if not f.name.startswith(("tokenizer", "special_tokens")):
            (out / f.name).symlink_to(f.resolve())
    corpus_dir = Path(__file__).parents[1] / "quote" / "tiny" / "corpus"
    corpus = [p.read_text() for p in sorted(corpus_dir.glob("*.txt"))]
    synthetic_tokenizer(corpus, size=size).save_pretrained(out)
    return out


def main() -> None:
    """Run each batch size and print one table."""
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser, reps=3, out="benchmarks/results/constrained.json")
    parser.add_argument("--batch-sizes", default="1,16,64")
    parser.add_argument("--steps", type=int, default=48)
    parser.add_argument("--prompt-len", type=int, default=64)
    parser.add_argument("--schema", default="long-strings", choices=sorted(SCHEMAS))
    parser.add_argument(
        "--tokenizer-size", type=int, default=0, help="use a synthetic tokenizer of this size"
    )
    parser.add_argument(
        "--profile", type=int, default=0, help="print a cProfile of the json steps at this batch"
    )
    a = parser.parse_args()
    from quote.pipelines.loader import load_pipeline

    batches = [int(b) for b in a.batch_sizes.split(",")]
    model = model_dir(a.model)
    if a.tokenizer_size:
        model = with_tokenizer(model, a.tokenizer_size)
    loaded = load_pipeline(
        model,
        devices=a.devices,
        max_batch_size=2 * max(batches),
        max_length=1024,
        **load_kwargs(a),
    )
    rows = []
    for b in batches:
        prof = cProfile.Profile() if a.profile == b else None
        rows.append(measure(loaded, b, a.steps, a.prompt_len, a.reps, SCHEMAS[a.schema], prof))
        if prof is not None:
            pstats.Stats(prof).sort_stats("tottime").print_stats(30)
            pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
    print(
        markdown_table(
            [
                "batch",
                "unconstrained ms/step",
                "json ms/step",
                "unconstrained tok/s",
                "json tok/s",
                "step ratio (unconstrained/json ms)",
                "unconstrained tokens/s (all steps)",
                "json tokens/s (all steps)",
                "throughput ratio (json/unconstrained tokens/s)",
            ],
            [
                [
                    r["batch"],
                    r["free_ms"],
                    r["json_ms"],
                    r["free_tok_s"],
                    r["json_tok_s"],
                    r["ratio"],
                    r["free_total_tok_s"],
                    r["json_total_tok_s"],
                    r["throughput_ratio"],
                ]
                for r in rows
            ],
        )
    )
    write_json(a.out, {"machine": machine_info(a.devices), "args": vars(a), "rows": rows})


if __name__ == "__main__":
    main()
