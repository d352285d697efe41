# SPDX-License-Identifier: Apache-2.0
"""The request loop of the offline harness (see :mod:`quote.sdk.testing` for the contract)."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from quote.sdk.actions import (
    LEGAL_EVENTS,
    Action,
    AdjustedLogits,
    AdjustedPrefill,
    Backtrack,
    EmitError,
    ForceOutput,
    ForceTokens,
    Noop,
    ToolCall,
    ToolCalls,
    is_legal,
)
from quote.sdk.builder import ActionBuilder
from quote.sdk.context import Conversation, RequestInfo, bind_request
from quote.sdk.errors import ModError
from quote.sdk.events import EVENT_NAMES, Added, Event, ForwardPass, Prefilled, Sampled
from quote.sdk.mod import Mod, as_definition
from quote.sdk.tokenize import tokenize

__all__ = ["MAX_ADDED_ROUNDS", "RunResult", "TraceEntry", "run_mod"]

logger = logging.getLogger(__name__)

MAX_ADDED_ROUNDS = 64
"""Most ``Added`` rounds (forced tokens following forced tokens) in one step."""

_DEFAULT: Any = object()
Model = Callable[[list[int], int], npt.NDArray[np.float32]]


@dataclass(frozen=True)
class TraceEntry:
    """One mod call: the event, the mod's name and its (normalised) action."""

    event: Event
    mod: str
    action: Action


@dataclass
class RunResult:
    """What a request produced (``finish_reason``: stop, length, tool_calls or error)."""

    prompt_tokens: list[int]
    completion_tokens: list[int]
    text: str
    finish_reason: str
    tool_calls: tuple[ToolCall, ...] = ()
    error: str | None = None
    steps: int = 0
    trace: list[TraceEntry] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)

    def raise_for_error(self) -> RunResult:
        """Raise :class:`ModError` if the request failed; return ``self`` otherwise."""
        if self.finish_reason == "error":
            raise ModError(self.error or "request failed")
        return self

    def events(self, kind: type | None = None) -> list[Event]:
        """Distinct events seen by the first mod (optionally of one class), in order."""
        first = self.trace[0].mod if self.trace else None
        return [
            e.event
            for e in self.trace
            if e.mod == first and (kind is None or isinstance(e.event, kind))
        ]


class _Finished(Exception):
    def __init__(self, reason: str, error: str | None = None) -> None:
        super().__init__(error or reason)
        self.reason = reason
        self.error = error


def _sample(row: npt.NDArray[np.float32], temperature: float, rng: np.random.Generator) -> int:
    if not np.isfinite(row).any():
        raise _Finished("error", "every token is masked (all logits are -inf)")
    if temperature == 0.0:
        return int(np.argmax(row))
    x = row.astype(np.float64) / temperature
    x = np.exp(x - np.max(x[np.isfinite(x)]))
    x[~np.isfinite(x)] = 0.0
    return int(rng.choice(row.shape[0], p=x / x.sum()))


class _Request:
    """State of one request while :func:`run_mod` drives it."""

    def __init__(
        self,
        mods: list[tuple[str, Mod]],
        tokenizer: Any,
        info: RequestInfo,
        eos: int | None,
        vocab: int,
        record: bool,
    ) -> None:
        self.mods = mods
        self.tokenizer = tokenizer
        self.info = info
        self.eos = eos
        self.vocab = vocab
        self.record = record
        self.prompt: list[int] = []
        self.completion: list[int] = []
        self.max_steps = 0
        self.trace: list[TraceEntry] = []
        self.tool_calls: tuple[ToolCall, ...] = ()
        self.output: list[int] | None = None

    def dispatch(self, event: Event) -> list[Action]:
        """Call every mod in order; validate; stop at the first terminal action."""
        out: list[Action] = []
        ename = EVENT_NAMES[type(event)]
        for name, instance in self.mods:
            try:
                with bind_request(self.info):
                    action = instance.handle(event, ActionBuilder(event), self.tokenizer)
            except BaseException as exc:  # noqa: BLE001 - as in the engine: SystemExit & co. fail only the request
                raise _Finished("error", f"mod {name!r} raised at {ename}: {exc!r}") from exc
            action = Noop() if action is None else action
            if type(action) not in LEGAL_EVENTS:
                raise _Finished(
                    "error", f"mod {name!r} returned {action!r:.80} at {ename}: not an action"
                )
            if not is_legal(action, event):
                raise _Finished(
                    "error",
                    f"mod {name!r} returned {type(action).__name__} at {ename}: not legal there",
                )
            self._check_ids(name, ename, action)
            if self.record:
                self.trace.append(TraceEntry(event, name, action))
            out.append(action)
            if isinstance(action, ForceOutput):
                self.output = list(action.tokens)
                raise _Finished("stop")
            if isinstance(action, ToolCalls):
                self.tool_calls = action.calls
                raise _Finished("tool_calls")
            if isinstance(action, EmitError):
                raise _Finished("error", f"mod {name!r} emitted an error: {action.message}")
        return out

    def _check_ids(self, name: str, ename: str, action: Action) -> None:
        ids: list[int] = []
        if isinstance(action, ForceTokens | ForceOutput | AdjustedPrefill):
            ids = list(action.tokens)
        elif isinstance(action, Backtrack):
            ids = list(action.tokens or ())
        bad = [t for t in ids if not 0 <= t < self.vocab]
        if bad:
            raise _Finished(
                "error",
                f"mod {name!r} returned {type(action).__name__} at {ename}: ids {bad[:4]} "
                f"outside the vocabulary ({self.vocab})",
            )

    @staticmethod
    def enqueue(queue: deque[tuple[str, Any, bool]], action: Action) -> None:
        """Queue a ``ForceTokens`` (append) or ``Backtrack``; other actions are no-ops here."""
        if isinstance(action, ForceTokens):
            queue.append(("add", action.tokens, True))
        elif isinstance(action, Backtrack):
            queue.append(("backtrack", action, True))

    def drain(self, step: int, queue: deque[tuple[str, Any, bool]]) -> None:
        """Apply queued appends and backtracks in order; each append sends one ``Added``."""
        rounds = 0
        while queue:
            rounds += 1
            if rounds > MAX_ADDED_ROUNDS:
                raise _Finished("error", f"mods kept editing the sequence for {rounds} rounds")
            kind, payload, forced = queue.popleft()
            if kind == "backtrack":
                n = payload.n
                if n > len(self.completion):
                    raise _Finished(
                        "error",
                        f"Backtrack({n}) reaches into the prompt: only "
                        f"{len(self.completion)} token(s) were generated",
                    )
                if n:
                    del self.completion[-n:]
                if payload.tokens:
                    queue.appendleft(("add", payload.tokens, True))
                continue
            stopped = self.eos is not None and self.eos in self.completion
            tokens = list(payload)[: max(self.max_steps - len(self.completion), 0)]
            if self.eos is not None and self.eos in tokens:
                tokens = tokens[: tokens.index(self.eos) + 1]
            if stopped or not tokens:
                continue  # like the engine: nothing enters after EOS or past the length cap
            self.completion.extend(tokens)
            for a in self.dispatch(Added(self.info.request_id, step, tuple(tokens), forced)):
                self.enqueue(queue, a)

    def check_end(self) -> None:
        if self.eos is not None and self.eos in self.completion:
            del self.completion[self.completion.index(self.eos) + 1 :]
            raise _Finished("stop")
        if len(self.completion) >= self.max_steps:
            del self.completion[self.max_steps :]
            raise _Finished("length")


def run_mod(
    mods: Any,
    tokenizer: Any,
    model: Model | None = None,
    *,
    prompt: str | Sequence[int] = "",
    max_tokens: int = 32,
    temperature: float = 0.0,
    seed: int = 0,
    eos_token_id: int | None = _DEFAULT,
    conversation: Conversation | None = None,
    mod_args: dict[str, Any] | None = None,
    request_id: str = "req-0",
    record: bool = True,
) -> RunResult:
    """Run one request through ``mods`` (a mod or a list) with a scripted ``model``.

    Args:
        mods: ``@mod`` definitions, ``Mod`` subclasses or handler functions.
        tokenizer: The tokenizer the mods receive.
        model: ``model(tokens, prompt_len) -> logits``; default: uniform logits.
        prompt: Prompt text (encoded without special tokens) or token ids.
        max_tokens: Most completion tokens (forced ones count).
        temperature: Default sampling temperature (``0`` = greedy).
        eos_token_id: Stop token; defaults to the tokenizer's.
    """
    defs = [as_definition(m) for m in (mods if isinstance(mods, list | tuple) else [mods])]
    vocab = len(tokenizer)
    eos = getattr(tokenizer, "eos_token_id", None) if eos_token_id is _DEFAULT else eos_token_id
    info = RequestInfo(request_id, conversation or Conversation(), dict(mod_args or {}))
    instances: list[tuple[str, Mod]] = []
    failed: str | None = None
    for d in defs:
        try:
            instances.append((d.name, d.instantiate()))
        except BaseException as exc:  # noqa: BLE001 - as in the engine: fails only the request
            failed = f"mod {d.name!r} failed to instantiate: {exc!r}"
            break
    req = _Request(instances, tokenizer, info, eos, vocab, record)
    req.prompt = list(prompt) if not isinstance(prompt, str) else tokenize(prompt, tokenizer)
    req.max_steps = max_tokens
    model = model or (lambda _seq, _n: np.zeros(vocab, dtype=np.float32))
    rng = np.random.default_rng(seed)
    reason, error, step = "stop", None, 0
    started: list[tuple[str, Mod]] = []
    try:
        if failed is not None:
            raise _Finished("error", failed)
        for name, inst in req.mods:
            with bind_request(info):
                try:
                    inst.on_start(info)
                except BaseException as exc:  # noqa: BLE001 - as in the engine
                    raise _Finished("error", f"mod {name!r} failed in on_start: {exc!r}") from exc
            started.append((name, inst))
        forced: list[int] = []
        for a in req.dispatch(Prefilled(request_id, 0, max_tokens, tuple(req.prompt))):
            if isinstance(a, AdjustedPrefill):
                req.prompt = list(a.tokens)
                if a.max_steps is not None:
                    req.max_steps = min(req.max_steps, a.max_steps)
            elif isinstance(a, ForceTokens):
                forced.extend(a.tokens)
        req.drain(0, deque([("add", tuple(forced), True)]) if forced else deque())
        req.check_end()
        while True:
            _decode_step(req, model, step, temperature, rng)
            step += 1
            req.check_end()
    except _Finished as fin:
        reason, error = fin.reason, fin.error
    finally:
        for name, inst in started:
            with bind_request(info):
                try:
                    inst.on_end(info)
                except BaseException:  # noqa: BLE001 - as in the engine: logged, never raised
                    logger.exception("mod %r failed in on_end", name)
    completion = req.output if req.output is not None else req.completion
    try:
        text = tokenizer.decode(completion, skip_special_tokens=True)
    except TypeError:
        text = tokenizer.decode(completion)
    return RunResult(
        req.prompt,
        list(completion),
        text,
        reason,
        req.tool_calls,
        error,
        step,
        req.trace,
        info.logs,
    )


def _decode_step(
    req: _Request, model: Model, step: int, temperature: float, rng: np.random.Generator
) -> None:
    rid = req.info.request_id
    row = np.asarray(model(req.prompt + req.completion, len(req.prompt)), dtype=np.float32)
    temp = temperature
    queue: deque[tuple[str, Any, bool]] = deque()
    for a in req.dispatch(ForwardPass(rid, step, row.copy())):
        if isinstance(a, AdjustedLogits):
            try:
                row = a.apply(row)
            except ValueError as exc:
                raise _Finished("error", f"AdjustedLogits at ForwardPass: {exc}") from exc
            if a.temperature is not None:
                temp = a.temperature
        req.enqueue(queue, a)
    if not queue:  # nothing forced or backtracked: sample, then Sampled may replace it
        token = _sample(row, temp, rng)
        for a in req.dispatch(Sampled(rid, step, token)):
            req.enqueue(queue, a)
        if not queue:
            queue.append(("add", (token,), False))
    req.drain(step, queue)
