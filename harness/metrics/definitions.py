"""Every figure of a result, defined once. A `Metric` record says what a figure is (its key, which carries
its unit), how it reads (label, format, whether higher or lower is better) and how it is computed from
what a run measured (`RunMeasurements`). The same records drive the result's summary, the report's
comparison columns, the CSV/JSON exports and the terminal summary.

Adding a metric is one `register(Metric(...))` call: in this file, or in a plugin module named by
HARNESS_PLUGINS. No torch here: the report reads these definitions too.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.core.schema import COUNT, NON_NEGATIVE, NUMBER, TEXT, Items, Named, Number
from harness.metrics.peaks import mfu, peak_tflops


@dataclass
class RunMeasurements:
    """What a run knows at its end (or at its failure): the raw material of every metric."""

    budget_s: float | None = None
    global_batch_tokens: int | None = None
    params: int | None = None
    flops_per_token: int | None = None
    device_name: str | None = None
    steps: int = 0
    tokens: int = 0
    train_s: float = 0.0
    step_times_s: list[float] = field(default_factory=list)
    excluded_s: dict[str, float] = field(default_factory=dict)  # setup, fit, warmup, eval, checkpoint
    wall_s: float | None = None
    evals: list[dict[str, Any]] = field(default_factory=list)
    last_loss: float | None = None
    floor_loss: float | None = None
    targets: tuple[float, ...] = ()
    energy_j: dict[str, float] = field(default_factory=dict)  # per part: "gpu" (NVML), "host" (RAPL)
    data_wait_s: float | None = None
    data_tokens_per_s: float | None = None
    train_tokens_available: int | None = None
    compiles_in_training: int | None = None
    memory: dict[str, float | None] = field(default_factory=dict)  # peaks measured by the harness
    strategy_memory: dict[str, Any] = field(default_factory=dict)  # the strategy's own memory facts
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Metric:
    key: str  # carries its unit: tokens_per_s, peak_reserved_gib, joules_per_token
    label: str  # column header and terminal label
    compute: Callable[[RunMeasurements], Any]
    fmt: str = ".4g"
    better: str | None = None  # "high", "low", or None (no best mark)
    table: bool = False  # a column of the comparison table (and of the exports)
    ratio: bool = True  # shown as a ratio to the baseline in the table
    terminal: str | None = None  # the line of the terminal summary it is printed on
    kind: type = float  # float, int, str, or dict (a figure per name, e.g. per target loss)
    complete: bool = False  # the best mark only when every compared run has the figure
    # What a reader accepts for it (`harness.core.schema`); None: by its kind, a number never below 0
    spec: Any = None

    def figure_spec(self) -> Any:
        return self.spec or {int: COUNT, str: TEXT, dict: Named(NON_NEGATIVE)}.get(self.kind, NON_NEGATIVE)


METRICS: dict[str, Metric] = {}

# The lines of the terminal summary, in order.
TERMINAL_LINES = ("run", "speed", "loss", "memory", "energy", "outside the budget")


def register(metric: Metric) -> Metric:
    if metric.key in METRICS:
        raise ValueError(f"metric {metric.key!r} is registered twice")
    if metric.better not in (None, "high", "low"):
        raise ValueError(f"metric {metric.key!r}: better must be 'high', 'low' or None")
    METRICS[metric.key] = metric
    return metric


def compute_summary(measured: RunMeasurements) -> dict[str, Any]:
    """Every registered metric computed from the measurements; one that cannot be computed is None."""
    return {key: metric.compute(measured) for key, metric in METRICS.items()}


def table_metrics() -> list[Metric]:
    return [m for m in METRICS.values() if m.table]


# ---- helpers -------------------------------------------------------------------------------------------


def steady_median(values: list[float], skip_frac: float = 0.1, min_skip: int = 1) -> float | None:
    """Median after dropping the first steps (warm caches, allocator growth); None with no steps left."""
    skip = max(min_skip, int(len(values) * skip_frac)) if len(values) > min_skip else 0
    steady = values[skip:]
    return statistics.median(steady) if steady else None


def _ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den else None


def _steady_tokens_per_s(f: RunMeasurements) -> float | None:
    if not f.global_batch_tokens:
        return None
    return steady_median([f.global_batch_tokens / t for t in f.step_times_s if t > 0])


def _per_token(f: RunMeasurements, part: str) -> float | None:
    return _ratio(f.energy_j.get(part), f.tokens)


def _total_per_token(f: RunMeasurements) -> float | None:
    """GPU and host together, only where both were read (never a GPU figure passed off as the total)."""
    if "gpu" not in f.energy_j or "host" not in f.energy_j:
        return None
    return _ratio(f.energy_j["gpu"] + f.energy_j["host"], f.tokens)


def _peak(f: RunMeasurements) -> tuple[float | None, str | None]:
    return peak_tflops(f.device_name or "") if f.device_name else (None, None)


def _last_eval(f: RunMeasurements, key: str) -> float | None:
    return f.evals[-1].get(key) if f.evals else None


def _excluded(f: RunMeasurements, what: str) -> float | None:
    """Seconds spent on `what` outside the budget; eval and checkpoints are 0 in a run that trained."""
    if what in f.excluded_s:
        return f.excluded_s[what]
    return 0.0 if what in ("eval", "checkpoint") and f.steps else None


def crossing(evals: list[dict[str, Any]], target: float) -> tuple[float | None, list[float] | None]:
    """When validation loss first reached `target`: interpolated linearly in training time between the two
    evaluations that bracket the crossing, and that bracket. (None, None) if it never did."""
    before = None
    for e in evals:
        if e["val_loss"] <= target:
            if before is None:  # already there at the first evaluation
                return e["train_s"], [e["train_s"], e["train_s"]]
            (v0, t0), (v1, t1) = (before["val_loss"], before["train_s"]), (e["val_loss"], e["train_s"])
            return t0 + (v0 - target) / (v0 - v1) * (t1 - t0), [t0, t1]
        before = e
    return None, None


def _targets(f: RunMeasurements, part: int) -> dict[str, Any]:
    return {f"{target:g}": crossing(f.evals, target)[part] for target in f.targets}


def _ppl(f: RunMeasurements) -> float | None:
    loss = _last_eval(f, "val_loss")
    return math.exp(loss) if loss is not None and loss < 700 else None


def _mfu(f: RunMeasurements) -> float | None:
    if not f.flops_per_token:  # not known (a run that never resolved its model): no MFU, never 0%
        return None
    return mfu(f.flops_per_token, _steady_tokens_per_s(f), _peak(f)[0])


# ---- the built-in metrics, in the order of the table and the terminal summary ---------------------------

T, LOW, HIGH = True, "low", "high"
RUN, SPEED, MEM, LOSS, OUT = "run", "speed", "memory", "loss", "outside the budget"
SHARE = Number(low=0, high=1)  # a share of the whole (MFU above 1 is beyond the device's peak)
M = Metric


def _peak_column(key: str, label: str) -> Metric:
    return M(key, label, lambda f: f.memory.get(key), ".2f", LOW, T, terminal=MEM)


def _held(key: str, label: str) -> Metric:
    """What the strategy holds, each kind measured on its own tensors (moments, masters, buffers)."""
    return M(key, label, lambda f: f.strategy_memory.get(key), ".2f", terminal=MEM)


def _outside(what: str, label: str) -> Metric:
    return M(f"{what}_s", label, lambda f: _excluded(f, what), ".1f", terminal=OUT)


_WAIT = M("data_wait_share", "data wait", lambda f: _ratio(f.data_wait_s, f.train_s), ".2%", terminal=SPEED,
          spec=SHARE)  # fmt: skip
# may sit a little below 0 (an evaluation's sampling noise); how far is `plausible`'s to judge
_GAP = M("gap_to_floor", "gap to floor", lambda f: _last_eval(f, "gap_to_floor"), ".4f", LOW, T, False, LOSS,
         spec=NUMBER)  # fmt: skip
_BRACKET = M("time_to_target_bracket_s", "between evaluations at (s)", lambda f: _targets(f, 1), "",
             kind=dict, spec=Named(Items(NON_NEGATIVE)))  # fmt: skip

BUILTIN = (
    M("steps", "steps", lambda f: f.steps, ",d", terminal=RUN, kind=int),
    M("tokens", "tokens", lambda f: f.tokens, ",d", terminal=RUN, kind=int),
    M("train_s", "training clock s", lambda f: f.train_s, ".1f", terminal=RUN),
    M("budget_s", "budget s", lambda f: f.budget_s, ".0f", terminal=RUN),
    M("params", "parameters", lambda f: f.params, ",d", kind=int),
    M("flops_per_token", "FLOPs/token", lambda f: f.flops_per_token, ",d", kind=int),
    # training tokens / training-clock seconds: every timed step, the first ones included ("overall")
    M(
        "tokens_per_s",
        "overall tokens/s",
        lambda f: _ratio(f.tokens, f.train_s),
        ",.0f",
        HIGH,
        T,
        True,
        SPEED,
    ),
    # the median per-step throughput after the first 10% of steps: what MFU is computed from
    M("steady_tokens_per_s", "steady tokens/s", _steady_tokens_per_s, ",.0f", HIGH, T, terminal=SPEED),
    M("timed_steps", "timed steps", lambda f: len(f.step_times_s), ",d", kind=int),  # of every session
    # model FLOPs (6N + attention, no recomputation) x steady tokens/s / the device's peak bf16 FLOP/s
    M("mfu", "MFU", _mfu, ".1%", HIGH, T, terminal=SPEED, spec=SHARE),
    M("peak_tflops", "peak TFLOP/s", lambda f: _peak(f)[0], "g", terminal=SPEED),
    M("peak_tflops_source", "peak from", lambda f: _peak(f)[1], "", kind=str),
    # the share of the training clock the loop spent waiting for its next batch
    _WAIT,
    M("micro_batch", "micro-batch", lambda f: f.settings.get("micro_batch"), ".0f", table=T, ratio=False),
    _peak_column("peak_allocated_gib", "GPU allocated GiB"),
    _peak_column("peak_reserved_gib", "GPU reserved GiB"),
    _peak_column("peak_nvml_used_gib", "GPU NVML GiB"),
    _peak_column("peak_host_rss_gib", "host RAM GiB"),  # during training; the lifetime peak is below
    M(
        "lifetime_host_rss_gib",
        "host RAM incl. setup GiB",
        lambda f: f.memory.get("lifetime_host_rss_gib"),
        ".2f",
    ),
    _held("pinned_host_gib", "pinned host GiB"),
    _held("optimizer_state_gib", "optimizer moments GiB"),
    _held("master_weights_gib", "master weights GiB"),
    _held("grad_buffers_gib", "gradient buffers GiB"),
    # Energy over the training clock, per part. GPU-only figures get no best mark: a strategy that moves
    # work to the CPU would look cheaper by them. The total is marked only when every run has both parts.
    M("energy_j", "GPU energy J", lambda f: f.energy_j.get("gpu"), ",.0f", terminal="energy"),
    M("host_energy_j", "host energy J", lambda f: f.energy_j.get("host"), ",.0f", terminal="energy"),
    M("joules_per_token", "GPU J/token", lambda f: _per_token(f, "gpu"), ".3g", None, T, terminal="energy"),
    M("host_joules_per_token", "host J/token", lambda f: _per_token(f, "host"), ".3g", None, T),
    M(
        "total_joules_per_token",
        "GPU+host J/token",
        _total_per_token,
        ".3g",
        LOW,
        T,
        True,
        "energy",
        complete=True,
    ),
    M("final_train_loss", "train loss", lambda f: f.last_loss, ".4f"),
    M("final_val_loss", "val loss", lambda f: _last_eval(f, "val_loss"), ".4f", LOW, T, terminal=LOSS),
    M("val_ppl", "val perplexity", _ppl, ",.2f", LOW, T, terminal=LOSS),
    M("floor_loss", "floor", lambda f: f.floor_loss, ".4f", terminal=LOSS),
    _GAP,
    # interpolated between the two evaluations that bracket the crossing; the bracket beside it
    M("time_to_target_s", "time to loss {target} (s)", lambda f: _targets(f, 0), ".1f", LOW, T, kind=dict),
    _BRACKET,
    M("epochs", "epochs", lambda f: _ratio(f.tokens, f.train_tokens_available), ".2f"),  # of a real corpus
    _outside("setup", "setup"),
    _outside("fit", "fit"),
    _outside("warmup", "warm-up"),
    _outside("eval", "eval"),
    _outside("checkpoint", "checkpoints"),
    M("wall_s", "wall s", lambda f: f.wall_s, ".1f"),
    M("data_wait_s", "data wait s", lambda f: f.data_wait_s, ".2f"),
    M("data_tokens_per_s", "data tokens/s", lambda f: f.data_tokens_per_s, ",.0f"),
    M("compiles_in_training", "compiles in training", lambda f: f.compiles_in_training, "d", kind=int),
)

for _metric in BUILTIN:
    register(_metric)
