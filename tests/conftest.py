# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures: tiny checkpoints and one compiled MAX pipeline per configuration per session.

Tests marked ``integration`` drive the real MAX pipeline on CPU (float32). The first
compile of a graph takes ~1.5 min and is cached in ``~/.cache/modular``; fixtures here
are session-scoped so each configuration compiles at most once per run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

os.environ.setdefault("MAX_SERVE_DISABLE_TELEMETRY", "1")

# Property tests are derandomized so CI is reproducible; HYPOTHESIS_PROFILE=explore searches anew.
settings.register_profile("quote", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quote"))


@pytest.fixture(scope="session")
def tiny_model_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``make(variant)`` -> directory of that tiny checkpoint (written once per session)."""
    from quote.tiny import write_tiny_model

    cache: dict[str, Path] = {}

    def make(variant: str = "default") -> Path:
        if variant not in cache:
            cache[variant] = write_tiny_model(
                tmp_path_factory.mktemp(f"tiny-{variant}"), variant=variant
            )
        return cache[variant]

    return make


@pytest.fixture(scope="session")
def tiny_model(tiny_model_factory: Callable[[str], Path]) -> Path:
    """The default tiny checkpoint."""
    return tiny_model_factory("default")


@pytest.fixture(scope="session")
def pipeline_factory(tiny_model_factory: Callable[[str], Path]) -> Iterator[Callable[..., Any]]:
    """``load(variant, stock=False, prefix_caching=False, echo=False)`` -> a cached
    ``LoadedPipeline`` (``echo``: MAX's ``enable_echo``, logits for every position)."""
    from quote.pipelines.loader import load_pipeline

    cache: dict[tuple[str, bool, bool, bool], Any] = {}

    def load(
        variant: str = "default",
        *,
        stock: bool = False,
        prefix_caching: bool = False,
        echo: bool = False,
    ) -> Any:
        key = (variant, stock, prefix_caching, echo)
        if key not in cache:
            extra = {"enable_echo": True} if echo else {}
            cache[key] = load_pipeline(
                tiny_model_factory(variant),
                stock=stock,
                enable_prefix_caching=prefix_caching,
                max_batch_size=16,
                max_length=2048,
                **extra,
            )
        return cache[key]

    yield load
    cache.clear()
