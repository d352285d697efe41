# SPDX-License-Identifier: Apache-2.0
"""Mod loading, registry and per-request dispatch (no MAX imports)."""

from quote.mods.session import Dispatched, ModFailure, ModSession

__all__ = ["Dispatched", "ModFailure", "ModSession"]
