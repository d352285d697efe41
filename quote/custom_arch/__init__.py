# SPDX-License-Identifier: Apache-2.0
"""MAX custom architectures of Quote, for ``--custom-architectures quote.custom_arch``.

Importing this module imports MAX. ``ARCHITECTURES`` registers Quote's Gemma3 under
``Gemma3ForCausalLM`` and ``Gemma3ForConditionalGeneration`` (overriding MAX's built-ins; the
multimodal checkpoints are served text-only), with Quote's pipeline class.
"""

from quote.server.interpreter import pin_interpreter

# Before MAX spawns anything: MAX's Mojo runtime may have pointed PYTHONEXECUTABLE at the
# first `python3` on PATH, which would start the model worker outside this venv.
pin_interpreter()

from quote.custom_arch.gemma3.arch import (  # noqa: E402
    quote_gemma3_arch,
    quote_gemma3_multimodal_arch,
)
from quote.logs import configure_from_env  # noqa: E402

configure_from_env()

ARCHITECTURES = [quote_gemma3_arch, quote_gemma3_multimodal_arch]

__all__ = ["ARCHITECTURES"]

try:  # the server's routes only matter where max.serve is importable (it is, with modular)
    from quote.server import install as _install_routes

    _install_routes()
except ImportError as _exc:  # pragma: no cover - MAX without its serve extra
    import logging as _logging

    _logging.getLogger(__name__).warning("Quote's HTTP routes not installed: %s", _exc)
