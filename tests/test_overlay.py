"""Overlay video: frames, colours, trails, untouched background, strip legend, codecs, errors,
atomic output."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from detect_track.errors import ConfigError, InputError
from detect_track.report import MOTILITY_COLOURS
from detect_track.report.overlay import available_codecs, write_overlay, write_overlay_video
from detect_track.report.overlay_renderer import OverlayRenderer, choose_scale_bar_um
from tests.helpers import render_blobs, write_video

W, H, N_FRAMES, N_TRACKED, FPS = 320, 240, 20, 15, 25.0
STILL = (200.0, 170.0)  # the immotile cell
INTERPOLATED_FRAME = 7  # the immotile cell's row in this frame is interpolated


def moving(frame: int) -> tuple[float, float]:
    """Centre of the progressive cell: 6 px/frame to the right along y = 130."""
    return 60.0 + 6.0 * frame, 130.0


def make_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for f in range(N_TRACKED):
        for tid, (x, y) in ((1, moving(f)), (2, STILL)):
            rows.append({"video": "cells.avi", "frame": f, "time_s": f / FPS, "track_id": tid,
                         "x_px": x, "y_px": y, "x_um": x * 0.5, "y_um": y * 0.5, "w_px": 8.0,
                         "h_px": 6.0, "class_name": "sperm", "confidence": 0.9,
                         "interpolated": tid == 2 and f == INTERPOLATED_FRAME})
    tracks = pd.DataFrame({"track_id": [1, 2], "motility": ["progressive", "immotile"],
                           "who_grade": ["a", "d"], "vcl_um_s": [75.0, 0.0]})
    return pd.DataFrame(rows), tracks


@pytest.fixture
def cells_video(tmp_path: Path) -> Path:
    """20 frames of 320x240: cells in frames 0-14, empty background in frames 15-19."""
    gone = (-50.0, -50.0)
    frames = [render_blobs(np.array([moving(f) if f < N_TRACKED else gone,
                                     STILL if f < N_TRACKED else gone]),
                           shape=(H, W), seed=f) for f in range(N_FRAMES)]
    return write_video(tmp_path / "cells.avi", frames, fps=FPS)


def read_all(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def hue_of(hex_colour: str) -> int:
    rgb = [int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]
    return int(cv2.cvtColor(np.uint8([[rgb[::-1]]]), cv2.COLOR_BGR2HSV)[0, 0, 0])


def test_overlay_video_boxes_trail_and_background(cells_video: Path, tmp_path: Path) -> None:
    trajectories, tracks = make_tables()
    out_dir = tmp_path / "out"
    calls: list[tuple[int, int]] = []
    written = write_overlay(cells_video, trajectories, tracks, out_dir / "overlay.mp4", fps=FPS,
                            um_per_px=0.5, trail_s=0.4,
                            progress=lambda done, total: calls.append((done, total)))

    assert written.exists() and written.suffix in (".mp4", ".webm", ".avi")
    assert sorted(p.name for p in out_dir.iterdir()) == [written.name]  # no temp file left
    assert calls[-1] == (N_FRAMES, N_FRAMES) and len(calls) == N_FRAMES
    out = read_all(written)
    src = read_all(cells_video)
    assert len(out) == N_FRAMES
    strip_h = out[0].shape[0] - H  # legend, time and scale bar: a strip above the frame
    assert 20 <= strip_h <= 120 and out[0].shape[0] % 2 == 0
    assert all(f.shape == (H + strip_h, W, 3) for f in out)

    # Late frame: the label above the progressive cell's box is filled with its colour.
    hsv = cv2.cvtColor(out[N_TRACKED - 1][strip_h:], cv2.COLOR_BGR2HSV).astype(int)
    x, y = (int(v) for v in moving(N_TRACKED - 1))
    box_x1, box_y1 = x - 6, y - 5  # box = centre -/+ (w/2 + 2), at least 5 px
    label = hsv[box_y1 - 10:box_y1 - 2, box_x1 + 1:box_x1 + 8]
    assert abs(np.median(label[..., 0]) - hue_of(MOTILITY_COLOURS["progressive"])) <= 6
    assert np.median(label[..., 1]) > 120
    sx, sy = int(STILL[0]), int(STILL[1])
    label = hsv[sy - 5 - 10:sy - 5 - 2, sx - 6 + 1:sx - 6 + 8]
    assert abs(np.median(label[..., 0]) - hue_of(MOTILITY_COLOURS["immotile"])) <= 6

    # The trail lies behind the moving cell (coloured), not ahead of it.
    behind = hsv[y - 2:y + 3, x - 24:x - 15]
    ahead = hsv[y - 2:y + 3, x + 14:x + 40]
    assert behind[..., 1].max() > 60
    strong = behind[..., 1] > 60
    assert abs(np.median(behind[..., 0][strong]) - hue_of(MOTILITY_COLOURS["progressive"])) <= 8
    assert ahead[..., 1].max() < 45

    # Frames without cells: the whole frame is the source video, up to codec noise (no
    # legend, time stamp or scale bar over the cells); the strip below is dark with text.
    for k in range(N_TRACKED, N_FRAMES):
        diff = np.abs(out[k][strip_h:].astype(int) - src[k].astype(int))
        assert diff.mean() < 4 and np.percentile(diff, 99) < 12 and diff.max() < 60
        strip = out[k][:strip_h]
        assert np.median(strip) < 60 and strip.max() > 200


def test_browser_codec_is_h264_in_mp4_when_available(cells_video: Path, tmp_path: Path) -> None:
    """With PyAV's x264 the overlay is H.264 (yuv420p) in MP4, which browsers play."""
    av = pytest.importorskip("av")
    if "libx264" not in available_codecs():
        pytest.skip("PyAV's FFmpeg has no libx264 here")
    trajectories, tracks = make_tables()
    video = write_overlay_video(cells_video, trajectories, tracks, tmp_path / "overlay.mp4",
                                fps=FPS, um_per_px=0.5)
    assert (video.codec, video.mime, video.browser_playable) == ("libx264", "video/mp4", True)
    assert video.path == tmp_path / "overlay.mp4" and video.frames == N_FRAMES
    with av.open(str(video.path)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.format.name == "yuv420p"
        assert float(stream.average_rate) == pytest.approx(FPS)
        assert sum(1 for _ in c.decode(video=0)) == N_FRAMES
    head = video.path.read_bytes()[:4096]
    assert b"moov" in head and head.find(b"moov") < head.find(b"mdat")  # faststart: index first


def test_odd_sized_frames_are_padded_for_h264(tmp_path: Path) -> None:
    """4:2:0 H.264 needs even sides: an odd-sized source (corner legend) still encodes."""
    if "libx264" not in available_codecs():
        pytest.skip("PyAV's FFmpeg has no libx264 here")
    frames = [render_blobs(np.array([[20.0 + f, 30.0]]), shape=(75, 101), seed=f)
              for f in range(5)]
    src = tmp_path / "odd"
    src.mkdir()
    for f, frame in enumerate(frames):  # PNG frames keep the odd size (a video may not)
        cv2.imwrite(str(src / f"{f:03d}.png"), frame)
    empty = pd.DataFrame(columns=["frame", "track_id", "x_px", "y_px"])
    video = write_overlay_video(src, empty, pd.DataFrame(), tmp_path / "o.mp4", fps=FPS,
                                um_per_px=1.0, legend="inside")
    assert video.codec == "libx264" and video.frames == 5
    assert read_all(video.path)[0].shape == (76, 102, 3)


@pytest.mark.parametrize(("codec", "suffix", "playable"), [
    ("libvpx-vp9", ".webm", True), ("mp4v", ".mp4", False), ("MJPG", ".avi", False)])
def test_fallback_encoders(cells_video: Path, tmp_path: Path, codec: str, suffix: str,
                           playable: bool) -> None:
    """Without H.264: VP9 WebM (browsers), then OpenCV's mp4v / MJPG (desktop players)."""
    if codec not in available_codecs([codec]):
        pytest.skip(f"{codec} is not available here")
    trajectories, tracks = make_tables()
    video = write_overlay_video(cells_video, trajectories, tracks, tmp_path / "overlay.mp4",
                                fps=FPS, um_per_px=0.5, codecs=[codec])
    assert video.path == tmp_path / f"overlay{suffix}" and video.browser_playable is playable
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["cells.avi", video.path.name])
    assert len(read_all(video.path)) == N_FRAMES


def test_strip_holds_time_legend_and_scale_bar_above_the_frame() -> None:
    """In strip mode the frame (below the strip) is untouched where there is no cell;
    "inside" keeps the size."""
    trajectories, tracks = make_tables()
    grey = np.full((H, W, 3), 100, np.uint8)
    strip = OverlayRenderer(trajectories, tracks, (W + 1, H), fps=FPS, um_per_px=0.5)
    out_w, out_h = strip.output_size
    assert out_w == W + 2 and out_h > H and out_h % 2 == 0
    frame = strip.render(np.full((H, W + 1, 3), 100, np.uint8), N_TRACKED + 2)  # no cell
    assert frame.shape == (out_h, out_w, 3)
    top = out_h - H
    assert (frame[top:, :W + 1] == 100).all()  # nothing drawn over the sample
    assert frame[:top].max() == 255  # white text and scale bar in the strip
    inside = OverlayRenderer(trajectories, tracks, (W, H), fps=FPS, um_per_px=0.5,
                             legend="inside")
    assert inside.output_size == (W, H)
    assert inside.render(grey.copy(), N_TRACKED + 2).shape == (H, W, 3)
    with pytest.raises(ConfigError, match="legend"):
        OverlayRenderer(trajectories, tracks, (W, H), fps=FPS, um_per_px=0.5, legend="top")


def test_trail_fades_and_interpolated_box_is_dashed() -> None:
    """Exact pixel checks on the renderer itself (no lossy codec in between)."""
    trajectories, tracks = make_tables()
    renderer = OverlayRenderer(trajectories, tracks, (W, H), fps=FPS, um_per_px=0.5, trail_s=0.4,
                               legend="inside")  # frame coordinates as in the source
    grey = np.full((H, W, 3), 100, np.uint8)

    frame = renderer.render(grey.copy(), N_TRACKED - 1)
    x, y = (int(v) for v in moving(N_TRACKED - 1))
    strength = [int(np.abs(frame[y, x - 6 * k - 3].astype(int) - 100).sum()) for k in range(1, 10)]
    assert all(a >= b for a, b in zip(strength, strength[1:], strict=False))  # older: fainter
    assert strength[0] > 2 * strength[-1] > 0
    assert (frame[y - 1:y + 2, x - 6 * 12:x - 6 * 11] == 100).all()  # older than trail_s

    def box_pixels(frame_idx: int) -> int:
        img = renderer.render(grey.copy(), frame_idx)
        x1, y1, x2, y2 = int(STILL[0]) - 6, int(STILL[1]) - 5, int(STILL[0]) + 6, int(STILL[1]) + 5
        edge = np.concatenate([img[y2, x1:x2 + 1], img[y1 + 1:y2 + 1, x1], img[y1 + 1:y2 + 1, x2]])
        return int((np.abs(edge.astype(int) - 100).sum(axis=1) > 60).sum())

    solid, dashed = box_pixels(INTERPOLATED_FRAME + 1), box_pixels(INTERPOLATED_FRAME)
    assert 0 < dashed < 0.75 * solid


def test_uint16_source_is_scaled(tmp_path: Path) -> None:
    tifffile = pytest.importorskip("tifffile")
    rng = np.random.default_rng(0)
    stack = (rng.normal(1000, 20, (4, H, W)).clip(0, 4095)).astype(np.uint16)
    src = tmp_path / "stack.tif"
    tifffile.imwrite(src, stack, photometric="minisblack")
    empty = pd.DataFrame(columns=["frame", "track_id", "x_px", "y_px"])
    out = write_overlay(src, empty, pd.DataFrame(), tmp_path / "o.mp4", fps=10, um_per_px=1.0)
    frames = read_all(out)
    assert len(frames) == 4
    assert 150 < np.median(frames[0][100:180, 20:200]) < 255  # neither black nor clipped


@pytest.mark.parametrize(("fps", "um_per_px"), [(0.0, 0.5), (-5.0, 0.5), (float("nan"), 0.5),
                                                (25.0, 0.0), (25.0, -1.0)])
def test_bad_fps_or_scale_raises_config_error(cells_video: Path, tmp_path: Path, fps: float,
                                              um_per_px: float) -> None:
    trajectories, tracks = make_tables()
    with pytest.raises(ConfigError):
        write_overlay(cells_video, trajectories, tracks, tmp_path / "out" / "o.mp4", fps=fps,
                      um_per_px=um_per_px)
    assert not (tmp_path / "out").exists()


def test_missing_source_raises_input_error(tmp_path: Path) -> None:
    trajectories, tracks = make_tables()
    with pytest.raises(InputError, match="no such file"):
        write_overlay(tmp_path / "nope.mp4", trajectories, tracks, tmp_path / "o.mp4", fps=25,
                      um_per_px=0.5)
    assert list(tmp_path.iterdir()) == []


def test_failure_while_writing_removes_temp_file(cells_video: Path, tmp_path: Path) -> None:
    trajectories, tracks = make_tables()
    out_dir = tmp_path / "out"

    def stop(done: int, total: int) -> None:
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_overlay(cells_video, trajectories, tracks, out_dir / "o.mp4", fps=FPS,
                      um_per_px=0.5, progress=stop)
    assert list(out_dir.iterdir()) == []


def test_scale_bar_length_is_round_and_about_15_percent() -> None:
    assert choose_scale_bar_um(640, 0.7) == 50.0  # 71 px = 11 % (100 um would be 22 %)
    assert choose_scale_bar_um(320, 0.5) == 25.0  # 50 px = 15.6 %
    assert choose_scale_bar_um(640, 0.35) == 25.0  # 71 px = 11 % (20 um: 9 %, 50 um: 22 %)
    for width, scale in ((160, 2.0), (1920, 0.1), (640, 0.35), (1024, 1.3), (800, 0.05)):
        length = choose_scale_bar_um(width, scale)
        assert 0.10 <= length / scale / width <= 0.20


def test_video_report_embeds_a_playable_overlay_or_says_why_not() -> None:
    """report.html: a <video controls> for H.264 / VP9, a link and a note for mp4v / MJPG."""
    from detect_track.report.html import video_report

    trajectories, tracks = make_tables()
    summary = {"video": "cells.avi", "fps": FPS, "um_per_px": 0.5}
    playable = {"file": "overlay.mp4", "codec": "libx264", "mime": "video/mp4",
                "browser_playable": True, "frames": 20}
    page = video_report(trajectories, tracks, summary, overlay=playable)
    assert '<video class="overlay" controls preload="metadata" src="overlay.mp4#t=0.1">' in page
    assert "libx264, 20 frames" in page and "strip above the frame" in page
    fallback = dict(playable, file="overlay.avi", codec="MJPG", browser_playable=False)
    page = video_report(trajectories, tracks, summary, overlay=fallback)
    assert "<video" not in page and 'href="overlay.avi"' in page and "VLC" in page
    assert "Overlay video" not in video_report(trajectories, tracks, summary)
