# SPDX-License-Identifier: Apache-2.0
"""Checking OpenAI request parameters before MAX sees them (pure logic).

MAX answers most bad values with a bare ``400 "Value error."``; :func:`check_params`
answers them first, OpenAI-style: status 400, ``error.param`` naming the field, a
``code`` such as ``decimal_above_max_value`` and a message giving the allowed range.
The ranges are OpenAI's, narrowed where MAX can do less (``top_logprobs`` <= 7).

It also answers an unknown model with 404 ``model_not_found`` and refuses parameters
that MAX would silently ignore (``logit_bias``, ``suffix``, ``best_of`` other than ``n``)
or that this server cannot answer (``echo`` with ``logprobs`` without ``--enable-echo``: see
:func:`echo_logprobs_refusal`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Collection
from typing import Any, TypeGuard

from quote.server.options import QuoteHTTPError

__all__ = [
    "MAX_N_ENV",
    "MAX_TOP_LOGPROBS",
    "check_limits",
    "check_model",
    "check_params",
    "choice_seed",
    "echo_logprobs_refusal",
    "max_n",
]

MAX_N_ENV = "QUOTE_MAX_N"
"""Environment variable: the largest ``n`` a request may ask for (default 8)."""

DEFAULT_MAX_N = 8
MAX_TOP_LOGPROBS = 7
"""Most alternatives per token MAX's log-probability graph returns (``_MAX_TOP_LOGPROBS``)."""

MAX_COMPLETION_LOGPROBS = 5
"""OpenAI's ceiling for ``logprobs`` on ``/v1/completions``."""

MAX_STOP_SEQUENCES = 4
SEED_STRIDE = 1 << 32
"""Distance between the seeds of two choices of one request (see :func:`choice_seed`)."""

ZERO_SEED = 0x9E3779B97F4A7C15
"""The seed sent to MAX for ``seed: 0`` (MAX reads 0 as "no seed" and draws a random one)."""

_U64 = (1 << 64) - 1


NO_ECHO_FLAG = (
    "'echo' with 'logprobs' needs the log probabilities of the prompt tokens, which this "
    "server computes only when started with --enable-echo (the model then returns logits "
    "for every position). Restart it with --enable-echo, or use echo without logprobs."
)
PREFIX_CACHE_ECHO = (
    "'echo' with 'logprobs' is not supported with prefix caching (on by default in max "
    "serve): prompt tokens served from the prefix cache are not recomputed, so they have no "
    "log probabilities. Start the server with --enable-echo --no-enable-prefix-caching."
)


def echo_logprobs_refusal(pipeline_config: Any) -> str | None:
    """Why this server refuses ``echo`` with ``logprobs`` (None: it answers them).

    ``pipeline_config`` is MAX's ``PipelineConfig`` (None when unknown: refused).
    """
    model = getattr(pipeline_config, "model", None)
    if not getattr(model, "enable_echo", False):
        return NO_ECHO_FLAG
    if getattr(getattr(model, "kv_cache", None), "enable_prefix_caching", False):
        return PREFIX_CACHE_ECHO
    return None


def max_n() -> int:
    """The configured ceiling for ``n`` (``QUOTE_MAX_N``, default 8)."""
    try:
        return max(1, int(os.environ.get(MAX_N_ENV, DEFAULT_MAX_N)))
    except ValueError:
        return DEFAULT_MAX_N


def choice_seed(seed: int, index: int) -> int:
    """The seed MAX gets for choice ``index`` of a request that asked for ``seed``.

    Choice 0 keeps the request's seed; choice ``i`` uses ``seed + i * 2**32`` (mod 2**64),
    so choices of one seeded request differ from each other and each is reproducible.
    A seed that comes out as 0 is sent as :data:`ZERO_SEED`, because MAX would replace 0
    with a random seed.
    """
    value = seed if index == 0 else (seed + index * SEED_STRIDE) & _U64
    return value if value != 0 else ZERO_SEED


# (field, minimum, maximum, integer): OpenAI's ranges, and MAX's for its own extensions.
_RANGES: tuple[tuple[str, float | None, float | None, bool], ...] = (
    ("temperature", 0, 2, False),
    ("top_p", 0, 1, False),
    ("presence_penalty", -2, 2, False),
    ("frequency_penalty", -2, 2, False),
    ("max_tokens", 1, None, True),
    ("max_completion_tokens", 1, None, True),
    ("seed", -(1 << 63), _U64, True),
    ("top_k", -1, None, True),
    ("min_p", 0, 1, False),
    ("min_tokens", 0, None, True),
)


def _fail(param: str, message: str, code: str = "invalid_value") -> QuoteHTTPError:
    return QuoteHTTPError(400, message, "invalid_request_error", code, param=param)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))


def _check_range(
    body: dict[str, Any], key: str, low: float | None, high: float | None, integer: bool
) -> None:
    value = body.get(key)
    if value is None:
        return
    kind = "integer" if integer else "decimal"
    if not (_is_int(value) if integer else _is_number(value)):
        expected = "an integer" if integer else "a number"
        raise _fail(key, _bad_type(key, expected, value), "invalid_type")
    for bound, below in ((low, True), (high, False)):
        if bound is not None and (value < bound if below else value > bound):
            side, cmp = ("below minimum", ">=") if below else ("above maximum", "<=")
            raise _fail(
                key,
                f"Invalid '{key}': {kind} {side} value. Expected a value {cmp} {_num(bound)}, "
                f"but got {value} instead.",
                f"{kind}_below_min_value" if below else f"{kind}_above_max_value",
            )


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _bad_type(key: str, expected: str, value: Any) -> str:
    names = {bool: "a boolean", str: "a string", list: "an array", dict: "an object"}
    got = "null" if value is None else names.get(type(value), type(value).__name__)
    return f"Invalid type for '{key}': expected {expected}, but got {got} instead."


def _check_bool(body: dict[str, Any], key: str) -> None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise _fail(key, _bad_type(key, "a boolean", value), "invalid_type")


def _check_stop(stop: Any) -> None:
    items = [stop] if isinstance(stop, str) else stop
    if stop is None:
        return
    if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
        raise _fail(
            "stop", "Invalid 'stop': expected a string or an array of strings.", "invalid_type"
        )
    if len(items) > MAX_STOP_SEQUENCES:
        raise _fail(
            "stop",
            f"Invalid 'stop': array too long. Expected at most {MAX_STOP_SEQUENCES} "
            f"sequences, but got {len(items)} instead.",
            "array_above_max_length",
        )
    if any(s == "" for s in items):
        raise _fail("stop", "Invalid 'stop': stop sequences must not be empty strings.")


def check_model(model: Any, served: str, others: Collection[str]) -> None:
    """Raise 400 for a missing or non-string model, 404 ``model_not_found`` for an unknown one.

    ``served/<mods>`` is left to :func:`quote.server.options.select` (404 naming the mod);
    ``others`` are further accepted names (MAX's LoRA adapters). An empty string is the
    served model, as in MAX.
    """
    if model is None:
        raise _fail("model", "You must provide a model parameter.", "missing_required_parameter")
    if not isinstance(model, str):
        raise _fail("model", _bad_type("model", "a string", model), "invalid_type")
    if model in ("", served) or model.startswith(served + "/") or model in others:
        return
    raise QuoteHTTPError(
        404,
        f"The model '{model}' does not exist. This server serves '{served}' "
        f"(mods as '{served}/<mod>'; GET /v1/models lists them).",
        "invalid_request_error",
        "model_not_found",
        param="model",
    )


def check_params(
    body: dict[str, Any], *, chat: bool, echo_refusal: str | None = NO_ECHO_FLAG
) -> int:
    """Check the sampling and output parameters of a request body; return its ``n``.

    ``echo_refusal``: the message refusing ``echo`` with ``logprobs`` (None: allowed; see
    :func:`echo_logprobs_refusal`). Raises :class:`QuoteHTTPError` (400, ``param`` set) on
    the first bad value.
    """
    _check_range(body, "n", 1, max_n(), True)
    for key, low, high, integer in _RANGES:
        _check_range(body, key, low, high, integer)
    rep = body.get("repetition_penalty")
    if rep is not None and (not _is_number(rep) or rep <= 0):
        raise _fail("repetition_penalty", "Invalid 'repetition_penalty': expected a number > 0.")
    _check_bool(body, "stream")
    _check_bool(body, "logprobs" if chat else "echo")
    _check_stop(body.get("stop"))
    if body.get("logit_bias"):
        raise _fail(
            "logit_bias",
            "'logit_bias' is not supported by this server (use a mod to edit logits).",
            "unsupported_parameter",
        )
    if chat:
        _check_range(body, "top_logprobs", 0, MAX_TOP_LOGPROBS, True)
        if body.get("top_logprobs") is not None and not body.get("logprobs"):
            raise _fail(
                "top_logprobs", "'top_logprobs' requires 'logprobs' to be true.", "invalid_value"
            )
    else:
        _check_completion_only(body, echo_refusal)
    n = body.get("n")
    return int(n) if n is not None else 1


def check_limits(body: dict[str, Any], max_len: int | None) -> None:
    """Reject ``max_tokens`` that no request could ever reach (OpenAI answers 400 too)."""
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if _is_int(value) and max_len and value > max_len:
            raise QuoteHTTPError(
                400,
                f"{key}={value} exceeds the model's maximum length of {max_len} tokens",
                "invalid_request_error",
                "context_length_exceeded",
                param=key,
            )


def _check_completion_only(body: dict[str, Any], echo_refusal: str | None) -> None:
    _check_range(body, "logprobs", 0, MAX_COMPLETION_LOGPROBS, True)
    if body.get("suffix"):
        raise _fail("suffix", "'suffix' is not supported by this server.", "unsupported_parameter")
    best_of, n = body.get("best_of"), body.get("n") or 1
    if best_of is not None and best_of != n:
        raise _fail(
            "best_of",
            f"'best_of' is only supported equal to 'n' ({n}); got {best_of}.",
            "unsupported_value",
        )
    if body.get("echo") and body.get("logprobs") is not None and echo_refusal is not None:
        raise _fail("logprobs", echo_refusal, "unsupported_value")
    prompt = body.get("prompt")
    if body.get("stream") and isinstance(prompt, list) and prompt and not _single(prompt):
        raise _fail(
            "prompt", "Streaming supports a single prompt per request.", "unsupported_value"
        )


def _single(prompt: list[Any]) -> bool:
    """Whether a list-valued prompt is one prompt (token ids) rather than several."""
    return all(_is_int(t) for t in prompt) or len(prompt) == 1
