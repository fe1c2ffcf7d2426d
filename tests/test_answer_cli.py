"""`harness answer` as a user meets it: predict-only answers for GPUs that are not here, with every figure
labelled; where the best of a day and of a week falls; one verdict per memory size; bad input and outputs
that cannot be written refused in one line before anything runs."""

import json

import pytest

from tests.test_answer import params

H100 = "NVIDIA H100 80GB HBM3"


@pytest.mark.parametrize("gpu", [H100, "NVIDIA GeForce RTX 4090"])
def test_predict_only_for_a_gpu_not_here_labels_every_figure(tmp_path, gpu):
    from tests.conftest import harness_main

    out = tmp_path / "answer.json"
    proc = harness_main(
        "answer", "--predict-only", "--gpu", gpu, "--budget", "24h", "--json", "--out", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc == json.loads(out.read_text()) and out.with_suffix(".html").exists()
    (entry,) = doc["sizes"]
    assert entry["gpu_memory_gib"] == (80 if gpu == H100 else 24)
    assert entry["verdict"].startswith(f"On an {gpu} (predicted) in 24 h: best ")
    by_key = {(c["strategy"], c["preset"]): c for c in entry["candidates"]}
    assert set(entry["strategies"]) == {"amp", "adam8bit", "zero_offload", "act_ckpt", "adam8bit+act_ckpt",
                                        "zero_offload+act_ckpt"}  # fmt: skip
    for own in entry["strategies"].values():
        for role in ("best", "biggest"):
            c = by_key[(own[role]["strategy"], own[role]["preset"])]
            assert c["tokens_per_s"]["source"] == "predicted" and c["tokens_per_s"]["value"] > 0
            assert c["tokens_per_s"]["from"]["efficiency_source"]
            for key in ("tokens", "tokens_per_param", "estimated_loss"):
                assert c[key]["value"] > 0 and c[key]["source"], key
    if gpu == H100:  # the published H100 runs calibrate it
        amp = by_key[
            (entry["strategies"]["amp"]["best"]["strategy"], entry["strategies"]["amp"]["best"]["preset"])
        ]
        assert "docs/results/h100/runs" in amp["tokens_per_s"]["from"]["efficiency_source"]


def test_a_day_on_a_24_gib_card_is_best_at_or_below_gpt2_small_and_a_week_on_an_h100_near_1b(tmp_path):
    from tests.conftest import harness_main

    def best(gpu, budget):
        out = tmp_path / f"{budget}.json"
        args = ("answer", "--predict-only", "--gpu", gpu, "--budget", budget, "--strategies", "amp")
        assert harness_main(*args, "--out", str(out)).returncode == 0
        return json.loads(out.read_text())["sizes"][0]["best"]["preset"]

    assert params(best("NVIDIA GeForce RTX 3090", "24h")) <= params("gpt2-124m")
    assert params("gpt-760m") <= params(best(H100, "7d")) <= params("gpt-1.3b")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--gpu", "NVIDIA RTX 9999", "--predict-only"], "unknown GPU 'NVIDIA RTX 9999': name one of"),
        (["--predict-only"], "--predict-only on a machine without a GPU needs one named"),
        (["--predict-only", "--gpu", H100, "--gpu-memory-gib", "0"], "memory size 0 GiB is out of range"),
        (["--predict-only", "--gpu", H100, "--train"], "--train trains on this machine"),
        (["--predict-only", "--gpu", H100, "--strategies", "fsdp"], "unknown strategy 'fsdp'"),
        (["--predict-only", "--gpu", H100, "--budget", "2x"], "malformed budget '2x'"),
        (
            ["--predict-only", "--gpu", H100, "--gpu-memory-gib", "lots"],
            "--gpu-memory-gib 'lots': expected float",
        ),
        (["--predict-only", "--gpu", H100, "--presets", "gpt-175b"], "unknown preset 'gpt-175b'"),
        (["--predict-only", "--gpu", H100, "--presets", ""], "--presets '' names nothing"),
        (
            ["--predict-only", "--gpu", H100, "--gpu-memory-gib", " , "],
            "--gpu-memory-gib ' , ' names nothing",
        ),
        (["--predict-only", "--gpu", H100, "--gpu-memory-gib", "24,24"], "'24,24' names 24 twice"),
        (["--predict-only", "--gpu", H100, "--presets", "tiny,tiny"], "'tiny,tiny' names tiny twice"),
        (["--predict-only", "--gpu", H100, "--gpu-memory-gib", ",".join(map(str, range(1, 19)))], "up to 16"),
        (
            ["--predict-only", "--gpu", H100, "--host-memory-gib", "nan"],
            "memory size nan GiB is out of range",
        ),
        (["--predict-only", "--gpu", H100, "--host-memory-gib", "0"], "memory size 0 GiB is out of range"),
        (["--predict-only", "--gpu", H100, "--budget", "400d"], "--budget 400d is longer than a year"),
        (["--gpu", "list", "--budget", "1y"], "malformed budget '1y'"),
        (["--gpu", "list", "--strategies", "amp,,adam8bit"], "has an empty entry"),
        (["--predict-only", "--gpu", H100, "--strategies", "amp,amp"], "'amp,amp' names amp twice"),
        (["--predict-only", "--gpu", H100, "--gpu-memory-gib", "24,,80"], "'24,,80' has an empty entry"),
        (["--predict-only", "--gpu", H100, "--gpu-memory-gib", "24,"], "'24,' has an empty entry"),
        (
            ["--predict-only", "--gpu", H100, "--budget", "0.0000000001s"],
            "shorter than one optimizer step of the fastest candidate",
        ),
        (
            ["--predict-only", "--gpu", H100, "--gpu-memory-gib", "100"],
            "more than the 80.0 GiB of the NVIDIA H100",
        ),
    ],
)
def test_bad_input_is_refused_in_one_line_before_anything_runs(tmp_path, args, fragment):
    from tests.conftest import harness_main

    out = tmp_path / "answer.json"
    proc = harness_main("answer", *args, "--out", str(out))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and fragment in proc.stderr, proc.stderr
    assert not out.exists()


REFUSALS = {
    "fifo": "is not a regular file: give a file name such as answer.json",
    "html": "the answer is a .json document (its page goes beside it as .html)",
    "page-is-a-folder": "--out (its page) {tmp}/answer.html is a folder, not a file",
    "runs-dir-is-a-file": "--runs-dir {tmp}/runs is not a folder: give the folder runs are kept in",
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_outputs_that_cannot_be_written_as_asked_are_refused(tmp_path, case):
    """A device or a pipe is never replaced by a file; the document and its page are two files."""
    import os

    from tests.conftest import harness_main

    out, extra = tmp_path / "answer.json", []
    if case == "fifo":
        out = tmp_path / "pipe"
        os.mkfifo(out)
    elif case == "html":
        out = tmp_path / "answer.html"
    elif case == "page-is-a-folder":
        (tmp_path / "answer.html").mkdir()
    else:
        (tmp_path / "runs").write_text("not a folder")
        extra = ["--runs-dir", str(tmp_path / "runs")]
    proc = harness_main("answer", "--predict-only", "--gpu", H100, "--out", str(out), *extra)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: ") and REFUSALS[case].format(tmp=tmp_path) in proc.stderr
    assert not (tmp_path / "answer.json").exists()
    if case == "fifo":
        assert not out.is_file() and not out.with_suffix(".html").exists()


def test_gpu_list_names_the_table():
    from tests.conftest import harness_main

    proc = harness_main("answer", "--gpu", "list")
    assert proc.returncode == 0 and H100 in proc.stdout and "NVIDIA GeForce RTX 3090" in proc.stdout


def test_a_host_larger_than_the_card_limits_the_biggest_by_its_own_memory(tmp_path):
    """--host-memory-gib is the host's size, not a GPU size: 126 GiB beside an 80 GiB card is accepted."""
    from tests.conftest import harness_main

    out = tmp_path / "answer.json"
    args = ("--predict-only", "--gpu", H100, "--host-memory-gib", "126", "--strategies", "amp,zero_offload")
    proc = harness_main("answer", *args, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(out.read_text())["sizes"]
    assert all(c["memory"]["predicted_host_gib"] <= 126 for c in entry["candidates"])
    assert " GiB of host memory)" not in entry["verdict"]  # a limit was applied: nothing to say


def test_each_memory_size_gets_its_own_verdict(tmp_path):
    from tests.conftest import harness_main

    out = tmp_path / "answer.json"
    args = ("--predict-only", "--gpu", H100, "--gpu-memory-gib", "24,80", "--strategies", "amp,zero_offload")
    assert harness_main("answer", *args, "--out", str(out)).returncode == 0
    small, full = json.loads(out.read_text())["sizes"]
    assert small["verdict"].startswith(f"On an {H100} capped at 24 GiB (predicted) in 24 h: ")
    assert full["verdict"].startswith(f"On an {H100} (predicted) in 24 h: ")
    assert params(small["biggest"]["preset"]) <= params(full["biggest"]["preset"])
    for c in small["candidates"]:
        assert c["memory"]["predicted_gpu_gib"] <= 24 * (1 - 0.08)


def test_no_command_replaces_a_device_or_a_pipe_with_its_output(tmp_path):
    import os

    from tests.conftest import harness_main

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    (tmp_path / "runs").mkdir()
    for args in (
        ("report", "--runs", str(tmp_path / "runs"), "--out", str(pipe)),
        ("capacity", "--predict-only", "--gpu-memory-gib", "24", "--strategies", "amp", "--out", str(pipe)),
    ):
        proc = harness_main(*args)
        assert proc.returncode == 2 and "is not a regular file" in proc.stderr, proc.stderr
        assert not pipe.is_file()
