# SPDX-License-Identifier: Apache-2.0
"""The per-call time budget stops looping and blocking mods (main thread)."""

from __future__ import annotations

import socket
import time
from typing import Any

import numpy as np
import pytest

from quote.mods.session import ModFailure, ModSession
from quote.sdk import ForwardPass, RequestInfo, mod

pytestmark = pytest.mark.unit


@mod
def spins(event: Any, actions: Any, tokenizer: Any) -> None:
    while True:
        pass


@mod
def blocks(event: Any, actions: Any, tokenizer: Any) -> None:
    a, b = socket.socketpair()
    try:
        a.recv(1)  # never answered
    finally:
        a.close()
        b.close()


@mod
def swallows(event: Any, actions: Any, tokenizer: Any) -> None:
    while True:
        try:
            time.sleep(0.01)
        except Exception:  # noqa: BLE001, S110 - the point: a mod that swallows errors
            pass


@mod
def quick(event: Any, actions: Any, tokenizer: Any) -> None:
    return None


@pytest.mark.parametrize(
    "definition", [spins, blocks, swallows], ids=["loops", "blocks-on-io", "swallows-errors"]
)
def test_budget_fails_only_the_call(definition: Any) -> None:
    session = ModSession(RequestInfo("r"), None, [definition], budget_s=0.2)
    session.start()
    t0 = time.monotonic()
    with pytest.raises(ModFailure) as e:
        session.dispatch(ForwardPass("r", 0, np.zeros(4, dtype=np.float32)))
    assert time.monotonic() - t0 < 2.0
    assert definition.name in str(e.value) and "time budget of 200 ms" in str(e.value)
    # The timer is disarmed: later code is not interrupted.
    time.sleep(0.3)
    ok = ModSession(RequestInfo("r2"), None, [quick], budget_s=0.2)
    ok.start()
    assert ok.dispatch(ForwardPass("r2", 0, np.zeros(4, dtype=np.float32))) == []
