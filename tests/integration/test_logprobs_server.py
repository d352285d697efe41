# SPDX-License-Identifier: Apache-2.0
"""Log probabilities of forced tokens and ``echo`` through ``quote serve --enable-echo
--no-enable-prefix-caching`` (as ``echo`` with ``logprobs`` needs), with the ``openai``
client, streamed and not, against Hugging Face transformers.

Greedy decoding is replayed in transformers (the same mods' forced chunks at the same
steps), so the oracle gives every token of the completion and its log probability.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
from server_proc import openai_client, served_name

from quote.server.process import ServerProcess, register_mod
from quote.tiny.reference import load_reference

pytestmark = pytest.mark.integration

KEY = "logprobs-key"
TOL = 1e-3
CHUNK = (310, 311, 312, 313)
MODS = f"""
from quote.sdk import mod, ForwardPass, Prefilled

CHUNK = {list(CHUNK)}

@mod
def chunk(event, actions, tokenizer):
    if isinstance(event, ForwardPass) and event.step == 2:
        return actions.force_tokens(CHUNK)

@mod
def prefill(event, actions, tokenizer):
    if isinstance(event, Prefilled):
        return actions.force_tokens(CHUNK)
"""
PROMPT_TEXT = "The engine steers generation one token at a time."
N = 9


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("logprobs-server")
    srv = ServerProcess(
        tiny_model,
        mods_dir=workdir / "mods",
        log=workdir / "server.log",
        max_batch_size=4,
        env={"QUOTE_ADMIN_KEY": KEY},
        extra_args=["--enable-echo", "--no-enable-prefix-caching"],
    )
    try:
        srv.wait_ready()
        for name in ("chunk", "prefill"):
            status, text = register_mod(srv.base, KEY, name, MODS, name)
            assert status == 201, text
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> openai.OpenAI:
    return openai_client(server)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def served(server: ServerProcess) -> str:
    return served_name(server)


@pytest.fixture(scope="module")
def reference(tiny_model: Path) -> Any:
    return load_reference(tiny_model)


@pytest.fixture(scope="module")
def tokenizer(tiny_model: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model))


def hf_logprobs(reference: Any, seq: list[int]) -> np.ndarray:
    """Row ``p``: transformers' log-softmax predicting ``seq[p]`` (row 0 is NaN)."""
    import torch

    with torch.no_grad():
        logits = reference(torch.tensor([seq])).logits[0].double()
    lp = torch.log_softmax(logits, dim=-1).numpy()
    return np.concatenate([np.full((1, lp.shape[1]), np.nan), lp[:-1]])


def replay(reference: Any, prompt: list[int], mod: str | None, n: int = N) -> list[int]:
    """The greedy sequence (prompt + ``n`` tokens) with ``mod``'s chunk forced, in transformers."""
    seq = list(prompt) + (list(CHUNK) if mod == "prefill" else [])
    step = 0
    while len(seq) - len(prompt) < n:
        if mod == "chunk" and step == 2:
            seq += list(CHUNK)
        else:
            seq.append(int(np.argmax(_next(reference, seq))))
        step += 1
    return seq[: len(prompt) + n]


def _next(reference: Any, seq: list[int]) -> np.ndarray:
    import torch

    with torch.no_grad():
        return np.asarray(reference(torch.tensor([seq])).logits[0, -1].double().numpy())


def expected(reference: Any, seq: list[int], start: int) -> list[float]:
    ref = hf_logprobs(reference, seq)
    return [float(ref[p, seq[p]]) for p in range(start, len(seq))]


def _completion_logprobs(
    client: openai.OpenAI, stream: bool, **kw: Any
) -> tuple[str, list[Any], list[Any]]:
    kw = {"max_tokens": N, "temperature": 0, **kw}
    if not stream:
        choice = client.completions.create(**kw).choices[0]
        assert choice.logprobs is not None
        return (
            choice.text,
            list(choice.logprobs.token_logprobs or []),
            list(choice.logprobs.top_logprobs or []),
        )
    text, values, tops = "", [], []
    for chunk in client.completions.create(stream=True, **kw):
        for c in chunk.choices:
            text += c.text or ""
            if c.logprobs is not None:
                values += c.logprobs.token_logprobs or []
                tops += c.logprobs.top_logprobs or []
    return text, values, tops


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("mod", "n"), [("chunk", N), ("prefill", N), ("chunk", 6)])
def test_completions_every_forced_token(
    client: openai.OpenAI,
    served: str,
    reference: Any,
    tokenizer: Any,
    mod: str,
    n: int,
    stream: bool,
) -> None:
    """Chunks forced at ForwardPass and at Prefilled; with n=6 the chunk reaches max_tokens
    (the request runs one more forward pass for its entries)."""
    prompt = [int(t) for t in tokenizer.encode(PROMPT_TEXT)]
    seq = replay(reference, prompt, mod, n)
    text, values, tops = _completion_logprobs(
        client, stream, model=f"{served}/{mod}", prompt=prompt, logprobs=2, max_tokens=n
    )
    assert text == tokenizer.decode(seq[len(prompt) :])
    assert len(values) == n and len(tops) == n
    assert np.allclose(values, expected(reference, seq, len(prompt)), atol=TOL)
    assert all(1 <= len(top) <= 3 for top in tops)


@pytest.mark.parametrize("stream", [False, True])
def test_chat_every_forced_token_with_top_logprobs(
    client: openai.OpenAI, served: str, reference: Any, tokenizer: Any, stream: bool
) -> None:
    messages = [{"role": "user", "content": "Tell me about the weather"}]
    rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    ids = rendered["input_ids"] if hasattr(rendered, "keys") else rendered  # transformers 4 / 5
    prompt = [int(t) for t in ids]
    seq = replay(reference, prompt, "chunk")
    kw: dict[str, Any] = {
        "model": f"{served}/chunk",
        "messages": messages,
        "max_tokens": N,
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": 3,
    }
    if stream:
        entries = []
        for chunk in client.chat.completions.create(stream=True, **kw):
            for c in chunk.choices:
                entries += (c.logprobs.content or []) if c.logprobs else []
    else:
        lp = client.chat.completions.create(**kw).choices[0].logprobs
        assert lp is not None
        entries = list(lp.content or [])
    ref = hf_logprobs(reference, seq)
    assert len(entries) == N
    for pos, entry in zip(range(len(prompt), len(seq)), entries, strict=True):
        assert entry.token == tokenizer.decode([seq[pos]])
        assert abs(entry.logprob - ref[pos, seq[pos]]) <= TOL, pos
        assert len(entry.top_logprobs) == 3
        best = np.sort(ref[pos])[::-1][:3]
        assert np.allclose([t.logprob for t in entry.top_logprobs], best, atol=TOL), pos


@pytest.mark.parametrize("stream", [False, True])
def test_echo_with_logprobs(
    client: openai.OpenAI, served: str, reference: Any, tokenizer: Any, stream: bool
) -> None:
    """The prompt's log probabilities (null first, as OpenAI's) ahead of the generated ones."""
    prompt = [int(t) for t in tokenizer.encode(PROMPT_TEXT)]
    seq = replay(reference, prompt, None, n=4)
    text, values, tops = _completion_logprobs(
        client, stream, model=served, prompt=prompt, logprobs=1, echo=True, max_tokens=4
    )
    # MAX's detokenizer holds back an incomplete UTF-8 character at the very end.
    assert text.startswith(tokenizer.decode(prompt)) and tokenizer.decode(seq).startswith(text)
    assert values[0] is None and tops[0] is None
    assert len(values) == len(seq)
    assert np.allclose(values[1:], expected(reference, seq, 1), atol=TOL)
