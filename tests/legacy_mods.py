# SPDX-License-Identifier: Apache-2.0
"""Mods written the original engine's way (``quote_mod_sdk``), one per event x action.

Shaped like the original SDK's own test mods: module-level state keyed by
``event.request_id``, the original's event fields (``context_info``,
``sampled_token``, ``added_tokens``, ``logits.to_numpy()``) and builder
arguments (``backtrack(steps=...)``, ``tool_calls`` with OpenAI-shaped dicts,
``adjust_logits(token_temp=...)``, ``actions.noop()``). Importing this module
adapts every mod, which warns once per mod.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from quote_mod_sdk import Added, ForceTokens, ForwardPass, Prefilled, Sampled, mod


@dataclass
class State:
    count: int = 0
    done: bool = False
    text: str = ""
    tokens: list[int] = field(default_factory=list)


states: dict[str, State] = {}


def get_state(rid: str) -> State:
    if rid not in states:
        states[rid] = State()
    return states[rid]


def _enc(tokenizer, text):
    return tokenizer.encode(text, add_special_tokens=False)


def _call(name, arguments, rid):
    return {
        "id": f"call_{rid.split('-')[0]}",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def _prompt(event, tokenizer):
    return tokenizer.decode(event.context_info.tokens[: event.context_info._prompt_len])


def _watch(event, tokenizer):
    """Accumulate the text of non-forced added tokens; return the request's state."""
    st = get_state(event.request_id)
    if not event.forced:
        st.text += tokenizer.decode(event.added_tokens)
        st.tokens.extend(event.added_tokens)
    return st


# --- Prefilled -------------------------------------------------------------------------------


@mod
def prefilled_noop(event, actions, tokenizer):
    return actions.noop()


@mod
def prefilled_adjust_prefill(event, actions, tokenizer):
    if isinstance(event, Prefilled):
        text = _prompt(event, tokenizer)
        if "hello" in text.lower():
            new = text.replace("hello", "goodbye").replace("Hello", "Goodbye")
            return actions.adjust_prefill(tokens=_enc(tokenizer, new))
    return actions.noop()


@mod
def prefilled_force_output(event, actions, tokenizer):
    if isinstance(event, Prefilled) and "emergency" in _prompt(event, tokenizer).lower():
        return actions.force_output(tokens=_enc(tokenizer, "EMERGENCY PROTOCOL ACTIVATED."))
    return actions.noop()


@mod
def prefilled_tool_calls(event, actions, tokenizer):
    if isinstance(event, Prefilled) and "weather" in _prompt(event, tokenizer).lower():
        return actions.tool_calls(
            _call("get_weather", '{"location": "New York"}', event.request_id)
        )
    return actions.noop()


@mod
def prefilled_emit_error(event, actions, tokenizer):
    if isinstance(event, Prefilled) and event.context_info._prompt_len > 0:
        return actions.emit_error(err_str="refused: prompt blocked")
    return actions.noop()


# --- ForwardPass -----------------------------------------------------------------------------


@mod
def forward_pass_noop(event, actions, tokenizer):
    return actions.noop()


@mod
def forward_pass_force_tokens(event, actions, tokenizer):
    if isinstance(event, ForwardPass):
        st = get_state(event.request_id)
        if not st.done:
            st.done = True
            return actions.force_tokens(tokens=_enc(tokenizer, " [INJECTED]"))
    return actions.noop()


@mod
def forward_pass_backtrack(event, actions, tokenizer):
    st = get_state(event.request_id)
    if isinstance(event, Added) and not event.forced:
        st.count += len(event.added_tokens)
    if isinstance(event, ForwardPass) and st.count >= 5 and not st.done:
        st.done = True
        return actions.backtrack(steps=2, tokens=_enc(tokenizer, " [BACKTRACKED]"))
    return actions.noop()


@mod
def forward_pass_adjust_logits(event, actions, tokenizer):
    """Ban the tokens the model likes best at every step (the original's 2-D edit)."""
    if isinstance(event, ForwardPass):
        logits = event.logits.to_numpy().copy()
        for token in np.argsort(-logits[0])[:3]:
            logits[0, token] = -np.inf
        return actions.adjust_logits(logits, token_temp=0.0)
    return actions.noop()


@mod
def forward_pass_force_output(event, actions, tokenizer):
    st = get_state(event.request_id)
    if isinstance(event, Added) and not event.forced:
        st.count += len(event.added_tokens)
    if isinstance(event, ForwardPass) and st.count >= 3 and not st.done:
        st.done = True
        return actions.force_output(tokens=_enc(tokenizer, " [END]"))
    return actions.noop()


@mod
def forward_pass_tool_calls(event, actions, tokenizer):
    if isinstance(event, ForwardPass):
        st = get_state(event.request_id)
        if not st.done:
            st.done = True
            args = '{"operation": "add", "a": 2, "b": 2}'
            return actions.tool_calls(_call("calculator", args, event.request_id))
    return actions.noop()


# --- Added -----------------------------------------------------------------------------------


@mod
def added_noop(event, actions, tokenizer):
    return actions.noop()


@mod
def added_force_tokens(event, actions, tokenizer):
    if isinstance(event, Added):
        st = _watch(event, tokenizer)
        if "hello" in st.text.lower() and not st.done:
            st.done = True
            return actions.force_tokens(tokens=_enc(tokenizer, " world"))
    return actions.noop()


@mod
def added_backtrack(event, actions, tokenizer):
    if isinstance(event, Added):
        st = _watch(event, tokenizer)
        if st.text.endswith("bad phrase"):
            bad = _enc(tokenizer, "bad phrase")
            st.tokens = st.tokens[: -len(bad)]
            st.text = tokenizer.decode(st.tokens)
            return actions.backtrack(steps=len(bad), tokens=_enc(tokenizer, "good phrase"))
    return actions.noop()


@mod
def added_force_output(event, actions, tokenizer):
    if isinstance(event, Added) and "stop word" in _watch(event, tokenizer).text.lower():
        return actions.force_output(tokens=_enc(tokenizer, " [STOPPED]"))
    return actions.noop()


@mod
def added_tool_calls(event, actions, tokenizer):
    if isinstance(event, Added):
        st = _watch(event, tokenizer)
        if "search for" in st.text.lower() and not st.done:
            st.done = True
            return actions.tool_calls(
                [_call("search", '{"query": "test query"}', event.request_id)]
            )
    return actions.noop()


# --- Sampled ---------------------------------------------------------------------------------


@mod
def sampled_noop(event, actions, tokenizer):
    return actions.noop()


@mod
def sampled_force_tokens(event, actions, tokenizer):
    if isinstance(event, Sampled):
        st = get_state(event.request_id)
        if not st.done:
            st.done = True
            st.tokens.append(event.sampled_token)
            return actions.force_tokens(tokens=_enc(tokenizer, " [OBSERVED]"))
    return actions.noop()


@mod
def sampled_backtrack(event, actions, tokenizer):
    if isinstance(event, Sampled):
        st = get_state(event.request_id)
        st.count += 1
        if st.count == 3 and not st.done:
            st.done = True
            return actions.backtrack(steps=1, tokens=_enc(tokenizer, " [RESAMPLED]"))
    return actions.noop()


@mod
def sampled_force_output(event, actions, tokenizer):
    if isinstance(event, Sampled):
        st = get_state(event.request_id)
        st.count += 1
        if st.count == 5:
            return actions.force_output(tokens=_enc(tokenizer, " [SAMPLED_END]"))
    return actions.noop()


@mod
def sampled_tool_calls(event, actions, tokenizer):
    if isinstance(event, Sampled):
        st = get_state(event.request_id)
        st.count += 1
        if st.count == 2 and not st.done:
            st.done = True
            payload = {"tool_calls": [_call("query_database", {"table": "users"}, "db")]}
            return actions.tool_calls(payload)
    return actions.noop()


# --- The other handler forms -----------------------------------------------------------------


@mod
def two_argument_handler(event, actions):
    """The original's ``@mod`` also accepted ``(event, actions)``."""
    if isinstance(event, ForwardPass) and event.step == 0:
        return actions.force_tokens([40, 41])
    return actions.noop()


def bare_callable(event, tokenizer):
    """The original engine's undecorated mod: ``(event, tokenizer) -> action``."""
    if isinstance(event, Sampled) and event.step == 0:
        return ForceTokens(_enc(tokenizer, " [BARE]"))
    return None
