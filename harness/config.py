"""Run configuration: the fixed recipe (identical across strategies), presets, budgets, strict overrides."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
import typing
from dataclasses import dataclass, field, fields, replace
from typing import Any

from harness.errors import UserError

DEFAULT_BUDGET = "24h"
DEFAULT_SEED = 1337
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
DEVICES = ("auto", "cuda", "cpu")


@dataclass(frozen=True)
class ModelConfig:
    """Shape of one member of the GPT family (GPT-2 style pre-LN decoder, tied embeddings)."""

    n_layer: int
    n_head: int
    d_model: int
    seq_len: int
    vocab_size: int

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) < 1:
                raise UserError(f"model {f.name} must be >= 1, got {getattr(self, f.name)}")
        if self.d_model % self.n_head:
            raise UserError(f"d_model={self.d_model} must be divisible by n_head={self.n_head}")


@dataclass(frozen=True)
class Recipe:
    """Everything that must be identical across strategies for a comparison to be fair."""

    preset: str
    model: ModelConfig
    budget_s: float
    global_batch_tokens: int
    lr: float
    eval_tokens: int
    data: str = "synthetic"
    tokenizer: str | None = None
    text_field: str = "text"
    val_fraction: float = 0.01  # documents held out for validation (real corpora)
    max_corpus_tokens: int | None = None  # tokenize at most this many training tokens (real corpora)
    seed: int = DEFAULT_SEED
    min_lr_ratio: float = 0.1
    warmup_frac: float = 0.02
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    precision: str = "auto"
    compile: bool | None = None
    eval_points: int = 10
    targets: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.budget_s <= 0:
            raise UserError(f"budget must be positive, got {self.budget_s}s")
        if self.precision not in PRECISIONS:
            raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.global_batch_tokens % self.model.seq_len:
            raise UserError(
                f"global_batch_tokens={self.global_batch_tokens} must be a multiple of "
                f"seq_len={self.model.seq_len}"
            )
        if self.eval_tokens < self.model.seq_len:
            raise UserError(f"eval_tokens={self.eval_tokens} must be at least seq_len={self.model.seq_len}")
        if not 0 <= self.warmup_frac < 1:
            raise UserError(f"warmup_frac must be in [0, 1), got {self.warmup_frac}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise UserError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.eval_points < 1:
            raise UserError(f"eval_points must be >= 1, got {self.eval_points}")
        if not 0 < self.val_fraction < 1:
            raise UserError(f"val_fraction must be in (0, 1), got {self.val_fraction}")

    @property
    def global_batch_seqs(self) -> int:
        return self.global_batch_tokens // self.model.seq_len

    @property
    def eval_seqs(self) -> int:
        return self.eval_tokens // self.model.seq_len


@dataclass(frozen=True)
class RunConfig:
    """One run: the recipe plus how this run executes it (strategy, device, micro-batch)."""

    recipe: Recipe
    strategy: str
    device: str = "auto"
    micro_batch: int | None = None  # None: fitted on CUDA, the preset's default elsewhere
    gpu_memory_gib: float | None = None  # cap on what the run may use on the GPU (emulates a smaller card)
    warmup_steps: int = 2  # compile/JIT warm-up steps, excluded from the clock and then undone
    max_steps: int | None = None  # a step-budgeted run (parity checks): the schedule follows steps
    log_interval_s: float | None = None  # None: derived from the budget
    checkpoint_interval_s: float | None = None  # None: derived from the budget
    keep_checkpoints: int = 2
    run_id: str = ""
    command: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise UserError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.micro_batch is not None and self.micro_batch < 1:
            raise UserError(f"micro_batch must be >= 1, got {self.micro_batch}")
        if self.gpu_memory_gib is not None and not (0 < self.gpu_memory_gib < 1e6):
            raise UserError(f"--gpu-memory-gib must be a positive number of GiB, got {self.gpu_memory_gib}")
        if self.warmup_steps < 0:
            raise UserError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.max_steps is not None and self.max_steps < 1:
            raise UserError(f"max_steps must be >= 1, got {self.max_steps}")


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    model: ModelConfig
    global_batch_tokens: int
    lr: float
    eval_tokens: int
    micro_batch: int  # used where no fitting happens (CPU) and no override is given
    extra: dict[str, Any] = field(default_factory=dict)


_GPT2_VOCAB = 50304  # GPT-2's 50257 padded to a multiple of 128, as nanoGPT and llm.c do
_HALF_MILLION = 524_288

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "tiny",
            "2 layers, d=64, seq 64: tests and CPU demos (seconds)",
            ModelConfig(2, 4, 64, 64, 512),
            4096,
            3e-3,
            8192,
            16,
        ),
        Preset(
            "gpt2-124m",
            "GPT-2 small, the reference recipe (llm.c / nanoGPT)",
            ModelConfig(12, 12, 768, 1024, _GPT2_VOCAB),
            _HALF_MILLION,
            6e-4,
            131_072,
            16,
        ),
        Preset(
            "gpt-350m",
            "GPT-2 medium shape: 24 layers, d=1024",
            ModelConfig(24, 16, 1024, 1024, _GPT2_VOCAB),
            _HALF_MILLION,
            3e-4,
            131_072,
            8,
        ),
        Preset(
            "gpt-1.3b",
            "GPT-3 XL shape: 24 layers, d=2048",
            ModelConfig(24, 16, 2048, 1024, _GPT2_VOCAB),
            _HALF_MILLION,
            2e-4,
            131_072,
            4,
        ),
        Preset(
            "gpt-2.7b",
            "GPT-3 2.7B shape: 32 layers, d=2560",
            ModelConfig(32, 32, 2560, 1024, _GPT2_VOCAB),
            _HALF_MILLION,
            1.6e-4,
            131_072,
            2,
        ),
        Preset(
            "gpt-6.7b",
            "GPT-3 6.7B shape: 32 layers, d=4096",
            ModelConfig(32, 32, 4096, 1024, _GPT2_VOCAB),
            _HALF_MILLION,
            1.2e-4,
            131_072,
            1,
        ),
    )
}

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """'30s', '10m', '2h', '24h', '1h30m' -> seconds."""
    cleaned = text.strip().lower()
    parts = _DURATION_PART.findall(cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise UserError(
            f"malformed budget {text!r}: use a number with a unit, e.g. 30s, 10m, 2h, 24h or 1h30m"
        )
    seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
    if seconds <= 0:
        raise UserError(f"budget {text!r} is zero: give a positive duration such as 30s")
    return seconds


def format_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{sec:02d}s" if hours else f"{minutes}m{sec:02d}s"


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


# ---- strict overrides (`--set key=value`) -------------------------------------------------------------

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
            value = float(raw)
            if not value.is_integer():
                raise ValueError(raw)
            return int(value)
        if kind is float:
            return float(raw)
        if kind is str:
            return raw
    except ValueError:
        raise UserError(f"override {key}={raw!r}: expected {getattr(kind, '__name__', kind)}") from None
    raise UserError(f"override {key}: unsupported type {kind}")


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
    **run_fields: Any,
) -> RunConfig:
    """Preset + budget + overrides -> a validated RunConfig. Raises UserError on any bad input."""
    p = get_preset(preset)
    overrides = dict(overrides or {})
    model_kw = {
        k: _coerce(k, v, _field_type(ModelConfig, k)) for k, v in overrides.items() if k in _MODEL_KEYS
    }
    recipe_kw = {k: _coerce(k, v, _field_type(Recipe, k)) for k, v in overrides.items() if k in _RECIPE_KEYS}
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


# ---- serialization ----------------------------------------------------------------------------------


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def _from_value(kind: Any, value: Any) -> Any:
    if dataclasses.is_dataclass(kind):
        return from_dict(kind, value)
    if typing.get_origin(kind) is tuple:
        return tuple(value)
    return value


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a (nested) config dataclass, rejecting unknown or missing keys."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
    return cls(**{k: _from_value(hints[k], v) for k, v in data.items()})


def fingerprint(payload: dict[str, Any]) -> str:
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
