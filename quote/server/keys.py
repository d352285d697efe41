# SPDX-License-Identifier: Apache-2.0
"""API keys for per-user mod namespaces, stored hashed in ``<mods dir>/.keys.json``.

The admin (``QUOTE_ADMIN_KEY``) creates keys with ``POST /v1/keys``; each key owns the mods
registered with it (:meth:`quote.mods.registry.ModRegistry.namespace`). A key reads
``quote_<id>_<secret>``: the ``id`` (12 hex digits) names its namespace and is what
``GET /v1/keys`` lists (a key the admin chose through the original engine's ``/add_user``
gets an id too); only the SHA-256 of the whole key is stored (keys are 256-bit random
strings, so a fast hash is enough), and it is compared in constant time. The file is
replaced atomically (written aside, fsynced, renamed) with mode 0600.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["KEYS_FILE", "KeyRecord", "KeyStore", "KeyStoreError"]

logger = logging.getLogger(__name__)

KEYS_FILE = ".keys.json"
_KEY_RE = re.compile(r"^quote_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$")
_ID_RE = re.compile(r"^[0-9a-f]{12}$")
MAX_LABEL = 200
MIN_CHOSEN_KEY = 16
"""Shortest key the admin may choose through ``/add_user`` (generated keys are 62 chars)."""


class KeyStoreError(ValueError):
    """The keys file is unreadable, or a request to the store is invalid."""


@dataclass(frozen=True)
class KeyRecord:
    """One stored key: never its plaintext."""

    id: str
    label: str
    sha256: str
    created: float

    def public(self) -> dict[str, Any]:
        """JSON form for ``GET /v1/keys`` (no hash)."""
        return {"id": self.id, "label": self.label, "created": int(self.created)}


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def valid_id(key_id: str) -> bool:
    """Whether ``key_id`` has the form of a key id (12 lowercase hex digits)."""
    return bool(_ID_RE.match(key_id))


class KeyStore:
    """The keys of one mods directory (thread-safe; re-read when the file changes)."""

    def __init__(self, mods_dir: Path | str) -> None:
        self.path = Path(mods_dir) / KEYS_FILE
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._records: dict[str, KeyRecord] = {}

    def _load(self) -> dict[str, KeyRecord]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._records = None, {}
            return self._records
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                records = {r["id"]: KeyRecord(**r) for r in data["keys"]}
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise KeyStoreError(f"unreadable keys file {self.path}: {exc}") from exc
            self._stamp, self._records = stamp, records
        return self._records

    def _save(self, records: dict[str, KeyRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"keys": [asdict(r) for r in records.values()]}, indent=1)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-keys-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._stamp = None  # re-read (and re-stamp) on next use

    def empty(self) -> bool:
        """Whether no key exists (the server then behaves as it did before keys)."""
        with self._lock:
            try:
                return not self._load()
            except KeyStoreError:
                logger.exception("treating the keys file as holding keys")
                return False

    def list(self) -> list[KeyRecord]:
        """Every key, oldest first."""
        with self._lock:
            return sorted(self._load().values(), key=lambda r: (r.created, r.id))

    def create(self, label: str = "") -> tuple[KeyRecord, str]:
        """A new key: its record and its plaintext (shown once, never stored)."""
        if not isinstance(label, str) or len(label) > MAX_LABEL:
            raise KeyStoreError(f"'label' must be a string of at most {MAX_LABEL} characters")
        with self._lock:
            records = dict(self._load())
            key_id = self._new_id(records)
            plaintext = f"quote_{key_id}_{secrets.token_urlsafe(32)}"
            record = KeyRecord(key_id, label, _digest(plaintext), time.time())
            records[key_id] = record
            self._save(records)
        logger.info("created API key %s", key_id)
        return record, plaintext

    def add(self, plaintext: str, label: str = "") -> tuple[KeyRecord, bool]:
        """Store a key the admin chose (the original engine's ``/add_user``).

        Returns the record and whether the key existed already. Chosen keys need at least
        :data:`MIN_CHOSEN_KEY` characters, no white space and no ``quote_`` prefix.
        """
        if (
            not isinstance(plaintext, str)
            or len(plaintext) < MIN_CHOSEN_KEY
            or any(c.isspace() for c in plaintext)
            or plaintext.startswith("quote_")
        ):
            raise KeyStoreError(
                f"a chosen key needs at least {MIN_CHOSEN_KEY} characters, no white space "
                "and no 'quote_' prefix"
            )
        if not isinstance(label, str) or len(label) > MAX_LABEL:
            raise KeyStoreError(f"'label' must be a string of at most {MAX_LABEL} characters")
        digest = _digest(plaintext)
        with self._lock:
            records = dict(self._load())
            for record in records.values():
                if hmac.compare_digest(record.sha256, digest):
                    return record, True
            key_id = self._new_id(records)
            records[key_id] = KeyRecord(key_id, label, digest, time.time())
            self._save(records)
        logger.info("added chosen API key %s", key_id)
        return records[key_id], False

    @staticmethod
    def _new_id(records: dict[str, KeyRecord]) -> str:
        key_id = secrets.token_hex(6)
        while key_id in records:
            key_id = secrets.token_hex(6)
        return key_id

    def delete(self, key_id: str) -> bool:
        """Remove a key; False when there is none with that id."""
        with self._lock:
            records = dict(self._load())
            if records.pop(key_id, None) is None:
                return False
            self._save(records)
        logger.info("deleted API key %s", key_id)
        return True

    def lookup(self, key: str) -> KeyRecord | None:
        """The record of a plaintext key, or None (unknown, deleted or malformed)."""
        with self._lock:
            try:
                records = self._load()
            except KeyStoreError:
                logger.exception("no user key is valid while the keys file is unreadable")
                return None
        digest = _digest(key)
        m = _KEY_RE.match(key)
        if m is not None:  # a generated key names its record
            record = records.get(m.group(1))
            return record if record and hmac.compare_digest(record.sha256, digest) else None
        for record in records.values():  # a chosen key (/add_user)
            if hmac.compare_digest(record.sha256, digest):
                return record
        return None
