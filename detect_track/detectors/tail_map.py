"""The learned tail map at inference: its input contract and its ONNX Runtime wrapper.

The tail tracer (:mod:`detect_track.detectors.tails`) can follow the tail probability of
a small U-Net instead of its ridge map. What the network expects is fixed here, below the
training code (:mod:`detect_track.training.tail_map`) that produces the model and the
tracer that runs it: the working scale (:data:`UM_PER_PX`), the input standardisation
(:func:`standardise`), the padding to :data:`MULTIPLE` (:func:`pad_input`) and the format
tag of the ONNX metadata (:data:`FORMAT`). Running the model needs onnxruntime, not torch.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from detect_track.weights import resolve_weights

#: Working scale of the map (µm per pixel), the tracer's.
UM_PER_PX = 0.106
#: Height and width of the network's input must be multiples of this.
MULTIPLE = 8
#: Gaussian sigma (px) of the background removed before standardising.
BACKGROUND_PX = 20.0
#: Format tag stored in the ONNX metadata.
FORMAT = "detect-track-tail-map/1"


def standardise(gray: np.ndarray) -> np.ndarray:
    """Network input from a gray image at the working scale.

    Args:
        gray: ``(H, W)`` image, any numeric dtype (bright field: tails dark).

    Returns:
        ``(H, W)`` float32: the background-subtracted image (dark structures positive)
        divided by its robust standard deviation, so exposure and stain strength do not
        matter.
    """
    g = np.asarray(gray, np.float32)
    dark = cv2.GaussianBlur(g, (0, 0), BACKGROUND_PX) - g
    mad = float(np.median(np.abs(dark - np.median(dark)))) * 1.4826
    return dark / max(mad, 1e-3)


def pad_input(x: np.ndarray, multiple: int = MULTIPLE) -> np.ndarray:
    """``x`` ``(H, W)`` reflected at its bottom and right to multiples of ``multiple``."""
    h, w = x.shape
    return np.pad(x, ((0, (-h) % multiple), (0, (-w) % multiple)), mode="reflect")


class LearnedTailMap:
    """The tail probability of a trained tail map (ONNX Runtime; no torch needed).

    Args:
        path: The ``.onnx`` file (:func:`detect_track.training.tail_map.export_tail_map`).

    Raises:
        ConfigError: Missing file, no onnxruntime, or not a detect-track tail map.
    """

    def __init__(self, path: str) -> None:
        from detect_track.ml import onnx_metadata, onnx_session, torch_threads

        self.path = resolve_weights(path, path, ".onnx")
        self._session = onnx_session(self.path, torch_threads())
        meta = onnx_metadata(self._session, FORMAT, self.path, "tail map")
        self.um_per_px = float(meta["um_per_px"])
        self.multiple = int(meta["multiple"])

    def __call__(self, work: np.ndarray) -> np.ndarray:
        """``(H, W)`` float64 tail probability of a gray image at the map's scale."""
        x = standardise(work)
        h, w = x.shape
        x = pad_input(x, self.multiple)
        (logits,) = self._session.run(None, {"image": x[None, None].astype(np.float32)})
        return 1.0 / (1.0 + np.exp(-logits[0, 0, :h, :w].astype(np.float64)))


@functools.lru_cache(maxsize=2)
def load_tail_map(path: str) -> LearnedTailMap:
    """One loaded map per file, shared by the images of a run."""
    return LearnedTailMap(path)
