"""A tokenized real corpus as a token source: fixed-length chunks of the training shards in a seeded
order (a fresh permutation each epoch), a held-out validation split, and the facts the report states
(corpus, fingerprint, tokens available, epochs consumed)."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np

from harness.core.cache import cache_root
from harness.core.errors import DataError
from harness.core.recipe import Recipe
from harness.data.bpe import train_tokenizer
from harness.data.text import CorpusSource
from harness.data.tokenize import CACHE_VERSION, build_cache, describe_tokenizer, read_meta

TOKENIZER_TRAIN_CHARS = 200_000_000  # the BPE learns its merges from at most this much training text
MAX_HOLDOUT_FRACTION = 0.1  # a split grown to fit one evaluation never takes more of the corpus than this
_TRAIN, _WARMUP = 0, 1


def _split_tail(shards: list[np.ndarray], n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The stream's last n tokens (for validation) apart from the rest (for training); views, no copies."""
    train, tail = list(shards), []
    while n > 0 and train:
        last = train.pop()
        take = min(n, len(last))
        tail.insert(0, last[len(last) - take :])
        if take < len(last):
            train.append(last[: len(last) - take])
        n -= take
    return train, tail


class TokenCorpus:
    def __init__(self, folder: Path, meta: dict, seed: int, *, built: bool, eval_need: int = 0) -> None:
        self.folder = folder
        self.meta = meta
        self.seed = seed
        self.built = built
        dtype = np.dtype(meta["dtype"])
        self._train = [np.memmap(folder / s["file"], dtype=dtype, mode="r") for s in meta["train_shards"]]
        self._val = [np.memmap(folder / s["file"], dtype=dtype, mode="r") for s in meta["val_shards"]]
        self.holdout = meta.get("holdout", "documents")
        if self.holdout == "tail":
            self._train, self._val = _split_tail(self._train, meta["val_tokens"])
        self.extended_by = self._hold_out_one_evaluation(eval_need)

    def _hold_out_one_evaluation(self, need: int) -> int:
        """Grow a held-out split too small for one evaluation (a 1 MB text at 1%) by the training stream's
        end, while that stays within MAX_HOLDOUT_FRACTION of the corpus; the tokens moved (0 if none)."""
        have = sum(len(v) for v in self._val)
        total = have + sum(len(t) for t in self._train)
        if not have < need <= MAX_HOLDOUT_FRACTION * total:
            return 0  # enough already, or the corpus is too small: val_tokens() says so
        self._train, tail = _split_tail(self._train, need - have)
        self._val = [*self._val, *tail]
        if self.holdout == "documents":
            self.holdout = "documents+tail"
        return need - have

    def _chunk_counts(self, length: int) -> np.ndarray:
        return np.array([len(shard) // length for shard in self._train], dtype=np.int64)

    @lru_cache(maxsize=4)  # noqa: B019 (one corpus per run; the cache holds the current epoch's order)
    def _order(self, stream: int, epoch: int, length: int) -> np.ndarray:
        total = int(self._chunk_counts(length).sum())
        return np.random.default_rng([self.seed, stream, epoch, length]).permutation(total)

    def _batch(self, stream: int, index: int, n_seqs: int, length: int) -> np.ndarray:
        counts = self._chunk_counts(length)
        total = int(counts.sum())
        if total == 0:
            raise DataError(f"the corpus's training split is shorter than one sequence of {length} tokens")
        starts = np.concatenate([[0], np.cumsum(counts)])
        out = np.empty((n_seqs, length), dtype=np.int64)
        for row, seq in enumerate(range(index * n_seqs, (index + 1) * n_seqs)):
            epoch, position = divmod(seq, total)
            chunk = int(self._order(stream, epoch, length)[position])
            shard = int(np.searchsorted(starts, chunk, side="right") - 1)
            offset = (chunk - starts[shard]) * length
            out[row] = self._train[shard][offset : offset + length]
        return out

    def train_batch(self, index: int, n_seqs: int, length: int) -> np.ndarray:
        return self._batch(_TRAIN, index, n_seqs, length)

    def warmup_batch(self, index: int, n_seqs: int, length: int) -> np.ndarray:
        return self._batch(_WARMUP, index, n_seqs, length)

    def val_tokens(self, n_seqs: int, length: int) -> np.ndarray:
        needed = n_seqs * length
        stream = np.concatenate(self._val) if self._val else np.empty(0, dtype=np.int64)
        if len(stream) < needed:
            raise DataError(
                f"the validation split has {len(stream):,} tokens but evaluation needs {needed:,}: "
                "lower --set eval_tokens, raise --set val_fraction, or use a larger corpus"
            )
        return stream[:needed].astype(np.int64).reshape(n_seqs, length)

    def floor_loss(self, val_tokens: np.ndarray) -> float | None:
        return None  # unknown for real text

    def describe(self) -> dict:
        m = self.meta
        return {
            "kind": "corpus",
            **{k: v for k, v in m["corpus"].items() if k != "fingerprint"},
            "corpus_fingerprint": m["corpus"]["fingerprint"],
            "cache_key": m["key"],
            "cache": "built" if self.built else "reused",
            "cache_dir": str(self.folder),
            "train_tokens": sum(len(t) for t in self._train),
            # "tail": too few documents to hold out whole ones, so validation is the stream's end;
            # "documents+tail": the held-out documents were too few tokens for one evaluation
            "holdout": self.holdout,
            "val_tokens": sum(len(v) for v in self._val),
            "holdout_extended_tokens": self.extended_by,
            "documents": m["documents"],
            "dtype": m["dtype"],
            "tokenizer": m["tokenizer"],
            "eot_id": m["eot_id"],
            "prepare_s": m["prepare_s"] if self.built else 0.0,
            "tokenize_tokens_per_s": m["tokenize_tokens_per_s"],
            "fingerprint": m["key"],
        }


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def open_corpus(recipe: Recipe, source: CorpusSource, *, progress=None) -> TokenCorpus:
    """Tokenize once (cached) and open the recipe's corpus."""
    progress = progress or _stderr
    progress(f"fingerprinting {source.spec}")
    corpus_fp = source.fingerprint()
    if recipe.tokenizer:
        path = Path(recipe.tokenizer).expanduser()
        if not path.is_file():
            raise DataError(
                f"tokenizer file {recipe.tokenizer!r} does not exist: pass a tokenizer.json "
                "(e.g. GPT-2's), or leave --tokenizer out to train a BPE on the corpus"
            )
        tokenizer = describe_tokenizer(path, trained=False)
    else:
        tokenizer = train_tokenizer(
            source, corpus_fp, recipe.model.vocab_size, recipe.val_fraction, TOKENIZER_TRAIN_CHARS, progress
        )
    if tokenizer.vocab_size > recipe.model.vocab_size:
        raise DataError(
            f"the tokenizer has {tokenizer.vocab_size:,} tokens but the model's vocabulary is "
            f"{recipe.model.vocab_size:,}: --set vocab_size={tokenizer.vocab_size} (or more)"
        )
    settings = {"val_fraction": recipe.val_fraction, "max_corpus_tokens": recipe.max_corpus_tokens}
    if recipe.doc_separator != "paragraph":
        settings["doc_separator"] = recipe.doc_separator
    key_payload = {
        "version": CACHE_VERSION,
        "corpus": corpus_fp,
        "tokenizer": tokenizer.fingerprint,
        "text_field": recipe.text_field,
        **settings,
    }
    key = hashlib.sha256(json.dumps(key_payload, sort_keys=True).encode()).hexdigest()[:16]
    folder = cache_root() / "corpora" / key
    meta = read_meta(folder)
    built = meta is None
    if built:
        shutil.rmtree(folder, ignore_errors=True)  # incomplete or damaged: never used, rebuilt
        progress(f"preparing {source.spec} (not timed): tokenizing into {folder}")
        meta = build_cache(source, corpus_fp, tokenizer, settings, folder, progress)
    eval_need = recipe.eval_seqs * recipe.eval_window
    corpus = TokenCorpus(folder, meta, recipe.seed, built=built, eval_need=eval_need)
    if corpus.extended_by:
        progress(
            f"the held-out split is too small for one evaluation ({recipe.eval_tokens:,} tokens): "
            f"the training stream's last {corpus.extended_by:,} tokens are held out as well"
        )
    return corpus
