"""Checks that need CUDA (skipped elsewhere): fitting, memory figures, strategies on the GPU."""

import pytest

from tests.conftest import run_inprocess, tiny_config


@pytest.mark.gpu
@pytest.mark.parametrize("strategy", ["amp", "adam8bit", "zero_offload", "act_ckpt"])
def test_gpu_run_fits_a_micro_batch_and_reports_memory(tmp_path, strategy):
    cfg = tiny_config(strategy, budget="5s", device="cuda")
    result = run_inprocess(cfg, tmp_path)
    assert result.status == "ok", result.error
    assert result.settings["micro_batch"] >= 1 and result.settings["fit_probes"]
    s = result.summary
    assert s.peak_allocated_gib > 0 and s.peak_reserved_gib >= s.peak_allocated_gib
    assert result.settings["precision"] in ("bf16", "fp16")
