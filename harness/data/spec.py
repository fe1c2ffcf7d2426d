"""The `--data` argument: `synthetic`, `hf:<id>[:<config>]`, or a local file or folder."""

from __future__ import annotations

from pathlib import Path

from harness.errors import DataError

LOCAL_SUFFIXES = (".txt", ".jsonl", ".json", ".parquet")


def validate_data_spec(spec: str) -> None:
    """Fail fast, in the parent, on a data argument that cannot work."""
    if spec == "synthetic":
        return
    if spec.startswith("hf:"):
        if not spec[3:].split(":")[0].strip():
            raise DataError(
                f"malformed hub dataset {spec!r}: write hf:<id>[:<config>], e.g. "
                "hf:HuggingFaceFW/fineweb-edu:sample-10BT"
            )
        return
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(
            f"data path {spec!r} does not exist: give synthetic, hf:<id>, or a local "
            f"{'/'.join(LOCAL_SUFFIXES)} file or folder (or a dataset saved with save_to_disk)"
        )
