"""Real text, read through `datasets`: a hub dataset (streamed), local .txt/.jsonl/.parquet files or
folders, or a dataset saved with `save_to_disk`. No remote code is ever run (the library no longer supports
dataset scripts at all). The data sources (`harness.data.sources`) resolve a `--data` value into one."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from harness.core.errors import DataError

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
    doc_separator: str = "paragraph"  # how a .txt file splits into documents

    def describe(self) -> dict:
        return {
            "source": self.spec,
            "source_kind": self.kind,
            "text_field": self.text_field,
            **({"doc_separator": self.doc_separator} if self.doc_separator != "paragraph" else {}),
            **({"files": len(self.files)} if self.files else {}),
        }

    def fingerprint(self) -> str:
        """Content identity: file bytes for local corpora, id and config for the hub."""
        separator = f"\0{self.doc_separator}" if self.doc_separator != "paragraph" else ""
        digest = hashlib.sha256(f"{self.kind}\0{self.text_field}\0{self.config}{separator}".encode())
        if self.kind == "hub":
            digest.update(self.location.encode())
        else:
            root = Path(self.location)
            for name in self.files or saved_files(root):
                path = Path(name)
                digest.update(
                    str(path.relative_to(root) if path.is_relative_to(root) else path.name).encode()
                )
                with open(path, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 22), b""):
                        digest.update(chunk)
        return digest.hexdigest()[:16]

    def ensure_reachable(self) -> None:
        """Before any work that reads the corpus is announced: a hub that cannot be reached is one
        line now, not after a progress line that promised work."""
        if self.kind == "hub":
            check_hub_reachable()

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

        quiet_libraries()
        try:
            if self.kind == "hub":
                check_hub_reachable()
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
                options = {"sample_by": self.doc_separator} if builder == "text" else {}
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


def quiet_libraries() -> None:
    """No progress bars or retry chatter from datasets and the hub client: the harness reports progress
    itself, and a failure as one line."""
    import datasets

    datasets.disable_progress_bars()
    datasets.utils.logging.set_verbosity_error()
    try:
        from huggingface_hub.utils import logging as hub_logging

        hub_logging.set_verbosity_error()
    except ImportError:
        pass


def check_hub_reachable(timeout_s: float = 5.0) -> None:
    """Fail fast, in one line, when the hub cannot be reached (instead of the client's retries). With
    HF_HUB_OFFLINE set, datasets reads its own cache and nothing is probed."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise DataError(
            f"cannot reach the Hugging Face hub at {host}:{port} ({reason}): check the network, or run "
            "`harness prepare` where there is one and reuse its cache (HARNESS_CACHE_DIR)"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def saved_files(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if p.is_file())
