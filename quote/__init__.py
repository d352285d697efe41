# SPDX-License-Identifier: Apache-2.0
"""Quote: steer an LLM token by token with Python mods, served through MAX.

Importing :mod:`quote` does not import MAX; the SDK (:mod:`quote.sdk`) is pure Python.
"""

from quote._version import __version__

__all__ = ["__version__"]
