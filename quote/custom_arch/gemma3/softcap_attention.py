# SPDX-License-Identifier: Apache-2.0
"""Attention with logit soft-capping, read straight from MAX's paged KV cache.

MAX 26.7's flash-attention kernels have no soft-cap, so a checkpoint with
``attn_logit_softcapping`` runs this graph instead: after ``rope_split_store_ragged``
has written the step's keys and values into the cache, every query token gathers its
request's pages (only the columns the batch can reach), and attention is computed
with ``cap * tanh(scores / cap)`` before the causal (or sliding-window) mask, in
float32. The math is Hugging Face's eager Gemma attention.

Each query token gathers its own copy of its request's keys and values, so memory is
O(tokens x keys x head_dim) (plus ``[tokens, keys]`` scores): fine for short sequences on the
checkpoints that need it, far too much for long prefills (gathering once per request and
masking across the batch would make it O(tokens x keys)). The flash path stays the default.
"""

from __future__ import annotations

from max.dtype import DType
from max.graph import TensorValue, ops
from max.nn.kv_cache import PagedCacheValues

__all__ = ["softcapped_paged_attention"]


def softcapped_paged_attention(
    xq: TensorValue,
    kv: PagedCacheValues,
    input_row_offsets: TensorValue,
    *,
    layer_idx: int,
    n_kv_heads: int,
    page_size: int,
    scale: float,
    softcap: float,
    sliding_window: int | None,
) -> TensorValue:
    """Soft-capped attention of ragged queries ``xq`` ``[tokens, heads, head_dim]``.

    Returns ``[tokens, heads * head_dim]`` in ``xq``'s dtype. The step's keys and values
    must already be in the cache (positions ``cache_length .. cache_length + n - 1``).
    """
    device = xq.device
    n_heads, head_dim = int(xq.shape[1]), int(xq.shape[2])
    group = n_heads // n_kv_heads
    f32 = DType.float32

    # Which request each token belongs to, and its absolute position.
    offsets = ops.cast(input_row_offsets, DType.int64)
    n_tokens = xq.shape[0]
    token = ops.range(0, n_tokens, 1, out_dim=n_tokens, dtype=DType.int64, device=device)
    ends = offsets[1:]
    batch_of = ops.sum(
        ops.cast(ops.unsqueeze(ends, 0) <= ops.unsqueeze(token, 1), DType.int64), axis=-1
    ).reshape([-1])
    starts = ops.gather(offsets, batch_of, axis=0)
    cached = ops.gather(ops.cast(kv.cache_lengths, DType.int64), batch_of, axis=0)
    pos = cached + token - starts  # [T]

    # The request's pages, only as many columns as the batch can reach.
    reach = ops.cast(kv.max_cache_length, DType.int64) + ops.cast(kv.max_prompt_length, DType.int64)
    pages = (reach + (page_size - 1)) // page_size
    lut_cols = ops.shape_to_tensor([kv.lookup_table.shape[1]]).reshape([1])
    pages = ops.min(pages, ops.cast(lut_cols, DType.int64)).reshape([])
    lookup = ops.slice_tensor(
        ops.cast(kv.lookup_table, DType.int64),
        [slice(None), (slice(0, pages), "quote_softcap_pages")],
    )
    blocks = kv.kv_blocks[...]  # [pages_total, 2, layers, page, kv_heads, head_dim]

    def per_token(which: int) -> TensorValue:
        cache = blocks[:, which, layer_idx, :, :, :]  # [pages_total, page, kv_heads, head_dim]
        rows = ops.gather(cache, lookup, axis=0)  # [batch, pages, page, kv_heads, head_dim]
        rows = rows.reshape([rows.shape[0], -1, n_kv_heads, head_dim])
        tok = ops.gather(rows, batch_of, axis=0)  # [T, keys, kv_heads, head_dim]
        return ops.cast(ops.permute(tok, [0, 2, 1, 3]), f32)  # [T, kv_heads, keys, head_dim]

    keys, values = per_token(0), per_token(1)
    q = ops.cast(xq, f32).reshape([-1, n_kv_heads, group, head_dim])
    scores = ops.matmul(q, ops.permute(keys, [0, 1, 3, 2])) * scale  # [T, kv, group, keys]
    cap = ops.constant(softcap, f32, device=device)
    scores = ops.tanh(scores / cap) * cap

    n_keys = keys.shape[2]
    key_pos = ops.range(0, n_keys, 1, out_dim=n_keys, dtype=DType.int64, device=device)
    here = ops.unsqueeze(pos, 1)
    visible = ops.unsqueeze(key_pos, 0) <= here
    if sliding_window is not None:
        window = ops.constant(sliding_window, DType.int64, device=device)
        visible = ops.logical_and(visible, ops.unsqueeze(key_pos, 0) > here - window)
    neg = ops.constant(float("-inf"), f32, device=device)
    scores = ops.where(visible.reshape([-1, 1, 1, n_keys]), scores, neg)
    probs = ops.softmax(scores, axis=-1)
    out = ops.matmul(probs, values)  # [T, kv, group, head_dim]
    return ops.cast(out.reshape([-1, n_heads * head_dim]), xq.dtype)
