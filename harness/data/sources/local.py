"""`--data PATH`: local .txt (documents separated by a blank line), .jsonl, .json or .parquet files, a folder
of them, or a dataset saved with `save_to_disk`; tokenized once into the cache."""

from __future__ import annotations

from pathlib import Path

from harness.core.errors import DataError
from harness.data.sources.text_source import TextSource
from harness.data.text import BUILDERS, SAVED_MARKERS, CorpusSource


def resolve(spec: str, text_field: str) -> CorpusSource:
    """A local path -> CorpusSource; DataError (one line) for anything that cannot be a corpus."""
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(
            f"data path {spec!r} does not exist: give synthetic, hf:<id>[:<config>], or a local "
            ".txt/.jsonl/.parquet file or folder (or a dataset saved with save_to_disk)"
        )
    if path.is_dir() and any((path / m).exists() for m in SAVED_MARKERS):
        return CorpusSource(spec, "saved", text_field, str(path.resolve()))
    files = (
        [path]
        if path.is_file()
        else sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in BUILDERS)
    )
    if not files:
        raise DataError(f"{spec!r} holds no .txt, .jsonl, .parquet files and is not a saved dataset")
    unknown = [p for p in files if p.suffix not in BUILDERS]
    if unknown:
        raise DataError(f"{unknown[0]}: unsupported file type; use .txt, .jsonl, .json or .parquet")
    builders = {BUILDERS[p.suffix] for p in files}
    if len(builders) > 1:
        raise DataError(f"{spec!r} mixes file types ({', '.join(sorted(builders))}): keep one per corpus")
    for p in files:
        try:
            with open(p, "rb") as f:
                f.read(1)
        except OSError as exc:
            raise DataError(f"cannot read {p}: {exc.strerror}") from None
    root = path if path.is_dir() else path.parent
    return CorpusSource(
        spec, "files", text_field, str(root.resolve()), None, tuple(str(p.resolve()) for p in files)
    )


class LocalSource(TextSource):
    scheme = "file"
    description = "local .txt/.jsonl/.json/.parquet files, a folder of them, or a saved dataset"
    example = "my_corpus/"

    @classmethod
    def claims(cls, spec: str) -> bool:
        return True  # anything no other source claims is a path

    @classmethod
    def resolve(cls, spec: str, text_field: str) -> CorpusSource:
        return resolve(spec, text_field)
