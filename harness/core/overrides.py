"""Strict overrides (`--set key=value`): every recipe, model and run field by name, typed, range-checked by
the dataclasses they build."""

from __future__ import annotations

import types
import typing
from dataclasses import fields, replace
from typing import Any

from harness.core.errors import UserError
from harness.core.presets import ModelConfig, get_preset
from harness.core.recipe import DEFAULT_BUDGET, Recipe, RunConfig
from harness.core.units import parse_duration

_MODEL_KEYS = {f.name for f in fields(ModelConfig)}
_RECIPE_KEYS = {f.name for f in fields(Recipe)} - {"preset", "model"}
_RUN_KEYS = {"warmup_steps", "log_interval_s", "checkpoint_interval_s", "keep_checkpoints"}
OVERRIDE_KEYS = sorted(_MODEL_KEYS | _RECIPE_KEYS | _RUN_KEYS)


def _field_type(cls: type, name: str) -> Any:
    return typing.get_type_hints(cls)[name]


def _coerce(key: str, raw: str, kind: Any) -> Any:
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if raw.strip().lower() in ("none", "null", ""):
            return None
        (kind,) = [a for a in args if a is not type(None)]
        return _coerce(key, raw, kind)
    if origin is tuple:
        items = [s for s in raw.split(",") if s.strip()]
        return tuple(_coerce(key, s, args[0]) for s in items)
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind is int:
            return _integer(raw)
        if kind is float:
            return float(raw)
        if kind is str:
            return raw
    except ValueError:
        raise UserError(f"override {key}={raw!r}: expected {getattr(kind, '__name__', kind)}") from None
    raise UserError(f"override {key}: unsupported type {kind}")


def _integer(raw: str) -> int:
    """Exact for any integer written out (a seed of 2**63 - 1 must not round through a float); `1e6` is
    accepted as the whole number it names."""
    try:
        return int(raw.strip())
    except ValueError:
        value = float(raw)
        if not value.is_integer():
            raise ValueError(raw) from None
        return int(value)


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"malformed override {pair!r}: write key=value, e.g. --set lr=3e-4")
        if key not in OVERRIDE_KEYS:
            raise UserError(f"unknown override key {key!r}: valid keys are {', '.join(OVERRIDE_KEYS)}")
        parsed[key] = value
    return parsed


def build_run_config(
    *,
    strategy: str,
    preset: str,
    budget: str = DEFAULT_BUDGET,
    data: str = "synthetic",
    overrides: dict[str, str] | None = None,
    recipe_fields: dict[str, Any] | None = None,
    **run_fields: Any,
) -> RunConfig:
    """Preset + budget + overrides -> a validated RunConfig. Raises UserError on any bad input.
    `recipe_fields` are typed recipe values (from flags such as --seed); a `--set` of the same key wins."""
    p = get_preset(preset)
    overrides = dict(overrides or {})
    model_kw = {
        k: _coerce(k, v, _field_type(ModelConfig, k)) for k, v in overrides.items() if k in _MODEL_KEYS
    }
    recipe_kw = {k: v for k, v in (recipe_fields or {}).items() if v is not None}
    recipe_kw.update(
        {k: _coerce(k, v, _field_type(Recipe, k)) for k, v in overrides.items() if k in _RECIPE_KEYS}
    )
    run_kw = {k: _coerce(k, v, _field_type(RunConfig, k)) for k, v in overrides.items() if k in _RUN_KEYS}
    model = replace(p.model, **model_kw)
    recipe_kw.setdefault("budget_s", parse_duration(budget))
    recipe = Recipe(
        preset=p.name,
        model=model,
        data=recipe_kw.pop("data", data),
        global_batch_tokens=recipe_kw.pop("global_batch_tokens", p.global_batch_tokens),
        lr=recipe_kw.pop("lr", p.lr),
        eval_tokens=recipe_kw.pop("eval_tokens", p.eval_tokens),
        **recipe_kw,
    )
    return RunConfig(recipe=recipe, strategy=strategy, **{**run_fields, **run_kw})
