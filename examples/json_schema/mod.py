# SPDX-License-Identifier: Apache-2.0
"""``json_schema``: a mod whose completion is always valid JSON for the request's schema.

The schema comes from the request's ``response_format`` (``{"type": "json_schema",
"json_schema": {"schema": ...}}``) or, in-process, from ``RequestOptions.args["schema"]``.
It is compiled (:mod:`examples.json_schema.compiler`) into fixed text, scalar leaves and
choices, then enforced during generation:

- fixed structure (``{``, ``"key": ``, ``, ``, ``]``...) is forced with ``ForceTokens``;
- a scalar leaf (string, number, enum...) is generated under an ``AdjustedLogits``
  allow-list: exactly the tokens whose whole text keeps the leaf's character automaton
  alive (vectorised over the tokenizer's token strings, one index per automaton state);
- a choice (optional property, one more array item or not, an ``anyOf`` branch, ending a
  number) is made from the model's own probabilities: each option's mass is the
  log-sum-exp of the logits of the tokens that can start it, and one option is drawn;
- every token and choice keeps the document completable within the request's remaining
  ``max_tokens`` (counted in characters, an upper bound on tokens), so generation always
  ends with a complete document; the mod then ends the request with ``ForceOutput`` of
  the completion, so the completion is exactly the JSON text (no EOS).

An unsupported schema feature fails the request at ``Prefilled`` with ``EmitError``
naming the feature; the mod never lets invalid JSON through.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from examples.json_schema.compiler import (
    ITEM_SEP,
    KEY_SEP,
    Alt,
    Arr,
    CompiledSchema,
    Leaf,
    Lit,
    Node,
    Obj,
    Ref,
    UnsupportedSchemaError,
    compile_schema,
)
from quote.sdk import (
    Action,
    ActionBuilder,
    Added,
    Event,
    ForwardPass,
    Mod,
    ModDefinition,
    Prefilled,
    get_conversation,
    get_request,
    mod_log,
    tokenize,
)
from quote.sdk.strategies.automaton import CharDFA, TokenIndex, escape, index_for
from quote.sdk.strategies.base import mask_action
from quote.sdk.tokens import TokenTable, token_table

__all__ = ["MAX_REF_DEPTH", "JsonSchemaMod", "SchemaWalker", "json_schema", "schema_of_request"]

logger = logging.getLogger(__name__)

MAX_REF_DEPTH = 4
"""Past this many nested ``$ref`` expansions, choices take their shortest option."""

_EMPTY = np.zeros(0, dtype=np.int64)
_compiled: dict[str, CompiledSchema | UnsupportedSchemaError] = {}
_compiled_lock = threading.Lock()


# ----------------------------------------------------------------------------- leaf automata
@dataclass
class _LeafIndex:
    """A leaf's automaton over the vocabulary, and each state's distance to acceptance."""

    dfa: CharDFA
    index: TokenIndex
    dist: npt.NDArray[np.float64]


def _leaf_index(table: TokenTable, leaf: Leaf) -> _LeafIndex:
    key = ("json_schema_leaf", leaf.key)
    hit: _LeafIndex | None = table.cache.get(key)
    if hit is not None:
        return hit
    dfa: CharDFA = CharDFA.from_fsm(leaf.fsm(), leaf.key)
    n_sym = dfa.pad_symbol
    dist = np.full(dfa.trans.shape[0], math.inf)
    dist[dfa.finals] = 0.0
    for _ in range(dfa.trans.shape[0]):
        cand = 1.0 + dist[dfa.trans[:, :n_sym]].min(axis=1, initial=math.inf)
        new = np.minimum(dist, cand)
        new[dfa.dead] = math.inf
        if np.array_equal(new, dist):
            break
        dist = new
    hit = _LeafIndex(dfa, TokenIndex(dfa, table), dist)
    table.cache[key] = hit
    return hit


def _prefix_ids(table: TokenTable, text: str) -> npt.NDArray[np.int64]:
    """Tokens whose whole text is a non-empty prefix of ``text``."""
    if not text:
        return _EMPTY
    index = index_for(table, escape(text))
    return index.entry(index.dfa.initial).ids


# ----------------------------------------------------------------------------- the walker
@dataclass
class _LitItem:
    text: str


@dataclass
class _NodeItem:
    node: Node
    depth: int


@dataclass
class _LeafItem:
    run: _LeafIndex
    state: int


@dataclass
class _ObjItem:
    node: Obj
    i: int
    first: bool
    depth: int


@dataclass
class _ArrItem:
    node: Arr
    k: int
    depth: int


_Item = _LitItem | _NodeItem | _LeafItem | _ObjItem | _ArrItem


@dataclass
class _Option:
    """One way to continue at a choice: first tokens, cost in characters, what to push."""

    ids: npt.NDArray[np.int64]
    cost: float
    push: list[_Item]


class SchemaWalker:
    """Generation state of one document: a stack of pending items (top = last).

    Args:
        compiled: The compiled schema.
        tokenizer: The model's tokenizer.
        max_steps: The request's completion-token budget.
    """

    def __init__(self, compiled: CompiledSchema, tokenizer: Any, max_steps: int) -> None:
        self.compiled = compiled
        self.tokenizer = tokenizer
        self.table = token_table(tokenizer)
        self.max_steps = int(max_steps)
        self.generated = 0
        self.stack: list[_Item] = [_NodeItem(compiled.root, 0)]
        self.expected: list[int] = []
        self._first: dict[int, npt.NDArray[np.int64]] = {}

    # -- lengths ---------------------------------------------------------------------------
    def _obj_rest(self, item: _ObjItem) -> float:
        total = 1.0
        first = item.first
        for key, value, req in item.node.props[item.i :]:
            if req:
                total += (0 if first else len(ITEM_SEP)) + len(json.dumps(key)) + len(KEY_SEP)
                total += self.compiled.min_len(value)
                first = False
        return total

    def _arr_rest(self, item: _ArrItem) -> float:
        total = 1.0
        for m in range(item.k, item.node.lo):
            node = item.node.item_at(m)
            if node is None:
                return math.inf
            total += (len(ITEM_SEP) if m else 0) + self.compiled.min_len(node)
        return total

    def _item_min(self, item: _Item) -> float:
        if isinstance(item, _LitItem):
            return len(item.text)
        if isinstance(item, _NodeItem):
            return self.compiled.min_len(item.node)
        if isinstance(item, _LeafItem):
            return float(item.run.dist[item.state])
        if isinstance(item, _ObjItem):
            return self._obj_rest(item)
        return self._arr_rest(item)

    def min_remaining(self, below: int | None = None) -> float:
        """Fewest characters that complete the document (from items ``[:below]``)."""
        items = self.stack if below is None else self.stack[:below]
        return sum(self._item_min(i) for i in items)

    @property
    def remaining(self) -> int:
        """Completion tokens still allowed."""
        return self.max_steps - self.generated

    # -- first tokens ----------------------------------------------------------------------
    def _node_first(self, node: Node, seen: frozenset[int] = frozenset()) -> npt.NDArray[np.int64]:
        hit = self._first.get(id(node))
        if hit is not None:
            return hit
        if id(node) in seen:
            return _EMPTY
        if isinstance(node, Lit):
            ids = _prefix_ids(self.table, node.text)
        elif isinstance(node, Leaf):
            run = _leaf_index(self.table, node)
            ids = run.index.entry(run.dfa.initial).ids
        elif isinstance(node, Obj):
            ids = _prefix_ids(self.table, "{")
        elif isinstance(node, Arr):
            ids = _prefix_ids(self.table, "[")
        elif isinstance(node, Ref):
            ids = (
                _EMPTY if node.target is None else self._node_first(node.target, seen | {id(node)})
            )
        else:
            assert isinstance(node, Alt)
            parts = [self._node_first(o, seen | {id(node)}) for o in node.options]
            ids = np.unique(np.concatenate(parts)) if parts else _EMPTY
        self._first[id(node)] = ids
        return ids

    def _item_first(self, item: _Item | None) -> npt.NDArray[np.int64]:
        if item is None:
            eos = self.table.eos_token_id
            return _EMPTY if eos is None else np.asarray([eos], dtype=np.int64)
        if isinstance(item, _LitItem):
            return _prefix_ids(self.table, item.text)
        if isinstance(item, _NodeItem):
            return self._node_first(item.node)
        if isinstance(item, _LeafItem):
            return item.run.index.entry(item.state).ids
        opts = self._options(item)
        parts = [o.ids for o in opts]
        return np.unique(np.concatenate(parts)) if parts else _EMPTY

    # -- choices ---------------------------------------------------------------------------
    def _options(self, item: _ObjItem | _ArrItem | _NodeItem) -> list[_Option]:
        out: list[_Option] = []
        if isinstance(item, _NodeItem):
            assert isinstance(item.node, Alt)
            for o in item.node.options:
                out.append(
                    _Option(
                        self._node_first(o), self.compiled.min_len(o), [_NodeItem(o, item.depth)]
                    )
                )
            return out
        if isinstance(item, _ObjItem):
            props = item.node.props
            for j in range(item.i, len(props)):
                key, value, req = props[j]
                text = ("" if item.first else ITEM_SEP) + json.dumps(key) + KEY_SEP
                rest = _ObjItem(item.node, j + 1, False, item.depth)
                cost = len(text) + self.compiled.min_len(value) + self._obj_rest(rest)
                push: list[_Item] = [rest, _NodeItem(value, item.depth), _LitItem(text)]
                out.append(_Option(_prefix_ids(self.table, text), cost, push))
                if req:
                    return out
            out.append(_Option(_prefix_ids(self.table, "}"), 1.0, [_LitItem("}")]))
            return out
        node, k = item.node, item.k
        nxt = node.item_at(k)
        if k < node.hi and nxt is not None:
            rest = _ArrItem(node, k + 1, item.depth)
            text = ITEM_SEP if k else ""
            cost = len(text) + self.compiled.min_len(nxt) + self._arr_rest(rest)
            push2: list[_Item] = [rest, _NodeItem(nxt, item.depth)]
            if text:
                push2.append(_LitItem(text))
            ids = _prefix_ids(self.table, text) if text else self._node_first(nxt)
            out.append(_Option(ids, cost, push2))
        if k >= node.lo:
            out.append(_Option(_prefix_ids(self.table, "]"), 1.0, [_LitItem("]")]))
        return out

    @staticmethod
    def _mass(logits: npt.NDArray[np.float32], ids: npt.NDArray[np.int64]) -> float:
        ids = ids[ids < logits.shape[0]]
        if ids.shape[0] == 0:
            return -math.inf
        x = logits[ids].astype(np.float64)
        m = float(np.max(x))
        if not math.isfinite(m):
            return -math.inf
        return m + float(np.log(np.sum(np.exp(x - m))))

    @staticmethod
    def _rng(event: ForwardPass, salt: int) -> np.random.Generator:
        digest = hashlib.blake2b(event.logits.tobytes(), digest_size=8).digest()
        return np.random.default_rng([int.from_bytes(digest, "little"), event.step, salt])

    def _choose(
        self, event: ForwardPass, masses: list[float], costs: list[float], shortest: bool, salt: int
    ) -> int:
        """Index of the chosen option: drawn by mass, or the cheapest one."""
        finite = [m for m in masses if math.isfinite(m)]
        if shortest or not finite:
            return int(np.argmin(costs))
        top = max(finite)
        w = np.asarray([math.exp(m - top) if math.isfinite(m) else 0.0 for m in masses])
        return int(self._rng(event, salt).choice(len(masses), p=w / w.sum()))

    # -- events ----------------------------------------------------------------------------
    def forward(self, event: ForwardPass, actions: ActionBuilder) -> Action | None:
        """The action for this step: forced structure, a leaf mask, or ``None`` when done."""
        pending = ""
        salt = 0
        while self.stack:
            top = self.stack[-1]
            below = self.min_remaining(len(self.stack) - 1)
            if isinstance(top, _LitItem):
                self.stack.pop()
                pending += top.text
                continue
            if isinstance(top, _NodeItem) and not isinstance(top.node, Alt):
                self.stack.pop()
                self.stack.extend(self._expand(top))
                continue
            if pending:
                break
            if isinstance(top, _LeafItem):
                dfa, dist = top.run.dfa, top.run.dist
                entry = top.run.index.entry(top.state)
                budget = self.remaining - 1 - below
                ok = dist[entry.next_states] <= budget
                ids = entry.ids[ok]
                if dfa.is_final(top.state):
                    stop = ids.shape[0] == 0
                    if not stop:
                        follow = self._item_first(self.stack[-2] if len(self.stack) > 1 else None)
                        masses = [self._mass(event.logits, ids), self._mass(event.logits, follow)]
                        stop = self._choose(event, masses, [1.0, 0.0], False, salt) == 1
                        salt += 1
                    if stop:
                        self.stack.pop()
                        continue
                if ids.shape[0] == 0:
                    raise RuntimeError(
                        f"json_schema: no token fits the schema here (budget {self.remaining})"
                    )
                return mask_action(actions, event, ids)
            # a choice: object properties, array items or anyOf branches
            assert isinstance(top, _ObjItem | _ArrItem | _NodeItem)
            options = self._options(top)
            feasible = [o for o in options if o.cost + below <= self.remaining] or [
                min(options, key=lambda o: o.cost)
            ]
            if len(feasible) == 1:
                pick = feasible[0]
            else:
                deep = top.depth > MAX_REF_DEPTH
                masses = [self._mass(event.logits, o.ids) for o in feasible]
                pick = feasible[self._choose(event, masses, [o.cost for o in feasible], deep, salt)]
                salt += 1
            self.stack.pop()
            self.stack.extend(pick.push)
        if pending:
            toks = tokenize(pending, self.tokenizer)
            self.expected = list(toks)
            return actions.force_tokens(toks)
        return None

    def _expand(self, item: _NodeItem) -> list[_Item]:
        node, depth = item.node, item.depth
        if isinstance(node, Lit):
            return [_LitItem(node.text)]
        if isinstance(node, Leaf):
            run = _leaf_index(self.table, node)
            return [_LeafItem(run, run.dfa.initial)]
        if isinstance(node, Ref):
            assert node.target is not None
            return [_NodeItem(node.target, depth + 1)]
        if isinstance(node, Obj):
            return [_ObjItem(node, 0, True, depth), _LitItem("{")]
        assert isinstance(node, Arr)
        return [_ArrItem(node, 0, depth), _LitItem("[")]

    def added(self, tokens: tuple[int, ...], forced: bool) -> None:
        """Account for tokens that entered the sequence."""
        self.generated += len(tokens)
        if forced and self.expected and list(tokens) == self.expected[: len(tokens)]:
            self.expected = self.expected[len(tokens) :]
            return
        for tok in tokens:
            top = self.stack[-1] if self.stack else None
            text = self.table.text(int(tok))
            if not isinstance(top, _LeafItem) or text is None:
                raise RuntimeError(f"json_schema: token {tok} ({text!r}) is not allowed here")
            nxt = top.run.dfa.walk(top.state, text)
            if nxt == top.run.dfa.dead:
                raise RuntimeError(f"json_schema: token {tok} ({text!r}) breaks the schema")
            top.state = nxt

    def complete(self) -> bool:
        """Whether the document is complete and nothing more may (or must) follow."""
        while self.stack:
            top = self.stack[-1]
            if not isinstance(top, _LeafItem) or not top.run.dfa.is_final(top.state):
                return False
            if top.run.dfa.has_exits(top.state) and self.remaining > 0:
                return False
            self.stack.pop()
        return True


# ----------------------------------------------------------------------------- the mod
def schema_of_request() -> Any:
    """The schema of the current request: ``response_format`` first, then ``args["schema"]``."""
    schema = get_conversation().json_schema()
    if schema is None:
        try:
            schema = get_request().mod_args.get("schema")
        except LookupError:
            schema = None
    return schema


def compiled_schema(schema: Any) -> CompiledSchema:
    """Compile ``schema`` once per process (raises :class:`UnsupportedSchemaError`)."""
    key = json.dumps(schema, sort_keys=True)
    hit = _compiled.get(key)
    if hit is None:
        try:
            hit = compile_schema(schema)
        except UnsupportedSchemaError as exc:
            hit = exc
        with _compiled_lock:
            _compiled[key] = hit
    if isinstance(hit, UnsupportedSchemaError):
        raise hit
    return hit


class JsonSchemaMod(Mod):
    """Constrain the whole completion to a JSON document valid for the request's schema.

    ``schema_source`` returns the schema (default: :func:`schema_of_request`).
    """

    name = "json_schema"
    hold_back = 0  # never backtracks; ForceOutput only repeats the completion

    schema_source: Callable[[], Any] = staticmethod(schema_of_request)

    def __init__(self) -> None:
        self.walker: SchemaWalker | None = None
        self.completion: list[int] = []

    def handle(self, event: Event, actions: ActionBuilder, tokenizer: Any) -> Action | None:
        """Prefilled: compile; ForwardPass: force or mask; Added: track and finish."""
        if isinstance(event, Prefilled):
            schema = self.schema_source()
            if schema is None:
                return actions.emit_error(
                    "json_schema: the request has no response_format json_schema "
                    "(nor args['schema'])"
                )
            try:
                compiled = compiled_schema(schema)
            except UnsupportedSchemaError as exc:
                return actions.emit_error(f"json_schema: {exc}")
            need = compiled.min_len(compiled.root)
            if need > event.max_steps:
                return actions.emit_error(
                    f"json_schema: max_tokens={event.max_steps} is too small for the schema "
                    f"(the shortest valid document needs up to {int(need)} tokens)"
                )
            self.walker = SchemaWalker(compiled, tokenizer, event.max_steps)
            mod_log("json_schema: compiled; shortest document %d chars", int(need))
            return None
        walker = self.walker
        if walker is None:
            return None
        if isinstance(event, ForwardPass):
            action = walker.forward(event, actions)
            return action if action is not None else actions.force_output(self.completion)
        if isinstance(event, Added):
            self.completion.extend(int(t) for t in event.tokens)
            walker.added(event.tokens, event.forced)
            if not walker.expected and walker.complete():
                return actions.force_output(self.completion)
        return None


json_schema: ModDefinition = ModDefinition("json_schema", JsonSchemaMod, hold_back=0)
"""The registrable mod definition (``"<served>/json_schema"``)."""
