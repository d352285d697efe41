# SPDX-License-Identifier: Apache-2.0
"""Character automata (from ``interegular``) indexed over a vocabulary's token strings.

For a DFA state, :meth:`TokenIndex.entry` gives every token whose whole text
can be consumed from that state (ending in a live state) and the state it
leads to. It is computed once per state, lazily, by running the automaton over
all token strings at once with numpy (one gather per character position), then
cached on the tokenizer's :class:`~quote.sdk.tokens.TokenTable`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import interegular
import numpy as np
import numpy.typing as npt
from interegular.fsm import anything_else

from quote.sdk.errors import QuoteSDKError
from quote.sdk.tokens import TokenTable

__all__ = ["CharDFA", "PatternError", "StateEntry", "TokenIndex", "escape", "index_for"]

_SPECIAL = set("\\.^$*+?{}[]|()-/\"'")


class PatternError(QuoteSDKError, ValueError):
    """A regular expression the automaton library cannot compile."""


def escape(text: str) -> str:
    """Escape ``text`` as a literal for the regex dialect used here (Python/interegular)."""
    return "".join("\\" + c if c in _SPECIAL else c for c in text)


class CharDFA:
    """A dense, deterministic automaton over characters.

    Args:
        pattern: A regular expression (the subset ``interegular`` understands).
        stop_at_final: If true, a final state has no outgoing transitions, so the
            language is "up to the first match" (used by *until* strategies).
        max_chars: Optional cap on the match length in characters (exact: the
            automaton is intersected with ``.{0,max_chars}``).
    """

    def __init__(
        self, pattern: str, *, stop_at_final: bool = False, max_chars: int | None = None
    ) -> None:
        try:
            fsm = interegular.parse_pattern(pattern).to_fsm()
            if max_chars is not None:
                fsm = fsm & interegular.parse_pattern(f"[\\s\\S]{{0,{max_chars}}}").to_fsm()
        except Exception as exc:  # noqa: BLE001 - interegular raises many exception types
            raise PatternError(f"cannot compile pattern {pattern!r}: {exc}") from exc
        self._build(fsm, pattern, stop_at_final)

    @classmethod
    def from_fsm(cls, fsm: Any, key: str, *, stop_at_final: bool = False) -> CharDFA:
        """An automaton from an ``interegular`` FSM built elsewhere (``key`` names it)."""
        dfa = cls.__new__(cls)
        dfa._build(fsm, key, stop_at_final)
        return dfa

    def _build(self, fsm: Any, pattern: str, stop_at_final: bool) -> None:
        self.pattern = pattern
        states = sorted(fsm.states)
        num = {s: i for i, s in enumerate(states)}
        n = len(states)
        self.dead = n
        self.alphabet = fsm.alphabet
        n_sym = len(set(self.alphabet.values()))
        self.pad_symbol = n_sym
        self.unknown_symbol = n_sym + 1
        try:
            self.else_symbol: int | None = int(self.alphabet[anything_else])
        except KeyError:
            self.else_symbol = None
        self.finals = np.zeros(n + 1, dtype=bool)
        for s in fsm.finals:
            self.finals[num[s]] = True
        trans = np.full((n + 1, n_sym + 2), self.dead, dtype=np.int32)
        for s, row in fsm.map.items():
            if stop_at_final and s in fsm.finals:
                continue
            for sym, nxt in row.items():
                trans[num[s], int(sym)] = num[nxt]
        live = self.finals.copy()  # states that can still reach a final state
        changed = True
        while changed:
            reach = live[trans[:, :n_sym]].any(axis=1)
            new = live | reach
            new[self.dead] = False
            changed = bool((new != live).any())
            live = new
        trans[~live[trans]] = self.dead  # never enter a state with no way to finish
        trans[:, self.pad_symbol] = np.arange(n + 1, dtype=np.int32)
        trans[self.dead, :] = self.dead
        self.trans = trans
        self.initial = num[fsm.initial] if live[num[fsm.initial]] else self.dead
        self.live = live
        self.n_states = n

    def symbol(self, ch: str) -> int:
        """Symbol index of one character."""
        found = self.alphabet._symbol_mapping.get(ch)
        sym = self.else_symbol if found is None else int(found)
        return self.unknown_symbol if sym is None else sym

    def walk(self, state: int, text: str) -> int:
        """The state after consuming ``text`` (``dead`` if it cannot)."""
        for ch in text:
            state = int(self.trans[state, self.symbol(ch)])
            if state == self.dead:
                break
        return state

    def is_final(self, state: int) -> bool:
        """Whether ``state`` accepts."""
        return bool(self.finals[state])

    def has_exits(self, state: int) -> bool:
        """Whether any character leads from ``state`` to a live state."""
        return bool((self.trans[state, : self.pad_symbol] != self.dead).any())


@dataclass
class StateEntry:
    """Tokens allowed from one DFA state: sorted ``ids`` and the state each one leads to."""

    ids: npt.NDArray[np.int64]
    next_states: npt.NDArray[np.int32]

    def next_state(self, token: int) -> int | None:
        """The state ``token`` leads to, or ``None`` if it is not allowed."""
        i = int(np.searchsorted(self.ids, token))
        if i < self.ids.shape[0] and int(self.ids[i]) == token:
            return int(self.next_states[i])
        return None


class TokenIndex:
    """A :class:`CharDFA` run over a :class:`TokenTable` (one per pattern and tokenizer)."""

    def __init__(self, dfa: CharDFA, table: TokenTable) -> None:
        self.dfa = dfa
        self.table = table
        order = table.by_length
        codes = table.codes[order]
        uniq = table.code_points
        sym_of_code = np.fromiter(
            (dfa.symbol(chr(int(c))) for c in uniq), dtype=np.int32, count=uniq.shape[0]
        )
        pos = np.searchsorted(uniq, codes)
        pos = np.clip(pos, 0, max(uniq.shape[0] - 1, 0))
        syms = sym_of_code[pos] if uniq.shape[0] else np.zeros_like(codes)
        syms[codes < 0] = dfa.pad_symbol
        self._syms = np.ascontiguousarray(syms.T)  # [max_len, size], rows are positions
        lengths = table.lengths[order]
        self._counts = [int(np.count_nonzero(lengths > j)) for j in range(syms.shape[1])]
        self._order = order
        self._valid_sorted = table.valid[order]
        self._entries: dict[int, StateEntry] = {}
        self._lock = threading.Lock()

    def entry(self, state: int) -> StateEntry:
        """Allowed tokens from ``state`` (computed on first use)."""
        hit = self._entries.get(state)
        if hit is not None:
            return hit
        trans = self.dfa.trans
        cur = np.full(self._order.shape[0], state, dtype=np.int32)
        for j, n in enumerate(self._counts):
            if n == 0:
                break
            cur[:n] = trans[cur[:n], self._syms[j, :n]]
        ok = self._valid_sorted & (cur != self.dfa.dead)
        ids = self._order[ok]
        nxt = cur[ok]
        perm = np.argsort(ids, kind="stable")
        entry = StateEntry(ids[perm].astype(np.int64), nxt[perm].astype(np.int32))
        with self._lock:
            self._entries[state] = entry
        return entry


def index_for(
    table: TokenTable, pattern: str, *, stop_at_final: bool = False, max_chars: int | None = None
) -> TokenIndex:
    """The cached :class:`TokenIndex` of a pattern over ``table``."""
    key: Any = ("regex", pattern, stop_at_final, max_chars)
    hit: TokenIndex | None = table.cache.get(key)
    if hit is None:
        hit = TokenIndex(CharDFA(pattern, stop_at_final=stop_at_final, max_chars=max_chars), table)
        table.cache[key] = hit
    return hit
