"""First use: nothing a run does not need is built before it, and what a run builds at its first use is
said before it starts (DeepSpeed's ops: a minute, 3 on two busy cores)."""

import re
import shutil

from harness.engine.events import EventPipe
from strategies.cpu_adam_op import build_note, check_cpu_adam, check_shm_comm, extensions_root
from tests.conftest import ROOT, tiny_config


def test_the_build_is_announced_only_where_the_ops_are_not_built_yet(monkeypatch, tmp_path):
    assert check_cpu_adam(cuda=False).ok and check_shm_comm().ok  # this environment's ops, built
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "empty"))
    assert "building DeepSpeed's ops" in build_note(cuda=False)
    assert "building DeepSpeed's ops" in build_note(cuda=True)
    built = tmp_path / "built"
    shutil.copytree(_own_root(monkeypatch), built, symlinks=True)
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(built))
    assert build_note(cuda=False) is None
    shutil.rmtree(built / "deepspeed_shm_comm")  # the CPU backend's op: needed on the CPU only
    assert build_note(cuda=True) is None and build_note(cuda=False) is not None


def _own_root(monkeypatch):
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR", raising=False)
    return extensions_root()


class Recorded(EventPipe):
    def __init__(self) -> None:
        super().__init__(fd=None)
        self.events = []

    def emit(self, event, **fields):
        self.events.append({"event": event, **fields})


def test_a_run_says_what_its_parts_build_at_first_use_before_its_setup(monkeypatch, tmp_path):
    from harness.engine.trainer import Trainer
    from strategies.amp import AmpExecutor

    note = "building a library's op for this environment (once)"
    monkeypatch.setattr(AmpExecutor, "first_use", classmethod(lambda cls: note))
    events = Recorded()
    result = Trainer(tiny_config(budget="60s", max_steps=1), tmp_path, events).run()
    assert result.status == "ok", result.error
    phases = [(e["phase"], e.get("detail")) for e in events.events if e["event"] == "phase"]
    assert phases[0] == ("setup", note)


def test_setup_installs_only_and_the_suite_builds_the_ops_first():
    makefile = (ROOT / "Makefile").read_text()
    installed = re.search(r"^\$\(VENV\)/\.installed:.*?(?=^\S)", makefile, re.S | re.M).group(0)
    assert "harness env" not in installed  # the first `make bench` builds nothing amp does not use
    assert re.search(r"^test: setup \$\(VENV\)/\.ops$", makefile, re.M)
    ops = re.search(r"^\$\(VENV\)/\.ops:.*?(?=^\S)", makefile, re.S | re.M).group(0)
    assert "harness env" in ops
