"""Regenerate the README's screenshots: the index, a run page and the answer page, each at 1280 px wide in
headless Chromium, from what a new user's first commands produce on this machine.

    python docs/screenshots.py                 # a tiny CPU sweep (4 strategies x 20 s), then the pages
    python docs/screenshots.py --runs DIR      # the pages of runs that exist already

It writes docs/report-tiny-cpu.png, docs/run-page-tiny-cpu.png and docs/answer-h100.png (the answer is
predict-only for an H100 at 24 and 80 GiB, so it needs no GPU). Needs chromium and playwright (the dev
extra); about 2 minutes with the sweep on two cores.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
WIDTH = 1280
ANSWER_GPU = "NVIDIA H100 80GB HBM3"


def harness(*argv: str) -> None:
    subprocess.run([sys.executable, "-m", "harness", *argv], check=True, cwd=DOCS.parent)


def make_pages(work: Path, runs: Path | None) -> tuple[Path, Path, Path]:
    """The index over `runs` (a fresh tiny sweep when None), one of its run pages, and the answer page."""
    if runs is None:
        runs = work / "runs"
        harness("sweep", "--preset", "tiny", "--budget", "20s", "--runs-dir", str(runs), "--quiet",
                "--report", str(work / "index.html"))  # fmt: skip
    # The answer in a folder of its own: the index shows the sweep's story, the answer has its page.
    harness("answer", "--predict-only", "--gpu", ANSWER_GPU, "--gpu-memory-gib", "24,80",
            "--out", str(work / "answer" / "answer.json"))  # fmt: skip
    harness("report", "--runs", str(runs), "--out", str(work / "index.html"))
    pages = sorted((work / "run_pages").glob("*.html"))
    if not pages:
        raise SystemExit(f"no run pages: {runs} holds no runs")
    amp = next((p for p in pages if "-amp-" in p.name), pages[0])
    return work / "index.html", amp, work / "answer" / "answer.html"


def shoot(pages: dict[str, Path], out: Path, max_height: int = 2400) -> None:
    from playwright.sync_api import sync_playwright

    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser_path is None:
        raise SystemExit("needs chromium: apt-get install chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": WIDTH, "height": 900})
        for name, source in pages.items():
            page.set_viewport_size({"width": WIDTH, "height": 900})  # a page is never shorter than its view
            page.goto(source.as_uri())
            page.wait_for_load_state("load")
            height = min(page.evaluate("document.documentElement.scrollHeight"), max_height)
            page.set_viewport_size({"width": WIDTH, "height": height})
            page.screenshot(path=str(out / name))
            print(f"screenshots: {out / name} ({WIDTH} x {height} px, from {source.name})")
        browser.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, help="a runs folder to render instead of a new tiny sweep")
    parser.add_argument("--out", type=Path, default=DOCS, help="where the images go (default: docs/)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="screenshots-") as tmp:
        index, run_page, answer = make_pages(Path(tmp), args.runs)
        names = ("report-tiny-cpu.png", "run-page-tiny-cpu.png", "answer-h100.png")
        shoot(dict(zip(names, (index, run_page, answer), strict=True)), args.out)


if __name__ == "__main__":
    main()
