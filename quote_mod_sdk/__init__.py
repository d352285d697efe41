# SPDX-License-Identifier: Apache-2.0
"""``quote_mod_sdk``: the original engine's SDK name, as a thin alias of Quote's compatibility layer.

Mods written for the original engine (``from quote_mod_sdk import mod, Prefilled, ...``)
run on Quote unchanged; each one warns once that it should be ported to
:mod:`quote.sdk`. Everything here is :mod:`quote.sdk.compat`; see
``docs/guides/migrating.md`` for the mapping table.
"""

import importlib

# Load the ``quote_mod_sdk.mod`` submodule first: importing it later would rebind the package's
# ``mod`` attribute to the module, shadowing the ``mod`` decorator re-exported below.
importlib.import_module("quote_mod_sdk.mod")

from quote.sdk.compat import *  # noqa: E402, F403
from quote.sdk.compat import __all__ as __all__  # noqa: E402
