"""The byte-level BPE tokenizer a corpus gets when no tokenizer is given: trained once on the corpus's
training documents, cached by corpus and vocabulary. Training runs in Rust and cannot be interrupted from
Python, so it runs in a child process that a stop, or the death of this process, ends at once; the file
is written under a temporary name and renamed, so a stopped training leaves nothing behind."""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from harness.core import stopping
from harness.core.cache import cache_root
from harness.core.tempfiles import sweep_stale
from harness.data.text import CorpusSource
from harness.data.tokenize import Progress, TokenizerInfo, describe_tokenizer, split_flags

TRAINED_EOT = "<|endoftext|>"


def train_tokenizer(
    source: CorpusSource,
    corpus_fp: str,
    vocab_size: int,
    val_fraction: float,
    max_chars: int,
    progress: Progress,
) -> TokenizerInfo:
    """A byte-level BPE with the model's vocabulary, trained once on the corpus's training documents."""
    path = cache_root() / "tokenizers" / f"{corpus_fp}-bpe{vocab_size}-{max_chars}.json"
    if path.exists():
        return describe_tokenizer(path, trained=True)
    source.ensure_reachable()
    progress(f"training a byte-level BPE tokenizer (vocabulary {vocab_size}) on the corpus")
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path.parent, ".tmp")
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    try:
        stopping.run_in_child(
            _train_and_save,
            (source, corpus_fp, vocab_size, val_fraction, max_chars, str(tmp)),
            phase="training the tokenizer",
        )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return describe_tokenizer(path, trained=True)


def _training_texts(
    source: CorpusSource, corpus_fp: str, val_fraction: float, max_chars: int
) -> Iterator[str]:
    seen = 0
    for doc, held_out in zip(source.documents(), split_flags(corpus_fp, val_fraction), strict=False):
        if held_out:
            continue
        yield doc
        seen += len(doc)
        if seen >= max_chars:
            return
    if seen == 0:  # every document held out (a corpus of one or two): learn from all of them
        yield from itertools.islice(source.documents(), 1000)


def _train_and_save(
    source: CorpusSource, corpus_fp: str, vocab_size: int, val_fraction: float, max_chars: int, dest: str
) -> None:
    """In the child process: train and write the tokenizer to `dest`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from tqdm import tqdm

    # datasets lists the corpus's files under tqdm's lock, which tqdm makes a process-shared semaphore: one
    # held by a child that a stop kills outlives it, and Python's resource tracker warns at exit. This
    # process has no bars to share with anyone, so a thread lock serves.
    tqdm.set_lock(threading.RLock())

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[TRAINED_EOT],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_training_texts(source, corpus_fp, val_fraction, max_chars), trainer)
    tok.save(dest)
    if not Path(dest).is_file():
        raise OSError(f"the tokenizer was not written to {dest}")
