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
    stages = [rest for word, rest in instructions() if word == "FROM"]
    base = stages[-1]
    # Pinned to a 13.0.x devel image (nvcc and g++ for kernels built at first use); no -cudnn variant,
    # because torch brings its own cuDNN.
    assert re.fullmatch(r"nvidia/cuda:13\.0\.\d+-devel-ubuntu22\.04", base), base
    assert "cudnn" not in base
    assert re.fullmatch(r"ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+ AS uv", stages[0])  # pinned uv
    users = [rest for word, rest in instructions() if word == "USER"]
    assert users and not users[-1].startswith(("root", "0"))
    assert ("VOLUME", '["/app/reports", "/app/cache"]') in instructions()
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", "reports", "tests"} <= set(ignored)
    for word, rest in instructions():
        if word == "COPY" and not rest.startswith("--from"):
            for source in shlex.split(rest)[:-1]:
                assert (ROOT / source).exists(), source


def test_the_images_python_is_a_release_not_a_candidate():
    runs = " ".join(rest for word, rest in instructions() if word == "RUN")
    # Ubuntu 22.04's python3.11 package is 3.11.0rc1: the image takes uv's standalone build of the newest
    # 3.11 release instead, and no Python from apt at all.
    assert "uv python install 3.11 " in runs and "uv venv --python 3.11" in runs
    assert not re.search(r"python3\.\d+=", runs) and "deadsnakes" not in runs
    assert "rc" not in re.search(r"uv python install (\S+)", runs).group(1)


def test_the_cpu_adam_op_is_never_built_for_the_build_host():
    # DeepSpeed compiles its CPU-Adam op with -march=native of whichever machine builds it. The image does
    # not prebuild it: it is built at first use on the machine that runs it, into the cache volume.
    commands = " ".join(rest for _, rest in instructions())
    assert "DS_BUILD_CPU_ADAM" not in commands and "DS_BUILD_OPS" not in commands and "march" not in commands
    env = env_defaults()
    assert env["TORCH_EXTENSIONS_DIR"].startswith(env["HARNESS_CACHE_DIR"] + "/")
    assert '"/app/cache"' in dict(instructions())["VOLUME"]


def pinned(requirement: str) -> tuple[str, str]:
    name, _, version = requirement.partition("==")
    return name.lower().replace("_", "-"), version


def locked(path) -> dict[str, str]:
    text = (ROOT / path).read_text()
    for block in re.split(r"\n(?=[A-Za-z])", text):  # every requirement carries its hashes
        if "==" in block.split("\n")[0] and not block.startswith("#"):
            assert "--hash=sha256:" in block, f"{path}: {block.splitlines()[0]}"
    return dict(pinned(m) for m in re.findall(r"^([A-Za-z0-9_.-]+==[^\s\\]+)", text, flags=re.M))


def test_the_locks_pin_what_pyproject_asks_for():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = dict(pinned(r) for r in project["dependencies"])
    dev = dict(pinned(r) for r in project["optional-dependencies"]["dev"])
    local, image = locked("requirements.lock"), locked("requirements-image.lock")
    torch_version = runtime.pop("torch")
    for name, version in {**runtime, **dev}.items():
        assert local.get(name) == version, f"{name}: pyproject {version}, lock {local.get(name)}"
    # The image: the same runtime packages at the same versions, torch's CUDA build with triton and the
    # nvidia libraries, all hashed; no development tools.
    for name, version in runtime.items():
        assert image.get(name) == version, f"{name}: pyproject {version}, image lock {image.get(name)}"
    assert image["torch"] == torch_version and "triton" in image
    assert any(name.startswith("nvidia-cudnn") for name in image) and "nvidia-nccl-cu13" in image
    assert not set(dev) & set(image)
    gpu_only = dict(pinned(r) for r in project["optional-dependencies"]["gpu"])  # Triton kernels
    for name, version in gpu_only.items():
        assert image.get(name) == version and name not in local, name
    shared = set(local) & set(image)
    assert {name for name in shared if local[name] != image[name]} == set()
    assert f"TORCH_VERSION := {torch_version}" in (ROOT / "Makefile").read_text()


@pytest.mark.slow
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
        "HARNESS_ARGS": "--device cpu --quiet --max-steps 2",  # what the mapping needs, not a budget
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


def test_the_image_carries_the_published_runs_the_answer_calibrates_on():
    """`harness answer` predicts speeds from measured runs: the image's working folder has docs/results."""
    copies = [
        shlex.split(rest) for word, rest in instructions() if word == "COPY" and not rest.startswith("--from")
    ]
    assert ["docs/results", "./docs/results"] in copies
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "!docs/results" in ignored and ignored.index("!docs/results") > ignored.index("docs")
    assert any((ROOT / "docs/results").glob("*/runs/*/result.json"))
    workdir = [rest for word, rest in instructions() if word == "WORKDIR"][-1]
    assert workdir == "/app"  # where the answer looks for docs/results in the image
