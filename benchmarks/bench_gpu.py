# SPDX-License-Identifier: Apache-2.0
"""GPU benchmarks: MAX's built-in Gemma3 vs Quote's Gemma3, and Quote's step overhead.

Phases (run as separate invocations on one warm machine; results go to --out):

* ``checkpoint``: write a Gemma-3-1B-shaped checkpoint with random bf16 weights (torch).
* ``builtin``: MAX's built-in Gemma3 (stock ``TextGenerationPipeline``): decode ms/step
  at several batch sizes, and the logits of a fixed prompt.
* ``quote``: Quote's Gemma3 with MAX's stock pipeline vs ``QuotePipeline`` with no mod,
  a Noop-on-every-event mod and a sparse-mask mod, interleaved; logits vs ``builtin``.
* ``arch``: the built-in and Quote's Gemma3 side by side in one process (stock pipelines).
* ``rewind``: Backtrack(8) + regenerate vs a decode step vs a full re-prefill at
  sequence lengths 512 / 2,048 / 8,192 (prefix caching off).
* ``softcap``: the tiny ``softcap`` variant (attention and final soft-capping) cast to bf16,
  on the GPU through Quote's Gemma3, vs transformers (float32, same device, soft-cap wired).

Works on CPU too (``--devices cpu --model DIR``, e.g. the tiny model) for a dry run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import StockStep

SHAPE_1B = {
    "vocab_size": 262144,
    "hidden_size": 1152,
    "intermediate_size": 6912,
    "num_hidden_layers": 26,
    "num_attention_heads": 4,
    "num_key_value_heads": 1,
    "head_dim": 256,
    "sliding_window": 512,
    "sliding_window_pattern": 6,
    "query_pre_attn_scalar": 256,
    "max_position_embeddings": 32768,
    "rope_theta": 1_000_000.0,
    "rope_local_base_freq": 10_000.0,
}


def write_checkpoint(out: Path) -> None:
    """A Gemma-3-1B-shaped ``Gemma3ForCausalLM`` with random bf16 weights and Quote's tokenizer."""

    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from quote.tiny import write_tiny_model

    tiny = out.parent / (out.name + "-tok")
    write_tiny_model(tiny)
    cfg = Gemma3TextConfig(**SHAPE_1B, bos_token_id=2, eos_token_id=1, pad_token_id=0)
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = Gemma3ForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(tiny / name, out / name)


def _contexts(pipe: Any, batch: int, prompt_len: int, new: int, seed: int = 0) -> list[Any]:
    from max.pipelines.context import EOSTracker, SamplingParams, TextContext, TokenBuffer
    from max.pipelines.request.base import RequestID

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(batch):
        prompt = rng.integers(10, 1000, size=prompt_len).astype(np.int64)
        prompt[0] = 2
        out.append(
            TextContext(
                request_id=RequestID(),
                max_length=prompt_len + new + 1,
                tokens=TokenBuffer(prompt),
                eos_tracker=EOSTracker(eos_token_ids={1}),
                sampling_params=SamplingParams(temperature=0.0, ignore_eos=True),
                ignore_eos=True,
                vocab_size=int(pipe.vocab_size),
            )
        )
    return out


def decode_ms(pipe: Any, batch: int, prompt_len: int, steps: int, mods: list[Any] | None) -> float:
    """Median ms of one decode step (prefill excluded) for ``batch`` requests."""
    from max.pipelines.modeling.types import TextGenerationInputs

    from quote.hot.state import RequestOptions

    kv = pipe.kv_manager
    ctxs = _contexts(pipe, batch, prompt_len, steps + 1)
    for c in ctxs:
        if mods is not None and hasattr(pipe, "set_request_options"):
            pipe.set_request_options(c.request_id, RequestOptions(mods=mods))
        kv.claim(c, replica_idx=0)
    times = []
    try:
        for step in range(steps + 1):
            for c in ctxs:
                kv.alloc(c)
            t0 = time.perf_counter()
            pipe.execute(TextGenerationInputs(batches=[ctxs]))
            if step > 0:
                times.append(time.perf_counter() - t0)
    finally:
        for c in ctxs:
            if kv.contains(c):
                kv.release(c)
            pipe.release(c.request_id)
    return statistics.median(times) * 1000.0


def first_logits(pipe: Any, prompt_len: int = 64, steps: int = 4) -> list[list[float]]:
    """Logits of the first ``steps`` greedy steps for a fixed prompt (stock pipelines)."""
    from quote.pipelines.local import greedy_with_logits

    prompt = [int(t) for t in _contexts(pipe, 1, prompt_len, 1)[0].tokens.all]
    _, logits = greedy_with_logits(pipe, [prompt], steps)
    return [r.tolist() for r in logits[0]]


def _mods() -> dict[str, Any]:
    from quote.sdk import ForwardPass, mod

    @mod
    def noop(event: Any, actions: Any, tokenizer: Any) -> None:
        return None

    allow = list(range(100, 164))

    @mod
    def mask(event: Any, actions: Any, tokenizer: Any) -> Any:
        if isinstance(event, ForwardPass):
            return actions.adjust_logits(allow=allow)
        return None

    return {"noop": [noop], "mask": [mask]}


def _load(
    model: str,
    devices: str,
    *,
    builtin: bool = False,
    stock: bool = False,
    max_length: int = 2048,
    **kw: Any,
) -> Any:
    if builtin:
        from max.pipelines.lib import PIPELINE_REGISTRY, PipelineConfig
        from max.pipelines.lib.pipeline_args import PipelineArgs

        args = PipelineArgs.from_flat_kwargs(
            model_path=model,
            device_specs=devices,
            max_batch_size=64,
            max_length=max_length,
            enable_prefix_caching=False,
            device_graph_capture=False,
            **kw,
        )
        return PIPELINE_REGISTRY.retrieve_factory(PipelineConfig.from_args(args)).factory()
    from quote.pipelines.loader import load_pipeline

    return load_pipeline(
        model, devices=devices, max_batch_size=64, max_length=max_length, stock=stock, **kw
    ).pipeline


def phase_builtin(a: argparse.Namespace) -> dict[str, Any]:
    pipe = _load(a.model, a.devices, builtin=True, device_memory_utilization=a.mem)
    res: dict[str, Any] = {"pipeline": type(pipe).__name__, "ms_per_step": {}}
    for b in a.batches:
        res["ms_per_step"][b] = statistics.median(
            decode_ms(pipe, b, a.prompt, a.steps, None) for _ in range(a.reps)
        )
    res["logits"] = first_logits(pipe)
    return res


def phase_quote(a: argparse.Namespace, builtin: dict[str, Any] | None) -> dict[str, Any]:
    stock = _load(a.model, a.devices, stock=True, device_memory_utilization=a.mem)
    quote = _load(a.model, a.devices, device_memory_utilization=a.mem)
    mods = _mods()
    configs = {
        "stock": (stock, None),
        "stock_same_instance": (StockStep(quote), None),
        "quote_no_mod": (quote, None),
        "quote_noop": (quote, mods["noop"]),
        "quote_mask": (quote, mods["mask"]),
    }
    res: dict[str, Any] = {"ms_per_step": {}}
    for b in a.batches:
        samples: dict[str, list[float]] = {k: [] for k in configs}
        names = list(configs)
        for rep in range(a.reps):
            # Rotate the order each repetition so no configuration always runs first.
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                pipe, m = configs[name]
                samples[name].append(decode_ms(pipe, b, a.prompt, a.steps, m))
        med = {k: statistics.median(v) for k, v in samples.items()}
        res["ms_per_step"][b] = med
        res.setdefault("speed_vs_stock", {})[b] = {k: med["stock"] / v for k, v in med.items()}
        res.setdefault("speed_vs_same_instance", {})[b] = {
            k: med["stock_same_instance"] / v for k, v in med.items()
        }
    ours = first_logits(stock)
    res["logits_ours_first"] = ours[0][:8]
    if builtin is not None:
        ref = np.asarray(builtin["logits"], dtype=np.float32)
        got = np.asarray(ours, dtype=np.float32)
        res["max_abs_logit_diff"] = float(np.max(np.abs(ref - got)))
        res["logit_scale"] = float(np.max(np.abs(ref)))
        res["argmax_agree"] = [
            int(np.argmax(x)) == int(np.argmax(y)) for x, y in zip(ref, got, strict=True)
        ]
    return res


def phase_arch(a: argparse.Namespace) -> dict[str, Any]:
    """MAX's built-in Gemma3 and Quote's Gemma3 (stock pipelines), interleaved in one process."""
    builtin = _load(a.model, a.devices, builtin=True, device_memory_utilization=a.mem)
    ref = first_logits(builtin)
    ours = _load(a.model, a.devices, stock=True, device_memory_utilization=a.mem)
    got = first_logits(ours)
    pipes = {"builtin": builtin, "ours": ours}
    res: dict[str, Any] = {"ms_per_step": {}}
    for b in a.batches:
        samples: dict[str, list[float]] = {k: [] for k in pipes}
        names = list(pipes)
        for rep in range(a.reps):
            for name in names[rep % 2 :] + names[: rep % 2]:
                samples[name].append(decode_ms(pipes[name], b, a.prompt, a.steps, None))
        med = {k: statistics.median(v) for k, v in samples.items()}
        res["ms_per_step"][b] = {**med, "ratio_ours_vs_builtin": med["builtin"] / med["ours"]}
    r, g = np.asarray(ref, dtype=np.float32), np.asarray(got, dtype=np.float32)
    res["max_abs_logit_diff"] = float(np.max(np.abs(r - g)))
    res["logit_scale"] = float(np.max(np.abs(r)))
    res["argmax_agree"] = [
        int(np.argmax(x)) == int(np.argmax(y)) for x, y in zip(r, g, strict=True)
    ]
    return res


def phase_rewind(a: argparse.Namespace) -> dict[str, Any]:
    from max.pipelines.modeling.types import TextGenerationInputs

    from quote.hot.state import RequestOptions
    from quote.sdk import Added, Backtrack, mod

    pipe = _load(a.model, a.devices, max_length=8448, device_memory_utilization=a.mem)
    out: dict[str, Any] = {}
    fire = {"at": -1}

    @mod
    def bt(event: Any, actions: Any, tokenizer: Any) -> Any:
        if isinstance(event, Added) and event.step == fire["at"]:
            return Backtrack(8)
        return None

    for length in (512, 2048, 8192):
        kv = pipe.kv_manager
        ctx = _contexts(pipe, 1, length, 64)[0]
        pipe.set_request_options(ctx.request_id, RequestOptions(mods=[bt], stream=False))
        kv.claim(ctx, replica_idx=0)
        times: list[float] = []
        try:
            for step in range(40):
                fire["at"] = 20 if step == 20 else -1
                kv.alloc(ctx)
                t0 = time.perf_counter()
                pipe.execute(TextGenerationInputs(batches=[[ctx]]))
                times.append((time.perf_counter() - t0) * 1000.0)
        finally:
            kv.release(ctx)
            pipe.release(ctx.request_id)
        decode = statistics.median(times[5:19] + times[24:])
        rewind = times[20] + times[21]  # the step that backtracks + the regenerating step
        prefill_ctx = _contexts(pipe, 1, length, 2)[0]
        kv.claim(prefill_ctx, replica_idx=0)
        kv.alloc(prefill_ctx)
        t0 = time.perf_counter()
        pipe.execute(TextGenerationInputs(batches=[[prefill_ctx]]))
        prefill = (time.perf_counter() - t0) * 1000.0
        kv.release(prefill_ctx)
        pipe.release(prefill_ctx.request_id)
        out[length] = {
            "decode_ms": decode,
            "backtrack8_plus_regen_ms": rewind,
            "full_prefill_ms": prefill,
            "ratio_vs_decode": rewind / decode,
            "ratio_vs_prefill": rewind / prefill,
        }
    return out


def phase_softcap(a: argparse.Namespace) -> dict[str, Any]:
    """Quote's soft-capped attention graph on the GPU (bf16) vs transformers in float32."""
    import torch

    from quote.pipelines.local import greedy_with_logits
    from quote.tiny import write_tiny_model
    from quote.tiny.reference import load_reference

    src, dst = Path(a.model + "-f32"), Path(a.model)
    write_tiny_model(src, variant="softcap")
    if a.devices == "cpu":  # a dry run: MAX runs this graph in float32 on CPU
        dst = src
    else:
        load_reference(src, attention="eager").to(torch.bfloat16).save_pretrained(dst)
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            if (src / name).exists():
                shutil.copy(src / name, dst / name)
    pipe = _load(str(dst), a.devices, stock=True, device_memory_utilization=a.mem)
    rng = np.random.default_rng(0)
    prompts = [[2, *rng.integers(10, 1000, size=n - 1).tolist()] for n in (300, 24)]
    sequences, logits = greedy_with_logits(pipe, prompts, 8)
    device = "cuda" if a.devices.startswith("gpu") else "cpu"
    ref = load_reference(dst, dtype=torch.float32, device=device)
    out: dict[str, Any] = {"rows": []}
    for i, prompt in enumerate(prompts):
        seq = sequences[i]
        with torch.no_grad():
            hf = ref(torch.tensor([seq], device=device)).logits[0].float().cpu().numpy()
        for step, got in enumerate(logits[i]):
            want = hf[len(prompt) - 1 + step]
            out["rows"].append(
                {
                    "prompt_len": len(prompt),
                    "step": step,
                    "max_abs_diff": float(np.max(np.abs(got - want))),
                    "argmax_agree": int(np.argmax(got)) == int(np.argmax(want)),
                }
            )
    out["max_abs_diff"] = max(r["max_abs_diff"] for r in out["rows"])
    out["logit_scale"] = float(np.max(np.abs(hf)))
    out["argmax_agree"] = sum(r["argmax_agree"] for r in out["rows"])
    out["steps"] = len(out["rows"])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("phase", choices=["checkpoint", "builtin", "quote", "rewind", "arch", "softcap"])
    p.add_argument("--model", default="/tmp/g1b")
    p.add_argument("--devices", default="gpu")
    p.add_argument("--out", default="/tmp/bench_gpu")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    p.add_argument("--prompt", type=int, default=128)
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument(
        "--mem", type=float, default=0.3, help="KV cache share of device memory per pipeline"
    )
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.phase == "checkpoint":
        write_checkpoint(Path(a.model))
        return
    if a.phase == "builtin":
        res = phase_builtin(a)
    elif a.phase == "arch":
        res = phase_arch(a)
    elif a.phase == "quote":
        ref = out / "builtin.json"
        res = phase_quote(a, json.loads(ref.read_text()) if ref.exists() else None)
    elif a.phase == "softcap":
        res = phase_softcap(a)
    else:
        res = phase_rewind(a)
    (out / f"{a.phase}.json").write_text(json.dumps(res))
    printable = {k: v for k, v in res.items() if k != "logits"}
    print(json.dumps(printable, indent=1))


if __name__ == "__main__":
    main()
