"""The budgeted training loop. The harness owns WHAT is computed and WHEN: model and init, data order,
learning rate per step, the clock and the deadline, evaluation, metrics and checkpoints. The strategy
owns HOW one optimizer step executes."""

from __future__ import annotations

import copy
import logging
import math
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

import strategies
from harness import fit, identity, metrics, summary
from harness.checkpoint import CHECKPOINT_DIR, Checkpointer, TrainState
from harness.clock import TrainingClock
from harness.config import PRESETS, RunConfig, to_dict
from harness.data.prefetch import Prefetcher
from harness.errors import UserError
from harness.model import GPT
from harness.progress import EventSink
from harness.results import RunResult
from harness.runtime import compiled_graph_count, is_out_of_memory, synchronizer
from harness.schedule import lr_at
from strategies.base import OptimizerSettings, StrategyContext

log = logging.getLogger("harness.train")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Trainer:
    def __init__(self, cfg: RunConfig, run_dir: Path, sink: EventSink, *, resume: bool = False) -> None:
        self.cfg = cfg
        self.recipe = cfg.recipe
        self.run_dir = Path(run_dir)
        self.sink = sink
        self.resume = resume
        self.stop_requested = False
        self.spec = strategies.resolve(cfg.strategy)
        self.result = RunResult(
            run_id=cfg.run_id or self.run_dir.name,
            status="error",
            strategy=self.spec.info(),
            recipe=to_dict(self.recipe),
            recipe_fingerprint="",
            started_at=_now(),
        )
        self.device: torch.device | None = None
        self.strategy = self.model = self.prefetch = self.sampler = self.clock = None
        self._initial_model: GPT | None = None  # the seed's init, on the host: copied for every use
        self._last_step_s = 0.0  # the previous step's duration: predicts where the next step ends

    # ---- the run, end to end -----------------------------------------------------------------------

    def run(self) -> RunResult:
        self._session_start = time.perf_counter()
        self._wall_prior = 0.0  # wall seconds of earlier sessions (resume), up to their checkpoint
        self.checkpoint_failures: list[str] = []
        self.state = TrainState()
        try:
            self._run()
            self.result.status = "interrupted" if self.stop_requested else "ok"
            if self.stop_requested and self.checkpoint_failures:
                self.result.error = (
                    f"interrupted, but the last checkpoint failed: {self.checkpoint_failures[-1]}"
                )
        except fit.DoesNotFit as exc:
            self.result.status, self.result.error = "oom", str(exc)
            self.result.settings["fit_probes"] = exc.probes
        except Exception as exc:
            if is_out_of_memory(exc):
                self.result.status = "oom"
                self.result.error = f"out of memory: {str(exc).splitlines()[0][:300]}"
                self._record_memory()
            else:
                self.result.status = "error"
                self.result.error = f"{type(exc).__name__}: {exc}"
                if not isinstance(exc, UserError):
                    log.exception("run failed")
        finally:
            self.result.summary.wall_s = self._wall_prior + time.perf_counter() - self._session_start
            self.result.resumes = self.state.resumes
            self.result.finished_at = _now()
            self._teardown()
        return self.result

    def _run(self) -> None:
        cfg = self.cfg
        missing = self.spec.missing_libraries()
        if missing:
            raise UserError(
                f"strategy {self.spec.name} needs {', '.join(missing)}, which is not installed: "
                "run `make setup`"
            )
        setup0 = time.perf_counter()
        self.sink.emit("phase", phase="setup")
        resolved = identity.resolve_run(
            cfg,
            self.spec.runs_on_cpu,
            self.result,
            lambda text: self.sink.emit("phase", phase="data", detail=text),
        )
        device = self.device = resolved.device
        self.recipe = recipe = resolved.recipe
        self.data, self.val_tokens = resolved.data, resolved.val_tokens
        self.result.strategy = self.spec.info(recipe.precision)

        compiled = bool(recipe.compile and self.spec.executor.supports_compile)
        micro_batch, fit_s = self._choose_micro_batch(compiled)
        grad_accum = recipe.global_batch_seqs // micro_batch
        self.ctx = self._context(micro_batch, grad_accum, compiled)
        self.result.settings.update(
            device=str(device),
            precision=recipe.precision,
            compile=compiled,
            micro_batch=micro_batch,
            grad_accum=grad_accum,
            warmup_steps=cfg.warmup_steps,
            max_steps=cfg.max_steps,
        )
        self.sink.emit("started", result=self.result.to_dict())
        self.model = self._build_model(last_use=True)
        self.strategy = self.spec.build()
        self.strategy.setup(self.model, self.ctx)
        self.result.settings.update(self.strategy.setup_facts())
        self.checkpointer = Checkpointer(self.run_dir / CHECKPOINT_DIR, keep=cfg.keep_checkpoints)
        setup_s = time.perf_counter() - setup0 - fit_s
        warmup_s = self._warm_up()
        # Resume after warm-up: warm-up resets the optimizer, the checkpoint then restores it.
        if self.resume:
            self.state = self._restore()
        for what, seconds in (("setup", setup_s), ("fit", fit_s), ("warmup", warmup_s)):
            self.state.excluded_s[what] = self.state.excluded_s.get(what, 0.0) + seconds
        self._train(self.state)

    # ---- setup pieces ------------------------------------------------------------------------------

    def _context(self, micro_batch: int, grad_accum: int, compiled: bool) -> StrategyContext:
        r = self.recipe
        return StrategyContext(
            device=self.device,
            precision=r.precision,
            optimizer=OptimizerSettings((r.beta1, r.beta2), r.eps, r.weight_decay, r.grad_clip),
            micro_batch=micro_batch,
            grad_accum=grad_accum,
            compile=compiled,
        )

    def _build_model(self, *, last_use: bool = False) -> GPT:
        """The seed's initial model, in fp32 on the host, the strategy then places it. Built once on the
        host so that every strategy, device and session starts from bit-identical weights (CPU and CUDA
        generators differ), and so that a strategy that keeps only 16-bit weights on the GPU never
        needs room there for the fp32 copy."""
        if self._initial_model is None:
            torch.manual_seed(self.recipe.seed)
            self._initial_model = GPT(self.recipe.model)
        if last_use:
            model, self._initial_model = self._initial_model, None
            return model
        return copy.deepcopy(self._initial_model)

    def _choose_micro_batch(self, compiled: bool) -> tuple[int, float]:
        """(micro-batch, seconds spent fitting it): as asked, else fitted on CUDA, else the preset's."""
        t0 = time.perf_counter()
        if self.device.type == "cuda" and self.cfg.micro_batch is None:
            self.sink.emit("phase", phase="fit", detail="finding the largest micro-batch that fits")
        micro_batch, report = fit.micro_batch_for_run(
            self.cfg.micro_batch,
            self.device,
            self.recipe.global_batch_seqs,
            PRESETS[self.recipe.preset].micro_batch,
            self._probe_step,
            compiled=compiled,
            cap_bytes=None if self.cfg.gpu_memory_gib is None else int(self.cfg.gpu_memory_gib * 2**30),
        )
        if report is not None:
            self.result.settings.update(fit_probes=report.probes, fit_budget_gib=report.budget_gib)
        return micro_batch, time.perf_counter() - t0

    def _probe_step(self, micro_batch: int, compiled: bool) -> None:
        """One real step (two micro-batches, lr 0) of a fresh model at this micro-batch, then teardown.
        A compiled probe runs the same compiled program as the timed run."""
        model = self._build_model()
        strategy = self.spec.build()
        try:
            strategy.setup(model, self._context(micro_batch, 2, compiled=compiled))
            tokens = torch.from_numpy(
                self.data.warmup_batch(0, 2 * micro_batch, self.recipe.model.seq_len + 1)
            )
            strategy.train_step(self._micro_batches(tokens.long().to(self.device), micro_batch), 0.0)
            torch.cuda.synchronize(self.device)
        finally:
            strategy.teardown()
            del strategy, model
            if compiled:
                # Forget the probe's graphs: a later shape would otherwise be compiled as dynamic.
                torch._dynamo.reset()

    @staticmethod
    def _micro_batches(tokens: torch.Tensor, micro_batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        x, y = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()
        return list(zip(x.split(micro_batch), y.split(micro_batch), strict=True))

    def _warm_up(self) -> float:
        """Compile/JIT warm-up on a separate stream at lr 0, then the optimizer forgets it (clock off)."""
        if not self.cfg.warmup_steps:
            return 0.0
        self.sink.emit("phase", phase="warmup", detail=f"{self.cfg.warmup_steps} steps (not timed)")
        sync = synchronizer(self.device)
        t0 = time.perf_counter()
        length = self.recipe.model.seq_len + 1
        for i in range(self.cfg.warmup_steps):
            tokens = torch.from_numpy(self.data.warmup_batch(i, self.recipe.global_batch_seqs, length))
            step0 = time.perf_counter()
            self.strategy.train_step(
                self._micro_batches(tokens.long().to(self.device), self.ctx.micro_batch), 0.0
            )
            sync()
            self._last_step_s = time.perf_counter() - step0
        self.strategy.reset_optimizer_state()
        # Evaluation's own programs (no gradients; each batch shape) are compiled here, not inside an eval.
        batches = self._micro_batches(torch.from_numpy(self.val_tokens).long(), self.ctx.micro_batch)
        for x, y in {x.shape[0]: (x, y) for x, y in batches}.values():
            self.strategy.eval_loss(x.to(self.device), y.to(self.device))
        sync()
        return time.perf_counter() - t0

    # ---- the loop -----------------------------------------------------------------------------------

    def _train(self, state: TrainState) -> None:
        recipe, cfg = self.recipe, self.cfg
        budget = recipe.budget_s
        tokens_per_step = recipe.global_batch_tokens
        log_every = (
            cfg.log_interval_s if cfg.log_interval_s is not None else min(30.0, max(1.0, budget / 100))
        )
        ckpt_every = cfg.checkpoint_interval_s or max(60.0, budget / 48)
        eval_every = budget / recipe.eval_points
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self.sampler = metrics.ResourceSampler().start()
        clock = self.clock = TrainingClock(
            synchronizer(self.device), elapsed_s=state.train_s, energy_mj=self.sampler.energy_mj
        )
        clock.excluded_s.update(state.excluded_s)
        length = recipe.model.seq_len + 1
        self.prefetch = Prefetcher(
            lambda i: self.data.train_batch(i, recipe.global_batch_seqs, length),
            start=state.step,
            pin=self.device.type == "cuda",
        )
        self.step_times: list[float] = []
        self._pending: list[tuple] = []  # (loss tensor, lr, grad norm) of the steps since the last log row
        self._last_log = (state.train_s, state.tokens, time.perf_counter())
        last_ckpt = state.train_s
        self.sink.emit("phase", phase="train")
        graphs_before = compiled_graph_count()
        clock.start()
        while True:
            if clock.elapsed_s >= state.next_eval_s:
                self._evaluate(state)
                state.next_eval_s = (math.floor(clock.elapsed_s / eval_every) + 1) * eval_every
            if (
                self.stop_requested
                or clock.elapsed_s >= budget
                or (cfg.max_steps and state.step >= cfg.max_steps)
            ):
                break
            # The LR is read at this step's expected end: the last step before the deadline sits at the floor.
            # A step-budgeted run (max_steps, for parity checks) follows steps, so it is repeatable exactly.
            if cfg.max_steps:
                fraction = (state.step + 1) / cfg.max_steps
            else:
                fraction = (clock.elapsed_s + self._last_step_s) / budget
            lr = lr_at(
                fraction, peak=recipe.lr, warmup_frac=recipe.warmup_frac, min_ratio=recipe.min_lr_ratio
            )
            index, tokens = self.prefetch.next()
            if index != state.step:
                raise RuntimeError(f"data position {index} does not match step {state.step}")
            out = self.strategy.train_step(
                self._micro_batches(tokens.to(self.device, non_blocking=True), self.ctx.micro_batch), lr
            )
            self._last_step_s = clock.lap()
            self.step_times.append(self._last_step_s)
            state.step += 1
            state.tokens += tokens_per_step
            state.train_s = clock.elapsed_s
            self._pending.append((out.loss, lr, out.grad_norm))
            if state.train_s - self._last_log[0] >= log_every or state.train_s >= budget:
                self._log_train(state)
            if state.train_s - last_ckpt >= ckpt_every and state.train_s < budget:
                self._checkpoint(state)
                last_ckpt = state.train_s
        clock.stop()
        self.result.summary.compiles_in_training = compiled_graph_count() - graphs_before
        self._log_train(state)
        if self.stop_requested:
            if state.step:
                self._checkpoint(state)
        elif not state.evals or state.evals[-1]["step"] != state.step:
            self._evaluate(state)
        summary.training_figures(self.result, state, self.recipe, self.step_times, self.clock, self.prefetch)
        self._record_memory()

    def _log_train(self, state: TrainState) -> None:
        """One metrics row for the steps since the last: the only place losses leave the device."""
        if not self._pending:
            return
        losses = torch.stack([p[0] for p in self._pending]).float().tolist()
        _, lr, grad_norm = self._pending[-1]
        self._pending.clear()
        state.last_loss = losses[-1]
        train_s0, tokens0, wall0 = self._last_log
        interval = state.train_s - train_s0
        self.sink.metric(
            {
                "kind": "train",
                "step": state.step,
                "tokens": state.tokens,
                "train_s": state.train_s,
                "lr": lr,
                "loss": sum(losses) / len(losses),
                "last_loss": losses[-1],
                "steps": len(losses),
                "grad_norm": None if grad_norm is None else float(grad_norm),
                "tokens_per_s": (state.tokens - tokens0) / interval if interval > 0 else None,
                "step_s": self._last_step_s,
                "wall_per_train": (time.perf_counter() - wall0) / interval if interval > 0 else None,
            }
        )
        self._last_log = (state.train_s, state.tokens, time.perf_counter())

    def _evaluate(self, state: TrainState) -> None:
        self.sink.emit("phase", phase="eval")
        with self.clock.excluded("eval"):
            tokens = torch.from_numpy(self.val_tokens.astype(np.int64))
            total, count = torch.zeros((), device=self.device), 0
            for x, y in self._micro_batches(tokens.to(self.device), self.ctx.micro_batch):
                total += self.strategy.eval_loss(x, y) * x.shape[0]
                count += x.shape[0]
            val_loss = float(total / count)
        floor = self.result.summary.floor_loss
        row = {
            "kind": "eval",
            "step": state.step,
            "tokens": state.tokens,
            "train_s": state.train_s,
            "val_loss": val_loss,
            "gap_to_floor": None if floor is None else val_loss - floor,
        }
        state.evals.append(row)
        self.sink.metric(row)
        self.sink.emit("phase", phase="train")

    def _checkpoint(self, state: TrainState) -> None:
        """Save; a failed save (a full disk) is reported and training goes on: earlier checkpoints stay."""
        self._log_train(state)  # the metrics file then holds exactly the steps the checkpoint holds
        self.sink.emit("phase", phase="checkpoint")
        with self.clock.excluded("checkpoint"):
            state.excluded_s = dict(self.clock.excluded_s)
            state.metrics_rows = self.sink.metrics_rows
            state.wall_s = self._wall_prior + time.perf_counter() - self._session_start
            try:
                self.checkpointer.save(self.strategy, state)
            except OSError as exc:
                self._warn(f"checkpoint at step {state.step} not written ({exc}); the previous one stays")
                self.checkpoint_failures.append(str(exc))
        self.sink.emit("phase", phase="train")

    def _warn(self, text: str) -> None:
        log.warning(text)
        self.sink.emit("message", text=text)

    def _restore(self) -> TrainState:
        self.sink.emit("phase", phase="resume")
        state, path = self.checkpointer.load_latest(self.strategy, warn=self._warn)
        self._wall_prior = state.wall_s
        self.sink.keep_metrics_rows(state.metrics_rows)
        state.resumes.append(
            {"from_step": state.step, "train_s": state.train_s, "checkpoint": path.name, "at": _now()}
        )
        return state

    def _record_memory(self) -> None:
        summary.memory_figures(self.result, self.device, self.sampler, self.strategy)

    def _teardown(self) -> None:
        if self.prefetch is not None:
            self.prefetch.close()
        if self.sampler is not None:
            self.sampler.stop()
        if self.strategy is not None:
            try:
                self.strategy.teardown()
            except Exception:
                log.exception("strategy teardown failed")
        # Libraries hook into the model's parameters (DeepSpeed does): drop both, so memory can be freed.
        self.strategy = self.model = None
