# SPDX-License-Identifier: Apache-2.0
"""The per-step mask action of a strategy: a sparse allow-list or a packed bitmask.

Neither reads the step's logits, so the engine can mask on the device: small masks
(up to :data:`~quote.sdk.strategies.base.SPARSE_LIMIT` tokens) travel as an ``allow``
list, larger ones as an ``allow_bitmask`` (bit ``t % 32`` of word ``t // 32``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from quote.sdk.actions import Action
from quote.sdk.bitmask import bitmask_ids, pack_ids, popcount
from quote.sdk.builder import ActionBuilder
from quote.sdk.events import ForwardPass
from quote.sdk.strategies.base import SPARSE_LIMIT

__all__ = ["bitmask_action", "mask_action"]


def bitmask_action(
    actions: ActionBuilder,
    words: npt.NDArray[np.int32],
    *,
    temperature: float | None = None,
) -> Action:
    """An ``AdjustedLogits`` allowing the tokens set in ``words`` (at least one).

    Up to :data:`SPARSE_LIMIT` tokens it is a sparse ``allow`` list, else the bitmask itself.
    """
    if popcount(words) <= SPARSE_LIMIT:
        return actions.adjust_logits(allow=bitmask_ids(words).tolist(), temperature=temperature)
    return actions.adjust_logits(allow_bitmask=words, temperature=temperature)


def mask_action(
    actions: ActionBuilder,
    event: ForwardPass,
    ids: npt.NDArray[np.int64],
    *,
    temperature: float | None = None,
) -> Action:
    """An ``AdjustedLogits`` allowing only ``ids`` (sorted, unique, non-empty).

    Up to :data:`SPARSE_LIMIT` ids it is a sparse ``allow`` edit; beyond, a packed
    ``allow_bitmask``. Ids past the logits row are dropped when the row is already on
    the host (the event's logits are never fetched for this).
    """
    if event.logits_loaded and ids.shape[0] and int(ids[-1]) >= event.logits.shape[0]:
        ids = ids[ids < event.logits.shape[0]]
    if ids.shape[0] <= SPARSE_LIMIT:
        return actions.adjust_logits(allow=ids.tolist(), temperature=temperature)
    return actions.adjust_logits(
        allow_bitmask=pack_ids(ids, int(ids[-1]) + 1), temperature=temperature
    )
