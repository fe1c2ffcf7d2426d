"""The strategy registry: one line per plug-in. Names compose with `+` (e.g. `adam8bit+act_ckpt`)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.core.errors import UserError
from harness.core.recipe import BASELINE
from strategies.act_ckpt import ActivationCheckpointing
from strategies.act_offload import ActivationOffload
from strategies.adam8bit import Adam8bitExecutor
from strategies.amp import AmpExecutor
from strategies.ao_adam import AoAdam4bit, AoAdam8bit
from strategies.ao_cpu_offload import AoCpuOffloadExecutor
from strategies.base import Executor, ModelTransform, Plugin, Strategy, StrategyContext
from strategies.fp8 import Float8Training
from strategies.fsdp2_offload import Fsdp2OffloadExecutor
from strategies.fused_ce import FusedCrossEntropy
from strategies.library_logs import quiet_library_logs
from strategies.paged_adam8bit import PagedAdam8bitExecutor
from strategies.sel_ckpt import SelectiveCheckpointing
from strategies.zero_offload import ZeroOffloadExecutor, ZeroOffloadFp32Accum

quiet_library_logs()  # before any plug-in imports its library

# The order is the order transforms apply in (and are named in: `adam8bit+act_ckpt+fp8`).
REGISTRY: dict[str, type[Plugin]] = {
    "amp": AmpExecutor,
    "adam8bit": Adam8bitExecutor,
    "zero_offload": ZeroOffloadExecutor,
    "zero_offload_fp32acc": ZeroOffloadFp32Accum,
    "act_ckpt": ActivationCheckpointing,
    "ao_adam8bit": AoAdam8bit,
    "ao_adam4bit": AoAdam4bit,
    "paged_adam8bit": PagedAdam8bitExecutor,
    "ao_cpu_offload": AoCpuOffloadExecutor,
    "fsdp2_offload": Fsdp2OffloadExecutor,
    "sel_ckpt": SelectiveCheckpointing,
    "act_offload": ActivationOffload,
    "fp8": Float8Training,
    "fused_ce": FusedCrossEntropy,
}

__all__ = [
    "BASELINE",
    "REGISTRY",
    "Strategy",
    "StrategyContext",
    "StrategySpec",
    "default_sweep",
    "every_strategy",
    "resolve",
]


def register(plugin: type[Plugin]) -> type[Plugin]:
    """Add a plug-in (for plug-in modules named by HARNESS_PLUGINS; built-ins are the lines above)."""
    if plugin.name in REGISTRY:
        raise ValueError(f"strategy {plugin.name!r} is registered twice")
    REGISTRY[plugin.name] = plugin
    return plugin


def every_strategy(cuda: bool) -> list[str]:
    """Every registered part on its own (`--strategies all`): those that need CUDA only where it is."""
    return [name for name, p in REGISTRY.items() if cuda or p.runs_on_cpu]


def default_sweep() -> list[str]:
    """The strategies `harness sweep` runs when none are named: the mission's, never experimental ones."""
    return [name for name, p in REGISTRY.items() if p.default_sweep and not p.experimental]


@dataclass(frozen=True)
class StrategySpec:
    """A validated (possibly composed) strategy name, before anything is built."""

    name: str
    executor: type[Executor]
    transforms: tuple[type[ModelTransform], ...]

    @property
    def parts(self) -> tuple[type[Plugin], ...]:
        return (self.executor, *self.transforms)

    @property
    def description(self) -> str:
        return "; ".join(p.description for p in self.parts if p is not AmpExecutor or not self.transforms)

    @property
    def changes_math(self) -> str | None:
        return next((p.changes_math for p in self.parts if p.changes_math), None)

    def changes_math_at(self, precision: str) -> str | None:
        """The math change that holds at this precision, if any."""
        return next(
            (p.changes_math for p in self.parts if p.changes_math and precision in p.changes_math_in), None
        )

    def first_use(self) -> str:
        """What its parts prepare once at their first use (an op to build), said before setup; "" if none."""
        return "; ".join(filter(None, (p.first_use() for p in self.parts)))

    @property
    def needs_compile(self) -> bool:
        return any(p.needs_compile for p in self.parts)

    @property
    def runs_on_cpu(self) -> bool:
        return all(p.runs_on_cpu for p in self.parts)

    def missing_libraries(self) -> list[str]:
        return [m for p in self.parts for m in p.missing_libraries()]

    def install_hint(self) -> str:
        return next((p.install_hint for p in self.parts if p.missing_libraries()), "run `make setup`")

    def require_libraries(self) -> None:
        missing = self.missing_libraries()
        if missing:
            raise UserError(
                f"strategy {self.name} needs {', '.join(missing)}, which is not installed: "
                f"{self.install_hint()}"
            )

    def build(self) -> Strategy:
        return Strategy(self.name, self.executor(), [t() for t in self.transforms])

    def info(self, precision: str | None = None) -> dict:
        """What the result records about the strategy; the math change as it holds at `precision`."""
        return {
            "name": self.name,
            "parts": [p.name for p in self.parts],
            "description": self.description,
            "changes_math": self.changes_math if precision is None else self.changes_math_at(precision),
            "requires": [m for p in self.parts for m in p.requires],
            "notes": [p.report_note for p in self.parts if p.report_note],
            "experimental": [p.name for p in self.parts if p.experimental],
        }


def resolve(name: str) -> StrategySpec:
    """'adam8bit+act_ckpt' -> StrategySpec; UserError for unknown names and impossible combinations."""
    parts = [p.strip() for p in name.split("+")]
    unknown = [p for p in parts if p not in REGISTRY]
    if unknown or not parts:
        raise UserError(
            f"unknown strategy {unknown[0] if unknown else name!r}: choose from {', '.join(REGISTRY)}"
            " (combine with +, e.g. adam8bit+act_ckpt)"
        )
    if len(set(parts)) != len(parts):
        raise UserError(f"strategy {name!r} names a part twice")
    plugins = [REGISTRY[p] for p in parts]
    executors = [p for p in plugins if issubclass(p, Executor)]
    transforms = [p for p in plugins if issubclass(p, ModelTransform)]
    if len(executors) > 1:
        owners = " and ".join(f"{e.name} ({e.description})" for e in executors)
        raise UserError(
            f"cannot combine {'+'.join(e.name for e in executors)}: each owns the optimizer and the step — "
            f"{owners}. Pick one of them, optionally with act_ckpt"
        )
    executor = executors[0] if executors else AmpExecutor
    for a in plugins:
        for b in plugins:
            if a is not b and not composes(a, b):
                reason = a.refuses.get(b.name) or b.refuses.get(a.name) or "they do not compose"
                raise UserError(f"cannot combine {a.name} with {b.name}: {reason}")
    ordered = tuple(sorted(transforms, key=lambda t: list(REGISTRY).index(t.name)))
    canonical = "+".join(
        [executor.name] * (executor is not AmpExecutor or not ordered) + [t.name for t in ordered]
    )
    return StrategySpec(canonical, executor, ordered)


def composes(a, b) -> bool:
    """Whether two parts combine: a pair is declared by one of them only (see Plugin.composes_with)."""
    return b.name in a.composes_with or a.name in b.composes_with


def partners(name: str) -> list[str]:
    """Every part that `name` combines with (declared on either side), in registry order."""
    plugin = REGISTRY[name]
    return [
        other
        for other, p in REGISTRY.items()
        if other != name
        and composes(plugin, p)
        and not (issubclass(p, Executor) and issubclass(plugin, Executor))
    ]


def allowed_combinations() -> list[str]:
    """Every executor alone and with each compatible transform: what the contract test runs."""
    names = []
    for executor in (p for p in REGISTRY.values() if issubclass(p, Executor)):
        names.append(executor.name)
        for transform in (p for p in REGISTRY.values() if issubclass(p, ModelTransform)):
            if composes(executor, transform):
                names.append(resolve(f"{executor.name}+{transform.name}").name)
    return names
