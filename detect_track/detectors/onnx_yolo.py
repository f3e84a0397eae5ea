"""YOLO from its ONNX export (ONNX Runtime or OpenVINO): the fast CPU path, no torch.

The model file is the shipped YOLO exported with dynamic height and width
(``detect-track export onnx weights/yolo-sperm.pt``; ``weights/yolo-sperm.onnx`` ships).
Frames go through the same preparation as the torch path (gray to BGR, padded to a
multiple of 32, never shrunk); the raw output ``(B, 4 + C, A)`` (box centre and size in
pixels, then one score per class, for every anchor point) is decoded here: best class
per anchor, score threshold, class-aware non-maximum suppression (OpenCV's), then the
same duplicate fusion and score calibration as the torch path, so both give the same
boxes within float tolerance (ONNX Runtime), or within about a pixel where OpenVINO
computes in bfloat16.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import cv2
import numpy as np

from detect_track.config import LearnedConfig
from detect_track.detectors.learned import (
    LearnedDetector,
    batches,
    finish,
    magnification_scale,
    min_box_px,
)
from detect_track.ml import OpenVinoModel, onnx_session, openvino_available, torch_threads
from detect_track.types import Detections
from detect_track.weights import resolve_model

#: Largest candidate count passed to NMS per image (highest scores first), as ultralytics.
MAX_NMS_CANDIDATES = 30000


def decode_yolo(raw: np.ndarray, conf: float, iou: float, max_det: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes of one image from a YOLO output, after class-aware NMS.

    Args:
        raw: ``(4 + C, A)`` float: ``cx, cy, w, h`` in input pixels then C class scores.
        conf: Lowest score kept.
        iou: NMS overlap above which the weaker box of the same class is dropped.
        max_det: Most boxes returned.

    Returns:
        ``xyxy (N, 4)`` in input pixels, ``score (N,)``, ``class_id (N,)``, best first.
    """
    scores_all = raw[4:]
    cls = scores_all.argmax(axis=0)
    score = scores_all[cls, np.arange(raw.shape[1])]
    keep = np.flatnonzero(score > conf)
    if keep.size > MAX_NMS_CANDIDATES:
        keep = keep[np.argsort(-score[keep])[:MAX_NMS_CANDIDATES]]
    if keep.size == 0:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64)
    cx, cy, w, h = raw[:4, keep]
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    score, cls = score[keep], cls[keep]
    rects = np.stack([xyxy[:, 0], xyxy[:, 1], w, h], axis=1).astype(np.float64)
    picked = cv2.dnn.NMSBoxesBatched(rects.tolist(), score.astype(float).tolist(),
                                     cls.astype(int).tolist(), float(conf), float(iou),
                                     top_k=int(max_det))
    picked = np.asarray(picked, np.int64).reshape(-1)
    order = picked[np.argsort(-score[picked], kind="stable")][:max_det]
    return xyxy[order].astype(np.float64), score[order].astype(np.float64), cls[order]


class YoloOnnxDetector(LearnedDetector):
    """The YOLO detector run from its ONNX export (``detector.backend=onnx``).

    ONNX Runtime or OpenVINO runs the model (``detector.onnx_runtime``); neither needs
    torch.

    Args:
        cfg: Learned-detector settings (weights, thresholds, magnification range).
        um_per_px: Micrometres per pixel of the frames to come.
        default_weights: Name of the shipped model (``yolo-sperm``).
        runtime: ``onnxruntime``, ``openvino``, or ``auto`` (OpenVINO when installed).
        scale_known: Whether ``um_per_px`` was stated (not assumed): only then are
            boxes too small for a head dropped (``cfg.min_head_um``).

    Raises:
        ConfigError: The runtime missing, or no ``.onnx`` model for the weights.
    """

    name = "yolo"
    backend = "onnx"

    def __init__(self, cfg: LearnedConfig, um_per_px: float, default_weights: str,
                 runtime: str = "auto", scale_known: bool = True) -> None:
        self.cfg = cfg
        self.weights = resolve_model(cfg.weights, default_weights, "onnx")
        if runtime == "auto":
            runtime = "openvino" if openvino_available() else "onnxruntime"
        self.runtime = runtime
        threads = torch_threads()
        self._ov: OpenVinoModel | None = None
        self._session: Any = None
        if runtime == "openvino":
            # as many streams as frames in flight (detect_stream): one thread each
            self._ov = OpenVinoModel(self.weights, threads, streams=threads)
            meta = {k: self._ov.metadata(k) for k in ("names", "stride")}
        else:
            self._session = onnx_session(self.weights, threads)
            props = self._session.get_modelmeta().custom_metadata_map  # type: ignore[attr-defined]
            meta = {k: props.get(k) for k in ("names", "stride")}
            self._input = self._session.get_inputs()[0].name  # type: ignore[attr-defined]
        names = _literal(meta.get("names"), {0: "sperm"})
        self.class_names: tuple[str, ...] = tuple(str(names[i]) for i in sorted(names))
        self.stride = max(32, int(_literal(meta.get("stride"), 32)))
        self.scale = magnification_scale(um_per_px, cfg)
        self.min_side_px = min_box_px(self.class_names, um_per_px, cfg, scale_known)
        self._single: Any = None  # single-threaded ONNX Runtime session, made on use

    def _run(self, session: Any, blob: np.ndarray) -> np.ndarray:
        if self._ov is not None:
            return self._ov.run(blob)
        (raw,) = session.run(None, {self._input: blob})
        return raw

    def detect_batch(self, frames: Iterable[np.ndarray]) -> list[Detections]:
        """Detect in several frames (same-size frames share one forward pass)."""
        return self._detect(self._session, list(frames))

    def detect_stream(self, frames: Iterable[tuple[int, np.ndarray]], workers: int = 0,
                      post: Callable[[np.ndarray, Detections], Detections] | None = None
                      ) -> Iterator[tuple[int, np.ndarray, Detections]]:
        """Detect in a stream of frames, several at once, results in frame order.

        On a CPU, ``workers`` single-threaded inferences side by side use the cores
        better than one inference spread over them (about 20 % more frames per second
        here), and the Python around each inference overlaps the others.

        Args:
            frames: ``(index, frame)`` pairs, e.g. a :class:`~detect_track.io.video.FrameSource`.
            workers: Frames in flight; 0 = one per thread (:func:`detect_track.ml.set_threads`
                or every core); 1 = one at a time with all threads.
            post: Run on each frame's detections in the same worker (e.g. the sperm
                verifier), so it overlaps the other frames' inference.

        Yields:
            ``(index, frame, detections)`` in the order of ``frames``.
        """
        workers = workers or torch_threads()
        if workers <= 1:
            for index, frame in frames:
                yield index, frame, self._detect_one(self._session, frame, post)
            return
        if self._ov is None and self._single is None:  # ONNX Runtime's run is re-entrant
            self._single = onnx_session(self.weights, 1)
        pool = ThreadPoolExecutor(workers, thread_name_prefix="detect-track-infer")
        pending: deque[tuple[int, np.ndarray, Future[Detections]]] = deque()
        try:
            for index, frame in frames:
                pending.append((index, frame,
                                pool.submit(self._detect_one, self._single, frame, post)))
                if len(pending) > workers:
                    i, f, fut = pending.popleft()
                    yield i, f, fut.result()
            while pending:
                i, f, fut = pending.popleft()
                yield i, f, fut.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _detect_one(self, session: Any, frame: np.ndarray,
                    post: Callable[[np.ndarray, Detections], Detections] | None
                    ) -> Detections:
        d = self._detect(session, [frame])[0]
        return d if post is None else post(frame, d)

    def _detect(self, session: Any, frames: list[np.ndarray]) -> list[Detections]:
        out: list[Detections] = [Detections.empty()] * len(frames)
        for idx, images in batches(frames, self.scale, self.stride):
            blob = np.ascontiguousarray(images[..., ::-1].transpose(0, 3, 1, 2),
                                        dtype=np.float32)
            blob *= 1.0 / 255.0
            raw = self._run(session, blob)
            for i, pred in zip(idx, raw, strict=True):
                xyxy, score, cls = decode_yolo(pred, self.cfg.confidence, self.cfg.iou,
                                               self.cfg.max_det)
                out[i] = finish(xyxy, score, cls, self.scale, frames[i].shape[:2],
                                len(self.class_names), self.cfg.operating_confidence,
                                merge=True, min_side_px=self.min_side_px)
        return out


def _literal(text: str | None, default: object) -> object:
    """A Python literal from ONNX metadata (ultralytics writes dict / int reprs)."""
    if text is None:
        return default
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return default
