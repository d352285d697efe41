# SPDX-License-Identifier: Apache-2.0
"""``QuoteGemma3VisionModel``: Quote's Gemma3 with its vision tower (images in prompts).

The ``Gemma3ForConditionalGeneration`` checkpoints (Gemma 3 4B/12B/27B) run two graphs: the
vision graph (:class:`~quote.custom_arch.gemma3.vision.QuoteGemma3Vision`: SigLIP and the
multimodal projector, pixels to soft-token embeddings) and the decoder built with
``images=True``. At each step :class:`QuoteGemma3VisionBatchProcessor` finds the prompt
images whose soft tokens are among the step's active tokens, the vision graph encodes them,
and the decoder puts each embedding row in place of its ``<image_soft_token>`` and lets the
tokens of one image attend to each other both ways. A step without image tokens (every
decode step) passes empty image inputs and runs the flash kernels as before.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from max.driver import Buffer
from max.dtype import DType
from max.graph import DeviceRef
from max.nn.kv_cache import KVCacheInputs
from max.pipelines.lib import ModelInputs, ModelOutputs
from max.pipelines.lib.graph_specs import GraphRole, GraphSpec

from quote.custom_arch.gemma3.config import QuoteGemma3Config
from quote.custom_arch.gemma3.graph import QuoteGemma3
from quote.custom_arch.gemma3.model import (
    QuoteGemma3BatchProcessor,
    QuoteGemma3Inputs,
    QuoteGemma3Model,
    model_outputs,
)
from quote.custom_arch.gemma3.vision import QuoteGemma3Vision, convert_vision_state_dict
from quote.custom_arch.gemma3.weight_adapters import model_dtype

__all__ = ["ImageSplitError", "QuoteGemma3VisionBatchProcessor", "QuoteGemma3VisionModel"]

logger = logging.getLogger(__name__)


class ImageSplitError(ValueError):
    """An image's soft tokens would be split across two forward passes."""


@dataclass
class QuoteGemma3VisionInputs(QuoteGemma3Inputs):
    """A step's inputs with its images: pixels, and where their embedding rows go."""

    pixel_values: Buffer | None = None
    """``[images, 3, size, size]`` float32, the images the step's tokens need (or None)."""
    image_rows: Buffer | None = None
    """Per image token of the step, its row in the vision graph's output."""
    image_token_indices: Buffer | None = None
    """Per image token of the step, its index among the step's tokens."""
    block_lo: Buffer | None = None
    """Per token of the step, the position of its image's first soft token (-1: text)."""
    block_hi: Buffer | None = None
    """Per token of the step, the position of its image's last soft token (-1: text)."""


class QuoteGemma3VisionBatchProcessor(QuoteGemma3BatchProcessor):
    """Ragged batching plus the images of the step's prompt tokens."""

    def prepare_initial_token_inputs(  # type: ignore[override]
        self,
        replica_batches: Sequence[Sequence[Any]],
        kv_cache_inputs: KVCacheInputs[Buffer, Buffer] | None = None,
        return_n_logits: int = 1,
    ) -> QuoteGemma3VisionInputs:
        """The text inputs, then the images whose soft tokens run in this step."""
        base = super().prepare_initial_token_inputs(
            replica_batches, kv_cache_inputs=kv_cache_inputs, return_n_logits=return_n_logits
        )
        hf = self.runtime.pipeline_config.model.huggingface_config
        per_image = int(hf.mm_tokens_per_image)
        pixels: list[np.ndarray] = []
        rows: list[np.ndarray] = []
        targets: list[np.ndarray] = []
        lo_parts: list[np.ndarray] = []
        hi_parts: list[np.ndarray] = []
        offset = 0
        for ctx in replica_batches[0]:
            start = int(ctx.tokens.processed_length)
            n = int(ctx.tokens.active_length)
            lo = np.full(n, -1, dtype=np.int64)
            hi = np.full(n, -1, dtype=np.int64)
            for image in getattr(ctx, "images", ()):
                first, last = max(start, image.start_idx), min(start + n, image.end_idx)
                if first >= last:
                    continue  # not among this step's tokens
                if image.end_idx - image.start_idx != per_image:
                    raise ImageSplitError(
                        f"an image has {image.end_idx - image.start_idx} soft tokens, "
                        f"the checkpoint expects {per_image}"
                    )
                if image.end_idx > start + n:
                    raise ImageSplitError(
                        "an image's soft tokens would be split across two forward passes "
                        "(serve checkpoints with images with --no-enable-chunked-prefill)"
                    )
                positions = np.arange(first, last, dtype=np.int64)
                rows.append(len(pixels) * per_image + positions - image.start_idx)
                targets.append(offset + positions - start)
                lo[first - start : last - start] = image.start_idx
                hi[first - start : last - start] = image.end_idx - 1
                pixels.append(np.asarray(image.pixel_values, dtype=np.float32))
            lo_parts.append(lo)
            hi_parts.append(hi)
            offset += n
        device = self.runtime.devices[0]

        def put(array: np.ndarray) -> Buffer:
            return Buffer.from_numpy(np.ascontiguousarray(array)).to(device)

        empty = np.zeros(0, dtype=np.int64)
        return QuoteGemma3VisionInputs(
            tokens=base.tokens,
            input_row_offsets=base.input_row_offsets,
            return_n_logits=base.return_n_logits,
            kv_cache_inputs=base.kv_cache_inputs,
            pixel_values=put(np.stack(pixels)) if pixels else None,
            image_rows=put(np.concatenate(rows) if rows else empty),
            image_token_indices=put(
                np.concatenate(targets).astype(np.int32) if targets else empty.astype(np.int32)
            ),
            block_lo=put(np.concatenate(lo_parts) if lo_parts else empty),
            block_hi=put(np.concatenate(hi_parts) if hi_parts else empty),
        )


class QuoteGemma3VisionModel(QuoteGemma3Model):
    """:class:`QuoteGemma3Model` with the vision graph, for checkpoints with a vision tower."""

    batch_processor_cls = QuoteGemma3VisionBatchProcessor  # type: ignore[assignment]

    def _load_state_dict(self) -> dict[str, Any]:
        dtype = model_dtype(self.pipeline_config) or DType.float32
        self._vision_weights = convert_vision_state_dict(dict(self.weights.items()), dtype=dtype)
        return super()._load_state_dict()

    def graph_specs(self, model_config: QuoteGemma3Config) -> dict[str, GraphSpec]:
        """The decoder (with image inputs) and the vision graph, with their weights bound."""
        graph = QuoteGemma3(model_config, images=True)
        graph.load_state_dict(self._weights_by_name, weight_alignment=1, strict=True)
        self._weights_by_name = {}
        hf = self.huggingface_config
        vision = QuoteGemma3Vision(
            vision_config=hf.vision_config,
            mm_tokens_per_image=int(hf.mm_tokens_per_image),
            text_hidden_size=model_config.hidden_size,
            dtype=model_config.dtype,
            device=DeviceRef.from_device(self.devices[0]),
        )
        vision.load_state_dict(self._vision_weights, weight_alignment=1, strict=True)
        self._vision_weights = {}
        self._no_images = Buffer.zeros(
            shape=[0, model_config.hidden_size], dtype=model_config.dtype
        ).to(self.devices[0])
        return {
            GraphRole.DECODER: GraphSpec(
                graph,
                "quote_gemma3_images",
                self._bind_graph_inputs(graph.input_tree()),
                weights=graph.state_dict(auto_initialize=False),
            ),
            GraphRole.VISION: GraphSpec(
                vision,
                "quote_gemma3_vision",
                vision.input_types(),
                weights=vision.state_dict(auto_initialize=False),
            ),
        }

    def execute(self, model_inputs: ModelInputs) -> ModelOutputs:
        """Encode the step's images (if any), then run the decoder."""
        assert isinstance(model_inputs, QuoteGemma3VisionInputs)
        if model_inputs.pixel_values is not None:
            embeddings = self._models[GraphRole.VISION].execute(model_inputs.pixel_values)[0]
        else:
            embeddings = self._no_images
        assert model_inputs.kv_cache_inputs is not None
        from max import tree

        outputs = self.model.execute(
            model_inputs.tokens,
            model_inputs.input_row_offsets,
            model_inputs.return_n_logits,
            embeddings,
            model_inputs.image_rows,
            model_inputs.image_token_indices,
            model_inputs.block_lo,
            model_inputs.block_hi,
            *tree.leaves(model_inputs.kv_cache_inputs),
        )
        return model_outputs(outputs)
