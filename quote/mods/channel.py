# SPDX-License-Identifier: Apache-2.0
"""The in-memory channel from the model worker to the API process.

A finished request's outcome (finish reason, error, tool calls, trace) and the
worker's live counts travel over a ZeroMQ PUSH/PULL pair on a private IPC socket:
the API process binds (``quote.server.worker_link``) and exports the address in
``QUOTE_CHANNEL`` before MAX spawns the worker, which inherits it and connects.
Messages are JSON objects with a ``kind``: ``hello`` (the worker's pid, sent once),
``result`` (one per ticketed request, sent before the request's last output leaves
the worker) and ``stats``. Nothing is written to disk but the socket itself.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any

__all__ = ["ENV", "WorkerChannel", "decode", "encode", "worker_channel"]

logger = logging.getLogger(__name__)

ENV = "QUOTE_CHANNEL"
"""Environment variable holding the channel's ZeroMQ address (set by the API process)."""


def encode(kind: str, **fields: Any) -> bytes:
    """One message: a JSON object with ``kind`` and ``fields``."""
    return json.dumps({"kind": kind, **fields}, default=str).encode()


def decode(frame: bytes) -> dict[str, Any]:
    """A message decoded by :func:`encode`'s rules (``ValueError`` if malformed)."""
    data = json.loads(frame)
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        raise ValueError("not a Quote channel message")
    return data


class WorkerChannel:
    """The worker's sending end: a PUSH socket connected to ``address`` on first use."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._socket: Any = None
        self._lock = threading.Lock()

    def send(self, kind: str, **fields: Any) -> bool:
        """Queue one message without blocking; False (logged) if it cannot be queued."""
        import zmq

        frame = encode(kind, **fields)
        with self._lock:
            if self._socket is None:
                sock: Any = zmq.Context.instance().socket(zmq.PUSH)
                sock.setsockopt(zmq.LINGER, 2000)
                sock.setsockopt(zmq.SNDHWM, 0)  # never drop: results are small and few
                sock.connect(self.address)
                self._socket = sock
            try:
                self._socket.send(frame, zmq.NOBLOCK)
            except zmq.ZMQError as exc:
                logger.error("could not send %s message to the API process: %s", kind, exc)
                return False
        return True


_CHANNEL: WorkerChannel | None = None
_PID = 0


def worker_channel() -> WorkerChannel | None:
    """This process's channel to the API process, or None when not under ``max serve``."""
    global _CHANNEL, _PID
    address = os.environ.get(ENV)
    if not address:
        return None
    if _CHANNEL is None or _PID != os.getpid() or _CHANNEL.address != address:
        _CHANNEL, _PID = WorkerChannel(address), os.getpid()
    return _CHANNEL
