# SPDX-License-Identifier: Apache-2.0
"""Eager attention read straight from MAX's paged KV cache: soft-capping, image blocks.

MAX 26.7's flash-attention kernels have no soft-cap and only fixed masks, so two cases run
this graph instead: a checkpoint with ``attn_logit_softcapping``, and a step whose prompt
tokens include images (Gemma 3 lets the tokens of one image attend to each other in both
directions, on sliding and global layers alike). After ``rope_split_store_ragged`` has
written the step's keys and values into the cache, every query token gathers its
request's pages (only the columns the batch can reach), and attention is computed in
float32 with ``cap * tanh(scores / cap)`` (when capped) before the mask: causal (or
sliding-window causal), or-ed with "the key lies in the query's image block". The math is
Hugging Face's eager Gemma attention with its ``token_type_ids`` block mask.

Each query token gathers its own copy of its request's keys and values, so memory is
O(tokens x keys x head_dim) (plus ``[tokens, keys]`` scores): fine for short sequences on the
checkpoints that need it, far too much for long prefills (gathering once per request and
masking across the batch would make it O(tokens x keys)). The flash path stays the default.
"""

from __future__ import annotations

from typing import NamedTuple

from max.dtype import DType
from max.graph import TensorValue, ops
from max.nn.kv_cache import PagedCacheValues

__all__ = ["ImageBlocks", "reachable_pages", "softcapped_paged_attention"]


class ImageBlocks(NamedTuple):
    """Per query token, the absolute positions of its image's first and last soft token.

    ``-1`` for both on text tokens. ``present`` is a boolean scalar: does the step hold any
    image token at all (when not, the fixed-mask flash kernel runs). ``lookup`` is
    :func:`reachable_pages`, computed once outside the conditional (a new symbolic dimension
    cannot be declared inside one).
    """

    lo: TensorValue
    hi: TensorValue
    present: TensorValue
    lookup: TensorValue


def reachable_pages(kv: PagedCacheValues, page_size: int) -> TensorValue:
    """The requests' page table, only as many columns as the batch can reach (int64)."""
    reach = ops.cast(kv.max_cache_length, DType.int64) + ops.cast(kv.max_prompt_length, DType.int64)
    pages = (reach + (page_size - 1)) // page_size
    lut_cols = ops.shape_to_tensor([kv.lookup_table.shape[1]]).reshape([1])
    pages = ops.min(pages, ops.cast(lut_cols, DType.int64)).reshape([])
    return ops.slice_tensor(
        ops.cast(kv.lookup_table, DType.int64),
        [slice(None), (slice(0, pages), "quote_softcap_pages")],
    )


def softcapped_paged_attention(
    xq: TensorValue,
    kv: PagedCacheValues,
    input_row_offsets: TensorValue,
    *,
    layer_idx: int,
    n_kv_heads: int,
    page_size: int,
    scale: float,
    softcap: float | None,
    sliding_window: int | None,
    images: ImageBlocks | None = None,
) -> TensorValue:
    """Eager attention of ragged queries ``xq`` ``[tokens, heads, head_dim]``.

    ``softcap``: cap the scores (``None``: no cap). ``images``: also let each image token
    see its whole image block.

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

    lookup = images.lookup if images is not None else reachable_pages(kv, page_size)
    blocks = kv.kv_blocks[...]  # [pages_total, 2, layers, page, kv_heads, head_dim]

    def per_token(which: int) -> TensorValue:
        cache = blocks[:, which, layer_idx, :, :, :]  # [pages_total, page, kv_heads, head_dim]
        rows = ops.gather(cache, lookup, axis=0)  # [batch, pages, page, kv_heads, head_dim]
        rows = rows.reshape([rows.shape[0], -1, n_kv_heads, head_dim])
        tok = ops.gather(rows, batch_of, axis=0)  # [T, keys, kv_heads, head_dim]
        return ops.cast(ops.permute(tok, [0, 2, 1, 3]), f32)  # [T, kv_heads, keys, head_dim]

    keys, values = per_token(0), per_token(1)
    # Matmuls over one batch axis (token x KV head). With two batch axes ([T, kv, ...]) the
    # result read back as NaN whenever kv > 1 (MAX 26.7, CPU; values printed inside the function
    # were finite, so the fault lies in how MAX compiles the pattern, not found further);
    # this form matches transformers (tests/integration/test_gemma3_images.py, 2 KV heads).
    n_keys = keys.shape[2]
    q = ops.cast(xq, f32).reshape([-1, group, head_dim])  # [T * kv, group, head_dim]
    keys3 = keys.reshape([-1, n_keys, head_dim])
    scores = ops.matmul(q, ops.permute(keys3, [0, 2, 1])) * scale  # [T * kv, group, keys]
    scores = scores.reshape([-1, n_kv_heads, group, n_keys])
    if softcap:
        cap = ops.constant(softcap, f32, device=device)
        scores = ops.tanh(scores / cap) * cap

    key_pos = ops.range(0, n_keys, 1, out_dim=n_keys, dtype=DType.int64, device=device)
    here = ops.unsqueeze(pos, 1)
    visible = ops.unsqueeze(key_pos, 0) <= here
    if sliding_window is not None:
        window = ops.constant(sliding_window, DType.int64, device=device)
        visible = ops.logical_and(visible, ops.unsqueeze(key_pos, 0) > here - window)
    if images is not None:
        keys_at = ops.unsqueeze(key_pos, 0)
        block = ops.logical_and(
            keys_at >= ops.unsqueeze(images.lo, 1), keys_at <= ops.unsqueeze(images.hi, 1)
        )
        visible = ops.logical_or(visible, block)
    neg = ops.constant(float("-inf"), f32, device=device)
    scores = ops.where(visible.reshape([-1, 1, 1, n_keys]), scores, neg)
    probs = ops.softmax(scores, axis=-1)
    # Cache slots a token may not see can hold anything (a never-written page is not zeroed,
    # and 0 * NaN is NaN): zero their values as well as their probabilities.
    zero = ops.constant(0.0, f32, device=device)
    values = ops.where(visible.reshape([-1, 1, n_keys, 1]), values, zero)
    out = ops.matmul(
        probs.reshape([-1, group, n_keys]), values.reshape([-1, n_keys, head_dim])
    )  # [T * kv, group, head_dim]
    return ops.cast(out.reshape([-1, n_heads * head_dim]), xq.dtype)
