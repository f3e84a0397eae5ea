"""Fuzzing: random bytes, random detection rows and random YAML never crash, hang or leave
temporary files behind. Each reader either returns or raises a DetectTrackError (one line
on the command line); the ``track`` command exits 0 or 2, never 1 (internal error).
"""

from __future__ import annotations

import string
import tempfile
import time
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from detect_track.errors import DetectTrackError  # noqa: E402

#: Seconds one example may take (a hang shows as a failure, not as a stuck test run).
BOUND_S = 20.0
FUZZ = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

#: Starts of real files, so that the parsers get past their first check.
MAGIC = [b"", b"RIFF\x00\x10\x00\x00AVI LIST", b"\x00\x00\x00\x18ftypmp42",
         b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"II*\x00\x08\x00\x00\x00", b"MM\x00*",
         b"\xff\xd8\xff\xe0", b"BM", b"frame,x_px,y_px\n", b"video:\n  fps: "]


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp") or ".tmp." in p.name
            or p.name.endswith(".lock")]


def _bounded(started: float) -> None:
    assert time.perf_counter() - started < BOUND_S


@FUZZ
@given(magic=st.sampled_from(MAGIC), body=st.binary(max_size=3000),
       suffix=st.sampled_from([".avi", ".mp4", ".png", ".tif", ".jpg", ".txt", ".csv"]))
def test_random_bytes_to_the_readers(magic: bytes, body: bytes, suffix: str):
    from detect_track.batch import discover, is_batch_input
    from detect_track.io.detections import read_detections
    from detect_track.io.video import FrameSource
    from detect_track.stills import read_image

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"input{suffix}"
        path.write_bytes(magic + body)
        started = time.perf_counter()
        for read in (lambda: list(FrameSource(path)), lambda: read_image(path),
                     lambda: read_detections(path),
                     lambda: discover(path) if is_batch_input(path) else None):
            try:
                read()
            except DetectTrackError as exc:
                assert "\n" not in str(exc).strip() or suffix == ".csv"
        _bounded(started)
        assert _leftovers(Path(tmp)) == []


_numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 300),
                     st.integers(), st.sampled_from(["", "nan", "x", "1e9", "-0", "=1+2"]))
_rows = st.lists(st.tuples(st.one_of(st.integers(0, 60), _numbers),
                           st.one_of(st.floats(0, 300), _numbers),
                           st.one_of(st.floats(0, 300), _numbers),
                           st.one_of(st.floats(0.5, 20), _numbers),
                           st.floats(0, 1), st.text(max_size=12)),
                 max_size=60)


@FUZZ
@given(rows=_rows, columns=st.sampled_from([
    ("frame", "x_px", "y_px"), ("frame", "x_px", "y_px", "w_px", "h_px"),
    ("frame", "x_px", "y_px", "w_px", "h_px", "confidence", "class_name"),
    ("frame", "x", "y"), ("t", "x_px", "y_px", "class_name")]))
def test_random_rows_to_the_track_command(rows: list[tuple[object, ...]],
                                          columns: tuple[str, ...]):
    import csv
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from detect_track.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dets.csv"
        with open(path, "w", newline="", encoding="utf-8", errors="replace") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            writer.writerows(r[:len(columns)] for r in rows)
        err = io.StringIO()
        started = time.perf_counter()
        with redirect_stderr(err), redirect_stdout(io.StringIO()):
            code = main(["track", str(path), "--fps", "25", "--um-per-px", "0.5", "--out",
                         str(Path(tmp) / "out"), "-q", "tracker.min_track_s=0"])
        _bounded(started)
        assert code in (0, 2), err.getvalue()
        assert "internal error" not in err.getvalue()
        if code == 2:
            assert len(err.getvalue().strip().splitlines()) == 1
        assert _leftovers(Path(tmp)) == []


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                     st.text(string.printable, max_size=20))
_yaml_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(string.ascii_lowercase + "._",
                                                         max_size=12), inner, max_size=4)),
    max_leaves=20)
_keys = st.sampled_from(["video", "tracker", "detector", "motility", "morphology", "still",
                         "kinematics", "nonsense"])


@FUZZ
@given(data=st.dictionaries(_keys, _yaml_values, max_size=4), noise=st.text(max_size=200),
       raw=st.booleans())
def test_random_yaml_to_the_config_reader(data: dict[str, object], noise: str, raw: bool):
    import yaml

    from detect_track.config import Config, load_config

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(noise if raw else yaml.safe_dump(data), encoding="utf-8")
        started = time.perf_counter()
        try:
            assert isinstance(load_config(str(path)), Config)
        except DetectTrackError:
            pass
        _bounded(started)
