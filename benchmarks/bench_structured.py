# SPDX-License-Identifier: Apache-2.0
"""Quote's JSON-schema mod vs MAX's built-in structured output, side by side (issue 6, item 4).

Usage::

    .venv/bin/python benchmarks/bench_structured.py [--model DIR] [--devices cpu|gpu]
        [--seeds 3] [--max-tokens 160] [--batch 16] [--out /tmp/quote-bench/structured.json]

Both backends run in one process on the same model and the same schemas
(``examples/json_schema/suite.py``: ``SCHEMAS`` by feature group, plus ``UNSUPPORTED`` as
the group ``refused by Quote``), sampling at temperature 1.0 with seeds ``0..N-1``:

- **Quote**: ``QuotePipeline`` (``load_pipeline(...)``), each request carrying the
  ``json_schema`` mod and the schema as the conversation's ``response_format``.
- **MAX**: the stock ``TextGenerationPipeline`` loaded with
  ``enable_structured_output=True`` (MAX's xgrammar backend, vendored as ``max._xgrammar``);
  each ``TextContext`` gets ``json_schema``, an enforcing ``grammar_state`` and the
  tokenizer's EOS ids, as MAX's server and tokenizer set them for a ``response_format``
  request (:meth:`SchemaEngine.make_context`), and runs through the same ``LocalEngine`` loop.

Acceptance (supported-feature coverage) is decided at setup: for Quote, the mod's own
compile (``compiled_schema``, what it runs at ``Prefilled``; the request's error is kept too);
for MAX, ``StructuredOutputHelper.build_matcher`` (what the pipeline runs when it first sees a
request's ``json_schema``). Every output is checked with ``jsonschema``.

Throughput: requests on schemas **both** backends accept run in timed batches of up to
``--batch`` (one ``LocalEngine.generate`` call each); tokens/s = completion tokens / wall time
of those calls. Backends alternate order per feature group so noise hits both. Requests on
schemas only one backend accepts run untimed (validity only).

MAX refuses ``enable_structured_output`` on CPU in one config-time check, which this
benchmark alone steps past (:func:`_structured_output_past_cpu_check`), so both sides run on
CPU too. If MAX's side still fails to load, it records that error, its coverage comes from
the compile step alone (``compile-only``: the same ``build_matcher`` call, which needs no
device), and no MAX outputs or tokens/s are reported.

MAX sizes its bitmask to the tokenizer (``len(tokenizer)`` ids), not to the model's
``vocab_size``; the JSON records both (``vocab``). Ids past the tokenizer's never win either
way: MAX's sampler masks them to ``-inf`` before the bitmask, whose kernel then leaves each at
``-inf`` or its ``-10000`` fill (seen on CPU).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import load_kwargs, machine_info, markdown_table, model_dir, write_json

from quote.pipelines.local import LocalEngine, Request, Result

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # for ``examples.json_schema`` when run as a script

REFUSED_GROUP = "refused by Quote"
PROMPT = "Reply with JSON only:"


@dataclass
class SchemaRequest(Request):
    """A :class:`Request` that also carries a JSON schema for MAX's ``TextContext``."""

    json_schema: str | None = None


class SchemaEngine(LocalEngine):
    """``LocalEngine`` whose contexts carry a JSON schema the way MAX's server sets it."""

    def make_context(self, req: Request) -> Any:
        """A ``TextContext`` for ``req`` constrained to its schema by MAX's structured output.

        Two fields, as MAX's server sets them for a ``response_format`` request (the EOS set,
        ``<eos>`` and ``<end_of_turn>``, which are also the grammar's stop tokens, comes from
        ``LocalEngine``):

        - ``json_schema``: the pipeline compiles it into the context's matcher.
        - ``grammar_state``: MAX fills a request's bitmask row only while ``grammar_enforced``
          is set (``StructuredOutputHelper.fill_bitmask``) and feeds its matcher only then
          (``TextContext.advance_fsm``). A plain ``TextContext`` starts with it off, so a
          schema alone leaves the row all ones and the output unconstrained. MAX's route
          builds the format below for a ``json_schema`` request and ``TextTokenizer
          .new_context`` turns it into ``grammar_state``.
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
class Case:
    """One schema of the run: its group, name, schema and each backend's setup verdict."""

    group: str
    name: str
    schema: Any
    setup: dict[str, str | None] = field(default_factory=dict)  # backend -> error or None


@dataclass
class Backend:
    """One side of the comparison and what it measured.

    Attributes:
        name: ``quote`` or ``max``.
        engine: The engine that runs its requests (``None`` when it could not load).
        load_error: Why it could not load (``None`` when loaded).
        check: Setup check of a schema: ``None`` when accepted, else the error text.
        make: Builds the request of ``(schema, seed)``.
        outputs: Per-request records (schema name, seed, text, valid, error, ...).
        timed_tokens: Completion tokens of the timed (common-schema) requests.
        timed_s: Wall seconds of the timed ``generate`` calls.
    """

    name: str
    engine: LocalEngine | None
    load_error: str | None
    check: Callable[[Any], str | None]
    make: Callable[[Any, int], Request]
    outputs: list[dict[str, Any]] = field(default_factory=list)
    timed_tokens: int = 0
    timed_s: float = 0.0
    timed_requests: int = 0


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip()[:300]}"


def _validate(text: str, schema: Any) -> str | None:
    """``None`` if ``text`` is JSON valid for ``schema``, else why not."""
    import jsonschema

    try:
        jsonschema.validate(json.loads(text), schema)
    except (ValueError, jsonschema.ValidationError, jsonschema.SchemaError) as exc:
        return _error_text(exc)
    return None


def _run(
    backend: Backend,
    cases: Sequence[Case],
    seeds: int,
    batch: int,
    tokenizer: Any,
    *,
    timed: bool,
    refused: bool = False,
) -> None:
    """Run every ``(case, seed)`` on ``backend`` in batches; record outputs (and time).

    ``refused``: the schemas failed ``backend``'s setup check; their records are kept (the
    error a client would see) but left out of the validity table.
    """
    assert backend.engine is not None
    work = [(c, s) for c in cases for s in range(seeds)]
    for i in range(0, len(work), batch):
        chunk = work[i : i + batch]
        reqs = [backend.make(c.schema, s) for c, s in chunk]
        t0 = time.perf_counter()
        try:
            results: list[Result | None] = list(backend.engine.generate(reqs))
            failure = None
        except Exception as exc:  # noqa: BLE001 - a failed batch is recorded, not fatal
            results, failure = [None] * len(reqs), _error_text(exc)
        dt = time.perf_counter() - t0
        ntok = 0
        for (case, seed), r in zip(chunk, results, strict=True):
            rec: dict[str, Any] = {
                "group": case.group,
                "schema": case.name,
                "seed": seed,
                "refused": refused,
            }
            if r is None:
                rec.update(valid=False, error=failure, tokens=0)
            else:
                text = str(tokenizer.decode(r.tokens, skip_special_tokens=True))
                why = r.error or _validate(text, case.schema)
                ntok += len(r.tokens)
                rec.update(
                    valid=why is None,
                    error=why,
                    tokens=len(r.tokens),
                    finish_reason=r.finish_reason,
                    forward_passes=r.forward_passes,
                    text=text[:400],
                )
            backend.outputs.append(rec)
        if timed and failure is None:
            backend.timed_tokens += ntok
            backend.timed_s += dt
            backend.timed_requests += len(reqs)


@contextlib.contextmanager
def _structured_output_past_cpu_check() -> Iterator[None]:
    """Let ``PipelineConfig.from_args`` accept ``enable_structured_output`` on CPU.

    MAX 26.7 refuses the flag on CPU in one config-time check
    (``max/pipelines/lib/config/config.py``, ``from_args``: "enable_structured_output is not
    currently supported on CPU"); nothing past it needs a GPU: the bitmask sampler is MAX's
    ``TopKSampler`` with a bitmask input (``QuotePipeline`` compiles the same graph on CPU)
    and the grammar work is xgrammar on the host. Inside this context only, a config asking
    for the flag is resolved with it off (so the check passes) and returned with it on, as
    MAX's own construction would leave it; ``needs_bitmask_constraints`` then reads it as
    usual. Benchmark-only: never used by Quote itself.
    """
    from max.pipelines.lib import PipelineConfig

    original = PipelineConfig.__dict__["from_args"]

    def from_args(cls: type[Any], args: Any) -> Any:
        if not args.sampling.enable_structured_output:
            return original.__func__(cls, args)
        off = args.sampling.model_copy(update={"enable_structured_output": False})
        config = original.__func__(cls, args.model_copy(update={"sampling": off}))
        on = config.sampling.model_copy(update={"enable_structured_output": True})
        return config.model_copy(update={"sampling": on})

    PipelineConfig.from_args = classmethod(from_args)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        PipelineConfig.from_args = original  # type: ignore[method-assign]


def _load_max(
    model: Path, devices: str, batch: int, max_length: int, **extra: Any
) -> tuple[Any, str | None]:
    """MAX's stock pipeline with ``enable_structured_output=True``, or the load error.

    On CPU, MAX's config-time refusal is bypassed (:func:`_structured_output_past_cpu_check`).
    """
    from quote.pipelines.loader import load_pipeline

    bypass = _structured_output_past_cpu_check() if devices == "cpu" else contextlib.nullcontext()
    try:
        with bypass:
            loaded = load_pipeline(
                model,
                devices=devices,
                max_batch_size=batch,
                max_length=max_length,
                stock=True,
                enable_structured_output=True,
                **extra,
            )
    except Exception as exc:  # noqa: BLE001 - recorded and reported, never faked
        return None, _error_text(exc)
    return loaded, None


def _max_checker(max_loaded: Any, quote_loaded: Any) -> tuple[Callable[[Any], str | None], str]:
    """MAX's setup check of a schema, and how it was made (pipeline or compile-only)."""
    if max_loaded is not None:
        helper = max_loaded.pipeline._structured_output
        how = "pipeline"
    else:
        from max.pipelines.lib.pipeline_variants.utils import StructuredOutputHelper

        helper = StructuredOutputHelper.from_tokenizer(
            quote_loaded.tokenizer, True, backend_name="xgrammar"
        )
        how = "compile-only"

    def check(schema: Any) -> str | None:
        try:
            helper.build_matcher(None, json.dumps(schema))
        except Exception as exc:  # noqa: BLE001 - any setup failure = unsupported
            return _error_text(exc)
        return None

    return check, how


def _quote_check(schema: Any) -> str | None:
    from examples.json_schema.compiler import UnsupportedSchemaError
    from examples.json_schema.mod import compiled_schema

    try:
        compiled_schema(schema)
    except UnsupportedSchemaError as exc:
        return _error_text(exc)
    return None


def _cases() -> list[Case]:
    from examples.json_schema.suite import SCHEMAS, UNSUPPORTED

    cases = [Case(g, n, s) for g, n, s in SCHEMAS]
    cases += [Case(REFUSED_GROUP, f, s) for f, s in UNSUPPORTED]
    return cases


def _group_rows(
    cases: Sequence[Case], backends: Sequence[Backend], seeds: int
) -> tuple[list[str], list[list[Any]]]:
    """Markdown rows per feature group: accepted / total and valid / generated per backend."""
    headers = ["feature group", "schemas"]
    for b in backends:
        headers += [f"{b.name} accepted", f"{b.name} valid outputs"]
    groups = list(dict.fromkeys(c.group for c in cases))
    rows: list[list[Any]] = []
    for g in [*groups, None]:
        sel = [c for c in cases if g is None or c.group == g]
        row: list[Any] = ["**all**" if g is None else g, len(sel)]
        for b in backends:
            acc = sum(c.setup.get(b.name) is None for c in sel)
            names = {c.name for c in sel}
            outs = [
                o
                for o in b.outputs
                if not o["refused"] and o["schema"] in names and (g is None or o["group"] == g)
            ]
            valid = sum(bool(o["valid"]) for o in outs)
            row.append(f"{acc}/{len(sel)}")
            row.append(f"{valid}/{len(outs)}" if b.engine is not None else "not run")
        rows.append(row)
    return headers, rows


def main(argv: list[str] | None = None) -> None:
    """Load both pipelines, run the suite interleaved per group, print tables, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="checkpoint dir (default: tiny Gemma3)")
    parser.add_argument("--devices", default="cpu", help="MAX device spec: cpu, gpu, gpu:0")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per schema")
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--batch", type=int, default=16, help="requests per generate call")
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--out", default="/tmp/quote-bench/structured.json")
    parser.add_argument(
        "--mem", type=float, default=None, help="device_memory_utilization per pipeline"
    )
    args = parser.parse_args(argv)

    from examples.json_schema.mod import json_schema
    from quote.hot.state import RequestOptions
    from quote.pipelines.loader import load_pipeline
    from quote.sdk import Conversation

    model = model_dir(args.model)
    t_load = time.perf_counter()
    extra = load_kwargs(args)
    quote_loaded = load_pipeline(
        model, devices=args.devices, max_batch_size=args.batch, max_length=args.max_length, **extra
    )
    max_loaded, max_error = _load_max(model, args.devices, args.batch, args.max_length, **extra)
    t_load = time.perf_counter() - t_load
    if max_error:
        print(f"MAX structured output could not load on {args.devices!r}: {max_error}")
    tok = quote_loaded.hf_tokenizer
    prompt = [int(t) for t in tok.encode(PROMPT)]

    def make_quote(schema: Any, seed: int) -> Request:
        rf = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
        opts = RequestOptions(mods=[json_schema], conversation=Conversation(response_format=rf))
        return Request(prompt, args.max_tokens, temperature=1.0, seed=seed, options=opts)

    def make_max(schema: Any, seed: int) -> Request:
        return SchemaRequest(
            prompt, args.max_tokens, temperature=1.0, seed=seed, json_schema=json.dumps(schema)
        )

    max_check, max_how = _max_checker(max_loaded, quote_loaded)
    quote = Backend("quote", LocalEngine(quote_loaded), None, _quote_check, make_quote)
    maxb = Backend(
        "max",
        SchemaEngine(max_loaded) if max_loaded is not None else None,
        max_error,
        max_check,
        make_max,
    )
    backends = [quote, maxb]
    cases = _cases()
    for c in cases:
        for b in backends:
            c.setup[b.name] = b.check(c.schema)

    t_run = time.perf_counter()
    groups = list(dict.fromkeys(c.group for c in cases))
    for gi, g in enumerate(groups):
        sel = [c for c in cases if c.group == g]
        live = [b for b in backends if b.engine is not None]
        order = live if gi % 2 == 0 else live[::-1]
        # the timed set is fixed by both setup verdicts (compile-only ones included), so it
        # is the same schemas whether or not MAX's side could run
        both = [c for c in sel if all(c.setup[b.name] is None for b in backends)]
        for b in order:
            _run(b, both, args.seeds, args.batch, tok, timed=True)
        for b in order:
            own = [c for c in sel if c.setup[b.name] is None and all(c is not x for x in both)]
            _run(b, own, args.seeds, args.batch, tok, timed=False)
        # refused at setup: one request each, alone (MAX fails the whole batch on a bad
        # schema), to record the error a client would see
        for b in order:
            refused = [c for c in sel if c.setup[b.name] is not None]
            _run(b, refused, 1, 1, tok, timed=False, refused=True)
    t_run = time.perf_counter() - t_run

    headers, rows = _group_rows(cases, backends, args.seeds)
    print(f"\n## Validity and coverage (max accepted: {max_how})\n")
    print(markdown_table(headers, rows))

    speed: dict[str, Any] = {}
    srows = []
    for b in backends:
        tps = b.timed_tokens / b.timed_s if b.timed_s else None
        speed[b.name] = {
            "requests": b.timed_requests,
            "tokens": b.timed_tokens,
            "seconds": b.timed_s,
            "tokens_per_s": tps,
            "requests_per_s": b.timed_requests / b.timed_s if b.timed_s else None,
        }
        srows.append(
            [
                b.name,
                b.timed_requests,
                b.timed_tokens,
                round(b.timed_s, 2) if b.timed_s else "not run",
                round(tps, 1) if tps else "not run",
            ]
        )
    q, m = speed["quote"]["tokens_per_s"], speed["max"]["tokens_per_s"]
    ratio = q / m if q and m else None
    print("\n## Throughput on schemas both accept (temperature 1.0, timed batches)\n")
    print(markdown_table(["backend", "requests", "completion tokens", "s", "tokens/s"], srows))
    print(f"\nquote / max tokens/s: {f'{ratio:.2f}x' if ratio else 'n/a (MAX side not run)'}")

    diff = [
        {"group": c.group, "schema": c.name, **{f"{k}_error": v for k, v in c.setup.items()}}
        for c in cases
        if any(c.setup.values())
    ]
    print("\n## Schemas refused at setup\n")
    print(
        markdown_table(
            ["group", "schema", "quote", "max"],
            [
                [d["group"], d["schema"], _short(d["quote_error"]), _short(d["max_error"])]
                for d in diff
            ],
        )
    )
    write_json(
        args.out,
        {
            "machine": machine_info(args.devices),
            "model": str(model),
            "seeds": args.seeds,
            "max_tokens": args.max_tokens,
            "batch": args.batch,
            "prompt": PROMPT,
            "load_s": t_load,
            "run_s": t_run,
            "max_load_error": max_error,
            "vocab": {
                "tokenizer": len(tok),
                "model": int(quote_loaded.config.model.huggingface_config.vocab_size),
            },
            "max_acceptance_from": max_how,
            "table": {"headers": headers, "rows": rows},
            "throughput": speed,
            "quote_over_max_tokens_per_s": ratio,
            "refused": diff,
            "outputs": {b.name: b.outputs for b in backends},
        },
    )


def _short(err: str | None) -> str:
    """A table cell for a setup verdict: ``accepted`` or the gist of the error."""
    if err is None:
        return "accepted"
    gist = err.split(": ", 1)[-1]
    if "json_schema_converter.cc" in gist:
        gist = gist.split("]", 1)[-1].split(": ", 1)[-1]
    gist = gist.replace("unsupported JSON schema feature: ", "")
    return gist.replace("|", "/").replace("\n", " ")[:70]


if __name__ == "__main__":
    main()
