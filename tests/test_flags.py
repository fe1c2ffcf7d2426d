"""The command line is generated from the run description's dataclasses: every settable field is a flag with
its type, default and help; a flag's text is read by its field's declaration; a field added to the recipe
reaches `--help`, the command line and result.json with no other edit."""

import argparse
import json
import shutil
import sys
from dataclasses import fields

import pytest

from harness.cli.flags import add_flags, given
from harness.cli.parser import build_parser, plan_from_args
from harness.core.errors import UserError
from harness.core.options import flag_of, settable
from harness.core.overrides import DESCRIPTION
from harness.core.presets import ModelConfig
from harness.core.recipe import Recipe, RunConfig
from tests.conftest import ROOT, run_process


def _help(command: str) -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command].format_help()


@pytest.mark.parametrize("command", ["bench", "sweep", "parity"])
def test_help_lists_every_settable_field_with_its_type_and_default(command):
    text = " ".join(_help(command).split())  # argparse wraps lines
    for cls in DESCRIPTION:
        for f in settable(cls):
            assert flag_of(f) in text, f.name
    assert "--lr FLOAT peak learning rate (float in (0, 10]; default: the preset's)" in text
    assert "--seed INT the model's init and the data's order (int in [0, 2^63-1]; default: 1337)" in text
    assert "--budget DURATION training-clock budget" in text and "default: 24h)" in text
    assert "--device {auto,cuda,cpu}" in text and "--compile, --no-compile" in text
    assert "--micro-batch INT" in text and "default: auto)" in text


def test_internal_fields_have_no_flag():
    text = _help("bench")
    for name in ("--run-id", "--command", "--recipe", "--model"):
        assert name not in text


def _parse(*argv):
    return build_parser().parse_args(["bench", *argv])


def test_flags_are_read_by_their_fields_types_and_set_wins():
    args = _parse(
        *("--preset", "tiny", "--lr", "2e-3", "--n-layer", "3", "--no-compile", "--targets", "4,3.5"),
        *("--tracker", "tensorboard", "--micro-batch", "auto", "--budget", "90s", "--set", "lr=1e-3"),
    )
    plan = plan_from_args(args, ("amp",))
    recipe = plan.run.recipe
    assert recipe.lr == 1e-3  # --set wins over the flag
    assert recipe.model.n_layer == 3 and recipe.model.d_model == 64  # the rest of the shape is the preset's
    assert recipe.compile is False and recipe.targets == (4.0, 3.5) and recipe.budget_s == 90.0
    assert plan.run.micro_batch is None and plan.run.trackers == ("tensorboard",)
    assert plan.run.device == "auto" and plan.runs_dir.name == "runs"  # absent flags: the field's defaults


def test_a_flag_given_twice_for_a_tuple_collects_both():
    args = _parse("--targets", "4", "--targets", "3.5")
    assert given(args, Recipe) == {"targets": (4.0, 3.5)}


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (("--lr", "fast"), "--lr 'fast': expected float"),
        (("--n-layer", "2.5"), "--n-layer '2.5': expected int"),
        (("--micro-batch", "lots"), "--micro-batch 'lots': expected int (a positive integer, or auto)"),
        (("--budget", "soon"), "malformed budget 'soon'"),
    ],
)
def test_a_text_its_type_does_not_take_is_one_line_naming_the_flag(argv, fragment):
    with pytest.raises(UserError) as refused:
        plan_from_args(_parse(*argv), ("amp",))
    assert fragment in str(refused.value)


def test_ranges_are_checked_once_by_the_dataclass():
    with pytest.raises(UserError, match=r"lr=-1.0 is out of range: lr must be a number in \(0, 10\]"):
        plan_from_args(_parse("--lr", "-1"), ("amp",))


def test_a_generated_flag_for_each_field_of_any_dataclass():
    from dataclasses import dataclass, field

    from harness.core.options import option
    from harness.core.ranges import within

    @dataclass(frozen=True)
    class Toy:
        width: int = field(default=4, metadata=option("how wide", within(1, 8)))
        hidden: str = "x"  # no help: not settable

    parser = argparse.ArgumentParser()
    add_flags(parser, Toy)
    assert [a.option_strings for a in parser._actions[1:]] == [["--width"]]
    assert given(parser.parse_args(["--width", "6"]), Toy) == {"width": 6}
    assert given(parser.parse_args([]), Toy) == {}


def test_every_run_description_field_is_settable_or_internal():
    for cls in (ModelConfig, Recipe, RunConfig):
        for f in fields(cls):
            assert "help" in f.metadata or f.metadata.get("internal"), f"{cls.__name__}.{f.name}"


ADDED_FIELD = """
    # a field a test adds: nothing else in the harness names it
    label_smoothing: float = field(
        default=0.0, metadata=option("share of the target's probability spread evenly", within(0, 1))
    )
"""


ADDED_RUN_FIELD = """
    # a run field a test adds: nothing else in the harness names it
    run_label: str = field(default="", metadata=option("a label the run keeps"))
"""


@pytest.mark.slow
def test_a_field_added_to_the_recipe_reaches_help_the_command_line_and_the_result(tmp_path):
    for package in ("harness", "strategies"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    recipe = tmp_path / "harness/core/recipe.py"
    text = recipe.read_text()
    anchor = "\n    def __post_init__(self) -> None:\n        check_fields(self)\n        if self.global"
    assert anchor in text
    text = text.replace(anchor, ADDED_FIELD + anchor, 1)
    run_anchor = "\n    def described(self) -> dict[str, Any]:"
    assert run_anchor in text
    recipe.write_text(text.replace(run_anchor, ADDED_RUN_FIELD + run_anchor, 1))
    env = {"PYTHONPATH": str(tmp_path)}

    def harness(*argv):
        return run_process([sys.executable, "-m", "harness", *argv], cwd=tmp_path, env=env)

    shown = harness("bench", "--help")
    assert shown.returncode == 0, shown.stderr
    assert "--label-smoothing FLOAT" in shown.stdout
    assert "share of the target's probability spread evenly" in " ".join(shown.stdout.split())
    runs = tmp_path / "runs"
    common = ("--preset", "tiny", "--device", "cpu", "--max-steps", "1", "--warmup-steps", "0", "--quiet")
    ran = harness("bench", *common, "--label-smoothing", "0.25", "--run-label", "x1", "--runs-dir", str(runs))
    assert ran.returncode == 0, ran.stderr
    (run_dir,) = runs.iterdir()
    written = json.loads((run_dir / "result.json").read_text())
    assert written["recipe"]["label_smoothing"] == 0.25
    assert written["run_config"]["run_label"] == "x1"
    by_set = harness("bench", *common, "--set", "label_smoothing=0.5", "--runs-dir", str(tmp_path / "other"))
    assert by_set.returncode == 0, by_set.stderr
    (other,) = (tmp_path / "other").iterdir()
    assert json.loads((other / "result.json").read_text())["recipe"]["label_smoothing"] == 0.5
    refused = harness("bench", *common, "--label-smoothing", "2", "--runs-dir", str(tmp_path / "no"))
    assert refused.returncode == 2 and "label_smoothing=2.0 is out of range" in refused.stderr
    assert not (tmp_path / "no").exists()
