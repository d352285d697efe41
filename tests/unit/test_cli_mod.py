# SPDX-License-Identifier: Apache-2.0
"""``quote mod list|rm`` on a mods directory, offline; ``quote serve`` flag pass-through."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from quote.cli import build_parser, main, serve_command
from quote.commands.serve import serve_env
from quote.mods.registry import ModRegistry, normalise_source

pytestmark = pytest.mark.unit

SOURCE = """
from quote.sdk import mod

@mod
def noop(event, actions, tokenizer):
    return None
"""


@pytest.fixture
def mods_dir(tmp_path: Path) -> Path:
    registry = ModRegistry(tmp_path / "mods")
    files, entry = normalise_source(SOURCE, "noop")
    registry.write("alpha", files, entry, "first")
    registry.write("beta", {"pkg/impl.py": SOURCE}, "pkg.impl:noop", "second")
    return tmp_path / "mods"


def test_mod_list_prints_name_version_entrypoint(
    mods_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["mod", "list", "--mods-dir", str(mods_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    registry = ModRegistry(mods_dir)
    assert lines[0].split() == ["NAME", "VERSION", "ENTRYPOINT"]
    rows = [line.split() for line in lines[1:]]
    assert rows == [
        ["alpha", registry.spec("alpha").version, "main:noop"],  # type: ignore[union-attr]
        ["beta", registry.spec("beta").version, "pkg.impl:noop"],  # type: ignore[union-attr]
    ]


def test_mod_list_empty_or_missing_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mod", "list", "--mods-dir", str(tmp_path / "none")]) == 0
    out = capsys.readouterr()
    assert out.out == "" and "no mods in" in out.err


def test_mod_rm_deletes_and_fails_on_missing(
    mods_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["mod", "rm", "alpha", "--mods-dir", str(mods_dir)]) == 0
    assert not (mods_dir / "alpha").exists()
    assert [s.name for s in ModRegistry(mods_dir).list()] == ["beta"]
    capsys.readouterr()
    for name in ("alpha", "../beta", "nope"):
        assert main(["mod", "rm", name, "--mods-dir", str(mods_dir)]) == 1
        err = capsys.readouterr().err
        assert f"no mod named {name!r}" in err and str(mods_dir) in err
    assert (mods_dir / "beta" / "meta.json").exists()


def test_mod_commands_read_quote_mods_dir_and_run_as_module(mods_dir: Path) -> None:
    env = dict(os.environ, QUOTE_MODS_DIR=str(mods_dir))
    out = subprocess.run(
        [sys.executable, "-m", "quote", "mod", "list"],
        env=env,
        cwd=mods_dir.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert [line.split()[0] for line in out.stdout.splitlines()[1:]] == ["alpha", "beta"]


def test_unknown_flags_only_pass_through_serve(capsys: pytest.CaptureFixture[str]) -> None:
    args, extra = build_parser().parse_known_args(
        ["serve", "--model", "/m", "--enable-prefix-caching", "--max-batch-input-tokens", "64"]
    )
    args.max_args = extra
    cmd = serve_command(args)
    assert cmd[-3:] == ["--enable-prefix-caching", "--max-batch-input-tokens", "64"]
    assert cmd[cmd.index("--model-path") + 1] == "/m"
    with pytest.raises(SystemExit):
        main(["mod", "list", "--enable-prefix-caching"])
    assert "unrecognized arguments: --enable-prefix-caching" in capsys.readouterr().err


def test_serve_env_allowed_hosts_and_interpreter() -> None:
    args = build_parser().parse_args(["serve", "--allowed-hosts", "a.example, b.example"])
    env = serve_env(args)
    assert env["QUOTE_ALLOWED_HOSTS"] == "a.example,b.example"
    assert env["MOJO_PYTHON"] == env["PYTHONEXECUTABLE"] == sys.executable
    assert "QUOTE_ALLOWED_HOSTS" not in serve_env(build_parser().parse_args(["serve"]))
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--allowed-hosts", "a,,b"])


def test_serve_env_allow_image_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUOTE_ALLOW_IMAGE_FETCH", raising=False)
    args = build_parser().parse_args(["serve", "--allow-image-fetch"])
    assert serve_env(args)["QUOTE_ALLOW_IMAGE_FETCH"] == "1"
    assert "QUOTE_ALLOW_IMAGE_FETCH" not in serve_env(build_parser().parse_args(["serve"]))
