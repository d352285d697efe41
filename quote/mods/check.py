# SPDX-License-Identifier: Apache-2.0
"""Check, in a separate interpreter, that a mod bundle imports and yields a mod.

Registration (``POST /v1/mods``) runs :func:`check_bundle` before storing a mod. The
child process imports the bundle and writes a JSON **verdict** on a dedicated pipe:
``{"ok": true, "name", "type", "hold_back"}`` once the entrypoint was found and turned
into a :class:`~quote.sdk.mod.ModDefinition`, or ``{"ok": false, "error"}``. The parent
accepts only a positive verdict with the expected name from a child that then exited
with status 0 in time. Exit status alone never accepts: a module that calls
``os._exit(0)`` at import exits 0 without a verdict and is refused, and one that raises
``SystemExit`` or ``KeyboardInterrupt`` reports it in its verdict.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from quote.mods.registry import RegistryError, load_from_dir
from quote.mods.session import describe_exception
from quote.sdk.mod import ModDefinition

__all__ = ["CHECK_TIMEOUT_ENV", "DEFAULT_CHECK_TIMEOUT_S", "check_bundle", "check_timeout"]

CHECK_TIMEOUT_ENV = "QUOTE_MOD_CHECK_TIMEOUT_S"
DEFAULT_CHECK_TIMEOUT_S = 30.0
"""Default limit (seconds) for importing a mod in the check process."""

_MAX_VERDICT = 16 * 1024
_CHILD = "import sys\nfrom quote.mods.check import _child_main\nraise SystemExit(_child_main(sys.argv[1:]))\n"


def check_timeout() -> float:
    """``$QUOTE_MOD_CHECK_TIMEOUT_S`` (default 30 s; values below 1 s count as 1 s)."""
    raw = os.environ.get(CHECK_TIMEOUT_ENV, "")
    try:
        seconds = float(raw) if raw else DEFAULT_CHECK_TIMEOUT_S
    except ValueError:
        seconds = DEFAULT_CHECK_TIMEOUT_S
    return max(seconds, 1.0)


def check_bundle(
    files_dir: Path, entrypoint: str, name: str, timeout: float | None = None
) -> dict[str, Any]:
    """Import ``entrypoint`` from ``files_dir`` in a child interpreter; its positive verdict.

    Raises :class:`RegistryError` naming the reason when the import fails (any exception,
    ``SystemExit`` and ``KeyboardInterrupt`` included), the entrypoint is missing or not a
    mod, the child ends without a verdict (``os._exit``, a signal, a crash) or exits
    non-zero after it, or the whole check takes longer than ``timeout`` seconds.
    """
    limit = check_timeout() if timeout is None else timeout
    read_fd, write_fd = os.pipe()
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                [sys.executable, "-c", _CHILD, str(files_dir), entrypoint, name, str(write_fd)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                pass_fds=(write_fd,),
                start_new_session=True,  # the whole group is killed on timeout
                env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            )
        finally:
            os.close(write_fd)
        try:
            rc = _wait(proc, limit)
            raw = _read_all(read_fd)
        finally:
            os.close(read_fd)
        if rc is None:
            raise RegistryError(f"mod '{name}' took longer than {limit:.0f} s to import")
        err.seek(0)
        stderr = err.read()[-4000:].decode(errors="replace")
    verdict = _parse(raw)
    if verdict is None:
        raise RegistryError(f"mod '{name}': {_no_verdict(rc, stderr)}")
    if verdict.get("ok") is not True:
        raise RegistryError(str(verdict.get("error") or f"mod '{name}' failed the import check"))
    if verdict.get("name") != name or verdict.get("type") != ModDefinition.__name__:
        raise RegistryError(f"mod '{name}': the check found no mod named {name!r} ({verdict})")
    if rc != 0:
        raise RegistryError(
            f"mod '{name}': the check process exited with {_status(rc)} after importing "
            "(an atexit handler or a thread started at import?)"
        )
    return verdict


def _wait(proc: subprocess.Popen[bytes], limit: float) -> int | None:
    """The child's exit status, or None after killing its process group at the deadline."""
    try:
        return proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the child leads its own group (not yet reaped)
        except ProcessLookupError:
            pass
        proc.wait()
        return None


def _read_all(fd: int) -> bytes:
    """What the child wrote on the verdict pipe (never blocks: a forked grandchild may hold it)."""
    os.set_blocking(fd, False)
    chunks: list[bytes] = []
    size = 0
    deadline = time.monotonic() + 1.0
    while size <= _MAX_VERDICT and time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _parse(raw: bytes) -> dict[str, Any] | None:
    lines = raw.decode(errors="replace").strip().splitlines()
    if len(raw) > _MAX_VERDICT or not lines:
        return None
    try:
        verdict = json.loads(lines[-1])
    except ValueError:
        return None
    return verdict if isinstance(verdict, dict) else None


def _status(rc: int) -> str:
    if rc < 0:
        try:
            return f"signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"signal {-rc}"
    return f"status {rc}"


def _no_verdict(rc: int, stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    tail = f" (last output: {lines[-1][:300]})" if lines else ""
    return (
        f"its import ended the check process ({_status(rc)}) before the entrypoint could be "
        f"verified: a mod must not exit the interpreter (os._exit, signals, crashes){tail}"
    )


def _child_main(argv: list[str]) -> int:
    """Child process: import the bundle, write the verdict on the pipe ``argv[3]``."""
    files_dir, entrypoint, name, fd_text = argv
    fd = int(fd_text)
    os.set_inheritable(fd, False)  # processes the mod starts do not hold the pipe open
    verdict: dict[str, Any]
    try:
        definition = load_from_dir(Path(files_dir), entrypoint, "check", name)
    except RegistryError as exc:
        verdict = {"ok": False, "error": str(exc)}
    except BaseException as exc:  # noqa: BLE001 - the verdict must report whatever the import did
        verdict = {"ok": False, "error": f"mod '{name}': {describe_exception(exc)}"}
    else:
        if isinstance(definition, ModDefinition):
            verdict = {
                "ok": True,
                "name": definition.name,
                "type": type(definition).__name__,
                "hold_back": definition.hold_back,
            }
        else:
            verdict = {"ok": False, "error": f"mod '{name}': the entrypoint is not a mod"}
    if "error" in verdict:
        verdict["error"] = str(verdict["error"])[:2000]
    os.write(fd, (json.dumps(verdict) + "\n").encode())
    os.close(fd)
    return 0
