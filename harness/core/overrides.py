"""The run description built from values by field name: every settable field of the model, the recipe and
the run (`options.settable`), typed, or as text (`--set key=value`, a generated flag) read strictly by the
field's own declaration. Ranges and choices are checked once, by the dataclasses they build."""

from __future__ import annotations

from dataclasses import Field, fields, replace
from typing import Any

from harness.core.errors import UserError
from harness.core.options import parse_value, settable
from harness.core.presets import ModelConfig, get_preset
from harness.core.recipe import DEFAULT_BUDGET, Recipe, RunConfig
from harness.core.units import parse_duration

# The run description's parts, the outermost last: each settable field belongs to exactly one.
DESCRIPTION = (ModelConfig, Recipe, RunConfig)


def description_fields() -> dict[str, tuple[type, Field]]:
    """Every settable field of the run description by name, with the class that declares it."""
    return {f.name: (cls, f) for cls in DESCRIPTION for f in settable(cls)}


def override_keys() -> list[str]:
    return sorted(description_fields())


OVERRIDE_KEYS = override_keys()


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """`key=value` texts -> {key: text}; a malformed pair or an unknown key is one line."""
    known = description_fields()
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"malformed override {pair!r}: write key=value, e.g. --set lr=3e-4")
        if key not in known:
            raise UserError(f"unknown override key {key!r}: valid keys are {', '.join(sorted(known))}")
        parsed[key] = value
    return parsed


def read_texts(texts: dict[str, str], labels: dict[str, str] | None = None) -> dict[str, Any]:
    """{field name: text} -> {field name: value}; `labels` say how an error names each text's origin
    (default: `override key='text'`)."""
    known = description_fields()
    labels = labels or {}
    values = {}
    for key, raw in texts.items():
        cls, f = known[key]
        values[key] = parse_value(cls, f, raw, labels.get(key, f"override {key}={raw!r}"))
    return values


def build_run_config(
    *,
    strategy: str,
    preset: str = "gpt2-124m",
    budget: str = DEFAULT_BUDGET,
    overrides: dict[str, str] | None = None,
    **values: Any,
) -> RunConfig:
    """A validated RunConfig from the preset, typed `values` by field name (data, seed, device, lr, ...;
    None: not given) and `overrides` as text, which win. `budget` is the budget as people write it; a
    `budget_s` value wins over it. Raises UserError on any bad input."""
    known = description_fields()
    known.update({f.name: (RunConfig, f) for f in fields(RunConfig) if f.name in ("run_id", "command")})
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UserError(f"unknown run setting {unknown[0]!r}: valid ones are {', '.join(sorted(known))}")
    given = {k: v for k, v in values.items() if v is not None}
    given.update(read_texts(overrides or {}))
    p = get_preset(given.pop("preset", preset))
    given.setdefault("budget_s", parse_duration(budget))
    by_owner: dict[type, dict[str, Any]] = {cls: {} for cls in (ModelConfig, Recipe, RunConfig)}
    for key, value in given.items():
        by_owner[known[key][0]][key] = value
    recipe_kw = {
        "global_batch_tokens": p.global_batch_tokens,
        "lr": p.lr,
        "eval_tokens": p.eval_tokens,
        **by_owner[Recipe],
    }
    recipe = Recipe(preset=p.name, model=replace(p.model, **by_owner[ModelConfig]), **recipe_kw)
    return RunConfig(recipe=recipe, strategy=strategy, **by_owner[RunConfig])
