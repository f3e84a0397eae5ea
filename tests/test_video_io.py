from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

from detect_track.errors import InputError
from detect_track.io.video import FrameSource
from tests.helpers import render_blobs, write_video


def test_avi(moving_blob_video: Path):
    src = FrameSource(moving_blob_video)
    assert src.info.kind == "video"
    assert src.info.fps == pytest.approx(25.0)
    assert (src.info.width_px, src.info.height_px) == (160, 120)
    frames = list(src)
    assert [i for i, _ in frames] == list(range(30))
    assert frames[0][1].shape == (120, 160) and frames[0][1].ndim == 2
    assert len(list(src)) == 30  # iterating again restarts


def test_image_folder_natural_order(tmp_path: Path):
    for i in (10, 2, 1):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), render_blobs(np.array([[i * 5.0, 20.0]])))
    src = FrameSource(tmp_path)
    assert src.info.kind == "images" and src.info.fps is None and len(src) == 3
    firsts = [int(np.argmax(f[20])) for _, f in src]
    assert firsts == sorted(firsts)


def test_multipage_tiff_16bit(tmp_path: Path):
    stack = np.stack([render_blobs(np.array([[40.0 + i, 30.0]])).astype(np.uint16) * 200
                      for i in range(4)])
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, stack, photometric="minisblack")
    src = FrameSource(path)
    frames = [f for _, f in src]
    assert len(frames) == 4 and frames[0].dtype == np.uint16


def test_colour_video_is_gray(tmp_path: Path):
    f = render_blobs(np.array([[50.0, 50.0]]))
    path = write_video(tmp_path / "c.avi", [f, f])
    _, frame = next(iter(FrameSource(path)))
    assert frame.ndim == 2


@pytest.mark.parametrize("content,msg", [
    (None, "no such file"),
    (b"", "empty"),
    (b"this is not a video at all" * 50, "cannot"),
])
def test_bad_files(tmp_path: Path, content, msg):
    path = tmp_path / "bad.avi"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=msg):
        FrameSource(path)


def test_empty_folder(tmp_path: Path):
    with pytest.raises(InputError, match="no images"):
        FrameSource(tmp_path)
