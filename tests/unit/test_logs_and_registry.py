# SPDX-License-Identifier: Apache-2.0
"""Logging configuration and crash consistency of the mod registry."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from quote.logs import configure_from_env, level_from_env
from quote.mods.registry import ModRegistry, RegistryError, normalise_source, validate_path

pytestmark = pytest.mark.unit

SRC_V1 = "from quote.sdk import mod\n@mod\ndef m(e, a, t):\n    return None\n"
SRC_V2 = SRC_V1 + "VERSION = 2\n"


def test_log_level_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUOTE_LOG_LEVEL", "debug")
    configure_from_env()
    assert logging.getLogger("quote").level == logging.DEBUG
    monkeypatch.setenv("QUOTE_LOG_LEVEL", "nonsense")
    assert level_from_env() == logging.WARNING


def _crash_during_write(root: str, after_renames: int) -> None:
    """Child process: write v2 of 'demo', SIGKILL itself after N os.rename calls."""
    real = os.rename
    count = {"n": 0}

    def rename(a: str, b: str) -> None:
        if count["n"] == after_renames:
            os.kill(os.getpid(), signal.SIGKILL)
        count["n"] += 1
        real(a, b)

    os.rename = rename  # type: ignore[assignment]
    files, entry = normalise_source(SRC_V2, "m")
    ModRegistry(root).write("demo", files, entry, "v2")


@pytest.mark.parametrize("after_renames", [0, 1, 2])
def test_killed_during_registration_recovers(tmp_path: Path, after_renames: int) -> None:
    reg = ModRegistry(tmp_path)
    files, entry = normalise_source(SRC_V1, "m")
    reg.write("demo", files, entry, "v1")
    proc = multiprocessing.get_context("fork").Process(
        target=_crash_during_write, args=(str(tmp_path), after_renames)
    )
    proc.start()
    proc.join(30)
    fresh = ModRegistry(tmp_path)
    fresh.recover()
    spec = fresh.spec("demo")
    assert spec is not None and spec.description in ("v1", "v2")  # one whole version, never half
    code = (tmp_path / "demo" / "files" / "main.py").read_text()
    assert code == (SRC_V1 if spec.description == "v1" else SRC_V2)
    assert json.loads((tmp_path / "demo" / "meta.json").read_text())["version"] == spec.version
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert fresh.load("demo").name == "demo"


@pytest.mark.parametrize("bad", ["../x.py", "/abs.py", "a/../../b.py", "x.txt", "", "a//b.py"])
def test_bundle_paths_cannot_escape(bad: str) -> None:
    with pytest.raises(RegistryError):
        validate_path(bad)


def test_reload_mode_picks_up_edited_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = ModRegistry(tmp_path)
    files, entry = normalise_source(SRC_V1, "m")
    reg.write("demo", files, entry, "v1")
    first = reg.load("demo")
    assert reg.load("demo") is first  # cached while nothing changes
    monkeypatch.setenv("QUOTE_RELOAD", "1")
    assert reg.load("demo") is not first  # reload mode keys the cache by file signature too
    second = reg.load("demo")
    path = tmp_path / "demo" / "files" / "main.py"
    path.write_text(SRC_V1.replace("return None", "return None  # edited"))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    third = reg.load("demo")
    assert third is not second and reg.load("demo") is third


def test_reload_mode_reimports_preloaded_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quote.mods.registry import load_preloaded

    mod_file = tmp_path / "preload_demo_mod.py"
    mod_file.write_text(
        "from quote.sdk import Mod\nclass Polite(Mod):\n    name = 'polite'\n    VERSION = 1\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = ModRegistry(tmp_path / "mods", preloaded=load_preloaded("preload_demo_mod:Polite"))
    monkeypatch.setenv("QUOTE_RELOAD", "1")
    first = reg.load("polite")
    assert first.factory.VERSION == 1  # type: ignore[attr-defined]
    mod_file.write_text(mod_file.read_text().replace("VERSION = 1", "VERSION = 2"))
    st = mod_file.stat()
    os.utime(mod_file, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert reg.load("polite").factory.VERSION == 2  # type: ignore[attr-defined]
