"""Tokenization throughput of the corpus pipeline (read with datasets, tokenize, write memmap shards).

Writes a seeded English-like corpus of --megabytes, prepares it through the harness (a byte-level BPE with
the preset's vocabulary is trained first, untimed here), and prints tokens/s of the tokenizing pass.

    python benchmarks/tokenize_throughput.py --megabytes 100 --preset gpt2-124m
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def write_corpus(path: Path, megabytes: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    letters = np.array(list("etaoinshrdlcumwfgypbvkjxqz"))
    vocab = ["".join(rng.choice(letters, size=rng.integers(1, 10))) for _ in range(20_000)]
    zipf = 1.0 / np.arange(1, len(vocab) + 1)
    zipf /= zipf.sum()
    target = megabytes * 2**20
    with open(path, "w") as f:
        written = 0
        while written < target:
            words = rng.choice(len(vocab), size=rng.integers(100, 1500), p=zipf)
            doc = " ".join(vocab[w] for w in words).capitalize() + ".\n\n"
            f.write(doc)
            written += len(doc)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=50)
    parser.add_argument("--preset", default="gpt2-124m")
    args = parser.parse_args()
    from harness.core.overrides import build_run_config
    from harness.data import open_source

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["HARNESS_CACHE_DIR"] = str(Path(tmp) / "cache")
        corpus_path = Path(tmp) / "corpus.txt"
        write_corpus(corpus_path, args.megabytes)
        recipe = build_run_config(strategy="amp", preset=args.preset, data=str(corpus_path)).recipe
        t0 = time.perf_counter()
        facts = open_source(recipe, progress=lambda text: print(text, flush=True)).describe()
        total = time.perf_counter() - t0
    tokens = facts["train_tokens"] + facts["val_tokens"]
    print(
        f"{args.megabytes} MB, {tokens:,} tokens, tokenizer vocabulary {facts['tokenizer']['vocab_size']:,}, "
        f"{os.cpu_count()} cores: tokenizing pass {facts['tokenize_tokens_per_s']:,.0f} tokens/s "
        f"({facts['prepare_s']:.1f} s); with fingerprinting and BPE training {total:.1f} s"
    )


if __name__ == "__main__":
    main()
