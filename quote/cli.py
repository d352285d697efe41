# SPDX-License-Identifier: Apache-2.0
"""The ``quote`` command line.

Subcommands:

- ``quote tiny-model DIR [--variant NAME] [--seed N] [--layout causal|multimodal|multimodal-v5]``:
  write the embedded tiny Gemma3 checkpoint.
- ``quote serve [--model PATH] [--devices cpu] [--host H] [--port P] [--mods-dir DIR]
  [--mod MODULE:ATTR] [--allowed-hosts H1,H2] [--reload] [MAX FLAGS...]``: serve a model
  through MAX's OpenAI-compatible server with Quote's architecture and pipeline
  (``max serve --custom-architectures quote.custom_arch``, supervised; other flags go to
  ``max serve``). Without ``--model`` it serves the embedded tiny model, building it under
  ``.quote/tiny-model`` first if missing. See :mod:`quote.commands.serve`.
- ``quote mod upload PATH [--name N] [--entrypoint E] [--server URL]``: register a mod file,
  folder or ``serialize_mod`` payload on a server; ``quote mod list|rm NAME [--mods-dir DIR |
  --server URL]``: manage mods offline or on a server. See :mod:`quote.commands.mod`.

``python -m quote`` runs the same command line.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from quote.commands.mod import add_mod
from quote.commands.serve import DEFAULT_TINY_DIR, add_serve, serve_command

__all__ = ["DEFAULT_TINY_DIR", "build_parser", "main", "serve_command"]

logger = logging.getLogger(__name__)

_Handler = Callable[[argparse.Namespace], int]


_TINY_LAYOUTS = {"causal": None, "multimodal": "v4", "multimodal-v5": "v5"}
"""``--layout`` choices: ``Gemma3ForCausalLM``, or ``Gemma3ForConditionalGeneration`` with the
weight names of the released checkpoints (transformers 4.x) or of transformers 5.x."""


def _cmd_tiny_model(args: argparse.Namespace) -> int:
    """Write the tiny Gemma3 checkpoint into ``args.dir`` and print its path."""
    from quote.tiny import write_tiny_model
    from quote.tiny.multimodal import write_tiny_multimodal_model

    names = _TINY_LAYOUTS[args.layout]
    if names is None:
        path = write_tiny_model(args.dir, variant=args.variant, seed=args.seed)
    else:
        path = write_tiny_multimodal_model(
            args.dir, variant=args.variant, seed=args.seed, layout=names
        )
    print(path)
    return 0


def _add_tiny_model(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from quote.tiny import VARIANTS

    parser = subparsers.add_parser(
        "tiny-model",
        help="write the embedded tiny Gemma3 checkpoint (no downloads)",
        description="Write a deterministic tiny Gemma3 checkpoint in Hugging Face layout.",
    )
    parser.add_argument("dir", help="output directory (created if missing)")
    parser.add_argument(
        "--variant",
        default="default",
        choices=sorted(VARIANTS),
        help="model shape (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="weight seed (default: %(default)s)")
    parser.add_argument(
        "--layout",
        default="causal",
        choices=list(_TINY_LAYOUTS),
        help="checkpoint layout: causal (Gemma3ForCausalLM, as gemma-3-1b), multimodal "
        "(Gemma3ForConditionalGeneration as gemma-3-4b/12b/27b are released, with a tiny "
        "vision tower) or multimodal-v5 (the same, transformers 5 weight names) "
        "(default: %(default)s)",
    )
    parser.set_defaults(handler=_cmd_tiny_model)


def build_parser() -> argparse.ArgumentParser:
    """Return the ``quote`` argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="quote", description="Quote: steer an LLM with Python mods."
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("QUOTE_LOG_LEVEL", "WARNING"),
        help="logging level (default: $QUOTE_LOG_LEVEL or WARNING)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_tiny_model(subparsers)
    add_serve(subparsers)
    add_mod(subparsers)
    # Further subcommands register here: one ``add_<name>(subparsers)`` function each (in
    # ``quote/commands/`` when it is more than a few lines), which sets ``handler`` to a
    # ``(argparse.Namespace) -> int`` function.
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``quote`` command line and return its exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if args.command != "serve":
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.max_args = extra  # `quote serve` passes flags it does not define to `max serve`
    level = str(args.log_level).upper()
    if not isinstance(logging.getLevelName(level), int):
        parser.error(f"unknown log level: {args.log_level}")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler: _Handler = args.handler
    try:
        return handler(args)
    except ValueError as exc:
        logger.debug("command failed", exc_info=True)
        print(f"quote {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
