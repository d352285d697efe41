# SPDX-License-Identifier: Apache-2.0
"""Generation events the engine sends to mods.

Each request's mods receive, in order: one :class:`Prefilled` before the first
forward pass, then per decode step a :class:`ForwardPass` (the request's own
logits row), a :class:`Sampled` (unless a mod already forced tokens for the
step) and one :class:`Added` per batch of tokens that entered the sequence.
``step`` counts the request's decode steps from 0 and never skips.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Added", "Event", "ForwardPass", "Prefilled", "Sampled", "EVENT_NAMES"]


@dataclass(frozen=True)
class Prefilled:
    """The request is about to be prefilled.

    Attributes:
        request_id: The engine's id of the request.
        step: Always 0.
        max_steps: The most decode steps (completion tokens) the request may take.
        prompt_tokens: The prompt's token ids, as the model will see them.
    """

    request_id: str
    step: int
    max_steps: int
    prompt_tokens: tuple[int, ...]


class ForwardPass:
    """The model produced next-token logits for this request.

    Attributes:
        request_id: The engine's id of the request.
        step: The decode step these logits are for.
        logits: This request's own logits row, 1-D float32 of vocabulary size
            (read-only: return an ``AdjustedLogits`` action to change it). The
            engine copies logits from the device only when a mod first reads
            this attribute, so mods that do not look at logits cost no copy.
    """

    __slots__ = ("_logits", "request_id", "step")

    request_id: str
    step: int
    _logits: npt.NDArray[np.float32] | Callable[[], npt.NDArray[np.float32]]

    def __init__(
        self,
        request_id: str,
        step: int,
        logits: npt.NDArray[np.float32] | Callable[[], npt.NDArray[np.float32]],
    ) -> None:
        object.__setattr__(self, "request_id", request_id)
        object.__setattr__(self, "step", step)
        object.__setattr__(self, "_logits", logits)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("ForwardPass is immutable")

    def __repr__(self) -> str:
        return f"ForwardPass(request_id={self.request_id!r}, step={self.step})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ForwardPass):
            return NotImplemented
        return (self.request_id, self.step) == (other.request_id, other.step) and bool(
            np.array_equal(self.logits, other.logits)
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def logits(self) -> npt.NDArray[np.float32]:
        """This request's logits row (fetched from the device on first access)."""
        value = self._logits
        if callable(value):
            value = value()
            object.__setattr__(self, "_logits", value)
        assert not callable(value)
        return value

    @property
    def logits_loaded(self) -> bool:
        """Whether the logits row has been fetched (for the engine)."""
        return not callable(self._logits)

    def logprobs(self) -> npt.NDArray[np.float32]:
        """Log-softmax of :attr:`logits` (float32, same shape)."""
        x = self.logits.astype(np.float64)
        m = float(np.max(x))
        lse = m + float(np.log(np.sum(np.exp(x - m))))
        return (x - lse).astype(np.float32)

    def top_k_logprobs(self, k: int) -> list[tuple[int, float]]:
        """The ``k`` most likely tokens as ``(token_id, logprob)``, best first."""
        if k <= 0:
            return []
        lp = self.logprobs()
        k = min(k, lp.shape[0])
        idx = np.argpartition(-lp, k - 1)[:k]
        idx = idx[np.argsort(-lp[idx], kind="stable")]
        return [(int(i), float(lp[i])) for i in idx]

    def argmax(self) -> int:
        """The greedy token for these logits."""
        return int(np.argmax(self.logits))


# Sampled and Added are built for every request at every step: their ``__init__`` fills the
# instance dict directly (frozen dataclasses otherwise pay one ``object.__setattr__`` call per
# field); equality, hashing, ``repr``, ``dataclasses.replace`` and immutability are unchanged.


@dataclass(frozen=True, init=False)
class Sampled:
    """The engine sampled ``token`` for this step (it is not in the sequence yet)."""

    request_id: str
    step: int
    token: int

    def __init__(self, request_id: str, step: int, token: int) -> None:
        d = self.__dict__
        d["request_id"], d["step"], d["token"] = request_id, step, token


@dataclass(frozen=True, init=False)
class Added:
    """``tokens`` entered the sequence; ``forced`` tells whether a mod forced them."""

    request_id: str
    step: int
    tokens: tuple[int, ...]
    forced: bool

    def __init__(self, request_id: str, step: int, tokens: tuple[int, ...], forced: bool) -> None:
        d = self.__dict__
        d["request_id"], d["step"], d["tokens"], d["forced"] = request_id, step, tokens, forced


Event = Prefilled | ForwardPass | Sampled | Added

EVENT_NAMES: dict[type, str] = {
    Prefilled: "Prefilled",
    ForwardPass: "ForwardPass",
    Sampled: "Sampled",
    Added: "Added",
}
