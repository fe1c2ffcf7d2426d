"""The two reference tools beside the harness: the bare loop (the floor of what `amp` costs) must train
exactly what `amp` trains, and the step profiler must attribute a step's time honestly."""

import contextlib
import json
import os
import re
import subprocess
import sys
import tarfile

import pytest
import torch

from benchmarks import bare_loop, profile_step
from benchmarks.profile_step import Timed, breakdown, busy_us, category
from harness.engine.session import InitialModel, context
from strategies.amp import AmpExecutor
from tests.conftest import ROOT, one_line_error, run_process, tiny_config, wait_for


def script(name: str, *args: str):
    return run_process([sys.executable, str(ROOT / "benchmarks" / name), *args])


def test_the_bare_loop_trains_what_amp_trains():
    """Same initial weights, same batches, same AdamW update and clipping: after two steps in fp32 the bare
    loop's parameters equal those of the harness's `amp` strategy."""
    recipe, model, optimizer, batches = bare_loop.build("tiny", 16, device="cpu")
    for _ in range(2):
        bare_loop.train_step(model, model, optimizer, batches, recipe.grad_clip, dtype=None)

    cfg = tiny_config("amp", precision="fp32", compile="false")
    amp = AmpExecutor()
    amp.setup(InitialModel(cfg.recipe).build(), context(cfg.recipe, torch.device("cpu"), 16, False))
    for _ in range(2):
        amp.train_step(batches, recipe.lr)
    theirs = dict(amp.model.named_parameters())
    for name, param in model.named_parameters():
        torch.testing.assert_close(param, theirs[name], rtol=1e-5, atol=1e-6, msg=name)
    assert any(
        not torch.equal(p, q)
        for p, q in zip(model.parameters(), InitialModel(cfg.recipe).build().parameters(), strict=True)
    )


def test_the_bare_loop_refuses_what_it_cannot_measure():
    if torch.cuda.is_available():
        one_line_error(script("bare_loop.py", "--preset", "tiny", "--micro-batch", "7"), "does not divide")
    else:
        one_line_error(script("bare_loop.py", "--preset", "tiny", "--micro-batch", "16"), "CUDA GPU")
    with pytest.raises(ValueError, match="does not divide the global batch of 64 sequences"):
        bare_loop.build("tiny", 7, device="cpu")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1", "matmul"),
        ("nvjet_hsh_256x128_64x4_1x2_h_bz_coopA_NTN", "matmul"),
        ("aten::mm", "matmul"),
        ("void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<64, 128>>", "attention"),
        ("aten::_scaled_dot_product_flash_attention_for_cpu_backward", "attention"),
        ("triton_per_fused_add_native_layer_norm_3", "layer norm"),
        ("triton_poi_fused_gelu_5", "fused kernels (compiled)"),
        ("triton_red_fused__log_softmax_nll_loss_forward_7", "loss"),
        (
            "void at::native::(anonymous namespace)::multi_tensor_apply_kernel<FusedAdamMathFunctor>",
            "optimizer",
        ),
        ("void kOptimizerStatic8bit2StateBlockwise<__nv_bfloat16, 0, 256, 1>", "optimizer"),
        ("host optimizer step", "optimizer (host)"),
        ("ds_adam_step", "optimizer"),
        ("Memcpy DtoH (Device -> Pinned)", "copy device->host"),
        ("Memcpy HtoD (Pinned -> Device)", "copy host->device"),
        ("Memset (Device)", "copy on device"),
        ("aten::gelu_backward", "other kernels"),
    ],
)
def test_kernel_names_fall_into_their_category(name, expected):
    assert category(name) == expected


def test_device_busy_time_counts_overlap_once():
    events = [
        Timed("a", True, 0, 10),
        Timed("b", True, 5, 10),  # overlaps a: 10..15 is new
        Timed("c", True, 12, 2),  # inside b
        Timed("d", True, 20, 5),
        Timed("host op", False, 0, 100),  # not device time
    ]
    assert busy_us(events) == 20


def test_a_device_breakdown_keeps_host_ops_out_except_the_host_optimizer():
    events = [
        Timed("nvjet_gemm", True, 0, 300_000),
        Timed("Memcpy DtoH (Device -> Pinned)", True, 300_000, 100_000),
        Timed("aten::mm", False, 0, 250_000),  # the launch of the gemm: its time is the kernel's
        Timed("host optimizer step", False, 400_000, 400_000),
    ]
    figures = breakdown(events, steps=2, step_s=1.0, on_device=True)
    assert figures["categories_s"] == pytest.approx(
        {"matmul": 0.15, "copy device->host": 0.05, "optimizer (host)": 0.2}
    )
    assert figures["device_busy_s"] == pytest.approx(0.2)
    assert figures["device_idle_s"] == pytest.approx(0.8)
    assert figures["top"][0] == {
        "name": "host optimizer step",
        "category": "optimizer (host)",
        "s_per_step": 0.2,
    }


def test_the_profiler_attributes_a_cpu_step(tmp_path):
    """A real profile of `amp` on tiny: the operators' self times stay within the measured steps, and the
    matrix multiplies and attention are there."""
    proc = script("profile_step.py", "--preset", "tiny", "--steps", "2", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    figures = json.loads((tmp_path / "profile.json").read_text())
    assert (tmp_path / "trace.json").stat().st_size > 0
    assert figures["strategy"] == "amp" and figures["device"] == "cpu" and figures["micro_batch"] == 16
    categories = figures["categories_s"]
    assert categories["matmul"] > 0 and categories["attention"] > 0
    assert sum(categories.values()) * 2 <= sum(figures["step_s_each"])
    assert figures["tokens_per_s"] == pytest.approx(
        tiny_config().recipe.global_batch_tokens / figures["step_s"]
    )
    assert "matmul" in proc.stdout and "outside any operator" in proc.stdout


def test_a_host_optimizer_step_shows_in_the_profile(tmp_path):
    """fsdp2_offload steps AdamW on the host inside the named range the profiler reports."""
    proc = script(
        "profile_step.py",
        "--strategy",
        "fsdp2_offload",
        "--preset",
        "tiny",
        "--steps",
        "1",
        "--out",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    categories = json.loads((tmp_path / "profile.json").read_text())["categories_s"]
    assert categories["optimizer (host)"] > 0 and categories["matmul"] > 0


def test_the_profiler_refuses_bad_input_in_one_line(tmp_path):
    one_line_error(script("profile_step.py", "--steps", "0", "--out", str(tmp_path)), "--steps")
    one_line_error(script("profile_step.py", "--strategy", "nope", "--out", str(tmp_path)), "nope")
    one_line_error(script("profile_step.py", "--set", "lr=nan", "--out", str(tmp_path)), "lr=nan")
    assert not (tmp_path / "profile.json").exists()


@pytest.mark.gpu
def test_the_profiler_shows_where_zero_offload_spends_its_step(tmp_path):
    """On a GPU: the gradients' copies to the host and DeepSpeed's CPU Adam appear in the breakdown."""
    figures = profile_step.profile(
        profile_step.parse_args(["--strategy", "zero_offload", "--preset", "tiny", "--out", str(tmp_path)])
    )
    categories = figures["categories_s"]
    assert categories.get("copy device->host", 0) > 0 and categories.get("optimizer (host)", 0) > 0
    assert 0 < figures["device_busy_s"] <= figures["step_s"]


REHEARSAL = {"PRESET": "tiny", "MICRO_BATCH": "16", "DEVICE": "cpu", "STEPS": "2"}


def reference(*args: str, env: dict | None = None):
    env = {"PYTHON": sys.executable, **REHEARSAL, **(env or {})}
    return run_process(["bash", str(ROOT / "benchmarks" / "reference.sh"), *args], timeout=600, env=env)


def stage_files(out) -> dict[str, dict]:
    """The result.json of every run folder in a stage's archive, by strategy (a list: a strategy may run
    twice); and the archive's names."""
    with tarfile.open(out) as archive:
        names = archive.getnames()
        results: dict[str, list] = {}
        for name in names:
            if name.endswith("/result.json"):
                result = json.load(archive.extractfile(name))
                results.setdefault(result["strategy"]["name"], []).append(result)
    return {"names": names, "results": results}


@pytest.mark.slow
def test_the_first_h200_stage_rehearsed_on_the_cpu_leaves_three_small_files(tmp_path):
    """core-h200 at tiny on the CPU: amp and the bare loop alternated over the same steps, then the other
    three; every run archived (without checkpoints), the summary table last with the paired ratio."""
    # The stage's content is the point here, not its 390 s window (the next test checks the deadline):
    # a busy CPU may need longer.
    proc = reference("core-h200", str(tmp_path), env={"DEADLINE_S": "3600"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["core-h200-summary.txt", "core-h200.log", "core-h200.tar.gz"]
    archive = stage_files(tmp_path / "core-h200.tar.gz")
    statuses = {k: [r["status"] for r in v] for k, v in archive["results"].items()}
    assert statuses == {"amp": ["ok", "ok"], "adam8bit": ["ok"], "zero_offload": ["ok"], "act_ckpt": ["ok"]}
    assert all(r["summary"]["timed_steps"] == 2 for rs in archive["results"].values() for r in rs)
    assert "./bare-1.json" in archive["names"] and "./bare-2.json" in archive["names"]
    assert "./machine.txt" in archive["names"]
    assert not any("checkpoints" in name for name in archive["names"])  # too big to come back
    summary = (tmp_path / "core-h200-summary.txt").read_text()
    assert "amp / bare loop:" in summary and "2 alternated pairs of 2 steps" in summary
    for name in ("adam8bit", "zero_offload", "act_ckpt"):
        assert name in summary


@pytest.mark.slow
@pytest.mark.serial
def test_a_stage_stops_its_run_the_harness_way_at_its_deadline_and_archives_as_it_goes(tmp_path):
    """A stage whose first run outlives DEADLINE_S: that run is stopped with SIGTERM, checkpointed and
    recorded as interrupted with its steps; the steps after it are named as not run; the stage ends within
    its deadline plus the kill grace, by its own clock, and says it did not finish. The deadline logic is
    every stage's (`timed`); toolbox-a is the one whose first step is a run (no machine description), here
    with strategies whose CPU warm-up compiles nothing (torchao's optimizers compile their kernels there:
    35 s with a cold TorchInductor cache), so the run trains well before its deadline whatever the cache."""
    deadline_s, grace_s = 15, 30  # the run trains within seconds of starting: amp compiles nothing on a CPU
    env = {"STEPS": "100000", "DEADLINE_S": str(deadline_s), "TOOLBOX_A": "amp act_ckpt sel_ckpt"}
    proc = reference("toolbox-a", str(tmp_path), env=env)
    assert proc.returncode != 0, proc.stdout
    results = stage_files(tmp_path / "toolbox-a.tar.gz")["results"]
    (first,) = results["amp"]
    assert first["status"] == "interrupted" and first["summary"]["steps"] > 0, first.get("error")
    log = (tmp_path / "toolbox-a.log").read_text()
    ended = int(log.split("stage toolbox-a ended after ")[1].split("s")[0])
    assert ended <= deadline_s + grace_s  # DEADLINE_S plus KILL_GRACE_S
    summary = (tmp_path / "toolbox-a-summary.txt").read_text()
    assert "not run (the stage's deadline came first): act_ckpt, sel_ckpt" in summary


def test_every_stage_the_script_can_run_is_one_it_accepts():
    """A stage with a case but missing from the list of stages cannot start (answer-24 could not)."""
    text = (ROOT / "benchmarks" / "reference.sh").read_text()
    listed = text.split("STAGES=(")[1].split(")")[0].split()
    body = text.split("stage() {")[1].split("\n}\n")[0]
    cases = re.findall(r"^    ([a-z0-9-]+)\)", body, re.M)
    assert sorted(cases) == sorted(listed) and "answer-24" in listed


def test_the_stage_windows_worst_case_fits_a_window():
    """The defaults the script states: install, deadline, kill grace, archive and summary within 8 minutes."""
    text = (ROOT / "benchmarks" / "reference.sh").read_text()
    deadline = int(text.split("DEADLINE_S=${DEADLINE_S:-")[1].split("}")[0])
    grace = int(text.split("KILL_GRACE_S=${KILL_GRACE_S:-")[1].split("}")[0])
    install_s, archive_and_summary_s = 40, 15  # as the script's header states them
    assert install_s + deadline + grace + archive_and_summary_s <= 8 * 60


@pytest.mark.serial
def test_a_killed_stage_keeps_every_run_that_ended(tmp_path):
    """SIGKILL of the whole stage (a command past its limit) once its first run has ended and the next step
    has started: that run's folder, with its result, is already in the archive."""
    proc = subprocess.Popen(
        ["bash", str(ROOT / "benchmarks" / "reference.sh"), "core-h200", str(tmp_path)],
        env={**os.environ, "PYTHON": sys.executable, **REHEARSAL},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:  # a step is archived after its "ended" line, before the next step's first line
        wait_for(lambda: "== bare-1 (" in _read(tmp_path / "core-h200.log"), timeout=300)
    finally:
        kill_tree(proc.pid)
        proc.wait()
    archive = stage_files(tmp_path / "core-h200.tar.gz")
    assert "./machine.txt" in archive["names"]
    amp = archive["results"]["amp"][0]  # the run that ended, whole
    assert amp["status"] == "ok" and amp["summary"]["steps"] == 2


def kill_tree(pid: int) -> None:
    """SIGKILL a process and everything under it, as a command limit does. Its process group is not enough:
    `timeout` puts the command it runs in a group of its own, which would go on running without it."""
    import psutil

    parent = psutil.Process(pid)
    for process in [*parent.children(recursive=True), parent]:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


def _read(path) -> str:
    return path.read_text() if path.exists() else ""


def test_a_reference_stage_refuses_bad_input_in_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    for args, fragment in [
        ((), "usage"),
        (("nope", str(tmp_path)), "stages: core-h200 gpu-tests"),
        (("core-h200", str(tmp_path / "file" / "under")), "pass a writable folder"),
    ]:
        proc = reference(*args)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stderr.strip().startswith("error: ") and fragment in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_a_ratio_of_two_programs_is_per_alternated_pair_with_its_spread(tmp_path):
    from benchmarks.paired_ratio import harness_runs, paired_ratio

    figures = paired_ratio([100.0, 90.0, 110.0], [100.0, 100.0, 100.0], [20, 20, 20], [20, 20, 20])
    assert figures["ratios"] == pytest.approx([1.0, 0.9, 1.1])
    assert (figures["median"], figures["min"], figures["max"]) == pytest.approx((1.0, 0.9, 1.1))
    with pytest.raises(ValueError, match="alternate them in pairs"):
        paired_ratio([1.0, 2.0], [1.0], [20, 20], [20])
    with pytest.raises(ValueError, match="time the same steps"):
        paired_ratio([1.0], [1.0], [20], [30])
    # A's runs are taken in the order they started, whatever their folders are called.
    for name, started, tps in [("b", "2026-12-01T10:00:00", 5.0), ("a", "2026-12-01T11:00:00", 7.0)]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_text(json.dumps({
            "strategy": {"name": "amp"}, "status": "ok", "started_at": started,
            "summary": {"steady_tokens_per_s": tps, "timed_steps": 20},
        }))  # fmt: skip
    assert harness_runs(tmp_path, "amp") == ([5.0, 7.0], [20, 20])


def test_the_bare_loop_reports_the_harness_statistic(tmp_path):
    from harness.metrics.definitions import steady_median

    out = tmp_path / "bare.json"
    argv = ["--preset", "tiny", "--micro-batch", "16", "--steps", "11", "--warmup", "1", "--device", "cpu"]
    assert bare_loop.main([*argv, "--no-compile", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert len(figures["step_s"]) == 11 and figures["device"] == "cpu"
    assert figures["tokens_per_s"] == pytest.approx(steady_median([4096 / s for s in figures["step_s"]]))


def test_a_stage_summary_ends_with_the_capacity_table_its_stage_left(tmp_path):
    from benchmarks.stage_summary import summary
    from tests.conftest import harness_main

    proc = harness_main("capacity", "--gpu-memory-gib", "24", "--predict-only", "--strategies", "amp",
                        "--presets", "tiny,gpt2-124m", "--out", str(tmp_path / "capacity.json"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = summary(tmp_path, "core-h200")
    header, row, note = text.splitlines()[-3:]
    assert header.split()[:3] == ["strategy", "GPU", "GiB"]
    assert row.split()[:3] == ["amp", "24", "gpt2-124m"]
    assert note.startswith("predict-only: no speed measured")
