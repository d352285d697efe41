# SPDX-License-Identifier: Apache-2.0
"""``quote mod upload|list|rm`` against a running server (``--server URL``), over httpx.

The key is ``--key``, else ``$QUOTE_API_KEY``, else ``$QUOTE_ADMIN_KEY``: the admin key
manages the shared mods, a user key (``POST /v1/keys``) its own. Exit status 0 on success,
1 when the server refuses (its error message is printed) or cannot be reached, 2 for a path
that cannot be made into a mod.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from quote.commands.mod_bundle import BundleError, build_body

__all__ = [
    "DEFAULT_SERVER",
    "MAX_UPLOAD_BYTES",
    "add_remote_flags",
    "remote_list",
    "remote_rm",
    "upload",
]

logger = logging.getLogger(__name__)

DEFAULT_SERVER = "http://127.0.0.1:8000"
MAX_UPLOAD_BYTES = 256 * 1024
"""The server's limit on a registration body (:data:`quote.server.admin.MAX_MOD_BYTES`)."""
TIMEOUT_S = 180.0
"""Registration imports the mod in a check process on the server: allow for it."""


def add_remote_flags(parser: argparse.ArgumentParser, *, server_default: str | None) -> None:
    """``--server`` and ``--key`` (``server_default`` None: offline unless ``--server``)."""
    parser.add_argument(
        "--server",
        default=server_default,
        metavar="URL",
        help="the server's base URL" + (f" (default: {server_default})" if server_default else ""),
    )
    parser.add_argument(
        "--key",
        default=None,
        help="API key (default: $QUOTE_API_KEY, else $QUOTE_ADMIN_KEY)",
    )


def _key(args: argparse.Namespace) -> str | None:
    key = args.key or os.environ.get("QUOTE_API_KEY") or os.environ.get("QUOTE_ADMIN_KEY")
    return key or None


def _call(
    args: argparse.Namespace, method: str, path: str, body: Any = None
) -> httpx.Response | None:
    """The server's response, or None (after printing why) when it cannot be reached."""
    key = _key(args)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    url = str(args.server).rstrip("/") + path
    try:
        return httpx.request(method, url, json=body, headers=headers, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        print(f"quote mod: error: cannot reach {url}: {exc}", file=sys.stderr)
        return None


def _refused(response: httpx.Response) -> int:
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:500]
    print(
        f"quote mod: error: the server answered {response.status_code}: {message}", file=sys.stderr
    )
    return 1


def upload(args: argparse.Namespace) -> int:
    """Register the mod at ``args.path`` on ``args.server``."""
    try:
        body = build_body(
            Path(args.path),
            name=args.name,
            entrypoint=args.entrypoint,
            description=args.description,
        )
    except BundleError as exc:
        print(f"quote mod upload: error: {exc}", file=sys.stderr)
        return 2
    size = len(json.dumps(body).encode())
    if size > MAX_UPLOAD_BYTES:
        print(
            f"quote mod upload: error: the mod is {size} bytes as JSON; "
            f"the server accepts at most {MAX_UPLOAD_BYTES}",
            file=sys.stderr,
        )
        return 2
    response = _call(args, "POST", "/v1/mods", body)
    if response is None:
        return 1
    if response.status_code not in (200, 201):
        return _refused(response)
    spec = response.json()
    verb = "registered" if response.status_code == 201 else "replaced"
    where = f" (key {spec['owner']})" if spec.get("owner") else " (shared)"
    print(f"{verb} {spec['name']}{where}: use model '<served model>/{spec['name']}'")
    return 0


def remote_list(args: argparse.Namespace) -> int:
    """Print the mods the key sees on the server: name, version, entrypoint, owner."""
    response = _call(args, "GET", "/v1/mods")
    if response is None:
        return 1
    if response.status_code != 200:
        return _refused(response)
    data = response.json()["data"]
    rows = [("NAME", "VERSION", "OWNER", "ENTRYPOINT")]
    rows += [(m["name"], m["version"], m.get("owner") or "shared", m["entrypoint"]) for m in data]
    widths = [max(len(str(row[i])) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(f"{row[i]:<{widths[i]}}" for i in range(3)) + f"  {row[3]}")
    return 0


def remote_rm(args: argparse.Namespace) -> int:
    """Delete a mod on the server (the admin key: a shared one; a user key: its own)."""
    response = _call(args, "DELETE", f"/v1/mods/{quote(args.name, safe='')}")
    if response is None:
        return 1
    if response.status_code != 204:
        return _refused(response)
    print(f"removed {args.name}")
    return 0
