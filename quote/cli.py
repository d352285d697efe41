# SPDX-License-Identifier: Apache-2.0
"""The ``quote`` command line.

Subcommands:

- ``quote tiny-model DIR [--variant NAME] [--seed N]``: write the embedded tiny Gemma3 checkpoint.
- ``quote serve [--model PATH] [--devices cpu] [--host H] [--port P] [--mods-dir DIR]
  [--mod MODULE:ATTR] [--reload]``: serve a model
  through MAX's OpenAI-compatible server with Quote's architecture and pipeline
  (``max serve --custom-architectures quote.custom_arch``). Without ``--model`` it serves the
  embedded tiny model, building it under ``.quote/tiny-model`` first if missing.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from collections.abc import Callable, Sequence

__all__ = ["build_parser", "main"]

logger = logging.getLogger(__name__)

_Handler = Callable[[argparse.Namespace], int]


def _cmd_tiny_model(args: argparse.Namespace) -> int:
    """Write the tiny Gemma3 checkpoint into ``args.dir`` and print its path."""
    from quote.tiny import write_tiny_model

    path = write_tiny_model(args.dir, variant=args.variant, seed=args.seed)
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
    parser.set_defaults(handler=_cmd_tiny_model)


DEFAULT_TINY_DIR = ".quote/tiny-model"
_MAX_MAIN = "import sys; from max._entrypoints.pipelines import main; sys.exit(main())"


def serve_command(args: argparse.Namespace) -> list[str]:
    """The ``max serve`` command line that ``quote serve`` runs."""
    max_bin = os.path.join(os.path.dirname(sys.executable), "max")
    if os.path.exists(max_bin):
        cmd = [max_bin]
    elif shutil.which("max"):
        cmd = ["max"]
    else:  # MAX installed without its console script (e.g. ``pip install --target``)
        cmd = [sys.executable, "-c", _MAX_MAIN]
    cmd += ["serve", "--custom-architectures", "quote.custom_arch"]
    cmd += ["--model-path", str(args.model), "--devices", args.devices]
    cmd += ["--host", args.host, "--port", str(args.port), "--max-length", str(args.max_length)]
    if args.max_batch_size is not None:
        cmd += ["--max-batch-size", str(args.max_batch_size)]
    return cmd


def _cmd_serve(args: argparse.Namespace) -> int:
    """Run ``max serve`` with Quote's architecture; returns its exit status."""
    import subprocess

    if args.model is None:
        from quote.tiny import write_tiny_model

        if not os.path.exists(os.path.join(DEFAULT_TINY_DIR, "config.json")):
            write_tiny_model(DEFAULT_TINY_DIR)
        args.model = DEFAULT_TINY_DIR
    env = dict(os.environ)
    env.setdefault("MAX_SERVE_DISABLE_TELEMETRY", "1")
    env["QUOTE_LOG_LEVEL"] = str(args.log_level).upper()
    if args.reload:
        env["QUOTE_RELOAD"] = "1"
    env["QUOTE_MODS_DIR"] = str(args.mods_dir)
    if args.mod:
        env["QUOTE_PRELOAD_MODS"] = ",".join(args.mod)
    cmd = serve_command(args)
    logger.info("running %s", " ".join(cmd))
    return subprocess.call(cmd, env=env)


def _add_serve(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve a model through MAX's OpenAI-compatible server with Quote",
        description="Serve a model with `max serve` and Quote's architecture and pipeline.",
    )
    parser.add_argument("--model", default=None, help="checkpoint directory (default: tiny model)")
    parser.add_argument("--devices", default="cpu", help="MAX devices (default: %(default)s)")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    parser.add_argument("--max-length", type=int, default=4096, help="max tokens per request")
    parser.add_argument(
        "--max-batch-size",
        type=int,
        default=None,
        help="most requests per batch (default: MAX's, which is 1 on CPU: concurrent "
        "requests then queue; pass e.g. 16 to batch them)",
    )
    parser.add_argument(
        "--reload", action="store_true", help="development: hot-swap quote/hot/execute_impl.py"
    )
    parser.add_argument(
        "--mods-dir",
        default=os.environ.get("QUOTE_MODS_DIR", ".quote/mods"),
        help="where registered mods are stored (default: %(default)s)",
    )
    parser.add_argument(
        "--mod",
        action="append",
        default=[],
        metavar="MODULE:ATTR",
        help="preload a mod from an importable module (repeatable)",
    )
    parser.set_defaults(handler=_cmd_serve)


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
    _add_serve(subparsers)
    # ----------------------------------------------------------------------------------------
    # Further subcommands (e.g. ``serve``) register here: one ``_add_<name>(subparsers)``
    # function each, which sets ``handler`` to a ``(argparse.Namespace) -> int`` function.
    # ----------------------------------------------------------------------------------------
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``quote`` command line and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
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
