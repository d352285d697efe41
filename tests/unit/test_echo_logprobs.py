# SPDX-License-Identifier: Apache-2.0
"""Pure logic of forced-token and echo log probabilities: the API's checks and reshaping, and
the step's bookkeeping of entries that wait for the next forward pass."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from quote.hot import logprobs
from quote.hot.state import RequestState
from quote.sdk.context import RequestInfo
from quote.server.fanout import choice_plans
from quote.server.options import QuoteHTTPError
from quote.server.params import (
    NO_ECHO_FLAG,
    PREFIX_CACHE_ECHO,
    check_params,
    echo_logprobs_refusal,
)
from quote.server.shaping import ChoiceStream, Shape, shape_response

pytestmark = pytest.mark.unit


def _config(echo: bool, prefix: bool = False) -> Any:
    kv = SimpleNamespace(enable_prefix_caching=prefix)
    return SimpleNamespace(model=SimpleNamespace(enable_echo=echo, kv_cache=kv))


def test_refusal_depends_on_the_server_flags() -> None:
    assert echo_logprobs_refusal(_config(False)) == NO_ECHO_FLAG
    assert echo_logprobs_refusal(None) == NO_ECHO_FLAG
    assert echo_logprobs_refusal(_config(True, prefix=True)) == PREFIX_CACHE_ECHO
    assert echo_logprobs_refusal(_config(True)) is None
    assert "--enable-echo" in NO_ECHO_FLAG


def test_echo_with_logprobs_is_refused_only_without_support() -> None:
    body = {"prompt": "x", "echo": True, "logprobs": 2}
    with pytest.raises(QuoteHTTPError) as err:
        check_params(dict(body), chat=False)
    assert err.value.status == 400 and err.value.param == "logprobs"
    assert "--enable-echo" in err.value.message
    assert check_params(dict(body), chat=False, echo_refusal=None) == 1
    check_params({"prompt": "x", "echo": True}, chat=False)  # echo alone: always fine


def test_echo_reaches_max_only_with_logprobs() -> None:
    (plan,) = choice_plans({"model": "m", "echo": True, "logprobs": 1}, None, 1)
    assert plan[0]["echo"] is True
    for body in ({"model": "m", "echo": True}, {"model": "m", "echo": True, "logprobs": 0}):
        (plan,) = choice_plans(body, None, 1)
        assert "echo" not in plan[0]


def _choice(values: list[float]) -> dict[str, Any]:
    top = [{"a": v} for v in values]
    lp = {"token_logprobs": list(values), "top_logprobs": top, "tokens": None}
    return {"index": 0, "text": "t", "logprobs": lp}


def test_whole_response_leads_with_null_for_the_first_prompt_token() -> None:
    body = {"prompt": "Hi", "echo": True, "logprobs": 1}
    shape = Shape.of(body, chat=False, echo=("Hi",))
    assert shape.echo_logprobs
    data = shape_response({"choices": [_choice([-1.0, -2.0])]}, shape)
    (choice,) = data["choices"]
    assert choice["text"] == "Hit"
    assert choice["logprobs"]["token_logprobs"] == [None, -1.0, -2.0]
    assert choice["logprobs"]["top_logprobs"] == [None, {"a": -1.0}, {"a": -2.0}]
    plain = Shape.of({"prompt": "Hi", "logprobs": 1}, chat=False)
    data = shape_response({"choices": [_choice([-1.0])]}, plain)
    assert data["choices"][0]["logprobs"]["token_logprobs"] == [-1.0]


def test_stream_leads_with_null_once() -> None:
    shape = Shape.of({"prompt": "Hi", "echo": True, "logprobs": 1}, chat=False, echo=("Hi",))
    stream = ChoiceStream(shape)
    first = stream.chunk({"choices": [_choice([])]})  # no entries yet: nothing to lead
    assert first is not None and first["choices"][0]["logprobs"]["token_logprobs"] == []
    second = stream.chunk({"choices": [_choice([-1.0, -2.0])]})
    third = stream.chunk({"choices": [_choice([-3.0])]})
    assert second is not None and third is not None
    assert second["choices"][0]["logprobs"]["token_logprobs"] == [None, -1.0, -2.0]
    assert third["choices"][0]["logprobs"]["token_logprobs"] == [-3.0]


def _state(prompt_len: int = 5, delivered: int = 0) -> RequestState:
    st = RequestState(request_id="r", session=None, info=RequestInfo("r"))
    st.prompt_len, st.delivered, st.lp_pending = prompt_len, delivered, set()
    return st


def test_pending_entries_cap_delivery_and_the_next_forward() -> None:
    st = _state()
    assert logprobs.kv_floor(st) is None and logprobs.deliverable_end(st, 4) == 4
    logprobs.mark(st, 7, 10)  # a chunk at 6..9, the first token's entry already known
    assert st.lp_pending == {7, 8, 9}
    assert logprobs.kv_floor(st) == 6  # the forward must process position 6
    assert logprobs.deliverable_end(st, 5) == 2  # generated tokens before position 7
    st.delivered = 3
    assert logprobs.deliverable_end(st, 5) == 3  # never below what was delivered
    logprobs.drop_from(st, 8)  # a backtrack to length 8
    assert st.lp_pending == {7}


def test_flush_only_for_a_request_ending_with_its_tokens() -> None:
    st = _state()
    st.finish_reason = "length"
    assert not logprobs.needs_flush(st)
    logprobs.mark(st, 6, 7)
    assert logprobs.needs_flush(st)
    st.finish_reason = "error"
    assert not logprobs.needs_flush(st)
    untracked = RequestState(request_id="u", session=None, info=RequestInfo("u"))
    logprobs.mark(untracked, 6, 9)  # not tracked: no model logits for every position
    assert untracked.lp_pending is None and logprobs.kv_floor(untracked) is None


def test_prompt_entries_come_once_in_order() -> None:
    st = _state(prompt_len=4)
    st.echo_prompt = True
    ctx = SimpleNamespace(_log_probabilities_data={3: "c", 1: "a", 2: "b", 4: "gen"})
    assert logprobs.prompt_entries(st, ctx) == ["a", "b", "c"]
    assert logprobs.prompt_entries(st, ctx) == []
    assert ctx._log_probabilities_data == {4: "gen"}
