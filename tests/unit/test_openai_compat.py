# SPDX-License-Identifier: Apache-2.0
"""Pure logic of Quote's OpenAI compatibility layer: parameter checks, seeds, stop trimming,
response reshaping and the per-choice stream reshaper."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from quote.server.fanout import choice_plans
from quote.server.options import QuoteHTTPError
from quote.server.params import ZERO_SEED, check_model, check_params, choice_seed
from quote.server.shaping import ChoiceStream, Shape, StopTrimmer, echo_texts, shape_response

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("temperature", 5, "decimal_above_max_value"),
        ("temperature", -0.1, "decimal_below_min_value"),
        ("top_p", 2, "decimal_above_max_value"),
        ("max_tokens", -1, "integer_below_min_value"),
        ("max_tokens", 0, "integer_below_min_value"),
        ("max_completion_tokens", 0, "integer_below_min_value"),
        ("n", 0, "integer_below_min_value"),
        ("n", 9, "integer_above_max_value"),
        ("n", 1.5, "invalid_type"),
        ("presence_penalty", 3, "decimal_above_max_value"),
        ("frequency_penalty", -3, "decimal_below_min_value"),
        ("temperature", "hot", "invalid_type"),
        ("max_tokens", True, "invalid_type"),
        ("top_logprobs", 8, "integer_above_max_value"),
        ("stop", ["a", "b", "c", "d", "e"], "array_above_max_length"),
        ("stop", [""], "invalid_value"),
        ("stop", 3, "invalid_type"),
        ("logit_bias", {"1": 5}, "unsupported_parameter"),
        ("seed", "x", "invalid_type"),
        ("stream", "yes", "invalid_type"),
    ],
)
def test_bad_chat_parameters_name_the_param(field: str, value: Any, code: str) -> None:
    body: dict[str, Any] = {"model": "m", "messages": [], field: value}
    if field == "top_logprobs":
        body["logprobs"] = True
    with pytest.raises(QuoteHTTPError) as err:
        check_params(body, chat=True)
    assert err.value.status == 400 and err.value.param == field and err.value.code == code
    assert field in err.value.message


def test_good_parameters_pass_and_n_is_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    body = {"temperature": 2, "top_p": 0, "n": 3, "stop": "x", "seed": -5, "logit_bias": {}}
    assert check_params(body, chat=True) == 3
    assert check_params({}, chat=False) == 1
    monkeypatch.setenv("QUOTE_MAX_N", "2")
    with pytest.raises(QuoteHTTPError, match="<= 2"):
        check_params({"n": 3}, chat=True)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"echo": True, "logprobs": 1}, "logprobs"),
        ({"logprobs": 6}, "logprobs"),
        ({"suffix": "x"}, "suffix"),
        ({"best_of": 3, "n": 2}, "best_of"),
        ({"stream": True, "prompt": ["a", "b"]}, "prompt"),
        ({"echo": "yes"}, "echo"),
    ],
)
def test_bad_completion_parameters(body: dict[str, Any], param: str) -> None:
    with pytest.raises(QuoteHTTPError) as err:
        check_params(body, chat=False)
    assert err.value.param == param


def test_top_logprobs_needs_logprobs() -> None:
    with pytest.raises(QuoteHTTPError) as err:
        check_params({"top_logprobs": 2}, chat=True)
    assert err.value.param == "top_logprobs"


def test_model_check() -> None:
    check_model("srv", "srv", [])
    check_model("srv/mod", "srv", [])
    check_model("lora1", "srv", ["lora1"])
    check_model("", "srv", [])
    with pytest.raises(QuoteHTTPError) as err:
        check_model("gpt-4o", "srv", [])
    assert err.value.status == 404 and err.value.code == "model_not_found"
    for bad in (None, 3):
        with pytest.raises(QuoteHTTPError) as err:
            check_model(bad, "srv", [])
        assert err.value.status == 400 and err.value.param == "model"


def test_choice_seeds_differ_and_zero_is_a_real_seed() -> None:
    assert choice_seed(7, 0) == 7
    seeds = {choice_seed(7, i) for i in range(8)}
    assert len(seeds) == 8 and 0 not in seeds
    assert choice_seed(0, 0) == ZERO_SEED
    assert choice_seed(-5, 0) == -5 and choice_seed(-5, 1) > 0


def test_choice_plans_give_each_choice_its_ticket_and_seed() -> None:
    body = {"model": "m", "n": 3, "seed": 1, "echo": True, "best_of": 3}
    opts = {"ticket": "t0", "mods": ["a"], "choice_index": 0}
    plans = choice_plans(body, opts, 3)
    assert [p[1]["choice_index"] for p in plans] == [0, 1, 2]  # type: ignore[index]
    assert plans[0][1]["ticket"] == "t0"  # type: ignore[index]
    assert len({p[1]["ticket"] for p in plans}) == 3  # type: ignore[index]
    assert len({p[0]["seed"] for p in plans}) == 3
    assert all("n" not in p[0] and "echo" not in p[0] and "best_of" not in p[0] for p in plans)
    assert choice_plans({"model": "m"}, None, 2)[1] == ({"model": "m"}, None)


@pytest.mark.parametrize(
    ("pieces", "stops", "expected"),
    [
        (["Hel", "lo wo", "rld"], ("o w",), "Hell"),
        (["ab", "c"], ("bc",), "a"),
        (["a", "b", "x"], ("abc",), "abx"),
        (["xyz"], ("y", "x"), ""),
        (["no stop here"], ("zz",), "no stop here"),
    ],
)
def test_stop_trimmer(pieces: list[str], stops: tuple[str, ...], expected: str) -> None:
    t = StopTrimmer(stops)
    out = "".join(t.feed(p) for p in pieces)
    out += "" if t.hit else t.flush()
    assert out == expected
    assert t.hit == (expected != "".join(pieces))


def _chat_chunk(content: str | None, finish: str | None = None) -> dict[str, Any]:
    delta: dict[str, Any] = {"role": "assistant"}
    if content is not None:
        delta["content"] = content
    return {"id": "x", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def test_chat_stream_trims_stop_and_sends_one_finish() -> None:
    cs = ChoiceStream(Shape(True, ("ec",)), index=2, response_id="rid")
    chunks = [_chat_chunk(" PM"), _chat_chunk("{e"), _chat_chunk("cho", "stop"), _chat_chunk("")]
    chunks[-1]["choices"][0]["finish_reason"] = "stop"
    out = [c for c in (cs.chunk(copy.deepcopy(ch)) for ch in chunks) if c is not None]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in out)
    assert text == " PM{"
    assert [c["choices"][0]["finish_reason"] for c in out].count("stop") == 1
    assert all(c["choices"][0]["index"] == 2 and c["id"] == "rid" for c in out)


def test_completion_stream_echo_and_flush() -> None:
    cs = ChoiceStream(Shape(False, ("zz",), echo=("Once",)))
    first = cs.chunk({"choices": [{"index": 0, "text": " upon z", "finish_reason": None}]})
    last = cs.chunk({"choices": [{"index": 0, "text": "", "finish_reason": "length"}]})
    assert first is not None and first["choices"][0]["text"] == "Once upon "
    assert last is not None and last["choices"][0]["text"] == "z"
    assert first["choices"][0]["logprobs"] is None


def test_whole_chat_response_is_reshaped() -> None:
    top = [
        {"token": "a", "logprob": -1.0},
        {"token": "b", "logprob": -2.0},
        {"token": "c", "logprob": -3.0},
    ]
    data = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "length",
                "message": {"content": "hello STOP more", "refusal": ""},
                "logprobs": {"content": [{"token": "c", "top_logprobs": top}], "refusal": []},
            }
        ]
    }
    shape_response(data, Shape(True, ("STOP",), logprobs=True, top_logprobs=2))
    choice = data["choices"][0]
    assert choice["message"] == {"content": "hello ", "refusal": None}
    assert choice["finish_reason"] == "stop"
    assert choice["logprobs"]["refusal"] is None
    assert [t["token"] for t in choice["logprobs"]["content"][0]["top_logprobs"]] == ["a", "b"]
    plain = {"choices": [{"message": {"content": "x", "refusal": ""}, "logprobs": {}}]}
    shape_response(plain, Shape(True))
    assert plain["choices"][0]["logprobs"] is None


def test_completion_echo_per_prompt() -> None:
    data = {"choices": [{"index": 0, "text": " a"}, {"index": 1, "text": " b"}]}
    shape_response(data, Shape(False, echo=("P0", "P1")))
    assert [c["text"] for c in data["choices"]] == ["P0 a", "P1 b"]
    assert echo_texts([[1, 2], [3]], lambda ids: "-".join(map(str, ids))) == ("1-2", "3")
    assert echo_texts("hi", str) == ("hi",)
