# SPDX-License-Identifier: Apache-2.0
"""Keep MAX's processes on the Python interpreter that runs Quote.

MAX's Mojo runtime looks for ``libpython`` the first time Mojo code with Python interop
loads (``max._kv_cache_ops``, imported by ``max serve`` before any custom
architecture). Unless ``MOJO_PYTHON_LIBRARY`` is set, it runs ``$MOJO_PYTHON`` or else the
first ``python3`` on ``PATH``, and then writes ``MOJO_PYTHON_LIBRARY`` and
``PYTHONEXECUTABLE`` into the process's C environment. CPython honours
``PYTHONEXECUTABLE`` when computing ``sys.prefix``, so every process spawned after
that (MAX's model worker, ``multiprocessing``'s resource tracker) starts with the
prefix of *that* ``python3``, not of the virtual environment: without the venv on
``PATH`` the worker fails with ``No module named 'quote'`` (or earlier, importing the
standard library of a different Python build).

:func:`interpreter_env` gives the variables that pin the choice to this interpreter
(``quote serve`` sets them for ``max serve``); :func:`pin_interpreter` repairs the
environment of a process in which MAX already chose (``quote.custom_arch`` calls it
when ``max serve --custom-architectures quote.custom_arch`` imports it).
"""

from __future__ import annotations

import logging
import os
import sys
import sysconfig
from pathlib import Path

__all__ = ["interpreter_env", "libpython", "pin_interpreter"]

logger = logging.getLogger(__name__)


def libpython() -> str | None:
    """The shared ``libpython`` this interpreter runs on, or None (a static build)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        maps = ""
    for line in maps.splitlines():
        path = line.rsplit(" ", 1)[-1]
        if "/libpython3" in path and ".so" in path:
            return path
    libdir = sysconfig.get_config_var("LIBDIR")
    name = sysconfig.get_config_var("INSTSONAME") or sysconfig.get_config_var("LDLIBRARY")
    if libdir and name and ".so" in str(name):
        candidate = Path(str(libdir)) / str(name)
        if candidate.exists():
            return str(candidate.resolve())
    return None


def interpreter_env() -> dict[str, str]:
    """``MOJO_PYTHON``, ``MOJO_PYTHON_LIBRARY`` and ``PYTHONEXECUTABLE`` for this interpreter."""
    if not sys.executable:  # embedded interpreters may not know their executable
        return {}
    env = {"MOJO_PYTHON": sys.executable, "PYTHONEXECUTABLE": sys.executable}
    lib = libpython()
    if lib is not None:
        env["MOJO_PYTHON_LIBRARY"] = lib
    return env


def pin_interpreter() -> dict[str, str]:
    """Set :func:`interpreter_env` in this process's environment; return what changed.

    Variables present in ``os.environ`` (set before Python started, by the user or by
    ``quote serve``) are kept. Others are set even if MAX's native code already wrote
    them into the C environment (``os.environ`` does not see such writes), so processes
    spawned from here on run this interpreter with its own ``sys.prefix``.
    """
    changed = {k: v for k, v in interpreter_env().items() if k not in os.environ}
    for key, value in changed.items():
        os.environ[key] = value
    if changed:
        logger.debug("pinned the interpreter for child processes: %s", changed)
    return changed
