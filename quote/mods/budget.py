# SPDX-License-Identifier: Apache-2.0
"""A per-call time budget for mod code.

Mods run inline in the model worker's step, so a mod that loops forever or
blocks on I/O would stall every request in the batch. :func:`time_budget` arms a
one-shot ``SIGALRM`` timer (``setitimer``; two cheap system calls per call) whose
handler raises :class:`ModTimeout` inside the mod: it interrupts pure-Python loops
and blocking system calls alike. It works on the main thread of a Unix process
(where MAX's model worker runs its scheduler); elsewhere it is a no-op and logs
that once.

The budget is ``$QUOTE_MOD_TIMEOUT_MS`` milliseconds per call (default
:data:`DEFAULT_TIMEOUT_MS`; ``0`` disables it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["DEFAULT_TIMEOUT_MS", "ModTimeout", "budget_seconds", "time_budget"]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_MS = 2000
"""Default budget of one mod call (milliseconds)."""

_armed = False
_warned = False


class ModTimeout(Exception):
    """A mod call ran past its time budget."""


def budget_seconds() -> float:
    """The configured budget in seconds (0 = off)."""
    raw = os.environ.get("QUOTE_MOD_TIMEOUT_MS", "")
    try:
        ms = float(raw) if raw else float(DEFAULT_TIMEOUT_MS)
    except ValueError:
        ms = float(DEFAULT_TIMEOUT_MS)
    return max(ms, 0.0) / 1000.0


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    if _armed:
        raise ModTimeout()


@contextlib.contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Raise :class:`ModTimeout` in the block if it runs longer than ``seconds``."""
    global _armed, _warned
    usable = (
        seconds > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        if seconds > 0 and not _warned:
            _warned = True
            logger.warning("mod time budget unavailable off the main thread; mods run unbounded")
        yield
        return
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    _armed = True
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        _armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
