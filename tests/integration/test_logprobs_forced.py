# SPDX-License-Identifier: Apache-2.0
"""Log probabilities of forced and echoed tokens on the real pipeline, against transformers.

With a model built with MAX's ``enable_echo`` (logits for every position), every token that
enters a request asking for log probabilities gets an entry: sampled tokens from the
distribution they were sampled from (no mod edits here: the model's), forced tokens (chunks
forced at ``ForwardPass`` and at ``Prefilled``) from the model's distribution at their
position, and, with ``echo``, the prompt's tokens after the first. The oracle is Hugging
Face transformers on the same tiny checkpoint (float32): ``log_softmax(logits[p - 1])[t_p]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from loop_helpers import at, scripted

from quote.hot.state import RequestOptions
from quote.pipelines.local import LocalEngine, Request, Result
from quote.sdk import Backtrack, ForceTokens, ForwardPass, Prefilled, Sampled
from quote.tiny.reference import load_reference

pytestmark = pytest.mark.integration

TOL = 1e-3
TOP = 3
PROMPT_TEXT = "The engine steers generation one token at a time."
CHUNK = (310, 311, 312, 313)  # forced ids: plain word pieces, none of them an end token


@pytest.fixture(scope="module")
def engine(pipeline_factory: Any) -> LocalEngine:
    return LocalEngine(pipeline_factory("default", echo=True))


@pytest.fixture(scope="module")
def prompt(engine: LocalEngine) -> list[int]:
    return [int(t) for t in engine.loaded.hf_tokenizer.encode(PROMPT_TEXT)]


@pytest.fixture(scope="module")
def reference(tiny_model: Path) -> Any:
    return load_reference(tiny_model)


def hf_logprobs(reference: Any, seq: list[int]) -> np.ndarray:
    """``out[p]``: transformers' log-softmax at position ``p - 1`` (predicting ``seq[p]``)."""
    import torch

    with torch.no_grad():
        logits = reference(torch.tensor([seq])).logits[0].double()
    lp = torch.log_softmax(logits, dim=-1).numpy()
    return np.concatenate([np.full((1, lp.shape[1]), np.nan), lp[:-1]])


def check_entries(reference: Any, seq: list[int], start: int, entries: list[Any]) -> None:
    """``entries`` are those of ``seq[start:]``, in order, each matching transformers."""
    ref = hf_logprobs(reference, seq)
    assert len(entries) == len(seq) - start
    for pos, entry in zip(range(start, len(seq)), entries, strict=True):
        token = seq[pos]
        assert entry.sampled_token_ids == [token], f"position {pos}"
        (value,) = entry.token_log_probabilities
        assert abs(value - ref[pos, token]) <= TOL, (pos, value, ref[pos, token])
        (top,) = entry.top_log_probabilities
        assert token in top and len(top) <= TOP + 1
        for t, v in top.items():
            assert abs(v - ref[pos, t]) <= TOL, (pos, t)
        best = np.sort(ref[pos])[::-1][:TOP]
        listed = sorted(top.values(), reverse=True)[:TOP]
        assert np.allclose(listed, best, atol=TOL), (pos, listed, best)


def run(engine: LocalEngine, prompt: list[int], *scripts: Any, n: int = 10, **kw: Any) -> Result:
    mods = [scripted(f"m{i}", s) for i, s in enumerate(scripts)]
    options = RequestOptions(mods=mods, stream=kw.pop("stream", True))
    (r,) = engine.generate(
        [Request(prompt, n, ignore_eos=True, logprobs=TOP, options=options, **kw)]
    )
    assert r.error is None, r.error
    return r


def test_chunk_forced_at_forward_pass(
    engine: LocalEngine, prompt: list[int], reference: Any
) -> None:
    r = run(engine, prompt, at(ForwardPass, 2, ForceTokens(CHUNK)))
    seq = r.final_sequence
    assert seq[len(prompt) + 2 : len(prompt) + 6] == list(CHUNK) and len(r.tokens) == 10
    check_entries(reference, seq, len(prompt), r.logprobs)


def test_chunk_forced_at_prefilled(engine: LocalEngine, prompt: list[int], reference: Any) -> None:
    r = run(engine, prompt, at(Prefilled, 0, ForceTokens(CHUNK)))
    seq = r.final_sequence
    assert seq[len(prompt) : len(prompt) + 4] == list(CHUNK) and len(r.tokens) == 10
    check_entries(reference, seq, len(prompt), r.logprobs)


def test_backtracked_tokens_never_appear(
    engine: LocalEngine, prompt: list[int], reference: Any
) -> None:
    """A chunk forced, then three tokens backtracked and two others forced in their place:
    the entries are exactly those of the final sequence."""
    r = run(
        engine,
        prompt,
        at(ForwardPass, 1, ForceTokens(CHUNK)),
        at(Sampled, 3, Backtrack(3, (320, 321))),
    )
    seq = r.final_sequence
    assert 320 in seq[len(prompt) :] and len(r.tokens) == 10
    check_entries(reference, seq, len(prompt), r.logprobs)


def test_chunk_that_ends_the_request(
    engine: LocalEngine, prompt: list[int], reference: Any
) -> None:
    """A forced chunk that reaches max_tokens: one more forward pass computes its entries."""
    r = run(engine, prompt, at(ForwardPass, 2, ForceTokens(CHUNK)), n=6, stream=False)
    assert r.finish_reason == "length" and r.tokens[2:] == list(CHUNK)
    check_entries(reference, r.final_sequence, len(prompt), r.logprobs)


@pytest.mark.parametrize("prefill_chunk", [None, 5])
def test_echo_prompt_logprobs(
    engine: LocalEngine, prompt: list[int], reference: Any, prefill_chunk: int | None
) -> None:
    """``echo``: the prompt's tokens after the first, then the generated ones (also when the
    prompt is prefilled in chunks, and with a chunk forced at Prefilled)."""
    (r,) = engine.generate(
        [Request(prompt, 4, ignore_eos=True, logprobs=TOP, echo=True)],
        prefill_chunk=prefill_chunk,
    )
    check_entries(reference, r.final_sequence, 1, r.logprobs)
    r = run(engine, prompt, at(Prefilled, 0, ForceTokens(CHUNK[:2])), n=4, echo=True)
    check_entries(reference, r.final_sequence, 1, r.logprobs)


def test_without_all_logits_only_first_forced_token(
    pipeline_factory: Any, prompt: list[int], reference: Any
) -> None:
    """Without ``enable_echo`` (last-position logits only), as documented: the first token of
    a forced chunk has an entry, the others have none."""
    r = run(
        LocalEngine(pipeline_factory("default")), prompt, at(ForwardPass, 2, ForceTokens(CHUNK))
    )
    seq = r.final_sequence
    p = len(prompt)
    assert seq[p + 2 : p + 6] == list(CHUNK)
    positions = [p, p + 1, p + 2, *range(p + 6, len(seq))]
    assert [e.sampled_token_ids for e in r.logprobs] == [[seq[i]] for i in positions]
    ref = hf_logprobs(reference, seq)
    for pos, e in zip(positions, r.logprobs, strict=True):
        assert abs(e.token_log_probabilities[0] - ref[pos, seq[pos]]) <= TOL
