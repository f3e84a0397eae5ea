import numpy as np
import pytest

from detect_track.config import ClassicalConfig, Config
from detect_track.detectors import Detector, available_detectors, create_detector
from detect_track.detectors.classical import ClassicalDetector
from detect_track.errors import ConfigError
from detect_track.types import ImageScale, VideoMeta
from tests.helpers import render_blobs

META = VideoMeta("x", 25.0, 10, 160, 120, 0.7)


def make(**kw) -> ClassicalDetector:
    return ClassicalDetector(ClassicalConfig(**kw), um_per_px=0.7)


def test_registry():
    assert "classical" in available_detectors()
    assert create_detector("classical", Config(), META).name == "classical"
    with pytest.raises(ConfigError, match="did you mean 'classical'"):
        create_detector("clasical", Config(), META)


def test_made_from_an_image_scale_and_streams_as_it_detects():
    det = create_detector("classical", Config(), ImageScale(0.7, "cli"))  # no video needed
    assert isinstance(det, Detector)
    assert (det.weights, det.backend, det.runtime) == (None, None, None)  # no model file
    frames = [render_blobs(np.array([[30.0 + 3 * k, 40.0], [100.0, 60.0 + 2 * k]]), seed=k)
              for k in range(4)]
    streamed = list(det.detect_stream(enumerate(frames)))
    det.reset()
    assert [i for i, _, _ in streamed] == [0, 1, 2, 3]
    for (_, frame, found), original in zip(streamed, frames, strict=True):
        assert frame is original
        np.testing.assert_array_equal(found.xyxy, det.detect(frame).xyxy)
    tagged = det.detect_stream(enumerate(frames[:1]), post=lambda f, d: d[d.confidence > 2])
    assert len(next(tagged)[2]) == 0  # post runs on each frame's detections


def test_finds_bright_heads_subpixel():
    centres = np.array([[30.3, 40.7], [100.6, 60.2], [70.0, 100.5]])
    det = make(polarity="bright").detect(render_blobs(centres))
    assert len(det) == 3
    d = np.linalg.norm(det.xy[:, None] - centres[None], axis=2).min(axis=0)
    assert d.max() < 0.5  # sub-pixel centroids
    assert np.all((det.confidence >= 0.5) & (det.confidence <= 1.0))


def test_dark_heads_auto_polarity():
    centres = np.array([[40.0, 40.0], [110.0, 80.0]])
    det = make()
    frame = render_blobs(centres, amplitude=-70.0, background=160.0)
    found = [det.detect(frame) for _ in range(10)][-1]
    assert len(found) == 2
    assert np.linalg.norm(found.xy[:, None] - centres[None], axis=2).min(axis=0).max() < 0.6


@pytest.mark.parametrize("frame", [
    np.full((120, 160), 100, np.uint8),
    render_blobs(np.zeros((0, 2))),
    np.zeros((0, 0), np.uint8),
    np.zeros((2, 2), np.uint8),
])
def test_no_cells(frame):
    assert len(make(polarity="bright").detect(frame)) == 0


def test_uneven_illumination_and_large_debris_ignored():
    centres = np.array([[40.0, 60.0], [120.0, 60.0]])
    frame = render_blobs(centres).astype(np.float64)
    frame *= np.linspace(0.6, 1.4, 160)[None, :]
    yy, xx = np.mgrid[0:120, 0:160]
    frame[(xx - 80) ** 2 + (yy - 25) ** 2 < 15**2] += 60  # 21 µm blob: debris, not a head
    det = make(polarity="bright").detect(np.clip(frame, 0, 255).astype(np.uint8))
    assert len(det) == 2


def test_colour_odd_size_deterministic_inside():
    frame = render_blobs(np.array([[3.0, 3.0], [50.0, 31.0]]), shape=(37, 61))
    colour = np.dstack([frame] * 3)
    d1 = make(polarity="bright").detect(colour)
    d2 = make(polarity="bright").detect(colour)
    np.testing.assert_array_equal(d1.xyxy, d2.xyxy)
    assert len(d1) >= 1
    assert np.all(d1.xyxy[:, :2] >= 0) and np.all(d1.xyxy[:, 2] <= 61) and np.all(
        d1.xyxy[:, 3] <= 37)
    batch = make(polarity="bright").detect_batch([frame, frame])
    assert len(batch) == 2 and len(batch[0]) == len(d1)


def test_scale_follows_um_per_px():
    # same physical head imaged at half the magnification is still found
    det = ClassicalDetector(ClassicalConfig(polarity="bright"), um_per_px=1.4)
    found = det.detect(render_blobs(np.array([[60.0, 60.0]]), sigma=(1.1, 0.8)))
    assert len(found) == 1
