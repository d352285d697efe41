# SPDX-License-Identifier: Apache-2.0
"""User API keys and their mod namespaces, and mod distribution, on a real ``quote serve``.

One server (tiny model, CPU) with an admin key. The admin creates two user keys, A and B;
mods are uploaded with ``quote mod upload`` (a file, a folder, a ``serialize_mod`` payload)
and with the original engine's bodies, then used through the ``openai`` client. Every
authorization path of ``/v1/keys`` and ``/v1/mods`` is checked, and that neither user can
see, use or delete the other's mods while both see and use the shared ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from server_proc import Server

pytestmark = pytest.mark.integration

ADMIN = "namespaces-admin-key"
REPO = Path(__file__).resolve().parents[2]


def forced(fn: str, word: str) -> str:
    """A mod ``fn`` that answers ``word`` and nothing else."""
    return textwrap.dedent(
        f"""
        from quote.sdk import mod, Prefilled

        @mod
        def {fn}(event, actions, tokenizer):
            if isinstance(event, Prefilled):
                return actions.force_output(tokenizer.encode("{word}", add_special_tokens=False))
        """
    )


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Users:
    """The server, its mods dir, the two user keys and what the server said before any key."""

    def __init__(self, srv: Server, mods_dir: Path) -> None:
        self.srv = srv
        self.base = srv.base
        self.mods_dir = mods_dir
        self.before: dict[str, httpx.Response] = {}
        self.a: dict[str, Any] = {}
        self.b: dict[str, Any] = {}
        self.served = ""


@pytest.fixture(scope="module")
def users(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Users]:
    d = tmp_path_factory.mktemp("namespaces")
    srv = Server(tiny_model, d / "mods", d / "server.log", QUOTE_ADMIN_KEY=ADMIN)
    try:
        srv.wait_ready()
        u = Users(srv, d / "mods")
        b = srv.base
        body = {"name": "early", "source": forced("early", "x"), "entrypoint": "early"}
        u.before = {  # recorded before any user key exists
            "keys": httpx.get(b + "/v1/keys", headers=auth(ADMIN), timeout=30),
            "post_no_key": httpx.post(b + "/v1/mods", json=body, timeout=30),
            "post_wrong_key": httpx.post(b + "/v1/mods", json=body, headers=auth("no"), timeout=30),
        }
        body = {"name": "shared", "source": forced("shared", "common"), "entrypoint": "shared"}
        r = httpx.post(b + "/v1/mods", json=body, headers=auth(ADMIN), timeout=120)
        assert r.status_code == 201, r.text
        for who, label in (("a", "alice"), ("b", "bob")):
            r = httpx.post(b + "/v1/keys", json={"label": label}, headers=auth(ADMIN), timeout=30)
            assert r.status_code == 201, r.text
            setattr(u, who, r.json())
        u.served = httpx.get(b + "/v1/models", timeout=30).json()["data"][0]["id"]
        yield u
    finally:
        srv.stop()


def cli(*args: str, key: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("QUOTE_API_KEY", "QUOTE_ADMIN_KEY")}
    if key is not None:
        env["QUOTE_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "quote.cli", "mod", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )


def answer(u: Users, key: str, mod: str) -> str:
    client = openai.OpenAI(base_url=u.base + "/v1", api_key=key, max_retries=0, timeout=120)
    out = client.chat.completions.create(
        model=f"{u.served}/{mod}",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=8,
        temperature=0,
    )
    return str(out.choices[0].message.content)


def names(u: Users, key: str | None) -> set[str]:
    r = httpx.get(u.base + "/v1/mods", headers=auth(key) if key else {}, timeout=30)
    assert r.status_code == 200, r.text
    return {m["name"] for m in r.json()["data"]}


def model_ids(u: Users, key: str) -> set[str]:
    data = httpx.get(u.base + "/v1/models", headers=auth(key), timeout=30).json()["data"]
    return {m["id"] for m in data}


def upload_a_file(u: Users, tmp: Path, fn: str, word: str, key: str) -> None:
    path = tmp / f"{fn}.py"
    path.write_text(forced(fn, word))
    done = cli("upload", str(path), "--server", u.base, key=key)
    assert done.returncode == 0, done.stderr
    assert f"registered {fn}" in done.stdout


def test_before_any_key_as_before(users: Users) -> None:
    assert users.before["keys"].json()["data"] == []
    assert users.before["post_no_key"].status_code == 401
    wrong = users.before["post_wrong_key"]
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (403, "invalid_api_key")


def test_keys_need_the_admin_key(users: Users) -> None:
    b = users.base
    for method, path in (("POST", "/v1/keys"), ("GET", "/v1/keys"), ("DELETE", "/v1/keys/abc")):
        assert httpx.request(method, b + path, timeout=30).status_code == 401
        for key in ("wrong", users.a["key"]):
            r = httpx.request(method, b + path, headers=auth(key), timeout=30)
            assert (r.status_code, r.json()["error"]["code"]) == (403, "invalid_api_key")
    listed = httpx.get(b + "/v1/keys", headers=auth(ADMIN), timeout=30).json()["data"]
    assert [(k["id"], k["label"]) for k in listed] == [
        (users.a["id"], "alice"),
        (users.b["id"], "bob"),
    ]
    assert all(set(k) == {"id", "label", "created"} for k in listed)
    r = httpx.post(b + "/v1/keys", json={"label": 3}, headers=auth(ADMIN), timeout=30)
    assert r.status_code == 400


def test_keys_are_stored_hashed(users: Users) -> None:
    path = users.mods_dir / ".keys.json"
    text = path.read_text()
    for user in (users.a, users.b):
        assert user["key"] not in text
        assert hashlib.sha256(user["key"].encode()).hexdigest() in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_users_never_see_each_others_mods(users: Users, tmp_path: Path) -> None:
    a, b = users.a["key"], users.b["key"]
    upload_a_file(users, tmp_path, "private_a", "alpha", a)
    upload_a_file(users, tmp_path, "private_b", "beta", b)
    assert answer(users, a, "private_a") == "alpha"
    assert answer(users, b, "private_b") == "beta"
    # Listings: own and shared mods only; anonymous and admin callers see the shared ones.
    assert {"private_a", "shared"} <= names(users, a) and "private_b" not in names(users, a)
    assert {"private_b", "shared"} <= names(users, b) and "private_a" not in names(users, b)
    for other in (None, ADMIN, "unknown-key"):
        assert not {"private_a", "private_b"} & names(users, other)
    assert f"{users.served}/private_a" in model_ids(users, a)
    assert f"{users.served}/private_a" not in model_ids(users, b)
    # Reading, using and deleting another user's mod: as if it did not exist.
    r = httpx.get(users.base + "/v1/mods/private_a", headers=auth(b), timeout=30)
    assert r.status_code == 404
    assert (
        httpx.get(users.base + "/v1/mods/private_a", headers=auth(a), timeout=30).json()["owner"]
        == users.a["id"]
    )
    for key in (b, ADMIN, "unused"):
        with pytest.raises(openai.NotFoundError):
            answer(users, key, "private_a")
    r = httpx.delete(users.base + "/v1/mods/private_a", headers=auth(b), timeout=30)
    assert r.status_code == 404
    r = httpx.delete(users.base + "/v1/mods/private_a", headers=auth(ADMIN), timeout=30)
    assert r.status_code == 404
    assert answer(users, a, "private_a") == "alpha"


def test_shared_mods_serve_everyone_and_only_the_admin_deletes_them(users: Users) -> None:
    for key in (users.a["key"], users.b["key"], ADMIN, "unused"):
        assert answer(users, key, "shared") == "common"
    for key in (users.a["key"], users.b["key"]):
        r = httpx.delete(users.base + "/v1/mods/shared", headers=auth(key), timeout=30)
        assert (r.status_code, r.json()["error"]["code"]) == (403, "shared_mod")
    assert httpx.delete(users.base + "/v1/mods/shared", timeout=30).status_code == 401
    r = httpx.delete(users.base + "/v1/mods/shared", headers=auth("wrong"), timeout=30)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "invalid_api_key")
    assert answer(users, "unused", "shared") == "common"


def test_own_mod_shadows_a_shared_one_for_its_key_only(users: Users) -> None:
    body = {"name": "shared", "source": forced("m", "mine"), "entrypoint": "m"}
    r = httpx.post(users.base + "/v1/mods", json=body, headers=auth(users.a["key"]), timeout=120)
    assert r.status_code == 201, r.text  # created in A's namespace; the shared one is untouched
    assert answer(users, users.a["key"], "shared") == "mine"
    assert answer(users, users.b["key"], "shared") == "common"
    r = httpx.delete(users.base + "/v1/mods/shared", headers=auth(users.a["key"]), timeout=30)
    assert r.status_code == 204
    assert answer(users, users.a["key"], "shared") == "common"


def test_upload_a_folder_with_relative_and_absolute_imports(users: Users, tmp_path: Path) -> None:
    pkg = tmp_path / "bmod"
    (pkg / "helpers").mkdir(parents=True)
    (pkg / "words.py").write_text('WORD = "bee"\n')
    (pkg / "helpers" / "fmt.py").write_text("def shout(w):\n    return w.upper() + '!'\n")
    (pkg / "mod.py").write_text(
        textwrap.dedent(
            """
            from quote.sdk import mod, Prefilled
            from .words import WORD
            from bmod.helpers.fmt import shout

            @mod
            def folded(event, actions, tokenizer):
                if isinstance(event, Prefilled):
                    text = shout(WORD)
                    return actions.force_output(tokenizer.encode(text, add_special_tokens=False))
            """
        )
    )
    done = cli("upload", str(pkg), "--server", users.base, "--name", "bee", key=users.b["key"])
    assert done.returncode == 0, done.stderr
    spec = httpx.get(users.base + "/v1/mods/bee", headers=auth(users.b["key"]), timeout=30).json()
    assert spec["entrypoint"] == "bmod.mod:folded"
    assert spec["files"] == ["bmod/helpers/fmt.py", "bmod/mod.py", "bmod/words.py"]
    assert answer(users, users.b["key"], "bee") == "BEE!"
    with pytest.raises(openai.NotFoundError):
        answer(users, users.a["key"], "bee")


def test_cli_list_and_rm_on_a_server(users: Users, tmp_path: Path) -> None:
    a, b = users.a["key"], users.b["key"]
    upload_a_file(users, tmp_path, "listed_a", "la", a)
    done = cli("list", "--server", users.base, key=a)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[1:]}
    assert rows["listed_a"][2] == users.a["id"] and rows["shared"][2] == "shared"
    assert "private_b" not in rows and "bee" not in rows
    refused = cli("rm", "listed_a", "--server", users.base, key=b)
    assert refused.returncode == 1 and "404" in refused.stderr
    done = cli("rm", "listed_a", "--server", users.base, key=a)
    assert done.returncode == 0, done.stderr
    assert "listed_a" not in names(users, a)
    unreachable = cli("list", "--server", "http://127.0.0.1:9", key=a)
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr


def test_cli_upload_refusals(users: Users, tmp_path: Path) -> None:
    path = tmp_path / "refused.py"
    path.write_text(forced("refused", "no"))
    for key, status in ((None, "401"), ("wrong", "403")):
        done = cli("upload", str(path), "--server", users.base, key=key)
        assert done.returncode == 1 and status in done.stderr, done.stderr
    two = tmp_path / "two.py"
    two.write_text(forced("one", "1") + forced("two", "2"))
    done = cli("upload", str(two), "--server", users.base, key=ADMIN)
    assert done.returncode == 2 and "several mods" in done.stderr
    assert "refused" not in names(users, ADMIN)


def test_serialize_mod_payload_is_accepted(users: Users, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "serpkg").mkdir(parents=True)
    (src / "serpkg" / "__init__.py").write_text("")
    (src / "serpkg" / "consts.py").write_text('WORD = "ser"\n')
    (src / "serpkg" / "entry.py").write_text(
        forced("sermod", "{WORD}").replace('"{WORD}"', "WORD")
        + "\nfrom serpkg.consts import WORD\n"
    )
    make = (
        "import sys; sys.path.insert(0, sys.argv[1]); import serpkg.entry as e; "
        "from quote.sdk.serialize import serialize_mod; "
        "sys.stdout.write(serialize_mod(e.sermod).decode())"
    )
    payload = subprocess.run(
        [sys.executable, "-c", make, str(src)], capture_output=True, text=True, check=True
    ).stdout
    r = httpx.post(
        users.base + "/v1/mods",
        content=payload,
        headers={**auth(ADMIN), "content-type": "application/json"},
        timeout=120,
    )
    assert r.status_code == 201, r.text
    assert answer(users, users.a["key"], "sermod") == "ser"
    tampered = json.loads(payload)
    tampered["modules"]["serpkg.consts"]["source"] = 'WORD = "evil"\n'
    r = httpx.post(users.base + "/v1/mods", json=tampered, headers=auth(ADMIN), timeout=30)
    assert r.status_code == 400 and "checksum" in r.json()["error"]["message"]
    saved = tmp_path / "payload.json"
    saved.write_text(payload)
    done = cli("upload", str(saved), "--server", users.base, "--name", "ser2", key=users.a["key"])
    assert done.returncode == 0, done.stderr
    assert answer(users, users.a["key"], "ser2") == "ser"


def test_the_original_engines_bodies(users: Users, tmp_path: Path) -> None:
    b = users.base
    single = {
        "name": "orig_single",
        "language": "python",
        "module": "client_mod",
        "entrypoint": "orig",
        "source": forced("orig", "old"),
        "user_api_key": users.a["key"],  # the original CLI sends the key in the body
    }
    r = httpx.post(b + "/v1/mods", json=single, timeout=120)
    assert r.status_code == 201, r.text
    assert r.json()["owner"] == users.a["id"]
    assert answer(users, users.a["key"], "orig_single") == "old"
    bundle = {
        "name": "orig_bundle",
        "language": "python",
        "module": "tau.mod",
        "entrypoint": "bundled",
        "source": {
            "tau/mod.py": forced("bundled", "x").replace('"x"', "WORD")
            + "\nfrom tau.state import WORD\n",
            "tau/state.py": 'WORD = "state"\n',
        },
    }
    r = httpx.post(b + "/v1/mods", json=bundle, headers={"X-User-Api-Key": users.b["key"]})
    assert r.status_code == 201, r.text
    assert answer(users, users.b["key"], "orig_bundle") == "state"
    root = tmp_path / "examples" / "demo"
    root.mkdir(parents=True)
    (root / "mod.py").write_text(
        forced("ondisk", "x").replace('"x"', "WORD") + "\nfrom examples.demo.w import WORD\n"
    )
    (root / "w.py").write_text('WORD = "disk"\n')
    by_dir = {"name": "orig_dir", "module": "examples.demo.mod", "entrypoint": "ondisk"}
    for extra in ({"dir": str(root)}, {"files": [str(root / "mod.py"), str(root / "w.py")]}):
        r = httpx.post(
            b + "/v1/mods", json={**by_dir, **extra}, headers=auth(users.a["key"]), timeout=30
        )
        assert (r.status_code, r.json()["error"]["code"]) == (403, "admin_only")
        r = httpx.post(b + "/v1/mods", json={**by_dir, **extra}, headers=auth(ADMIN), timeout=120)
        assert r.status_code in (200, 201), r.text
        assert answer(users, users.b["key"], "orig_dir") == "disk"
    bad = dict(single, language="rust")
    r = httpx.post(b + "/v1/mods", json=bad, timeout=30)
    assert r.status_code == 400 and "language" in r.json()["error"]["message"]


def test_deleting_a_key_deletes_its_mods_and_access(users: Users, tmp_path: Path) -> None:
    r = httpx.post(users.base + "/v1/keys", json={"label": "temp"}, headers=auth(ADMIN))
    temp = r.json()
    upload_a_file(users, tmp_path, "temp_mod", "tmp", temp["key"])
    assert answer(users, temp["key"], "temp_mod") == "tmp"
    r = httpx.delete(users.base + f"/v1/keys/{temp['id']}", headers=auth(users.a["key"]))
    assert r.status_code == 403
    assert (
        httpx.delete(users.base + f"/v1/keys/{temp['id']}", headers=auth(ADMIN)).status_code == 204
    )
    assert (
        httpx.delete(users.base + f"/v1/keys/{temp['id']}", headers=auth(ADMIN)).status_code == 404
    )
    assert not (users.mods_dir / "_users" / temp["id"]).exists()
    with pytest.raises(openai.NotFoundError):
        answer(users, temp["key"], "temp_mod")
    body = {"name": "after", "source": forced("after", "x"), "entrypoint": "after"}
    r = httpx.post(users.base + "/v1/mods", json=body, headers=auth(temp["key"]), timeout=30)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "invalid_api_key")


def test_the_original_add_user(users: Users) -> None:
    b, chosen = users.base, "a-key-the-admin-chose-42"
    add = {"user_api_key": chosen, "admin_key": ADMIN}
    r = httpx.post(b + "/add_user", json=add, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["ok"] and not r.json()["existed"] and chosen not in r.text
    key_id = r.json()["id"]
    again = httpx.post(b + "/add_user", json=add, timeout=30).json()
    assert (again["id"], again["existed"]) == (key_id, True)
    assert httpx.post(b + "/add_user", json={"user_api_key": chosen}).status_code == 401
    r = httpx.post(b + "/add_user", json={**add, "admin_key": users.a["key"]}, timeout=30)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "invalid_api_key")
    r = httpx.post(b + "/add_user", json={**add, "user_api_key": "short"}, timeout=30)
    assert r.status_code == 400 and "at least 16" in r.json()["error"]["message"]
    body = {"name": "chosen", "module": "client_mod", "entrypoint": "c", "language": "python"}
    body |= {"source": forced("c", "picked"), "user_api_key": chosen}
    r = httpx.post(b + "/v1/mods", json=body, timeout=120)
    assert r.status_code == 201 and r.json()["owner"] == key_id, r.text
    assert answer(users, chosen, "chosen") == "picked"
    with pytest.raises(openai.NotFoundError):
        answer(users, users.a["key"], "chosen")
    assert httpx.delete(b + f"/v1/keys/{key_id}", headers=auth(ADMIN)).status_code == 204
    with pytest.raises(openai.NotFoundError):
        answer(users, chosen, "chosen")
