"""Every numeric field of the recipe, the model and the run declares its valid range, and a value outside it
(or not finite) is refused in the parent, in one line, before any run starts."""

import math
from dataclasses import fields

import pytest

from harness.core.errors import UserError
from harness.core.overrides import OVERRIDE_KEYS, build_run_config
from harness.core.presets import ModelConfig
from harness.core.ranges import RANGE
from harness.core.recipe import Recipe, RunConfig
from tests.conftest import harness_main

RANGED = [(cls, f) for cls in (ModelConfig, Recipe, RunConfig) for f in fields(cls) if RANGE in f.metadata]


def bad_values(rule):
    values = [math.nan, math.inf]
    if rule.lo is not None:
        values.append(rule.lo if rule.lo_open else rule.lo - 1)
    if rule.hi is not None:
        values.append(rule.hi if rule.hi_open else rule.hi * 2 + 1)
    return values


def build(name, value):
    text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    if name in OVERRIDE_KEYS:
        return build_run_config(strategy="amp", preset="tiny", overrides={name: text})
    return build_run_config(strategy="amp", preset="tiny", **{name: value})


def test_every_numeric_field_declares_a_range():
    numeric = {
        f.name
        for cls in (ModelConfig, Recipe, RunConfig)
        for f in fields(cls)
        if any(t in str(f.type) for t in ("int", "float")) and f.name not in ("trackers",)
    }
    assert numeric == {f.name for _, f in RANGED}


@pytest.mark.parametrize(("cls", "f"), RANGED, ids=[f.name for _, f in RANGED])
def test_out_of_range_values_are_refused(cls, f):
    for value in bad_values(f.metadata[RANGE]):
        with pytest.raises(UserError) as refused:
            build(f.name, value)
        message = str(refused.value)
        # Out of range, or (a non-finite value for an integer field) not an integer at all.
        assert f"{f.name}=" in message and ("out of range" in message or "expected int" in message), message


@pytest.mark.parametrize(
    "pair",
    [
        "lr=nan",
        "lr=inf",
        "lr=-1",
        "budget_s=inf",
        "seed=-1",
        f"seed={2**64}",
        "beta1=1.5",
        "targets=nan",
        "vocab_size=1",
        "vocab_size=10000000000",
        "checkpoint_interval_s=-1",
        "checkpoint_interval_s=nan",
        "log_interval_s=nan",
        "keep_checkpoints=0",
    ],
)
def test_the_command_line_refuses_them_before_anything_starts(tmp_path, pair):
    proc = harness_main("bench", "--preset", "tiny", "--set", pair, "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "out of range" in proc.stderr, (
        proc.stderr
    )
    assert not (tmp_path / "runs").exists()


def test_a_budget_of_400_nines_is_refused():
    with pytest.raises(UserError, match="not a finite duration"):
        build_run_config(strategy="amp", preset="tiny", budget="9" * 400 + "s")


@pytest.mark.parametrize("seed", [2**53 + 1, 2**63 - 1])
def test_an_integer_is_taken_exactly_not_through_a_float(seed):
    # A float would turn 2**53 + 1 into 2**53 (another run) and the declared maximum 2**63 - 1 into 2**63.
    assert build_run_config(strategy="amp", preset="tiny", overrides={"seed": str(seed)}).recipe.seed == seed
    written_as_float = build_run_config(strategy="amp", preset="tiny", overrides={"n_layer": "2e0"})
    assert written_as_float.recipe.model.n_layer == 2
