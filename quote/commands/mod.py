# SPDX-License-Identifier: Apache-2.0
"""``quote mod list|rm``: manage the mods persisted under a mods directory, offline.

These read and write the same directory as ``quote serve --mods-dir`` (see
:class:`quote.mods.registry.ModRegistry`); no server needs to run.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from quote.mods.registry import ModRegistry

__all__ = ["add_mod"]


def _registry(args: argparse.Namespace) -> ModRegistry:
    from quote.mods.registry import ModRegistry

    return ModRegistry(args.mods_dir)


def _cmd_list(args: argparse.Namespace) -> int:
    """Print one line per registered mod: name, version, entrypoint."""
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
        help="list or remove persisted mods (offline)",
        description="Manage the mods stored under a mods directory, without a running server.",
    )
    actions = parser.add_subparsers(dest="mod_command", metavar="ACTION", required=True)
    mods_dir = argparse.ArgumentParser(add_help=False)
    mods_dir.add_argument(
        "--mods-dir",
        default=os.environ.get("QUOTE_MODS_DIR", ".quote/mods"),
        help="the mods directory, as given to `quote serve` (default: %(default)s)",
    )
    listing = actions.add_parser(
        "list", parents=[mods_dir], help="print name, version and entrypoint of each mod"
    )
    listing.set_defaults(handler=_cmd_list)
    remove = actions.add_parser("rm", parents=[mods_dir], help="delete a registered mod")
    remove.add_argument("name", help="the mod's name")
    remove.set_defaults(handler=_cmd_rm)
