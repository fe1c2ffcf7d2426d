"""Metric sinks: metrics.jsonl always; TensorBoard with --tracker tensorboard, holding the same values."""

import pytest

from harness.core.metric_rows import read_metrics
from tests.conftest import harness_cli, run_inprocess, tiny_config


def scalars(log_dir, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def test_tensorboard_holds_the_same_losses_as_metrics_jsonl(tmp_path):
    runs = tmp_path / "runs"
    proc = harness_cli(
        "bench",
        "--preset",
        "tiny",
        "--budget",
        "1h",
        "--max-steps",
        "8",
        "--tracker",
        "tensorboard",
        "--runs-dir",
        str(runs),
        "--set",
        "log_interval_s=0",
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = runs.iterdir()
    rows = read_metrics(run_dir / "metrics.jsonl")
    train = [(r["step"], r["loss"]) for r in rows if r["kind"] == "train"]
    evals = [(r["step"], r["val_loss"]) for r in rows if r["kind"] == "eval"]
    assert len(train) == 8
    board = run_dir / "tensorboard"
    assert [s for s, _ in scalars(board, "train/loss")] == [s for s, _ in train]
    assert [v for _, v in scalars(board, "train/loss")] == pytest.approx([v for _, v in train], rel=1e-6)
    assert [v for _, v in scalars(board, "eval/val_loss")] == pytest.approx([v for _, v in evals], rel=1e-6)
    ppl = [v for _, v in scalars(board, "eval/val_ppl")]
    assert ppl == pytest.approx([r["val_ppl"] for r in rows if r["kind"] == "eval"], rel=1e-6)
    for tag in ("train/lr", "train/grad_norm", "speed/tokens_per_s", "memory/peak_host_rss_gib"):
        assert scalars(board, tag), tag


def test_a_resume_replaces_what_came_after_its_checkpoint(tmp_path):
    import shutil

    cfg = tiny_config(
        budget="1h",
        max_steps=12,
        log_interval_s=0,
        checkpoint_interval_s=1e-9,
        keep_checkpoints=20,
        trackers=("tensorboard",),
    )
    assert run_inprocess(cfg, tmp_path).status == "ok"
    checkpoints = sorted((tmp_path / "checkpoints").iterdir())
    for newer in checkpoints[6:]:  # as if the run had died after its checkpoint at step 6
        shutil.rmtree(newer)
    assert run_inprocess(cfg, tmp_path, resume=True).status == "ok"
    steps = [s for s, _ in scalars(tmp_path / "tensorboard", "train/loss")]
    assert steps == list(range(1, 13))  # steps 7-12 once, from the resumed session
    rows = [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl") if r["kind"] == "train"]
    assert rows == list(range(1, 13))


def test_unknown_or_missing_trackers_are_refused_up_front(tmp_path):
    proc = harness_cli("bench", "--preset", "tiny", "--tracker", "wandb", "--runs-dir", str(tmp_path))
    assert proc.returncode == 2 and "unknown tracker 'wandb'" in proc.stderr
    assert not any(tmp_path.iterdir())
