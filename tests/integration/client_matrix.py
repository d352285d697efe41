# SPDX-License-Identifier: Apache-2.0
"""The client x feature x bare/modded matrix of the real-client tests, from actual outcomes.

Decorate a test taking a ``variant`` argument (``"bare"`` or ``"modded"``) with
``@cell(client, feature)``: its outcome (pass / FAIL / skip) is recorded when it runs.
``feature`` may name the test's other arguments, e.g. ``"Mode.{mode}"``.
:func:`table` renders what was recorded in this pytest process (every module that ran).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

__all__ = ["RESULTS", "cell", "table"]

RESULTS: dict[tuple[str, str, str], str] = {}
F = TypeVar("F", bound=Callable[..., Any])


def cell(client: str, feature: str) -> Callable[[F], F]:
    """Record the outcome of the decorated test under (client, feature, its ``variant``)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            key = (client, feature.format(**kwargs), str(kwargs.get("variant", "bare")))
            try:
                out = fn(*args, **kwargs)
            except pytest.skip.Exception:
                RESULTS[key] = "skip"
                raise
            except BaseException:
                RESULTS[key] = "FAIL"
                raise
            RESULTS[key] = "pass" if RESULTS.get(key) != "FAIL" else "FAIL"
            return out

        return run  # type: ignore[return-value]

    return wrap


def table() -> str:
    """A Markdown table: one row per (client, feature), columns bare and modded."""
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for (client, feature, variant), outcome in RESULTS.items():
        rows.setdefault((client, feature), {})[variant] = outcome
    lines = ["| client | feature | bare | modded |", "|---|---|---|---|"]
    for (client, feature), got in rows.items():
        lines.append(
            f"| {client} | {feature} | {got.get('bare', '-')} | {got.get('modded', '-')} |"
        )
    passed = sum(v == "pass" for v in RESULTS.values())
    lines.append(f"\n{passed} of {len(RESULTS)} cells pass")
    return "\n".join(lines)


# Mods the client suites register: noop, a tool call, one that reports choice_index.
CLIENT_MODS = """
from quote.sdk import mod, Added, Prefilled, get_request

@mod
def noop(event, actions, tokenizer):
    return None

@mod
def tool(event, actions, tokenizer):
    if isinstance(event, Added) and event.step >= 1:
        return actions.tool_calls([{"name": "get_weather", "arguments": {"city": "Paris"}}])

@mod
def which(event, actions, tokenizer):
    if isinstance(event, Prefilled):
        index = getattr(get_request(), "choice_index", None)
        return actions.force_output(tokenizer.encode(f"choice {index}", add_special_tokens=False))
"""
