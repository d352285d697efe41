# SPDX-License-Identifier: Apache-2.0
"""The SDK imports without MAX, and from a standalone copy of ``quote/sdk`` alone."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

import quote.sdk

pytestmark = pytest.mark.unit

SDK_DIR = pathlib.Path(quote.sdk.__file__).parent
MODULES = sorted(
    "quote.sdk" + ("" if p.stem == "__init__" else "." + p.stem)
    if p.parent == SDK_DIR
    else f"quote.sdk.{p.parent.name}" + ("" if p.stem == "__init__" else "." + p.stem)
    for p in SDK_DIR.rglob("*.py")
)


def _python(
    code: str, cwd: pathlib.Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )


def test_every_sdk_module_imports_without_max() -> None:
    assert "quote.sdk.flow" in MODULES and "quote.sdk.strategies.builtin" in MODULES
    code = (
        "import sys, importlib\n"
        "sys.modules['max'] = None\n"
        f"for name in {MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "assert sys.modules['max'] is None\n"
        "print('ok', len(sys.modules))\n"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok")


def test_flow_importable_from_a_standalone_sdk(tmp_path: pathlib.Path) -> None:
    """Regression: ``flow`` was not importable from a standalone install."""
    pkg = tmp_path / "quote"
    shutil.copytree(SDK_DIR, pkg / "sdk", ignore=shutil.ignore_patterns("__pycache__"))
    (pkg / "__init__.py").write_text("")
    code = (
        "import sys; sys.modules['max'] = None\n"
        "import quote, quote.sdk.flow, quote.sdk.strategies, quote.sdk.testing\n"
        "from quote.sdk.flow import Flow, Question, flow_mod\n"
        f"assert quote.__file__.startswith({str(tmp_path)!r}), quote.__file__\n"
        "print('ok')\n"
    )
    proc = _python(code, cwd=tmp_path, PYTHONPATH=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
