# SPDX-License-Identifier: Apache-2.0
"""Graph layers of Quote's single-device Gemma3: attention, block, rotary embedding.

Written against ``max.graph`` / ``max.nn`` for one device; every layer takes the
model dtype (float32 on CPU, bfloat16 on GPU). Multi-device support would add
sharded variants of these layers, not change their math.
"""

from __future__ import annotations

from typing import Any

from max.dtype import DType
from max.graph import DeviceRef, TensorType, TensorValue, ops
from max.nn.attention import MHAMaskVariant
from max.nn.kernels import flash_attention_ragged, rope_split_store_ragged
from max.nn.kv_cache import KVCacheParams, PagedCacheValues
from max.nn.layer import Module
from max.nn.linear import MLP, Linear
from max.nn.norm.rms_norm import RMSNorm
from max.nn.rotary_embedding import RotaryEmbedding
from max.nn.stacked_linear import StackedLinear

from quote.custom_arch.gemma3.softcap_attention import ImageBlocks, softcapped_paged_attention

__all__ = ["GemmaRMSNorm", "Gemma3Attention", "Gemma3Block", "ScaledRotaryEmbedding"]


class GemmaRMSNorm(RMSNorm):
    """RMSNorm with Gemma's ``(1 + w)`` scale, computed in float32 then cast back."""

    def __init__(self, dim: int, dtype: DType, eps: float) -> None:
        super().__init__(dim=dim, dtype=dtype, eps=eps, weight_offset=1.0)


class ScaledRotaryEmbedding(RotaryEmbedding):
    """Non-interleaved RoPE whose inverse frequencies are divided by ``factor``.

    ``factor == 1`` is plain RoPE; ``factor > 1`` is Hugging Face's "linear" scaling.
    """

    def __init__(
        self, *, theta: float, head_dim: int, n_heads: int, max_seq_len: int, factor: float = 1.0
    ) -> None:
        super().__init__(
            dim=head_dim * n_heads,
            n_heads=n_heads,
            theta=theta,
            max_seq_len=max_seq_len,
            head_dim=head_dim,
            interleaved=False,
        )
        self.factor = float(factor)

    def _compute_inv_freqs(self) -> TensorValue:
        inv = super()._compute_inv_freqs()
        if self.factor != 1.0:
            inv = inv / ops.constant(self.factor, DType.float32, device=DeviceRef.CPU())
        return inv


class Gemma3Attention(Module):
    """Gemma3 self-attention over MAX's paged KV cache.

    q/k/v projections, per-head q/k RMSNorm, RoPE (local or global base),
    flash attention with a causal or sliding-window causal mask, o projection.
    With ``softcap`` set, attention scores are soft-capped (``cap * tanh(s / cap)``) by
    :func:`softcapped_paged_attention`, since MAX's flash kernels cannot; that eager path
    also runs the steps that hold image tokens (``images``), whose blocks attend both ways.
    """

    def __init__(
        self,
        *,
        hidden_size: int,
        n_heads: int,
        n_kv_heads: int,
        head_dim: int,
        kv_params: KVCacheParams,
        layer_idx: int,
        sliding_window: int | None,
        rope: ScaledRotaryEmbedding,
        scale: float,
        eps: float,
        dtype: DType,
        device: DeviceRef,
        bias: bool = False,
        softcap: float | None = None,
    ) -> None:
        super().__init__()
        self.softcap = softcap
        self.n_heads = n_heads
        self.n_kv_heads = n_kv_heads
        self.head_dim = head_dim
        self.kv_params = kv_params
        self.layer_idx = layer_idx
        self.sliding_window = sliding_window
        self.rope = rope
        self.scale = scale
        q_dim, kv_dim = n_heads * head_dim, n_kv_heads * head_dim
        self.q_dim, self.kv_dim = q_dim, kv_dim
        # One matmul for q, k and v; weights keep their checkpoint names (q_proj, ...).
        self.qkv_proj = StackedLinear(
            in_dim=hidden_size,
            out_dims=[q_dim, kv_dim, kv_dim],
            names=["q_proj", "k_proj", "v_proj"],
            dtype=dtype,
            device=device,
            stacked=False,
            has_bias=bias,
        )
        self.o_proj = Linear(q_dim, hidden_size, dtype, device, has_bias=bias)
        self.q_norm = GemmaRMSNorm(head_dim, dtype, eps)
        self.k_norm = GemmaRMSNorm(head_dim, dtype, eps)

    def __call__(
        self,
        x: TensorValue,
        kv: PagedCacheValues,
        input_row_offsets: TensorValue,
        images: ImageBlocks | None = None,
    ) -> TensorValue:
        hd = self.head_dim
        q, k, v = ops.split(self.qkv_proj(x), [self.q_dim, self.kv_dim, self.kv_dim], axis=-1)
        q = self.q_norm(q.reshape((-1, self.n_heads, hd)))
        k = self.k_norm(k.reshape((-1, self.n_kv_heads, hd)))
        qkv = ops.concat(
            (q.reshape((-1, self.n_heads * hd)), k.reshape((-1, self.n_kv_heads * hd)), v), axis=-1
        )
        layer = ops.constant(self.layer_idx, DType.uint32, device=DeviceRef.CPU())
        freqs = ops.cast(self.rope.freqs_cis, qkv.dtype).to(qkv.device)
        xq = rope_split_store_ragged(
            self.kv_params,
            qkv,
            input_row_offsets,
            freqs,
            kv,
            layer,
            n_heads=self.n_heads,
            interleaved=False,
        ).reshape((-1, self.n_heads, hd))
        if self.softcap:
            return self.o_proj(self._eager(xq, kv, input_row_offsets, images))
        if images is None:
            return self.o_proj(self._flash(xq, kv, input_row_offsets, layer))
        out_type = TensorType(xq.dtype, [xq.shape[0], self.n_heads * hd], xq.device)
        out = ops.cond(
            images.present,
            [out_type],
            lambda: self._eager(xq, kv, input_row_offsets, images),
            lambda: self._flash(xq, kv, input_row_offsets, layer),
        )[0].tensor
        return self.o_proj(out)

    def _eager(
        self,
        xq: TensorValue,
        kv: PagedCacheValues,
        input_row_offsets: TensorValue,
        images: ImageBlocks | None,
    ) -> TensorValue:
        return softcapped_paged_attention(
            xq,
            kv,
            input_row_offsets,
            layer_idx=self.layer_idx,
            n_kv_heads=self.n_kv_heads,
            page_size=self.kv_params.page_size,
            scale=self.scale,
            softcap=self.softcap,
            sliding_window=self.sliding_window,
            images=images,
        )

    def _flash(
        self, xq: TensorValue, kv: PagedCacheValues, input_row_offsets: TensorValue, layer: Any
    ) -> TensorValue:
        sliding = self.sliding_window is not None
        out = flash_attention_ragged(
            self.kv_params,
            input=xq,
            kv_collection=kv,
            layer_idx=layer,
            input_row_offsets=input_row_offsets,
            mask_variant=(
                MHAMaskVariant.SLIDING_WINDOW_CAUSAL_MASK if sliding else MHAMaskVariant.CAUSAL_MASK
            ),
            scale=self.scale,
            local_window_size=self.sliding_window if self.sliding_window is not None else -1,
        )
        return ops.reshape(out, shape=[xq.shape[0], -1])


class Gemma3Block(Module):
    """One decoder layer: pre/post attention norms and pre/post feed-forward norms."""

    def __init__(
        self,
        *,
        attention: Gemma3Attention,
        hidden_size: int,
        intermediate_size: int,
        activation: str,
        eps: float,
        dtype: DType,
        device: DeviceRef,
    ) -> None:
        super().__init__()
        self.self_attn = attention
        self.mlp = MLP(
            dtype=dtype,
            quantization_encoding=None,
            hidden_dim=hidden_size,
            feed_forward_length=intermediate_size,
            devices=[device],
            activation_function=activation,
        )
        self.input_layernorm = GemmaRMSNorm(hidden_size, dtype, eps)
        self.post_attention_layernorm = GemmaRMSNorm(hidden_size, dtype, eps)
        self.pre_feedforward_layernorm = GemmaRMSNorm(hidden_size, dtype, eps)
        self.post_feedforward_layernorm = GemmaRMSNorm(hidden_size, dtype, eps)

    def __call__(
        self,
        h: TensorValue,
        kv: PagedCacheValues,
        input_row_offsets: Any,
        images: ImageBlocks | None = None,
    ) -> TensorValue:
        attn = self.self_attn(self.input_layernorm(h), kv, input_row_offsets, images)
        h = h + self.post_attention_layernorm(attn)
        ff = self.mlp(self.pre_feedforward_layernorm(h))
        return h + self.post_feedforward_layernorm(ff)
