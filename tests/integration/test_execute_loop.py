# SPDX-License-Identifier: Apache-2.0
"""The mod execution loop on the real MAX pipeline (CPU, float32, tiny Gemma3)."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import numpy as np
import pytest
from loop_helpers import EVENTS, Recorder, at, scripted

from quote.hot.state import RequestOptions
from quote.pipelines.local import LocalEngine, Request
from quote.sdk import (
    Added,
    AdjustedLogits,
    AdjustedPrefill,
    Backtrack,
    EmitError,
    ForceOutput,
    ForceTokens,
    ForwardPass,
    Mod,
    ModDefinition,
    Noop,
    Prefilled,
    Sampled,
    ToolCalls,
    mod,
)

pytestmark = pytest.mark.integration

N = 8
PROMPT_TEXT = "The engine steers generation one token at a time."


@pytest.fixture(scope="module")
def engine(pipeline_factory: Any) -> LocalEngine:
    return LocalEngine(pipeline_factory("default"))


@pytest.fixture(scope="module")
def prompt(engine: LocalEngine) -> list[int]:
    return [int(t) for t in engine.loaded.hf_tokenizer.encode(PROMPT_TEXT)]


@pytest.fixture(scope="module")
def baseline(engine: LocalEngine, prompt: list[int]) -> list[int]:
    (r,) = engine.generate([Request(prompt, N, ignore_eos=True)])
    assert len(r.tokens) == N and len(set(r.tokens)) > 2
    return r.tokens


def run(engine: LocalEngine, prompt: list[int], *mods: ModDefinition, n: int = N, **kw: Any) -> Any:
    (r,) = engine.generate(
        [Request(prompt, n, ignore_eos=True, options=RequestOptions(mods=list(mods), **kw))]
    )
    return r


def test_noop_mod_matches_no_mod(
    engine: LocalEngine, prompt: list[int], baseline: list[int]
) -> None:
    @mod
    def noop(event: Any, actions: Any, tokenizer: Any) -> None:
        return None

    r = run(engine, prompt, noop)
    assert r.tokens == baseline and r.finish_reason == "length"


def _pick(baseline: list[int], avoid: int = -1) -> int:
    return next(t for t in (7, 11, 13, 17, 19) if t not in baseline[:6] and t != avoid)


LEGAL_CASES = [
    (e, a) for e in EVENTS for a in ("Noop", "ForceTokens", "ForceOutput", "ToolCalls", "EmitError")
]
LEGAL_CASES += [("Prefilled", "AdjustedPrefill"), ("ForwardPass", "AdjustedLogits")]
LEGAL_CASES += [(e, "Backtrack") for e in ("ForwardPass", "Sampled", "Added")]


@pytest.mark.parametrize(("event", "action"), LEGAL_CASES)
def test_legal_pairs(
    engine: LocalEngine, prompt: list[int], baseline: list[int], event: str, action: str
) -> None:
    t = _pick(baseline)
    step = 0 if event == "Prefilled" else 3
    make = {
        "Noop": Noop(),
        "ForceTokens": ForceTokens((t, t)),
        "ForceOutput": ForceOutput((t, 5, t)),
        "ToolCalls": ToolCalls(({"name": "lookup", "arguments": {"q": 1}},)),
        "EmitError": EmitError("nope"),
        "AdjustedPrefill": AdjustedPrefill(tuple(prompt[:4]), max_steps=5),
        "AdjustedLogits": AdjustedLogits(allow=(t,)),
        "Backtrack": Backtrack(2 if event == "Added" else 1, (t,)),
    }[action]
    r = run(engine, prompt, scripted("m", at(EVENTS[event], step, make), hold_back=N))
    if action == "Noop":
        assert r.tokens == baseline
    elif action == "ForceTokens":
        pos = {"Prefilled": 0, "ForwardPass": 3, "Sampled": 3, "Added": 4}[event]
        assert r.tokens[:pos] == baseline[:pos] and r.tokens[pos : pos + 2] == [t, t]
        assert len(r.tokens) == N
    elif action == "ForceOutput":
        assert r.tokens == [t, 5, t] and r.finish_reason == "stop"
    elif action == "ToolCalls":
        assert r.finish_reason == "tool_calls"
        assert r.tool_calls == [{"id": None, "name": "lookup", "arguments": {"q": 1}}]
    elif action == "EmitError":
        assert r.finish_reason == "error" and "'m'" in (r.error or "") and "nope" in (r.error or "")
    elif action == "AdjustedPrefill":
        (ref,) = engine.generate([Request(prompt[:4], 5, ignore_eos=True)])
        assert r.tokens == ref.tokens and len(r.tokens) == 5
    elif action == "AdjustedLogits":
        assert r.tokens[:3] == baseline[:3] and r.tokens[3] == t
    elif action == "Backtrack":
        assert r.tokens[:2] == baseline[:2] and r.tokens[2] == t
        assert len(r.tokens) == N


ILLEGAL = [
    ("ForwardPass", AdjustedPrefill((1, 2))),
    ("Sampled", AdjustedLogits(ban=(3,))),
    ("Added", AdjustedLogits(ban=(3,))),
    ("Prefilled", AdjustedLogits(ban=(3,))),
    ("Prefilled", Backtrack(1)),
    ("Added", AdjustedPrefill((1, 2))),
]


@pytest.mark.parametrize(
    ("event", "action"), ILLEGAL, ids=[f"{e}-{type(a).__name__}" for e, a in ILLEGAL]
)
def test_illegal_pairs_fail_naming_mod_event_action(
    engine: LocalEngine, prompt: list[int], event: str, action: Any
) -> None:
    step = 0 if event == "Prefilled" else 2
    r = run(engine, prompt, scripted("bad_mod", at(EVENTS[event], step, action)))
    assert r.finish_reason == "error"
    assert "bad_mod" in r.error and event in r.error and type(action).__name__ in r.error


def test_faulty_mods_fail_only_their_request(
    engine: LocalEngine, prompt: list[int], baseline: list[int]
) -> None:
    def boom(event: Any, rec: Recorder) -> Any:
        if isinstance(event, Sampled) and event.step == 2:
            raise KeyError("oops")
        return None

    faulty = {
        "raises": scripted("raises", boom),
        "garbage": scripted(
            "garbage", lambda e, r: "not an action" if isinstance(e, Added) else None
        ),
        "oov": scripted("oov", at(ForwardPass, 1, ForceTokens((10**7,)))),
        "past_prompt": scripted("past_prompt", at(Added, 1, Backtrack(50))),
        "bad_logits": scripted("bad_logits", at(ForwardPass, 1, AdjustedLogits(ban=(99999,)))),
    }
    reqs = [Request(prompt, N, ignore_eos=True)]
    reqs += [
        Request(prompt, N, ignore_eos=True, options=RequestOptions(mods=[m]))
        for m in faulty.values()
    ]
    reqs += [Request(prompt, N, ignore_eos=True)]
    results = engine.generate(reqs)
    assert results[0].tokens == baseline and results[-1].tokens == baseline
    for (name, _), r in zip(faulty.items(), results[1:-1], strict=True):
        assert r.finish_reason == "error", name
        assert f"'{name}'" in r.error or name in r.error, r.error


def test_forced_tokens_count_and_eos(engine: LocalEngine, prompt: list[int]) -> None:
    eos = int(engine.loaded.hf_tokenizer.eos_token_id)
    many = scripted("many", at(Prefilled, 0, ForceTokens(tuple(range(20, 32)))))
    (r,) = engine.generate([Request(prompt, 5, options=RequestOptions(mods=[many]))])
    assert r.tokens == list(range(20, 25)) and r.finish_reason == "length"
    stop = scripted("stop", at(Prefilled, 0, ForceTokens((20, eos, 21))))
    (r,) = engine.generate([Request(prompt, 8, options=RequestOptions(mods=[stop]))])
    assert r.tokens == [20, eos] and r.finish_reason == "stop"


def test_forcing_k_tokens_costs_one_forward(engine: LocalEngine, prompt: list[int]) -> None:
    m = scripted("k", at(Added, 1, ForceTokens(tuple(range(40, 50)))))
    r = run(engine, prompt, m, n=16)
    # 16 tokens: 2 sampled, 10 forced in one step, then 4 more sampled => 2 + 4 + 1 steps.
    assert r.tokens[2:12] == list(range(40, 50))
    assert r.forward_passes == 6


def test_streaming_never_retracts_and_rejects_late_backtrack(
    engine: LocalEngine, prompt: list[int]
) -> None:
    t = 7
    ok = scripted("ok", at(Added, 6, Backtrack(2, (t,))), hold_back=4)
    r = run(engine, prompt, ok, n=12)
    assert r.error is None and r.tokens[5] == t
    assert [x for c in r.chunks for x in c] == r.tokens and len(r.chunks) > 1
    late = scripted("late", at(Added, 8, Backtrack(6)), hold_back=2)
    r = run(engine, prompt, late, n=12)
    assert r.finish_reason == "error" and "already delivered" in r.error
    # Non-streaming requests may backtrack anywhere in their completion.
    r = run(
        engine,
        prompt,
        scripted("late", at(Added, 8, Backtrack(6)), hold_back=2),
        n=12,
        stream=False,
    )
    assert r.error is None and len(r.tokens) == 12


def test_backtrack_then_resample_can_differ(engine: LocalEngine, prompt: list[int]) -> None:
    removed: list[tuple[int, int]] = []

    def once(event: Any, rec: Recorder) -> Any:
        if isinstance(event, Added) and event.step == 3 and not rec.prefilled > 1 and not removed:
            removed.append((event.tokens[-1], len(rec.seq)))
            return Backtrack(1)
        return None

    differs = 0
    for seed in range(6):
        removed.clear()
        (r,) = engine.generate(
            [
                Request(
                    prompt,
                    6,
                    temperature=1.5,
                    seed=seed,
                    ignore_eos=True,
                    options=RequestOptions(mods=[scripted("b", once)]),
                )
            ]
        )
        differs += int(r.tokens[3] != removed[0][0])
    assert differs > 0


def test_batch_behaves_as_alone(engine: LocalEngine, prompt: list[int]) -> None:
    other = [
        int(t)
        for t in engine.loaded.hf_tokenizer.encode(
            "A different prompt, a bit longer than the first one is."
        )
    ]
    mods = [
        [],
        [scripted("a", at(ForwardPass, 2, AdjustedLogits(ban=tuple(range(0, 300)))))],
        [scripted("b", at(Added, 3, Backtrack(2, (9, 9, 9))))],
        [scripted("c", at(Sampled, 1, ForceTokens((30, 31, 32))))],
    ]
    reqs = [
        Request(p, 10, ignore_eos=True, options=RequestOptions(mods=m))
        for p in (prompt, other)
        for m in mods
    ]
    together = engine.generate(reqs)
    for req, r in zip(reqs, together, strict=True):
        (alone,) = engine.generate([req])
        assert r.tokens == alone.tokens


def test_trace_and_state_lifecycle(engine: LocalEngine, prompt: list[int]) -> None:
    made: list[Any] = []

    class Tracked(Mod):
        def __init__(self) -> None:
            made.append(weakref.ref(self))
            self.big = bytearray(1 << 16)

        def handle(self, event: Any, actions: Any, tokenizer: Any) -> Any:
            from quote.sdk import mod_log

            mod_log("saw %s", type(event).__name__)
            return None

    d = ModDefinition("tracked", Tracked)
    r = run(engine, prompt, d, n=3, trace=True)
    assert r.trace is not None and r.trace["mod_logs"][0] == "saw Prefilled"
    events = [e.get("event") for e in r.trace["entries"]]
    assert {"Prefilled", "ForwardPass", "Sampled", "Added"} <= set(events)
    pipe = engine.pipeline
    for _ in range(0, 1000, 16):
        engine.generate([Request(prompt, 1, options=RequestOptions(mods=[d])) for _ in range(16)])
    gc.collect()
    assert len(made) == 1 + 16 * 63
    assert sum(1 for w in made if w() is not None) == 0
    assert not pipe.quote_states and not pipe.quote_results and not pipe._pending_options


def test_prefilled_exactly_once_and_steps_contiguous(
    engine: LocalEngine, prompt: list[int]
) -> None:
    sink: list[Recorder] = []
    m = scripted("watch", at(Added, 2, ForceTokens((5, 6, 7))), sink=sink)
    run(engine, prompt, m, n=10)
    rec = sink[0]
    assert rec.prefilled == 1
    assert rec.steps == list(range(len(rec.steps)))
    assert np.all(np.isfinite(rec.records[0][1]))


def test_device_masks_match_host_masks(engine: LocalEngine, prompt: list[int]) -> None:
    """Allow/ban edits run on the device (bitmask sampler) exactly as on the host."""
    assert engine.pipeline._sampler_with_bitmask is not None
    allowed = (100, 500, 999)

    @mod
    def allow(event: Any, actions: Any, tokenizer: Any) -> Any:
        if isinstance(event, ForwardPass):
            return actions.adjust_logits(allow=allowed)
        return None

    @mod
    def reads(event: Any, actions: Any, tokenizer: Any) -> None:
        if isinstance(event, ForwardPass):
            assert int(np.isfinite(event.logits).sum()) == len(allowed)  # sees the edit
        return None

    reqs = [
        Request(
            prompt, 12, temperature=1.5, seed=s, ignore_eos=True, options=RequestOptions(mods=m)
        )
        for s in range(3)
        for m in ([allow], [allow, reads])
    ]
    out = engine.generate(reqs)
    for device, host in zip(out[0::2], out[1::2], strict=True):
        assert device.error is None and host.error is None
        assert set(device.tokens) <= set(allowed)
        assert device.tokens == host.tokens


@pytest.mark.parametrize("edit", ["ban", "bias", "temperature"])
def test_each_step_samples_its_own_edits(engine: LocalEngine, prompt: list[int], edit: str) -> None:
    """The sampler runs before ``ForwardPass`` unless the batch expects edits; every path
    (edit after a quiet step, quiet step after an edit, quiet after quiet) samples exactly
    what the mods left: the argmax of the logits the mod saw, or the runner-up once the
    mod bans (or buries) the top token. A second request without mods shares the batch."""
    want: dict[int, int] = {}
    got: dict[int, int] = {}

    @mod
    def every_third(event: Any, actions: Any, tokenizer: Any) -> Any:
        if isinstance(event, Sampled):
            got[event.step] = event.token
        if not isinstance(event, ForwardPass):
            return None
        order = np.argsort(event.logits, kind="stable")
        top, second = int(order[-1]), int(order[-2])
        if event.step % 3 != 1:
            want[event.step] = top
            return None
        want[event.step] = second
        if edit == "ban":
            return actions.adjust_logits(ban=[top])
        if edit == "bias":
            return actions.adjust_logits(bias={top: -1e4})
        want[event.step] = top  # temperature 0 on a sampled request: greedy
        return actions.adjust_logits(temperature=0.0)

    temperature = 1.0 if edit == "temperature" else 0.0
    reqs = [
        Request(
            prompt,
            10,
            temperature=temperature,
            seed=3,
            ignore_eos=True,
            options=RequestOptions(mods=[every_third]),
        ),
        Request(prompt, 10, ignore_eos=True),
    ]
    edited, plain = engine.generate(reqs)
    assert edited.error is None and len(edited.tokens) == 10
    if edit == "temperature":  # quiet steps sample at temperature 1; edited ones are greedy
        want = {s: t for s, t in want.items() if s % 3 == 1}
        got = {s: t for s, t in got.items() if s % 3 == 1}
        assert len(want) == 3 and len(set(edited.tokens)) > 3
    else:
        assert edited.tokens == [want[i] for i in range(10)]
    assert got == want
    (alone,) = engine.generate([Request(prompt, 10, ignore_eos=True)])
    assert plain.tokens == alone.tokens


def test_chunked_prefill_with_mods(engine: LocalEngine, prompt: list[int]) -> None:
    """A prompt prefilled in chunks (as MAX's scheduler splits long prompts), in a batch with a
    request already decoding: mods see Prefilled once, then ForwardPass from step 0 with the
    whole prompt's logits; tokens, forced edits and the other request match unchunked runs."""
    long_prompt = prompt * 4
    assert len(long_prompt) > 2 * 7
    sink: list[Recorder] = []
    watch = scripted("watch", at(Added, 2, ForceTokens((5, 6, 7))), sink=sink)
    reqs = [
        Request(long_prompt, 8, ignore_eos=True, options=RequestOptions(mods=[watch])),
        Request(prompt, 12, ignore_eos=True, options=RequestOptions(mods=[watch])),
    ]
    calls: list[int] = []
    step = engine.pipeline.execute

    def counting(inputs: Any) -> Any:
        calls.append(1)
        return step(inputs)

    engine.pipeline.execute = counting  # type: ignore[method-assign]
    try:
        chunked = engine.generate(reqs, prefill_chunk=7)
        n_chunked = len(calls)
        whole = engine.generate(reqs)
    finally:
        del engine.pipeline.execute
    # The long prompt took one step per 7-token chunk (the last one also samples).
    assert n_chunked >= -(-len(long_prompt) // 7) + 4 > len(calls) - n_chunked
    for c, w in zip(chunked, whole, strict=True):
        assert c.error is None and c.tokens == w.tokens and len(c.tokens) > 0
        assert c.forward_passes == w.forward_passes
    assert (5, 6, 7) == tuple(chunked[0].tokens[3:6])
    long_rec = next(r for r in sink[:2] if r.prompt_len == len(long_prompt))
    assert long_rec.prefilled == 1 and long_rec.steps == list(range(len(long_rec.steps)))
    first_chunked = sink[:2][sink[:2].index(long_rec)].records[0][1]
    long_whole = next(r for r in sink[2:] if r.prompt_len == len(long_prompt))
    np.testing.assert_allclose(first_chunked, long_whole.records[0][1], rtol=1e-4, atol=1e-4)
