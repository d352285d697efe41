# SPDX-License-Identifier: Apache-2.0
"""``quote_mod_sdk.self_prompt``: not provided by the compatibility layer (importing it fails with a pointer)."""

raise ImportError(
    "quote_mod_sdk.self_prompt is not provided by Quote's compatibility layer: port the mod to "
    "quote.sdk.flow, quote.sdk.selfprompt and quote.sdk.strategies "
    "(see docs/guides/migrating.md)"
)
