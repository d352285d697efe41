# SPDX-License-Identifier: Apache-2.0
"""Token-level constraints on llguidance: JSON schema, regex and Lark grammars.

One :class:`Matcher` per constrained request follows the tokens that enter it and
answers what may come next: a packed bitmask of allowed tokens (the layout MAX's
bitmask sampler takes), the tokens the grammar forces (llguidance's fast-forward
tokens), and a rollback for backtracks. :func:`compile_grammar` checks a spec
once, within a time budget, and raises :class:`GrammarError` naming what is wrong.

Pure Python over the ``llguidance`` wheel: imports without MAX.
"""

from __future__ import annotations

import concurrent.futures
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from quote.sdk.errors import QuoteSDKError
from quote.sdk.schema_rewrite import prepare_schema

__all__ = [
    "DEFAULT_BUDGET_S",
    "GrammarError",
    "GrammarSpec",
    "GrammarTimeout",
    "Matcher",
    "compile_grammar",
    "fill_masks",
    "llg_tokenizer",
]

DEFAULT_BUDGET_S = 2.0
"""Longest a grammar may take to compile (and compute its first mask) before it is refused."""

Kind = Literal["json_schema", "regex", "lark"]


class GrammarError(QuoteSDKError, ValueError):
    """An invalid or unsupported schema, regex or grammar; the message names what is wrong."""


class GrammarTimeout(GrammarError):
    """A grammar took longer than its compile budget."""


@dataclass(frozen=True)
class GrammarSpec:
    """What to constrain to: a JSON schema (dict), a regex or a Lark grammar (text)."""

    kind: Kind
    source: Any
    strict: bool = False
    """JSON schema only: objects without ``additionalProperties`` admit no other property."""

    @classmethod
    def json_schema(cls, schema: dict[str, Any] | bool, *, strict: bool = False) -> GrammarSpec:
        """A JSON value valid against ``schema`` (``{}`` or ``True``: any JSON value).

        The schema first goes through :func:`quote.sdk.schema_rewrite.prepare_schema`: sound
        rewrites of keywords a grammar cannot check, and unlisted object properties refused
        when ``strict`` (OpenAI's ``"strict": true``).
        """
        return cls("json_schema", schema, strict)

    @classmethod
    def json_object(cls) -> GrammarSpec:
        """Any JSON object (OpenAI's ``response_format: {"type": "json_object"}``)."""
        return cls("json_schema", {"type": "object"})

    def llguidance(self) -> str:
        """The llguidance grammar text for this spec."""
        import llguidance

        if self.kind == "json_schema":
            if not isinstance(self.source, dict | bool):
                raise GrammarError("a JSON schema must be an object (or a boolean)")
            try:
                schema = prepare_schema(self.source, strict=self.strict)
                return str(
                    llguidance.LLMatcher.grammar_from_json_schema(
                        json.dumps(schema), defaults={"whitespace_flexible": False}
                    )
                )
            except (TypeError, ValueError) as exc:
                raise GrammarError(f"invalid JSON schema: {exc}") from exc
        if not isinstance(self.source, str):
            raise GrammarError(f"a {self.kind} constraint must be a string")
        if self.kind == "regex":
            return str(llguidance.LLMatcher.grammar_from_regex(self.source))
        return str(llguidance.LLMatcher.grammar_from_lark(self.source))


_TOKENIZERS: dict[int, tuple[Any, Any]] = {}
_TOKENIZERS_LOCK = threading.Lock()


def llg_tokenizer(tokenizer: Any, eos_ids: Iterable[int] = (), n_vocab: int | None = None) -> Any:
    """llguidance's view of a Hugging Face tokenizer (built once per tokenizer, EOS set, width).

    ``n_vocab`` is the model's vocabulary width when it exceeds the tokenizer's (padding).
    """
    import llguidance.hf

    eos = sorted({int(t) for t in eos_ids}) or None
    width = max(int(n_vocab or 0), len(tokenizer))
    key = hash((id(tokenizer), tuple(eos or ()), width))
    with _TOKENIZERS_LOCK:
        known = _TOKENIZERS.get(key)
        if known is not None and known[0] is tokenizer:
            return known[1]
        lltok = llguidance.hf.from_tokenizer(tokenizer, n_vocab=width, eos_token=eos)
        _TOKENIZERS[key] = (tokenizer, lltok)
        return lltok


def compile_grammar(spec: GrammarSpec, lltok: Any, budget_s: float = DEFAULT_BUDGET_S) -> str:
    """Check ``spec`` against ``lltok`` within ``budget_s``; return its llguidance grammar.

    Raises :class:`GrammarError` for an invalid or unsupported schema, regex or grammar
    (the message names the keyword or the error) and :class:`GrammarTimeout` past the budget.
    """
    grammar = spec.llguidance()
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="quote-grammar")
    try:
        future = pool.submit(_first_mask, grammar, lltok)
        try:
            error = future.result(timeout=budget_s)
        except concurrent.futures.TimeoutError as exc:
            raise GrammarTimeout(
                f"the {spec.kind} constraint did not compile within {budget_s:g} s"
            ) from exc
    finally:
        pool.shutdown(wait=False)
    if error:
        raise GrammarError(f"invalid {spec.kind.replace('_', ' ')} constraint: {error}")
    return grammar


def _first_mask(grammar: str, lltok: Any) -> str:
    import llguidance

    error = str(llguidance.LLMatcher.validate_grammar(grammar, lltok) or "")
    if error:
        return error
    matcher = llguidance.LLMatcher(lltok, grammar)
    matcher.compute_bitmask()
    error = str(matcher.get_error() or "")
    if not error:
        _WARM.put(grammar, lltok, matcher)
    return error


class _WarmMatchers:
    """Matchers at the start of recently compiled grammars, their first mask computed.

    A request's matcher is a deep copy of one (about 1 us): llguidance keeps the start
    state's lexer work, so the copy's first mask costs what later masks cost (~4x less
    than a fresh matcher's on a 262,144-token vocabulary). Never mutated once stored.
    """

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, int], tuple[Any, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, grammar: str, lltok: Any, matcher: Any) -> None:
        with self._lock:
            self._items[(grammar, id(lltok))] = (lltok, matcher)  # lltok kept: its id stays
            self._items.move_to_end((grammar, id(lltok)))
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def copy(self, grammar: str, lltok: Any) -> Any:
        """A fresh copy of the warm matcher for ``grammar`` (None when not cached)."""
        with self._lock:
            hit = self._items.get((grammar, id(lltok)))
            if hit is None:
                return None
            self._items.move_to_end((grammar, id(lltok)))
            return hit[1].deep_copy()


_WARM = _WarmMatchers()


class Matcher:
    """One request's position in a grammar (llguidance ``LLMatcher``)."""

    def __init__(self, grammar: str, lltok: Any) -> None:
        import llguidance

        warm = _WARM.copy(grammar, lltok)
        self._m = warm if warm is not None else llguidance.LLMatcher(lltok, grammar)
        self.vocab_size = int(lltok.vocab_size)
        if self._m.is_error():
            raise GrammarError(str(self._m.get_error()))

    def copy(self) -> Matcher:
        """An independent matcher at the same position (llguidance's deep copy: about 1 us,
        where building one from the grammar takes about 1 ms)."""
        twin = Matcher.__new__(Matcher)
        twin._m = self._m.deep_copy()
        twin.vocab_size = self.vocab_size
        return twin

    def mask(self, width: int) -> np.ndarray:
        """Allowed next tokens as a packed int32 bitmask of ``ceil(width / 32)`` words."""
        words = np.frombuffer(self._m.compute_bitmask(), dtype=np.int32)
        out = np.zeros((width + 31) // 32, dtype=np.int32)
        n = min(len(out), len(words))
        out[:n] = words[:n]
        return out

    def accepts(self, tokens: Sequence[int]) -> int:
        """How many of ``tokens`` (a prefix) the grammar would take now, without consuming."""
        return int(self._m.validate_tokens(list(tokens)))

    def advance(self, tokens: Sequence[int]) -> int:
        """Consume the longest prefix of ``tokens`` the grammar allows; return its length.

        One llguidance call (``accepts`` then ``consume`` make two); a refused token leaves
        the matcher where it was, not in an error state.
        """
        return int(self._m.try_consume_tokens(list(tokens))) if tokens else 0

    def consume(self, tokens: Sequence[int]) -> None:
        """Advance over ``tokens``; :class:`GrammarError` if the grammar forbids one."""
        if tokens and not self._m.consume_tokens(list(tokens)):
            raise GrammarError(str(self._m.get_error() or "token not allowed by the grammar"))

    def forced(self) -> list[int]:
        """Tokens the grammar allows as the only continuation (fast-forward)."""
        if not self._m.compute_ff_bytes():  # no forced bytes, no forced tokens: 20x cheaper
            return []
        return [int(t) for t in self._m.compute_ff_tokens()]

    def rollback(self, n: int) -> None:
        """Forget the last ``n`` consumed tokens (a backtrack)."""
        if n > 0:
            self._m.rollback(n)

    @property
    def done(self) -> bool:
        """Whether the grammar admits no further token (the value is complete)."""
        return bool(self._m.is_stopped())

    @property
    def accepting(self) -> bool:
        """Whether the text so far is a complete match (the request may end here)."""
        return bool(self._m.is_accepting())


_EXECUTOR: Any = None


def fill_masks(matchers: Sequence[Matcher], width: int) -> np.ndarray:
    """Every matcher's next-token mask, computed in parallel (llguidance's thread pool, the
    GIL released): one packed int32 row of ``ceil(width / 32)`` words per matcher."""
    global _EXECUTOR
    import llguidance

    if _EXECUTOR is None:
        _EXECUTOR = llguidance.LLExecutor()
    words = max((width + 31) // 32, *((m.vocab_size + 31) // 32 for m in matchers))
    out = np.zeros((len(matchers), words), dtype=np.int32)
    _EXECUTOR.unsafe_compute_mask_ptr(
        [(m._m, i) for i, m in enumerate(matchers)], out.ctypes.data, words * 4, len(matchers)
    )
    return out[:, : (width + 31) // 32]
