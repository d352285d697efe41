# SPDX-License-Identifier: Apache-2.0
"""``quote serve``: run ``max serve`` with Quote's architecture, supervised.

Flags that ``quote serve`` does not define go to ``max serve`` unchanged. The server
runs under :func:`quote.server.supervise.supervise` (clean stops on SIGTERM/SIGINT,
no orphans, a non-zero exit when the model worker dies).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys

from quote.pipelines.encoding import cpu_encoding

__all__ = ["DEFAULT_TINY_DIR", "MAX_DRAIN_S", "add_serve", "serve_command", "serve_env"]

logger = logging.getLogger(__name__)

DEFAULT_TINY_DIR = ".quote/tiny-model"
MAX_DRAIN_S = 3
"""Default of MAX's ``MAX_SERVE_GRACEFUL_SHUTDOWN_TIMEOUT_S`` under ``quote serve``."""
_MAX_MAIN = "import sys; from max._entrypoints.pipelines import main; sys.exit(main())"

_EPILOG = """\
Any other flag is passed to `max serve` unchanged, e.g.
  quote serve --model DIR --enable-prefix-caching --max-batch-input-tokens 2048
(see `max serve --help`).

Signals and exit status: SIGTERM, SIGINT (Ctrl-C) or SIGHUP stop the server and all its
processes within 10 s (in-flight requests get 3 s, MAX_SERVE_GRACEFUL_SHUTDOWN_TIMEOUT_S;
whatever runs 8 s after the signal, or after a second signal, is killed), exit status 0.
If `max serve` exits by itself, its status is returned (128+N if signal N killed it); if
the model worker dies while the server keeps running, the server is stopped and the exit
status is 3.
"""


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
    max_args = list(getattr(args, "max_args", None) or [])
    if not any(a.split("=")[0] == "--quantization-encoding" for a in max_args):
        # A bfloat16 release on CPU runs in float32 (cast at load); MAX would refuse it.
        encoding = None if args.model is None else cpu_encoding(args.model, args.devices, None)
        if encoding is not None:
            cmd += ["--quantization-encoding", encoding]
    return cmd + max_args


def _allowed_hosts(value: str) -> str:
    hosts = [h.strip() for h in value.split(",")]
    if not all(hosts):
        raise argparse.ArgumentTypeError(f"empty host name in {value!r}")
    return ",".join(hosts)


def serve_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment of ``max serve``: this one plus Quote's settings and the interpreter pin."""
    from quote.server.interpreter import interpreter_env

    env = dict(os.environ)
    env.setdefault("MAX_SERVE_DISABLE_TELEMETRY", "1")
    # MAX drains in-flight requests for this long after SIGTERM/SIGINT (its default, 5 s,
    # plus its own teardown would not fit in quote serve's 8 s stop grace).
    env.setdefault("MAX_SERVE_GRACEFUL_SHUTDOWN_TIMEOUT_S", str(MAX_DRAIN_S))
    env["QUOTE_LOG_LEVEL"] = str(args.log_level).upper()
    if args.reload:
        env["QUOTE_RELOAD"] = "1"
    env["QUOTE_MODS_DIR"] = str(args.mods_dir)
    if args.mod:
        env["QUOTE_PRELOAD_MODS"] = ",".join(args.mod)
    if args.allowed_hosts is not None:
        env["QUOTE_ALLOWED_HOSTS"] = args.allowed_hosts
    if args.allow_image_fetch:
        env["QUOTE_ALLOW_IMAGE_FETCH"] = "1"
    # MAX's workers must run this interpreter, whatever `python3` is first on PATH.
    env.update(interpreter_env())
    return env


def _cmd_serve(args: argparse.Namespace) -> int:
    """Run ``max serve`` with Quote's architecture under supervision; the exit status."""
    from quote.server.supervise import supervise

    if args.model is None:
        from quote.tiny import write_tiny_model

        if not os.path.exists(os.path.join(DEFAULT_TINY_DIR, "config.json")):
            write_tiny_model(DEFAULT_TINY_DIR)
        args.model = DEFAULT_TINY_DIR
    cmd = serve_command(args)
    logger.info("running %s", " ".join(cmd))
    return supervise(cmd, serve_env(args))


def add_serve(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``quote serve``."""
    parser = subparsers.add_parser(
        "serve",
        help="serve a model through MAX's OpenAI-compatible server with Quote",
        description="Serve a model with `max serve` and Quote's architecture and pipeline.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # an unknown flag goes to `max serve`, never to a prefix match here
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
    parser.add_argument(
        "--allowed-hosts",
        type=_allowed_hosts,
        default=None,
        metavar="HOST[,HOST...]",
        help="comma-separated host names the server answers to (sets QUOTE_ALLOWED_HOSTS)",
    )
    parser.add_argument(
        "--allow-image-fetch",
        action="store_true",
        help="let chat requests carry http(s) image URLs, which the server downloads "
        "(default: data URLs only)",
    )
    parser.add_argument(
        "--log-level",
        default=argparse.SUPPRESS,  # absent: `quote --log-level` / $QUOTE_LOG_LEVEL decide
        help="logging level of quote serve and the server (as `quote --log-level`)",
    )
    parser.set_defaults(handler=_cmd_serve, max_args=[])
