"""Small CNN classifiers of sperm-head crops, their training and their use.

Two kinds of task, as labs grade them:

* ``head_shape``: ``normal, tapered, pyriform, amorphous, small`` (HuSHeM / SCIAN) plus
  ``not_assessable`` (blurred or occluded crops);
* per part, normal / abnormal: ``head``, ``acrosome``, ``vacuole``, ``tail`` (MHSMA).

A crop is made gray, fitted into ``size x size`` pixels (aspect kept, border replicated)
and standardised (zero mean, unit variance), so brightness and stain do not matter
(:mod:`~detect_track.morphology.cnn`: the network, its input, its checkpoint).
Training (:mod:`~detect_track.morphology.training`) draws classes evenly, augments and
stops early; prediction (here) averages the eight 90° rotations and flips of each crop.
The names of both stay importable from this module.

torch is needed for ``.pt`` checkpoints (the ``ml`` extra); ``.onnx`` exports run with
ONNX Runtime.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detect_track.errors import ConfigError
from detect_track.ml import require, torch_threads, write_onnx
from detect_track.morphology.cnn import (
    CHECKPOINT_FORMAT,
    IMAGES_PER_CALL,
    TTA_VIEWS,
    build_net,
    save_checkpoint,
    stack_crops,
    tta_logits,
)
from detect_track.morphology.training import (
    LogFn,
    MorphTrainSettings,
    stratified_folds,
    train_classifier,
)


class MorphologyClassifier:
    """A trained classifier, ready to predict.

    Runs with torch (a ``.pt`` checkpoint) or with ONNX Runtime (a ``.onnx`` export from
    :func:`export_onnx`, which needs neither torch nor ultralytics); both average the
    log-probabilities of the 90° rotations and flips of each crop (eight unless asked).

    Args:
        path: Checkpoint written by :func:`save_checkpoint`, or its ONNX export.
        device: ``cpu`` or a CUDA device (torch only).
        threads: CPU threads per call (default: :func:`detect_track.ml.set_threads`'s
            setting, else every core).

    Raises:
        ConfigError: Missing file or not a detect-track morphology model.
    """

    def __init__(self, path: str | os.PathLike[str], device: str = "cpu",
                 threads: int | None = None) -> None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"morphology model {p} not found")
        self.path = p
        self.device = device
        self.threads = threads or torch_threads()
        self.backend = "onnx" if p.suffix.lower() == ".onnx" else "torch"
        meta = self._load_onnx(p) if self.backend == "onnx" else self._load_torch(p, device)
        self.task: str = meta["task"]
        self.class_names: tuple[str, ...] = tuple(meta["class_names"])
        self.size: int = int(meta["size"])
        self.channels: int = int(meta.get("channels", 1))
        self.info: dict[str, Any] = meta.get("train", {})

    def _load_torch(self, p: Path, device: str) -> dict[str, Any]:
        torch = require("torch")
        try:
            # weights_only: tensors and numbers only, nothing in the file can run code
            ckpt = torch.load(p, map_location=device, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file gets one message
            raise ConfigError(f"{p} is not a readable model file ({type(exc).__name__})"
                              ) from None
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
            raise ConfigError(f"{p} is not a detect-track morphology model")
        self._torch = torch
        channels = int(ckpt["settings"].get("channels", 1))
        self._model = build_net(len(ckpt["class_names"]), int(ckpt["settings"]["width"]), channels)
        self._model.load_state_dict(ckpt["state_dict"])
        self._model.to(device).eval()
        return {"task": ckpt["task"], "class_names": ckpt["class_names"],
                "size": ckpt["settings"]["size"], "channels": channels,
                "train": ckpt.get("train", {})}

    def _load_onnx(self, p: Path) -> dict[str, Any]:
        from detect_track.ml import onnx_metadata, onnx_session

        self._session = onnx_session(p, self.threads)
        return onnx_metadata(self._session, CHECKPOINT_FORMAT, p, "morphology model")

    def predict_proba(self, images: Sequence[np.ndarray], batch: int | None = None,
                      views: int = 8) -> np.ndarray:
        """Class probabilities ``(N, n_classes)`` of crops (any sizes).

        Args:
            images: Crops, gray ``(H, W)`` or BGR ``(H, W, 3)``: converted to what the
                model reads (``channels``).
            batch: Crops per model call; default: ``IMAGES_PER_CALL // views``, which is as
                fast as larger calls and keeps the runtime's working memory small.
            views: Rotations / flips averaged per crop: 1, 2, 4 or 8 (``TTA_VIEWS``).

        Raises:
            ValueError: On another number of views.
        """
        if views not in TTA_VIEWS:
            raise ValueError(f"views must be one of {sorted(TTA_VIEWS)}, got {views}")
        batch = batch or max(1, IMAGES_PER_CALL // views)
        if len(images) == 0:
            return np.zeros((0, len(self.class_names)))
        x = stack_crops(images, self.size, self.channels)
        if self.backend == "onnx":
            return np.concatenate([self._onnx_tta(x[i:i + batch], views)
                                   for i in range(0, len(x), batch)]).astype(np.float64)
        torch = self._torch
        threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            xt = torch.from_numpy(x)
            out = []
            with torch.no_grad():
                for i in range(0, len(xt), batch):
                    logp = tta_logits(torch, self._model, xt[i:i + batch].to(self.device),
                                       views)
                    out.append(torch.softmax(logp, dim=1).cpu().numpy())
        finally:
            torch.set_num_threads(threads)
        return np.concatenate(out).astype(np.float64)

    def _onnx_tta(self, x: np.ndarray, views: int = 8) -> np.ndarray:
        """Probabilities from the mean log-probability of the rotations / flips."""
        stack = [np.rot90(np.flip(x, 3) if flip else x, k, axes=(2, 3))
                 for flip, k in TTA_VIEWS[views]]
        blob = np.ascontiguousarray(np.concatenate(stack), dtype=np.float32)
        (logits,) = self._session.run(None, {"crops": blob})  # type: ignore[attr-defined]
        logits = logits.astype(np.float64).reshape(len(stack), len(x), -1)
        logp = logits - logits.max(axis=2, keepdims=True)
        logp -= np.log(np.exp(logp).sum(axis=2, keepdims=True))
        mean = logp.mean(axis=0)
        p = np.exp(mean - mean.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, images: Sequence[np.ndarray], views: int = 8
                ) -> tuple[list[str], np.ndarray]:
        """Label and confidence (probability of that label) per crop.

        ``views``: rotations / flips averaged, as in :meth:`predict_proba`.
        """
        p = self.predict_proba(images, views=views)
        k = p.argmax(axis=1) if len(p) else np.zeros(0, np.int64)
        return [self.class_names[i] for i in k], p[np.arange(len(p)), k]


def export_onnx(path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None
                ) -> Path:
    """Export a morphology checkpoint to ONNX (dynamic batch), for torch-free inference.

    Args:
        path: A ``.pt`` checkpoint of :func:`save_checkpoint`.
        out: The ``.onnx`` file (default: beside ``path``).

    Returns:
        The file written (atomically); its metadata holds task, classes and crop size.
    """
    torch = require("torch")
    model = MorphologyClassifier(path)
    if model.backend != "torch":
        raise ConfigError(f"{path} is already an ONNX model")
    target = Path(out) if out else Path(path).with_suffix(".onnx")
    meta = {"task": model.task, "class_names": list(model.class_names), "size": model.size,
            "channels": model.channels, "train": model.info}

    def write(tmp: Path) -> None:
        write_onnx(model._model.cpu(), torch.zeros(1, model.channels, model.size, model.size),
                   tmp,
                   ("crops", "logits"), {"crops": {0: "batch"}, "logits": {0: "batch"}},
                   CHECKPOINT_FORMAT, meta)

    from detect_track.io.export import atomic_write

    return atomic_write(target, write)


def cross_validate(images: Sequence[np.ndarray], labels: np.ndarray,
                   class_names: Sequence[str], task: str, folds: int,
                   settings: MorphTrainSettings = MorphTrainSettings(),  # noqa: B008 - frozen
                   log: LogFn | None = None) -> dict[str, Any]:
    """Stratified k-fold evaluation: train on k-1 folds, predict the held-out one.

    Returns:
        ``accuracy`` (pooled over folds), ``fold_accuracy`` (list), ``confusion``
        (true x predicted counts) and ``class_names``.
    """
    labels = np.asarray(labels, np.int64)
    if folds < 2:
        raise ConfigError("--folds must be at least 2")
    n = len(class_names)
    confusion = np.zeros((n, n), np.int64)
    accs = []
    import tempfile

    for f, test in enumerate(stratified_folds(labels, folds, settings.seed)):
        train = np.setdiff1d(np.arange(len(labels)), test)
        ckpt = train_classifier([images[i] for i in train], labels[train], class_names, task,
                                settings, None)
        with tempfile.TemporaryDirectory() as tmp:
            model = MorphologyClassifier(save_checkpoint(ckpt, Path(tmp) / "m.pt"),
                                         settings.device)
            pred = model.predict_proba([images[i] for i in test]).argmax(axis=1)
        np.add.at(confusion, (labels[test], pred), 1)
        accs.append(float((pred == labels[test]).mean()))
        if log is not None:
            log(f"fold {f + 1}/{folds}: accuracy {accs[-1]:.3f}")
    return {"accuracy": float(np.trace(confusion) / confusion.sum()), "fold_accuracy": accs,
            "confusion": confusion.tolist(), "class_names": list(class_names)}
