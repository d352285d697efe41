# SPDX-License-Identifier: Apache-2.0
"""Train the tiny model's byte-level BPE tokenizer (run once; the result ships in the repo).

The tokenizer is trained on a small, fixed corpus embedded in this file (English prose, Python
code, JSON and chat-like text), so re-running the script reproduces ``tokenizer.json``. The file is
committed as ``quote/tiny/tokenizer.json``; nothing at run time retrains it.

Usage::

    python -m quote.tiny.build_tokenizer [OUTPUT_PATH]
"""

from __future__ import annotations

import argparse
import json
import logging
import pathlib

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

logger = logging.getLogger(__name__)

#: Special tokens in id order; the first four carry Gemma's ids (pad 0, eos 1, bos 2, unk 3).
SPECIAL_TOKENS: tuple[str, ...] = (
    "<pad>",
    "<eos>",
    "<bos>",
    "<unk>",
    "<start_of_turn>",
    "<end_of_turn>",
)

#: Target vocabulary size, special tokens and the 256 byte tokens included.
VOCAB_SIZE = 1024

_ENGLISH = """\
The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with a single step.
Language models predict the next token from the tokens that came before it. A tokenizer splits text
into pieces, and every piece maps to a number. The model reads those numbers, computes a score for each
possible next piece, and one of them is chosen. Then the process repeats until the answer is complete
or a stop token appears.

Once upon a time, in a small village near the mountains, there lived an old woman who kept bees. Every
morning she walked through the garden, listened to the humming of the hives, and wrote down what she saw
in a thick notebook. The children of the village often asked her questions: why do bees dance, where do
they go in winter, and how do they find their way home? She always answered patiently, and sometimes she
gave them a little honey.

Weather report for today: cloudy in the morning with a chance of rain in the afternoon. Temperatures will
reach 18 degrees Celsius, falling to 9 degrees overnight. Tomorrow will be sunny and warmer, with light
winds from the south-west. Please remember your umbrella if you are travelling this evening.

Customer service: Hello! How can I help you today? I would like to change my flight reservation. Of course,
could you please give me your booking reference and the date of your trip? My reservation number is
ABC123 and I am flying on the fifth of June. Thank you. I have found your booking. Would you like to
cancel it or change the date? I would like to move it to the twelfth of June, if possible. Let me check
the availability for you. There are seats available on that day. The change fee is 50 dollars.

Questions and answers. What is the capital of France? The capital of France is Paris. What is two plus
two? Two plus two is four. Who wrote the play Hamlet? William Shakespeare wrote Hamlet. How many days are
there in a week? There are seven days in a week: Monday, Tuesday, Wednesday, Thursday, Friday, Saturday
and Sunday. Which months have thirty days? April, June, September and November have thirty days.

The system should be simple, reliable and fast. Each request is handled by the server, which sends the
prompt to the model worker. The worker runs the forward pass, samples a token, and streams the text back
to the client. If something goes wrong, the error is reported clearly and the other requests continue.
Tests make sure that the behaviour stays correct when the code changes.

Numbers and dates: 0 1 2 3 4 5 6 7 8 9 10 11 12 20 25 50 100 256 512 1000 1024 2024 2025 3.14 2.718
1,000,000 -42 +7 1e-6 0.5 99% $19.99 2025-01-31 12:30:45 10:00 AM 5 PM.
"""

_CODE = '''\
import json
import logging
from dataclasses import dataclass, field
from typing import Any


logger = logging.getLogger(__name__)


@dataclass
class Request:
    """A request for a completion."""

    request_id: str
    prompt: list[int]
    max_tokens: int = 16
    temperature: float = 0.0
    stop: list[str] = field(default_factory=list)

    def is_greedy(self) -> bool:
        return self.temperature == 0.0


def tokenize(text: str, vocab: dict[str, int]) -> list[int]:
    """Split text on whitespace and look every word up."""
    tokens = []
    for word in text.split():
        if word in vocab:
            tokens.append(vocab[word])
        else:
            tokens.append(vocab["<unk>"])
    return tokens


class Server:
    def __init__(self, host: str = "127.0.0.1", port: int = 8000) -> None:
        self.host = host
        self.port = port
        self.requests: dict[str, Request] = {}

    def submit(self, request: Request) -> None:
        if request.request_id in self.requests:
            raise ValueError(f"duplicate request id: {request.request_id}")
        self.requests[request.request_id] = request
        logger.info("submitted %s", request.request_id)

    def run(self) -> None:
        while self.requests:
            for request_id, request in list(self.requests.items()):
                if len(request.prompt) >= request.max_tokens:
                    del self.requests[request_id]
                    continue
                request.prompt.append(0)


def main(argv: list[str] | None = None) -> int:
    server = Server()
    try:
        server.run()
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

def fibonacci(n):
    a, b = 0, 1
    result = []
    while len(result) < n:
        result.append(a)
        a, b = b, a + b
    return result

for i in range(10):
    print(i, i * i, fibonacci(i))

x = [1, 2, 3]
y = {"a": 1, "b": 2}
z = (x[0] + y["a"]) * 2 / 3 % 4 ** 2 // 5
assert z is not None and not False or True
lambda value: value if value else None

function greet(name) {
  const message = `Hello, ${name}!`;
  console.log(message);
  return message;
}

export const config = { retries: 3, timeout: 1000, verbose: false };

if (x > 0 && y < 10 || z === null) {
  throw new Error("out of range");
}

SELECT id, name, created_at FROM users WHERE active = 1 ORDER BY created_at DESC LIMIT 10;

fn main() {
    let numbers: Vec<i32> = vec![1, 2, 3];
    let total: i32 = numbers.iter().sum();
    println!("total = {}", total);
}

#include <stdio.h>
int main(void) {
    for (int i = 0; i < 10; i++) {
        printf("%d\\n", i);
    }
    return 0;
}

$ pip install -e ".[dev]"
$ make test
$ git commit -m "fix: handle empty prompts"
'''

_JSON = """\
{"name": "get_reservation", "arguments": {"reservation_id": "ABC123"}}
{"name": "cancel_reservation", "arguments": {"reservation_id": "XYZ789", "reason": "change of plans"}}
{"id": "call_1", "type": "function", "function": {"name": "search_flights", "arguments": "{\\"origin\\": \\"JFK\\", \\"destination\\": \\"LAX\\", \\"date\\": \\"2025-06-12\\"}"}}
{"model": "tiny", "messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Hello!"}], "temperature": 0, "max_tokens": 32, "stream": true}
{"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi there! How can I help?"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20}}
{"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}, "email": {"type": "string", "format": "email"}, "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 5}}, "required": ["name", "age"], "additionalProperties": false}
{"user": {"id": 42, "name": "Alice", "active": true, "balance": 1234.56, "address": null, "roles": ["admin", "editor"]}}
{"error": {"message": "Invalid request: missing field 'model'", "type": "invalid_request_error", "code": 400}}
[{"date": "2025-01-01", "value": 10}, {"date": "2025-01-02", "value": 12.5}, {"date": "2025-01-03", "value": -3}]
{"answer": "yes", "confidence": 0.87, "reasons": ["short", "clear", "correct"], "nested": {"list": [1, [2, [3]]], "empty": {}}}
"""

_CHAT = """\
<start_of_turn>user
You are a helpful assistant.

What is the weather like today?<end_of_turn>
<start_of_turn>model
It is cloudy with a chance of rain this afternoon.<end_of_turn>
<start_of_turn>user
Can you book a table for two at seven?<end_of_turn>
<start_of_turn>model
Sure! I have booked a table for two at 7 PM.<end_of_turn>
"""

_MULTILINGUAL = """\
Bonjour, comment ça va ? Très bien, merci. Où est la gare ?
Guten Tag! Wie geht es Ihnen? Schön, dass Sie da sind. Straße, Größe, Übung.
¡Hola! ¿Qué tal? Mañana iremos a la playa. Niño, corazón, canción.
Привет, как дела? Спасибо, хорошо.
こんにちは、元気ですか？ ありがとう。
你好，世界。谢谢。
Emoji: 😀 🎉 👍 ❤️ 🚀 ✨ — “quotes” ‘single’ … • → ← ✓ × ÷ ± ≤ ≥ ∞ € £ ¥ © ®
"""


def corpus() -> list[str]:
    """Return the fixed training corpus, one document per entry."""
    return [_ENGLISH, _CODE, _JSON, _CHAT, _MULTILINGUAL]


def build_tokenizer(vocab_size: int = VOCAB_SIZE) -> Tokenizer:
    """Train the byte-level BPE tokenizer on :func:`corpus` and return it.

    Every one of the 256 byte values is in the initial alphabet, so any UTF-8 text encodes without
    ``<unk>`` and decodes back exactly. The post-processor prepends ``<bos>`` when special tokens
    are requested.
    """
    tokenizer = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tokenizer.normalizer = None
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus(), trainer=trainer)
    bos = SPECIAL_TOKENS[2]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A",
        pair=f"{bos} $A {bos}:1 $B:1",
        special_tokens=[(bos, tokenizer.token_to_id(bos))],
    )
    for index, token in enumerate(SPECIAL_TOKENS):
        if tokenizer.token_to_id(token) != index:
            raise RuntimeError(f"special token {token!r} did not get id {index}")
    return tokenizer


def main(argv: list[str] | None = None) -> int:
    """Train the tokenizer and write it (pretty-printed JSON) to the output path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "output",
        nargs="?",
        type=pathlib.Path,
        default=pathlib.Path(__file__).with_name("tokenizer.json"),
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    tokenizer = build_tokenizer()
    text = json.dumps(json.loads(tokenizer.to_str()), ensure_ascii=False, indent=1) + "\n"
    args.output.write_text(text, encoding="utf-8")
    logger.info(
        "wrote %s (%d tokens)", args.output, tokenizer.get_vocab_size(with_added_tokens=True)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
