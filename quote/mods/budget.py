# SPDX-License-Identifier: Apache-2.0
"""A per-call time budget for mod code.

Mods run inline in the model worker's step, so a mod that loops forever or
blocks on I/O would stall every request in the batch. Each mod call is *armed*:
:func:`arm` bumps a call counter and marks a call as running (three attribute
writes, no clock read: cheap enough for several calls per request per step). A
watchdog thread samples the counter; when the same call is still running one
budget after the watchdog first saw it, it sends ``SIGALRM`` to the main thread,
whose handler raises :class:`ModTimeout` inside the mod. That interrupts
pure-Python loops and blocking system calls alike.

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

__all__ = [
    "DEFAULT_TIMEOUT_MS",
    "ModTimeout",
    "arm",
    "budget_seconds",
    "disarm",
    "time_budget",
    "watchdog",
]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_MS = 2000
"""Default budget of one mod call (milliseconds)."""


class ModTimeout(BaseException):
    """A mod call ran past its time budget.

    A ``BaseException`` (like ``KeyboardInterrupt``), so a mod's own ``except Exception``
    does not swallow it.
    """


class _Watchdog:
    """The call being budgeted, and the thread that enforces its budget.

    ``calls`` counts armed calls; ``busy`` is True while one runs. The thread wakes
    every ``budget / 20`` (at most 25 ms): a call it sees for the first time starts
    its clock then, so a call is interrupted between one budget and one budget plus
    two periods (a tenth of the budget) after it began.
    """

    def __init__(self) -> None:
        self.calls = 0
        self.busy = False
        self.budget = 0.0
        self.target = -1
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
        seen, since = -1, 0.0
        while True:
            time.sleep(min(0.025, max(self.budget / 20.0, 0.0005)))
            calls = self.calls
            if not self.busy or main is None:
                seen = -1
                continue
            now = time.monotonic()
            if calls != seen:
                seen, since = calls, now
            elif now - since >= self.budget and self.target != calls:
                # A mod that swallows ModTimeout is interrupted again one budget later.
                self.target, since = calls, now
                signal.pthread_kill(main, signal.SIGALRM)


_dog = _Watchdog()
_MAIN_IDENT = threading.main_thread().ident
_get_ident = threading.get_ident


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    if _dog.busy and _dog.target == _dog.calls:
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


def watchdog(seconds: float) -> _Watchdog | None:
    """The running watchdog set to ``seconds`` per call, or None where budgets are off.

    For callers that budget several calls in a row: per call, ``dog.calls += 1`` and
    ``dog.busy = True`` arm it, ``dog.busy = False`` disarms it (what :func:`arm` and
    :func:`disarm` do).
    """
    if seconds <= 0:
        return None
    dog = _dog
    if _get_ident() != _MAIN_IDENT:
        if not dog.warned:
            dog.warned = True
            logger.warning("mod time budget unavailable off the main thread; mods run unbounded")
        return None
    if dog.thread is None:
        dog.start()
    dog.budget = seconds
    return dog


def arm(seconds: float) -> bool:
    """Start the budget of one mod call; True if it is enforced (main thread only)."""
    dog = watchdog(seconds)
    if dog is None:
        return False
    dog.calls += 1
    dog.busy = True
    return True


def disarm() -> None:
    """End the budget started by :func:`arm`."""
    _dog.busy = False


@contextlib.contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Raise :class:`ModTimeout` in the block if it runs longer than ``seconds``."""
    armed = arm(seconds)
    try:
        yield
    finally:
        if armed:
            disarm()
