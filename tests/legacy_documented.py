# SPDX-License-Identifier: Apache-2.0
"""The original engine's documented mod examples, written the original's way (``quote_mod_sdk``).

Each mod has the shape of an example in the original's docs (its SDK README, its
token-injection guide and its mod-authoring skill sheet); the docstring names
it. ``tests/unit/test_compat_documented.py`` runs them; ``docs/guides/migrating.md``
lists the results. Importing this module adapts every mod, which warns once per mod.
"""

from __future__ import annotations

from dataclasses import dataclass

from quote_mod_sdk import Added, ForwardPass, ForwardPassEvent, Prefilled, mod, tokenize


@dataclass
class State:
    initialized: bool = False
    count: int = 0
    text: str = ""
    injected: bool = False


states: dict[str, State] = {}


def _state(rid: str) -> State:
    return states.setdefault(rid, State())


@mod
def forward_injection(event, actions, tokenizer):
    """SDK README: ``ForwardPassEvent`` + ``tokenize`` forcing a marker at every forward pass."""
    if isinstance(event, ForwardPassEvent):
        return actions.force_tokens(tokenize("[F]", tokenizer))
    return actions.noop()


@mod
def replace_phrase(event, actions, tokenizer):
    """Guide, example 1: edit the prompt once (initialization guard), ``adjust_prefill``."""
    st = _state(event.request_id)
    if isinstance(event, Prefilled) and not st.initialized:
        st.initialized = True
        info = event.context_info
        prompt = tokenizer.decode(info.tokens[: info._prompt_len])
        new = prompt.replace("Say hi.", "Say bye.")
        return actions.adjust_prefill(tokens=tokenizer.encode(new, add_special_tokens=False))
    return actions.noop()


@mod
def mask_token_2d(event, actions, tokenizer):
    """Skill sheet, pattern 3: boost one token and ban another on the ``(1, vocab)`` copy."""
    if isinstance(event, ForwardPass):
        logits = event.logits.to_numpy().copy()
        logits[0, tokenizer.encode("y", add_special_tokens=False)[0]] += 50.0
        logits[0, tokenizer.encode("a", add_special_tokens=False)[0]] = float("-inf")
        return actions.adjust_logits(logits)
    return actions.noop()


@mod
def mask_token_1d_index(event, actions, tokenizer):
    """Guide, example 3 as printed: ``logits[token_id] = -1e9`` on the ``(1, vocab)`` array."""
    if isinstance(event, ForwardPass):
        logits = event.logits.to_numpy()
        logits[tokenizer.encode("a", add_special_tokens=False)[0]] = -1e9
        return actions.adjust_logits(logits)
    return actions.noop()


@mod
def inject_at_position(event, actions, tokenizer):
    """Guide, pattern 1: count added tokens, force a marker at the forward pass after 4."""
    st = _state(event.request_id)
    if isinstance(event, ForwardPass) and not st.injected and st.count >= 4:
        st.injected = True
        return actions.force_tokens(tokens=tokenizer.encode(" [!] ", add_special_tokens=False))
    if isinstance(event, Added) and not st.injected:
        st.count += len(event.added_tokens)
    return actions.noop()


@mod
def doublecheck(event, actions, tokenizer):
    """Skill sheet, pattern 5: catch a phrase, backtrack it and re-insert it with an injection."""
    catch, injection = "the answer is", " (checked)"
    st = _state(event.request_id)
    if isinstance(event, Added) and not event.forced and not st.injected:
        st.text += tokenizer.decode(event.added_tokens)
        if st.text.endswith(catch):
            st.injected = True
            n = len(tokenizer.encode(catch, add_special_tokens=False))
            return actions.backtrack(n, tokenizer.encode(catch + injection))
    return actions.noop()


@mod
def stop_at_answer(event, actions, tokenizer):
    """Skill sheet, pattern 4: end with only the text after ``FINAL ANSWER:``."""
    st = _state(event.request_id)
    if isinstance(event, Added):
        st.text += tokenizer.decode(event.added_tokens)
        if "FINAL ANSWER:" in st.text and st.text.endswith("."):
            answer = st.text.split("FINAL ANSWER:")[-1].strip()
            return actions.force_output(tokenizer.encode(answer, add_special_tokens=False))
    return actions.noop()


@mod
def inspect_fields(event, actions, tokenizer):
    """Skill sheet, debugging tips: the fields its examples print, read on every event."""
    if isinstance(event, Prefilled):
        seen = (event.max_steps, event.tokens_so_far_len, event.context_info._prompt_len)
        _state(event.request_id).text = repr(seen)
    if isinstance(event, ForwardPass):
        _state(event.request_id).count = event.logits.shape[0]
    return actions.noop()
