"""Which runs may be compared: the recipe fingerprint. Computed by the run from its resolved recipe, and
recomputable by the report from a result file (to set a GPU memory cap aside, for example), so both use
this one function over plain data."""

from __future__ import annotations

from typing import Any

from harness.core.serialize import fingerprint


def recipe_fingerprint(
    recipe: dict[str, Any], data_identity: dict[str, Any], gpu_memory_gib: Any = None
) -> str:
    """Paths are not identity: a corpus and a tokenizer are fingerprinted by content in the data's identity. A
    GPU memory cap makes its own comparison group (a capped card is another card), so it joins the
    fingerprint when set."""
    identity = {k: v for k, v in recipe.items() if k not in ("data", "tokenizer")}
    payload = {"recipe": identity, "data": data_identity.get("fingerprint", data_identity)}
    if gpu_memory_gib is not None:
        payload["gpu_memory_gib"] = gpu_memory_gib
    return fingerprint(payload)
