#!/usr/bin/env python3
"""Train the sentencepiece model of the ``spm`` text cue encoder from captions.

Usage (from the recipe dir)::

    python -m espnet2_use.bin.use_train_spm --data_dir data/train \\
        --vocab_size 300 --out_dir data/token_list/bpe_unigram300

Reads every ``text_spk{k}`` of the data dir (k = 1..K, in order; empty
captions skipped) and writes ``bpe.model`` and ``bpe.vocab`` to out_dir.
Training is deterministic (fixed seed, one thread, no sampling of the input)
and atomic (a temporary prefix renamed at the end); a marker ``.done`` keyed
on the options and the caption files' sha256 makes a re-run skip.

sentencepiece needs enough distinct text for the vocabulary asked: by default
the size is a soft limit (``--hard_vocab_limit false``: a smaller vocabulary
is trained and a warning names its size); with ``--hard_vocab_limit true`` a
too-large size is an error that names the largest possible one.
"""
import argparse
import hashlib
import json
import logging
import os
from typing import List, Optional, Sequence

from espnet2_use.data.kaldi_dir import read_kaldi_text
from espnet2_use.data.layout import cue_file, find_source_files
from espnet2_use.utils.fileio import atomic_write_text

DONE_MARKER = ".done"


def _str2bool(value: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {value!r}")


def read_captions(data_dir: str) -> List[str]:
    """Non-empty captions of all ``text_spk{k}`` files, in file and line order.

    Args:
        data_dir: ``data/<set>``.

    Returns:
        The captions.
    """
    files = find_source_files(data_dir, cue_file("text", cached=False))
    if not files:
        raise FileNotFoundError(
            f"{data_dir}: no text_spk1 (captions) to train the sentencepiece model on"
        )
    captions = [c for _, path in files for c in read_kaldi_text(path).values() if c]
    if not captions:
        raise ValueError(
            f"{data_dir}: every caption in {', '.join(p for _, p in files)} is empty"
        )
    return captions


def train_spm(
    data_dir: str,
    out_dir: str,
    vocab_size: int,
    model_type: str = "unigram",
    character_coverage: float = 1.0,
    hard_vocab_limit: bool = False,
) -> str:
    """Train ``<out_dir>/bpe.model`` (+ ``bpe.vocab``) on a data dir's captions.

    Args:
        data_dir: ``data/<set>`` with ``text_spk*``.
        out_dir: e.g. ``data/token_list/bpe_unigram300``.
        vocab_size: number of pieces.
        model_type: sentencepiece model type (unigram, bpe, char, word).
        character_coverage: share of characters the model covers.
        hard_vocab_limit: False treats vocab_size as an upper bound.

    Returns:
        The path of bpe.model.
    """
    import sentencepiece as spm

    files = [p for _, p in find_source_files(data_dir, cue_file("text", cached=False))]
    captions = read_captions(data_dir)
    options = dict(
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=character_coverage,
        hard_vocab_limit=hard_vocab_limit,
    )
    digest = hashlib.sha256()
    digest.update(json.dumps(options, sort_keys=True).encode())
    for path in files:
        with open(path, "rb") as f:
            digest.update(os.path.basename(path).encode() + b"\0" + f.read())
    key = digest.hexdigest()

    model = os.path.join(out_dir, "bpe.model")
    vocab = os.path.join(out_dir, "bpe.vocab")
    marker = os.path.join(out_dir, DONE_MARKER)
    if os.path.isfile(marker) and os.path.isfile(model) and os.path.isfile(vocab):
        with open(marker, encoding="utf-8") as f:
            if json.load(f).get("key") == key:
                logging.info(f"{model} is up to date, skipping")
                return model

    os.makedirs(out_dir, exist_ok=True)
    prefix = os.path.join(out_dir, ".tmp_bpe")
    spm.set_random_generator_seed(0)
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(captions),
            model_prefix=prefix,
            num_threads=1,  # one thread: the same pieces on every machine
            input_sentence_size=0,  # all captions, no random sampling
            shuffle_input_sentence=False,
            minloglevel=2,
            **options,
        )
    except RuntimeError as e:
        for ext in (".model", ".vocab"):
            if os.path.exists(prefix + ext):
                os.remove(prefix + ext)
        raise ValueError(
            f"sentencepiece training on {len(captions)} captions of {data_dir} failed "
            f"for --vocab_size {vocab_size} --model_type {model_type}: {e} "
            "(the captions hold too few distinct pieces for this size: lower "
            "--vocab_size, or pass --hard_vocab_limit false)"
        ) from e
    os.replace(prefix + ".vocab", vocab)
    os.replace(prefix + ".model", model)

    sp = spm.SentencePieceProcessor()
    sp.Load(model)
    if sp.GetPieceSize() < vocab_size:
        logging.warning(
            f"{model}: {sp.GetPieceSize()} pieces instead of {vocab_size}: the "
            f"captions of {data_dir} support no more"
        )
    atomic_write_text(marker, json.dumps({"key": key, "options": options, "pieces": sp.GetPieceSize()}))
    logging.info(f"trained {model} ({sp.GetPieceSize()} pieces) on {len(captions)} captions")
    return model


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Train the sentencepiece model of the spm text cue encoder",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data_dir", required=True, help="data/<set> with text_spk*")
    parser.add_argument("--vocab_size", type=int, required=True)
    parser.add_argument("--out_dir", required=True, help="gets bpe.model and bpe.vocab")
    parser.add_argument(
        "--model_type", default="unigram", choices=["unigram", "bpe", "char", "word"]
    )
    parser.add_argument("--character_coverage", type=float, default=1.0)
    parser.add_argument(
        "--hard_vocab_limit",
        type=_str2bool,
        default=False,
        help="true: a vocab_size the captions cannot fill is an error",
    )
    return parser


def main(argv: Optional[Sequence[str]] = None) -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s",
    )
    args = get_parser().parse_args(argv)
    train_spm(
        args.data_dir,
        args.out_dir,
        args.vocab_size,
        args.model_type,
        args.character_coverage,
        args.hard_vocab_limit,
    )


if __name__ == "__main__":
    main()
