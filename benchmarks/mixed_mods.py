# SPDX-License-Identifier: Apache-2.0
"""One mod per action, for mixed-load runs (``soak.py``, the reliability tests).

Registered with a server as source text: ``Path(__file__).read_text()`` with an entrypoint
per name in :data:`MIX` (``None`` means no mod).
"""

from typing import Any

from quote.sdk import Added, ForwardPass, Prefilled, mod

MIX: list[str | None] = [None, "noop", "mask", "force", "backtrack", "tool", "fixed"]


@mod
def noop(e: Any, a: Any, t: Any) -> Any:
    """Noop on every event."""
    return None


@mod
def mask(e: Any, a: Any, t: Any) -> Any:
    """Ban 300 token ids at every forward pass."""
    if isinstance(e, ForwardPass):
        return a.adjust_logits(ban=list(range(100, 400)))
    return None


@mod
def force(e: Any, a: Any, t: Any) -> Any:
    """Force a prefix after the prompt."""
    if isinstance(e, Prefilled):
        return a.force_tokens(t.encode("Sure: ", add_special_tokens=False))
    return None


@mod(hold_back=8)
def backtrack(e: Any, a: Any, t: Any) -> Any:
    """Backtrack two tokens at step 3 and force a replacement."""
    if isinstance(e, Added) and e.step == 3 and not e.forced:
        return a.backtrack(2, [42])
    return None


@mod
def tool(e: Any, a: Any, t: Any) -> Any:
    """End with a tool call after the first token."""
    if isinstance(e, Added) and e.step >= 1:
        return a.tool_calls([{"name": "lookup", "arguments": {"id": 7}}])
    return None


@mod
def fixed(e: Any, a: Any, t: Any) -> Any:
    """End at once with a fixed output."""
    if isinstance(e, Prefilled):
        return a.force_output(t.encode("fixed.", add_special_tokens=False))
    return None
