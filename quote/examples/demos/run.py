# SPDX-License-Identifier: Apache-2.0
"""Run every demo mod in-process on a local checkpoint (default: the tiny model).

Usage::

    python -m quote.examples.demos.run [MODEL_DIR]

``MODEL_DIR`` defaults to ``.quote/tiny-model``; the tiny checkpoint is written there
(``quote tiny-model``) when it is missing. The tiny model's weights are random, so the
text is gibberish: watch what each mod does to it, not the prose.
"""

from __future__ import annotations

import argparse
import logging
import pathlib
from typing import Any

from quote.examples.demos.mods import DEMOS, WEATHER_TOOL
from quote.hot.state import RequestOptions
from quote.sdk import Action, ActionBuilder, Added, Conversation, Event, mod, tokenize

__all__ = ["WEATHER_TOOL", "demo_requests", "main", "say_cloud"]

logger = logging.getLogger(__name__)


@mod
def say_cloud(event: Event, actions: ActionBuilder, tokenizer: Any) -> Action | None:
    """Force " in the cloud" after two sampled tokens (a deterministic trigger for the demo)."""
    if isinstance(event, Added) and event.step == 1 and not event.forced:
        return actions.force_tokens(tokenize(" in the cloud", tokenizer))
    return None


def demo_requests(tokenizer: Any) -> dict[str, tuple[str, RequestOptions]]:
    """For each demo: its prompt and request options."""
    weather = Conversation(
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],
    )
    return {
        "greeting": ("Say something.", RequestOptions(mods=[DEMOS["greeting"]])),
        "no_letter_e": ("Write a sentence.", RequestOptions(mods=[DEMOS["no_letter_e"]])),
        "replace_phrase": (
            "Where is the data?",
            RequestOptions(
                mods=[say_cloud, DEMOS["replace_phrase"]],
                args={"phrase": "cloud", "replacement": "server"},
            ),
        ),
        "stop_early": (
            "Tell me a story.",
            RequestOptions(mods=[DEMOS["stop_early"]], args={"limit": 5}),
        ),
        "weather_tool": (
            "What is the weather in Paris?",
            RequestOptions(mods=[DEMOS["weather_tool"]], conversation=weather),
        ),
        "rewrite_prompt": ("What is Quote?", RequestOptions(mods=[DEMOS["rewrite_prompt"]])),
        "json_report": ("The weather as JSON:", RequestOptions(mods=[DEMOS["json_report"]])),
    }


def main(argv: list[str] | None = None) -> None:
    """Load the model, run each demo once next to an unmodded baseline, print both."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=".quote/tiny-model")
    parser.add_argument("--max-tokens", type=int, default=24)
    args = parser.parse_args(argv)
    model = pathlib.Path(args.model)
    if not (model / "config.json").exists():
        from quote.tiny import write_tiny_model

        write_tiny_model(model)
    from quote.pipelines.loader import load_pipeline
    from quote.pipelines.local import LocalEngine, Request

    loaded = load_pipeline(model, devices="cpu", max_batch_size=16, max_length=2048)
    tok = loaded.hf_tokenizer
    engine = LocalEngine(loaded)
    for name, (prompt, options) in demo_requests(tok).items():
        ids = [int(t) for t in tok.encode(prompt)]
        # json_report ends its answer with EOS, so it must not be ignored (and gets room).
        json_demo = name == "json_report"
        n = max(args.max_tokens, 48) if json_demo else args.max_tokens
        base, res = engine.generate(
            [
                Request(ids, n, ignore_eos=True),
                Request(ids, n, ignore_eos=not json_demo, options=options),
            ]
        )
        print(f"== {name}  (prompt {prompt!r})")
        print(f"   without the mod: {tok.decode(base.tokens)!r}")
        print(f"   with the mod:    {tok.decode(res.tokens)!r}  finish={res.finish_reason}")
        if res.tool_calls:
            print(f"   tool calls:      {res.tool_calls}")
        if res.error:
            print(f"   error:           {res.error}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
