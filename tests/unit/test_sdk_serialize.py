# SPDX-License-Identifier: Apache-2.0
"""A mod and its local modules round-trip through a payload into a fresh interpreter."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from quote.sdk.serialize import SerializationError, load_mod, serialize_mod
from quote.sdk.testing import char_tokenizer, run_mod

pytestmark = pytest.mark.unit

REPO = pathlib.Path(__file__).resolve().parents[2]

FILES = {
    "toputil.py": 'SUFFIX = "!"\n',
    "qmods/__init__.py": "from .consts import GREETING as GREETING\n",
    "qmods/consts.py": 'GREETING = "hi"\n',
    "qmods/sub/__init__.py": "",
    "qmods/sub/helpers.py": "from .. import consts\n\ndef pick():\n    return 'ok' + consts.GREETING\n",
    "qmods/entry.py": textwrap.dedent(
        """
        import toputil
        from qmods import consts
        from quote.sdk import Mod, Prefilled
        from .sub.helpers import pick
        import qmods.sub.helpers as h2


        class Greeter(Mod):
            def handle(self, event, actions, tokenizer):
                if isinstance(event, Prefilled):
                    text = pick() + toputil.SUFFIX + consts.GREETING + h2.pick()
                    return actions.force_output(tokenizer.encode(text))
                return None
        """
    ),
}


@pytest.fixture
def project(tmp_path: pathlib.Path) -> pathlib.Path:
    for rel, text in FILES.items():
        path = tmp_path / "src" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / "src"


def test_round_trip_in_a_fresh_interpreter(project: pathlib.Path, tmp_path: pathlib.Path) -> None:
    sys.path.insert(0, str(project))
    try:
        import qmods.entry  # type: ignore[import-not-found]

        payload = serialize_mod(qmods.entry.Greeter)
        local = run_mod(qmods.entry.Greeter, char_tokenizer(), prompt="x").text
    finally:
        sys.path.remove(str(project))
        for name in [n for n in sys.modules if n == "toputil" or n.startswith("qmods")]:
            del sys.modules[name]
    data = json.loads(payload)
    assert set(data["modules"]) == {
        "toputil",
        "qmods",
        "qmods.consts",
        "qmods.sub",
        "qmods.sub.helpers",
        "qmods.entry",
    }
    assert local == "okhi!hiokhi"
    (tmp_path / "payload.json").write_bytes(payload)
    code = (
        "import sys\n"
        "from quote.sdk.serialize import load_mod\n"
        "from quote.sdk.testing import char_tokenizer, run_mod\n"
        "d = load_mod(open(sys.argv[1], 'rb').read())\n"
        "assert 'qmods' not in sys.modules and 'toputil' not in sys.modules\n"
        "print(d.name, run_mod(d, char_tokenizer(), prompt='x').text)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "payload.json")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(tmp_path),
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["Greeter", "okhi!hiokhi"]


def test_bad_payloads() -> None:
    with pytest.raises(SerializationError):
        load_mod(b"not json")
    with pytest.raises(SerializationError):
        load_mod(json.dumps({"format": "quote-mod/1", "sha256": "0"}))
    with pytest.raises(SerializationError):
        serialize_mod(lambda e, a, t: None)


def test_a_mod_shipped_in_quote_bundles_its_own_package_only() -> None:
    from quote.examples.demos import greeting

    payload = serialize_mod(greeting)
    assert sorted(json.loads(payload)["modules"]) == ["demos", "demos.mods"]
    loaded = load_mod(payload)  # its quote.sdk imports resolve to the installed package
    assert loaded.name == greeting.name
