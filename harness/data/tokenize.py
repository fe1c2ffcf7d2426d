"""Tokenizing a corpus once into a cache of memmap shards (uint16 when the vocabulary fits, else uint32),
keyed by a fingerprint of corpus + tokenizer + settings. Built in a temporary folder and renamed when
complete, so a half-written cache is never used."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.core import stopping
from harness.core.errors import DataError
from harness.core.results import write_json_atomic
from harness.core.schema import Items, Number, Record, Text, problem
from harness.core.tempfiles import sweep_stale
from harness.data.text import CorpusSource

CACHE_VERSION = 2  # 2: each shard's CRC-32 in the manifest
META = "meta.json"
SHARD_TOKENS = 1 << 28  # 256M tokens a shard (512 MiB at uint16)
ENCODE_BATCH = 512  # documents per tokenizer call (the Rust side parallelizes over them)
EOT_CANDIDATES = ("<|endoftext|>", "</s>", "<eos>", "<|eos|>", "[SEP]")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class TokenizerInfo:
    path: str
    fingerprint: str
    eot_id: int
    vocab_size: int
    trained: bool

    def load(self):
        from tokenizers import Tokenizer

        return Tokenizer.from_file(self.path)


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def describe_tokenizer(path: Path, trained: bool) -> TokenizerInfo:
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:
        raise DataError(f"cannot load tokenizer {path}: {str(exc).splitlines()[0][:200]}") from None
    eot = next((tok.token_to_id(t) for t in EOT_CANDIDATES if tok.token_to_id(t) is not None), None)
    if eot is None:
        raise DataError(f"tokenizer {path} has no end-of-text token (one of {', '.join(EOT_CANDIDATES)})")
    return TokenizerInfo(str(Path(path).resolve()), _sha256_file(path), eot, tok.get_vocab_size(), trained)


def split_flags(corpus_fingerprint: str, val_fraction: float) -> Iterator[bool]:
    """True for the documents held out for validation: a fixed function of the corpus and document order."""
    rng = np.random.default_rng(int(corpus_fingerprint, 16))
    while True:
        yield from (rng.random(1024) < val_fraction).tolist()


class _ShardWriter:
    def __init__(self, folder: Path, prefix: str, dtype: np.dtype, shard_tokens: int) -> None:
        self.folder, self.prefix, self.dtype, self.shard_tokens = folder, prefix, dtype, shard_tokens
        self.shards: list[dict] = []
        self._file = None
        self.tokens = 0

    def write(self, ids: np.ndarray) -> None:
        while len(ids):
            if self._file is None or self.shards[-1]["tokens"] >= self.shard_tokens:
                self._rotate()
            room = self.shard_tokens - self.shards[-1]["tokens"]
            part, ids = ids[:room], ids[room:]
            data = part.astype(self.dtype, copy=False)
            data.tofile(self._file)
            self.shards[-1]["tokens"] += len(part)
            self.shards[-1]["crc32"] = zlib.crc32(data.tobytes(), self.shards[-1]["crc32"])
            self.tokens += len(part)

    def _rotate(self) -> None:
        self.close()
        name = f"{self.prefix}_{len(self.shards):04d}.bin"
        self._file = open(self.folder / name, "wb")  # noqa: SIM115 (closed on rotate/close)
        self.shards.append({"file": name, "tokens": 0, "crc32": 0})

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None


class _Tokenizing:
    """One pass over the documents: encode in batches, route each document to the train or validation
    shards, stop at the token limit, report progress every few seconds."""

    def __init__(
        self,
        folder: Path,
        tokenizer: TokenizerInfo,
        flags: Iterator[bool],
        limit: int | None,
        shard_tokens: int,
        progress: Progress,
    ) -> None:
        dtype = np.dtype(np.uint16 if tokenizer.vocab_size <= 2**16 else np.uint32)
        self.tokenizer, self.tok, self.flags, self.limit = tokenizer, tokenizer.load(), flags, limit
        self.train = _ShardWriter(folder, "train", dtype, shard_tokens)
        self.val = _ShardWriter(folder, "val", dtype, shard_tokens)
        self.dtype, self.progress = dtype, progress
        self.docs = {"train": 0, "val": 0}
        self.t0 = self._last_report = time.perf_counter()

    @property
    def tokens(self) -> int:
        return self.train.tokens + self.val.tokens

    def run(self, documents: Iterator[str]) -> None:
        batch: list[str] = []
        for doc in documents:
            batch.append(doc)
            if len(batch) >= ENCODE_BATCH:
                stopping.check("tokenizing the corpus")  # the worker's stop: the folder is removed
                more = self._flush(batch)
                self._report()
                if not more:
                    return
        if batch:
            stopping.check("tokenizing the corpus")
            self._flush(batch)

    def _flush(self, batch: list[str]) -> bool:
        """Write the batch; False once the training split reached the token limit."""
        for encoding in self.tok.encode_batch_fast(batch, add_special_tokens=False):
            ids = np.fromiter(encoding.ids, dtype=np.int64, count=len(encoding.ids))
            held_out = next(self.flags)
            (self.val if held_out else self.train).write(np.append(ids, self.tokenizer.eot_id))
            self.docs["val" if held_out else "train"] += 1
            if self.limit and self.train.tokens >= self.limit:
                return False
        batch.clear()
        return True

    def _report(self) -> None:
        now = time.perf_counter()
        if now - self._last_report >= 2.0:
            self._last_report = now
            self.progress(
                f"tokenizing: {self.tokens / 1e6:,.1f}M tokens, {sum(self.docs.values()):,} documents, "
                f"{self.tokens / (now - self.t0):,.0f} tokens/s"
            )

    def close(self) -> None:
        self.train.close()
        self.val.close()


def _meta(
    run: _Tokenizing, source: CorpusSource, corpus_fp: str, settings: dict, key: str, elapsed: float
) -> dict:
    tokenizer = run.tokenizer
    return {
        "version": CACHE_VERSION,
        "key": key,
        "dtype": run.dtype.name,
        "eot_id": tokenizer.eot_id,
        "tokenizer": {
            "path": tokenizer.path,
            "fingerprint": tokenizer.fingerprint,
            "vocab_size": tokenizer.vocab_size,
            "trained": tokenizer.trained,
        },
        "corpus": {**source.describe(), "fingerprint": corpus_fp},
        "settings": settings,
        "documents": run.docs,
        "train_shards": run.train.shards,
        "val_shards": run.val.shards,
        "train_tokens": run.train.tokens,
        "val_tokens": run.val.tokens,
        "prepare_s": elapsed,
        "tokenize_tokens_per_s": run.tokens / elapsed if elapsed > 0 else None,
    }


def _tokenize_into(tmp: Path, source, tokenizer, flags, limit, shard_tokens: int, progress) -> _Tokenizing:
    """One pass over the corpus into the new folder `tmp`; its writers closed whatever happens."""
    tmp.mkdir(parents=True)
    run = _Tokenizing(tmp, tokenizer, flags, limit, shard_tokens, progress)
    try:
        run.run(source.documents())
    finally:
        run.close()
    return run


def build_cache(
    source: CorpusSource,
    corpus_fp: str,
    tokenizer: TokenizerInfo,
    settings: dict,
    dest: Path,
    progress: Progress,
    shard_tokens: int = SHARD_TOKENS,
) -> dict:
    """Tokenize the corpus into dest (atomically: a temporary folder renamed at the end)."""
    tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    sweep_stale(dest.parent, ".tmp")  # left by a preparation that was killed
    shutil.rmtree(tmp, ignore_errors=True)
    flags = split_flags(corpus_fp, settings["val_fraction"])
    limit = settings.get("max_corpus_tokens")
    run = None
    try:  # from the folder's first moment: a stop (SIGTERM) while the writers open must remove it too
        run = _tokenize_into(tmp, source, tokenizer, flags, limit, shard_tokens, progress)
        if run.tokens == 0:
            raise DataError(
                f"corpus {source.spec!r} is empty: it holds no text in field {source.text_field!r}"
            )
        holdout = "documents"
        if run.docs["train"] == 0 or run.docs["val"] == 0:
            # Too few documents to hold some out whole (one long text; one document per line read as one):
            # tokenize again as one stream, and hold out its tail instead.
            progress(f"{sum(run.docs.values())} documents are too few to hold out whole ones: using the tail")
            shutil.rmtree(tmp, ignore_errors=True)
            run = _tokenize_into(
                tmp, source, tokenizer, itertools.repeat(False), limit, shard_tokens, progress
            )
            holdout = "tail"
        elapsed = time.perf_counter() - run.t0
        meta = _meta(run, source, corpus_fp, settings, dest.name, elapsed)
        if holdout == "tail":
            meta["holdout"] = "tail"
            meta["val_tokens"] = max(1, int(run.train.tokens * settings["val_fraction"]))
            meta["train_tokens"] = run.train.tokens - meta["val_tokens"]
        write_json_atomic(tmp / META, meta)
        if dest.exists():  # built meanwhile by another process: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.replace(tmp, dest)
        progress(f"tokenized {run.tokens:,} tokens in {elapsed:.1f}s into {dest}")
        return meta
    except BaseException:
        if run is not None:
            run.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise


_COUNT = Number(low=0, integer=True, optional=False)
_SHARD = Record({"file": Text(optional=False), "tokens": _COUNT, "crc32": _COUNT}, optional=False)
# What the corpus reads of a manifest (a field that is not optional must be there); one that fails is not
# a cache: it is built again.
MANIFEST = Record(
    {
        "dtype": Text(choices=("uint16", "uint32"), optional=False),
        "tokenizer": Record({"vocab_size": Number(above=0, integer=True)}, optional=False),
        "train_shards": Items(_SHARD, optional=False),
        "val_shards": Items(_SHARD, optional=False),
        "train_tokens": _COUNT,
        "val_tokens": _COUNT,
    },
    optional=False,
)


def read_meta(folder: Path) -> dict | None:
    """The cache's manifest if the cache is complete and intact (every shard its size and its CRC-32, read
    at about 1 GB/s); None otherwise (rebuild it)."""
    try:
        meta = json.loads((folder / META).read_text())
        if problem(MANIFEST, meta) is not None or meta.get("version") != CACHE_VERSION:
            return None
        width = np.dtype(meta["dtype"]).itemsize
        for shard in meta["train_shards"] + meta["val_shards"]:
            path = folder / shard["file"]
            if path.stat().st_size != shard["tokens"] * width or _crc32(path) != shard["crc32"]:
                return None
        return meta
    except (OSError, KeyError, TypeError, ValueError, RecursionError):
        return None


def _crc32(path: Path, chunk: int = 1 << 24) -> int:
    crc = 0
    with open(path, "rb") as file:
        while block := file.read(chunk):
            crc = zlib.crc32(block, crc)
    return crc
