"""EfficientDet detector (effdet) with small anchors for 3-15 px sperm heads.

The architecture is a preset, ``detect_track/models/effdet-sperm.yaml`` (P2-P5 BiFPN,
8 px smallest anchor, IoU 0.3 anchor matching); a checkpoint stores the preset it was
trained with, so inference rebuilds exactly that network. Models are always created with
``pretrained=False, pretrained_backbone=False``: nothing is downloaded.

effdet's quirks are handled here and never leak out: the input size must be divisible by
``2**max_level`` (frames are padded, never shrunk), inputs are ImageNet-normalised RGB,
outputs are zero-padded to ``max_det_per_image`` and class ids are 1-based.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from detect_track.config import Config, LearnedConfig
from detect_track.detectors.base import register_detector
from detect_track.detectors.learned import (
    LearnedDetector,
    batches,
    finish,
    magnification_scale,
    min_box_px,
)
from detect_track.errors import ConfigError
from detect_track.ml import require, torch_threads
from detect_track.types import Detections, ImageScale
from detect_track.weights import resolve_weights

DEFAULT_WEIGHTS = "effdet-sperm"
ARCH_YAML = Path(__file__).resolve().parent.parent / "models" / "effdet-sperm.yaml"
CHECKPOINT_FORMAT = "detect-track-effdet/1"
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
# keys of the preset that are not effdet config keys
_LOCAL_KEYS = ("base", "match_threshold", "anchors_per_object")


def load_arch(path: str | Path = ARCH_YAML) -> dict[str, Any]:
    """Read an EfficientDet architecture preset (YAML mapping).

    Raises:
        ConfigError: If the file is missing or not a mapping with a ``base`` key.
    """
    try:
        arch = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read EfficientDet preset {path}: {exc}") from exc
    if not isinstance(arch, dict) or "base" not in arch:
        raise ConfigError(f"EfficientDet preset {path} must be a mapping with a 'base' key")
    return arch


def effdet_config(arch: dict[str, Any], image_size: tuple[int, int]) -> Any:
    """Effdet model config from a preset, for inputs of ``image_size = (H, W)``.

    Raises:
        ConfigError: On unknown keys (with a suggestion) or a size not divisible by
            ``2**max_level``.
    """
    import difflib

    effdet = require("effdet")
    cfg = effdet.get_efficientdet_config(str(arch["base"]))
    updates = {k: v for k, v in arch.items() if k not in _LOCAL_KEYS}
    for key in updates:
        if key not in cfg:
            near = difflib.get_close_matches(key, list(cfg.keys()), n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            raise ConfigError(f"unknown EfficientDet preset key '{key}'{hint}")
    if "aspect_ratios" in updates:
        updates["aspect_ratios"] = [tuple(r) if isinstance(r, list) else r
                                    for r in updates["aspect_ratios"]]
    if "backbone_indices" in updates:
        updates["backbone_indices"] = tuple(updates["backbone_indices"])
    cfg.update(updates)
    cfg.num_levels = cfg.max_level - cfg.min_level + 1
    div = 2 ** cfg.max_level
    if image_size[0] % div or image_size[1] % div:
        raise ConfigError(f"EfficientDet input {image_size} must be divisible by {div}")
    cfg.image_size = tuple(int(s) for s in image_size)
    return cfg


def build_model(arch: dict[str, Any], image_size: tuple[int, int], task: str) -> Any:
    """Create an untrained effdet model wrapped in its ``train`` or ``predict`` bench.

    For ``train`` the anchor labeler uses the preset's looser ``match_threshold`` and, with
    ``anchors_per_object: K`` in the preset, matches at least K anchors to every object
    (:mod:`detect_track.detectors.effdet_anchors`).

    Raises:
        ConfigError: On an invalid preset.
    """
    import warnings

    with warnings.catch_warnings():  # effdet scripts its loss with the deprecated torch.jit
        warnings.simplefilter("ignore", FutureWarning)
        effdet = require("effdet")
        cfg = effdet_config(arch, image_size)
        bench = effdet.create_model_from_config(cfg, bench_task=task, pretrained=False,
                                                pretrained_backbone=False,
                                                bench_labeler=(task == "train"))
    if task == "train":
        from effdet.anchors import AnchorLabeler

        threshold = float(arch.get("match_threshold", 0.5))
        bench.anchor_labeler = AnchorLabeler(bench.anchors, cfg.num_classes,
                                             match_threshold=threshold)
        k = arch.get("anchors_per_object", 0)
        if not isinstance(k, int) or isinstance(k, bool) or k < 0:
            raise ConfigError(f"anchors_per_object must be an integer >= 0, not {k!r}")
        if k:
            from detect_track.detectors.effdet_anchors import use_topk_matching

            use_topk_matching(bench.anchor_labeler, threshold, k)
    return bench


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a detect-track EfficientDet checkpoint (architecture, class names, state dict).

    Raises:
        ConfigError: If the file cannot be read or is not such a checkpoint.
    """
    torch = require("torch")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any loader failure is one message
        raise ConfigError(f"cannot load EfficientDet weights {path}: not a plain-tensor "
                          f"checkpoint ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"{path} is not a detect-track EfficientDet checkpoint")
    return ckpt


def normalise(images: np.ndarray) -> np.ndarray:
    """BGR uint8 images ``(B, H, W, 3)`` to ImageNet-normalised RGB ``(B, 3, H, W)`` float32."""
    x = images[..., ::-1].astype(np.float32) / 255.0
    x = (x - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


class EffdetDetector(LearnedDetector):
    """EfficientDet behind the :class:`~detect_track.detectors.base.Detector` protocol.

    Args:
        cfg: Learned-detector settings (weights, thresholds, device, magnification range).
        um_per_px: Micrometres per pixel of the frames to come.
        scale_known: Whether ``um_per_px`` was stated (not assumed): only then are
            boxes too small for a head dropped (``cfg.min_head_um``).
    """

    name = "effdet"

    def __init__(self, cfg: LearnedConfig, um_per_px: float, scale_known: bool = True) -> None:
        self._torch = require("torch")
        self.cfg = cfg
        self.weights = resolve_weights(cfg.weights, DEFAULT_WEIGHTS, ".pt")
        ckpt = read_checkpoint(self.weights)
        self.arch: dict[str, Any] = ckpt["arch"]
        self.class_names: tuple[str, ...] = tuple(ckpt["class_names"])
        self._state = ckpt["state_dict"]
        self._benches: dict[tuple[int, int], Any] = {}
        self.stride = 2 ** int(self.arch.get("max_level", 7))
        self.scale = magnification_scale(um_per_px, cfg)
        self.min_side_px = min_box_px(self.class_names, um_per_px, cfg, scale_known)
        self._threads = torch_threads()

    def _bench(self, size: tuple[int, int]) -> Any:
        bench = self._benches.get(size)
        if bench is None:
            bench = build_model(self.arch, size, "predict")
            bench.model.load_state_dict(self._state)
            bench.max_det_per_image = self.cfg.max_det
            bench.eval().to(self.cfg.device)
            self._benches[size] = bench
        return bench

    def detect_batch(self, frames: Iterable[np.ndarray]) -> list[Detections]:
        """Detect in several frames (same-size frames share one forward pass)."""
        torch = self._torch
        frames = list(frames)
        out: list[Detections] = [Detections.empty()] * len(frames)
        torch.set_num_threads(self._threads)
        for idx, images in batches(frames, self.scale, self.stride):
            x = torch.from_numpy(normalise(images))
            with torch.inference_mode():
                det = self._bench(tuple(images.shape[1:3]))(x.to(self.cfg.device))
            det = det.cpu().numpy()
            for i, d in zip(idx, det, strict=True):
                d = d[d[:, 4] >= max(self.cfg.confidence, 1e-6)]  # drops the zero padding
                out[i] = finish(d[:, :4], d[:, 4], d[:, 5].astype(np.int64) - 1, self.scale,
                                frames[i].shape[:2], len(self.class_names),
                                self.cfg.operating_confidence, min_side_px=self.min_side_px)
        return out


@register_detector("effdet")
def _make_effdet(cfg: Config, scale: ImageScale) -> LearnedDetector:
    from detect_track.detectors.verify import with_verifier
    from detect_track.detectors.views import with_views

    known = scale.known

    def make(c: LearnedConfig) -> LearnedDetector:
        return with_views(lambda v: EffdetDetector(v, scale.um_per_px, scale_known=known), c)

    return with_verifier(make, cfg.detector.effdet, scale.um_per_px, cfg.detector.backend)
