# SPDX-License-Identifier: Apache-2.0
"""Quote's llguidance grammar core vs MAX's built-in structured output on JSONSchemaBench.

Usage::

    .venv/bin/python benchmarks/bench_structured.py [--data DIR] [--limit N] [--seeds 2]
        [--max-tokens 384] [--batch 16] [--budget 2.0] [--mask-reps 3] [--model DIR]
        [--devices cpu|gpu] [--mem F] [--what-if] [--non-strict] [--skip-generation] [--out PATH]

One process, one model, the schemas of ``--data`` (JSONSchemaBench's sample, read in place:
default ``../shared/data/jsonschemabench`` from the repository root), per dataset folder.

1. **Coverage**: each schema is compiled by both sides on the model's tokenizer. Quote:
   :func:`quote.sdk.grammar.compile_grammar` (``GrammarSpec.json_schema(schema,
   strict=True)``, what a ``response_format`` with ``"strict": true`` gets; MAX's xgrammar is
   always strict, refusing unlisted properties; ``--non-strict`` adds Quote with
   ``strict: false``, plain JSON Schema semantics), ``--budget`` seconds). MAX: its pipeline's own grammar backend (xgrammar, vendored as
   ``max._xgrammar``), ``compile_json_schema`` + ``create_matcher`` as its
   ``StructuredOutputHelper.build_matcher`` does; no time budget (compiles over Quote's are
   counted).
2. **Validity**: MAX's stock ``TextGenerationPipeline`` is loaded once with
   ``enable_structured_output=True`` (on CPU past MAX's config-time refusal, see
   :func:`_structured.structured_output_past_cpu_check`). Every request's ``TextContext``
   gets what MAX's server gives a ``response_format`` json_schema request (``json_schema`` and
   an enforcing ``grammar_state``); MAX then compiles the schema, fills the request's
   bitmask row each step and advances the matcher with each token. The two sides differ in
   one object only: the helper's grammar backend, MAX's ``XgrammarBackend`` or
   :class:`_structured.LlguidanceBackend` (Quote's ``compile_grammar`` + ``Matcher.mask`` /
   ``consume``). Same weights, sampler graph, seeds, EOS set and step loop. Each compiled
   schema runs once greedy and ``--seeds`` times at temperature 1 (seeds ``0..N-1``), at most
   ``--max-tokens`` tokens; outputs are checked with ``jsonschema`` (format checks on:
   :func:`_structured.validate`); each is classed as one of :data:`OUTCOMES`: an output cut
   at ``--max-tokens`` before its value is complete counts as **cut**, one holding a number
   beyond float64 as **inf**, apart from invalid ones. Quote's outputs are also fed through
   MAX's matcher (which of them MAX's grammar would refuse).
3. **Compile time** p50 / p99 on the model's tokenizer and on a 262,144-token one
   (:func:`_structured.synthetic_tokenizer`, the Gemma-3 vocabulary size), both sides.
4. **Mask time**: the valid outputs of step 2 (Quote's and MAX's), re-tokenized with the
   262,144-token tokenizer, replayed through a fresh matcher per output: per token one
   ``Matcher.mask`` + ``Matcher.consume`` (MAX: ``fill_next_token_bitmask`` +
   ``accept_token``), plus the final mask that allows EOS; the fastest of ``--mask-reps``
   replays kept; µs per step overall, per request (p50 / p99) and per step.

``--what-if`` adds a third backend: the same Quote path with llguidance options Quote does
not set (``coerce_one_of``, ``lenient``), to show what they would change. Prints markdown
tables; writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import load_kwargs, machine_info, markdown_table, model_dir, write_json
from _structured import (
    OVERFLOW,
    LlguidanceBackend,
    Schema,
    load_schemas,
    structured_output_past_cpu_check,
    synthetic_tokenizer,
    timed,
    validate,
)

from quote.pipelines.local import LocalEngine, Request, Result

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "jsonschemabench"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "cpu_structured.json"
PROMPT = "Reply with JSON only:"
BIG_VOCAB = 262_144
WHAT_IF = {"coerce_one_of": True, "lenient": True}
OUTCOMES = ("valid", "cut", "inf", "invalid", "failed")
"""Output classes: valid; cut at ``--max-tokens`` before the value was complete; finished
but holding a number float64 cannot hold (JSON syntax allows ``2e999``, ``json.loads`` reads
``inf``); finished and invalid otherwise; the request failed."""


@dataclass
class SchemaRequest(Request):
    """A :class:`Request` that also carries a JSON schema for MAX's ``TextContext``."""

    json_schema: str | None = None


class SchemaEngine(LocalEngine):
    """``LocalEngine`` whose contexts carry a JSON schema the way MAX's server sets it."""

    def make_context(self, req: Request) -> Any:
        """A ``TextContext`` constrained to ``req.json_schema`` by MAX's structured output.

        MAX's route turns a ``response_format`` json_schema request into ``json_schema`` (the
        pipeline compiles it into the context's matcher) and a ``grammar_state`` with
        ``grammar_enforced`` on (``TextTokenizer.new_context``); MAX fills a request's
        bitmask row and feeds its matcher only while that is on.
        """
        from max.pipelines.context import GrammarEnforcementState, TextGenerationResponseFormat

        ctx = super().make_context(req)
        if isinstance(req, SchemaRequest) and req.json_schema is not None:
            ctx.json_schema = req.json_schema
            ctx.grammar_state = GrammarEnforcementState.from_response_format(
                TextGenerationResponseFormat(
                    type="json_schema",
                    json_schema=json.loads(req.json_schema),
                    grammar_enforced=True,
                    requires_structured_output_flag=True,
                    has_json_schema=True,
                )
            )
        return ctx


@dataclass
class Side:
    """One grammar backend under test and what it measured.

    Attributes:
        name: ``quote``, ``max``, ``quote-non-strict`` or ``quote-what-if``.
        backend: The MAX ``GrammarBackend`` the pipeline's helper uses for this side.
        compile_s: Schema name -> seconds of its compile on the model's tokenizer.
        errors: Schema name -> why it was refused (``None``: compiled within the budget).
        big_compile_s: Schema name -> compile seconds on the 262,144-token tokenizer.
        outputs: One record per generated output.
        gen_s: Wall seconds of its ``generate`` calls.
    """

    name: str
    backend: Any
    compile_s: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str | None] = field(default_factory=dict)
    big_compile_s: dict[str, float] = field(default_factory=dict)
    big_errors: dict[str, str | None] = field(default_factory=dict)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    gen_s: float = 0.0

    def compiled(self, s: Schema) -> bool:
        """Whether ``s`` compiled (within the budget, for Quote's sides)."""
        return s.name in self.errors and self.errors[s.name] is None


def _err(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ")
    if "json_schema_converter.cc" in text:  # xgrammar: "[time] path:line: message"
        text = text.split(": ", 1)[-1]
    return f"{type(exc).__name__}: {text[:300]}"


def _compile(side: Side, s: Schema) -> None:
    """Compile ``s`` once on ``side``'s backend; record its seconds and verdict.

    The time is ``compile_json_schema`` alone: Quote's ``compile_grammar`` (llguidance's
    conversion, validation and first mask), MAX's xgrammar compile (its token-mask cache
    included). Building the request's matcher afterwards is not timed (microseconds).
    """
    dt, grammar, exc = timed(lambda: side.backend.compile_json_schema(s.text))
    if exc is None:
        _, _, exc = timed(lambda: side.backend.create_matcher(grammar))
    side.compile_s[s.name] = dt
    side.errors[s.name] = None if exc is None else _err(exc)


def _generate(
    side: Side,
    engine: SchemaEngine,
    helper: Any,
    schemas: Sequence[Schema],
    prompt: list[int],
    seeds: int,
    max_tokens: int,
    batch: int,
    tokenizer: Any,
) -> None:
    """Run the compiled schemas of ``side``: greedy once and sampled ``seeds`` times."""
    work: list[tuple[Schema, str, int]] = []
    for s in schemas:
        if side.compiled(s):
            work.append((s, "greedy", 0))
            work += [(s, "sampled", seed) for seed in range(seeds)]
    helper.backend = side.backend
    for i in range(0, len(work), batch):
        chunk = work[i : i + batch]
        reqs = [
            SchemaRequest(
                prompt,
                max_tokens,
                temperature=0.0 if mode == "greedy" else 1.0,
                seed=seed,
                json_schema=s.text,
            )
            for s, mode, seed in chunk
        ]
        t0 = time.perf_counter()
        try:
            results: list[Result | None] = list(engine.generate(reqs))
            failure = None
        except Exception as exc:  # noqa: BLE001 - a failed batch is recorded, not fatal
            results, failure = [None] * len(reqs), _err(exc)
        side.gen_s += time.perf_counter() - t0
        for (s, mode, seed), r in zip(chunk, results, strict=True):
            side.outputs.append(_record(s, mode, seed, r, failure, tokenizer))


def _record(
    s: Schema, mode: str, seed: int, r: Result | None, failure: str | None, tokenizer: Any
) -> dict[str, Any]:
    """One output's record; its ``outcome`` is one of :data:`OUTCOMES`."""
    rec: dict[str, Any] = {"folder": s.folder, "schema": s.name, "mode": mode, "seed": seed}
    if r is None:
        return {**rec, "outcome": "failed", "error": failure, "tokens": 0}
    text = str(tokenizer.decode(r.tokens, skip_special_tokens=True))
    why = validate(text, s.schema)
    if why is None:
        outcome = "valid"
    elif r.finish_reason == "length":
        outcome = "cut"
    elif why.startswith(OVERFLOW):
        outcome = "inf"
    else:
        outcome = "invalid"
    return {
        **rec,
        "outcome": outcome,
        "error": why,
        "tokens": len(r.tokens),
        "finish_reason": r.finish_reason,
        "text": text,
    }


TEXT_KEPT = 120
"""Characters of each output's text (and verdict) kept in the JSON: a random model's garbage."""


def _brief(rec: dict[str, Any]) -> dict[str, Any]:
    """``rec`` for the JSON file: its text and verdict cut to :data:`TEXT_KEPT` characters."""
    out = {**rec, "error": (rec.get("error") or "")[:TEXT_KEPT] or None}
    if "text" in rec and "chars" not in rec:
        out.update(text=rec["text"][:TEXT_KEPT], chars=len(rec["text"]))
    return out


def _percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values`` by the nearest-rank method."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(q * len(ordered) + 0.5)) - 1))
    return ordered[k]


def _cell(outs: Sequence[dict[str, Any]]) -> str:
    """``valid/total``, then how many were cut at max_tokens, invalid or failed."""
    if not outs:
        return "-"
    n = {k: sum(o["outcome"] == k for o in outs) for k in OUTCOMES}
    text = f"{n['valid']}/{len(outs)}"
    extra = [f"{n[k]} {k}" for k in OUTCOMES[1:] if n[k]]
    return text + (f" ({', '.join(extra)})" if extra else "")


def _coverage_table(
    schemas: Sequence[Schema], sides: Sequence[Side], generated: bool
) -> tuple[list[str], list[list[Any]]]:
    """Per folder: compiled / schemas and valid outputs (greedy, sampled) per side."""
    headers = ["folder", "schemas"]
    for side in sides:
        headers.append(f"{side.name} compiled")
    if generated:
        for side in sides:
            headers += [f"{side.name} greedy valid", f"{side.name} sampled valid"]
    folders = list(dict.fromkeys(s.folder for s in schemas))
    rows: list[list[Any]] = []
    for folder in [*folders, None]:
        sel = [s for s in schemas if folder is None or s.folder == folder]
        row: list[Any] = ["**all**" if folder is None else folder, len(sel)]
        for side in sides:
            row.append(f"{sum(side.compiled(s) for s in sel)}/{len(sel)}")
        if generated:
            for side in sides:
                outs = [o for o in side.outputs if folder is None or o["folder"] == folder]
                row.append(_cell([o for o in outs if o["mode"] == "greedy"]))
                row.append(_cell([o for o in outs if o["mode"] == "sampled"]))
        rows.append(row)
    return headers, rows


@dataclass
class Replay:
    """One output replayed through a matcher (the fastest of its repetitions).

    Attributes:
        steps_s: Seconds of each step: one mask + one consume, the last step a mask alone.
        mask_s: Seconds of the masks alone, summed.
        accepting: Whether the matcher accepted the output as complete.
    """

    steps_s: list[float]
    mask_s: float
    accepting: bool

    @property
    def total_s(self) -> float:
        """Seconds of all steps."""
        return sum(self.steps_s)


def _mask_replay(
    docs: Sequence[tuple[Schema, list[int]]],
    grammar_of: dict[str, Any],
    make: Any,
    step: Any,
    final: Any,
    reps: int,
) -> list[Replay | None]:
    """Replay each ``(schema, token ids)`` through a fresh matcher; time masks and consumes.

    ``make(grammar)`` builds a matcher; ``step(m, token)`` returns ``(mask_s, consume_s,
    accepted)``; ``final(m)`` times the last mask (the step that allows EOS) and returns
    ``(seconds, accepting)``. Each output is replayed ``reps`` times and the fastest kept
    (the machine is shared). ``None`` for an output the grammar rejects (or no grammar).
    """
    out: list[Replay | None] = []
    for s, ids in docs:
        grammar = grammar_of.get(s.name)
        best: Replay | None = None
        for _ in range(reps if grammar is not None else 0):
            m = make(grammar)
            steps: list[float] = []
            masked = 0.0
            for t in ids:
                mask_s, consume_s, accepted = step(m, t)
                steps.append(mask_s + consume_s)
                masked += mask_s
                if not accepted:
                    break
            else:
                last_s, accepting = final(m)
                steps.append(last_s)
                run = Replay(steps, masked + last_s, bool(accepting))
                if best is None or run.total_s < best.total_s:
                    best = run
                continue
            break  # rejected: no use repeating
        out.append(best)
    return out


def _replay_stats(name: str, runs: Sequence[Replay | None], keep: Sequence[bool]) -> dict[str, Any]:
    """µs per token of the kept runs: overall, per request (p50 / p99) and per step."""
    kept = [r for r, k in zip(runs, keep, strict=True) if k and r is not None]
    per_request = [r.total_s / len(r.steps_s) * 1e6 for r in kept]
    mask_only = [r.mask_s / len(r.steps_s) * 1e6 for r in kept]
    steps = [t for r in kept for t in r.steps_s]
    return {
        "backend": name,
        "outputs": len(kept),
        "tokens": len(steps),
        "rejected": sum(r is None for r in runs),
        "not_accepting_at_end": sum(not r.accepting for r in kept),
        "us_per_token_mean": sum(steps) / len(steps) * 1e6 if steps else None,
        "us_per_token_p50": _percentile(per_request, 0.5),
        "us_per_token_p99": _percentile(per_request, 0.99),
        "mask_only_us_p50": _percentile(mask_only, 0.5),
        "step_us_p50": _percentile(steps, 0.5) * 1e6,
        "step_us_p99": _percentile(steps, 0.99) * 1e6,
        "step_us_max": max(steps) * 1e6 if steps else None,
        "first_step_us_p50": _percentile([r.steps_s[0] for r in kept], 0.5) * 1e6,
        "per_request_us": per_request,
    }


def _quote_replay(
    docs: Any, grammars: dict[str, Any], lltok: Any, reps: int
) -> list[Replay | None]:
    from quote.sdk.grammar import GrammarError, Matcher

    width = BIG_VOCAB

    def make(grammar: str) -> Matcher:
        return Matcher(grammar, lltok)

    def step(m: Matcher, t: int) -> tuple[float, float, bool]:
        t0 = time.perf_counter()
        m.mask(width)
        t1 = time.perf_counter()
        try:
            m.consume([t])
        except GrammarError:
            return t1 - t0, time.perf_counter() - t1, False
        return t1 - t0, time.perf_counter() - t1, True

    def final(m: Matcher) -> tuple[float, bool]:
        t0 = time.perf_counter()
        m.mask(width)
        return time.perf_counter() - t0, m.accepting

    return _mask_replay(docs, grammars, make, step, final, reps)


def _max_replay(
    docs: Any, grammars: dict[str, Any], backend: Any, reps: int
) -> list[Replay | None]:
    bitmask = backend.allocate_token_bitmask(1, BIG_VOCAB)

    def make(grammar: Any) -> Any:
        return backend.create_matcher(grammar)

    def step(m: Any, t: int) -> tuple[float, float, bool]:
        t0 = time.perf_counter()
        backend.fill_next_token_bitmask(m, bitmask, 0)
        t1 = time.perf_counter()
        ok = bool(m._matcher.accept_token(t))
        return t1 - t0, time.perf_counter() - t1, ok

    def final(m: Any) -> tuple[float, bool]:
        t0 = time.perf_counter()
        backend.fill_next_token_bitmask(m, bitmask, 0)
        return time.perf_counter() - t0, m.is_accepting()

    return _mask_replay(docs, grammars, make, step, final, reps)


def _load(args: argparse.Namespace, model: Path) -> Any:
    from quote.pipelines.loader import load_pipeline

    bypass = (
        structured_output_past_cpu_check() if args.devices == "cpu" else contextlib.nullcontext()
    )
    with bypass:
        return load_pipeline(
            model,
            devices=args.devices,
            max_batch_size=args.batch,
            max_length=args.max_length,
            stock=True,
            enable_structured_output=True,
            **load_kwargs(args),
        )


def _ms_stats(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": _percentile(values, 0.5) * 1e3,
        "p99_ms": _percentile(values, 0.99) * 1e3,
        "max_ms": max(values) * 1e3 if values else float("nan"),
        "mean_ms": statistics.fmean(values) * 1e3 if values else float("nan"),
    }


def _summary(side: Side, schemas: Sequence[Schema], budget_s: float) -> dict[str, Any]:
    """Totals of one side: compiled schemas and outputs by class."""
    n = {k: sum(o["outcome"] == k for o in side.outputs) for k in OUTCOMES}
    finished = len(side.outputs) - n["cut"] - n["failed"]
    return {
        "compiled": sum(side.compiled(s) for s in schemas),
        "schemas": len(schemas),
        "compiled_over_budget": [
            k for k, v in side.compile_s.items() if v > budget_s and side.errors[k] is None
        ],
        "outputs": len(side.outputs),
        **n,
        "valid_of_finished": n["valid"] / finished if finished else None,
        "valid_or_inf_of_finished": (n["valid"] + n["inf"]) / finished if finished else None,
        "generate_s": side.gen_s,
    }


def _print_coverage(
    schemas: Sequence[Schema], sides: Sequence[Side], args: argparse.Namespace
) -> tuple[list[str], list[list[Any]], dict[str, Any]]:
    """Print the per-folder table and each side's totals; return them."""
    headers, rows = _coverage_table(schemas, sides, not args.skip_generation)
    print(
        f"\n## Coverage and validity ({len(schemas)} schemas; greedy x1, temperature 1 x"
        f"{args.seeds}; max_tokens {args.max_tokens})\n"
    )
    print(markdown_table(headers, rows))
    print()
    summary = {side.name: _summary(side, schemas, args.budget) for side in sides}
    for name, v in summary.items():
        line = (
            f"- {name}: compiled {v['compiled']}/{v['schemas']} "
            f"({v['compiled'] / max(1, v['schemas']):.1%}); valid {v['valid']}/{v['outputs']}"
            f" outputs, {v['cut']} cut, {v['inf']} inf, {v['invalid']} invalid,"
            f" {v['failed']} failed"
        )
        if v["valid_of_finished"] is not None:
            line += f"; valid of finished {v['valid_of_finished']:.1%}"
            if v["inf"]:
                line += f" ({v['valid_or_inf_of_finished']:.1%} counting inf as valid)"
        if v["compiled_over_budget"]:
            line += f"; {len(v['compiled_over_budget'])} compiled in over {args.budget:g} s"
        print(line)
    return headers, rows, summary


def _print_compile(sides: Sequence[Side], vocab: int) -> dict[str, Any]:
    """Print compile p50 / p99 / max per side and tokenizer; return them."""
    rows = []
    stats: dict[str, Any] = {}
    for side in sides:
        for vocab_name, times, errors in [
            (f"model's ({vocab:,})", side.compile_s, side.errors),
            (f"synthetic ({BIG_VOCAB:,})", side.big_compile_s, side.big_errors),
        ]:
            ok = [times[k] for k, e in errors.items() if e is None]
            st = _ms_stats(ok)
            stats[f"{side.name} / {vocab_name}"] = {**st, "compiled": len(ok)}
            rows.append(
                [side.name, vocab_name, f"{len(ok)}/{len(times)}"]
                + [st["p50_ms"], st["p99_ms"], st["max_ms"]]
            )
    print("\n## Compile time of the schemas that compiled\n")
    print(markdown_table(["backend", "tokenizer", "compiled", "p50 ms", "p99 ms", "max ms"], rows))
    return stats


def _print_masks(masks: Sequence[dict[str, Any]], docs: int, reps: int) -> None:
    """Print the per-token mask table."""
    print(
        f"\n## Per-token mask time, {BIG_VOCAB:,}-token vocabulary ({docs} valid outputs"
        f" replayed, fastest of {reps}; a step = one mask + one consume; µs)\n"
    )
    headers = ["backend", "outputs", "steps", "mean per step", "per request p50"]
    headers += ["per request p99", "step p99", "step max", "first step p50", "rejected"]
    rows = [
        [m["backend"], m["outputs"], m["tokens"], m["us_per_token_mean"] or "-"]
        + [m["us_per_token_p50"], m["us_per_token_p99"], m["step_us_p99"]]
        + [m["step_us_max"] or "-", m["first_step_us_p50"], m["rejected"]]
        for m in masks
    ]
    print(markdown_table(headers, rows))


_PREFIXES = ("invalid json schema constraint: ", "unsupported schema keyword: ")


def _reason(error: str) -> str:
    """The gist of a refusal, for counting: no exception name, quoted names kept short."""
    text = error.split(": ", 1)[-1]
    for prefix in _PREFIXES:
        text = text.removeprefix(prefix)
    text = text.split(" while processing")[0].split(" at ")[0]
    return text.replace("|", "/")[:80].strip()


def _print_refusals(sides: Sequence[Side], top: int = 6) -> dict[str, dict[str, int]]:
    """Print the ``top`` reasons schemas were refused per side; return all the counts."""
    counts = {
        side.name: dict(Counter(_reason(e) for e in side.errors.values() if e).most_common())
        for side in sides
    }
    print(f"\n## Why schemas were refused (model's tokenizer; the {top} commonest reasons)\n")
    rows: list[list[Any]] = []
    for name, c in counts.items():
        items = list(c.items())
        rows += [[name, n, reason] for reason, n in items[:top]]
        if len(items) > top:
            rest = items[top:]
            rows.append([name, sum(n for _, n in rest), f"({len(rest)} other reasons)"])
    print(markdown_table(["backend", "schemas", "reason"], rows))
    return counts


def _cross_check(
    quote: Side, mx: Side, schemas: Sequence[Schema], tokenizer: Any
) -> dict[str, Any]:
    """Quote's outputs through MAX's grammar, and both sides on the schemas both compile.

    ``rejected_by_max``: Quote outputs (of schemas MAX compiled) that MAX's xgrammar matcher
    refuses at some token, by outcome: JSON Schema allows what MAX's strict mode does not
    (an unlisted property, by default allowed). ``replacement_chars``: outputs whose text
    holds U+FFFD (bytes that are not UTF-8: a grammar that lets them through).
    """
    by_name = {s.name: s for s in schemas}
    rejected: Counter[str] = Counter()
    for o in quote.outputs:
        s = by_name[o["schema"]]
        if not mx.compiled(s) or o["outcome"] == "failed":
            continue
        m = mx.backend.create_matcher(mx.backend.compile_json_schema(s.text))
        ids = [int(t) for t in tokenizer.encode(o["text"], add_special_tokens=False)]
        if m.try_consume_tokens(ids) != len(ids):
            rejected[o["outcome"]] += 1
    q = {(o["schema"], o["mode"], o["seed"]): o["outcome"] for o in quote.outputs}
    x = {(o["schema"], o["mode"], o["seed"]): o["outcome"] for o in mx.outputs}
    common = set(q) & set(x)
    common_valid = {
        quote.name: sum(q[k] == "valid" for k in common),
        mx.name: sum(x[k] == "valid" for k in common),
    }
    replacement = {
        side.name: sum("\ufffd" in o.get("text", "") for o in side.outputs) for side in (quote, mx)
    }
    out = {
        "rejected_by_max": dict(rejected),
        "common_outputs": len(common),
        "common_valid": common_valid,
        "replacement_chars": replacement,
    }
    print(
        f"- on the {len(common)} requests of schemas both compile: valid "
        + ", ".join(f"{k} {v}" for k, v in common_valid.items())
        + f"; {quote.name} outputs MAX's grammar would refuse: {sum(rejected.values())} ("
        + ", ".join(f"{v} {k}" for k, v in rejected.most_common())
        + "); outputs with U+FFFD (non-UTF-8 bytes): "
        + ", ".join(f"{k} {v}" for k, v in replacement.items())
    )
    return out


def main(argv: list[str] | None = None) -> None:
    """Compile, generate, validate and time both sides; print tables; write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="JSONSchemaBench dir")
    parser.add_argument("--limit", type=int, default=None, help="schemas per folder")
    parser.add_argument("--model", default=None, help="checkpoint dir (default: tiny Gemma3)")
    parser.add_argument("--devices", default="cpu", help="MAX device spec: cpu, gpu, gpu:0")
    parser.add_argument("--seeds", type=int, default=2, help="sampled runs per schema")
    parser.add_argument("--max-tokens", type=int, default=384)
    parser.add_argument("--batch", type=int, default=16, help="requests per generate call")
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--budget", type=float, default=2.0, help="Quote's compile budget (s)")
    parser.add_argument("--mem", type=float, default=None, help="device_memory_utilization")
    parser.add_argument("--what-if", action="store_true", help="add llguidance lenient options")
    parser.add_argument(
        "--non-strict", action="store_true", help="add Quote with strict: false (JSON Schema)"
    )
    parser.add_argument("--mask-reps", type=int, default=3, help="replays per output (min)")
    parser.add_argument("--skip-generation", action="store_true", help="coverage + timing only")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = parser.parse_args(argv)

    from quote.sdk.grammar import GrammarSpec, compile_grammar, llg_tokenizer

    t_start = time.perf_counter()
    schemas = load_schemas(args.data, args.limit)
    print(f"{len(schemas)} schemas from {args.data}", flush=True)

    model = model_dir(args.model)
    t0 = time.perf_counter()
    loaded = _load(args, model)
    load_s = time.perf_counter() - t0
    print(f"pipeline loaded in {load_s:.1f} s", flush=True)
    helper = loaded.pipeline._structured_output
    hf = loaded.hf_tokenizer
    eos = sorted(int(t) for t in loaded.tokenizer.eos_token_ids)
    lltok = llg_tokenizer(hf, eos)
    vocab = int(helper.vocab_size)
    sides = [
        Side("quote", LlguidanceBackend(lltok, vocab, args.budget, strict=True)),
        Side("max", helper.backend),
    ]
    if args.non_strict:
        sides.append(
            Side("quote-non-strict", LlguidanceBackend(lltok, vocab, args.budget, None, False))
        )
    if args.what_if:
        sides.append(Side("quote-what-if", LlguidanceBackend(lltok, vocab, args.budget, WHAT_IF)))

    # 1. coverage on the model's tokenizer (sides alternate schema by schema)
    t0 = time.perf_counter()
    for i, s in enumerate(schemas):
        for side in sides if i % 2 == 0 else sides[::-1]:
            _compile(side, s)
    print(f"compiled in {time.perf_counter() - t0:.1f} s", flush=True)

    # 2. generation on MAX's pipeline, one backend at a time (order alternating per folder)
    prompt = [int(t) for t in hf.encode(PROMPT)]
    engine = SchemaEngine(loaded)
    xgr = helper.backend
    if not args.skip_generation:
        folders = list(dict.fromkeys(s.folder for s in schemas))
        for fi, folder in enumerate(folders):
            sel = [s for s in schemas if s.folder == folder]
            for side in sides if fi % 2 == 0 else sides[::-1]:
                _generate(
                    side, engine, helper, sel, prompt, args.seeds, args.max_tokens, args.batch, hf
                )
            print(f"generated {folder} ({time.perf_counter() - t_start:.0f} s)", flush=True)
        helper.backend = xgr

    # 3. compile time on a 262,144-token tokenizer
    from max.pipelines.lib.pipeline_variants.structured_output_backend import (
        make_grammar_backend,
    )

    t0 = time.perf_counter()
    corpus = [(args.data / e.name).read_text(encoding="utf-8") for e in schemas]
    big_tok = synthetic_tokenizer(corpus, BIG_VOCAB)
    big_lltok = llg_tokenizer(big_tok, [int(big_tok.eos_token_id)])
    big_xgr = make_grammar_backend(
        "xgrammar", big_tok, BIG_VOCAB, stop_token_ids=[int(big_tok.eos_token_id)]
    )
    tok_s = time.perf_counter() - t0
    print(f"262,144-token tokenizer built in {tok_s:.1f} s", flush=True)
    big_grammars: dict[str, dict[str, Any]] = {"quote": {}, "max": {}}
    quote, maxs = sides[0], sides[1]
    for i, s in enumerate(schemas):

        def q(s: Schema = s) -> str:
            spec = GrammarSpec.json_schema(s.schema, strict=True)
            return str(compile_grammar(spec, big_lltok, args.budget))

        def x(s: Schema = s) -> Any:
            return big_xgr.compile_json_schema(s.text)

        for side, fn in [(quote, q), (maxs, x)] if i % 2 == 0 else [(maxs, x), (quote, q)]:
            dt, out, exc = timed(fn)
            side.big_compile_s[s.name] = dt
            side.big_errors[s.name] = None if exc is None else _err(exc)
            if exc is None:
                big_grammars[side.name][s.name] = out
    print(f"big-vocabulary compiles done ({time.perf_counter() - t_start:.0f} s)", flush=True)

    # 4. mask time on the 262,144-token tokenizer: replay the valid outputs of both sides
    by_name = {s.name: s for s in schemas}
    docs = [
        (
            by_name[o["schema"]],
            [int(t) for t in big_tok.encode(o["text"], add_special_tokens=False)],
        )
        for side in (quote, maxs)
        for o in side.outputs
        if o["outcome"] == "valid"
    ]
    q_runs = _quote_replay(docs, big_grammars["quote"], big_lltok, args.mask_reps)
    x_runs = _max_replay(docs, big_grammars["max"], big_xgr, args.mask_reps)
    both = [a is not None and b is not None for a, b in zip(q_runs, x_runs, strict=True)]
    masks = [
        _replay_stats("quote (llguidance), outputs both accept", q_runs, both),
        _replay_stats("max (xgrammar), outputs both accept", x_runs, both),
        _replay_stats("quote (llguidance), all it accepts", q_runs, [True] * len(docs)),
    ]
    print(f"mask replay done ({time.perf_counter() - t_start:.0f} s)", flush=True)

    # tables
    headers, rows, summary = _print_coverage(schemas, sides, args)
    cross = _cross_check(quote, maxs, schemas, hf) if not args.skip_generation else None
    compile_stats = _print_compile(sides[:2], vocab)
    _print_masks(masks, len(docs), args.mask_reps)
    reasons = _print_refusals(sides)
    refused = {side.name: {k: e for k, e in side.errors.items() if e} for side in sides}
    write_json(
        args.out,
        {
            "machine": machine_info(args.devices),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "data": str(args.data),
            "model": str(model),
            "model_tokenizer_vocab": vocab,
            "eos_ids": eos,
            "prompt": PROMPT,
            "seeds": args.seeds,
            "max_tokens": args.max_tokens,
            "batch": args.batch,
            "budget_s": args.budget,
            "what_if_options": WHAT_IF if args.what_if else None,
            "load_s": load_s,
            "synthetic_tokenizer_s": tok_s,
            "total_s": time.perf_counter() - t_start,
            "coverage_table": {"headers": headers, "rows": rows},
            "summary": summary,
            "cross_check": cross,
            "compile": compile_stats,
            "compile_s": {side.name: side.compile_s for side in sides},
            "compile_s_big_vocab": {side.name: side.big_compile_s for side in sides[:2]},
            "refused": refused,
            "refusal_reasons": reasons,
            "refused_big_vocab": {
                side.name: {k: e for k, e in side.big_errors.items() if e is not None}
                for side in sides[:2]
            },
            "mask_reps": args.mask_reps,
            "mask": masks,
            "outputs": {side.name: [_brief(o) for o in side.outputs] for side in sides},
        },
    )
    print(f"total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
