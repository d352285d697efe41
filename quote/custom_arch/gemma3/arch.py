# SPDX-License-Identifier: Apache-2.0
"""The MAX ``SupportedArchitecture`` entries of Quote's Gemma3.

``quote_gemma3_arch`` registers under ``Gemma3ForCausalLM`` (gemma-3-270m, gemma-3-1b);
``quote_gemma3_multimodal_arch`` under ``Gemma3ForConditionalGeneration`` (gemma-3-4b, 12b,
27b), replacing MAX's multimodal pipeline with Quote's: the same language model and pipeline,
plus the vision graph and MAX's text-and-vision tokenizer (the checkpoint's own processor) for
images in prompts. An image's soft tokens must run in one forward pass, so that architecture
turns chunked prefill off (as MAX's own multimodal Gemma 3 does).
"""

from __future__ import annotations

import dataclasses

from max.graph.weights import WeightsFormat
from max.pipelines.kv_cache.memory_planner import PagedMemoryPlanner
from max.pipelines.lib import SupportedArchitecture
from max.pipelines.modeling.types import InputModality, PipelineTask

from quote.custom_arch.gemma3 import weight_adapters
from quote.custom_arch.gemma3.config import QuoteGemma3Config
from quote.custom_arch.gemma3.model import QuoteGemma3BatchProcessor, QuoteGemma3Model
from quote.custom_arch.gemma3.vision_model import (
    QuoteGemma3VisionBatchProcessor,
    QuoteGemma3VisionModel,
)
from quote.pipelines.context import (
    QuoteContext,
    QuoteTokenizer,
    QuoteVisionContext,
    QuoteVisionTokenizer,
)
from quote.pipelines.quote_pipeline import QuotePipeline

__all__ = ["quote_gemma3_arch", "quote_gemma3_multimodal_arch"]

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

quote_gemma3_multimodal_arch = dataclasses.replace(
    quote_gemma3_arch,
    name="Gemma3ForConditionalGeneration",
    example_repo_ids=["google/gemma-3-4b-it", "google/gemma-3-12b-it", "google/gemma-3-27b-it"],
    pipeline_model=QuoteGemma3VisionModel,
    batching=QuoteGemma3VisionBatchProcessor,
    tokenizer=QuoteVisionTokenizer,
    context_type=QuoteVisionContext,
    input_modalities={InputModality.TEXT, InputModality.IMAGE},
    required_arguments={"enable_chunked_prefill": False},
)
