"""Shared fixtures: tiny hand-built frames and videos."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests.helpers import render_blobs, write_video  # noqa: E402


@pytest.fixture
def moving_blob_video(tmp_path: Path) -> Path:
    """A 30-frame video: one blob moving right 1 px/frame, one still blob."""
    frames = [render_blobs(np.array([[30 + i, 40], [120, 90]]), seed=i) for i in range(30)]
    return write_video(tmp_path / "two_cells.avi", frames, fps=25.0)
