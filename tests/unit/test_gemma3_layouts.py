# SPDX-License-Identifier: Apache-2.0
"""Gemma 3 checkpoint layouts: weight names, the CPU encoding rule, the tiny multimodal model.

No MAX compile here; the engine side is ``tests/integration/test_gemma3_multimodal.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gemma3_configs import PUBLISHED, TEXT_DEFAULTS, full_text_config, scaled_text_config

from quote.cli import build_parser, serve_command
from quote.cli import main as cli_main
from quote.custom_arch.gemma3.weight_adapters import language_model_name
from quote.pipelines.encoding import checkpoint_architecture, cpu_encoding
from quote.tiny import multimodal, tiny_weights, write_tiny_model
from quote.tiny.multimodal import write_tiny_multimodal_model

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("checkpoint_name", "graph_name"),
    [
        ("model.layers.3.self_attn.q_proj.weight", "layers.3.self_attn.q_proj.weight"),
        ("model.embed_tokens.weight", "embed_tokens.weight"),
        ("lm_head.weight", "lm_head.weight"),
        ("language_model.model.layers.0.mlp.up_proj.weight", "layers.0.mlp.up_proj.weight"),
        ("language_model.model.norm.weight", "norm.weight"),
        ("language_model.lm_head.weight", "lm_head.weight"),
        ("model.language_model.layers.1.input_layernorm.weight", "layers.1.input_layernorm.weight"),
        ("model.language_model.embed_tokens.weight", "embed_tokens.weight"),
        ("vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight", None),
        ("vision_tower.encoder.layers.0.mlp.fc1.weight", None),
        ("model.vision_tower.embeddings.patch_embedding.weight", None),
        ("multi_modal_projector.mm_input_projection_weight", None),
        ("model.multi_modal_projector.mm_soft_emb_norm.weight", None),
    ],
)
def test_language_model_names(checkpoint_name: str, graph_name: str | None) -> None:
    assert language_model_name(checkpoint_name) == graph_name


@pytest.mark.parametrize("layout", multimodal.LAYOUTS)
def test_every_language_weight_maps_to_the_causal_name(layout: str) -> None:
    """Both multimodal layouts give exactly the graph names of the causal checkpoint."""
    causal = {n.removeprefix("model."): v for n, v in tiny_weights("default").items()}
    assert all(language_model_name(n) == n.removeprefix("model.") for n in tiny_weights())
    mm = {}
    for name, value in multimodal.multimodal_weights("default", 0, layout).items():
        key = language_model_name(name)
        if key is not None:
            mm[key] = value
    assert mm.keys() == causal.keys()
    for key, value in causal.items():  # same weights; the embedding has 3 more rows
        assert (mm[key][: value.shape[0]] == value).all(), key
    assert mm["embed_tokens.weight"].shape[0] == multimodal.VOCAB_SIZE


def test_cpu_encoding(tmp_path: Path) -> None:
    gemma = write_tiny_multimodal_model(tmp_path / "mm")
    other = tmp_path / "llama"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    assert checkpoint_architecture(gemma) == "Gemma3ForConditionalGeneration"
    assert checkpoint_architecture(tmp_path / "missing") is None
    assert cpu_encoding(gemma, "cpu", None) == "float32"
    assert cpu_encoding(gemma, "cpu", "bfloat16") == "bfloat16"  # the caller's choice wins
    assert cpu_encoding(gemma, "gpu", None) is None
    assert cpu_encoding(gemma, "gpu:0", None) is None
    assert cpu_encoding(other, "cpu", None) is None
    assert cpu_encoding("google/gemma-3-4b-it", "cpu", None) is None  # not a local directory


def test_serve_asks_for_float32_on_cpu_only(tmp_path: Path) -> None:
    model = str(write_tiny_model(tmp_path / "causal"))

    def cmd(*argv: str) -> list[str]:
        args, extra = build_parser().parse_known_args(["serve", "--model", model, *argv])
        args.max_args = extra  # as quote.cli.main does
        return serve_command(args)

    on_cpu = cmd()
    assert on_cpu[on_cpu.index("--quantization-encoding") + 1] == "float32"
    assert "--quantization-encoding" not in cmd("--devices", "gpu")
    own = cmd("--quantization-encoding", "bfloat16")
    assert own.count("--quantization-encoding") == 1
    assert own[own.index("--quantization-encoding") + 1] == "bfloat16"
    own = cmd("--quantization-encoding=bfloat16")
    assert "--quantization-encoding" not in own and own[-1] == "--quantization-encoding=bfloat16"


def test_tiny_multimodal_is_deterministic_and_cli_writes_it(tmp_path: Path) -> None:
    a = write_tiny_multimodal_model(tmp_path / "a", layout="v5")
    b = write_tiny_multimodal_model(tmp_path / "b", layout="v5")
    assert cli_main(["tiny-model", "--layout", "multimodal-v5", str(tmp_path / "c")]) == 0
    for f in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (a / f).read_bytes() == (b / f).read_bytes() == (tmp_path / "c" / f).read_bytes()
    config = json.loads((a / "config.json").read_text())
    assert config["architectures"] == ["Gemma3ForConditionalGeneration"]
    assert config["text_config"]["vocab_size"] == multimodal.VOCAB_SIZE
    assert (config["boi_token_index"], config["eoi_token_index"]) == (1024, 1025)
    assert config["image_token_index"] == 1026 and config["mm_tokens_per_image"] == 4
    with pytest.raises(ValueError, match="unknown multimodal weight layout 'v6'"):
        write_tiny_multimodal_model(tmp_path / "d", layout="v6")


@pytest.mark.parametrize("layout", multimodal.LAYOUTS)
def test_transformers_loads_every_weight_of_the_tiny_multimodal_model(
    layout: str, tmp_path: Path
) -> None:
    """Vision tower and projector included: transformers can be the oracle for images."""
    import torch
    from transformers import AutoTokenizer, Gemma3ForConditionalGeneration

    path = write_tiny_multimodal_model(tmp_path, layout=layout)
    model, info = Gemma3ForConditionalGeneration.from_pretrained(
        path, dtype=torch.float32, output_loading_info=True
    )
    assert not any(info.values()), info
    tokenizer = AutoTokenizer.from_pretrained(path)
    ids = tokenizer.convert_tokens_to_ids(list(multimodal.IMAGE_TOKENS))
    assert ids == list(multimodal.IMAGE_TOKENS.values())
    assert tokenizer.image_token == "<image_soft_token>"
    pixels = torch.rand(1, 3, 56, 56)
    with torch.no_grad():
        image_features = model.get_image_features(pixel_values=pixels)
    features = getattr(image_features, "pooler_output", image_features)
    assert tuple(features.shape)[-2:] == (multimodal.MM_TOKENS_PER_IMAGE, 128)


def test_published_defaults_match_transformers() -> None:
    """The defaults the 4B/12B/27B text configs rely on are transformers' own."""
    from transformers import Gemma3TextConfig

    defaults = Gemma3TextConfig()
    for key, value in TEXT_DEFAULTS.items():
        if key in ("rope_theta", "rope_local_base_freq", "sliding_window_pattern"):
            continue
        assert getattr(defaults, key) == value, key
    assert defaults.rope_parameters["full_attention"]["rope_theta"] == TEXT_DEFAULTS["rope_theta"]
    local = defaults.rope_parameters["sliding_attention"]["rope_theta"]
    assert local == TEXT_DEFAULTS["rope_local_base_freq"]
    assert defaults._sliding_window_pattern == TEXT_DEFAULTS["sliding_window_pattern"]


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_scaled_configs_keep_the_structure(name: str) -> None:
    from transformers import Gemma3TextConfig

    real, small = full_text_config(name), scaled_text_config(name, 1024)
    for key in (
        "head_dim",
        "query_pre_attn_scalar",
        "sliding_window",
        "rope_theta",
        "rope_local_base_freq",
        "rope_scaling",
        "final_logit_softcapping",
        "attn_logit_softcapping",
    ):
        assert small[key] == real[key], key
    ratio = real["num_attention_heads"] // real["num_key_value_heads"]
    assert small["num_attention_heads"] // small["num_key_value_heads"] == ratio
    assert small["num_attention_heads"] == min(real["num_attention_heads"], 8)
    config = Gemma3TextConfig(**small)
    assert config.layer_types == ["sliding_attention"] * 5 + ["full_attention"]
    expected_factor = 8.0 if real["rope_scaling"] else None
    assert config.rope_parameters["full_attention"].get("factor") == expected_factor


def test_scaled_releases_share_graphs_only_where_their_structure_is_the_same() -> None:
    """Three distinct graphs (three MAX compiles): {270m, 1b}, {4b, 12b}, {27b}."""
    small = {name: json.dumps(scaled_text_config(name, 1024), sort_keys=True) for name in PUBLISHED}
    assert small["gemma-3-270m"] == small["gemma-3-1b-it"]
    assert small["gemma-3-4b-it"] == small["gemma-3-12b-it"]
    assert len(set(small.values())) == 3
