"""The `--data` argument: `synthetic`, `hf:<id>[:<config>]`, or a local file or folder."""

from __future__ import annotations


def validate_data_spec(spec: str, text_field: str = "text") -> None:
    """Fail fast, in the parent, on a data argument that cannot work (DataError, one line)."""
    if spec == "synthetic":
        return
    from harness.data.sources import resolve_source

    resolve_source(spec, text_field)
