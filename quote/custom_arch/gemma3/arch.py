# SPDX-License-Identifier: Apache-2.0
"""``quote_gemma3_arch``: the MAX ``SupportedArchitecture`` entry for Quote's Gemma3."""

from __future__ import annotations

from max.graph.weights import WeightsFormat
from max.pipelines.kv_cache.memory_planner import PagedMemoryPlanner
from max.pipelines.lib import SupportedArchitecture
from max.pipelines.modeling.types import PipelineTask

from quote.custom_arch.gemma3 import weight_adapters
from quote.custom_arch.gemma3.config import QuoteGemma3Config
from quote.custom_arch.gemma3.model import QuoteGemma3BatchProcessor, QuoteGemma3Model
from quote.pipelines.context import QuoteContext, QuoteTokenizer
from quote.pipelines.quote_pipeline import QuotePipeline

__all__ = ["quote_gemma3_arch"]

quote_gemma3_arch = SupportedArchitecture(
    name="Gemma3ForCausalLM",
    example_repo_ids=["google/gemma-3-1b-it"],
    default_encoding=QuoteGemma3Config.DEFAULT_ENCODING,
    supported_encodings=QuoteGemma3Config.SUPPORTED_ENCODINGS,
    pipeline_model=QuoteGemma3Model,
    batching=QuoteGemma3BatchProcessor,
    task=PipelineTask.TEXT_GENERATION,
    tokenizer=QuoteTokenizer,
    context_type=QuoteContext,
    default_weights_format=WeightsFormat.safetensors,
    multi_gpu_supported=False,
    weight_adapters={WeightsFormat.safetensors: weight_adapters.convert_safetensor_state_dict},
    config=QuoteGemma3Config,
    memory_planner=PagedMemoryPlanner,
    supports_overlap_scheduler=False,
    supports_device_graph_capture=False,
    pipeline_cls=QuotePipeline,
)
