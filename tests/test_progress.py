"""The parent's progress line: what a run shows while it trains."""

import io

from harness.orchestrate.progress import ProgressDisplay


def shown(display: ProgressDisplay, *events: dict) -> str:
    for event in events:
        display.handle(event)
    return display.stream.getvalue()


def train(step: int, train_s: float) -> dict:
    return {"event": "metric", "kind": "train", "step": step, "train_s": train_s, "loss": 4.0,
            "tokens_per_s": 1000.0, "wall_per_train": 1.2}  # fmt: skip


def test_a_budgeted_run_shows_the_budget_left_and_its_eta():
    text = shown(ProgressDisplay("amp/tiny", 600.0, io.StringIO()), train(5, 60.0))
    assert "left 9m00s" in text and "ETA 10m48s" in text and "step" not in text


def test_a_run_of_a_number_of_steps_shows_its_steps_not_the_budget_that_bounds_it():
    # the answer's measuring runs: 3 steps under a 24 h bound, once shown as "left 23h59m55s | ETA 28h"
    display = ProgressDisplay("amp/tiny", 86400.0, io.StringIO(), max_steps=3)
    text = shown(display, train(2, 5.0))
    assert "step 2/3" in text
    assert "left" not in text and "ETA" not in text


def test_without_a_terminal_evaluations_are_printed_at_the_pace_of_train_lines():
    # a 3 s run evaluates 50 times: one line each would bury the train lines
    evals = [{"event": "metric", "kind": "eval", "train_s": i * 0.06, "val_loss": 3.0} for i in range(50)]
    text = shown(ProgressDisplay("amp/tiny", 3.0, io.StringIO()), *evals)
    assert 2 <= text.count("eval at") <= 4  # every 1 s of the 3 s (1% of the budget, at least 1 s)
