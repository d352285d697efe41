# SPDX-License-Identifier: Apache-2.0
"""The embedded tiny Gemma3 checkpoint: determinism, tokenizer, chat template, HF loading, CLI."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import quote.tiny as tiny
from quote.cli import main as cli_main
from quote.tiny.build_tokenizer import build_tokenizer

pytestmark = pytest.mark.unit

REPO = pathlib.Path(__file__).resolve().parents[2]
FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
)
VARIANTS = sorted(tiny.VARIANTS)
SPECIAL_STRINGS = ("<unk>", "<pad>", "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>")


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    """Each variant written once (seed 0)."""
    base = tmp_path_factory.mktemp("tiny")
    return {v: tiny.write_tiny_model(base / v, variant=v) for v in VARIANTS}


@pytest.fixture(scope="module")
def hf_tokenizer():  # type: ignore[no-untyped-def]
    return tiny.load_tokenizer()


@pytest.fixture(scope="module")
def raw_tokenizer():  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(tiny.TOKENIZER_PATH))


# --- files and determinism -------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_written_twice_is_byte_identical(
    variant: str, model_dirs: dict[str, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    again = tiny.write_tiny_model(tmp_path / "again", variant=variant, seed=0)
    assert sorted(p.name for p in again.iterdir()) == sorted(FILES)
    for name in FILES:
        assert (again / name).read_bytes() == (model_dirs[variant] / name).read_bytes(), name


def test_seed_changes_weights_only(
    model_dirs: dict[str, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    other = tiny.write_tiny_model(tmp_path / "seed1", seed=1)
    base = model_dirs["default"]
    assert (other / "model.safetensors").read_bytes() != (base / "model.safetensors").read_bytes()
    for name in FILES:
        if name != "model.safetensors":
            assert (other / name).read_bytes() == (base / name).read_bytes(), name


def test_unknown_variant_is_rejected(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="unknown tiny-model variant"):
        tiny.write_tiny_model(tmp_path, variant="nope")


def test_default_config(model_dirs: dict[str, pathlib.Path]) -> None:
    config = json.loads((model_dirs["default"] / "config.json").read_text())
    assert config == tiny.tiny_config("default")
    assert config["architectures"] == ["Gemma3ForCausalLM"]
    assert config["model_type"] == "gemma3_text"
    assert config["torch_dtype"] == "float32"
    assert config["vocab_size"] == 1024
    assert (config["hidden_size"], config["intermediate_size"]) == (128, 256)
    assert config["layer_types"] == ["sliding_attention", "full_attention"]
    assert (config["sliding_window"], config["sliding_window_pattern"]) == (256, 2)
    heads = (config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"])
    assert heads == (4, 2, 32)
    assert config["query_pre_attn_scalar"] == 32
    assert config["attn_logit_softcapping"] is None
    assert config["final_logit_softcapping"] is None
    assert config["tie_word_embeddings"] is True
    assert (config["bos_token_id"], config["eos_token_id"], config["pad_token_id"]) == (2, 1, 0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_layer_type_encodings_agree(variant: str) -> None:
    config = tiny.tiny_config(variant)
    pattern = config["sliding_window_pattern"]
    expected = [
        "full_attention" if (i + 1) % pattern == 0 else "sliding_attention"
        for i in range(config["num_hidden_layers"])
    ]
    assert config["layer_types"] == expected
    assert "sliding_attention" in expected and "full_attention" in expected


@pytest.mark.parametrize("variant", VARIANTS)
def test_safetensors_layout(variant: str, model_dirs: dict[str, pathlib.Path]) -> None:
    from safetensors import safe_open

    config = tiny.tiny_config(variant)
    expected = {"model.embed_tokens.weight", "model.norm.weight"}
    for i in range(config["num_hidden_layers"]):
        for name in (
            "input_layernorm",
            "post_attention_layernorm",
            "pre_feedforward_layernorm",
            "post_feedforward_layernorm",
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "self_attn.o_proj",
            "self_attn.q_norm",
            "self_attn.k_norm",
            "mlp.gate_proj",
            "mlp.up_proj",
            "mlp.down_proj",
        ):
            expected.add(f"model.layers.{i}.{name}.weight")
    with safe_open(str(model_dirs[variant] / "model.safetensors"), framework="numpy") as f:
        assert f.metadata() == {"format": "pt"}
        assert set(f.keys()) == expected
        embed = f.get_tensor("model.embed_tokens.weight")
        assert embed.shape == (config["vocab_size"], config["hidden_size"])
        assert all(str(f.get_tensor(k).dtype) == "float32" for k in f.keys())


# --- tokenizer ------------------------------------------------------------------------------


def test_shipped_tokenizer_matches_build_script(raw_tokenizer) -> None:  # type: ignore[no-untyped-def]
    rebuilt = build_tokenizer()
    assert json.loads(rebuilt.to_str()) == json.loads(
        tiny.TOKENIZER_PATH.read_text(encoding="utf-8")
    )


def test_special_token_ids(hf_tokenizer, raw_tokenizer) -> None:  # type: ignore[no-untyped-def]
    ids = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<start_of_turn>": 4, "<end_of_turn>": 5}
    for token, index in ids.items():
        assert raw_tokenizer.token_to_id(token) == index
        assert hf_tokenizer.convert_tokens_to_ids(token) == index
    assert hf_tokenizer.pad_token_id == 0 and hf_tokenizer.eos_token_id == 1
    assert hf_tokenizer.bos_token_id == 2
    assert hf_tokenizer.unk_token_id == 3
    assert len(hf_tokenizer) == 1024
    assert {4, 5} <= set(hf_tokenizer.all_special_ids)


def test_bos_only_with_special_tokens(hf_tokenizer) -> None:  # type: ignore[no-untyped-def]
    with_bos = hf_tokenizer("hello world").input_ids
    without = hf_tokenizer("hello world", add_special_tokens=False).input_ids
    assert with_bos == [2, *without]
    assert 2 not in without
    # Special tokens written in the text are single tokens.
    assert hf_tokenizer("<start_of_turn>", add_special_tokens=False).input_ids == [4]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=64))
def test_round_trip_any_text(raw_tokenizer, text: str) -> None:  # type: ignore[no-untyped-def]
    encoding = raw_tokenizer.encode(text, add_special_tokens=False)
    # Text that spells a special token (e.g. "<unk>") is parsed as that token, as with Gemma.
    if not any(s in text for s in SPECIAL_STRINGS):
        assert tiny.UNK_ID not in encoding.ids
    assert raw_tokenizer.decode(encoding.ids, skip_special_tokens=False) == text


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=48))
def test_round_trip_through_transformers(hf_tokenizer, text: str) -> None:  # type: ignore[no-untyped-def]
    # Text spelling a special token is parsed as that token (as with Gemma); skip it here.
    assume(not any(s in text for s in SPECIAL_STRINGS))
    ids = hf_tokenizer(text).input_ids
    assert ids[0] == tiny.BOS_ID
    assert hf_tokenizer.decode(ids, skip_special_tokens=True) == text
    assert hf_tokenizer.decode(ids[1:]) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "  leading",
        "trailing \n",
        "\x00\x01\x7f\r\n\t",
        "😀🎉 ❤️ é ß 漢字",
        "a , b . c ' d",
        "<bos>",
    ],
)
def test_round_trip_examples(hf_tokenizer, text: str) -> None:  # type: ignore[no-untyped-def]
    ids = hf_tokenizer(text, add_special_tokens=False).input_ids
    assert hf_tokenizer.decode(ids) == text


# --- chat template --------------------------------------------------------------------------


def test_chat_template_gemma_style(hf_tokenizer) -> None:  # type: ignore[no-untyped-def]
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": " Hi "},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": [{"type": "text", "text": "Why?"}]},
    ]
    text = hf_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
        "<start_of_turn>model\nHello<end_of_turn>\n"
        "<start_of_turn>user\nWhy?<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
    no_prompt = hf_tokenizer.apply_chat_template(messages[1:2], tokenize=False)
    assert no_prompt == "<bos><start_of_turn>user\nHi<end_of_turn>\n"
    ids = hf_tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=False)
    assert ids[:2] == [2, 4] and ids.count(2) == 1
    assert ids == hf_tokenizer(text, add_special_tokens=False).input_ids


def test_chat_template_from_written_dir(model_dirs: dict[str, pathlib.Path]) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dirs["default"])
    assert len(tokenizer) == 1024 and tokenizer.bos_token_id == 2
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hello"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "<bos><start_of_turn>user\nhello<end_of_turn>\n<start_of_turn>model\n"


def test_chat_template_with_tools(hf_tokenizer) -> None:  # type: ignore[no-untyped-def]
    tools = [
        {
            "type": "function",
            "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
        }
    ]
    messages = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "Oslo"}},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": "rain"},
    ]
    text = hf_tokenizer.apply_chat_template(
        messages, tools=tools, tokenize=False, add_generation_prompt=True
    )
    assert text.startswith("<bos><start_of_turn>user\nS\n\nYou can call these tools.")
    assert '"name": "get_weather"' in text
    assert (
        '<start_of_turn>model\n<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}'
        '</tool_call><tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'
        "<end_of_turn>\n"
    ) in text
    assert (
        "<start_of_turn>user\n<tool_response>get_weather: sunny</tool_response><end_of_turn>\n"
        in text
    )
    assert "<tool_response>rain</tool_response>" in text
    assert text.endswith("<start_of_turn>model\n")


def test_chat_template_system_only(hf_tokenizer) -> None:  # type: ignore[no-untyped-def]
    text = hf_tokenizer.apply_chat_template([{"role": "system", "content": "S"}], tokenize=False)
    assert text == "<bos><start_of_turn>user\nS<end_of_turn>\n"


# --- transformers loading -------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_transformers_loads_and_generates(
    variant: str, model_dirs: dict[str, pathlib.Path]
) -> None:
    import torch
    from transformers import AutoConfig, Gemma3ForCausalLM

    path = model_dirs[variant]
    expected = tiny.tiny_config(variant)
    config = AutoConfig.from_pretrained(path)
    assert type(config).__name__ == "Gemma3TextConfig"
    assert config.layer_types == expected["layer_types"]
    assert config.sliding_window == 256
    assert config.final_logit_softcapping == expected["final_logit_softcapping"]
    assert config.attn_logit_softcapping == expected["attn_logit_softcapping"]
    if hasattr(config, "rope_parameters"):
        assert config.rope_parameters["full_attention"]["rope_theta"] == 1e6
        assert config.rope_parameters["sliding_attention"]["rope_theta"] == 1e4
        assert config.rope_parameters["sliding_attention"]["rope_type"] == "default"
        linear = expected["rope_scaling"] is not None
        assert (config.rope_parameters["full_attention"]["rope_type"] == "linear") == linear

    model, info = Gemma3ForCausalLM.from_pretrained(
        path, dtype=torch.float32, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert not info["mismatched_keys"] and not info["error_msgs"]
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert next(model.parameters()).dtype == torch.float32

    tokenizer = tiny.load_tokenizer()
    prompt = tokenizer("The quick brown fox", return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(
            prompt, max_new_tokens=20, do_sample=False, eos_token_id=None, pad_token_id=0
        )
    generated = out[0, prompt.shape[1] :].tolist()
    assert len(generated) == 20
    assert len(set(generated)) > 1, generated


# --- CLI ------------------------------------------------------------------------------------


def test_cli_main(tmp_path: pathlib.Path, model_dirs: dict[str, pathlib.Path], capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "cli"
    assert cli_main(["tiny-model", str(out), "--variant", "softcap", "--seed", "0"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    for name in FILES:
        assert (out / name).read_bytes() == (model_dirs["softcap"] / name).read_bytes()
    with pytest.raises(SystemExit):
        cli_main(["tiny-model", str(out), "--variant", "nope"])


def test_cli_subprocess(tmp_path: pathlib.Path, model_dirs: dict[str, pathlib.Path]) -> None:
    out = tmp_path / "sub"
    result = subprocess.run(
        [sys.executable, "-m", "quote.cli", "tiny-model", str(out)],
        cwd=REPO,
        # Python's own copy of the environment: MAX's native code (loaded by integration
        # tests earlier in the session) edits the C-level environment of this process.
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (out / "model.safetensors").read_bytes() == (
        model_dirs["default"] / "model.safetensors"
    ).read_bytes()


def test_serve_command_uses_quote_architecture() -> None:
    from quote.cli import build_parser, serve_command

    args = build_parser().parse_args(["serve", "--model", "/m", "--port", "9001"])
    cmd = serve_command(args)
    assert cmd[1:4] == ["serve", "--custom-architectures", "quote.custom_arch"]
    assert cmd[cmd.index("--model-path") + 1] == "/m" and cmd[cmd.index("--port") + 1] == "9001"
    assert cmd[cmd.index("--devices") + 1] == "cpu"
    assert "--max-batch-size" not in cmd
    args = build_parser().parse_args(["serve", "--max-batch-size", "16"])
    assert serve_command(args)[-2:] == ["--max-batch-size", "16"]


def test_serve_command_without_max_script_runs_max_in_this_interpreter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os
    import shutil
    import sys

    from quote.cli import build_parser, serve_command

    monkeypatch.setattr(os.path, "exists", lambda path: False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    cmd = serve_command(build_parser().parse_args(["serve", "--model", "/m"]))
    assert cmd[:2] == [sys.executable, "-c"] and "max._entrypoints.pipelines" in cmd[2]
    assert cmd[3:6] == ["serve", "--custom-architectures", "quote.custom_arch"]
