# SPDX-License-Identifier: Apache-2.0
"""Images in prompts on the ``Gemma3ForConditionalGeneration`` layout, CPU float32.

The oracle is transformers' ``Gemma3ForConditionalGeneration`` on the same checkpoint (the
tiny multimodal one, with its SigLIP tower), the same image and the same token ids from the
checkpoint's own processor (``token_type_ids`` included: the tokens of one image attend to
each other both ways). Quote's engine runs the image through its vision graph and decoder;
greedy tokens must be equal and every log probability (sampled and top-5) within 1e-3, with
the image after a text longer than the 256-token sliding window, in a batch next to a
text-only request, and with a mod that forces tokens. Then ``quote serve`` answers an OpenAI
``image_url`` (data URL) request with the same text, a broken image with a 400, and a remote
URL with a 400 (fetching is off unless the operator allows it).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from server_proc import mod_server, served_name

from quote.hot.state import RequestOptions
from quote.pipelines.local import LocalEngine, Request
from quote.sdk import Prefilled, mod

pytestmark = pytest.mark.integration

STEPS = 8
TOP = 5
TOL = 1e-3
LONG = " ".join(f"Row {i}: a sentence about item {i * 3}." for i in range(40))


def _image(seed: int = 0) -> Any:
    from PIL import Image

    pixels = (np.random.default_rng(seed).random((70, 90, 3)) * 255).astype(np.uint8)
    return Image.fromarray(pixels)


def _png(image: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from quote.tiny.multimodal import write_tiny_multimodal_model

    return write_tiny_multimodal_model(tmp_path_factory.mktemp("gemma3-images") / "v4")


@pytest.fixture(scope="module")
def reference(checkpoint: Path) -> Iterator[Any]:
    import torch
    from transformers import AutoProcessor, Gemma3ForConditionalGeneration

    model = Gemma3ForConditionalGeneration.from_pretrained(
        checkpoint, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    yield AutoProcessor.from_pretrained(checkpoint), model


@pytest.fixture(scope="module")
def engine(checkpoint: Path) -> LocalEngine:
    from quote.pipelines.loader import load_pipeline

    return LocalEngine(load_pipeline(checkpoint, max_batch_size=4, max_length=1024))


def _inputs(processor: Any, text: str, image: Any | None) -> dict[str, Any]:
    content: list[dict[str, str]] = [{"type": "text", "text": text}]
    if image is not None:
        content.append({"type": "image"})
    messages = [{"role": "user", "content": content}]
    prompt = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    images = [image] if image is not None else None
    return dict(
        processor(text=prompt, images=images, return_tensors="np", add_special_tokens=False)
    )


def _greedy(model: Any, inputs: dict[str, Any], steps: int) -> tuple[list[int], np.ndarray]:
    """transformers' greedy tokens and log-softmax rows (full forward each step)."""
    import torch

    ids = [int(t) for t in inputs["input_ids"][0]]
    types = [int(t) for t in inputs["token_type_ids"][0]]
    pixels = inputs.get("pixel_values")
    rows = []
    with torch.no_grad():
        for _ in range(steps):
            kwargs: dict[str, Any] = {
                "input_ids": torch.tensor([ids]),
                "token_type_ids": torch.tensor([types]),
            }
            if pixels is not None:
                kwargs["pixel_values"] = torch.from_numpy(pixels)
            logits = model(**kwargs).logits[0, -1].double()
            row = torch.log_softmax(logits, dim=-1).numpy()
            rows.append(row)
            ids.append(int(np.argmax(row)))
            types.append(0)
    n = len(inputs["input_ids"][0])
    return ids[n:], np.stack(rows)


def _request(inputs: dict[str, Any], **kw: Any) -> Request:
    from max.pipelines.context import ImageMetadata

    ids = [int(t) for t in inputs["input_ids"][0]]
    images = []
    if "pixel_values" in inputs:
        soft = np.flatnonzero(np.asarray(inputs["token_type_ids"][0]) == 1)
        images.append(
            ImageMetadata(
                start_idx=int(soft[0]),
                end_idx=int(soft[-1]) + 1,
                pixel_values=np.ascontiguousarray(inputs["pixel_values"][0]),
            )
        )
    return Request(ids, STEPS, ignore_eos=True, logprobs=TOP, images=images, **kw)


def _check(result: Any, tokens: list[int], rows: np.ndarray) -> float:
    """Tokens equal; every returned log probability within TOL of transformers'."""
    assert result.error is None, result.error
    assert result.tokens == tokens
    worst = 0.0
    for entry, token, row in zip(result.logprobs, tokens, rows, strict=True):
        assert entry.token_log_probabilities[0] == pytest.approx(row[token], abs=TOL)
        for alt, value in entry.top_log_probabilities[0].items():
            worst = max(worst, abs(float(value) - float(row[int(alt)])))
    assert worst <= TOL, worst
    return worst


def test_image_prompt_matches_transformers(engine: LocalEngine, reference: Any) -> None:
    processor, model = reference
    inputs = _inputs(processor, "What is in this picture?", _image())
    tokens, rows = _greedy(model, inputs, STEPS)
    (result,) = engine.generate([_request(inputs)])
    _check(result, tokens, rows)
    # The image changes the answer: the same text without it (or another image) differs.
    plain, _ = _greedy(model, _inputs(processor, "What is in this picture?", None), STEPS)
    other, _ = _greedy(model, _inputs(processor, "What is in this picture?", _image(1)), STEPS)
    assert tokens != plain or tokens != other


def test_image_after_long_text_in_a_mixed_batch(engine: LocalEngine, reference: Any) -> None:
    """Image soft tokens beyond the sliding window, batched with a text-only request."""
    processor, model = reference
    with_image = _inputs(processor, LONG, _image(2))
    assert int(np.flatnonzero(with_image["token_type_ids"][0] == 1)[0]) > 256
    text_only = _inputs(processor, "Tell me about item 9.", None)
    expected = [_greedy(model, inputs, STEPS) for inputs in (with_image, text_only)]
    results = engine.generate([_request(with_image), _request(text_only)])
    for result, (tokens, rows) in zip(results, expected, strict=True):
        _check(result, tokens, rows)


def test_mod_forces_tokens_after_an_image(engine: LocalEngine, reference: Any) -> None:
    """A mod sees the image's soft tokens as prompt tokens and steers the text after them."""
    processor, model = reference
    inputs = _inputs(processor, "Describe it.", _image(3))
    tokenizer = processor.tokenizer
    forced = [int(t) for t in tokenizer.encode("Sure: ", add_special_tokens=False)]
    seen: list[tuple[int, ...]] = []

    @mod
    def sure(event: Any, actions: Any, tokenizer: Any) -> Any:
        if isinstance(event, Prefilled):
            seen.append(event.prompt_tokens)
            return actions.force_tokens(forced)
        return None

    (result,) = engine.generate([_request(inputs, options=RequestOptions(mods=[sure]))])
    assert result.error is None, result.error
    assert seen == [tuple(int(t) for t in inputs["input_ids"][0])]
    assert processor.image_token_id in seen[0]
    assert result.tokens[: len(forced)] == forced
    # After the forced tokens, greedy decoding continues as transformers does from there.
    extended = dict(inputs)
    extended["input_ids"] = np.concatenate([inputs["input_ids"], [forced]], axis=1)
    extended["token_type_ids"] = np.concatenate(
        [inputs["token_type_ids"], np.zeros((1, len(forced)), dtype=np.int64)], axis=1
    )
    tail, _ = _greedy(model, extended, STEPS - len(forced))
    assert result.tokens[len(forced) :] == tail


_MODS = """
from quote.sdk import Prefilled, mod

@mod
def sure(e, a, t):
    if isinstance(e, Prefilled):
        return a.force_tokens(t.encode("Sure: ", add_special_tokens=False))
    return None
"""


def test_quote_serve_answers_image_url_requests(
    checkpoint: Path, reference: Any, tmp_path: Path
) -> None:
    """OpenAI ``image_url`` (data URL) through ``quote serve``: the text transformers gives."""
    from openai import OpenAI

    processor, model = reference
    image = _image(4)
    tokens, _ = _greedy(model, _inputs(processor, "What is this?", image), STEPS)
    expected = processor.tokenizer.decode(tokens, skip_special_tokens=True)
    url = "data:image/png;base64," + base64.b64encode(_png(image)).decode("ascii")
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    with mod_server(checkpoint, tmp_path, "img-key", _MODS, ["sure"]) as srv:
        client = OpenAI(base_url=srv.base + "/v1", api_key="unused")
        served = served_name(srv)
        reply = client.chat.completions.create(
            model=served,
            messages=[{"role": "user", "content": content}],  # type: ignore[list-item]
            max_tokens=STEPS,
            temperature=0,
            extra_body={"ignore_eos": True},
        )
        assert reply.choices[0].message.content == expected
        modded = client.chat.completions.create(
            model=f"{served}/sure",
            messages=[{"role": "user", "content": content}],  # type: ignore[list-item]
            max_tokens=STEPS,
            temperature=0,
        )
        assert (modded.choices[0].message.content or "").startswith("Sure:")
        # A broken image is the client's error, and the server goes on serving.
        bad = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
        r = httpx.post(
            srv.base + "/v1/chat/completions",
            json={"model": served, "messages": [{"role": "user", "content": bad}]},
            timeout=60,
        )
        assert r.status_code == 400, r.text
        # A remote URL is not fetched unless the operator allows it (--allow-image-fetch).
        remote = [{"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/x.png"}}]
        r = httpx.post(
            srv.base + "/v1/chat/completions",
            json={"model": served, "messages": [{"role": "user", "content": remote}]},
            timeout=60,
        )
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "image_fetch_disabled"
        assert httpx.get(srv.base + "/health", timeout=10).status_code == 200
