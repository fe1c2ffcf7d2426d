"""`harness fit` and the answer that reads its law: the grid (IsoFLOP profiles around the law's optimum, as
much compute as the fit's time allows), the fit document (written after every run, resumed without
training a run twice), a fit that is not believable set aside for the prior with why, and an answer that
uses a stored law and says so. The runs here are generated from a known law, so that each test takes
seconds; one real run checks that a grid run trains as planned."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from harness.capacity.law import PRIOR, Law
from harness.capacity.law_fit import implausible
from harness.capacity.law_grid import LEVELS, MIN_STEPS, PER_LEVEL, SPACING, Rung, plan_grid, seconds
from harness.core.errors import UserError
from harness.orchestrate.fit import FitPlan, FitSetup, fit_budget_s, law_key
from harness.orchestrate.fit_runs import FitStopped, read_fit, run_fit, stored_law

TRUE = Law(1.9, 450.0, 1200.0, 0.34, 0.33, "the test's")  # near the prior: its grid straddles the optimum
GPT = [("gpt-a", 10e6), ("gpt-b", 20e6), ("gpt-c", 40e6), ("gpt-d", 80e6), ("gpt-e", 160e6), ("gpt-f", 320e6)]


def ladder(speed_flops: float = 1e15) -> list[Rung]:
    """Rungs whose speed is a fixed FLOP rate: a run's time is its compute over it."""
    return [Rung(name, "gpt-16m", int(n), 524_288, 1024, speed_flops / (6 * n)) for name, n in GPT]


def test_the_grid_centres_each_profile_on_the_laws_optimum_and_spends_the_fits_time():
    rungs = ladder()
    grid = plan_grid(PRIOR, rungs, 3600.0, overhead_s=10.0)
    assert len(grid) == LEVELS * PER_LEVEL
    assert seconds(grid, 10.0) <= 3600.0 < seconds(plan_grid(PRIOR, rungs, 3700.0, 10.0), 10.0) + 1e-6
    assert seconds(grid, 10.0) > 0.95 * 3600  # the top level is as high as the time allows
    computes = sorted({g.compute for g in grid})
    assert [b / a for a, b in itertools.pairwise(computes)] == pytest.approx([SPACING] * (LEVELS - 1))
    for level in range(LEVELS):
        own = [g for g in grid if g.level == level]
        best = PRIOR.optimum(own[0].compute)[0]
        names = [g.rung.params for g in own]
        below, above = [n for n in names if n < best], [n for n in names if n > best]
        assert min(r.params for r in rungs) < best < max(r.params for r in rungs)  # this ladder spans it
        assert below and above  # so the profile straddles it
        for g in own:
            assert g.steps >= MIN_STEPS and g.tokens == g.steps * g.global_batch_tokens
            assert g.global_batch_tokens % 1024 == 0
            assert 6 * g.rung.params * g.tokens == pytest.approx(g.compute, rel=0.2)


def test_a_batch_shrinks_only_where_its_own_would_leave_too_few_steps():
    grid = plan_grid(PRIOR, ladder(1e12), 3600.0)  # little compute: the 0.5M-token batch is too large
    small = [g for g in grid if g.global_batch_tokens < 524_288]
    assert small
    for g in small:  # the fewest steps, of a whole number of sequences each: the compute as planned
        assert MIN_STEPS <= g.steps < 1.2 * MIN_STEPS
        assert g.tokens == pytest.approx(g.compute / (6 * g.rung.params), rel=0.1)
    large = plan_grid(PRIOR, ladder(1e15), 600.0)
    assert all(g.global_batch_tokens == 524_288 for g in large if g.steps > MIN_STEPS)


def test_a_fit_budget_too_short_for_the_shortest_grid_is_refused_with_its_estimate(tmp_path):
    with pytest.raises(ValueError, match=r"predicted to take \d+ s"):
        plan_grid(PRIOR, ladder(), 1.0, overhead_s=10.0)
    from tests.conftest import harness_main

    out = tmp_path / "fits"
    proc = harness_main("fit", "--budget", "1h", "--fit-budget", "1s", "--out", str(out), "--device", "cpu")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "--fit-budget 1s (1 s) is too short" in line
    shortest = float(line.split("predicted to take ")[1].split(" s")[0])
    assert line.endswith(f"give --fit-budget {math.ceil(100 * shortest / 3600)}% or more")  # what would do
    assert not out.exists()


@pytest.mark.parametrize(
    "text, seconds_",
    [
        ("5%", 180.0),
        ("100%", 3600.0),
        ("30m", 1800.0),
        ("0%", None),
        ("150%", None),
        ("x%", None),
        ("soon", None),
    ],
)
def test_the_fit_budget_is_a_share_of_the_budget_or_a_duration(text, seconds_):
    if seconds_ is None:
        with pytest.raises(UserError, match="--fit-budget"):
            fit_budget_s(text, 3600.0)
    else:
        assert fit_budget_s(text, 3600.0) == pytest.approx(seconds_)


def known_law_runs(noise: float = 0.01, seed: int = 0, stop_at: int | None = None, calls: list | None = None):
    """A `train` for run_fit: each grid run's loss from TRUE, with lognormal noise of `noise`."""
    rng = np.random.default_rng(seed)

    def train(plan, setup, g):
        if calls is not None:
            calls.append(g.key)
        if stop_at is not None and calls is not None and len(calls) > stop_at:
            raise FitStopped("stopped")
        loss = TRUE.loss(g.rung.params, g.tokens) * math.exp(rng.normal(0, noise))
        return {
            "rung": g.rung.name,
            "params": g.rung.params,
            "level": g.level,
            "tokens": g.tokens,
            "compute": 6 * g.rung.params * g.tokens,
            "final_val_loss": loss,
            "wall_s": 1.0,
            "run": f"runs/{g.key}",
        }

    return train


def setup_for(tmp_path, kind: str = "cuda", budget_s: float = 86400.0) -> tuple[FitPlan, FitSetup]:
    plan = FitPlan(out=tmp_path / "fits", runs_dir=tmp_path / "runs", resamples=50, quiet=True)
    key, identity = law_key("synthetic", kind)
    grid = plan_grid(PRIOR, ladder(), 3600.0)
    return plan, FitSetup(budget_s, 3600.0, kind, key, identity, grid)


def test_a_fit_recovers_its_law_writes_after_every_run_and_resumes_without_training_twice(tmp_path):
    plan, setup = setup_for(tmp_path)
    calls: list = []
    stopped = run_fit(plan, setup, train=known_law_runs(stop_at=5, calls=calls))
    path = plan.out / f"{setup.key}.json"
    assert stopped["stopped"] and len(stopped["runs"]) == 5 and not stopped["complete"]
    assert json.loads(path.read_text())["runs"] == stopped["runs"]  # on disk as it stopped
    law, record = stored_law(plan.out, setup.key)
    assert not law.fitted and "has not finished" in record["why"]
    again: list = []
    done = run_fit(plan, setup, train=known_law_runs(seed=1, calls=again))
    assert len(again) == len(setup.grid) - 5 and not set(again) & set(calls[:5])
    assert done["complete"] and done["runs_reused"] == 5 and len(done["runs"]) == len(setup.grid)
    assert done["converged"], done["why"]
    fitted = Law(**done["law"], source="")
    for k in ("E", "alpha", "beta"):  # each central figure within its own interval, the interval a range
        low, high = done["intervals_95"][k]
        assert low <= done["law"][k] <= high and low < high, k
    top = max(r["compute"] for r in done["runs"].values())
    assert fitted.optimum(top)[0] == pytest.approx(TRUE.optimum(top)[0], rel=0.3)
    assert all(abs(r) < 0.1 for r in done["residuals"])
    assert [p["level"] for p in done["approach_2"]] == list(range(LEVELS))
    for p in done["approach_2"]:  # each profile's own minimum, where it has one inside its sizes
        truth = TRUE.optimum(p["compute"])[0]
        assert p["n_opt_parabola"] is None or truth / 2.5 < p["n_opt_parabola"] < truth * 2.5
        assert p["n_opt_parabola"] is not None or p["outside"]


def test_a_resumed_fit_trains_again_a_failed_run_and_never_mixes_in_another_grids(tmp_path):
    plan, setup = setup_for(tmp_path)
    first = known_law_runs()

    def failing(plan_, setup_, g):
        return {**first(plan_, setup_, g), "status": "error" if g.level == 0 else "ok"}

    run_fit(plan, setup, train=failing)  # every level-1 run failed: its early loss is not its tokens'
    again: list = []
    done = run_fit(plan, setup, train=known_law_runs(calls=again))
    assert sorted(again) == sorted(g.key for g in setup.grid if g.level == 0) and done["runs_reused"] == 8
    wider = FitSetup(
        setup.budget_s,
        4 * 3600.0,
        setup.kind,
        setup.key,
        setup.identity,
        plan_grid(PRIOR, ladder(), 4 * 3600.0),
    )  # another grid: every level's compute 4x
    other: list = []
    moved = run_fit(plan, wider, train=known_law_runs(calls=other))
    assert moved["runs_reused"] == 0 and len(other) == len(wider.grid)
    assert set(moved["runs"]) == {g.key for g in wider.grid}  # the old grid's runs are not fitted beside


def test_an_answer_uses_the_stored_law_and_says_so(tmp_path):
    from tests.conftest import harness_main

    plan, setup = setup_for(tmp_path)
    run_fit(plan, setup, train=known_law_runs())
    out = tmp_path / "answer.json"
    proc = harness_main(
        "answer",
        "--predict-only",
        "--gpu",
        "NVIDIA H100 80GB HBM3",
        "--json",
        "--out",
        str(out),
        "--fits",
        str(plan.out),
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["law"]["used"] == "fitted" and doc["law"]["fitted"] and doc["law"]["fit"].endswith(".json")
    assert doc["method"]["loss"].startswith(f"fitted on {len(setup.grid)} runs of this recipe")
    assert "bootstrap refits" in doc["method"]["loss_interval"]
    fitted = json.loads((plan.out / f"{setup.key}.json").read_text())["law"]
    law = Law(**fitted, source="")
    (entry,) = doc["sizes"]
    best = next(
        c for c in entry["candidates"] if (c["strategy"], c["preset"]) == tuple(entry["best"].values())
    )
    assert best["estimated_loss"]["value"] == pytest.approx(law.loss(best["params"], best["tokens"]["value"]))
    assert "extrapolates" in (entry["law_note"] or "")  # a day on an H100 is far past the fit's compute
    assert "its compute is" in entry["law_note"]


def test_a_fit_that_is_not_believable_is_kept_but_the_answer_uses_the_prior_and_says_why(tmp_path):
    assert implausible(Law(5e-58, 1e11, 93.0, 2.56, 0.28, ""), 1.7).startswith("the fit ended at alpha 2.56")
    assert "E 3" in implausible(Law(3.0, 40.0, 300.0, 0.35, 0.3, ""), 2.0)
    assert implausible(TRUE, 2.5) is None and implausible(TRUE, 1.8).startswith("the fit ended at E 1.9,")
    plan, setup = setup_for(tmp_path)
    flat = lambda plan_, setup_, g: {**known_law_runs()(plan_, setup_, g), "final_val_loss": 3.0}  # noqa: E731
    doc = run_fit(plan, setup, train=flat)
    assert doc["complete"] and not doc["converged"] and doc["why"]
    law, record = stored_law(plan.out, setup.key)
    assert not law.fitted and record["used"] == "prior" and "has no law" in record["why"]


def test_a_damaged_fit_document_is_set_aside_for_the_prior(tmp_path):
    plan, setup = setup_for(tmp_path)
    run_fit(plan, setup, train=known_law_runs())
    path = plan.out / f"{setup.key}.json"
    doc = json.loads(path.read_text())
    doc["law"]["alpha"] = "0.3"
    path.write_text(json.dumps(doc))
    assert read_fit(path, setup.key) is None
    law, record = stored_law(plan.out, setup.key)
    assert not law.fitted and "does not read back as a fit" in record["why"]
    assert "no fit of this recipe" in stored_law(tmp_path / "none", setup.key)[1]["why"]


def test_the_key_is_the_datas_identity_not_its_path(tmp_path):
    text = "the quick brown fox jumps over the lazy dog. " * 400
    a, b = tmp_path / "x" / "corpus.txt", tmp_path / "y" / "corpus.txt"  # one file, in two places
    for path in (a, b):
        path.parent.mkdir()
    a.write_text(text)
    b.write_text(text)
    assert law_key(str(a), "cpu")[0] == law_key(str(b), "cpu")[0] != law_key("synthetic", "cpu")[0]
    assert (
        law_key("synthetic", "cpu")[0] != law_key("synthetic", "cuda")[0]
    )  # another sequence and vocabulary


def test_a_grid_run_trains_as_planned(tmp_path):
    """One real run of the CPU grid: its steps, its batch, and a finite final loss in its record."""
    from harness.orchestrate.fit import prepare
    from harness.orchestrate.fit_runs import train_run

    plan = FitPlan(
        budget="1h",
        fit_budget="5m",
        out=tmp_path / "fits",
        runs_dir=tmp_path / "runs",
        quiet=True,
        device="cpu",
    )
    setup = prepare(plan)
    g = min(setup.grid, key=lambda g: g.seconds)
    record = train_run(plan, setup, g)
    assert record["status"] == "ok", record["error"]
    result = json.loads((tmp_path / "runs" / record["run"].split("/")[-1] / "result.json").read_text())
    assert (
        result["summary"]["steps"] == g.steps
        and result["recipe"]["global_batch_tokens"] == g.global_batch_tokens
    )
    assert 0 < record["final_val_loss"] < math.log(512) + 1


def test_the_fit_page_shows_the_law_its_profiles_and_every_run(tmp_path):
    from harness.report.fit_page import profile_chart, render_fit_page

    plan, setup = setup_for(tmp_path)
    doc = run_fit(plan, setup, train=known_law_runs())
    html = render_fit_page(doc, tmp_path / "fit.html").read_text()
    assert f"L(N, D) = {doc['law']['E']:.3f} + " in html and "fitted on this recipe's runs" in html
    for level in range(1, LEVELS + 1):
        assert f"level {level}: measured" in html and f"level {level}: 90% band" in html
    for r in doc["runs"].values():
        assert f"<code>{r['run']}</code>" in html and f"{r['final_val_loss']:.3f}" in html
    chart = profile_chart(doc)  # the runs are points, the law and its band lines
    assert chart.count("<polyline") == 2 * LEVELS and chart.count('class="point filled"') == len(doc["runs"])
    flat = lambda plan_, setup_, g: {**known_law_runs()(plan_, setup_, g), "final_val_loss": 3.0}  # noqa: E731
    plan.out.joinpath(f"{setup.key}.json").unlink()
    doubted = render_fit_page(run_fit(plan, setup, train=flat), tmp_path / "doubted.html").read_text()
    assert "Not taken as this recipe's law: the fit ended at" in doubted and "use the prior" in doubted


@pytest.mark.parametrize(
    "args, said",
    [
        (["fit", "--fit-budget", "0%"], "--fit-budget '0%': give a share above 0% and at most 100%"),
        (
            ["fit", "--fit-budget", "soon"],
            "--fit-budget 'soon': give a share of the budget (5%) or a duration",
        ),
        (["fit", "--budget", "1h", "--fit-budget", "2h"], "--fit-budget 2h is more than the --budget 1h"),
        (["fit", "--device", "tpu"], "--device 'tpu': give auto, cuda or cpu"),
        (
            ["fit", "--presets", "gpt-16m", "--device", "cpu"],
            "--presets names 1: a fit needs 3 sizes or more",
        ),
        (
            ["fit", "--presets", "gpt-16m,gpt-30m,gpt-51m", "--device", "cpu", "--budget", "10m"],
            "more than the whole budget: give a longer --budget, or smaller --presets",
        ),
        (
            ["fit", "--budget", "1d", "--fit-budget", "1s", "--device", "cpu"],
            "give --fit-budget",
        ),  # 12 starts alone take 72 s, and under a day's share on any machine: the "N% or more" wording
        (["fit", "--resamples", "1"], "resamples=1 is out of range"),
        (["fit", "--data", "/nonexistent.txt"], "data path '/nonexistent.txt' does not exist"),
        (["answer", "--top", "0"], "top=0 is out of range"),
        (
            ["answer", "--data", "/nonexistent.txt", "--predict-only", "--gpu", "NVIDIA H100 80GB HBM3"],
            "data path '/nonexistent.txt' does not exist",
        ),
    ],
)
def test_bad_fit_input_is_one_line_before_anything_runs(tmp_path, args, said):
    from tests.conftest import harness_main

    out = ["--out", str(tmp_path / ("fits" if args[0] == "fit" else "answer.json"))]
    proc = harness_main(*args, *out, "--quiet")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert said in line
    assert not (tmp_path / "fits").exists() and not (tmp_path / "answer.json").exists()


def test_a_fits_folder_that_is_a_file_is_refused(tmp_path):
    from tests.conftest import harness_main

    fits = tmp_path / "fits"
    fits.write_text("")
    for args, said in (
        (["fit", "--out"], f"--out {fits} is a file, not a folder"),  # the shared folder check's words
        (
            ["answer", "--predict-only", "--gpu", "NVIDIA H100 80GB HBM3", "--fits"],
            f"--fits {fits} is not a folder",
        ),
    ):
        proc = harness_main(*args, str(fits), "--quiet")
        assert proc.returncode == 2 and said in proc.stderr.strip()


def test_the_backtests_order_leaves_out_a_run_that_failed():
    from harness.orchestrate.backtest import order

    def run(preset, estimate, measured, status="ok"):
        return {
            "preset": preset,
            "strategy": "amp",
            "status": status,
            "estimated_loss": {"value": estimate},
            "final_val_loss": {"value": measured},
        }

    both = order([run("small", 3.0, 2.9), run("tiny", 3.1, 2.8)])
    assert both == {
        "predicted": ["small with amp", "tiny with amp"],
        "measured": ["tiny with amp", "small with amp"],
        "agrees": False,
        "measured_best_was_best": False,
    }
    failed = order([run("small", 3.0, 5.9, status="error"), run("tiny", 3.1, 2.8)])
    assert failed["measured"] == ["tiny with amp"] and failed["agrees"] is None
    assert failed["measured_best_was_best"] is None  # the best never finished: not known
