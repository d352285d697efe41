# SPDX-License-Identifier: Apache-2.0
"""Run ``max serve`` under supervision: clean stops, no orphans, worker death noticed.

:func:`supervise` starts the command in its own session (terminal signals reach only
``quote serve``), remembers every process of its tree (polled with :mod:`psutil`),
and ends the run in one of three ways:

* **a requested stop** (SIGTERM, SIGINT or SIGHUP to ``quote serve``): the signal is
  forwarded to ``max serve``; whatever is still alive after ``stop_grace_s`` is
  SIGKILLed. Exit status 0.
* **``max serve`` exits on its own**: leftovers of its tree are killed; its status is
  returned (``128 + N`` when a signal N killed it). When the model worker dies, MAX's
  API process (``quote.server.worker_link``, which knows the worker's pid from the
  worker itself) answers in-flight requests with errors and exits with status
  :data:`EXIT_WORKER_DIED`, which is passed on.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from types import FrameType

import psutil

__all__ = ["EXIT_WORKER_DIED", "STOP_SIGNALS", "supervise"]

logger = logging.getLogger(__name__)

EXIT_WORKER_DIED = 3
"""Exit status of ``max serve`` (and so ``quote serve``) after its model worker died."""

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
"""Signals that ask ``quote serve`` to stop (exit status 0)."""

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGTERM if ``quote serve`` itself is killed (even by SIGKILL)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
    except (OSError, AttributeError):
        pass


def _alive(proc: psutil.Process) -> bool:
    """Running and not a zombie (a killed child its parent has not reaped yet)."""
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _name(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())[-60:]
    except psutil.Error:
        return "?"


class _Tree:
    """Every process seen under the root, including those that were re-parented since."""

    def __init__(self, root: int) -> None:
        self.root = psutil.Process(root)
        self.seen: dict[int, psutil.Process] = {}

    def refresh(self) -> None:
        try:
            children = self.root.children(recursive=True)
        except psutil.Error:
            return
        for child in children:
            self.seen.setdefault(child.pid, child)

    def remaining(self) -> list[psutil.Process]:
        return [p for p in (self.root, *self.seen.values()) if _alive(p)]

    def kill_all(self, wait_s: float) -> list[psutil.Process]:
        """SIGKILL every remaining process; return those still alive after ``wait_s``."""
        left = self.remaining()
        for proc in left:
            try:
                proc.kill()
            except psutil.Error:
                pass
        deadline = time.monotonic() + wait_s
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = [p for p in left if _alive(p)]
        return left


def _exit_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def supervise(
    cmd: Sequence[str],
    env: Mapping[str, str],
    *,
    poll_s: float = 0.25,
    stop_grace_s: float = 8.0,
) -> int:
    """Run ``cmd`` until it ends or a stop signal arrives; return ``quote serve``'s exit status.

    ``stop_grace_s`` bounds a requested stop before SIGKILL (the total stays under 10 s;
    a second stop signal kills at once).
    """
    requested: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if not requested:
            logger.info("received %s: stopping the server", signal.Signals(signum).name)
        requested.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    try:
        proc = subprocess.Popen(  # noqa: S603 - our own command line
            list(cmd), env=dict(env), start_new_session=True, preexec_fn=_die_with_parent
        )
        return _watch(proc, requested, poll_s, stop_grace_s)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _watch(
    proc: subprocess.Popen[bytes], requested: list[int], poll_s: float, stop_grace_s: float
) -> int:
    tree = _Tree(proc.pid)
    while proc.poll() is None and not requested:
        tree.refresh()
        try:
            proc.wait(poll_s)
        except subprocess.TimeoutExpired:
            pass
    if requested and proc.poll() is None:
        _stop(proc, tree, requested[0], stop_grace_s, requested)
    stuck = tree.kill_all(wait_s=2.0)
    if stuck:
        logger.error("processes %s did not exit", [p.pid for p in stuck])
    try:
        status = _exit_status(proc.wait(5.0))
    except subprocess.TimeoutExpired:
        status = 128 + signal.SIGKILL
    if requested:
        logger.info("server stopped on request (max serve status %d)", status)
        return 0
    if status == EXIT_WORKER_DIED:
        logger.error("the model worker died; the server stopped (status %d)", status)
    elif status != 0:
        logger.error("max serve exited with status %d", status)
    return status


def _stop(
    proc: subprocess.Popen[bytes], tree: _Tree, signum: int, grace_s: float, requested: list[int]
) -> None:
    """Forward ``signum`` to ``max serve``; SIGKILL the whole tree after ``grace_s``
    (or as soon as one more stop signal arrives)."""
    deadline = time.monotonic() + grace_s
    signals_before = len(requested)
    tree.refresh()
    proc.send_signal(signum)  # a no-op once max serve has been reaped
    orphans_told = False
    while time.monotonic() < deadline and len(requested) <= max(signals_before, 1):
        if proc.poll() is None:
            tree.refresh()
        elif not orphans_told:  # max serve is gone: its helpers will not be told to stop
            orphans_told = True
            for leftover in tree.remaining():
                try:
                    leftover.send_signal(signal.SIGTERM)
                except psutil.Error:
                    pass
        if not tree.remaining():
            return
        time.sleep(0.1)
    logger.warning(
        "max serve did not stop (%.1f s): killing %s",
        grace_s - (deadline - time.monotonic()),
        [(p.pid, _name(p)) for p in tree.remaining()],
    )
    tree.kill_all(wait_s=0.0)
