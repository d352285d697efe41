# SPDX-License-Identifier: Apache-2.0
"""The API process's link to the model worker: request outcomes, stats, and worker death.

:class:`WorkerLink` binds the receiving end of :mod:`quote.mods.channel` and exports
its address (``QUOTE_CHANNEL``) before MAX spawns the worker. A thread receives the
worker's messages and resolves the asyncio futures that Quote's routes await, so a
request's outcome is in memory when its last chunk arrives: no polling, no files.

When the worker's ``hello`` names its pid, a second thread waits on that process
(a Linux pidfd; nothing is reaped). If the worker dies while the server is not
stopping: ``/health`` and every route answer 503 at once (:class:`WorkerGate`),
each in-flight request gets an error (its :meth:`WorkerLink.death` future fires),
and after :data:`FLUSH_S` the API process ends its children and exits with status 3.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import select
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import psutil

from quote.mods.channel import ENV, decode
from quote.server.options import error_body

__all__ = ["FLUSH_S", "WorkerGate", "WorkerLink", "install", "link"]

logger = logging.getLogger(__name__)

FLUSH_S = 1.0
"""Seconds between a worker's death and the API process's exit (in-flight errors flush)."""

EXIT_STATUS = 3
"""The API process's exit status after its model worker died."""

UNCLAIMED_S = 600.0
"""Results nobody awaited (the client left) are dropped after this long."""

_Waiter = tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]


class WorkerLink:
    """Receives the worker's messages; tells routes about results and the worker's death."""

    def __init__(self) -> None:
        import zmq

        self._dir = tempfile.mkdtemp(prefix="quote-link-")  # mode 0700
        self.address = f"ipc://{self._dir}/channel"
        self._socket: Any = zmq.Context.instance().socket(zmq.PULL)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.bind(self.address)
        self._lock = threading.Lock()
        self._results: dict[str, tuple[float, dict[str, Any]]] = {}
        self._waiters: dict[str, list[_Waiter]] = {}
        self._death: dict[int, _Waiter] = {}  # one future per event loop
        self.stats: dict[str, Any] | None = None
        self.worker_pid: int | None = None
        self.dead: str | None = None
        self.dead_at = 0.0  # time.monotonic() of the death
        self.stopping = False
        self._exit_lock = threading.Lock()  # held by the one caller that ends the process
        threading.Thread(target=self._receive, name="quote-link", daemon=True).start()

    # --- what routes use ------------------------------------------------------------------
    async def result(self, ticket: str, timeout: float = 30.0) -> dict[str, Any] | None:
        """The outcome of the ticketed request (sent before its last output); None if none came."""
        loop = asyncio.get_running_loop()
        with self._lock:
            ready = self._results.pop(ticket, None)
            if ready is not None:
                return ready[1]
            fut: asyncio.Future[Any] = loop.create_future()
            self._waiters.setdefault(ticket, []).append((loop, fut))
        try:
            death = self.death()
            done, _ = await asyncio.wait(
                {fut, death}, timeout=timeout, return_when="FIRST_COMPLETED"
            )
            return fut.result() if fut in done else None
        finally:
            with self._lock:
                waiters = self._waiters.get(ticket, [])
                if (loop, fut) in waiters:
                    waiters.remove((loop, fut))
                if not waiters:
                    self._waiters.pop(ticket, None)

    def death(self) -> asyncio.Future[Any]:
        """The running loop's future that resolves (to a reason) when the worker dies.

        Shared by every request of that loop: await it (``asyncio.wait``), never cancel it.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            known = self._death.get(id(loop))
            if known is not None and known[0] is loop:
                return known[1]
            fut: asyncio.Future[Any] = loop.create_future()
            if self.dead is not None:
                fut.set_result(self.dead)
            self._death[id(loop)] = (loop, fut)
        return fut

    def mark_dead(self, reason: str) -> None:
        """Record the worker's death; fail in-flight requests; exit unless stopping."""
        with self._lock:
            if self.dead is not None:
                return
            self.dead = reason
            self.dead_at = time.monotonic()
            waiters = list(self._death.values())
        if self.stopping:
            logger.info("model worker exited during shutdown")
            return
        logger.error("%s: failing in-flight requests; the server exits", reason)
        for loop, fut in waiters:
            _resolve(loop, fut, reason)
        threading.Thread(target=self._exit_soon, name="quote-exit", daemon=True).start()

    # --- threads ---------------------------------------------------------------------------
    def _receive(self) -> None:
        import zmq

        while True:
            try:
                msg = decode(self._socket.recv())
            except zmq.ZMQError as exc:
                logger.debug("channel closed: %s", exc)
                return
            except ValueError as exc:
                logger.warning("ignored a malformed channel message: %s", exc)
                continue
            kind = msg["kind"]
            if kind == "result":
                self._deliver(str(msg.get("ticket")), dict(msg.get("result") or {}))
            elif kind == "stats":
                self.stats = dict(msg.get("stats") or {})
            elif kind == "hello":
                self._watch(int(msg["pid"]))

    def _deliver(self, ticket: str, result: dict[str, Any]) -> None:
        now = time.monotonic()
        with self._lock:
            waiters = self._waiters.pop(ticket, [])
            if not waiters:
                self._results[ticket] = (now, result)
                stale = [t for t, (at, _) in self._results.items() if now - at > UNCLAIMED_S]
                for t in stale:
                    del self._results[t]
        for loop, fut in waiters:
            _resolve(loop, fut, result)

    def _watch(self, pid: int) -> None:
        if self.worker_pid == pid:
            return
        self.worker_pid = pid
        threading.Thread(
            target=self._wait_for_exit, args=(pid,), name="quote-worker-watch", daemon=True
        ).start()

    def _wait_for_exit(self, pid: int) -> None:
        try:
            fd = os.pidfd_open(pid)
        except OSError:  # already gone, or no pidfd: poll instead
            fd = None
        if fd is not None:
            try:
                select.select([fd], [], [])
            finally:
                os.close(fd)
        else:
            while psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie":
                time.sleep(0.05)
        if self.worker_pid == pid:
            self.mark_dead(f"the model worker (pid {pid}) exited")

    def _exit_soon(self) -> None:
        time.sleep(FLUSH_S)
        if not self.stopping:
            self.exit_now()

    def exit_now(self) -> None:
        """End this process's children and exit with :data:`EXIT_STATUS` (never returns).

        A second caller (the exit thread, or the event loop after MAX's unwinding began)
        blocks until the first has exited the process.
        """
        self._exit_lock.acquire()  # never released: the process ends below
        kids = [p for p in psutil.Process().children(recursive=True) if not _is_tracker(p)]
        for p in kids:
            try:
                p.terminate()
            except psutil.Error:
                continue
        _, alive = psutil.wait_procs(kids, timeout=1)
        for p in alive:
            try:
                p.kill()
            except psutil.Error:
                continue
        shutil.rmtree(self._dir, ignore_errors=True)
        logging.shutdown()
        os._exit(EXIT_STATUS)


def _is_tracker(proc: psutil.Process) -> bool:
    """Whether ``proc`` is multiprocessing's resource tracker.

    It ignores SIGTERM by design and exits by itself, after releasing what the dead
    processes leaked, once this process's end closes its pipe: waiting on it would only
    delay the exit.
    """
    try:
        return any("multiprocessing.resource_tracker" in part for part in proc.cmdline())
    except psutil.Error:
        return False


def _resolve(loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any], value: Any) -> None:
    def settle() -> None:
        if not fut.done():
            fut.set_result(value)

    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:  # that loop is closed: nobody waits any more
        pass


_LINK: WorkerLink | None = None


def link() -> WorkerLink | None:
    """This API process's link (None outside ``max serve``'s API process)."""
    return _LINK


def start() -> WorkerLink:
    """Create this process's link and export its address for the worker (idempotent)."""
    global _LINK
    if _LINK is None:
        _LINK = WorkerLink()
    os.environ[ENV] = _LINK.address
    return _LINK


class WorkerGate:
    """ASGI middleware: once the worker is dead, every HTTP request gets 503 (``/health`` too)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Answer 503 when the worker died; otherwise pass the request on."""
        current = _LINK
        if scope["type"] != "http" or current is None or current.dead is None:
            await self.app(scope, receive, send)
            return
        from starlette.responses import JSONResponse

        body = error_body(
            f"{current.dead}; the server is shutting down", "server_error", "worker_died"
        )
        await JSONResponse(body, status_code=503)(scope, receive, send)


ENTRY = "max._entrypoints.cli.serve.serve_api_and_model_worker"
"""The ``max serve`` module that builds the app and enters the serving lifespan."""


def _with_link(factory: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(factory)
    def fastapi_app(*args: Any, **kwargs: Any) -> Any:
        start()  # before the lifespan spawns the worker, which inherits QUOTE_CHANNEL
        app = factory(*args, **kwargs)
        app.add_middleware(WorkerGate)
        return app

    return fastapi_app


def _with_watch(original: Callable[..., Any]) -> Callable[..., Any]:
    @asynccontextmanager
    async def lifespan(app: Any, *args: Any, **kwargs: Any) -> AsyncIterator[None]:
        async with original(app, *args, **kwargs):
            try:
                yield
            except asyncio.CancelledError:
                # MAX cancels the server when its worker exits non-zero.
                await _end_if_dead("the model worker exited")
                raise
            except BaseException:  # noqa: BLE001 - a signal (SIGTERM, SIGINT): a requested stop
                _stopping()
                raise
            # uvicorn also returns normally when MAX cancels it after a worker crash.
            await _end_if_dead(None)
            _stopping()

    return lifespan


async def _end_if_dead(reason: str | None) -> None:
    """If the worker died (``reason``: it did), flush in-flight errors, then exit with status 3.

    Runs on the event loop before MAX's own unwinding (which raises ``SystemExit(1)``):
    exiting here is deterministic, while the exit thread started by
    :meth:`WorkerLink.mark_dead` would be frozen by interpreter finalization.
    """
    current = link()
    if current is None or current.stopping:
        return
    if reason is not None:
        current.mark_dead(reason)
    if current.dead is None:
        return
    await asyncio.sleep(max(0.0, current.dead_at + FLUSH_S - time.monotonic()))
    current.exit_now()


def _stopping() -> None:
    """Record a requested stop, unless the worker already died (that is no request).

    A death already recorded keeps its exit path (status 3).
    """
    current = link()
    if current is not None and current.dead is None:
        current.stopping = True


def install() -> None:
    """Wrap MAX's app factory and serving lifespan (``max serve``'s API process only)."""
    from max.serve import api_server

    entry = sys.modules.get(ENTRY)
    if getattr(api_server.fastapi_app, "_quote_link", False):
        return
    factory = api_server.fastapi_app
    wrapped = _with_link(factory)
    setattr(wrapped, "_quote_link", True)  # noqa: B010 - marks the wrapper
    api_server.fastapi_app = wrapped
    if entry is not None:
        if getattr(entry, "fastapi_app", None) is factory:
            setattr(entry, "fastapi_app", wrapped)  # noqa: B010 - a module attribute
        entry.lifespan = _with_watch(entry.lifespan)  # type: ignore[attr-defined]
