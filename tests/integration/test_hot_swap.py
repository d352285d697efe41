# SPDX-License-Identifier: Apache-2.0
"""Hot swap of execute_impl on a live pipeline (development mode)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from quote.hot.reloader import HotModule
from quote.hot.state import RequestOptions
from quote.pipelines.local import LocalEngine, Request
from quote.sdk import mod

pytestmark = pytest.mark.integration


@mod
def noop(event: Any, actions: Any, tokenizer: Any) -> None:
    return None


def _touch(path: Path, text: str) -> None:
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_edit_is_picked_up_and_broken_edit_keeps_previous(
    pipeline_factory: Any, tmp_path: Path
) -> None:
    import quote.hot.execute_impl as impl

    engine = LocalEngine(pipeline_factory("default"))
    pipe = engine.pipeline
    original = pipe.hot
    copy = tmp_path / "execute_impl.py"
    shutil.copy(impl.__file__, copy)
    pipe.hot = HotModule(enabled=True, path=str(copy))
    try:
        prompt = [2, 100, 200, 300]
        req = Request(prompt, 4, ignore_eos=True, options=RequestOptions(mods=[noop]))
        (before,) = engine.generate([req])

        # A working edit: the new version marks the pipeline each step.
        src = copy.read_text().replace(
            "    flat = inputs.flat_batch\n",
            "    flat = inputs.flat_batch\n    pipeline.hot_marker = 'v2'\n",
        )
        assert "hot_marker" in src
        _touch(copy, src)
        (after,) = engine.generate([req])
        assert pipe.hot.generation == 1 and getattr(pipe, "hot_marker", None) == "v2"
        assert after.tokens == before.tokens

        # Broken edits (syntax error, missing execute, import-time exception) are rejected.
        for broken in ("def execute(:\n", "X = 1\n", "raise RuntimeError('at import')\n"):
            pipe.hot_marker = None
            _touch(copy, broken)
            (again,) = engine.generate([req])
            assert again.tokens == before.tokens
            assert pipe.hot.generation == 1 and pipe.hot.last_error
            assert pipe.hot_marker == "v2"  # the previous (v2) version kept running
    finally:
        pipe.hot = original


def test_disabled_reloader_never_stats(tmp_path: Path) -> None:
    hot = HotModule(enabled=False, path=str(tmp_path / "missing.py"))
    assert hot.get() is hot.module
