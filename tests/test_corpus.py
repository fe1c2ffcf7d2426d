"""Real corpora, offline: small corpora written by the tests in every supported format."""

import json
import random

import numpy as np
import pytest

from harness.core import stopping
from harness.core.errors import DataError
from harness.core.overrides import build_run_config
from harness.data import corpus as corpus_module
from harness.data import open_source as open_corpus
from harness.data import text as text_module
from tests.conftest import harness_main, one_line_error, run_inprocess

WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "a",
    "mat",
    "while",
    "dogs",
    "ran",
    "over",
    "hills",
    "and",
    "rivers",
    "flowed",
    "into",
    "seas",
    "under",
    "bright",
    "stars,",
    "quickly;",
    "naïve",
    "café",
    "—",
    "42",
    "%",
    "«quotes»",
    "日本語",
]


def make_docs(n=300, seed=0):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 120))) for _ in range(n)]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))


def write_corpus(fmt, folder, docs, field="text"):
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "txt":
        path = folder / "corpus.txt"
        path.write_text("\n\n".join(docs), encoding="utf-8")
    elif fmt == "jsonl":
        path = folder / "corpus.jsonl"
        path.write_text(
            "".join(json.dumps({field: d, "n": i}) + "\n" for i, d in enumerate(docs)), encoding="utf-8"
        )
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = folder / "corpus.parquet"
        pq.write_table(pa.table({field: docs}), path)
    elif fmt == "saved":
        import datasets

        path = folder / "saved"
        datasets.Dataset.from_dict({field: docs}).save_to_disk(str(path))
    return path


def recipe_for(data, **overrides):
    base = {"val_fraction": "0.2", "eval_tokens": "2048"}
    return build_run_config(
        strategy="amp",
        preset="tiny",
        data=str(data),
        budget="3s",
        overrides={**base, **{k: str(v) for k, v in overrides.items()}},
        device="cpu",
    ).recipe


def decoded_documents(corpus):
    tok = corpus_module.describe_tokenizer(corpus.meta["tokenizer"]["path"], trained=True).load()
    eot = corpus.meta["eot_id"]
    docs = []
    for shards in (corpus._train, corpus._val):
        stream = np.concatenate(shards).astype(np.int64)
        bounds = np.flatnonzero(stream == eot)
        start = 0
        for end in bounds:
            docs.append(tok.decode(stream[start:end].tolist(), skip_special_tokens=False))
            start = end + 1
    return docs


@pytest.mark.parametrize("fmt", ["txt", "jsonl", "parquet", "saved"])
def test_tokens_round_trip_to_the_original_text(fmt, tmp_path):
    docs = make_docs()
    path = write_corpus(fmt, tmp_path / fmt, docs)
    corpus = open_corpus(recipe_for(path), progress=lambda _: None)
    assert sorted(decoded_documents(corpus)) == sorted(docs)
    facts = corpus.describe()
    assert facts["documents"]["train"] + facts["documents"]["val"] == len(docs)
    assert facts["documents"]["val"] > 0 and facts["tokenizer"]["trained"]
    assert facts["dtype"] == "uint16"
    assert facts["train_tokens"] + facts["val_tokens"] == sum(len(s) for s in corpus._train + corpus._val)


def test_cache_is_reused_and_the_split_is_stable(tmp_path, monkeypatch):
    path = write_corpus("jsonl", tmp_path / "c", make_docs())
    first = open_corpus(recipe_for(path), progress=lambda _: None)
    val_first = first.val_tokens(8, 65)

    def no_tokenizing(*_a, **_k):
        raise AssertionError("the second run tokenized again")

    real_build = corpus_module.build_cache
    monkeypatch.setattr(corpus_module, "build_cache", no_tokenizing)
    second = open_corpus(recipe_for(path), progress=lambda _: None)
    assert not second.built and second.describe()["cache"] == "reused"
    assert np.array_equal(second.val_tokens(8, 65), val_first)
    monkeypatch.setattr(corpus_module, "build_cache", real_build)
    # Rebuilt from scratch (cache deleted): the same documents are held out.
    import shutil

    shutil.rmtree(first.folder)
    third = open_corpus(recipe_for(path), progress=lambda _: None)
    assert third.built and np.array_equal(third.val_tokens(8, 65), val_first)
    assert third.describe()["fingerprint"] == first.describe()["fingerprint"]
    # Another held-out fraction is another split (and another cache).
    other = open_corpus(recipe_for(path, val_fraction=0.3), progress=lambda _: None)
    assert other.folder != first.folder


def test_a_half_written_cache_is_never_used(tmp_path):
    path = write_corpus("txt", tmp_path / "c", make_docs())
    corpus = open_corpus(recipe_for(path), progress=lambda _: None)
    shard = corpus.folder / corpus.meta["train_shards"][0]["file"]
    shard.write_bytes(shard.read_bytes()[:100])  # truncated, as by a crash or a full disk
    again = open_corpus(recipe_for(path), progress=lambda _: None)
    assert again.built
    assert sorted(decoded_documents(again)) == sorted(make_docs())


def test_a_shard_with_flipped_bytes_but_its_size_is_rebuilt(tmp_path):
    path = write_corpus("txt", tmp_path / "c", make_docs())
    corpus = open_corpus(recipe_for(path), progress=lambda _: None)
    shard = corpus.folder / corpus.meta["train_shards"][0]["file"]
    data = bytearray(shard.read_bytes())
    data[10:14] = b"\xff\xff\xff\xff"  # token ids past the vocabulary, the file's size unchanged
    shard.write_bytes(bytes(data))
    again = open_corpus(recipe_for(path), progress=lambda _: None)
    assert again.built  # not reused: its CRC-32 no longer matches the manifest's
    assert sorted(decoded_documents(again)) == sorted(make_docs())


def test_batches_are_seeded_and_epochs_permute(tmp_path):
    path = write_corpus("txt", tmp_path / "c", make_docs())
    corpus = open_corpus(recipe_for(path), progress=lambda _: None)
    a = corpus.train_batch(3, 4, 65)
    assert np.array_equal(a, corpus.train_batch(3, 4, 65)) and a.shape == (4, 65)
    chunks = sum(len(s) // 65 for s in corpus._train)
    epoch0 = np.concatenate([corpus.train_batch(i, 1, 65) for i in range(chunks)])
    epoch1 = np.concatenate([corpus.train_batch(chunks + i, 1, 65) for i in range(chunks)])
    as_rows = lambda x: sorted(map(tuple, x.tolist()))  # noqa: E731
    assert as_rows(epoch0) == as_rows(epoch1)  # every chunk once per epoch
    assert not np.array_equal(epoch0, epoch1)  # in a new order


@pytest.mark.parametrize("fmt", ["txt", "jsonl", "parquet", "saved"])
def test_a_run_on_each_format_records_its_corpus(fmt, tmp_path):
    path = write_corpus(fmt, tmp_path / fmt, make_docs())
    cfg = build_run_config(
        strategy="amp",
        preset="tiny",
        data=str(path),
        budget="1h",
        device="cpu",
        max_steps=12,  # steps, not seconds: more than one epoch of this corpus however busy the machine is
        overrides={"val_fraction": "0.2", "eval_tokens": "2048"},
    )
    result = run_inprocess(cfg, tmp_path / "run")
    assert result.status == "ok", result.error
    data = result.data
    assert data["kind"] == "corpus" and data["source"] == str(path) and data["corpus_fingerprint"]
    assert data["train_tokens"] > 0
    assert result.summary.epochs == pytest.approx(result.summary.tokens / data["train_tokens"])
    assert result.summary.epochs > 1  # a tiny corpus is repeated, and the run says so
    assert result.summary.floor_loss is None and result.summary.final_val_loss > 0


def test_a_given_tokenizer_is_used_not_trained(tmp_path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        make_docs(50, seed=9),
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["<|endoftext|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tok_path = tmp_path / "tokenizer.json"
    tok.save(str(tok_path))
    path = write_corpus("jsonl", tmp_path / "c", make_docs())
    corpus = open_corpus(recipe_for(path, tokenizer=tok_path), progress=lambda _: None)
    facts = corpus.describe()["tokenizer"]
    assert not facts["trained"] and facts["path"] == str(tok_path.resolve()) and facts["vocab_size"] == 300
    assert sorted(decoded_documents(corpus)) == sorted(make_docs())
    with pytest.raises(DataError, match="vocab_size=300"):
        open_corpus(recipe_for(path, tokenizer=tok_path, vocab_size=256), progress=lambda _: None)


def test_hub_path_with_a_local_stand_in(tmp_path, monkeypatch):
    import datasets

    docs = make_docs(200)
    calls = []

    def stand_in(path, name=None, split=None, streaming=False, **kwargs):
        calls.append({"path": path, "name": name, "split": split, "streaming": streaming, **kwargs})
        return datasets.Dataset.from_dict({"content": docs}).to_iterable_dataset()

    monkeypatch.setattr(datasets, "load_dataset", stand_in)
    monkeypatch.setattr(text_module, "check_hub_reachable", lambda: None)  # the stand-in needs no network
    # The stand-in lives in this process only: the tokenizer trains here, not in its own child process.
    monkeypatch.setattr(stopping, "run_in_child", lambda target, args, phase: target(*args))
    corpus = open_corpus(
        recipe_for("hf:org/corpus:sample", text_field="content", max_corpus_tokens=5000),
        progress=lambda _: None,
    )
    assert calls[0] == {"path": "org/corpus", "name": "sample", "split": "train", "streaming": True}
    assert "trust_remote_code" not in calls[0]
    facts = corpus.describe()
    assert facts["source_kind"] == "hub" and facts["text_field"] == "content"
    assert 5000 <= facts["train_tokens"] < 5000 + 1000  # stops at the cap (plus the last document)

    def unreachable(*_a, **_k):
        raise ConnectionError("Couldn't reach 'org/corpus' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.raises(DataError, match="cannot reach hub dataset 'org/other'"):
        open_corpus(recipe_for("hf:org/other", max_corpus_tokens=5000), progress=lambda _: None)


def test_bad_corpora_are_one_line_errors(tmp_path):
    env = {"HARNESS_CACHE_DIR": str(tmp_path / "cache")}
    (tmp_path / "empty.txt").write_text("\n\n\n")
    one_line_error(
        harness_main("prepare", "--data", str(tmp_path / "empty.txt"), "--preset", "tiny", env=env),
        "is empty",
    )
    one_line_error(
        harness_main("prepare", "--data", str(tmp_path / "missing.txt"), env=env), "does not exist"
    )
    (tmp_path / "bad.jsonl").write_text('{"body": "hello"}\n')
    one_line_error(
        harness_main("prepare", "--data", str(tmp_path / "bad.jsonl"), "--preset", "tiny", env=env),
        "no field 'text' in the records (fields: body)",
    )
    (tmp_path / "garbage.parquet").write_bytes(b"this is not parquet at all" * 10)
    one_line_error(
        harness_main("prepare", "--data", str(tmp_path / "garbage.parquet"), "--preset", "tiny", env=env),
        "cannot read corpus",
    )
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait\n\nfin\n".encode("latin-1"))
    one_line_error(
        harness_main("prepare", "--data", str(tmp_path / "latin1.txt"), "--preset", "tiny", env=env),
        "cannot read corpus",
    )
    path = write_corpus("txt", tmp_path / "small", make_docs(20))
    one_line_error(
        harness_main(
            "bench",
            "--data",
            str(path),
            "--preset",
            "tiny",
            "--budget",
            "2s",
            "--runs-dir",
            str(tmp_path / "runs"),
            env=env,
        ),
        "the validation split has",
    )
    one_line_error(harness_main("prepare", "--data", "hf:", env=env), "malformed hub dataset")
    one_line_error(harness_main("prepare", "--data", "synthetic", env=env), "needs no preparation")


@pytest.mark.serial
def test_an_unreachable_hub_fails_fast_in_one_line(tmp_path):
    import time

    env = {"HF_ENDPOINT": "http://127.0.0.1:9", "HARNESS_CACHE_DIR": str(tmp_path / "cache")}
    t0 = time.perf_counter()
    proc = harness_main("prepare", "--data", "hf:org/anything", env=env)
    one_line_error(proc, "cannot reach the Hugging Face hub at 127.0.0.1:9")
    progress = proc.stderr.strip().splitlines()[:-1]  # the harness's own progress lines, nothing else
    assert progress == ["fingerprinting hf:org/anything"], proc.stderr  # no promise of work it cannot do
    assert time.perf_counter() - t0 < 20


def test_a_single_text_holds_out_its_tail(tmp_path):
    # One long text with no blank line is one document: nothing whole can be held out.
    text = " ".join(f"word{i % 97} and more{i % 13}" for i in range(6000))
    path = tmp_path / "one.txt"
    path.write_text(text)
    corpus = open_corpus(recipe_for(path, val_fraction=0.1, eval_tokens=64), progress=lambda _: None)
    facts = corpus.describe()
    assert facts["holdout"] == "tail" and facts["documents"] == {"train": 1, "val": 0}
    total = facts["train_tokens"] + facts["val_tokens"]
    assert facts["val_tokens"] == int(total * 0.1)
    val = corpus.val_tokens(1, 64)
    stream = np.concatenate([np.asarray(s) for s in corpus._train + corpus._val])
    assert np.array_equal(val[0], stream[facts["train_tokens"] : facts["train_tokens"] + 64])  # its tail


def test_one_document_per_line(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("".join(f"line number {i} with some words\n" for i in range(400)))
    by_line = open_corpus(recipe_for(path, doc_separator="line", val_fraction=0.2), progress=lambda _: None)
    facts = by_line.describe()
    assert facts["holdout"] == "documents" and sum(facts["documents"].values()) == 400
    assert facts["doc_separator"] == "line"
    whole = open_corpus(recipe_for(path, val_fraction=0.2, eval_tokens=64), progress=lambda _: None)
    assert whole.describe()["holdout"] == "tail"  # read by paragraph it is one document
    assert whole.describe()["cache_key"] != facts["cache_key"]


def test_a_held_out_split_too_small_for_one_evaluation_takes_the_streams_end(tmp_path):
    # A tiny-Shakespeare-like text: one document, 1% of it is fewer tokens than one evaluation needs.
    text = " ".join(f"word{i % 97} and more{i % 13}" for i in range(20000))
    path = tmp_path / "one.txt"
    path.write_text(text)
    corpus = open_corpus(recipe_for(path, val_fraction=0.01, eval_tokens=1024), progress=lambda _: None)
    facts = corpus.describe()
    total = facts["train_tokens"] + facts["val_tokens"]
    need = 16 * 65  # 16 sequences of 64 tokens, each with its next-token target
    assert facts["holdout"] == "tail" and facts["val_tokens"] == need > int(total * 0.01)
    assert facts["holdout_extended_tokens"] == need - int(total * 0.01)
    stream = np.concatenate([np.asarray(s) for s in corpus._train + corpus._val])
    assert np.array_equal(corpus.val_tokens(16, 65).ravel(), stream[total - need :])  # still its end
    # No more than a tenth of the corpus is taken: beyond that the corpus is too small, and that is said.
    quiet = lambda _: None  # noqa: E731
    too_small = open_corpus(recipe_for(path, val_fraction=0.01, eval_tokens=total // 8), progress=quiet)
    assert too_small.describe()["holdout_extended_tokens"] == 0
    with pytest.raises(DataError, match=r"validation split has .* evaluation needs"):
        too_small.val_tokens(total // 8 // 64, 65)


def test_held_out_documents_too_few_for_one_evaluation_are_joined_by_the_streams_end(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("".join(f"line number {i} with some words\n" for i in range(3000)))
    messages = []
    corpus = open_corpus(
        recipe_for(path, doc_separator="line", val_fraction=0.01, eval_tokens=1024), progress=messages.append
    )
    facts = corpus.describe()
    assert facts["holdout"] == "documents+tail" and facts["val_tokens"] == 16 * 65
    assert facts["documents"]["val"] > 0 and 0 < facts["holdout_extended_tokens"] < 16 * 65
    corpus.val_tokens(16, 65)  # one evaluation fits
    assert any("held out as well" in m for m in messages)
