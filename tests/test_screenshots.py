"""The README's screenshots come from a script (docs/screenshots.py): it renders the pages a user sees and
photographs each at 1280 px."""

import struct
import subprocess
import sys

from tests.conftest import ROOT
from tests.report_fixtures import write_run
from tests.test_report import chromium_or_skip


def png_size(path):
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_the_screenshot_script_photographs_the_index_a_run_page_and_the_answer_at_1280_px(tmp_path):
    chromium_or_skip()
    runs = tmp_path / "runs"
    write_run(runs, "r-amp", "amp", tokens_per_s=1000.0, final_val_loss=3.0)
    write_run(runs, "r-8bit", "adam8bit", tokens_per_s=900.0, final_val_loss=3.1)
    out = tmp_path / "images"
    out.mkdir()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "screenshots.py"), "--runs", str(runs), "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["answer-h100.png", "report-tiny-cpu.png", "run-page-tiny-cpu.png"]
    for name in names:
        width, height = png_size(out / name)
        assert width == 1280 and 600 < height <= 2400, (name, width, height)
