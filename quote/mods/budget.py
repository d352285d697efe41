# SPDX-License-Identifier: Apache-2.0
"""A per-call time budget for mod code.

Mods run inline in the model worker's step, so a mod that loops forever or
blocks on I/O would stall every request in the batch. :func:`time_budget` arms a
one-shot ``SIGALRM`` timer (``setitimer``; two cheap system calls per call) whose
handler raises :class:`ModTimeout` inside the mod: it interrupts pure-Python loops
and blocking system calls alike. It works on the main thread of a Unix process
(where MAX's model worker runs its scheduler); elsewhere it is a no-op and logs
that once. Quote owns ``SIGALRM`` and ``ITIMER_REAL`` in the process that runs
mods: nothing else there may use them.

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

__all__ = ["DEFAULT_TIMEOUT_MS", "ModTimeout", "arm", "budget_seconds", "disarm", "time_budget"]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_MS = 2000
"""Default budget of one mod call (milliseconds)."""

_armed = False
_warned = False
_installed = False


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
    global _installed
    if not _installed:
        # Installed once: the handler only acts while a mod call is armed.
        signal.signal(signal.SIGALRM, _on_alarm)
        _installed = True
    _armed = True
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        _armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)


def arm(seconds: float) -> bool:
    """Start the budget for one call (hot-path form of :func:`time_budget`); True if armed."""
    global _armed, _installed
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        return False
    if not _installed or signal.getsignal(signal.SIGALRM) is not _on_alarm:
        signal.signal(signal.SIGALRM, _on_alarm)
        _installed = True
    _armed = True
    signal.setitimer(signal.ITIMER_REAL, seconds)
    return True


def disarm() -> None:
    """Stop the budget started by :func:`arm`."""
    global _armed
    _armed = False
    signal.setitimer(signal.ITIMER_REAL, 0)
