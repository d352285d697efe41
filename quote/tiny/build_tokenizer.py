# SPDX-License-Identifier: Apache-2.0
"""Train the tiny model's byte-level BPE tokenizer (run once; the result ships in the repo).

The tokenizer is trained on a small, fixed corpus shipped in ``quote/tiny/corpus/`` (English
prose, code, JSON, chat-like text and other scripts), so re-running the script reproduces ``tokenizer.json``. The file is
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

#: The training corpus: one UTF-8 text file per document (English, code, JSON, chat, other scripts).
CORPUS_DIR = pathlib.Path(__file__).with_name("corpus")
_DOCUMENTS = ("english", "code", "json", "chat", "multilingual")


def corpus() -> list[str]:
    """Return the fixed training corpus, one document per entry."""
    return [(CORPUS_DIR / f"{name}.txt").read_text(encoding="utf-8") for name in _DOCUMENTS]


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
