"""Where real text comes from: a hub dataset (streamed), local .txt/.jsonl/.parquet files or folders, or a
dataset saved with `save_to_disk`. All read through `datasets`; no remote code is ever run (the library
no longer supports dataset scripts at all)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.errors import DataError

# .txt: one document per paragraph (documents separated by a blank line).
BUILDERS = {".txt": "text", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}
SAVED_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


@dataclass(frozen=True)
class CorpusSource:
    spec: str  # what the user passed to --data
    kind: str  # hub | files | saved
    text_field: str
    location: str  # hub id, or resolved path
    config: str | None = None
    files: tuple[str, ...] = ()

    def describe(self) -> dict:
        return {
            "source": self.spec,
            "source_kind": self.kind,
            "text_field": self.text_field,
            **({"files": len(self.files)} if self.files else {}),
        }

    def fingerprint(self) -> str:
        """Content identity: file bytes for local corpora, id and config for the hub."""
        digest = hashlib.sha256(f"{self.kind}\0{self.text_field}\0{self.config}".encode())
        if self.kind == "hub":
            digest.update(self.location.encode())
        else:
            root = Path(self.location)
            for name in self.files or _saved_files(root):
                path = Path(name)
                digest.update(
                    str(path.relative_to(root) if path.is_relative_to(root) else path.name).encode()
                )
                with open(path, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 22), b""):
                        digest.update(chunk)
        return digest.hexdigest()[:16]

    def documents(self) -> Iterator[str]:
        """The corpus as a stream of document texts, in a fixed order."""
        for row in self._rows():
            if self.text_field not in row:
                raise DataError(
                    f"{self.spec}: no field {self.text_field!r} in the records (fields: "
                    f"{', '.join(sorted(row))}); choose one with --set text_field=NAME"
                )
            text = row[self.text_field]
            if not isinstance(text, str):
                raise DataError(
                    f"{self.spec}: field {self.text_field!r} holds {type(text).__name__}, not text"
                )
            if text.strip():  # whitespace alone is no document
                yield text

    def _rows(self) -> Iterator[dict]:
        import datasets

        datasets.disable_progress_bars()
        try:
            if self.kind == "hub":
                rows = datasets.load_dataset(self.location, self.config, split="train", streaming=True)
            elif self.kind == "saved":
                rows = datasets.load_from_disk(self.location)
                if isinstance(rows, datasets.DatasetDict):
                    if "train" not in rows:
                        raise DataError(
                            f"{self.spec}: the saved dataset has no 'train' split (splits: {', '.join(rows)})"
                        )
                    rows = rows["train"]
            else:
                builder = BUILDERS[Path(self.files[0]).suffix]
                options = {"sample_by": "paragraph"} if builder == "text" else {}
                rows = datasets.load_dataset(
                    builder, data_files=list(self.files), split="train", streaming=True, **options
                )
            yield from rows
        except DataError:
            raise
        except (ConnectionError, TimeoutError) as exc:
            raise DataError(
                f"cannot reach hub dataset {self.location!r} ({_first_line(exc)}): check the "
                "network, or prepare the data where there is one"
            ) from None
        except Exception as exc:
            where = "hub dataset" if self.kind == "hub" else "corpus"
            raise DataError(
                f"cannot read {where} {self.spec!r}: {type(exc).__name__}: {_first_line(exc)}"
            ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _saved_files(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if p.is_file())


def resolve_source(spec: str, text_field: str) -> CorpusSource:
    """--data value -> CorpusSource; DataError (one line) for anything that cannot be a corpus."""
    if spec.startswith("hf:"):
        ident, _, config = spec.split(":", 1)[1].partition(":")
        if not ident:
            raise DataError(f"malformed hub dataset {spec!r}: write hf:<id>[:<config>]")
        return CorpusSource(spec, "hub", text_field, ident, config or None)
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
