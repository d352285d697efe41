# SPDX-License-Identifier: Apache-2.0
"""``POST /v1/mods`` bodies (Quote's, the original engine's, ``serialize_mod``'s) and bundles
that import their own modules absolutely."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from quote.mods import payload
from quote.mods.payload import body_credential, parse_registration
from quote.mods.registry import ModRegistry, RegistryError
from quote.sdk.harness import run_mod
from quote.sdk.serialize import serialize_mod
from quote.sdk.testing import char_tokenizer

pytestmark = pytest.mark.unit

MOD = """
from quote.sdk import mod, Prefilled

@mod
def hello(event, actions, tokenizer):
    if isinstance(event, Prefilled):
        return actions.force_output(tokenizer.encode(WORD))

WORD = "hi"
"""


def test_quotes_own_form() -> None:
    reg = parse_registration({"name": "a", "source": MOD, "entrypoint": "hello"})
    assert (reg.name, reg.entrypoint, list(reg.files)) == ("a", "main:hello", ["main.py"])
    assert not reg.reads_server_files


def test_the_originals_single_source_and_bundle() -> None:
    reg = parse_registration(
        {
            "name": "a",
            "language": "python",
            "module": "client_mod",
            "entrypoint": "hello",
            "source": MOD,
            "user_api_key": "k",
        }
    )
    assert (reg.entrypoint, list(reg.files)) == ("client_mod:hello", ["client_mod.py"])
    reg = parse_registration(
        {"name": "b", "module": "pkg.mod", "entrypoint": "hello", "source": {"pkg/mod.py": MOD}}
    )
    assert reg.entrypoint == "pkg.mod:hello"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("[]", "JSON object"),
        ({"name": "a", "source": MOD, "entrypoint": "h", "bogus": 1}, "Extra inputs"),
        ({"name": "a", "source": MOD, "entrypoint": "h", "language": "js"}, "'language'"),
        ({"name": "a", "source": 3, "entrypoint": "h"}, "'source'"),
        ({"name": "a", "source": {"m.py": 1}, "entrypoint": "m:h"}, "strings"),
        ({"name": "a", "source": MOD, "entrypoint": 5}, "'entrypoint'"),
        ({"name": "a", "module": "m", "source": MOD, "entrypoint": "m:h"}, "no ':'"),
        ({"name": "a", "module": "m", "entrypoint": "h", "dir": "/", "source": MOD}, "not both"),
        ({"name": "a", "entrypoint": "h", "dir": "/"}, "need 'module'"),
        ({"name": "a", "module": "m", "entrypoint": "h", "dir": "/no/such"}, "not a folder"),
        ({"name": "a", "module": "m", "entrypoint": "h", "files": []}, "non-empty list"),
        ({"name": "a", "module": "m", "entrypoint": "h", "files": ["/no.py"]}, "not found"),
        ({"format": "quote-mod/9"}, "unknown payload format"),
    ],
)
def test_bad_bodies_are_refused_with_a_reason(body: Any, needle: str) -> None:
    if body == "[]":
        body = []
    with pytest.raises(RegistryError, match=needle):
        parse_registration(body)


def test_dir_and_files_are_read_from_the_package_base(tmp_path: Path) -> None:
    root = tmp_path / "examples" / "demo"
    root.mkdir(parents=True)
    (root / "mod.py").write_text(MOD)
    (root / "util.py").write_text("X = 1\n")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "junk.py").write_text("")
    common = {"name": "d", "module": "examples.demo.mod", "entrypoint": "hello"}
    reg = parse_registration({**common, "dir": str(root)})
    assert sorted(reg.files) == ["examples/demo/mod.py", "examples/demo/util.py"]
    assert reg.entrypoint == "examples.demo.mod:hello" and reg.reads_server_files
    reg = parse_registration({**common, "files": [str(root / "mod.py")]})
    assert list(reg.files) == ["examples/demo/mod.py"]
    with pytest.raises(RegistryError, match="is not under"):
        parse_registration({**common, "module": "other.mod", "dir": str(root)})


def test_reading_the_servers_files_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("mod.py", "a.py", "b.py"):
        (tmp_path / name).write_text(MOD)
    body = {"name": "d", "module": "mod", "entrypoint": "hello", "dir": str(tmp_path)}
    monkeypatch.setattr(payload, "MAX_SERVER_FILES", 2)
    with pytest.raises(RegistryError, match="more than 2"):
        parse_registration(body)
    monkeypatch.setattr(payload, "MAX_SERVER_FILES", 10)
    monkeypatch.setattr(payload, "MAX_SERVER_BYTES", 10)
    with pytest.raises(RegistryError, match="exceed 10"):
        parse_registration(body)


def test_serialize_mod_payload_round_trips_into_the_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src" / "spkg"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("")
    (src / "words.py").write_text('WORD = "yo"\n')
    (src / "entry.py").write_text(MOD.replace('WORD = "hi"', "from spkg.words import WORD"))
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    import spkg.entry  # type: ignore[import-not-found]

    try:
        payload = json.loads(serialize_mod(spkg.entry.hello))
    finally:
        for name in [n for n in sys.modules if n == "spkg" or n.startswith("spkg.")]:
            del sys.modules[name]
    reg = parse_registration(payload)
    assert reg.entrypoint == "spkg.entry:hello"
    registry = ModRegistry(tmp_path / "mods")
    registry.write(reg.name, reg.files, reg.entrypoint, "")
    result = run_mod(registry.load("hello"), char_tokenizer(), prompt="x")
    assert result.text == "yo"  # the absolute import resolved inside the bundle
    payload["modules"]["spkg.words"]["source"] = 'WORD = "no"\n'
    with pytest.raises(RegistryError, match="checksum"):
        parse_registration(payload)


def test_two_bundles_with_the_same_module_names_stay_apart(tmp_path: Path) -> None:
    registry = ModRegistry(tmp_path / "mods")
    for name, word in (("one", "1"), ("two", "2")):
        files = {
            "lib/words.py": f'WORD = "{word}"\n',
            "lib/mod.py": MOD.replace('WORD = "hi"', "from lib.words import WORD"),
        }
        registry.write(name, files, "lib.mod:hello", "")
    tok = char_tokenizer()
    assert run_mod(registry.load("one"), tok, prompt="x").text == "1"
    assert run_mod(registry.load("two"), tok, prompt="x").text == "2"
    assert "lib" not in sys.modules and "lib.words" not in sys.modules


def test_namespaced_mods_load_by_owner_and_name(tmp_path: Path) -> None:
    registry = ModRegistry(tmp_path / "mods")
    registry.namespace("abc123def456").write("m", {"main.py": MOD}, "main:hello", "")
    assert registry.spec("m") is None and registry.list() == []
    assert run_mod(registry.load("abc123def456/m"), char_tokenizer(), prompt="x").text == "hi"
    with pytest.raises(KeyError):
        registry.load("abc123def456/other")
    with pytest.raises(RegistryError):
        registry.load("../x/m")
    registry.drop_namespace("abc123def456")
    assert not (tmp_path / "mods" / "_users" / "abc123def456").exists()


def test_body_credential() -> None:
    assert body_credential({"user_api_key": " k "}) == "k"
    assert body_credential({"user_api_key": 3}) is None
    assert body_credential([]) is None
