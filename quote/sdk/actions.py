# SPDX-License-Identifier: Apache-2.0
"""Actions a mod returns from an event, and where each one is legal.

The legality table (:data:`LEGAL_EVENTS`) is the single source of truth: the
SDK's :class:`~quote.sdk.builder.ActionBuilder` and the engine both read it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from quote.sdk.bitmask import as_bitmask, unpack_bitmask
from quote.sdk.errors import InvalidActionError
from quote.sdk.events import Added, ForwardPass, Prefilled, Sampled

__all__ = [
    "Action",
    "AdjustedLogits",
    "AdjustedPrefill",
    "Backtrack",
    "EmitError",
    "ForceOutput",
    "ForceTokens",
    "LEGAL_EVENTS",
    "Noop",
    "TERMINAL_ACTIONS",
    "ToolCall",
    "ToolCalls",
    "is_legal",
    "unpack_bitmask",
]


def _tokens(values: Iterable[int], what: str) -> tuple[int, ...]:
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise InvalidActionError(f"{what}: token ids must be integers, got {v!r}")
        out.append(int(v))
    return tuple(out)


@dataclass(frozen=True)
class Noop:
    """Do nothing."""


@dataclass(frozen=True)
class AdjustedPrefill:
    """Replace the prompt before prefill (legal only at ``Prefilled``).

    Attributes:
        tokens: The new prompt token ids (non-empty).
        max_steps: Optional new cap on decode steps (never raises the request's cap).
    """

    tokens: tuple[int, ...]
    max_steps: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tokens", _tokens(self.tokens, "AdjustedPrefill"))
        if not self.tokens:
            raise InvalidActionError("AdjustedPrefill: the new prompt must not be empty")
        if self.max_steps is not None and self.max_steps < 0:
            raise InvalidActionError("AdjustedPrefill: max_steps must be >= 0")


@dataclass(frozen=True)
class ForceTokens:
    """Append ``tokens`` to the sequence.

    At ``ForwardPass``/``Sampled`` they replace this step's sample; at
    ``Prefilled`` they follow the prompt; at ``Added`` they follow the tokens
    just added. All tokens appended in one step run through the model as one
    multi-token chunk in the next forward pass.
    """

    tokens: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "tokens", _tokens(self.tokens, "ForceTokens"))
        if not self.tokens:
            raise InvalidActionError("ForceTokens: tokens must not be empty")


@dataclass(frozen=True)
class AdjustedLogits:
    """Change this request's logits row before sampling (legal only at ``ForwardPass``).

    Either give a full replacement row (``logits``) or sparse edits, which are
    applied in this order: ``logits`` replacement, ``bias`` (added), ``ban``
    (set to -inf), ``allow`` (everything else set to -inf), ``allow_bitmask``
    (every token whose bit is clear set to -inf).

    Attributes:
        logits: Optional full replacement row (1-D, vocabulary size).
        allow: Optional allow-list of token ids; all other tokens are masked.
        ban: Optional ban-list of token ids.
        bias: Optional mapping ``token_id -> added value``.
        temperature: Optional temperature for this step only; ``0`` means greedy.
        allow_bitmask: Optional packed allow-mask: 1-D 32-bit words, bit ``t % 32``
            (least significant first) of word ``t // 32`` set = token ``t`` allowed.
            Tokens past its last word are masked; bits past the vocabulary are
            ignored. It must allow at least one token. With ``allow`` too, a token
            must be in both. The layout of MAX's bitmask sampler and of
            ``quote.sdk.grammar.Matcher.mask``.
    """

    logits: npt.NDArray[np.float32] | None = field(default=None, repr=False)
    allow: tuple[int, ...] | None = None
    ban: tuple[int, ...] | None = None
    bias: Mapping[int, float] | None = None
    temperature: float | None = None
    allow_bitmask: npt.NDArray[np.int32] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.logits is not None:
            arr = np.asarray(self.logits, dtype=np.float32)
            if arr.ndim != 1:
                raise InvalidActionError(
                    f"AdjustedLogits: logits must be 1-D, got shape {arr.shape}"
                )
            object.__setattr__(self, "logits", arr)
        if self.allow is not None:
            object.__setattr__(self, "allow", _tokens(self.allow, "AdjustedLogits.allow"))
            if not self.allow:
                raise InvalidActionError("AdjustedLogits: allow-list must not be empty")
        if self.ban is not None:
            object.__setattr__(self, "ban", _tokens(self.ban, "AdjustedLogits.ban"))
        if self.bias is not None:
            object.__setattr__(self, "bias", {int(k): float(v) for k, v in dict(self.bias).items()})
        if self.temperature is not None and not (self.temperature >= 0.0):
            raise InvalidActionError("AdjustedLogits: temperature must be >= 0")
        if self.allow_bitmask is not None:
            object.__setattr__(self, "allow_bitmask", as_bitmask(self.allow_bitmask))

    def token_ids(self) -> list[int]:
        """Every token id this action names (for vocabulary checks)."""
        ids: list[int] = []
        for group in (self.allow, self.ban, tuple(self.bias or ())):
            if group:
                ids.extend(group)
        return ids

    def apply(self, row: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Return the edited copy of ``row`` (raises ``InvalidActionError`` on bad ids/shape)."""
        vocab = row.shape[0]
        for group in (self.allow, self.ban, tuple(self.bias or ())):
            if group:
                ids = np.asarray(group, dtype=np.int64)
                bad = ids[(ids < 0) | (ids >= vocab)]
                if bad.size:
                    raise InvalidActionError(
                        f"AdjustedLogits: token ids outside the vocabulary (size {vocab}): "
                        f"{bad[:8].tolist()}"
                    )
        if self.logits is not None and self.logits.shape[0] != vocab:
            raise InvalidActionError(
                f"AdjustedLogits: row has {self.logits.shape[0]} entries, vocabulary has {vocab}"
            )
        base = self.logits if self.logits is not None else row
        if self.allow_bitmask is not None:
            bits = unpack_bitmask(self.allow_bitmask, vocab)
            base = np.where(bits, base, np.float32(-np.inf)).astype(np.float32, copy=False)
        if self.allow is not None:
            # Only the allowed entries survive: copy those, not the whole row. Bias added to
            # -inf entries leaves them -inf, so the order (bias, ban, allow) is unchanged.
            keep = np.asarray(self.allow, dtype=np.int64)
            out = np.full(vocab, -np.inf, dtype=np.float32)
            out[keep] = base[keep]
        elif self.allow_bitmask is not None:
            out = base
        else:
            out = base.astype(np.float32, copy=True)
        if self.bias:
            ids = np.fromiter(self.bias.keys(), dtype=np.int64, count=len(self.bias))
            vals = np.fromiter(self.bias.values(), dtype=np.float32, count=len(self.bias))
            np.add.at(out, ids, vals)
        if self.ban:
            out[np.asarray(self.ban, dtype=np.int64)] = -np.inf
        return out


@dataclass(frozen=True)
class Backtrack:
    """Remove the last ``n`` generated tokens (never prompt tokens), then append ``tokens``."""

    n: int
    tokens: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int | np.integer) or self.n < 0:
            raise InvalidActionError(f"Backtrack: n must be a non-negative integer, got {self.n!r}")
        object.__setattr__(self, "n", int(self.n))
        if self.tokens is not None:
            object.__setattr__(self, "tokens", _tokens(self.tokens, "Backtrack"))


@dataclass(frozen=True)
class ForceOutput:
    """End the request; its completion is exactly ``tokens``."""

    tokens: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "tokens", _tokens(self.tokens, "ForceOutput"))


@dataclass(frozen=True)
class ToolCall:
    """One function call: ``name`` and JSON-serialisable ``arguments``; ``id`` is optional."""

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidActionError("ToolCall: name must be a non-empty string")


@dataclass(frozen=True)
class ToolCalls:
    """End the request with these tool calls (finish reason ``tool_calls``)."""

    calls: tuple[ToolCall, ...]

    def __post_init__(self) -> None:
        calls = []
        for c in self.calls:
            if isinstance(c, ToolCall):
                calls.append(c)
            elif isinstance(c, Mapping) and "name" in c:
                calls.append(
                    ToolCall(name=c["name"], arguments=c.get("arguments", {}), id=c.get("id"))
                )
            else:
                raise InvalidActionError(f"ToolCalls: not a tool call: {c!r}")
        if not calls:
            raise InvalidActionError("ToolCalls: at least one call is required")
        object.__setattr__(self, "calls", tuple(calls))


@dataclass(frozen=True)
class EmitError:
    """End the request with this error message."""

    message: str


Action = (
    Noop
    | AdjustedPrefill
    | ForceTokens
    | AdjustedLogits
    | Backtrack
    | ForceOutput
    | ToolCalls
    | EmitError
)

_ALL = frozenset({Prefilled, ForwardPass, Sampled, Added})
LEGAL_EVENTS: dict[type, frozenset[type]] = {
    Noop: _ALL,
    AdjustedPrefill: frozenset({Prefilled}),
    ForceTokens: _ALL,
    AdjustedLogits: frozenset({ForwardPass}),
    Backtrack: frozenset({ForwardPass, Sampled, Added}),
    ForceOutput: _ALL,
    ToolCalls: _ALL,
    EmitError: _ALL,
}
"""For each action class, the event classes at which it is legal."""

TERMINAL_ACTIONS: tuple[type, ...] = (ForceOutput, ToolCalls, EmitError)


def is_legal(action: object, event: object) -> bool:
    """Whether ``action`` may be returned from ``event``."""
    allowed = LEGAL_EVENTS.get(type(action))
    return allowed is not None and type(event) in allowed
