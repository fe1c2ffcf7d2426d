"""DeepSpeed's CPU-Adam op: whether it loads (prebuilt, or JIT-built by torch's extension builder), and the
build batons an interrupted build leaves behind.

torch serializes JIT builds with a baton, `<build dir>/lock` (torch/utils/file_baton.py: `try_acquire`
creates it with O_EXCL and keeps its descriptor open until `release` deletes it; cpp_extension.py:2345-2400
takes it on every load, even when nothing needs building). A process killed while it holds the baton
leaves the file, and every later load waits for it forever. Because a live holder keeps the file open, a
baton that no process has open is known to be left over: it is removed, with a line saying so. A baton a
live process holds is a build in progress: it is waited for, with a progress line, up to a time limit.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from harness.core.checks import Check
from harness.core.errors import UserError

log = logging.getLogger("harness.cpu_adam")

# A CPU-Adam build takes about a minute (a few on two cores): wait this long for one in progress.
BUILD_WAIT_S = 900.0
PROGRESS_EVERY_S = 10.0


def extensions_root() -> Path:
    """Where torch builds and keeps the ops: TORCH_EXTENSIONS_DIR if set, else one folder per Python
    environment under torch's default root (see `own_extensions_dir`)."""
    own_extensions_dir()
    return Path(os.environ["TORCH_EXTENSIONS_DIR"])


def own_extensions_dir() -> None:
    """torch keys its op cache by Python and CUDA version only (`py311_cpu`), not by the environment, and
    the build files it writes name the environment's own paths: two environments on one machine (two
    clones, a venv and the image) then rebuild the op at every switch, a minute each. Unless the user
    chose a folder, each environment gets its own, named after its prefix."""
    if os.environ.get("TORCH_EXTENSIONS_DIR"):
        return
    import hashlib
    import sys

    from torch.utils.cpp_extension import get_default_build_root

    tag = hashlib.sha256(sys.prefix.encode()).hexdigest()[:12]
    os.environ["TORCH_EXTENSIONS_DIR"] = str(Path(get_default_build_root()) / f"env-{tag}")


def batons(op: str = "cpu_adam", root: Path | None = None) -> list[Path]:
    """The op's baton, if there is one. TORCH_EXTENSIONS_DIR is always set here (`own_extensions_dir`), and
    then torch builds each op right under it, with no per-Python subfolder (cpp_extension.py:2800-2812)."""
    baton = (extensions_root() if root is None else root) / op / "lock"
    return [baton] if baton.exists() else []


def baton_holders(baton: Path, proc: Path = Path("/proc")) -> list[int] | None:
    """The processes that have `baton` open; None where /proc cannot tell (not Linux)."""
    if not (proc / "self" / "fd").is_dir():
        return None
    target = os.path.realpath(baton)
    holders = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if any(_points_to(fd, target) for fd in (entry / "fd").iterdir()):
                holders.append(int(entry.name))
        except OSError:  # ended meanwhile, or another user's (whose builds use their own cache)
            continue
    return holders


def _points_to(fd: Path, target: str) -> bool:
    try:
        return os.readlink(fd) == target
    except OSError:
        return False


def heal_build_batons(
    op: str = "cpu_adam",
    root: Path | None = None,
    wait_s: float = BUILD_WAIT_S,
    say: Callable[[str], None] = log.warning,
) -> None:
    """Before loading the op: remove every baton no process holds (left by a killed build), and wait for
    one a live build holds; UserError (one line) if that build outlasts `wait_s`."""
    for baton in batons(op, root):
        started = last_said = time.monotonic()
        while baton.exists():
            holders = baton_holders(baton)
            if holders is None:
                return  # nothing to tell by: torch waits as it always has
            if not holders:
                baton.unlink(missing_ok=True)
                say(f"removed {baton}: an interrupted build of DeepSpeed's {op} op left it, unheld")
                break
            waited = time.monotonic() - started
            if waited > wait_s:
                raise UserError(
                    f"process {holders[0]} has been building DeepSpeed's {op} op for over {wait_s:g}s "
                    f"({baton}): let it finish or stop it, then run again"
                )
            if time.monotonic() - last_said >= PROGRESS_EVERY_S:
                say(
                    f"waiting for process {holders[0]}, which is building DeepSpeed's {op} op ({waited:.0f}s)"
                )
                last_said = time.monotonic()
            time.sleep(0.2)


def needs_build(op: str, prebuilt_module: str | None = None) -> bool:
    """Whether loading `op` would JIT-build it now: it is neither prebuilt (as in the image) nor in this
    environment's build cache (torch keeps `<root>/<op>/<op>.so`, cpp_extension.py's `_jit_compile`)."""
    if prebuilt_module is not None:
        try:
            if importlib.util.find_spec(prebuilt_module) is not None:
                return False
        except ImportError:  # its library is missing: nothing will build it either
            return False
    return not (extensions_root() / op / f"{op}.so").exists()


def build_note(cuda: bool) -> str | None:
    """What a zero_offload run says before its setup when DeepSpeed's ops will JIT-build at their first
    load: CPU-Adam, and on the CPU the communication op its backend builds at `init_distributed`."""
    ops = {"cpu_adam": "deepspeed.ops.adam.cpu_adam_op"} | ({} if cuda else {"deepspeed_shm_comm": None})
    if any(needs_build(op, prebuilt) for op, prebuilt in ops.items()):
        return "building DeepSpeed's ops for this environment (once: a minute, 3 on 2 busy cores)"
    return None


def check_cpu_adam(cuda: bool) -> Check:
    """DeepSpeed's CPU-Adam op: prebuilt (as in the image), or built now by JIT (slow the first time)."""
    name = "deepspeed cpu_adam op"
    os.environ.setdefault("DS_ACCELERATOR", "cuda" if cuda else "cpu")
    try:
        importlib.import_module("deepspeed.ops.adam.cpu_adam_op")
        return Check(name, True, "prebuilt")
    except ImportError:
        pass
    try:
        from deepspeed.ops.op_builder import CPUAdamBuilder

        return _load(name, CPUAdamBuilder())
    except Exception as exc:
        return Check(name, False, f"does not load: {type(exc).__name__}: {exc}"[:300])


def check_shm_comm() -> Check:
    """DeepSpeed's CPU backend: its shared-memory communication op, JIT-built at the first CPU run's
    `init_distributed` (deepspeed/comm/torch.py, `build_shm_op`) unless built here first."""
    name = "deepspeed shm_comm op (CPU backend)"
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    try:
        from deepspeed.accelerator import get_accelerator

        builder = get_accelerator().create_op_builder("ShareMemCommBuilder")
        if builder is None:
            return Check(name, True, "not used by this accelerator")
        return _load(name, builder)
    except Exception as exc:
        return Check(name, False, f"does not load: {type(exc).__name__}: {exc}"[:300])


def _load(name: str, builder) -> Check:
    """Load a DeepSpeed op builder's op in this environment's folder, past any baton a killed build left
    (`heal_build_batons` finds the folder through `extensions_root`); a live build outlasting its wait is
    a failed check, in its one line."""
    try:
        heal_build_batons(builder.NAME)
    except UserError as exc:
        return Check(name, False, str(exc))
    t0 = time.perf_counter()
    builder.load(verbose=False)
    return Check(name, True, f"JIT-built or loaded from its build cache in {time.perf_counter() - t0:.0f}s")
