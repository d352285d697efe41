# SPDX-License-Identifier: Apache-2.0
"""Helpers of ``bench_structured.py``: schemas, validation, grammar backends, a big vocabulary.

- :func:`load_schemas`: the JSONSchemaBench sample (read in place, never copied).
- :func:`validate`: ``jsonschema`` with format checks on (``FormatChecker`` plus strict checks
  for the formats it cannot check without optional packages) and no remote ``$ref`` retrieval.
- :class:`LlguidanceBackend`: Quote's grammar core (``quote.sdk.grammar``) behind MAX's
  ``GrammarBackend`` protocol, so MAX's own pipeline can run it in place of xgrammar.
- :func:`structured_output_past_cpu_check`: lets MAX's config accept structured output on CPU.
- :func:`synthetic_tokenizer`: a deterministic 262,144-token byte-fallback BPE tokenizer.
- :func:`timed`: one timed call.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "OVERFLOW",
    "LlguidanceBackend",
    "LlguidanceMatcher",
    "OptionsSpec",
    "Schema",
    "format_checker",
    "load_schemas",
    "structured_output_past_cpu_check",
    "synthetic_tokenizer",
    "timed",
    "validate",
]


# ---------------------------------------------------------------------------------------------
# Schemas


@dataclass(frozen=True)
class Schema:
    """One JSONSchemaBench schema: its dataset folder, file name and parsed body."""

    folder: str
    name: str
    schema: Any

    @property
    def text(self) -> str:
        """The schema as compact JSON (what a request carries)."""
        return json.dumps(self.schema)


def load_schemas(root: Path, limit: int | None = None) -> list[Schema]:
    """The schemas listed in ``root/index.json``, grouped by dataset folder.

    ``limit`` keeps the first ``limit`` schemas of each folder (index order).
    """
    index = json.loads((root / "index.json").read_text(encoding="utf-8"))
    out: list[Schema] = []
    seen: Counter[str] = Counter()
    for entry in index["schemas"]:
        folder = str(entry["category"])
        if limit is not None and seen[folder] >= limit:
            continue
        seen[folder] += 1
        body = json.loads((root / entry["file"]).read_text(encoding="utf-8"))
        out.append(Schema(folder, str(entry["file"]), body))
    return out


# ---------------------------------------------------------------------------------------------
# Validation

_DATE_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$"
)
_TIME = re.compile(r"^(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$")
_DUR_TIME = r"T(?:\d+H(?:\d+M(?:\d+S)?)?|\d+M(?:\d+S)?|\d+S)"
_DURATION = re.compile(
    rf"^P(?:(?:\d+D|\d+M(?:\d+D)?|\d+Y(?:\d+M(?:\d+D)?)?)(?:{_DUR_TIME})?|{_DUR_TIME}|\d+W)$"
)
# RFC 3986: characters allowed anywhere in a URI (percent-escapes checked separately).
_URI_CHARS = r"[A-Za-z0-9\-._~!$&'()*+,;=:@/?#\[\]]|%[0-9A-Fa-f]{2}"
_URI = re.compile(rf"^[A-Za-z][A-Za-z0-9+.\-]*:(?:{_URI_CHARS})*$")
_URI_REFERENCE = re.compile(rf"^(?:{_URI_CHARS})*$")


def _time_ok(h: str, m: str, s: str, oh: str | None, om: str | None) -> bool:
    return (
        int(h) < 24
        and int(m) < 60
        and int(s) <= 60
        and (oh is None or (int(oh) < 24 and int(om or 0) < 60))
    )


def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    m = _DATE_TIME.match(value)
    if not m:
        return False
    y, mo, d, h, mi, s, oh, om = m.groups()
    try:
        datetime.date(int(y), int(mo), int(d))
    except ValueError:
        return False
    return _time_ok(h, mi, s, oh, om)


def _time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    m = _TIME.match(value)
    return m is not None and _time_ok(*m.groups())


def _duration(value: object) -> bool:
    return not isinstance(value, str) or bool(_DURATION.match(value))


def _uri(value: object) -> bool:
    return not isinstance(value, str) or bool(_URI.match(value))


def _uri_reference(value: object) -> bool:
    return not isinstance(value, str) or bool(_URI_REFERENCE.match(value))


_EXTRA_FORMATS: dict[str, Callable[[object], bool]] = {
    "date-time": _date_time,
    "time": _time,
    "duration": _duration,
    "uri": _uri,
    "uri-reference": _uri_reference,
}


def format_checker() -> Any:
    """``jsonschema.FormatChecker()`` plus strict checks for formats it skips without extras.

    Without its optional packages (``rfc3339-validator``, ``rfc3987``, ``isoduration``),
    ``jsonschema`` does not check ``date-time``, ``duration``, ``uri`` or ``uri-reference``;
    they are checked here against RFC 3339 / ISO 8601 (as JSON Schema's appendix A writes
    them) and RFC 3986's character set. Formats nobody knows (``topic``, ``slug`` ...) pass.
    """
    import jsonschema

    checker = jsonschema.FormatChecker()
    for name, fn in _EXTRA_FORMATS.items():
        checker.checks(name)(fn)
    return checker


def _no_remote(uri: str) -> Any:
    import referencing.exceptions

    raise referencing.exceptions.NoSuchResource(ref=uri)  # type: ignore[call-arg]


_CHECKER: Any = None
OVERFLOW = "number beyond float64"
"""Prefix of :func:`validate`'s verdict on JSON that holds a number no float64 can hold."""


class _Overflow(ValueError):
    pass


def _parse_float(text: str) -> float:
    value = float(text)
    if not np.isfinite(value):
        raise _Overflow(text)
    return value


def validate(text: str, schema: Any) -> str | None:
    """``None`` if ``text`` is one JSON value valid for ``schema`` (formats checked), else why.

    The validator follows the schema's ``$schema`` draft (2020-12 when absent); remote
    ``$ref`` s are never fetched (an unresolvable one is reported as invalid). A number
    float64 cannot hold (such as ``2e999``: valid JSON syntax, which ``json.loads`` reads as
    ``inf``) makes the verdict start with :data:`OVERFLOW`.
    """
    import jsonschema
    import referencing
    from jsonschema_specifications import REGISTRY as SPECS

    global _CHECKER
    if _CHECKER is None:
        _CHECKER = format_checker()
    try:
        value = json.loads(text, parse_float=_parse_float)
    except _Overflow as exc:
        return f"{OVERFLOW}: {str(exc)[:60]}"
    except ValueError as exc:
        return f"not JSON: {exc}"
    registry: Any = referencing.Registry(retrieve=_no_remote).combine(SPECS)  # type: ignore[call-arg]
    try:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        error = jsonschema.exceptions.best_match(
            cls(schema, format_checker=_CHECKER, registry=registry).iter_errors(value)
        )
    except Exception as exc:  # noqa: BLE001 - an unresolvable $ref, a bad regex ...
        return f"validator failed: {type(exc).__name__}: {str(exc)[:200]}"
    if error is None:
        return None
    return f"{error.message[:200]} (at {'/'.join(map(str, error.absolute_path)) or 'root'})"


# ---------------------------------------------------------------------------------------------
# Quote's grammar core behind MAX's GrammarBackend protocol


class OptionsSpec:
    """A JSON-schema spec compiled with other llguidance options than Quote's defaults.

    Quote's ``GrammarSpec.json_schema`` uses ``whitespace_flexible: False`` only; this spec
    adds options (such as ``coerce_one_of``, ``lenient``) for a what-if row. It goes through
    the same :func:`quote.sdk.grammar.compile_grammar` and :class:`~quote.sdk.grammar.Matcher`.
    """

    kind = "json_schema"

    def __init__(self, schema: Any, options: dict[str, Any]) -> None:
        self.source = schema
        self.options = {"whitespace_flexible": False, **options}

    def llguidance(self) -> str:
        """The llguidance grammar text (raises ``GrammarError`` like ``GrammarSpec``)."""
        import llguidance

        from quote.sdk.grammar import GrammarError

        try:
            return str(
                llguidance.LLMatcher.grammar_from_json_schema(
                    json.dumps(self.source),
                    defaults=self.options,  # type: ignore[arg-type]
                )
            )
        except (TypeError, ValueError) as exc:
            raise GrammarError(f"invalid JSON schema: {exc}") from exc


class LlguidanceMatcher:
    """A :class:`quote.sdk.grammar.Matcher` as MAX's ``GrammarMatcher`` protocol."""

    def __init__(self, matcher: Any) -> None:
        self.matcher = matcher

    def try_consume_tokens(self, tokens: list[int]) -> int:
        """Consume the longest prefix of ``tokens`` the grammar allows; how many."""
        n = int(self.matcher.accepts(tokens))
        self.matcher.consume(tokens[:n])
        return n

    def is_accepting(self) -> bool:
        """Whether the text so far is a complete value."""
        return bool(self.matcher.accepting)

    def is_stopped(self) -> bool:
        """Whether the grammar admits no further token."""
        return bool(self.matcher.done)

    def deep_copy(self) -> LlguidanceMatcher:
        """Not needed without speculative decoding."""
        raise NotImplementedError("speculative decoding is not benchmarked")


class LlguidanceBackend:
    """Quote's grammar core as a MAX ``GrammarBackend``: compile, matchers, bitmask rows.

    ``compile_json_schema`` is :func:`quote.sdk.grammar.compile_grammar` (within
    ``budget_s``); grammars are cached by schema text, so the pipeline's compile of a
    schema already checked costs nothing. ``fill_next_token_bitmask`` writes
    :meth:`Matcher.mask`'s packed row, the layout MAX's bitmask sampler takes.
    """

    name = "llguidance"

    def __init__(
        self,
        lltok: Any,
        vocab_size: int,
        budget_s: float,
        options: dict[str, Any] | None = None,
        strict: bool = True,
    ) -> None:
        self.lltok = lltok
        self.vocab_size = vocab_size
        self.budget_s = budget_s
        self.options = options
        self.strict = strict
        self.cache: dict[str, str] = {}

    def spec(self, schema: Any) -> Any:
        """Quote's ``GrammarSpec.json_schema`` (``strict`` as set), or the what-if options spec."""
        from quote.sdk.grammar import GrammarSpec

        if self.options is None:
            return GrammarSpec.json_schema(schema, strict=self.strict)
        return OptionsSpec(schema, self.options)

    def compile_json_schema(self, json_schema: Any) -> str:
        """The llguidance grammar of ``json_schema`` (str or dict); ``GrammarError`` if refused."""
        from quote.sdk.grammar import compile_grammar

        text = json_schema if isinstance(json_schema, str) else json.dumps(json_schema)
        hit = self.cache.get(text)
        if hit is None:
            hit = compile_grammar(self.spec(json.loads(text)), self.lltok, self.budget_s)
            self.cache[text] = hit
        return hit

    def create_matcher(self, grammar: Any) -> LlguidanceMatcher:
        """A fresh matcher at the start of ``grammar``."""
        from quote.sdk.grammar import Matcher

        return LlguidanceMatcher(Matcher(str(grammar), self.lltok))

    def allocate_token_bitmask(self, batch_size: int, vocab_size: int) -> np.ndarray:
        """``[batch_size, ceil(vocab_size / 32)]`` int32, all ones (unconstrained)."""
        return np.full((batch_size, (vocab_size + 31) // 32), -1, dtype=np.int32)

    def fill_next_token_bitmask(self, matcher: Any, bitmask: np.ndarray, index: int) -> None:
        """Row ``index`` of ``bitmask`` = the tokens the grammar allows next."""
        assert isinstance(matcher, LlguidanceMatcher)
        bitmask[index, :] = matcher.matcher.mask(bitmask.shape[1] * 32)


@contextlib.contextmanager
def structured_output_past_cpu_check() -> Iterator[None]:
    """Let ``PipelineConfig.from_args`` accept ``enable_structured_output`` on CPU.

    MAX 26.7 refuses the flag on CPU in one config-time check (``from_args``:
    "enable_structured_output is not currently supported on CPU"); nothing past it needs a
    GPU: the bitmask sampler is MAX's sampler graph with a bitmask input, which compiles on
    CPU, and the grammar work is on the host. Inside this context only, a config asking for
    the flag is resolved with it off (so the check passes) and returned with it on, as MAX's
    own construction would leave it. Benchmark-only.
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


# ---------------------------------------------------------------------------------------------
# A 262,144-token tokenizer


_PIECE = re.compile(r"▁?[A-Za-z]+|▁?\d{1,3}|▁?[^\sA-Za-z\d▁]{1,4}|▁{1,8}|\n+|\s")


def synthetic_tokenizer(corpus: Sequence[str], size: int = 262_144, seed: int = 0) -> Any:
    """A Gemma-shaped tokenizer of exactly ``size`` ids, deterministic, no downloads.

    SentencePiece style like Gemma's: spaces become ``▁``, a BPE model with byte fallback
    (``<0x00>`` ... ``<0xFF>``: any text can be tokenized), decoder ``▁`` -> space + byte
    fallback. Ids 0-3 are ``<pad>``, ``<eos>``, ``<bos>``, ``<unk>``. The other pieces are
    the words, numbers and punctuation runs of ``corpus`` by frequency, with every prefix of
    a piece also a piece (each piece ``p`` has the merge ``(p[:-1], p[-1])``, ranked in
    order of creation), topped up with random extensions of existing pieces until ``size``.
    Returns a ``transformers.PreTrainedTokenizerFast``.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<eos>", "<bos>", "<unk>"]
    vocab: dict[str, int] = {s: i for i, s in enumerate(specials)}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    merges: list[tuple[str, str]] = []

    def add(piece: str) -> None:
        # prefixes first, so every merge's parts already exist
        for i in range(1, len(piece) + 1):
            p = piece[:i]
            if p in vocab or len(vocab) >= size:
                continue
            vocab[p] = len(vocab)
            if i > 1:
                merges.append((p[:-1], p[-1]))

    chars = Counter(c for text in corpus for c in text.replace(" ", "▁"))
    for c in sorted(chars, key=lambda c: (-chars[c], c)):
        if c.isprintable() or c == "▁":
            add(c)
    for c in [chr(i) for i in range(33, 127)] + ["▁"]:
        add(c)
    counts: Counter[str] = Counter()
    for text in corpus:
        counts.update(_PIECE.findall(text.replace(" ", "▁")))
    for piece, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(vocab) >= size:
            break
        add(piece)
    rng = np.random.default_rng(seed)
    letters = list("▁abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789_-.")
    singles = [p for p in vocab if len(p) == 1]
    pool = [p for p in vocab if not p.startswith("<") or len(p) == 1]
    while len(vocab) < size:
        base = pool[int(rng.integers(len(pool)))] if rng.random() < 0.8 else singles[0]
        ext = base + letters[int(rng.integers(len(letters)))]
        if ext not in vocab and len(ext) <= 16:
            vocab[ext] = len(vocab)
            merges.append((base, ext[-1]))
            pool.append(ext)
    model = models.BPE(vocab=vocab, merges=merges, byte_fallback=True, unk_token="<unk>")
    tok = Tokenizer(model)
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    )
    tok.add_special_tokens(specials)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="<eos>",
        bos_token="<bos>",
        unk_token="<unk>",
    )


def timed(fn: Callable[[], Any]) -> tuple[float, Any, BaseException | None]:
    """``(seconds, result, error)`` of calling ``fn`` once."""
    t0 = time.perf_counter()
    try:
        out = fn()
    except Exception as exc:  # noqa: BLE001 - the caller records it
        return time.perf_counter() - t0, None, exc
    return time.perf_counter() - t0, out, None
