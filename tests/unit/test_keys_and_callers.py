# SPDX-License-Identifier: Apache-2.0
"""User API keys (hashed store) and who a request's credential identifies."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from quote.server.auth import Caller, credential, identify, require_writer
from quote.server.keys import KeyStore, KeyStoreError
from quote.server.options import QuoteHTTPError

pytestmark = pytest.mark.unit


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / "mods")


def test_create_lookup_delete(store: KeyStore) -> None:
    assert store.empty() and store.list() == []
    record, key = store.create("alice")
    assert key.startswith(f"quote_{record.id}_") and store.lookup(key) == record
    assert store.list() == [record] and not store.empty()
    assert store.lookup(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert store.lookup("quote_000000000000_" + key.split("_", 2)[2]) is None
    assert store.lookup("not a key") is None
    assert store.delete(record.id) and not store.delete(record.id)
    assert store.lookup(key) is None and store.empty()


def test_only_the_hash_is_stored_atomically(store: KeyStore) -> None:
    _, key = store.create("x")
    text = store.path.read_text()
    assert key not in text and hashlib.sha256(key.encode()).hexdigest() in text
    assert oct(store.path.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in store.path.parent.iterdir()] == [".keys.json"]  # no temp left


def test_another_process_s_writes_are_seen(store: KeyStore) -> None:
    other = KeyStore(store.path.parent)
    record, key = other.create("from elsewhere")
    assert store.lookup(key) == record
    other.delete(record.id)
    assert store.lookup(key) is None


def test_concurrent_creates_keep_every_key(store: KeyStore) -> None:
    keys: list[str] = []
    threads = [threading.Thread(target=lambda: keys.append(store.create()[1])) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.list()) == 16 and all(store.lookup(k) for k in keys)


def test_a_corrupt_file_fails_closed(store: KeyStore) -> None:
    _, key = store.create()
    store.path.write_text("{broken")
    assert store.lookup(key) is None
    assert not store.empty()  # writes then need a valid key: 401/403, not "disabled"
    with pytest.raises(KeyStoreError, match="unreadable"):
        store.list()


def test_labels_are_checked(store: KeyStore) -> None:
    with pytest.raises(KeyStoreError):
        store.create("x" * 201)
    assert not store.path.exists()


def test_chosen_keys_of_add_user(store: KeyStore) -> None:
    record, existed = store.add("chosen-by-the-admin-1", "old")
    assert not existed and store.lookup("chosen-by-the-admin-1") == record
    assert store.add("chosen-by-the-admin-1") == (record, True)
    generated, key = store.create()
    assert store.lookup(key) == generated and store.lookup("chosen-by-the-admin-2") is None
    for bad in ("short", "has white space in it", "quote_looks_generated_0000"):
        with pytest.raises(KeyStoreError, match="at least 16"):
            store.add(bad)
    assert "chosen-by-the-admin-1" not in store.path.read_text()
    assert store.delete(record.id) and store.lookup("chosen-by-the-admin-1") is None


def test_credential_sources() -> None:
    assert credential({"authorization": "Bearer  k1 "}) == "k1"
    assert credential({"x-user-api-key": "k2"}) == "k2"
    assert credential({"authorization": "Basic x", "x-user-api-key": "k3"}) == "k3"
    assert credential({"authorization": "Bearer "}) is None and credential({}) is None


def test_identify(store: KeyStore, monkeypatch: pytest.MonkeyPatch) -> None:
    record, key = store.create()
    monkeypatch.setenv("QUOTE_ADMIN_KEY", "adm")
    assert identify({"authorization": "Bearer adm"}, store) == Caller("admin")
    assert identify({"authorization": f"Bearer {key}"}, store) == Caller("user", record.id)
    assert identify({}, store, fallback=key) == Caller("user", record.id)
    assert identify({}, store) == Caller("anonymous")
    assert identify({"authorization": "Bearer sk-x"}, store) == Caller("anonymous", presented=True)
    monkeypatch.delenv("QUOTE_ADMIN_KEY")
    assert identify({"authorization": "Bearer adm"}, store).kind == "anonymous"


@pytest.mark.parametrize(
    ("admin", "with_key", "caller", "status", "code"),
    [
        (False, False, Caller("anonymous", presented=True), 403, "registration_disabled"),
        (False, False, Caller("anonymous"), 403, "registration_disabled"),
        (True, False, Caller("anonymous"), 401, None),
        (True, False, Caller("anonymous", presented=True), 403, "invalid_api_key"),
        (False, True, Caller("anonymous"), 401, None),
        (False, True, Caller("anonymous", presented=True), 403, "invalid_api_key"),
    ],
)
def test_require_writer_refusals(
    store: KeyStore,
    monkeypatch: pytest.MonkeyPatch,
    admin: bool,
    with_key: bool,
    caller: Caller,
    status: int,
    code: str | None,
) -> None:
    if admin:
        monkeypatch.setenv("QUOTE_ADMIN_KEY", "adm")
    else:
        monkeypatch.delenv("QUOTE_ADMIN_KEY", raising=False)
    if with_key:
        store.create()
    with pytest.raises(QuoteHTTPError) as exc:
        require_writer(caller, store)
    assert (exc.value.status, exc.value.code) == (status, code)


def test_require_writer_admits_admin_and_users(store: KeyStore) -> None:
    require_writer(Caller("admin"), store)
    require_writer(Caller("user", "abc"), store)
