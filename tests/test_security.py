"""Security: no model file runs code, no CSV cell runs a formula, no input exhausts memory.

Every attack is built here, in tmp_path, small; the payloads only create a marker file,
whose absence shows they did not run.
"""

from __future__ import annotations

import csv
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detect_track.cli import main
from detect_track.config import load_config
from detect_track.errors import ConfigError, InputError
from detect_track.io.export import escape_cell, escape_formulas, write_csv
from tests.helpers import render_blobs, write_video

CLASSICAL = ["--detector", "classical", "--no-morphology", "-q", "--um-per-px", "0.7",
             "tracker.min_track_s=0.2"]


def _one_error_line(err: str, needle: str) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert needle.lower() in err.lower(), err


# -- model files -------------------------------------------------------------------------------
class _Payload:
    """Unpickling this creates ``marker``: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


@pytest.fixture
def evil_pt(tmp_path: Path) -> tuple[Path, Path]:
    torch = pytest.importorskip("torch")
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    torch.save({"format": "detect-track-morphology/1", "payload": _Payload(marker)}, path)
    return path, marker


def test_morphology_model_cannot_run_code(evil_pt):
    from detect_track.morphology.classifier import MorphologyClassifier

    path, marker = evil_pt
    with pytest.raises(ConfigError, match="not a readable model file"):
        MorphologyClassifier(path)
    assert not marker.exists()


@pytest.mark.parametrize("argv", [
    ["detector.yolo.weights={evil}", "--backend", "torch"],
    ["--detector", "effdet", "detector.effdet.weights={evil}"],
    ["--detector", "classical", "morphology.weights={evil}", "--backend", "torch"],
])
def test_run_with_a_malicious_checkpoint_runs_nothing(evil_pt, moving_blob_video: Path,
                                                      tmp_path: Path, argv: list[str],
                                                      capsys: pytest.CaptureFixture[str]):
    path, marker = evil_pt
    argv = [a.format(evil=path) for a in argv]
    code = main([str(moving_blob_video), "--out", str(tmp_path / "o"), "-q", *argv])
    assert code == 2
    assert not marker.exists()
    _one_error_line(capsys.readouterr().err, str(path.name))


def test_export_and_train_init_refuse_untrusted_pickles(evil_pt, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]):
    path, marker = evil_pt
    assert main(["export", "onnx", str(path)]) == 2
    _one_error_line(capsys.readouterr().err, "--trust-model")
    assert main(["train", "yolo", str(tmp_path / "data.yaml"), "--out", str(tmp_path / "r"),
                 "--init", str(path)]) == 2
    _one_error_line(capsys.readouterr().err, "--trust-model")
    assert main(["morphology", "predict", str(path), str(tmp_path)]) == 2
    _one_error_line(capsys.readouterr().err, "not a readable model file")
    assert not marker.exists()
    assert not (tmp_path / "evil.onnx").exists()


def test_only_shipped_weights_or_an_opt_in_are_unpickled(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch):
    from detect_track.trust import SHIPPED_WEIGHTS, TRUST_ENV, is_trusted, require_trusted

    monkeypatch.delenv(TRUST_ENV, raising=False)
    monkeypatch.delenv("DETECT_TRACK_WEIGHTS", raising=False)
    own = tmp_path / "mine.pt"
    own.write_bytes(b"x")
    assert is_trusted(SHIPPED_WEIGHTS / "yolo-sperm.pt")
    assert not is_trusted(own)
    assert not is_trusted(tmp_path / "weights" / ".." / "mine.pt")
    link = tmp_path / "link.pt"  # a link out of weights/ is judged by where it points
    link.symlink_to(own)
    assert not is_trusted(link)
    with pytest.raises(ConfigError, match="--trust-model"):
        require_trusted(own, "YOLO checkpoint")
    monkeypatch.setenv("DETECT_TRACK_WEIGHTS", str(tmp_path))  # a folder the user named
    assert is_trusted(own)
    monkeypatch.delenv("DETECT_TRACK_WEIGHTS")
    monkeypatch.setenv(TRUST_ENV, "1")  # --trust-model
    assert is_trusted(own)


def test_trust_model_flag_holds_for_one_command_only(moving_blob_video: Path, tmp_path: Path):
    import os

    from detect_track.trust import TRUST_ENV

    before = os.environ.get(TRUST_ENV)
    assert main([str(moving_blob_video), "--out", str(tmp_path / "o"), "--trust-model",
                 *CLASSICAL]) == 0
    assert os.environ.get(TRUST_ENV) == before


def test_shipped_checkpoints_load_with_weights_only():
    torch = pytest.importorskip("torch")
    from detect_track.trust import SHIPPED_WEIGHTS

    for name in ("head-shape-synth.pt", "sperm-verifier.pt", "effdet-sperm.pt"):
        if (SHIPPED_WEIGHTS / name).is_file():
            ckpt = torch.load(SHIPPED_WEIGHTS / name, map_location="cpu", weights_only=True)
            assert isinstance(ckpt, dict) and "format" in ckpt


# -- formula injection -------------------------------------------------------------------------
def test_escape_cell_only_touches_text_that_a_spreadsheet_would_run():
    for text in ("=1+2", "+cmd", "-2+3", "@SUM(A1)", "\t=x", "\r=x", "=HYPERLINK(\"x\")",
                 "\n=1", "\uff1d1+2"):
        assert escape_cell(text) == "'" + text
    for value in ("-1.5", "+2", "-1e-3", "sperm", "", "a=b", -1.5, -3, None, np.float64(-2.0)):
        assert escape_cell(value) is value
    df = pd.DataFrame({"x_px": [-1.5, 2.0], "n": [-3, 4], "name": ["=1+2", "ok"],
                       "=col": ["-5", "-x"]})
    safe = escape_formulas(df)
    assert safe["x_px"].tolist() == [-1.5, 2.0] and safe["n"].tolist() == [-3, 4]
    assert safe["name"].tolist() == ["'=1+2", "ok"]
    assert safe["'=col"].tolist() == ["-5", "'-x"]
    assert df["name"].tolist() == ["=1+2", "ok"]  # the input is left alone


def _cells(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [c for row in csv.reader(fh) for c in row]


def _assert_no_formula(path: Path) -> None:
    for cell in _cells(path):
        if cell[:1] in ("=", "+", "-", "@"):
            float(cell)  # only a plain number may start like a formula


def test_video_named_like_a_formula_is_escaped_in_every_table(moving_blob_video: Path,
                                                              tmp_path: Path):
    archive = tmp_path / "archive"
    archive.mkdir()
    evil = archive / "=1+2.avi"
    evil.write_bytes(moving_blob_video.read_bytes())
    (archive / "@cmd.avi").write_bytes(moving_blob_video.read_bytes())
    out = tmp_path / "out"
    assert main([str(archive), "--out", str(out), *CLASSICAL]) == 0
    tables = sorted(out.rglob("*.csv"))
    assert {p.name for p in tables} >= {"batch_log.csv", "all_summaries.csv", "all_tracks.csv",
                                        "trajectories.csv", "tracks.csv"}
    for table in tables:
        _assert_no_formula(table)
    assert "'=1+2.avi" in _cells(out / "all_tracks.csv")
    traj = pd.read_csv(out / "=1+2" / "trajectories.csv")
    assert (traj["x_px"] > 0).all() and traj["x_px"].dtype == float  # numbers stay numbers
    single = tmp_path / "single"
    assert main([str(evil), "--out", str(single), *CLASSICAL]) == 0
    for table in single.glob("*.csv"):
        _assert_no_formula(table)


def test_negative_numbers_stay_numbers(tmp_path: Path):
    path = write_csv(pd.DataFrame({"v": [-1.25, 3.0], "s": ["-4", "=A1"]}), tmp_path / "t.csv")
    back = pd.read_csv(path)
    assert back["v"].tolist() == [-1.25, 3.0]
    assert back["s"].tolist() == ["-4", "'=A1"]


# -- resource bombs ----------------------------------------------------------------------------
BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
tracker: {name: *i}
"""


@pytest.mark.parametrize("text,needle", [
    (BILLION_LAUGHS, "expands to more than"),
    ("video: &v {fps: 10, again: *v}\n", "recursive alias"),
    ("tracker: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ("# padding\n" * 200_000, "larger than"),
    ("tracker:\n  name: " + "x" * 10_000 + "\n", "longer than"),
])
def test_yaml_bombs_are_refused_quickly(tmp_path: Path, text: str, needle: str):
    path = tmp_path / "shared.yaml"
    path.write_text(text)
    started = time.process_time()  # CPU time: a loaded machine must not fail the check
    with pytest.raises(ConfigError, match=needle):
        load_config(str(path))
    assert time.process_time() - started < 5  # a bomb that expanded would take minutes


def test_yaml_bomb_in_an_override_is_refused(moving_blob_video: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]):
    value = "[" * 3000 + "]" * 3000
    assert main([str(moving_blob_video), "--out", str(tmp_path / "o"),
                 f"tracker.max_gap_s={value}", *CLASSICAL]) == 2
    _one_error_line(capsys.readouterr().err, "tracker.max_gap_s")


def test_plain_anchors_still_work(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("tracker: {max_gap_s: &g 0.6, min_track_s: *g}\n")
    cfg = load_config(str(path))
    assert cfg.tracker.max_gap_s == cfg.tracker.min_track_s == 0.6


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width x height`` (8-bit gray); the data is one row."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\0" * (width + 1)))
                     + chunk(b"IEND", b""))
    return path


def test_huge_image_is_refused_before_decoding(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        _png_header(frames / f"{i:03d}.png", 20000, 20000)
    code = main([str(frames), "--fps", "25", "--out", str(tmp_path / "o"), *CLASSICAL])
    assert code == 2
    _one_error_line(capsys.readouterr().err, "video.max_pixels")
    assert not (tmp_path / "o").exists()  # nothing left of a refused run
    slide = _png_header(tmp_path / "slide.png", 20000, 20000)
    code = main([str(slide), "--config", "sperm-slide", "--out", str(tmp_path / "s"), "-q",
                 "--um-per-px", "0.1"])
    assert code == 3
    assert "video.max_pixels" in capsys.readouterr().err


def test_pixel_limit_is_a_setting(tmp_path: Path):
    from detect_track.io.video import FrameSource

    frames = [render_blobs(np.array([[30.0 + i, 40.0]]), seed=i) for i in range(3)]
    video = write_video(tmp_path / "v.avi", frames)
    assert FrameSource(video).info.n_frames == 3
    with pytest.raises(InputError, match="video.max_pixels"):
        FrameSource(video, max_pixels=100)
    folder = tmp_path / "frames"
    folder.mkdir()
    import cv2

    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i}.png"), f)
    with pytest.raises(InputError, match="video.max_pixels"):
        FrameSource(folder, max_pixels=100)
    with pytest.raises(ConfigError, match="max_pixels"):
        load_config(None, {"video.max_pixels": 0})


def test_long_strings_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from detect_track.io.detections import read_detections

    rows = pd.DataFrame({"frame": [0, 1], "x_px": [10.0, 11.0], "y_px": [10.0, 10.0],
                         "class_name": ["x" * 1_000_000, "sperm"]})
    path = tmp_path / "dets.csv"
    rows.to_csv(path, index=False)
    with pytest.raises(InputError, match="class_name"):
        read_detections(path)
    many = pd.DataFrame({"frame": np.arange(500) % 5, "x_px": 10.0, "y_px": 10.0,
                         "class_name": [f"c{i}" for i in range(500)]})
    many.to_csv(path, index=False)
    with pytest.raises(InputError, match="class names"):
        read_detections(path)
    assert main(["track", str(path), "--fps", "50", "--um-per-px", "0.5",
                 "--out", str(tmp_path / "o"), "-q"]) == 2
    _one_error_line(capsys.readouterr().err, "class names")
    assert not (tmp_path / "o").exists()


def test_dataset_yaml_cannot_run_a_download_script(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]):
    marker = tmp_path / "PWNED"
    data = tmp_path / "data.yaml"
    data.write_text(f"path: {tmp_path}\ntrain: images/train\nval: missing/val\n"
                    f"names: {{0: sperm}}\ndownload: open({str(marker)!r}, 'w')\n")
    assert main(["train", "yolo", str(data), "--out", str(tmp_path / "run"), "--resize",
                 "--epochs", "1"]) == 2
    _one_error_line(capsys.readouterr().err, "download")
    assert not marker.exists()
