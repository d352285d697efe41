# SPDX-License-Identifier: Apache-2.0
"""Hot swap of ``execute_impl.py`` in development mode.

Each step, :meth:`HotModule.get` compares the file's ``(mtime_ns, size)`` with the
last seen (one ``stat`` call: no hashing per token). A changed file is executed as
a fresh module object; it replaces the running one only if it imports cleanly and
defines a callable ``execute``. Otherwise the previous version keeps running and
the reason is logged (and kept in :attr:`HotModule.last_error`).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from types import ModuleType

__all__ = ["HotModule", "dev_mode_enabled"]

logger = logging.getLogger(__name__)


def dev_mode_enabled() -> bool:
    """Whether ``QUOTE_RELOAD`` (or ``QUOTE_DEV``) asks for hot reloading."""
    return any(
        os.environ.get(k, "").lower() in ("1", "true", "yes") for k in ("QUOTE_RELOAD", "QUOTE_DEV")
    )


class HotModule:
    """Holds the current ``execute_impl`` module; reloads it when its file changes.

    The watched file is ``path``, else ``$QUOTE_EXECUTE_IMPL``, else the installed
    ``quote/hot/execute_impl.py``.
    """

    def __init__(
        self,
        module_name: str = "quote.hot.execute_impl",
        *,
        enabled: bool | None = None,
        path: str | None = None,
    ) -> None:
        self.module_name = module_name
        self.enabled = dev_mode_enabled() if enabled is None else enabled
        self.module: ModuleType = importlib.import_module(module_name)
        file = path or os.environ.get("QUOTE_EXECUTE_IMPL") or self.module.__file__
        assert file is not None
        self.path = file
        self.generation = 0
        self.last_error: str | None = None
        self._signature = self._stat()

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def get(self) -> ModuleType:
        """The module to run this step (reloaded first if its file changed)."""
        if self.enabled:
            sig = self._stat()
            if sig is not None and sig != self._signature:
                self._signature = sig
                self._reload()
        return self.module

    def _reload(self) -> None:
        spec = importlib.util.spec_from_file_location(self.module_name, self.path)
        if spec is None or spec.loader is None:
            self._reject(f"cannot load {self.path}")
            return
        fresh = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(fresh)
        except Exception as exc:  # noqa: BLE001 - any import-time error keeps the old version
            self._reject(f"{type(exc).__name__}: {exc}")
            return
        if not callable(getattr(fresh, "execute", None)):
            self._reject("the new file defines no callable 'execute'")
            return
        self.module = fresh
        self.generation += 1
        self.last_error = None
        logger.info("hot-swapped %s (generation %d)", self.path, self.generation)

    def _reject(self, why: str) -> None:
        self.last_error = why
        logger.error("hot swap of %s rejected, keeping the previous version: %s", self.path, why)
