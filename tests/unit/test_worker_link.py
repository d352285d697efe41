# SPDX-License-Identifier: Apache-2.0
"""The worker-to-API channel (``quote.mods.channel`` -> ``quote.server.worker_link``), in-process.

Real ZeroMQ sockets on a private IPC path: a result sent before or after the API side
awaits it arrives once, stats are kept, a worker's death resolves every waiter and turns
every HTTP request into a 503.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from quote.mods.channel import WorkerChannel, decode, encode
from quote.server import worker_link
from quote.server.worker_link import WorkerGate, WorkerLink

pytestmark = pytest.mark.unit


@pytest.fixture
def link(monkeypatch: pytest.MonkeyPatch) -> Iterator[WorkerLink]:
    monkeypatch.setattr(WorkerLink, "_exit_soon", lambda self: None)  # never os._exit here
    yield WorkerLink()


def _eventually(check: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_messages_round_trip() -> None:
    assert decode(encode("result", ticket="t", result={"a": 1})) == {
        "kind": "result",
        "ticket": "t",
        "result": {"a": 1},
    }
    with pytest.raises(ValueError):
        decode(b"[1, 2]")


def test_result_sent_before_or_after_the_wait_arrives_once(link: WorkerLink) -> None:
    worker = WorkerChannel(link.address)

    async def run() -> tuple[object, object, object]:
        assert worker.send("result", ticket="early", result={"finish_reason": "stop"})
        await asyncio.sleep(0.2)  # the result is in memory before anyone asks
        early = await link.result("early", timeout=5)
        waiting = asyncio.ensure_future(link.result("late", timeout=5))
        await asyncio.sleep(0.05)
        worker.send("result", ticket="late", result={"error": "boom"})
        late = await waiting
        again = await link.result("early", timeout=0.1)  # taken once: gone
        return early, late, again

    early, late, again = asyncio.run(run())
    assert early == {"finish_reason": "stop"}
    assert late == {"error": "boom"}
    assert again is None


def test_stats_and_malformed_messages(link: WorkerLink) -> None:
    worker = WorkerChannel(link.address)
    worker.send("stats", stats={"live_requests": 3})
    _eventually(lambda: link.stats == {"live_requests": 3})
    import zmq

    raw = zmq.Context.instance().socket(zmq.PUSH)
    raw.connect(link.address)
    raw.send(b"not json")
    worker.send("stats", stats={"live_requests": 0})  # still received after the garbage
    _eventually(lambda: link.stats == {"live_requests": 0})
    raw.close(0)


def test_worker_death_resolves_waiters_and_gates_http(
    link: WorkerLink, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def run() -> tuple[object, object]:
        waiting = asyncio.ensure_future(link.result("never", timeout=30))
        death = link.death()
        await asyncio.sleep(0.05)
        link.mark_dead("the model worker (pid 1) exited")
        return await asyncio.wait_for(waiting, 5), await asyncio.wait_for(death, 5)

    result, reason = asyncio.run(run())
    assert result is None
    assert reason == "the model worker (pid 1) exited"

    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("a dead worker's server must not reach the app")

    monkeypatch.setattr(worker_link, "_LINK", link)
    r = TestClient(WorkerGate(app)).get("/health")
    assert r.status_code == 503 and r.json()["error"]["code"] == "worker_died"


def test_a_stop_in_progress_is_not_a_death(link: WorkerLink) -> None:
    link.stopping = True
    link.mark_dead("the model worker (pid 1) exited")

    async def run() -> bool:
        return link.death().done()

    assert link.dead is not None
    assert asyncio.run(run())  # later waiters still see it, nothing hangs
