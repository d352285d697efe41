# SPDX-License-Identifier: Apache-2.0
"""``quote mod upload|list|rm``: manage mods on a server, or offline in a mods directory.

``upload`` always talks to a server (``--server``, default ``http://127.0.0.1:8000``; see
:mod:`quote.commands.mod_remote`). ``list`` and ``rm`` do too when given ``--server``;
without it they read and write the same directory as ``quote serve --mods-dir`` (see
:class:`quote.mods.registry.ModRegistry`, shared mods only), and no server needs to run.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from quote.commands import mod_remote

if TYPE_CHECKING:
    from quote.mods.registry import ModRegistry

__all__ = ["add_mod"]


def _registry(args: argparse.Namespace) -> ModRegistry:
    from quote.mods.registry import ModRegistry

    return ModRegistry(args.mods_dir)


def _cmd_list(args: argparse.Namespace) -> int:
    """Print one line per registered mod: name, version, entrypoint."""
    if args.server:
        return mod_remote.remote_list(args)
    specs = _registry(args).list()
    if not specs:
        print(f"no mods in {args.mods_dir}", file=sys.stderr)
        return 0
    rows = [("NAME", "VERSION", "ENTRYPOINT")] + [(s.name, s.version, s.entrypoint) for s in specs]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for name, version, entry in rows:
        print(f"{name:<{widths[0]}}  {version:<{widths[1]}}  {entry}")
    return 0


def _cmd_rm(args: argparse.Namespace) -> int:
    """Delete a registered mod; exit status 1 when there is none of that name."""
    if args.server:
        return mod_remote.remote_rm(args)
    if not _registry(args).delete(args.name):
        print(
            f"quote mod rm: error: no mod named {args.name!r} in {args.mods_dir}", file=sys.stderr
        )
        return 1
    print(f"removed {args.name}")
    return 0


def add_mod(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``quote mod`` with its ``list`` and ``rm`` subcommands."""
    parser = subparsers.add_parser(
        "mod",
        help="upload, list or remove mods (on a server, or offline in a mods directory)",
        description="Upload mods to a running server; list or remove them there (--server) "
        "or in a mods directory, without a running server.",
    )
    actions = parser.add_subparsers(dest="mod_command", metavar="ACTION", required=True)
    mods_dir = argparse.ArgumentParser(add_help=False)
    mods_dir.add_argument(
        "--mods-dir",
        default=os.environ.get("QUOTE_MODS_DIR", ".quote/mods"),
        help="the mods directory, as given to `quote serve` (default: %(default)s)",
    )
    mods_dir.add_argument(
        "--server", default=None, metavar="URL", help="manage the mods of this server instead"
    )
    mods_dir.add_argument(
        "--key",
        default=None,
        help="API key for --server (default: $QUOTE_API_KEY, else " "$QUOTE_ADMIN_KEY)",
    )
    listing = actions.add_parser(
        "list", parents=[mods_dir], help="print name, version and entrypoint of each mod"
    )
    listing.set_defaults(handler=_cmd_list)
    remove = actions.add_parser("rm", parents=[mods_dir], help="delete a registered mod")
    remove.add_argument("name", help="the mod's name")
    remove.set_defaults(handler=_cmd_rm)
    _add_upload(actions)


def _add_upload(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    upload = actions.add_parser(
        "upload",
        help="register a mod file, folder or saved payload on a server",
        description="Register (or replace) a mod on a running server. PATH is a .py file, "
        "a folder (entry module mod.py, main.py or __init__.py) or a .json payload from "
        "quote.sdk.serialize_mod.",
    )
    upload.add_argument("path", help="the mod's .py file, folder or .json payload")
    upload.add_argument("--name", default=None, help="mod name (default: the entrypoint's)")
    upload.add_argument(
        "--entrypoint",
        default=None,
        metavar="[MODULE:]ATTR",
        help="the mod object (default: the one @mod function or Mod subclass found)",
    )
    upload.add_argument("--description", default=None, help="a line shown in listings")
    mod_remote.add_remote_flags(upload, server_default=mod_remote.DEFAULT_SERVER)
    upload.set_defaults(handler=mod_remote.upload)
