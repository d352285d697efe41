# SPDX-License-Identifier: Apache-2.0
"""A per-call time budget for mod code.

Mods run inline in the model worker's step, so a mod that loops forever or
blocks on I/O would stall every request in the batch. Each mod call is *armed*
with a deadline (two attribute writes: cheap enough for several calls per
request per step). A watchdog thread checks the deadline; when a call overruns
it, the watchdog sends ``SIGALRM`` to the main thread, whose handler raises
:class:`ModTimeout` inside the mod. That interrupts pure-Python loops and
blocking system calls alike.

It works on the main thread of a Unix process (where MAX's model worker runs its
scheduler); elsewhere it is a no-op and logs that once. Quote owns ``SIGALRM`` in
the process that runs mods. The budget is ``$QUOTE_MOD_TIMEOUT_MS`` milliseconds
per call (default :data:`DEFAULT_TIMEOUT_MS`; ``0`` disables it); an overrun is
detected within about a tenth of the budget (at most 50 ms) after the deadline.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType

__all__ = ["DEFAULT_TIMEOUT_MS", "ModTimeout", "arm", "budget_seconds", "disarm", "time_budget"]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_MS = 2000
"""Default budget of one mod call (milliseconds)."""


class ModTimeout(Exception):
    """A mod call ran past its time budget."""


class _Watchdog:
    """Deadline of the current mod call, and the thread that enforces it."""

    def __init__(self) -> None:
        self.deadline = 0.0
        self.generation = 0
        self.target = -1
        self.period = 0.05
        self.thread: threading.Thread | None = None
        self.warned = False

    def start(self) -> None:
        if signal.getsignal(signal.SIGALRM) is not _on_alarm:
            signal.signal(signal.SIGALRM, _on_alarm)
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self._run, name="quote-mod-watchdog", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        main = threading.main_thread().ident
        while True:
            time.sleep(self.period)
            deadline = self.deadline
            if deadline and time.monotonic() > deadline and main is not None:
                self.target = self.generation
                self.deadline = 0.0
                signal.pthread_kill(main, signal.SIGALRM)


_dog = _Watchdog()
_MAIN_IDENT = threading.main_thread().ident


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    if _dog.target == _dog.generation:
        _dog.target = -1
        raise ModTimeout()


def budget_seconds() -> float:
    """The configured budget in seconds (0 = off)."""
    raw = os.environ.get("QUOTE_MOD_TIMEOUT_MS", "")
    try:
        ms = float(raw) if raw else float(DEFAULT_TIMEOUT_MS)
    except ValueError:
        ms = float(DEFAULT_TIMEOUT_MS)
    return max(ms, 0.0) / 1000.0


def arm(seconds: float) -> bool:
    """Start the budget of one mod call; True if it is enforced (main thread only)."""
    if seconds <= 0:
        return False
    if threading.get_ident() != _MAIN_IDENT:
        if not _dog.warned:
            _dog.warned = True
            logger.warning("mod time budget unavailable off the main thread; mods run unbounded")
        return False
    if _dog.thread is None:
        _dog.start()
    _dog.period = min(0.05, max(seconds / 10.0, 0.001))
    _dog.generation += 1
    _dog.deadline = time.monotonic() + seconds
    return True


def disarm() -> None:
    """End the budget started by :func:`arm`."""
    _dog.deadline = 0.0
    _dog.generation += 1


@contextlib.contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Raise :class:`ModTimeout` in the block if it runs longer than ``seconds``."""
    armed = arm(seconds)
    try:
        yield
    finally:
        if armed:
            disarm()
