"""Batch acceptance check: 20 simulated videos, bad files, kill -9, resume, Dask.

Builds a folder of 20 inputs (16 simulated 640x480 clips in sub-folders, two corrupt
files, an empty one, one whose container declares an absurd frame rate), then:

1. runs ``detect-track FOLDER --workers 2`` and kills it with SIGKILL once about half
   of the inputs have finished;
2. reruns the same command: inputs that had finished must be skipped with their files
   untouched, the rest done, the bad ones reported (exit status 3);
3. runs the same folder with ``--executor dask`` (a LocalCluster, 2 workers) into another
   folder and compares every table with the local run.

Writes ``benchmarks/batch.md``.

    .venv/bin/python tools/check_batch.py [--work DIR] [--keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detect_track.batch import DONE_MARKER  # noqa: E402
from detect_track.synth import random_config, simulate  # noqa: E402

CLI = [sys.executable, "-m", "detect_track.cli"]


def set_avi_fps(path: Path, fps: float) -> None:
    data = bytearray(path.read_bytes())
    at = data.index(b"strh") + 8 + 20
    data[at:at + 8] = (1000).to_bytes(4, "little") + int(fps * 1000).to_bytes(4, "little")
    path.write_bytes(bytes(data))


def build(folder: Path) -> None:
    for k in range(17):
        fmt = "avi" if k % 2 or k == 16 else "mp4"
        cfg = random_config(5000 + k, duration_s=2.0, width_px=640, height_px=480,
                            video_format=fmt, n_cells=30, um_per_px=0.7)
        simulate(folder / f"sample_{k:02d}", cfg)
    bad = folder / "bad"
    bad.mkdir()
    (bad / "random_bytes.avi").write_bytes(np.random.default_rng(1).bytes(200_000))
    good = next((folder / "sample_01").glob("video.*"))
    (bad / "truncated.avi").write_bytes(good.read_bytes()[:3000])
    (bad / "empty.mp4").write_bytes(b"")
    wrong = next((folder / "sample_16").glob("video.*"))  # the 17th clip: its fps is absurd
    set_avi_fps(wrong, 1e5)
    wrong.rename(bad / "absurd_fps.avi")
    shutil.rmtree(folder / "sample_16")


def markers(out: Path) -> dict[Path, float]:
    return {m.parent: (m.parent / "tracks.csv").stat().st_mtime_ns
            for m in out.glob(f"**/{DONE_MARKER}")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, help="work folder (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "batch.md")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="dt-batch-"))
    folder, out, out_dask = work / "videos", work / "out", work / "out_dask"
    for p in (folder, out, out_dask):
        shutil.rmtree(p, ignore_errors=True)
    t0 = time.perf_counter()
    build(folder)
    n_inputs = sum(1 for _ in folder.glob("*/*.*") if _.suffix in (".avi", ".mp4"))
    print(f"built {n_inputs} inputs in {time.perf_counter() - t0:.0f} s")
    common = [str(folder), "-q", "--workers", "2", "--um-per-px", "0.7"]
    env = {**os.environ, "YOLO_OFFLINE": "1"}

    t1 = time.perf_counter()
    proc = subprocess.Popen([*CLI, *common, "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while len(markers(out)) < 8 and proc.poll() is None:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_after = time.perf_counter() - t1
    before = markers(out)
    print(f"killed after {killed_after:.0f} s with {len(before)} inputs finished")

    t2 = time.perf_counter()
    r = subprocess.run([*CLI, *common, "--out", str(out)], env=env, capture_output=True,
                       text=True)
    rerun_s = time.perf_counter() - t2
    log = pd.read_csv(out / "batch_log.csv", keep_default_na=False)
    skipped = {out / o for o in log.loc[log["status"] == "skipped", "output"]}
    untouched = all(markers(out).get(d) == m for d, m in before.items())
    checks = {
        "rerun exit status 3 (some inputs failed)": r.returncode == 3,
        "no traceback on stderr": "Traceback" not in r.stderr,
        "finished before the kill = skipped on rerun": skipped == set(before),
        "their files untouched": untouched,
        "16 inputs done, 4 failed": (log["status"] != "failed").sum() == 16
        and (log["status"] == "failed").sum() == 4,
        "no temporary files left": not list(out.glob("**/*.tmp*")),
    }

    t3 = time.perf_counter()
    rd = subprocess.run([*CLI, *common, "--out", str(out_dask), "--executor", "dask"],
                        env=env, capture_output=True, text=True)
    dask_s = time.perf_counter() - t3
    same = []
    for name in ("all_tracks.csv", "all_summaries.csv", "sample_03/video/trajectories.csv",
                 "sample_10/video/tracks.csv"):
        a, b = pd.read_csv(out / name), pd.read_csv(out_dask / name)
        if name == "all_summaries.csv":  # timings differ, and "skipped" here is "ok" there
            a, b = (t.drop(columns=[c for c in t.columns if c == "elapsed_s"
                                    or c.startswith("timings_s.")])
                    .replace({"status": {"skipped": "ok"}}) for t in (a, b))
        same.append(a.equals(b))
    dlog = pd.read_csv(out_dask / "batch_log.csv", keep_default_na=False)
    checks["dask: exit status 3"] = rd.returncode == 3
    done_before = log.replace({"status": {"skipped": "ok"}})
    checks["dask: same statuses"] = (dlog.sort_values("output")["status"].tolist()
                                     == done_before.sort_values("output")["status"].tolist())
    checks["dask: identical tables (all_tracks, all_summaries, two inputs' files)"] = all(same)
    failed = log[log["status"] == "failed"][["output", "error"]]

    lines = [
        "# Batch: 20 inputs, kill -9, resume, Dask",
        "",
        f"Generated {dt.date.today()} on {platform.machine()}, {os.cpu_count()} cores, by",
        "",
        "    .venv/bin/python tools/check_batch.py",
        "",
        "16 simulated 640x480 clips of 2 s at 0.7 µm/px (random conditions, seeds 5000-5015, AVI",
        "and MP4) in sub-folders, plus `bad/`: random bytes, a truncated AVI, an empty MP4 and an",
        "AVI whose header declares 100 000 fps. Default pipeline (YOLO, SORT, morphology,",
        "report.html per video and for the batch).",
        "",
        "| step | result |",
        "|---|---|",
        f"| `detect-track videos/ --workers 2`, SIGKILL once 8 inputs had finished | killed "
        f"after {killed_after:.0f} s, {len(before)} finished |",
        f"| same command again | {rerun_s:.0f} s, exit {r.returncode}: "
        f"{(log['status'] == 'ok').sum()} done, {(log['status'] == 'skipped').sum()} skipped, "
        f"{(log['status'] == 'failed').sum()} failed |",
        f"| `--executor dask --workers 2` (LocalCluster), fresh output folder | {dask_s:.0f} s, "
        f"exit {rd.returncode} |",
        "",
        "| check | |",
        "|---|---|",
        *(f"| {k} | {'yes' if v else '**NO**'} |" for k, v in checks.items()),
        "",
        "Failed inputs as `batch_log.csv` reports them:",
        "",
        "| input | error |",
        "|---|---|",
        *(f"| {o} | {e} |" for o, e in failed.itertuples(index=False)),
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    if not args.keep and args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
