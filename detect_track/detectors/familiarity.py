"""Does a video look like what the detector knows? A warning from its confidence profile.

A detector shown footage unlike its training data (other optics, stain, magnification,
debris) does not fail loudly: it returns fewer confident answers, more hesitant ones near
its operating point, and its confident answers score lower than on familiar footage.
:class:`ConfidenceProfile` keeps a histogram of the calibrated confidences of a video's
tracked-class detections and :meth:`ConfidenceProfile.warning` names what is off, with the
advice to fine-tune on the lab's own frames (``detect-track annotate``).

The limits were measured on real and simulated footage (``benchmarks/real.md``): with the
shipped YOLO, familiar footage gives a median confident score of 0.70 or more and at least
half of the answers above the operating point; the simulation-trained detector on real
VISEM frames gave 0.58 and 21 %.
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
#: A lower median confidence of the confident answers: they barely pass.
MIN_MEDIAN_CONFIDENT = 0.62
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
        else:
            if s["confident_share"] < MIN_CONFIDENT_SHARE:
                reasons.append(f"only {100 * s['confident_share']:.0f} % of the detections "
                               "are confident")
            if s["median_confident"] < MIN_MEDIAN_CONFIDENT:
                reasons.append(f"confident detections score a median of "
                               f"{s['median_confident']:.2f}, familiar footage 0.70 or more")
        if not reasons:
            return None
        return ("this video looks unlike what the detector was trained on (" +
                "; ".join(reasons) + "): check the overlay, and fine-tune on a few corrected "
                "frames of your own set-up (detect-track annotate, then detect-track train "
                "yolo; README, 'Fine-tune on your own set-up')")
