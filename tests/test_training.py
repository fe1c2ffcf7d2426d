"""The budgeted loop on the tiny preset, in-process (the CLI tests run it in a child process)."""

from dataclasses import fields

import pytest
import torch

from harness.core.metric_rows import read_metrics
from harness.core.recipe import RunConfig
from harness.engine.schedule import budget_fraction, lr_at
from tests.conftest import expected_eval_steps, run_inprocess, tiny_config


def rows(run_dir, kind):
    return [r for r in read_metrics(run_dir / "metrics.jsonl") if r["kind"] == kind]


@pytest.mark.serial
def test_budget_holds_within_one_step_and_lr_ends_at_its_floor(tmp_path):
    cfg = tiny_config(budget="3s", log_interval_s=0)
    result = run_inprocess(cfg, tmp_path)
    assert result.status == "ok", result.error
    s = result.summary
    train = rows(tmp_path, "train")
    last_step_s = train[-1]["step_s"]
    assert 3.0 <= s.train_s < 3.0 + last_step_s  # stopped at the first step that ended past the budget
    assert all(row["train_s"] < 3.0 for row in train[:-1])  # (a busy machine may fit one step only)
    assert s.steps == len(train) == train[-1]["step"]
    assert s.tokens == s.steps * cfg.recipe.global_batch_tokens
    # Each step's LR is the schedule's at that step's expected end (the clock plus the median of the last
    # steps' times), never before the previous step's: after warm-up it never rises.
    kw = {"peak": cfg.recipe.lr, "warmup_frac": cfg.recipe.warmup_frac, "min_ratio": cfg.recipe.min_lr_ratio}
    fraction, clock, times = 0.0, 0.0, []
    for row in train:
        fraction = budget_fraction(fraction, clock, times, 3.0)
        assert row["lr"] == pytest.approx(lr_at(fraction, **kw), rel=1e-12)
        clock, times = row["train_s"], [*times, row["step_s"]]
    peak_at = max(range(len(train)), key=lambda i: train[i]["lr"])
    assert all(a["lr"] >= b["lr"] for a, b in zip(train[peak_at:], train[peak_at + 1 :], strict=False))
    # ... so the last step, which began within its own time of the deadline, sits within that time of the
    # end of the decay (at the floor exactly when its predecessors' median predicted it to end there).
    floor = cfg.recipe.lr * cfg.recipe.min_lr_ratio
    assert floor <= train[-1]["lr"] <= lr_at((3.0 - train[-1]["step_s"]) / 3.0, **kw) * (1 + 1e-12)
    assert s.eval_s > 0 and s.warmup_s > 0 and s.setup_s > 0
    assert s.wall_s >= s.train_s + s.eval_s + s.warmup_s
    assert s.tokens_per_s == pytest.approx(s.tokens / s.train_s)
    assert s.steady_tokens_per_s > 0 and s.mfu is None  # no known peak on a CPU
    evals = rows(tmp_path, "eval")
    assert [e["step"] for e in evals] == expected_eval_steps(train, 3.0, cfg.recipe.eval_points)
    assert evals[0]["step"] == 0 and evals[-1]["step"] == s.steps
    assert s.final_val_loss == evals[-1]["val_loss"] < evals[0]["val_loss"]
    assert s.gap_to_floor == pytest.approx(s.final_val_loss - s.floor_loss)
    assert s.floor_loss > 0
    assert s.data_tokens_per_s > 10 * s.tokens_per_s  # the synthetic stream is never the bottleneck


def losses(run_dir):
    return [r["loss"] for r in rows(run_dir, "train")]


def test_same_seed_same_data_and_init_and_warmup_leaves_no_trace(tmp_path):
    common = {"budget": "60s", "max_steps": 6, "log_interval_s": 0, "eval_points": 1}
    a = run_inprocess(tiny_config(**common), tmp_path / "a")
    b = run_inprocess(tiny_config(**common, warmup_steps=0), tmp_path / "b")
    c = run_inprocess(tiny_config(**common, seed=99), tmp_path / "c")
    assert a.status == b.status == c.status == "ok"
    assert a.summary.steps == 6
    assert losses(tmp_path / "a") == losses(tmp_path / "b")
    assert rows(tmp_path / "a", "eval")[0]["val_loss"] == rows(tmp_path / "b", "eval")[0]["val_loss"]
    assert losses(tmp_path / "a") != losses(tmp_path / "c")
    assert a.recipe_fingerprint == b.recipe_fingerprint != c.recipe_fingerprint


def test_time_to_target_and_recorded_settings(tmp_path):
    # 20 steps whatever the machine's speed (a budget in seconds would give a busy machine fewer), with an
    # evaluation point every 0.1 s of training clock: several evaluations, the loss falling past 4.5 between
    # two of them (at steps 7-9 on the development machine)
    cfg = tiny_config(budget="1h", max_steps=20, targets="4.5,0.1", eval_points=36000, log_interval_s=0)
    result = run_inprocess(cfg, tmp_path)
    assert result.status == "ok"
    evals = rows(tmp_path, "eval")
    i = next(i for i, e in enumerate(evals) if e["val_loss"] <= 4.5)
    assert i > 0  # the run starts above 4.5 nats (log 512 = 6.2) and crosses it between two evaluations
    (v0, t0), (v1, t1) = (
        (evals[i - 1]["val_loss"], evals[i - 1]["train_s"]),
        (evals[i]["val_loss"], evals[i]["train_s"]),
    )
    crossing = t0 + (v0 - 4.5) / (v0 - v1) * (t1 - t0)  # linear between the bracketing evaluations
    assert t0 < crossing <= t1
    assert result.summary.time_to_target_s == {"4.5": pytest.approx(crossing), "0.1": None}
    assert result.summary.time_to_target_bracket_s == {"4.5": [t0, t1], "0.1": None}
    # evaluation points evenly over the budget (none of them on its clock): one at each the steps pass
    assert [e["step"] for e in evals] == expected_eval_steps(rows(tmp_path, "train"), 3600.0, 36000)
    assert result.settings["micro_batch"] * result.settings["grad_accum"] == 64
    assert result.settings["precision"] == "fp32" and result.settings["compile"] is False
    # the whole run description, every field of the run configuration but the recipe (held resolved)
    assert set(result.run_config) == {f.name for f in fields(RunConfig)} - {"recipe"}
    assert result.run_config["max_steps"] == 20 and result.run_config["strategy"] == "amp"
    env = result.environment
    assert env["python"] and env["libraries"]["torch"] and env["code_fingerprint"]


def test_a_failing_strategy_ends_as_an_error_result(tmp_path, monkeypatch):
    from strategies.amp import AmpExecutor

    def explode(self, micro_batches, lr):
        raise RuntimeError("strategy blew up mid-step")

    monkeypatch.setattr(AmpExecutor, "train_step", explode)
    result = run_inprocess(tiny_config(warmup_steps=0), tmp_path)
    assert result.status == "error"
    assert "strategy blew up mid-step" in result.error
    assert result.recipe_fingerprint  # identity was captured before the failure


def test_out_of_memory_is_a_result(tmp_path, monkeypatch):
    import torch

    from strategies.amp import AmpExecutor

    def oom(self, micro_batches, lr):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(AmpExecutor, "train_step", oom)
    result = run_inprocess(tiny_config(warmup_steps=0), tmp_path)
    assert result.status == "oom"
    assert "out of memory" in result.error
    assert result.summary.peak_host_rss_gib > 0


@pytest.mark.parametrize(
    "failure",
    [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
        RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"),
    ],
    ids=["torch", "cublas"],
)
def test_out_of_memory_in_strategy_setup_is_an_oom_result(tmp_path, monkeypatch, failure):
    from strategies.amp import AmpExecutor

    def setup_that_runs_out(self, model, ctx):
        self.ctx = ctx
        raise failure

    monkeypatch.setattr(AmpExecutor, "setup", setup_that_runs_out)
    result = run_inprocess(tiny_config("amp", budget="2s"), tmp_path / "run")
    assert result.status == "oom", result.error
    assert "out of memory" in result.error
