# SPDX-License-Identifier: Apache-2.0
"""Offline harness: drive mods with a scripted model, without MAX.

:func:`run_mod` follows the engine's contract for one request:

1. ``on_start``; ``Prefilled`` once (``AdjustedPrefill`` replaces the prompt, the
   last one wins and ``max_steps`` only shrinks; forced tokens follow the prompt
   and are completion tokens).
2. Per step: ``ForwardPass`` with the model's logits. ``AdjustedLogits`` edits
   chain in mod order (each applied to the previous result; the last non-None
   temperature wins). If any mod forces or backtracks, that replaces the
   sample; otherwise the row is sampled (greedy at temperature 0, else softmax)
   and ``Sampled`` is sent, where ``ForceTokens``/``Backtrack`` replace the sample.
3. Edits are queued in mod order and applied first-in first-out: each append
   enters the sequence and is sent as one ``Added`` event (``forced`` unless it
   is the sample); what mods return at ``Added`` joins the end of the queue (at
   most :data:`MAX_ADDED_ROUNDS` items per step). Nothing enters after an EOS
   or past ``max_tokens``.
4. ``Backtrack(n, tokens)`` removes ``n`` generated tokens (never the prompt:
   more fails the request), then its ``tokens`` are appended next.
5. The first terminal action (``ForceOutput``/``ToolCalls``/``EmitError``)
   ends the request and later mods are not called for that event. An EOS in
   the completion ends it (``stop``, truncated after the EOS); reaching
   ``max_tokens`` ends it (``length``; forced tokens count).
6. A mod that raises (any ``BaseException``: ``SystemExit`` and
   ``KeyboardInterrupt`` included, at instantiation, ``on_start`` or an event),
   returns a non-action or an illegal action fails the request (``error``)
   with a message naming the mod, event and action.
7. ``on_end`` always runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from quote.sdk.harness import MAX_ADDED_ROUNDS, RunResult, TraceEntry, run_mod
from quote.sdk.tokenize import tokenize

__all__ = [
    "MAX_ADDED_ROUNDS",
    "ListTokenizer",
    "RunResult",
    "ScriptedModel",
    "TraceEntry",
    "char_tokenizer",
    "run_mod",
]

logger = logging.getLogger(__name__)

LogitsFn = Callable[[list[int], int], npt.NDArray[np.float32]]


class ListTokenizer:
    """A minimal tokenizer over a fixed token list (greedy longest-match encoding).

    Enough of the Hugging Face interface for mods and strategies: ``encode``,
    ``decode``, ``len()``, ``eos_token_id``, ``all_special_ids``.
    """

    def __init__(self, tokens: Sequence[str], eos_token: str | None = "<eos>") -> None:
        self.tokens = list(tokens)
        if eos_token is not None and eos_token not in self.tokens:
            self.tokens.insert(0, eos_token)
        self._ids = {t: i for i, t in enumerate(self.tokens)}
        self.eos_token_id: int | None = None if eos_token is None else self._ids[eos_token]
        self.all_special_ids: list[int] = [] if self.eos_token_id is None else [self.eos_token_id]
        self._max = max(len(t) for t in self.tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    def token_strings(self) -> list[str | None]:
        """Text of each id (``None`` for special tokens); used by token tables."""
        return [None if i in self.all_special_ids else t for i, t in enumerate(self.tokens)]

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """Greedy longest-match encoding (raises ``ValueError`` on an unknown character)."""
        out: list[int] = []
        i = 0
        while i < len(text):
            for n in range(min(self._max, len(text) - i), 0, -1):
                tid = self._ids.get(text[i : i + n])
                if tid is not None and tid not in self.all_special_ids:
                    out.append(tid)
                    i += n
                    break
            else:
                raise ValueError(f"ListTokenizer: cannot encode {text[i]!r}")
        return out

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """Concatenate token texts."""
        special = set(self.all_special_ids) if skip_special_tokens else set()
        return "".join(self.tokens[int(i)] for i in ids if int(i) not in special)


def char_tokenizer(alphabet: str | None = None) -> ListTokenizer:
    """One token per character of ``alphabet`` (printable ASCII by default) plus ``<eos>`` (id 0)."""
    chars = alphabet or "".join(chr(c) for c in range(32, 127)) + "\n"
    return ListTokenizer(list(dict.fromkeys(chars)))


class ScriptedModel:
    """A stand-in model: ``fn(tokens, prompt_len) -> logits row`` for the next position."""

    def __init__(self, fn: LogitsFn) -> None:
        self.fn = fn

    def __call__(self, tokens: list[int], prompt_len: int) -> npt.NDArray[np.float32]:
        return np.asarray(self.fn(tokens, prompt_len), dtype=np.float32)

    @classmethod
    def preferring(cls, vocab_size: int, order: Sequence[int]) -> ScriptedModel:
        """Same logits every step: ``order[0]`` best, then ``order[1]``...; others lowest."""
        row = np.full(vocab_size, -100.0, dtype=np.float32)
        for rank, tok in enumerate(order):
            row[int(tok)] = float(len(order) - rank)
        return cls(lambda _tokens, _n: row.copy())

    @classmethod
    def stream(
        cls, vocab_size: int, tokens: Sequence[int], then: int | None = None
    ) -> ScriptedModel:
        """Prefer ``tokens[i]`` at completion position ``i``; ``then`` (or token 0) afterwards."""
        script = [int(t) for t in tokens]

        def fn(seq: list[int], prompt_len: int) -> npt.NDArray[np.float32]:
            row = np.zeros(vocab_size, dtype=np.float32)
            pos = len(seq) - prompt_len
            tok = script[pos] if pos < len(script) else (then if then is not None else 0)
            row[tok] = 10.0
            return row

        return cls(fn)

    @classmethod
    def text(cls, tokenizer: Any, text: str) -> ScriptedModel:
        """Prefer the tokens of ``text``, then EOS."""
        eos = getattr(tokenizer, "eos_token_id", None)
        return cls.stream(len(tokenizer), tokenize(text, tokenizer), then=eos)

    @classmethod
    def random(cls, vocab_size: int, seed: int = 0) -> ScriptedModel:
        """Pseudo-random logits that depend only on the sequence (reproducible)."""

        def fn(seq: list[int], _n: int) -> npt.NDArray[np.float32]:
            h = hash((seed, tuple(seq[-8:]), len(seq))) & 0xFFFFFFFF
            rng = np.random.default_rng(h)
            return (rng.standard_normal(vocab_size) * 3.0).astype(np.float32)

        return cls(fn)
