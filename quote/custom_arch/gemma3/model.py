# SPDX-License-Identifier: Apache-2.0
"""``QuoteGemma3Model``: the MAX pipeline model that compiles and runs :class:`QuoteGemma3`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from max.driver import Buffer, Device
from max.engine import InferenceSession, Model
from max.graph.weights import Weights, WeightsAdapter
from max.nn.kv_cache import KVCacheInputs
from max.nn.transformer import ReturnLogits
from max.pipelines.context import TextContext
from max.pipelines.lib import (
    KVCacheConfig,
    ModelInputs,
    ModelOutputs,
    PipelineConfig,
    PipelineModelWithKVCache,
)
from max.pipelines.lib.graph_specs import GraphRole, GraphSpec
from max.pipelines.lib.interfaces.batch_processor import SingleReplicaRaggedBatchProcessor
from max.pipelines.lib.log_probabilities import LogProbabilitiesMixin
from max.pipelines.lib.memory_estimation import MemoryPlan

from quote.custom_arch.gemma3.config import QuoteGemma3Config
from quote.custom_arch.gemma3.graph import QuoteGemma3

__all__ = ["QuoteGemma3BatchProcessor", "QuoteGemma3Inputs", "QuoteGemma3Model", "model_outputs"]

logger = logging.getLogger(__name__)


@dataclass
class QuoteGemma3Inputs(ModelInputs):
    """Ragged batch inputs of one forward pass."""

    tokens: Buffer
    """All active tokens of the batch, concatenated."""
    input_row_offsets: Buffer
    """Start of each request's tokens in :attr:`tokens`, plus the total."""
    return_n_logits: Buffer
    """How many logits rows to return per request (1: last token)."""

    @property
    def buffers(self) -> tuple[Buffer, ...]:
        """Graph arguments in input order."""
        assert self.kv_cache_inputs is not None
        from max import tree

        return (
            self.tokens,
            self.input_row_offsets,
            self.return_n_logits,
            *tree.leaves(self.kv_cache_inputs),
        )


class QuoteGemma3BatchProcessor(SingleReplicaRaggedBatchProcessor[TextContext, QuoteGemma3Inputs]):
    """Ragged batching for one device, no signal buffers."""

    _include_signal_buffers = False

    def _make_inputs(
        self,
        *,
        tokens: Buffer,
        input_row_offsets: Buffer,
        return_n_logits: Buffer,
        kv_cache_inputs: KVCacheInputs[Buffer, Buffer] | None,
        signal_buffers: list[Buffer],
    ) -> QuoteGemma3Inputs:
        return QuoteGemma3Inputs(
            tokens=tokens,
            input_row_offsets=input_row_offsets,
            return_n_logits=return_n_logits,
            kv_cache_inputs=kv_cache_inputs,
        )


class QuoteGemma3Model(
    LogProbabilitiesMixin, PipelineModelWithKVCache[TextContext, QuoteGemma3Config, Model]
):
    """Loads the checkpoint, builds and compiles :class:`QuoteGemma3`, runs forward passes."""

    model_config_cls: ClassVar[type[Any]] = QuoteGemma3Config
    batch_processor_cls: ClassVar[type[QuoteGemma3BatchProcessor]] = QuoteGemma3BatchProcessor

    def __init__(
        self,
        pipeline_config: PipelineConfig,
        session: InferenceSession,
        devices: list[Device],
        kv_cache_config: KVCacheConfig,
        weights: Weights,
        *,
        memory_plan: MemoryPlan,
        adapter: WeightsAdapter | None = None,
        return_logits: ReturnLogits = ReturnLogits.LAST_TOKEN,
        max_batch_size: int = 1,
    ) -> None:
        super().__init__(
            pipeline_config,
            session,
            devices,
            kv_cache_config,
            weights,
            adapter=adapter,
            return_logits=return_logits,
            max_batch_size=max_batch_size,
            memory_plan=memory_plan,
        )
        self._weights_by_name: dict[str, Any] = {}
        self._models = self.load_graphs(session)

    @property
    def model(self) -> Model:
        """The compiled decoder."""
        return self._models[GraphRole.DECODER]

    @classmethod
    def get_num_layers(cls, huggingface_config: Any) -> int:
        """Number of decoder layers."""
        return int(QuoteGemma3Config.get_num_layers(huggingface_config))

    def _load_state_dict(self) -> dict[str, Any]:
        if self.adapter:
            self._weights_by_name = self.adapter(
                dict(self.weights.items()),
                huggingface_config=self.huggingface_config,
                pipeline_config=self.pipeline_config,
            )
        else:
            self._weights_by_name = {k: v.data() for k, v in self.weights.items()}
        return self._weights_by_name

    def _create_model_config(self, state_dict: dict[str, Any]) -> QuoteGemma3Config:
        config = QuoteGemma3Config.initialize_from_config(
            self.pipeline_config, self.huggingface_config, max_seq_len=self.max_seq_len
        )
        config.tie_word_embeddings = (
            bool(getattr(self.huggingface_config, "tie_word_embeddings", True))
            or "lm_head.weight" not in state_dict
        )
        config.return_logits = self.return_logits
        return config

    def graph_specs(self, model_config: QuoteGemma3Config) -> dict[str, GraphSpec]:
        """The decoder graph with its weights bound."""
        graph = QuoteGemma3(model_config)
        graph.load_state_dict(self._weights_by_name, weight_alignment=1, strict=True)
        self._weights_by_name = {}
        return {
            GraphRole.DECODER: GraphSpec(
                graph,
                "quote_gemma3",
                self._bind_graph_inputs(graph.input_tree()),
                weights=graph.state_dict(auto_initialize=False),
            )
        }

    def execute(self, model_inputs: ModelInputs) -> ModelOutputs:
        """Run one forward pass over a ragged batch."""
        assert isinstance(model_inputs, QuoteGemma3Inputs)
        return model_outputs(self.model.execute(*model_inputs.buffers))


def model_outputs(outputs: Sequence[Any]) -> ModelOutputs:
    """The decoder's outputs as MAX's ``ModelOutputs`` (with all logits when returned)."""
    if len(outputs) == 3:
        return ModelOutputs(
            logits=outputs[1], next_token_logits=outputs[0], logit_offsets=outputs[2]
        )
    return ModelOutputs(logits=outputs[0], next_token_logits=outputs[0])
