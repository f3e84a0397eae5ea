"""Does a video look like what the detector knows? A warning from its confidence profile.

A detector shown footage unlike its training data (other optics, stain, magnification,
debris) does not fail loudly: it returns few confident answers and many hesitant ones
below its operating point.
:class:`ConfidenceProfile` keeps a histogram of the calibrated confidences of a video's
tracked-class detections and :meth:`ConfidenceProfile.warning` names what is off, with the
advice to fine-tune on the lab's own frames (``detect-track annotate``).

The limits were measured on 12-20 frames of each input (calibrated confidences of the
``sperm`` answers): the
shipped YOLO on held-out real VISEM frames gives 42 confident answers per frame and 68 %
of its answers confident; the same model on the simulated sample video 8 %, on the three
unlabelled real clips of another set-up (dark heads, lower magnification) 0-0.1 confident
answers per frame; the simulation-trained detector (``yolo-sperm-sim``, with its verifier)
on the real VISEM frames 21 %. The median confident score does not separate them (0.58 on
familiar VISEM frames, 0.59 on the other set-up), so it is reported, not judged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Histogram bins of calibrated confidence (0..1).
N_BINS = 20
#: Fewer confident answers per frame than this: the detector hardly finds anything.
MIN_CONFIDENT_PER_FRAME = 1.0
#: A smaller share of the answers at or above the operating point: mostly hesitant answers.
MIN_CONFIDENT_SHARE = 0.35
#: The calibrated confidence of the operating point.
OPERATING = 0.5


@dataclass
class ConfidenceProfile:
    """Running histogram of a video's detection confidences (calibrated, 0..1).

    Attributes:
        counts: Detections per confidence bin (``N_BINS`` equal bins over 0..1).
        n_frames: Frames seen.
    """

    counts: np.ndarray = field(default_factory=lambda: np.zeros(N_BINS, np.int64))
    n_frames: int = 0

    def update(self, confidence: np.ndarray) -> None:
        """Add one frame's detection confidences."""
        c = np.clip(np.asarray(confidence, dtype=np.float64).ravel(), 0.0, 1.0)
        self.counts += np.bincount(np.minimum((c * N_BINS).astype(np.int64), N_BINS - 1),
                                   minlength=N_BINS)
        self.n_frames += 1

    def reset(self) -> None:
        """Forget every frame (call between videos)."""
        self.counts[:] = 0
        self.n_frames = 0

    def stats(self) -> dict[str, float]:
        """The three numbers the warning reads.

        Returns:
            ``confident_per_frame``, ``confident_share`` and ``median_confident`` (the
            centre of its bin; NaN without confident answers).
        """
        first = int(OPERATING * N_BINS)
        confident = self.counts[first:]
        n_conf, n_all = int(confident.sum()), int(self.counts.sum())
        median = float("nan")
        if n_conf:
            k = int(np.searchsorted(np.cumsum(confident), (n_conf + 1) / 2))
            median = (first + k + 0.5) / N_BINS
        return {"confident_per_frame": n_conf / max(self.n_frames, 1),
                "confident_share": n_conf / n_all if n_all else float("nan"),
                "median_confident": median}

    def warning(self, min_frames: int = 10) -> str | None:
        """One sentence when the profile is unlike familiar footage's, else None.

        Args:
            min_frames: Say nothing about shorter videos (too few answers to judge).
        """
        if self.n_frames < min_frames:
            return None
        s = self.stats()
        reasons = []
        if s["confident_per_frame"] < MIN_CONFIDENT_PER_FRAME:
            reasons.append(f"only {s['confident_per_frame']:.1f} confident detections per frame")
        elif s["confident_share"] < MIN_CONFIDENT_SHARE:
            reasons.append(f"only {100 * s['confident_share']:.0f} % of the detections are "
                           f"confident, familiar footage 60 % or more")
        if not reasons:
            return None
        return ("this video looks unlike what the detector was trained on (" +
                "; ".join(reasons) + "): check the overlay, and fine-tune on a few corrected "
                "frames of your own set-up (detect-track annotate, then detect-track train "
                "yolo; README, 'Real footage')")
