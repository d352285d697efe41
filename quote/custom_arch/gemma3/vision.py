# SPDX-License-Identifier: Apache-2.0
"""The Gemma 3 vision path as a MAX graph: SigLIP vision tower + multimodal projector.

MAX's own Gemma3 vision encoder is bfloat16-only and calls ``flash_attention_gpu``; this one
runs in the model dtype (float32 on CPU, bfloat16 on GPU) with attention as plain graph ops.
It matches transformers' ``Gemma3Model.get_image_features``:

- patch embedding: the ``Conv2d(channels, hidden, kernel=patch, stride=patch)`` as patches times
  the flattened kernel (exact), plus position embeddings ``0..n_patches-1``;
- encoder layers: ``x + attn(layer_norm1(x))``, ``x + fc2(gelu_tanh(fc1(layer_norm2(x))))``,
  bidirectional attention with float32 scores and softmax; then ``post_layernorm``;
- projector: the ``side x side`` patch grid average-pooled to ``mm_tokens_per_image`` tokens
  (row-major), Gemma RMSNorm (``1 + weight``, eps ``layer_norm_eps``), times
  ``mm_input_projection_weight``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from max.dtype import DType
from max.graph import DeviceRef, Graph, TensorType, TensorValue, Weight, ops
from max.graph.weights import WeightData
from max.nn.layer import LayerList, Module
from max.nn.linear import Linear
from max.nn.norm import LayerNorm

__all__ = ["GRAPH_NAME", "QuoteGemma3Vision", "convert_vision_state_dict"]

logger = logging.getLogger(__name__)

GRAPH_NAME = "quote_gemma3_vision"

# Checkpoint prefixes -> this module's names (longest first: v5 may nest ``vision_model.``).
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("model.vision_tower.vision_model.", ""),
    ("vision_tower.vision_model.", ""),
    ("model.vision_tower.", ""),
    ("model.multi_modal_projector.", "multi_modal_projector."),
    ("multi_modal_projector.", "multi_modal_projector."),
)
_REQUIRED = (
    "embeddings.patch_embedding.weight",
    "embeddings.patch_embedding.bias",
    "embeddings.position_embedding.weight",
    "post_layernorm.weight",
    "multi_modal_projector.mm_input_projection_weight",
    "multi_modal_projector.mm_soft_emb_norm.weight",
)
_CASTABLE = {DType.float32, DType.bfloat16, DType.float16}


def _f32(x: TensorValue) -> TensorValue:
    return x if x.dtype == DType.float32 else x.cast(DType.float32)


class _PatchConv(Module):
    """``Conv2d(channels, hidden, kernel=patch, stride=patch)`` with bias, as a matmul."""

    def __init__(self, cfg: Any, dtype: DType, device: DeviceRef) -> None:
        super().__init__()
        self.hidden, self.channels = int(cfg.hidden_size), int(cfg.num_channels)
        self.patch = int(cfg.patch_size)
        self.side = int(cfg.image_size) // self.patch
        shape = [self.hidden, self.channels, self.patch, self.patch]
        self.weight = Weight("weight", dtype, shape, device=device)
        self.bias = Weight("bias", dtype, [self.hidden], device=device)

    def __call__(self, pixels: TensorValue) -> TensorValue:
        n, c, p, s = pixels.shape[0], self.channels, self.patch, self.side
        x = ops.reshape(pixels, [n, c, s, p, s, p])
        x = ops.permute(x, [0, 2, 4, 1, 3, 5])  # [n, row, col, c, kh, kw]
        x = ops.reshape(x, [n, s * s, c * p * p])
        kernel = ops.reshape(self.weight, [self.hidden, c * p * p])
        return x @ ops.transpose(kernel, 0, 1) + self.bias


class _Param(Module):
    """A module holding one ``weight`` (position table, norm scale); calling returns it."""

    def __init__(self, shape: list[int], dtype: DType, device: DeviceRef) -> None:
        super().__init__()
        self.weight = Weight("weight", dtype, shape, device=device)

    def __call__(self) -> TensorValue:
        return TensorValue(self.weight)


class _Embeddings(Module):
    """Patch embeddings plus position embeddings ``0..n_patches-1``."""

    def __init__(self, cfg: Any, dtype: DType, device: DeviceRef) -> None:
        super().__init__()
        self.patch_embedding = _PatchConv(cfg, dtype, device)
        n_patches = self.patch_embedding.side**2
        self.position_embedding = _Param([n_patches, int(cfg.hidden_size)], dtype, device)

    def __call__(self, pixels: TensorValue) -> TensorValue:
        return self.patch_embedding(pixels) + self.position_embedding()


class _Attention(Module):
    """Bidirectional multi-head self-attention with biased projections."""

    def __init__(self, cfg: Any, dtype: DType, device: DeviceRef) -> None:
        super().__init__()
        hidden = int(cfg.hidden_size)
        self.heads = int(cfg.num_attention_heads)
        self.head_dim = hidden // self.heads
        if self.head_dim * self.heads != hidden:
            raise ValueError(f"hidden_size {hidden} is not divisible by {self.heads} heads")
        self.q_proj = Linear(hidden, hidden, dtype, device, has_bias=True)
        self.k_proj = Linear(hidden, hidden, dtype, device, has_bias=True)
        self.v_proj = Linear(hidden, hidden, dtype, device, has_bias=True)
        self.out_proj = Linear(hidden, hidden, dtype, device, has_bias=True)

    def __call__(self, x: TensorValue) -> TensorValue:
        n, t = x.shape[0], x.shape[1]

        def heads(v: TensorValue) -> TensorValue:  # [n, t, hidden] -> [n, heads, t, head_dim]
            return ops.permute(ops.reshape(v, [n, t, self.heads, self.head_dim]), [0, 2, 1, 3])

        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        scores = (_f32(q) @ ops.transpose(_f32(k), 2, 3)) * (self.head_dim**-0.5)
        probs = ops.softmax(scores, axis=-1).cast(x.dtype)
        out = ops.permute(probs @ v, [0, 2, 1, 3])
        return self.out_proj(ops.reshape(out, [n, t, self.heads * self.head_dim]))


class _Mlp(Module):
    def __init__(self, cfg: Any, dtype: DType, device: DeviceRef) -> None:
        super().__init__()
        hidden, inter = int(cfg.hidden_size), int(cfg.intermediate_size)
        self.fc1 = Linear(hidden, inter, dtype, device, has_bias=True)
        self.fc2 = Linear(inter, hidden, dtype, device, has_bias=True)

    def __call__(self, x: TensorValue) -> TensorValue:
        return self.fc2(ops.gelu(self.fc1(x), approximate="tanh"))


class _EncoderLayer(Module):
    def __init__(self, cfg: Any, dtype: DType, device: DeviceRef) -> None:
        super().__init__()
        hidden, eps = int(cfg.hidden_size), float(cfg.layer_norm_eps)
        self.layer_norm1 = LayerNorm(hidden, [device], dtype, eps=eps)
        self.self_attn = _Attention(cfg, dtype, device)
        self.layer_norm2 = LayerNorm(hidden, [device], dtype, eps=eps)
        self.mlp = _Mlp(cfg, dtype, device)

    def __call__(self, x: TensorValue) -> TensorValue:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class _Encoder(Module):
    def __init__(self, cfg: Any, dtype: DType, device: DeviceRef) -> None:
        super().__init__()
        n_layers = int(cfg.num_hidden_layers)
        self.layers = LayerList([_EncoderLayer(cfg, dtype, device) for _ in range(n_layers)])

    def __call__(self, x: TensorValue) -> TensorValue:
        for layer in self.layers:
            x = layer(x)
        return x


class _Projector(Module):
    """Average-pool the patch grid, Gemma RMSNorm, project to the text hidden size."""

    def __init__(
        self, cfg: Any, tokens: int, text_hidden: int, dtype: DType, device: DeviceRef
    ) -> None:
        super().__init__()
        hidden = int(cfg.hidden_size)
        self.side = int(cfg.image_size) // int(cfg.patch_size)
        self.out_side = math.isqrt(tokens)
        if self.out_side**2 != tokens or self.side % self.out_side:
            raise ValueError(
                f"mm_tokens_per_image={tokens} must be a square whose side divides the "
                f"{self.side}x{self.side} patch grid"
            )
        self.eps = float(cfg.layer_norm_eps)
        self.mm_input_projection_weight = Weight(
            "mm_input_projection_weight", dtype, [hidden, text_hidden], device=device
        )
        self.mm_soft_emb_norm = _Param([hidden], dtype, device)

    def __call__(self, x: TensorValue) -> TensorValue:
        n, d, t = x.shape[0], x.shape[2], self.out_side
        k = self.side // t
        grid = ops.reshape(_f32(x), [n, t, k, t, k, d])  # [n, i, a, j, b, d]
        grid = ops.reshape(ops.permute(grid, [0, 1, 3, 2, 4, 5]), [n * t * t, k * k, d])
        pooled = ops.squeeze(ops.mean(grid, axis=1), 1).cast(x.dtype)  # [n*t*t, d]
        h = _f32(pooled)
        h = h * ops.rsqrt(ops.mean(h * h, axis=-1) + self.eps)
        h = (h * (1.0 + _f32(self.mm_soft_emb_norm()))).cast(x.dtype)
        return h @ self.mm_input_projection_weight


class QuoteGemma3Vision(Module):
    """SigLIP vision tower + Gemma3 multimodal projector: images -> soft tokens.

    Args:
        vision_config: The checkpoint's ``vision_config`` (``SiglipVisionConfig`` or a
            namespace of the ``config.json`` dict).
        mm_tokens_per_image: Soft tokens per image (a square; Gemma 3: 256).
        text_hidden_size: The language model's hidden size.
        dtype: The model dtype (weights and activations).
        device: Where the graph runs.
    """

    def __init__(
        self,
        *,
        vision_config: Any,
        mm_tokens_per_image: int,
        text_hidden_size: int,
        dtype: DType,
        device: DeviceRef,
    ) -> None:
        super().__init__()
        cfg = vision_config
        self.dtype, self.device = dtype, device
        self.channels, self.image_size = int(cfg.num_channels), int(cfg.image_size)
        self.mm_tokens_per_image = int(mm_tokens_per_image)
        self.embeddings = _Embeddings(cfg, dtype, device)
        self.encoder = _Encoder(cfg, dtype, device)
        self.post_layernorm = LayerNorm(
            int(cfg.hidden_size), [device], dtype, eps=float(cfg.layer_norm_eps)
        )
        self.multi_modal_projector = _Projector(
            cfg, self.mm_tokens_per_image, int(text_hidden_size), dtype, device
        )

    def input_types(self) -> tuple[TensorType, ...]:
        """``pixel_values``: float32 ``[num_images, channels, image_size, image_size]``."""
        size = self.image_size
        shape = ["num_images", self.channels, size, size]
        return (TensorType(DType.float32, shape, device=self.device),)

    def __call__(self, pixel_values: TensorValue) -> TensorValue:
        """Images -> ``[num_images * mm_tokens_per_image, text_hidden_size]`` in the dtype."""
        if pixel_values.dtype != self.dtype:
            pixel_values = pixel_values.cast(self.dtype)
        x = self.encoder(self.embeddings(pixel_values))
        return self.multi_modal_projector(self.post_layernorm(x))

    def build_graph(self) -> Graph:
        """Trace the graph ``quote_gemma3_vision`` (load the weights first)."""
        return self.trace(*self.input_types(), name=GRAPH_NAME)


def _weight_data(name: str, value: Any) -> WeightData:
    if isinstance(value, WeightData):
        return value
    if isinstance(value, np.ndarray):
        return WeightData.from_numpy(np.ascontiguousarray(value), name)
    if hasattr(value, "data") and callable(value.data):  # max.graph.weights.Weights
        data = value.data()
        if isinstance(data, WeightData):
            return data
    raise TypeError(f"weight {name!r}: unsupported value type {type(value).__name__}")


def convert_vision_state_dict(
    state_dict: Mapping[str, Any], *, dtype: DType | None = None
) -> dict[str, Any]:
    """Keep the vision tower and projector weights, renamed to :class:`QuoteGemma3Vision`'s.

    Accepts both ``Gemma3ForConditionalGeneration`` layouts (transformers 4.x
    ``vision_tower.vision_model.*`` / ``multi_modal_projector.*`` and 5.x
    ``model.vision_tower.*`` / ``model.multi_modal_projector.*``); values may be numpy
    arrays, ``WeightData`` or ``max.graph.weights.Weights``. Floating weights whose dtype
    differs from ``dtype`` (when given) are cast to it.

    Raises:
        ValueError: if a weight every vision path needs (embeddings, post-norm, projector) is
            missing; per-layer names are checked by ``load_state_dict(strict=True)``.
    """
    out: dict[str, Any] = {}
    cast = 0
    for name, value in state_dict.items():
        for prefix, new in _PREFIXES:
            if name.startswith(prefix):
                key = new + name.removeprefix(prefix)
                break
        else:
            continue
        data = _weight_data(name, value)
        if dtype is not None and data.dtype != dtype and data.dtype in _CASTABLE:
            data = data.astype(dtype)
            cast += 1
        out[key] = data
    missing = [k for k in _REQUIRED if k not in out]
    if missing:
        raise ValueError(
            f"not a Gemma3 vision checkpoint: missing {', '.join(missing)} "
            f"(found {len(out)} vision/projector weights)"
        )
    logger.info("vision weights: %d kept, %d cast to %s", len(out), cast, dtype)
    return out
