"""Render check of the HTML reports in headless Chromium.

Builds ``report.html`` from a results folder, renders it with headless Chromium to a PNG
screenshot and checks that the screenshot exists and is not blank (enough non-white
pixels, and the motility-class colours of the figures are present).

* A folder of one video (``trajectories.csv``, ``tracks.csv``, ``summary.json``, as
  written by ``detect-track VIDEO``): the per-video report.
* A batch output folder (``batch_log.csv``, ``all_summaries.csv``, ``all_tracks.csv``):
  the batch report.
* ``--batch`` with a folder of one video: also a demonstration batch report built from
  it (the video twice, once as processed and once as skipped, plus a failed input).

Without a ``chromium`` (or ``chromium-browser``, ``google-chrome``) binary the reports are
still written, a note is printed and the script exits 0 with "skipped".

    .venv/bin/python tools/check_report.py [FOLDER] [--batch] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detect_track.report import MOTILITY_COLOURS  # noqa: E402
from detect_track.report.html import write_batch_report, write_video_report  # noqa: E402

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WINDOW = (1280, 4000)


def build_video(folder: Path, out: Path) -> tuple[Path, float]:
    traj = pd.read_csv(folder / "trajectories.csv")
    tracks = pd.read_csv(folder / "tracks.csv")
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    start = time.perf_counter()
    path = write_video_report(traj, tracks, summary, out / "report.html")
    return path, time.perf_counter() - start


def build_batch(folder: Path, out: Path) -> tuple[Path, float]:
    summaries = pd.read_csv(folder / "all_summaries.csv")
    tracks = pd.read_csv(folder / "all_tracks.csv")
    log = pd.read_csv(folder / "batch_log.csv")
    start = time.perf_counter()
    path = write_batch_report(summaries, tracks, log, out / "batch_report.html")
    return path, time.perf_counter() - start


def build_demo_batch(folder: Path, out: Path) -> tuple[Path, float]:
    """A batch of three inputs from one video's results: ok, skipped, failed."""
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    tracks = pd.read_csv(folder / "tracks.csv")
    flat = {k: v for k, v in summary.items() if k not in ("config", "versions")
            and not isinstance(v, dict)}
    flat["warnings"] = "; ".join(summary.get("warnings") or [])
    ok = {**flat, "file": str(summary.get("path", "video")), "output": "sample_a",
          "status": "ok", "error": "", "report": "sample_a/report.html"}
    skipped = {**flat, "file": "/data/run 2/<b>&second.avi", "video": "<b>&second.avi",
               "output": "run 2/second", "status": "skipped", "error": "",
               "warnings": "frame rate taken from the default (no rate in the container)",
               "report": "run 2/second/report.html", "pct_progressive": 40.0,
               "pct_non_progressive": 35.0, "pct_immotile": 25.0}
    failed = {"file": "/data/bad/random_bytes.avi", "output": "bad/random_bytes",
              "status": "failed", "error": "cannot read video /data/bad/random_bytes.avi: "
                                           "no frame could be decoded"}
    summaries = pd.DataFrame([ok, skipped, failed])
    t2 = tracks.copy()
    t2["vcl_um_s"] = t2["vcl_um_s"] * 0.8
    all_tracks = pd.concat([tracks.assign(video=ok["video"]), t2.assign(video="<b>&second.avi")],
                           ignore_index=True)
    log = pd.DataFrame([{"file": r["file"], "status": r["status"], "error": r["error"],
                         "elapsed_s": e} for r, e in zip((ok, skipped, failed),
                                                          (21.9, 0.01, 0.3), strict=True)])
    (out / "sample_a").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "report.html", out / "sample_a" / "report.html")
    start = time.perf_counter()
    path = write_batch_report(summaries, all_tracks, log, out / "batch_report.html")
    return path, time.perf_counter() - start


def find_browser() -> str | None:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(browser: str, page: Path, png: Path) -> None:
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--user-data-dir={profile}", f"--screenshot={png}",
               f"--window-size={WINDOW[0]},{WINDOW[1]}", page.resolve().as_uri()]
        subprocess.run(cmd, check=False, timeout=120, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


def check_png(png: Path) -> list[str]:
    """Problems with a screenshot: missing, blank, or without the figures' colours."""
    from PIL import Image

    if not png.is_file() or png.stat().st_size == 0:
        return [f"no screenshot at {png}"]
    img = np.asarray(Image.open(png).convert("RGB")).astype(np.int16)
    problems = []
    ink = (np.abs(img - 255).sum(axis=2) > 30).mean()
    if ink < 0.01 or img.std() < 5:
        problems.append(f"screenshot looks blank ({100 * ink:.2f}% non-white pixels)")
    for cls in ("progressive", "immotile"):
        rgb = np.array([int(MOTILITY_COLOURS[cls][i:i + 2], 16) for i in (1, 3, 5)])
        near = (np.abs(img - rgb).sum(axis=2) < 40).sum()
        if near < 200:
            problems.append(f"hardly any {cls} colour in the screenshot ({near} px)")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default="/tmp/demo", type=Path,
                    help="results folder of one video, or a batch output folder")
    ap.add_argument("--batch", action="store_true",
                    help="also build a demonstration batch report from a one-video folder")
    ap.add_argument("--out", type=Path, default=None,
                    help="where to write reports and screenshots (default: FOLDER)")
    args = ap.parse_args(argv)
    folder, out = args.folder, args.out or args.folder
    out.mkdir(parents=True, exist_ok=True)

    pages: list[Path] = []
    if (folder / "batch_log.csv").is_file():
        path, secs = build_batch(folder, out)
        print(f"batch report: {path} ({path.stat().st_size / 1e3:.0f} kB, {secs:.2f} s)")
        pages.append(path)
    else:
        path, secs = build_video(folder, out)
        print(f"video report: {path} ({path.stat().st_size / 1e3:.0f} kB, {secs:.2f} s)")
        pages.append(path)
        if args.batch:
            path, secs = build_demo_batch(folder, out)
            print(f"batch report: {path} ({path.stat().st_size / 1e3:.0f} kB, {secs:.2f} s)")
            pages.append(path)

    browser = find_browser()
    if browser is None:
        print("note: no chromium binary found (apt-get install chromium); render check "
              "skipped")
        print("skipped")
        return 0
    failed = False
    for page in pages:
        png = page.with_suffix(".png")
        screenshot(browser, page, png)
        problems = check_png(png)
        for p in problems:
            print(f"FAIL {page.name}: {p}")
        failed |= bool(problems)
        if not problems:
            print(f"ok   {page.name}: screenshot {png}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
