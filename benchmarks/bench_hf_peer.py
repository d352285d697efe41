# SPDX-License-Identifier: Apache-2.0
"""Benchmark 5: Hugging Face ``transformers`` ``generate`` vs Quote, same allow-list mask.

Usage::

    .venv/bin/python benchmarks/bench_hf_peer.py [--model DIR] [--devices cpu|gpu]
        [--batch-sizes 1,16] [--reps 3] [--steps 64] [--prompt-len 128]
        [--hf-dtype float32] [--out /tmp/quote-bench/hf_peer.json]

Both sides decode greedily from the same fixed prompt with the same 32-token allow-list
(``bench_overhead.ALLOW``): transformers through a ``LogitsProcessor`` that adds a
precomputed ``0 / -inf`` row, Quote through the ``mask`` mod (``AdjustedLogits(allow=...)``
at every ``ForwardPass``). The allow-list has no EOS, so every request runs ``--steps``
tokens. Only decode steps are timed: for transformers, the interval between consecutive
calls of the logits processor (one forward + processing + greedy pick each); for Quote, each
``execute`` after the prefill. Runs alternate (HF, Quote, HF, Quote, ...) per repetition.
``--devices gpu`` runs transformers on ``cuda`` too.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from _common import (
    add_common_args,
    load_kwargs,
    machine_info,
    markdown_table,
    median_ms,
    model_dir,
    random_prompt,
    run_timed,
    write_json,
)
from bench_overhead import ALLOW, mask_mod


class AllowListProcessor:
    """A ``transformers`` ``LogitsProcessor``: every token outside ``allow`` gets ``-inf``.

    It also records the time of each call, so decode steps can be timed inside ``generate``.
    """

    def __init__(self, allow: tuple[int, ...], vocab: int, device: Any, dtype: Any) -> None:
        import torch

        self.bias = torch.full((vocab,), float("-inf"), dtype=dtype, device=device)
        self.bias[list(allow)] = 0.0
        self.calls: list[float] = []
        self._cuda = str(device).startswith("cuda")

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self._cuda:
            import torch

            torch.cuda.synchronize()
        self.calls.append(time.perf_counter())
        return scores + self.bias[: scores.shape[-1]]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table; write JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p, reps=3, out="/tmp/quote-bench/hf_peer.json")
    p.add_argument("--batch-sizes", default="1,16")
    p.add_argument("--steps", type=int, default=64, help="decode steps per run")
    p.add_argument("--prompt-len", type=int, default=128)
    p.add_argument("--hf-dtype", default="float32", help="torch dtype for transformers")
    args = p.parse_args(argv)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]

    import torch
    from transformers import AutoModelForCausalLM, LogitsProcessorList

    from quote.pipelines.loader import load_pipeline

    path = model_dir(args.model)
    device = "cuda" if args.devices.startswith("gpu") else "cpu"
    dtype = getattr(torch, args.hf_dtype)
    hf = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype).to(device).eval()
    quote = load_pipeline(
        path,
        devices=args.devices,
        max_batch_size=max(batch_sizes),
        max_length=max(2048, args.prompt_len + args.steps + 8),
        **load_kwargs(args),
    )
    vocab = int(quote.pipeline.vocab_size)
    prompt = random_prompt(args.prompt_len, vocab, seed=0)

    def run_hf(b: int) -> tuple[list[float], list[int]]:
        proc = AllowListProcessor(ALLOW, int(hf.config.vocab_size), device, dtype)
        ids = torch.tensor([prompt] * b, dtype=torch.long, device=device)
        with torch.inference_mode():
            out = hf.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=args.steps,
                min_new_tokens=args.steps,
                do_sample=False,
                logits_processor=LogitsProcessorList([proc]),
                pad_token_id=0,
            )
        steps = [b2 - a for a, b2 in zip(proc.calls, proc.calls[1:], strict=False)]
        return steps, [int(t) for t in out[0, args.prompt_len :]]

    def run_quote(b: int) -> tuple[list[float], list[int]]:
        t = run_timed(quote, [prompt] * b, max_new_tokens=args.steps, mods=[mask_mod])
        return t.decode_steps(), t.tokens[0]

    for b in batch_sizes:  # warm-up
        run_hf(b)
        run_quote(b)

    times: dict[tuple[str, int], list[float]] = {}
    agree: dict[int, float] = {}
    for rep in range(args.reps):
        for b in batch_sizes:
            hs, htok = run_hf(b)
            qs, qtok = run_quote(b)
            times.setdefault(("hf", b), []).extend(hs)
            times.setdefault(("quote", b), []).extend(qs)
            assert all(t in ALLOW for t in htok + qtok), "mask not applied"
            n = min(len(htok), len(qtok))
            same = next((i for i in range(n) if htok[i] != qtok[i]), n)
            agree[b] = same / max(n, 1)
        print(f"rep {rep + 1}/{args.reps} done", file=sys.stderr)

    rows = []
    results = []
    for b in batch_sizes:
        h = median_ms(times[("hf", b)])
        q = median_ms(times[("quote", b)])
        rows.append(
            [
                b,
                f"{h:.3f} ms ({b / h * 1e3:.0f} tok/s)",
                f"{q:.3f} ms ({b / q * 1e3:.0f} tok/s)",
                f"{h / q:.2f}x",
                f"{agree[b]:.2f}",
            ]
        )
        results.append(
            {
                "batch": b,
                "hf_ms_per_step": h,
                "quote_ms_per_step": q,
                "hf_tok_s": b / h * 1e3,
                "quote_tok_s": b / q * 1e3,
                "ratio_quote_over_hf_tok_s": h / q,
                "greedy_prefix_agreement": agree[b],
                "hf_steps_timed": len(times[("hf", b)]),
                "quote_steps_timed": len(times[("quote", b)]),
            }
        )
    print(
        f"\n### Peer: transformers {_hf_version()} generate + LogitsProcessor vs Quote mask mod "
        f"({args.devices}, {args.hf_dtype} for HF; {args.prompt_len}-token prompt, "
        f"{args.steps} decode steps, {args.reps} alternating reps; median ms/step)\n"
    )
    print(
        markdown_table(
            [
                "batch",
                "baseline: transformers",
                "Quote (mask mod)",
                "ratio (Quote tok/s / HF tok/s)",
                "greedy agreement (prefix fraction)",
            ],
            rows,
        )
    )
    write_json(
        args.out,
        {
            "benchmark": "hf_peer",
            "machine": machine_info(args.devices),
            "torch_threads": torch.get_num_threads(),
            "model": str(path),
            "args": vars(args),
            "allow": list(ALLOW),
            "results": results,
        },
    )
    return 0


def _hf_version() -> str:
    import transformers

    return str(transformers.__version__)


if __name__ == "__main__":
    raise SystemExit(main())
