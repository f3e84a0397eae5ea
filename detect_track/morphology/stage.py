"""The morphology stage of the video pipeline: crops while tracking, a call per batch.

:class:`MorphologyStage` collects crops frame by frame (see :class:`CropCollector`) and,
as each track is settled, classifies it from the mean class probabilities of its
crops. Tracks without an isolated crop get ``not_assessable``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from detect_track.config import MorphologyConfig
from detect_track.morphology.crops import CropCollector
from detect_track.types import Detections

DEFAULT_WEIGHTS = "head-shape-synth"
NOT_ASSESSABLE = "not_assessable"
#: Rotations / flips averaged per crop in videos when ``morphology.tta_views`` is 0 (auto).
#: Measured on the held-out synthetic heads (seed 2, 900 crops): 91.4 % accuracy per crop
#: with 2 views, 92.0 % with 8, at a quarter of the cost; a track also averages up to
#: ``crops_per_track`` crops of its head.
VIDEO_TTA_VIEWS = 2
#: ... and on still images, where each cell has a single crop.
STILL_TTA_VIEWS = 8
#: Camera resolution (px per µm) below which a head's shape is not called in videos, the
#: default of ``morphology.min_px_per_um`` (0.4 µm per px, 11 px along a normal head):
#: measured with ``tools/bench_morphology_resolution.py`` (benchmarks/morphology.md,
#: "Resolution"), the lowest resolution tried at which simulated heads are told normal
#: from abnormal with a balanced accuracy of 0.8 and the six classes within 7 points of
#: sharp crops (at 0.7 µm per px: 0.74 and 20 points below).
MIN_PX_PER_UM = 2.5


def load_model(cfg: MorphologyConfig, backend: str = "auto") -> Any:
    """The head-shape classifier ``morphology.weights`` names, for ``backend``.

    Raises:
        ConfigError: If the model cannot be found or loaded, or its runtime is missing.
    """
    from detect_track.morphology.classifier import MorphologyClassifier
    from detect_track.weights import resolve_model

    return MorphologyClassifier(resolve_model(cfg.weights, DEFAULT_WEIGHTS, backend),
                                cfg.device)


class MorphologyStage:
    """Crop collection and per-track classification for one video.

    Args:
        cfg: Morphology settings.
        um_per_px: Micrometres per pixel of the video.
        backend: ``auto``, ``torch`` or ``onnx`` (see
            :func:`~detect_track.weights.resolve_model`).

    Raises:
        ConfigError: If the model cannot be found or loaded, or its runtime is missing.
    """

    def __init__(self, cfg: MorphologyConfig, um_per_px: float, backend: str = "auto") -> None:
        self.cfg = cfg
        self.model = load_model(cfg, backend)
        self.px_per_um = 1.0 / um_per_px
        #: Whether heads are resolved well enough to call their shape (else the tracks'
        #: ``morphology`` stays empty; crops are still kept for ``--save-crops``).
        self.min_px_per_um = float(cfg.min_px_per_um)
        self.resolved = self.px_per_um >= self.min_px_per_um - 1e-9
        self.collector = CropCollector(round(cfg.crop_um / um_per_px),
                                       cfg.isolation_um / um_per_px, cfg.crops_per_track)

    def update(self, frame_index: int, frame: np.ndarray, tracked: Detections,
               detections: Detections) -> None:
        """Collect crops of this frame's tracked heads."""
        self.collector.update(frame_index, frame, tracked, detections)

    def reset(self) -> None:
        """Forget the crops (new video)."""
        self.collector.reset()

    def classify(self, tracks: pd.DataFrame) -> tuple[pd.DataFrame, dict[int, list[np.ndarray]]]:
        """Fill ``morphology`` and ``morphology_confidence`` of the tracks table.

        Returns:
            A copy of ``tracks`` with both columns filled, and the aligned crops of each
            track (sharpest first) that were classified.
        """
        out = tracks.copy()
        used = {int(t): [c for _, c in self.collector.crops(int(t))] for t in out["track_id"]}
        crops = [c for items in used.values() for c in items]
        owner = np.repeat(np.arange(len(used)), [len(items) for items in used.values()])
        labels = np.full(len(used), NOT_ASSESSABLE if self.resolved else "", dtype=object)
        confs = np.full(len(used), np.nan)
        if crops and self.resolved:  # one call for every crop of these tracks, a mean per track
            p = self.model.predict_proba(crops, views=self.cfg.tta_views or VIDEO_TTA_VIEWS)
            total = np.zeros((len(used), p.shape[1]))
            np.add.at(total, owner, p)
            n = np.bincount(owner, minlength=len(used))
            has = n > 0
            mean = total[has] / n[has, None]
            k = mean.argmax(axis=1)
            labels[has] = np.asarray(self.model.class_names, dtype=object)[k]
            confs[has] = mean[np.arange(len(k)), k]
        out["morphology"] = pd.Series(labels, index=out.index, dtype=object)
        out["morphology_confidence"] = pd.Series(confs, index=out.index, dtype=float)
        return out, used

    def forget(self, track_ids: Iterable[int]) -> None:
        """Drop the crops of tracks that were classified or dropped (bounded memory)."""
        self.collector.forget(track_ids)

    def info(self) -> dict[str, Any]:
        """What the summary records about the model (see :func:`screening_model`)."""
        return {"morphology_model": self.model.path.name, "morphology_task": self.model.task,
                "morphology_screening": screening_model(self.model.path)}

    def unresolved_warning(self, n_tracks: int) -> str:
        """The warning of a video whose heads are too small to call their shape."""
        return (f"head morphology not assessed for {n_tracks} track"
                f"{'' if n_tracks == 1 else 's'}: {self.px_per_um:.2f} px per µm "
                f"({1 / self.px_per_um:.2f} µm per px) is below the {self.min_px_per_um:g} px per "
                "µm at which the head-shape model's calls carry information "
                "(benchmarks/morphology.md); use a higher magnification for morphology")


def screening_model(path: str | os.PathLike[str]) -> bool:
    """True when the model's card says it was trained on simulated heads only.

    The card is the Markdown file next to the model (``head-shape-synth.md`` for
    ``head-shape-synth.pt`` or ``.onnx``); its ``training data`` row starts with
    ``simulated``. Such a model's calls are a screening aid, to be marked so wherever
    they appear ("screening, trained on simulated heads"). A model without a card (a
    lab's own) is not flagged.
    """
    card = Path(path).with_suffix(".md")
    try:
        text = card.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        cells = [c.strip().lower() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0] == "training data":
            return cells[1].startswith("simulated")
    return False


def morphology_summary(tracks: pd.DataFrame) -> dict[str, Any]:
    """% normal forms among the tracks whose head could be assessed.

    Returns:
        ``n_morphology_assessed`` and ``pct_normal_forms`` (None when none was assessed).
        Tracks with an empty ``morphology`` (heads too small to call, see
        :data:`MIN_PX_PER_UM`) are not assessed.
    """
    if "morphology" not in tracks or not len(tracks):
        return {"n_morphology_assessed": 0, "pct_normal_forms": None}
    m = tracks["morphology"].astype(str)
    assessed = m[(m != NOT_ASSESSABLE) & (m != "") & (m != "nan")]
    n = int(len(assessed))
    return {"n_morphology_assessed": n,
            "pct_normal_forms": 100.0 * float((assessed == "normal").sum()) / n if n else None}


def write_crops(crops: dict[int, list[np.ndarray]], out_dir: str | os.PathLike[str],
                video_name: str) -> Path:
    """Write crops as ``OUT/<video>_track<id>_<k>.png`` (k = 0 is the sharpest)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(video_name).stem
    for tid, items in crops.items():
        for k, crop in enumerate(items):
            cv2.imwrite(str(out / f"{stem}_track{tid}_{k}.png"), crop)
    return out
