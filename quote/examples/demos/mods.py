# SPDX-License-Identifier: Apache-2.0
"""One small mod per action: the shortest useful example of each thing a mod can do.

=====================  ==================  =============================================
mod                    action              what it does
=====================  ==================  =============================================
``greeting``           ForceTokens         the answer always starts with "Hello! "
``no_letter_e``        AdjustedLogits      bans every token containing "e" (a lipogram)
``replace_phrase``     Backtrack           when the text ends with a phrase, takes those
                                           tokens back and writes a replacement instead
``stop_early``         ForceOutput         after ``limit`` tokens, ends the answer with
                                           what was written plus " [end]"
``weather_tool``       ToolCalls           answers "weather in <city>" with a
                                           ``get_weather`` call; once the tool result is
                                           in the conversation, answers from it
``rewrite_prompt``     AdjustedPrefill     prepends an instruction to the prompt
``json_report``        a strategy          the answer is JSON for :data:`REPORT` (the
                                           ``JsonSchema`` strategy: masks and forced text)
=====================  ==================  =============================================

Per-request settings come from ``RequestOptions.args`` (over HTTP:
``chat_template_kwargs.quote.args``): ``phrase``/``replacement`` for ``replace_phrase``,
``limit`` for ``stop_early``, ``prefix`` for ``rewrite_prompt``.
"""

from __future__ import annotations

import re
from typing import Any

from quote.sdk import (
    Action,
    ActionBuilder,
    Added,
    Event,
    ForwardPass,
    Mod,
    ModDefinition,
    Prefilled,
    get_conversation,
    get_request,
    mod,
    tokenize,
)
from quote.sdk.strategies import JsonSchema, constrain
from quote.sdk.tokens import token_table

__all__ = [
    "DEMOS",
    "GREETING",
    "REPORT",
    "WEATHER_TOOL",
    "greeting",
    "json_report",
    "no_letter_e",
    "replace_phrase",
    "rewrite_prompt",
    "stop_early",
    "weather_tool",
]

GREETING = "Hello! "
"""The text ``greeting`` forces at the start of every answer."""


def _args() -> dict[str, Any]:
    try:
        return get_request().mod_args
    except LookupError:
        return {}


# ----------------------------------------------------------------------------- ForceTokens

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
"""The OpenAI-style tool schema ``weather_tool`` looks for."""


@mod
def greeting(event: Event, actions: ActionBuilder, tokenizer: Any) -> Action | None:
    """Force "Hello! " as the first tokens of the answer, then let the model continue."""
    if isinstance(event, Prefilled):
        return actions.force_tokens(tokenize(GREETING, tokenizer))
    return None


# ----------------------------------------------------------------------------- AdjustedLogits
_banned: dict[int, list[int]] = {}


def tokens_containing(tokenizer: Any, letters: str = "eE") -> list[int]:
    """Ids of every token whose text contains one of ``letters`` (cached per tokenizer)."""
    key = hash((id(tokenizer), letters))
    hit = _banned.get(key)
    if hit is None:
        table = token_table(tokenizer)
        hit = [i for i, t in enumerate(table.texts) if t and any(c in t for c in letters)]
        _banned[key] = hit
    return hit


@mod
def no_letter_e(event: Event, actions: ActionBuilder, tokenizer: Any) -> Action | None:
    """Ban, at every step, every token whose text contains the letter "e"."""
    if isinstance(event, ForwardPass):
        return actions.adjust_logits(ban=tokens_containing(tokenizer))
    return None


# ----------------------------------------------------------------------------- Backtrack
class ReplacePhrase(Mod):
    """When the completion's text ends with ``phrase``, backtrack it and write ``replacement``.

    ``args``: ``phrase`` (default ``"cloud"``) and ``replacement`` (default ``"server"``).
    The tokens taken back are the fewest whose text covers the phrase; any text they held
    before the phrase is written again in front of the replacement.
    """

    name = "replace_phrase"
    hold_back = 16  # a streaming request can take back at most this many tokens

    def __init__(self) -> None:
        self.completion: list[int] = []

    def handle(self, event: Event, actions: ActionBuilder, tokenizer: Any) -> Action | None:
        """Track the completion; backtrack when it ends with the phrase."""
        if not isinstance(event, Added):
            return None
        self.completion.extend(int(t) for t in event.tokens)
        args = _args()
        phrase = str(args.get("phrase", "cloud"))
        replacement = str(args.get("replacement", "server"))
        if not phrase or not tokenizer.decode(self.completion).endswith(phrase):
            return None
        for k in range(1, len(self.completion) + 1):
            tail = tokenizer.decode(self.completion[-k:])
            if len(tail) >= len(phrase) and tail.endswith(phrase):
                head = tail[: -len(phrase)]
                del self.completion[-k:]
                # The replacement tokens come back in an Added event and are tracked there.
                return actions.backtrack(k, tokenize(head + replacement, tokenizer))
        return None


replace_phrase = ModDefinition("replace_phrase", ReplacePhrase, hold_back=ReplacePhrase.hold_back)


# ----------------------------------------------------------------------------- ForceOutput
class StopEarly(Mod):
    """After ``limit`` completion tokens (``args["limit"]``, default 8), end with " [end]"."""

    name = "stop_early"
    SUFFIX = " [end]"

    def __init__(self) -> None:
        self.completion: list[int] = []

    def handle(self, event: Event, actions: ActionBuilder, tokenizer: Any) -> Action | None:
        """Count tokens; once over the limit, end the request with a forced output."""
        if isinstance(event, Added):
            self.completion.extend(int(t) for t in event.tokens)
            if len(self.completion) >= int(_args().get("limit", 8)):
                return actions.force_output(self.completion + tokenize(self.SUFFIX, tokenizer))
        return None


stop_early = ModDefinition("stop_early", StopEarly)


# ----------------------------------------------------------------------------- ToolCalls
_WEATHER = re.compile(r"weather in ([A-Za-z][A-Za-z .'-]*[A-Za-z])", re.IGNORECASE)


@mod
def weather_tool(event: Event, actions: ActionBuilder, tokenizer: Any) -> Action | None:
    """Answer "weather in <city>" with a ``get_weather`` tool call, then from its result.

    Needs a ``get_weather`` tool in the request's ``tools``. When the conversation already
    holds the tool's result, the answer is that result (``ForceOutput``).
    """
    if not isinstance(event, Prefilled):
        return None
    conv = get_conversation()
    if not any((t.get("function") or t).get("name") == "get_weather" for t in conv.tools):
        return None
    done = [res for call, res in conv.tool_call_pairs() if res is not None]
    if done:
        content = str(done[-1].get("content", ""))
        return actions.force_output(tokenize(f"The weather: {content}", tokenizer))
    users = [m for m in conv.messages if m.get("role") == "user"]
    match = _WEATHER.search(str(users[-1].get("content", ""))) if users else None
    if match is None:
        return None
    return actions.tool_calls(
        [{"name": "get_weather", "arguments": {"city": match.group(1)}, "id": "call_weather_0"}]
    )


# ----------------------------------------------------------------------------- AdjustedPrefill
DEFAULT_PREFIX = "Answer in one short sentence.\n"


@mod
def rewrite_prompt(event: Event, actions: ActionBuilder, tokenizer: Any) -> Action | None:
    """Put an instruction (``args["prefix"]``) in front of the prompt, after any BOS token."""
    if not isinstance(event, Prefilled):
        return None
    prompt = list(event.prompt_tokens)
    bos = getattr(tokenizer, "bos_token_id", None)
    head = prompt[:1] if prompt and bos is not None and prompt[0] == bos else []
    prefix = tokenize(str(_args().get("prefix", DEFAULT_PREFIX)), tokenizer)
    return actions.adjust_prefill(head + prefix + prompt[len(head) :])


# ----------------------------------------------------------------------------- a strategy
REPORT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 12},
        "celsius": {"type": "integer", "minimum": -40, "maximum": 50},
        "sky": {"enum": ["sunny", "cloudy", "rain"]},
    },
    "required": ["city", "celsius", "sky"],
    "additionalProperties": False,
}
"""The schema of ``json_report``'s answer."""

json_report = constrain(JsonSchema(REPORT), name="json_report", hold_back=0)
"""The answer is one JSON value valid against :data:`REPORT`: the strategy masks each step
(``AdjustedLogits``), forces the fixed text (``{"city":"``...) with ``ForceTokens`` and ends
with EOS once the value is complete."""

DEMOS: dict[str, ModDefinition] = {
    "greeting": greeting,
    "no_letter_e": no_letter_e,
    "replace_phrase": replace_phrase,
    "stop_early": stop_early,
    "weather_tool": weather_tool,
    "rewrite_prompt": rewrite_prompt,
    "json_report": json_report,
}
"""Every demo by its served name (``"<served>/<name>"``)."""
