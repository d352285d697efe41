# SPDX-License-Identifier: Apache-2.0
"""MAX custom architectures of Quote, for ``--custom-architectures quote.custom_arch``.

Importing this module imports MAX. ``ARCHITECTURES`` registers Quote's Gemma3 under
``Gemma3ForCausalLM`` (overriding MAX's built-in), with Quote's pipeline class.
"""

from quote.custom_arch.gemma3.arch import quote_gemma3_arch

ARCHITECTURES = [quote_gemma3_arch]

__all__ = ["ARCHITECTURES"]
