"""Inputs a careful tester tries: odd names, huge frame numbers, silent servers, signals,
compressed TIFF stacks. Each must end in a correct result or in one clear line on stderr,
a non-zero exit and nothing left behind that a rerun would trust.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from detect_track.cli import main
from detect_track.config import load_config
from detect_track.errors import ConfigError, InputError
from detect_track.io.video import FrameSource, avi_states_frame_rate
from tests.helpers import render_blobs, write_video

CLASSICAL = ["--detector", "classical", "--no-morphology", "-q", "--um-per-px", "0.7",
             "tracker.min_track_s=0.2"]
BAD_NAME = os.fsdecode(b"bad\xff\xfename")  # not UTF-8: common on Windows / SMB archives


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 120
            ) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-m", "detect_track.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, errors="replace")


def one_line(err: str, needle: str) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and needle.lower() in err.lower(), err


def no_temporaries(folder: Path) -> None:
    left = [p for p in folder.rglob("*") if p.name.endswith(".tmp") or ".tmp." in p.name]
    assert not left, left


# -- crashes and hangs -------------------------------------------------------------------------
def test_video_whose_name_is_not_utf8(moving_blob_video: Path, tmp_path: Path):
    video = tmp_path / f"{BAD_NAME}.avi"
    video.write_bytes(moving_blob_video.read_bytes())
    r = run_cli(str(video), *CLASSICAL, "--overlay", cwd=tmp_path)  # a crash would be -11
    assert r.returncode == 0, r.stderr
    out = tmp_path / "results" / "bad\ufffd\ufffdname"
    summary = (out / "summary.json").read_text(encoding="utf-8")
    assert "bad\ufffd\ufffdname.avi" in summary
    assert pd.read_csv(out / "trajectories.csv")["video"].eq("bad\ufffd\ufffdname.avi").all()
    assert (out / "overlay.mp4").is_file()


def test_batch_with_a_name_that_is_not_utf8(moving_blob_video: Path, tmp_path: Path):
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / f"{BAD_NAME}.avi").write_bytes(moving_blob_video.read_bytes())
    (archive / "good.avi").write_bytes(moving_blob_video.read_bytes())
    frames = archive / BAD_NAME  # a folder of frames with odd names too
    frames.mkdir()
    for i in range(5):
        cv2.imwrite(str(tmp_path / "f.png"), render_blobs(np.array([[30.0 + i, 40.0]])))
        (tmp_path / "f.png").rename(frames / os.fsdecode(b"\xe9" + f"{i:03d}.png".encode()))
    out = tmp_path / "out"
    r = run_cli(str(archive), "--out", str(out), "--fps", "25", *CLASSICAL)
    assert r.returncode == 0, r.stderr
    log = pd.read_csv(out / "batch_log.csv")
    assert log["status"].eq("ok").all() and len(log) == 3


def test_track_refuses_absurd_frame_numbers_fast(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]):
    for frame in ("1e9", "1e12"):
        path = tmp_path / f"dets_{frame}.csv"
        path.write_text(f"frame,x_px,y_px\n0,10,10\n{frame},11,10\n")
        out = tmp_path / f"o_{frame}"
        started = time.perf_counter()
        assert main(["track", str(path), "--fps", "50", "--um-per-px", "0.5", "--out",
                     str(out), "-q"]) == 2
        assert time.perf_counter() - started < 10
        one_line(capsys.readouterr().err, "frame")
        assert not out.exists()
    path.write_text("frame,x_px,y_px\n0,10,10\n1,11,10\n")
    assert main(["track", str(path), "--fps", "50", "--um-per-px", "0.5", "--n-frames",
                 "1000000000000", "--out", str(tmp_path / "n"), "-q"]) == 2
    one_line(capsys.readouterr().err, "--n-frames")


def test_track_leaves_no_temporary_file_when_it_fails(tmp_path: Path):
    from detect_track.pipeline import track_detections

    table = pd.DataFrame({"frame": [0, 1], "x_px": [1.0, 2.0], "y_px": [1.0, 1.0]})
    with pytest.raises(ConfigError):
        track_detections(table, fps=50.0, um_per_px=0.5, trajectories_csv=tmp_path / "t.csv",
                         cfg=None, n_frames=2, progress=_raise_config_error)
    assert list(tmp_path.iterdir()) == []


def _raise_config_error(done: int, total: int) -> None:
    raise ConfigError("stop")


class _FakeServer:
    """A TCP server that is not a Dask scheduler: silent, or answering garbage."""

    def __init__(self, reply: bytes) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.reply = reply
        self.conns: list[socket.socket] = []
        self.address = f"tcp://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if self.reply:
                try:
                    conn.sendall(self.reply)
                except OSError:
                    pass

    def close(self) -> None:
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.mark.parametrize("reply,needle", [(b"", "no dask scheduler answered"),
                                          (b"\xff" * 64 + b"HTTP/1.1 200 OK\r\n\r\n",
                                           "did not answer as a dask scheduler")])
def test_dask_address_that_is_not_a_scheduler(moving_blob_video: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str],
                                              reply: bytes, needle: str):
    pytest.importorskip("distributed")
    from detect_track.batch import executors

    monkeypatch.setattr(executors, "DASK_CONNECT_S", 1.0)
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "a.avi").write_bytes(moving_blob_video.read_bytes())
    server = _FakeServer(reply)
    try:
        started = time.perf_counter()
        code = main([str(archive), "--out", str(tmp_path / "out"), "--executor", "dask",
                     "--dask-address", server.address, *CLASSICAL])
        assert time.perf_counter() - started < 30
    finally:
        server.close()
    assert code == 2
    one_line(capsys.readouterr().err, needle)
    assert not (tmp_path / "out").exists()  # no lock, no empty folder left


def test_resource_forks_in_a_frame_folder_are_ignored(tmp_path: Path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(6):
        cv2.imwrite(str(folder / f"{i:03d}.png"), render_blobs(np.array([[30.0 + i, 40.0]])))
    (folder / "._000.png").write_bytes(b"\x00\x05\x16\x07" + b"\x00" * 60)  # AppleDouble
    (folder / ".DS_Store").write_bytes(b"\x00" * 16)
    assert FrameSource(folder).info.n_frames == 6
    out = tmp_path / "out"
    assert main([str(folder), "--fps", "25", "--out", str(out), *CLASSICAL]) == 0
    assert (out / "tracks.csv").is_file()
    batch = tmp_path / "batch"
    assert main([str(tmp_path), "--batch", "--fps", "25", "--out", str(batch),
                 *CLASSICAL]) == 0
    assert pd.read_csv(batch / "batch_log.csv")["status"].eq("ok").all()


# -- silent wrong results ----------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_float_tiff_with_nan_or_inf_is_refused(tmp_path: Path, bad: float):
    tifffile = pytest.importorskip("tifffile")
    stack = np.stack([render_blobs(np.array([[30.0 + i, 40.0]]), seed=i).astype(np.float32)
                      for i in range(6)])
    stack[2, 10:20, 10:20] = bad
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, stack)
    with pytest.raises(InputError, match="NaN or infinite"):
        list(FrameSource(path))
    stack[0, 0, 0] = bad
    tifffile.imwrite(path, stack)
    with pytest.raises(InputError, match="NaN or infinite"):
        FrameSource(path)


@pytest.mark.parametrize("value", ["1e-9", "0.001", "1e9", "nan"])
def test_um_per_px_must_be_plausible(moving_blob_video: Path, tmp_path: Path, value: str):
    r = run_cli(str(moving_blob_video), "--out", str(tmp_path / "o"), "--um-per-px", value,
                "--detector", "classical")
    one_line(r.stderr, "--um-per-px")
    assert r.returncode == 2
    with pytest.raises(ConfigError, match="um_per_px"):
        load_config(None, {"video.um_per_px": float(value)})


def _patch_avi_rate(src: Path, dst: Path, rate: int) -> Path:
    data = bytearray(src.read_bytes())
    strh = data.find(b"strh")
    assert data[strh + 8:strh + 12] == b"vids"
    data[strh + 32:strh + 36] = struct.pack("<I", rate)  # dwRate (dwScale is at +28)
    avih = data.find(b"avih")
    data[avih + 8:avih + 12] = struct.pack("<I", 0)  # dwMicroSecPerFrame
    dst.write_bytes(bytes(data))
    return dst


def test_avi_without_a_frame_rate_is_not_reported_as_25_fps(moving_blob_video: Path,
                                                            tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]):
    assert avi_states_frame_rate(moving_blob_video) is True
    zero = _patch_avi_rate(moving_blob_video, tmp_path / "zero.avi", 0)
    assert avi_states_frame_rate(zero) is False
    assert avi_states_frame_rate(tmp_path / "nothing.avi") is None
    src = FrameSource(zero)
    assert src.info.fps is None and src.info.n_frames == 30
    assert main([str(zero), "--out", str(tmp_path / "o"), *CLASSICAL]) == 2
    one_line(capsys.readouterr().err, "--fps")
    assert main([str(zero), "--out", str(tmp_path / "o"), "--fps", "50", *CLASSICAL]) == 0
    import json

    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["fps"] == 50 and summary["fps_source"] == "cli"


# -- signals and leftovers ---------------------------------------------------------------------
def _long_video(path: Path, n: int = 1500) -> Path:
    rng = np.random.default_rng(0)
    frames = []
    for i in range(n):
        centres = np.array([[20 + (i % 120), 30], [80, 20 + (i % 80)], [140, 100]], float)
        img = render_blobs(centres, seed=i % 7)
        frames.append(np.clip(img + rng.normal(0, 1, img.shape), 0, 255).astype(np.uint8))
    return write_video(path, frames)


def _start_until_writing(args: list[str], out: Path, pattern: str,
                         timeout_s: float) -> subprocess.Popen[str]:
    """Start ``detect-track ARGS`` and return once a file matching ``pattern`` under ``out``
    is being written (a half-written temporary), so that a signal lands mid-run."""
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-m", "detect_track.cli", *args],
                            env={**os.environ, "PYTHONPATH": str(root)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if list(out.glob(pattern)):
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be terminated"
    return proc


def test_sigterm_cleans_up_and_exits_143(tmp_path: Path):
    video = _long_video(tmp_path / "long.avi")
    out = tmp_path / "out"
    proc = _start_until_writing([str(video), "--out", str(out), "--overlay", *CLASSICAL], out,
                                ".trajectories.csv.*.tmp", 60)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    one_line(err, "terminated")
    no_temporaries(tmp_path)
    assert not (out / ".detect-track-batch.lock").exists()
    assert not (out / "trajectories.csv").exists()


def test_single_run_removes_what_a_killed_run_left(moving_blob_video: Path, tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    for name in (".trajectories.csv.k3j2.tmp", ".tracks.csv.x9.tmp", "overlay.ab12.tmp.mp4"):
        (out / name).write_bytes(b"half")
    (out / "notes.txt").write_text("mine")
    assert main([str(moving_blob_video), "--out", str(out), *CLASSICAL]) == 0
    no_temporaries(out)
    assert (out / "notes.txt").read_text() == "mine"


def test_a_running_job_holds_its_output_folder(moving_blob_video: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]):
    from detect_track.batch import LOCK_FILE

    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_FILE).write_text(str(os.getpid()))  # this process: alive
    assert main([str(moving_blob_video), "--out", str(out), *CLASSICAL]) == 2
    one_line(capsys.readouterr().err, "another detect-track run")


def test_missing_input_leaves_no_folder(tmp_path: Path):
    r = run_cli("nonexist.avi", cwd=tmp_path)
    one_line(r.stderr, "no such file")
    assert not (tmp_path / "results").exists()
    r = run_cli("nonexist/", "--batch", "--out", "o", cwd=tmp_path)
    one_line(r.stderr, "no such file")
    assert not (tmp_path / "o").exists()


# -- inputs that should work -------------------------------------------------------------------
@pytest.mark.parametrize("compression", [None, "lzw", "zlib"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_compressed_tiff_stacks(tmp_path: Path, compression: str | None, dtype: type):
    tifffile = pytest.importorskip("tifffile")
    scale = 1 if dtype == np.uint8 else 200
    stack = np.stack([render_blobs(np.array([[30.0 + i, 40.0]]), seed=i).astype(dtype) * scale
                      for i in range(5)])
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, stack, compression=compression)
    src = FrameSource(path)
    assert src.info.n_frames == 5
    frames = [f for _, f in src]
    np.testing.assert_array_equal(np.stack(frames), stack)


def test_opencv_lzw_multipage_tiff_runs(tmp_path: Path):
    frames = [render_blobs(np.array([[30.0 + i, 40.0], [120, 90]]), seed=i) for i in range(20)]
    path = tmp_path / "cv.tif"
    assert cv2.imwritemulti(str(path), frames)  # OpenCV writes LZW
    out = tmp_path / "out"
    assert main([str(path), "--fps", "25", "--out", str(out), *CLASSICAL]) == 0
    assert len(pd.read_csv(out / "tracks.csv")) == 2


def test_video_with_a_txt_extension(moving_blob_video: Path, tmp_path: Path):
    video = tmp_path / "clip.txt"
    video.write_bytes(moving_blob_video.read_bytes())
    out = tmp_path / "out"
    assert main([str(video), "--out", str(out), *CLASSICAL]) == 0
    assert (out / "tracks.csv").is_file()


def test_header_only_avi_and_bad_numbers_give_one_line(moving_blob_video: Path,
                                                       tmp_path: Path):
    data = moving_blob_video.read_bytes()
    header = tmp_path / "header.avi"
    header.write_bytes(data[:data.find(b"strf") + 100])
    one_line(run_cli(str(header), "--out", str(tmp_path / "o")).stderr, "cannot")
    one_line(run_cli(str(moving_blob_video), "--fps", "abc").stderr, "--fps")
    one_line(run_cli("track", str(header), "--fps", "x", "--um-per-px", "1").stderr, "--fps")


def test_file_name_starting_with_a_dash(moving_blob_video: Path, tmp_path: Path):
    (tmp_path / "-x.avi").write_bytes(moving_blob_video.read_bytes())
    r = run_cli("--out", "o", *CLASSICAL, "--", "-x.avi", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o" / "tracks.csv").is_file()
    r = run_cli("--out", "o2", "--", "-missing.avi", cwd=tmp_path)
    one_line(r.stderr, "no such file")


# -- pipes, devices, absurd numbers ------------------------------------------------------------
def test_pipes_and_devices_are_not_read_for_ever(moving_blob_video: Path, tmp_path: Path):
    fifo = tmp_path / "dets.csv"
    os.mkfifo(fifo)
    r = run_cli("track", str(fifo), "--fps", "50", "--um-per-px", "0.5", "--out",
                str(tmp_path / "o"), timeout=60)
    one_line(r.stderr, "not a regular file")
    archive = tmp_path / "archive"
    archive.mkdir()
    os.mkfifo(archive / "stuck.avi")
    (archive / "good.avi").write_bytes(moving_blob_video.read_bytes())
    out = tmp_path / "out"
    r = run_cli(str(archive), "--out", str(out), *CLASSICAL, timeout=90)
    assert r.returncode == 3, r.stderr
    log = pd.read_csv(out / "batch_log.csv").set_index("output")
    assert log.loc["good", "status"] == "ok" and log.loc["stuck", "status"] == "failed"


@pytest.mark.parametrize("key", ["tracker.gate_sigma", "tracker.max_gap_s",
                                 "kinematics.smoothing_window_frames"])
def test_absurd_numbers_in_settings_are_refused(key: str):
    with pytest.raises(ConfigError, match=key):
        load_config(None, {key: "1.0e+300"})


@pytest.mark.slow
def test_sigterm_stops_a_parallel_batch_promptly(tmp_path: Path):
    archive = tmp_path / "archive"
    archive.mkdir()
    first = _long_video(archive / "a.avi")
    for name in ("b", "c", "d"):
        (archive / f"{name}.avi").write_bytes(first.read_bytes())
    out = tmp_path / "out"
    proc = _start_until_writing([str(archive), "--out", str(out), "--workers", "2", *CLASSICAL],
                                out, "*/.trajectories.csv.*.tmp", 90)
    proc.send_signal(signal.SIGTERM)
    stopped = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - stopped < 20  # the workers do not finish their videos first
    assert proc.returncode == 143, err
    one_line(err, "terminated")
    no_temporaries(out)
    assert not (out / ".detect-track-batch.lock").exists()


@pytest.mark.parametrize("args", [["--width", "200000", "--height", "200000"],
                                  ["--duration-s", "1e7"], ["--n-cells", "100000000"]])
def test_synth_refuses_sizes_that_would_fill_the_memory(tmp_path: Path, args: list[str],
                                                        capsys: pytest.CaptureFixture[str]):
    assert main(["synth", str(tmp_path / "sim"), "-q", *args]) == 2
    one_line(capsys.readouterr().err, "synth")
    assert not (tmp_path / "sim").exists()


def test_garbage_model_and_overlong_names_give_one_line(moving_blob_video: Path,
                                                        tmp_path: Path):
    garbage = tmp_path / "model.onnx"
    garbage.write_bytes(os.urandom(4096).replace(b"\x08", b"\x09", 1))
    r = run_cli(str(moving_blob_video), "--out", str(tmp_path / "o"), "-q",
                f"detector.yolo.weights={garbage}")
    one_line(r.stderr, "model.onnx")
    r = run_cli("a" * 5000 + ".avi", cwd=tmp_path)
    one_line(r.stderr, "too long")
    assert r.returncode == 2
    r = run_cli(str(moving_blob_video), "--out", "b" * 5000, cwd=tmp_path)
    one_line(r.stderr, "too long")


def test_tiff_stack_with_pages_of_different_sizes(tmp_path: Path):
    tifffile = pytest.importorskip("tifffile")
    path = tmp_path / "mixed.tif"
    with tifffile.TiffWriter(path) as tif:
        for shape in ((120, 160), (120, 160), (60, 80)):
            tif.write(np.zeros(shape, np.uint8))
    with pytest.raises(InputError, match="frame 2 .* has size"):
        list(FrameSource(path))
