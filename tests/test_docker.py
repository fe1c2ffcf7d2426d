"""The image, checked without a Docker engine: lint, the lock it installs from, and its default command
run as documented (on the CPU, with the tiny preset)."""

import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib

import pytest

from harness.report.load import load_runs
from tests.conftest import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def env_defaults() -> dict[str, str]:
    env = {}
    for word, rest in instructions():
        if word == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def test_hadolint_finds_nothing_above_info():
    hadolint = shutil.which("hadolint") or str(ROOT / ".venv" / "bin" / "hadolint")
    proc = subprocess.run(
        [hadolint, "--failure-threshold", "warning", "Dockerfile"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warning" not in proc.stdout and "error" not in proc.stdout


def test_image_basics():
    (base,) = [rest for word, rest in instructions() if word == "FROM"]
    assert re.fullmatch(
        r"nvidia/cuda:\d+\.\d+\.\d+-[\w-]*devel-ubuntu\d+\.\d+", base
    )  # pinned, a devel image
    users = [rest for word, rest in instructions() if word == "USER"]
    assert users and not users[-1].startswith(("root", "0"))
    assert ("VOLUME", '["/app/reports"]') in instructions()
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", "reports"} <= set(ignored)
    for word, rest in instructions():
        if word == "COPY":
            for source in shlex.split(rest)[:-1]:
                assert (ROOT / source).exists(), source


def pinned(requirement: str) -> tuple[str, str]:
    name, _, version = requirement.partition("==")
    return name.lower().replace("_", "-"), version


def test_the_lock_pins_what_pyproject_asks_for():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(pinned(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"])
    lock = (ROOT / "requirements.lock").read_text()
    locked = dict(pinned(m) for m in re.findall(r"^([A-Za-z0-9_.-]+==[^\s\\]+)", lock, flags=re.M))
    torch_version = wanted.pop("torch")
    for name, version in wanted.items():
        assert locked.get(name) == version, f"{name}: pyproject {version}, lock {locked.get(name)}"
    # Every locked requirement carries a hash, and torch is pinned by version in the three places.
    for block in re.split(r"\n(?=[A-Za-z])", lock.split("\n\n", 1)[1]):
        if "==" in block.split("\n")[0]:
            assert "--hash=sha256:" in block, block.split("\n")[0]
    assert f"ARG TORCH_VERSION={torch_version}" in DOCKERFILE
    assert f"TORCH_VERSION := {torch_version}" in (ROOT / "Makefile").read_text()


def test_the_deepspeed_rebuild_step_extracts_a_hashed_requirement(tmp_path):
    (step,) = [rest for word, rest in instructions() if word == "RUN" and "DS_BUILD_CPU_ADAM" in rest]
    extract = step.split("&&")[0].strip()
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", extract.replace("/tmp/", f"{tmp_path}/")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    lines = (tmp_path / "deepspeed.txt").read_text().splitlines()
    assert re.fullmatch(r"deepspeed==0\.19\.8 \\", lines[0])
    assert re.fullmatch(r"\s+--hash=sha256:[0-9a-f]{64}", lines[1])


def test_default_command_maps_the_documented_variables_onto_the_cli(tmp_path):
    (cmd,) = [json.loads(rest) for word, rest in instructions() if word == "CMD"]
    assert cmd[:2] == ["sh", "-c"] and cmd[2].startswith("exec harness sweep")
    env = env_defaults()
    # No list of its own: an empty STRATEGIES passes no --strategies, and the registry's default set runs.
    assert env["STRATEGIES"] == "" and '${STRATEGIES:+--strategies "$STRATEGIES"}' in cmd[2]
    assert env["PRESET"] == "gpt2-124m"
    assert env["BUDGET"] == "24h" and env["DATA"] == "synthetic" and env["REPEATS"] == "1"
    harness_bin = shutil.which("harness") or str(ROOT / ".venv" / "bin" / "harness")
    if not os.path.exists(harness_bin):
        pytest.skip("the harness console script is not installed")
    overrides = {
        "STRATEGIES": "amp,act_ckpt",
        "PRESET": "tiny",
        "BUDGET": "2s",
        "REPEATS": "2",
        "HARNESS_ARGS": "--device cpu --quiet",
    }
    run_env = {
        **os.environ,
        **env,
        **overrides,
        "HARNESS_CACHE_DIR": str(tmp_path / "cache"),
        "PATH": f"{os.path.dirname(harness_bin)}{os.pathsep}{os.environ['PATH']}",
    }
    proc = subprocess.run(cmd, cwd=tmp_path, env=run_env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    runs, _ = load_runs(tmp_path / "reports" / "runs")
    assert sorted(r.strategy for r in runs) == ["act_ckpt", "act_ckpt", "amp", "amp"]
    assert all(r.result.recipe["preset"] == "tiny" and r.result.recipe["budget_s"] == 2 for r in runs)
    assert all(r.result.status == "ok" for r in runs)
    assert (tmp_path / "reports" / "index.html").exists()
