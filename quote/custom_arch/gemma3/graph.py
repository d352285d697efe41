# SPDX-License-Identifier: Apache-2.0
"""The whole Gemma3 decoder graph for one device (``QuoteGemma3``).

Built with ``images=True`` (checkpoints with a vision tower), the graph takes four more
inputs: the step's image embeddings (rows of the vision graph's output), which row goes to
which token, and each token's image block (for the attention mask).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from max import tree
from max.dtype import DType
from max.graph import Graph, TensorType, TensorValue, Type, Value, ops
from max.graph import Module as GraphModule
from max.nn.embedding import Embedding
from max.nn.kv_cache import KVCacheParams, PagedCacheValues
from max.nn.kv_cache.cache_params import KVCacheInputsPerDevice
from max.nn.layer import LayerList, Module
from max.nn.linear import Linear
from max.nn.transformer.transformer import LogitsPostprocessMixin
from max.pipelines.lib.interfaces.batch_processor import ragged_kv_symbolic_input_tree
from max.pipelines.lib.vlm_utils import merge_multimodal_embeddings

from quote.custom_arch.gemma3.config import QuoteGemma3Config
from quote.custom_arch.gemma3.layers import (
    Gemma3Attention,
    Gemma3Block,
    GemmaRMSNorm,
    ScaledRotaryEmbedding,
)
from quote.custom_arch.gemma3.softcap_attention import ImageBlocks, reachable_pages

__all__ = ["QuoteGemma3"]

_ACTIVATIONS = {"gelu_pytorch_tanh": "gelu_tanh", "gelu_tanh": "gelu_tanh", "gelu": "gelu"}


class _LogitsHead(Module):
    """Tied (or untied) lm_head followed by optional tanh soft-capping."""

    def __init__(self, linear: Linear, softcap: float | None) -> None:
        super().__init__()
        self.linear = linear
        self.softcap = softcap

    def __call__(self, h: TensorValue) -> TensorValue:
        logits = self.linear(h)
        if self.softcap:
            cap = ops.constant(self.softcap, logits.dtype, device=logits.device)
            logits = ops.tanh(logits / cap) * cap
        return logits


class QuoteGemma3(LogitsPostprocessMixin, Module):
    """Gemma3 text decoder: scaled embedding, blocks, final norm, tied head, soft-cap."""

    def __init__(self, config: QuoteGemma3Config, *, images: bool = False) -> None:
        super().__init__()
        self.images = images
        if len(config.devices) != 1:
            raise ValueError("QuoteGemma3 is a single-device graph")
        device = config.devices[0]
        dtype = config.dtype
        assert isinstance(config.kv_params, KVCacheParams)
        self.kv_params = config.kv_params
        self.device = device
        self.dtype = dtype
        self.hidden_size = config.hidden_size
        self.return_logits = config.return_logits
        factor = config.rope_scaling.factor if config.rope_scaling is not None else 1.0
        rope = {
            "full_attention": ScaledRotaryEmbedding(
                theta=config.rope_theta,
                head_dim=config.head_dim,
                n_heads=config.num_attention_heads,
                max_seq_len=config.max_position_embeddings,
                factor=factor,
            ),
            "sliding_attention": ScaledRotaryEmbedding(
                theta=config.rope_local_base_freq,
                head_dim=config.head_dim,
                n_heads=config.num_attention_heads,
                max_seq_len=config.max_position_embeddings,
            ),
        }
        scalar = config.query_pre_attn_scalar or config.head_dim
        activation = str(_ACTIVATIONS.get(config.hidden_activation, config.hidden_activation))
        self.embed_tokens = Embedding(config.vocab_size, config.hidden_size, dtype, device)
        blocks = []
        for i, kind in enumerate(config.layer_types):
            attention = Gemma3Attention(
                hidden_size=config.hidden_size,
                n_heads=config.num_attention_heads,
                n_kv_heads=config.num_key_value_heads,
                head_dim=config.head_dim,
                kv_params=config.kv_params,
                layer_idx=i,
                sliding_window=config.sliding_window if kind == "sliding_attention" else None,
                rope=rope[kind],
                scale=float(scalar) ** -0.5,
                eps=config.rms_norm_eps,
                dtype=dtype,
                device=device,
                bias=config.attention_bias,
                softcap=config.attn_logit_softcapping,
            )
            blocks.append(
                Gemma3Block(
                    attention=attention,
                    hidden_size=config.hidden_size,
                    intermediate_size=config.intermediate_size,
                    activation=activation,
                    eps=config.rms_norm_eps,
                    dtype=dtype,
                    device=device,
                )
            )
        self.layers = LayerList(blocks)
        self.norm = GemmaRMSNorm(config.hidden_size, dtype, config.rms_norm_eps)
        head = Linear(config.hidden_size, config.vocab_size, dtype, device)
        if config.tie_word_embeddings:
            head.weight = self.embed_tokens.weight
            head.set_shared_weight("weight", self.embed_tokens.weight)
        self.lm_head = _LogitsHead(head, config.final_logit_softcapping)

    def input_tree(self) -> OrderedDict[str, object]:
        """Graph inputs: tokens, row offsets, return_n_logits, [images], then the KV cache."""
        tree_: OrderedDict[str, object] = ragged_kv_symbolic_input_tree(
            kv_params=self.kv_params, device_refs=[self.device], include_signal_buffers=False
        )
        if not self.images:
            return tree_
        out: OrderedDict[str, object] = OrderedDict(batch=tree_["batch"])
        out["images"] = OrderedDict(
            embeddings=TensorType(self.dtype, ["image_rows", self.hidden_size], device=self.device),
            rows=TensorType(DType.int64, ["image_tokens"], device=self.device),
            token_indices=TensorType(DType.int32, ["image_tokens"], device=self.device),
            block_lo=TensorType(DType.int64, ["total_seq_len"], device=self.device),
            block_hi=TensorType(DType.int64, ["total_seq_len"], device=self.device),
        )
        out["kv"] = tree_["kv"]
        return out

    def __call__(
        self,
        tokens: TensorValue,
        kv: PagedCacheValues,
        return_n_logits: TensorValue,
        input_row_offsets: TensorValue,
        image_inputs: tuple[TensorValue, ...] | None = None,
    ) -> tuple[TensorValue, ...]:
        h = self.embed_tokens(tokens)
        # Gemma scales embeddings by sqrt(hidden), rounded to the model dtype as HF does.
        h = h * ops.constant(self.hidden_size**0.5, DType.float32, device=h.device).cast(h.dtype)
        blocks = None
        if image_inputs is not None:
            embeddings, rows, token_indices, lo, hi = image_inputs
            picked = ops.gather(embeddings, rows, axis=0)  # image soft tokens are not scaled
            h = merge_multimodal_embeddings(h, picked, token_indices)
            present = ops.shape_to_tensor(token_indices.shape)[0] > 0
            lookup = reachable_pages(kv, self.kv_params.page_size)
            blocks = ImageBlocks(lo=lo, hi=hi, present=present, lookup=lookup)
        for layer in self.layers:
            h = layer(h, kv, input_row_offsets, blocks)
        out: tuple[TensorValue, ...] = self._postprocess_logits(
            h, input_row_offsets, return_n_logits
        )
        return out

    def trace(
        self,
        *input_types: Type[Any],
        name: str | None = None,
        module: GraphModule | None = None,
        custom_extensions: Iterable[Path] = (),
        is_device_graph: bool = False,
    ) -> Graph:
        """Trace the graph; inputs are :meth:`input_tree`'s leaves in order."""

        n_images = 5 if self.images else 0

        def forward(
            tokens: Value[Any],
            input_row_offsets: Value[Any],
            return_n_logits: Value[Any],
            *rest: Value[Any],
        ) -> tuple[TensorValue, ...]:
            image_inputs = tuple(v.tensor for v in rest[:n_images]) if n_images else None
            collections = tree.leaves(
                self.kv_params.unflatten_kv_inputs(iter(rest[n_images:])),
                leaf=KVCacheInputsPerDevice,
            )
            return self(
                tokens.tensor,
                collections[0],
                return_n_logits.tensor,
                input_row_offsets.tensor,
                image_inputs,
            )

        return Graph(
            type(self).__qualname__ if name is None else name,
            forward,
            input_types=input_types,
            custom_extensions=list(custom_extensions),
            module=module,
            is_device_graph=is_device_graph,
        )
