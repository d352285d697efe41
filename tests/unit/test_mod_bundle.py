# SPDX-License-Identifier: Apache-2.0
"""``quote mod upload``'s bodies from a file, a folder and a saved payload (no server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quote.commands.mod_bundle import BundleError, build_body, find_mods
from quote.mods.payload import parse_registration

pytestmark = pytest.mark.unit

ONE = """
from quote.sdk import mod, Mod
import quote.sdk as sdk

@mod
def Polite(event, actions, tokenizer):
    return None
"""


def test_find_mods() -> None:
    src = ONE + "@sdk.mod(name='x')\ndef two(e, a, t):\n    pass\nclass Three(Mod):\n    pass\n"
    src += "class NotAMod:\n    pass\ndef plain():\n    pass\n"
    assert find_mods(src) == ["Polite", "two", "Three"]
    with pytest.raises(BundleError, match="line 1"):
        find_mods("def f(:\n")


def test_a_file(tmp_path: Path) -> None:
    path = tmp_path / "polite.py"
    path.write_text(ONE)
    body = build_body(path)
    assert body == {"name": "polite", "source": ONE, "entrypoint": "Polite", "description": ""}
    assert build_body(path, name="p2", description="d")["name"] == "p2"
    assert parse_registration(body).entrypoint == "main:Polite"
    path.write_text(ONE + "@mod\ndef other(e, a, t):\n    pass\n")
    with pytest.raises(BundleError, match="several mods"):
        build_body(path)
    assert build_body(path, entrypoint="other")["name"] == "other"
    path.write_text("x = 1\n")
    with pytest.raises(BundleError, match="no @mod"):
        build_body(path)
    with pytest.raises(BundleError, match="invalid mod name"):
        build_body(path, name="Bad Name", entrypoint="x")


def test_a_folder(tmp_path: Path) -> None:
    pkg = tmp_path / "mymod"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "mod.py").write_text(ONE)
    (pkg / "sub" / "util.py").write_text("X = 1\n")
    (pkg / ".hidden").mkdir()
    (pkg / ".hidden" / "h.py").write_text("")
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "c.py").write_text("")
    body = build_body(pkg)
    assert sorted(body["source"]) == ["mymod/mod.py", "mymod/sub/util.py"]
    assert (body["name"], body["entrypoint"]) == ("polite", "mymod.mod:Polite")
    assert build_body(pkg, entrypoint="mymod.sub.util:X")["entrypoint"] == "mymod.sub.util:X"
    (pkg / "mod.py").rename(pkg / "other.py")
    with pytest.raises(BundleError, match="mod.py"):
        build_body(pkg)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="no .py files"):
        build_body(tmp_path / "empty")


def test_a_saved_payload(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    body = {"name": "a", "source": ONE, "entrypoint": "Polite"}
    path.write_text(json.dumps(body))
    assert build_body(path) == body
    renamed = build_body(path, name="b", description="d")
    assert renamed == {
        "name": "b",
        "source": {"main.py": ONE},
        "entrypoint": "main:Polite",
        "description": "d",
    }
    path.write_text("[1]")
    with pytest.raises(BundleError, match="JSON object"):
        build_body(path)
    path.write_text("{")
    with pytest.raises(BundleError, match="not JSON"):
        build_body(path)


def test_a_missing_path(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no such file"):
        build_body(tmp_path / "nope.py")
