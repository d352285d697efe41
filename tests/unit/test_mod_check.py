# SPDX-License-Identifier: Apache-2.0
"""The registration check accepts a mod only on a positive verdict from the check process."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from quote.mods.check import check_bundle
from quote.mods.registry import RegistryError

pytestmark = pytest.mark.unit

GOOD = "from quote.sdk import mod\n@mod\ndef m(e, a, t):\n    return None\n"


def _bundle(tmp_path: Path, source: str) -> Path:
    (tmp_path / "main.py").write_text(source)
    return tmp_path


@pytest.mark.parametrize(
    "source",
    [GOOD, "from quote.sdk import Mod\nclass m(Mod):\n    pass\n", "def m(e, a, t):\n    pass\n"],
    ids=["function", "class", "plain-handler"],
)
def test_good_mod_gets_a_positive_verdict(tmp_path: Path, source: str) -> None:
    verdict = check_bundle(_bundle(tmp_path, source), "main:m", "good")
    assert verdict["ok"] is True and verdict["name"] == "good"
    assert verdict["type"] == "ModDefinition"


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        (GOOD + "raise SystemExit(0)\n", "failed to import: SystemExit: 0"),
        (GOOD + "import sys\nsys.exit(0)\n", "failed to import: SystemExit: 0"),
        (GOOD + "import sys\nsys.exit()\n", "failed to import: SystemExit"),
        (GOOD + "raise KeyboardInterrupt\n", "failed to import: KeyboardInterrupt"),
        (GOOD + "import os\nos._exit(0)\n", "ended the check process (status 0)"),
        (GOOD + "import os\nos._exit(3)\n", "ended the check process (status 3)"),
        (GOOD + "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", "signal SIGKILL"),
        ("m = 1\n", "not a mod"),
        ("y = 1\n", "has no attribute 'm'"),
        ("m = None\n", "has no attribute 'm'"),
        ("def m(e):\n    pass\n", "must take (event, actions, tokenizer)"),
        ("def f(:\n", "SyntaxError"),
        (GOOD + "import atexit, os\natexit.register(os._exit, 4)\n", "exited with status 4"),
    ],
    ids=[
        "SystemExit(0)",
        "sys.exit(0)",
        "sys.exit()",
        "KeyboardInterrupt",
        "os._exit(0)",
        "os._exit(3)",
        "SIGKILL",
        "wrong-type",
        "missing",
        "None",
        "wrong-arity",
        "syntax",
        "atexit-exit",
    ],
)
def test_bad_mod_is_refused_with_its_reason(tmp_path: Path, source: str, needle: str) -> None:
    with pytest.raises(RegistryError) as e:
        check_bundle(_bundle(tmp_path, source), "main:m", "bad")
    assert needle in str(e.value) and "bad" in str(e.value), str(e.value)


def test_hanging_import_times_out_and_its_processes_are_killed(tmp_path: Path) -> None:
    marker = tmp_path / "grandchild-alive"
    grandchild = f"import time, pathlib; time.sleep(3); pathlib.Path({str(marker)!r}).touch()"
    source = (
        GOOD
        + "import subprocess, sys, time\n"
        + f"subprocess.Popen([sys.executable, '-c', {grandchild!r}])\n"
        + "time.sleep(60)\n"
    )
    t0 = time.monotonic()
    with pytest.raises(RegistryError, match="took longer than 2 s to import"):
        check_bundle(_bundle(tmp_path, source), "main:m", "slow", timeout=2.0)
    assert time.monotonic() - t0 < 10
    time.sleep(2.5)
    assert not marker.exists()  # the mod's own child was killed with the check's process group


def test_timeout_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from quote.mods.check import check_timeout

    monkeypatch.setenv("QUOTE_MOD_CHECK_TIMEOUT_S", "5")
    assert check_timeout() == 5.0
    monkeypatch.setenv("QUOTE_MOD_CHECK_TIMEOUT_S", "nonsense")
    assert check_timeout() == 30.0
