# SPDX-License-Identifier: Apache-2.0
"""Which encoding Quote's Gemma3 runs a checkpoint in, decided before MAX resolves it.

Released Gemma 3 checkpoints are bfloat16, and MAX runs bfloat16 on GPU only. Left to itself,
MAX 26.7 resolves a bfloat16-only checkpoint on CPU to the architecture's default (float32),
then finds no float32 weight files and stops ("compatible weights cannot be found for
'float32'"): it records a bfloat16 -> float32 cast only when float32 is asked for explicitly.
:func:`cpu_encoding` says when to ask: Quote's architecture on CPU with no encoding given.
The weights are then cast at load by Quote's weight adapter.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

__all__ = ["QUOTE_ARCHITECTURES", "checkpoint_architecture", "cpu_encoding"]

logger = logging.getLogger(__name__)

QUOTE_ARCHITECTURES = ("Gemma3ForCausalLM", "Gemma3ForConditionalGeneration")
"""``config.json`` architecture names that Quote's architecture serves."""


def checkpoint_architecture(model_path: str | Path) -> str | None:
    """``architectures[0]`` of a local checkpoint's ``config.json``; ``None`` if unknown."""
    config = Path(model_path) / "config.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    names = data.get("architectures") if isinstance(data, dict) else None
    if isinstance(names, list) and names and isinstance(names[0], str):
        return names[0]
    return None


def cpu_encoding(model_path: str | Path, devices: str, given: str | None) -> str | None:
    """The encoding to ask MAX for: ``"float32"`` on CPU for Quote's architecture, else ``given``.

    ``given`` (the caller's own choice) always wins; GPU runs and checkpoints of other
    architectures keep MAX's own resolution (``None``).
    """
    if given is not None:
        return given
    if devices.strip().lower() != "cpu":
        return None
    if checkpoint_architecture(model_path) not in QUOTE_ARCHITECTURES:
        return None
    logger.debug("CPU run of %s: float32 (bfloat16 weights are cast at load)", model_path)
    return "float32"
