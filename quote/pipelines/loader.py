# SPDX-License-Identifier: Apache-2.0
"""Build a MAX text-generation pipeline in-process with Quote's architecture.

This is what ``max generate`` does internally, made reusable for tests,
benchmarks and the offline engine: the architecture registers through MAX's
own ``--custom-architectures`` mechanism (``quote.custom_arch``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LoadedPipeline", "load_pipeline"]

logger = logging.getLogger(__name__)


@dataclass
class LoadedPipeline:
    """A compiled pipeline with its tokenizer and config.

    Attributes:
        pipeline: The MAX pipeline (``QuotePipeline`` unless ``stock=True``).
        tokenizer: MAX's ``TextTokenizer`` (``.delegate`` is the Hugging Face tokenizer).
        config: The resolved ``PipelineConfig``.
    """

    pipeline: Any
    tokenizer: Any
    config: Any

    @property
    def kv_manager(self) -> Any:
        """The pipeline's KV cache manager."""
        return self.pipeline.kv_manager

    @property
    def hf_tokenizer(self) -> Any:
        """The Hugging Face tokenizer behind MAX's tokenizer."""
        return self.tokenizer.delegate


def load_pipeline(
    model_path: str | Path,
    *,
    devices: str = "cpu",
    max_batch_size: int = 16,
    max_length: int = 4096,
    enable_prefix_caching: bool = False,
    stock: bool = False,
    **extra: Any,
) -> LoadedPipeline:
    """Compile and load a pipeline for ``model_path`` on ``devices``.

    Args:
        model_path: A local Hugging Face checkpoint directory (or hub id where reachable).
        devices: MAX device spec string: ``"cpu"`` or ``"gpu"`` / ``"gpu:0"``.
        max_batch_size: Most requests per step.
        max_length: Most tokens per request (prompt + completion).
        enable_prefix_caching: MAX's prefix cache (Quote's rewinds are exact either way).
        stock: Use MAX's stock ``TextGenerationPipeline`` instead of ``QuotePipeline``
            (for baselines in benchmarks and tests).
        **extra: Further flat ``PipelineArgs`` fields. Without ``quantization_encoding``,
            Quote's Gemma3 runs in float32 on CPU (bfloat16 checkpoints are cast at load).
    """
    from max.pipelines.lib import PIPELINE_REGISTRY, PipelineConfig
    from max.pipelines.lib.pipeline_args import PipelineArgs

    import quote.custom_arch as custom_arch
    from quote.pipelines.encoding import cpu_encoding

    encoding = cpu_encoding(model_path, devices, extra.pop("quantization_encoding", None))
    if encoding is not None:
        extra["quantization_encoding"] = encoding
    for arch in custom_arch.ARCHITECTURES:
        if stock:
            arch = _without_pipeline_cls(arch)
        PIPELINE_REGISTRY.register(arch, allow_override=True)
    args = PipelineArgs.from_flat_kwargs(
        model_path=str(model_path),
        device_specs=devices,
        max_batch_size=max_batch_size,
        max_length=max_length,
        enable_prefix_caching=enable_prefix_caching,
        device_graph_capture=False,
        **extra,
    )
    config = PipelineConfig.from_args(args)
    retrieved = PIPELINE_REGISTRY.retrieve_factory(config)
    pipeline = retrieved.factory()
    logger.info("loaded %s on %s (%s)", model_path, devices, type(pipeline).__name__)
    return LoadedPipeline(pipeline=pipeline, tokenizer=retrieved.tokenizer, config=config)


def _without_pipeline_cls(arch: Any) -> Any:
    import dataclasses

    return dataclasses.replace(arch, pipeline_cls=None)
