"""Batch processing: discovery, failures logged not fatal, resume, kill -9, Dask."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from detect_track.batch import (
    DONE_MARKER,
    JobSpec,
    discover,
    is_batch_input,
    process_item,
    run_batch,
)
from detect_track.config import load_config
from detect_track.errors import ConfigError, InputError
from tests.helpers import render_blobs, write_video

FAST = {"detector.name": "classical", "detector.classical.polarity": "bright",
        "tracker.min_track_s": 0.2, "morphology.enabled": False, "video.default_fps": 25.0}


def _clip(path: Path, seed: int, n: int = 20, fps: float = 25.0) -> Path:
    rng = np.random.default_rng(seed)
    start = np.column_stack([rng.uniform(10, 40, 3), [25.0, 60.0, 95.0]])
    frames = [render_blobs(start + [i * (1 + seed % 3), 0], seed=seed * 100 + i)
              for i in range(n)]
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, frames, fps=fps)


def set_avi_fps(path: Path, fps: float) -> Path:
    """Rewrite the frame rate an AVI declares (its video stream header), as a bad camera."""
    data = bytearray(path.read_bytes())
    at = data.index(b"strh") + 8 + 20  # chunk id, size, fccType, handler, flags, prio, frames
    data[at:at + 8] = (1000).to_bytes(4, "little") + int(fps * 1000).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    return path


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """Three good clips (one nested, one as frames), corrupt, empty, absurd-fps, a note."""
    root = tmp_path / "archive"
    _clip(root / "day1" / "a.avi", 1)
    _clip(root / "day1" / "deep" / "b.avi", 2)
    frames = root / "day2" / "frames"
    frames.mkdir(parents=True)
    for i in range(12):
        import cv2

        cv2.imwrite(str(frames / f"f{i:03d}.png"), render_blobs(np.array([[30 + i, 50]]), seed=i))
    (root / "day2" / "corrupt.avi").write_bytes(np.random.default_rng(0).bytes(5000))
    (root / "day2" / "empty.mp4").write_bytes(b"")
    set_avi_fps(_clip(root / "day2" / "wrong_fps.avi", 3), 1e5)  # absurd: refused
    set_avi_fps(_clip(root / "day2" / "fast_fps.avi", 6, n=110), 500)  # plausible, wrong: warned
    (root / "notes.txt").write_text("not a video")
    return root


def _spec(**extra: object) -> JobSpec:
    return JobSpec(load_config(None, FAST), um_per_px=0.7, report=False, **extra)


def test_discover_finds_videos_frame_folders_and_nothing_else(archive: Path):
    items = discover(archive)
    assert [i.rel for i in items] == ["day1/a", "day1/deep/b", "day2/corrupt", "day2/empty",
                                      "day2/fast_fps", "day2/frames", "day2/wrong_fps"]
    assert is_batch_input(archive)
    assert not is_batch_input(archive / "day2" / "frames")  # one video stored as frames
    assert not is_batch_input(archive / "day1" / "a.avi")
    assert [i.rel for i in discover(str(archive / "**" / "*.avi"))] == [
        "day1/a", "day1/deep/b", "day2/corrupt", "day2/fast_fps", "day2/wrong_fps"]
    listing = archive / "list.txt"
    listing.write_text("# two inputs\nday1/a.avi\n\nday2/frames\n")
    assert [i.rel for i in discover(listing)] == ["day1/a", "day2/frames"]
    listing.write_text("missing.avi\n")
    with pytest.raises(InputError, match="line 1: no such file"):
        discover(listing)
    with pytest.raises(InputError, match="no videos found"):
        discover(archive / "day1" / "deep" / "nothing*.avi")


def test_batch_logs_failures_combines_tables_and_resumes(archive: Path, tmp_path: Path):
    out = tmp_path / "out"
    items = discover(archive)
    first = run_batch(items, out, _spec())
    status = {r["output"]: r["status"] for r in first.records}
    assert status == {"day1/a": "ok", "day1/deep/b": "ok", "day2/frames": "ok",
                      "day2/fast_fps": "ok", "day2/corrupt": "failed", "day2/empty": "failed",
                      "day2/wrong_fps": "failed"}
    log = pd.read_csv(out / "batch_log.csv", keep_default_na=False)
    errors = dict(zip(log["output"], log["error"], strict=True))
    warned = dict(zip(log["output"], log["warnings"], strict=True))
    assert "check the frame rate (500 fps, from container)" in warned["day2/fast_fps"]
    assert "carries no frame rate: assumed 25 fps" in warned["day2/frames"]
    assert warned["day1/a"] == ""
    assert "corrupt" in errors["day2/corrupt"] and "empty" in errors["day2/empty"]
    assert "frame rate" in errors["day2/wrong_fps"] and "--fps" in errors["day2/wrong_fps"]
    assert all("Traceback" not in e for e in errors.values())
    tracks = pd.read_csv(out / "all_tracks.csv")
    assert set(tracks["video"]) == {"a.avi", "b.avi", "frames", "fast_fps.avi"}
    per_file = pd.read_csv(out / "day1" / "deep" / "b" / "tracks.csv")
    assert len(tracks[tracks["video"] == "b.avi"]) == len(per_file) > 0
    summaries = pd.read_csv(out / "all_summaries.csv")
    assert len(summaries) == 7 and set(summaries["status"]) == {"ok", "failed"}
    pd.testing.assert_frame_equal(pd.read_parquet(out / "all_tracks.parquet"), tracks,
                                  check_dtype=False)

    done = out / "day1" / "a" / "tracks.csv"
    before = done.stat().st_mtime_ns
    second = run_batch(items, out, _spec())
    status2 = {r["output"]: r["status"] for r in second.records}
    assert [status2[k] for k in ("day1/a", "day1/deep/b", "day2/frames")] == ["skipped"] * 3
    assert status2["day2/corrupt"] == "failed"  # failures are retried, and fail again
    assert done.stat().st_mtime_ns == before
    pd.testing.assert_frame_equal(pd.read_csv(out / "all_tracks.csv"), tracks)

    _clip(archive / "day1" / "a.avi", 7)  # changed content: redone
    changed = {r["output"]: r["status"] for r in run_batch(items, out, _spec()).records}
    assert changed["day1/a"] == "ok" and changed["day1/deep/b"] == "skipped"
    other = _spec(exports=("mot",))  # changed settings: redone
    assert {r["status"] for r in run_batch(items[:1], out, other).records} == {"ok"}
    assert {r["status"] for r in run_batch(items[:1], out, other, force=True).records} == {"ok"}


def test_half_written_output_is_not_trusted(archive: Path, tmp_path: Path):
    out = tmp_path / "out"
    item = discover(archive / "day1" / "**" / "a.avi")[0]
    assert process_item(item, out, _spec())["status"] == "ok"
    (out / item.rel / "tracks.csv").unlink()  # as if lost after the marker was written
    assert process_item(item, out, _spec())["status"] == "ok"
    marker = json.loads((out / item.rel / DONE_MARKER).read_text())
    (out / item.rel / DONE_MARKER).write_text(json.dumps({**marker, "key": "other"}))
    assert process_item(item, out, _spec())["status"] == "ok"


def test_a_job_runs_with_its_share_of_threads_through_no_environment(
        archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import detect_track.pipeline as pipeline
    from detect_track.ml import set_threads, torch_threads

    seen: list[int] = []
    run_video = pipeline.run_video

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(torch_threads())
        return run_video(*args, **kwargs)

    monkeypatch.setattr(pipeline, "run_video", spy)
    environ = dict(os.environ)
    items = discover(archive / "day1" / "**" / "*.avi")
    assert process_item(items[0], tmp_path / "one", _spec(threads=3))["status"] == "ok"
    assert [r["status"] for r in run_batch(items, tmp_path / "all", _spec()).records] == [
        "ok", "ok"]
    cores = max(1, os.cpu_count() or 1)
    assert seen == [3, cores, cores]  # run_batch: every core shared by its one worker
    assert torch_threads() == cores  # the job's setting ends with the job
    assert dict(os.environ) == environ  # and nothing travelled through the environment
    assert set_threads(2) is None and torch_threads() == 2
    assert set_threads(None) == 2 and torch_threads() == cores
    with pytest.raises(ValueError, match="threads"):
        set_threads(-1)


def test_one_batch_per_output_folder(archive: Path, tmp_path: Path):
    from detect_track.batch import LOCK_FILE

    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_FILE).write_text(str(os.getpid()))  # a live batch holds the folder
    items = discover(archive / "day1" / "**" / "a.avi")
    with pytest.raises(ConfigError, match="another detect-track batch"):
        run_batch(items, out, _spec())
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (out / LOCK_FILE).write_text(dead)  # left by a killed batch: taken over
    (out / ".all_tracks.csv.abc123.tmp").write_text("half")  # and its half-written table
    assert [r["status"] for r in run_batch(items, out, _spec()).records] == ["ok"]
    assert not (out / LOCK_FILE).exists() and not list(out.glob("*.tmp"))


def test_bad_batch_settings():
    with pytest.raises(ConfigError, match="executor"):
        run_batch([], "unused", _spec(), executor="spark")
    with pytest.raises(ConfigError, match="workers"):
        run_batch([], "unused", _spec(), workers=0)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "detect_track.cli", *args]


def test_cli_batch_exit_status_and_kill_minus_9(archive: Path, tmp_path: Path):
    for k in range(4):  # enough work that the kill lands mid-batch
        _clip(archive / "more" / f"c{k}.avi", 10 + k, n=40)
    out = tmp_path / "out"
    args = [str(archive), "--out", str(out), "--um-per-px", "0.7", "--no-report", "-q",
            "--workers", "2", *(f"{k}={v}" for k, v in FAST.items())]
    proc = subprocess.Popen(_cli(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while not list(out.glob(f"**/{DONE_MARKER}")) and time.monotonic() < deadline:
        time.sleep(0.05)
    children = psutil.Process(proc.pid).children(recursive=True)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, "worker processes outlived the killed batch"
    finished = {m.parent: m.read_bytes() for m in out.glob(f"**/{DONE_MARKER}")}
    tracks_before = {d: (d / "tracks.csv").read_bytes() for d in finished}
    assert 0 < len(finished) < 8, "the kill did not land mid-batch"
    r = subprocess.run(_cli(*args), capture_output=True, text=True, timeout=300)
    assert r.returncode == 3, r.stderr  # three inputs are bad
    assert "Traceback" not in r.stderr
    assert "3 failed" in r.stdout and "corrupt.avi" in r.stderr
    log = pd.read_csv(out / "batch_log.csv")
    skipped = {out / o for o in log.loc[log["status"] == "skipped", "output"]}
    assert skipped == set(finished)  # exactly what had finished is not redone
    assert all((d / "tracks.csv").read_bytes() == b for d, b in tracks_before.items())
    assert (log["status"] != "failed").sum() == 8
    assert not list(out.glob("**/*.tmp*"))


@pytest.mark.slow
def test_dask_local_cluster_gives_identical_results(archive: Path, tmp_path: Path):
    items = [i for i in discover(archive) if i.rel in ("day1/a", "day2/frames", "day2/empty")]
    local = run_batch(items, tmp_path / "local", _spec(), workers=2)
    events: list[tuple[str, dict]] = []
    dask = run_batch(items, tmp_path / "dask", _spec(), workers=2, executor="dask",
                     on_event=lambda kind, data: events.append((kind, data)))
    frames_seen = {d["index"]: d["done"] for k, d in events if k == "frames"}
    assert frames_seen == {0: 20, 2: 12}  # frame progress comes back from the workers
    assert [r["status"] for r in dask.records] == [r["status"] for r in local.records] == [
        "ok", "failed", "ok"]
    for name in ("all_tracks.csv", "day1/a/trajectories.csv", "day2/frames/tracks.csv"):
        a = pd.read_csv(tmp_path / "local" / name)
        b = pd.read_csv(tmp_path / "dask" / name)
        pd.testing.assert_frame_equal(a, b)


def test_csv_list_gives_each_input_its_own_scale(archive: Path, tmp_path: Path):
    listing = archive / "plan.csv"
    listing.write_text("path,um_per_px,fps,chamber_depth_um\n"
                       "day1/a.avi,0.35,,20\n"
                       "day1/deep/b.avi,,,\n")
    items = discover(listing)
    assert [i.settings for i in items] == [(("um_per_px", 0.35), ("chamber_depth_um", 20.0)),
                                           ()]
    out = tmp_path / "out"
    assert [r["status"] for r in run_batch(items, out, _spec()).records] == ["ok", "ok"]
    a = json.loads((out / "a" / "summary.json").read_text())
    b = json.loads((out / "deep" / "b" / "summary.json").read_text())
    assert (a["um_per_px"], a["chamber_depth_um"]) == (0.35, 20.0)
    assert a["concentration_million_per_ml"] > 0
    assert (b["um_per_px"], b["chamber_depth_um"]) == (0.7, None)
    listing.write_text("path,um_per_px\nday1/a.avi,fast\n")
    with pytest.raises(InputError, match="line 2: um_per_px must be a number"):
        discover(listing)
    listing.write_text("file\nday1/a.avi\n")
    with pytest.raises(InputError, match="needs a 'path' column"):
        discover(listing)
