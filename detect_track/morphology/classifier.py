"""Small CNN classifiers of sperm-head crops, their training and their use.

Two kinds of task, as labs grade them:

* ``head_shape``: ``normal, tapered, pyriform, amorphous, small`` (HuSHeM / SCIAN) plus
  ``not_assessable`` (blurred or occluded crops);
* per part, normal / abnormal: ``head``, ``acrosome``, ``vacuole``, ``tail`` (MHSMA).

A crop is made gray, fitted into ``size x size`` pixels (aspect kept, border replicated)
and standardised (zero mean, unit variance), so brightness and stain do not matter.
Training draws classes evenly (class-balanced sampling), augments with free rotation,
flips, contrast, blur and noise, and stops early on a stratified validation part;
prediction averages the eight 90° rotations and flips of each crop.

torch is imported only here (the ``ml`` extra).
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from detect_track.errors import ConfigError, InputError
from detect_track.ml import require, torch_threads, write_onnx

HEAD_SHAPES = ("normal", "tapered", "pyriform", "amorphous", "small", "not_assessable")
PARTS = ("head", "acrosome", "vacuole", "tail")
TASKS = ("head_shape", *PARTS)
CHECKPOINT_FORMAT = "detect-track-morphology/1"

LogFn = Callable[[str], None]


def fit_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Fit a crop into ``size x size`` (aspect kept, borders replicated), standardised.

    Args:
        image: ``(H, W)`` gray or ``(H, W, C)`` colour crop, uint8 or float.
        size: Side of the output in pixels.

    Returns:
        ``(size, size)`` (or ``(size, size, C)``) float32 array with zero mean and unit
        standard deviation over all its values (a colour crop keeps its hue).
    """
    img = np.asarray(image, np.float32)
    h, w = img.shape[:2]
    scale = size / max(h, w)
    if scale != 1.0:
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        img = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))),
                         interpolation=interp)
    h, w = img.shape[:2]
    top, left = (size - h) // 2, (size - w) // 2
    img = cv2.copyMakeBorder(img, top, size - h - top, left, size - w - left,
                             cv2.BORDER_REPLICATE)
    img -= img.mean()
    return img / max(float(img.std()), 1e-3)


def _net(n_classes: int, width: int, channels: int = 1) -> Any:
    torch = require("torch")
    nn = torch.nn

    def block(cin: int, cout: int) -> list[Any]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    w = width
    return nn.Sequential(  # 64 px -> one conv -> 32 -> 16 -> 8 -> global pool
        nn.Conv2d(channels, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
        nn.MaxPool2d(2), *block(w, 2 * w), nn.MaxPool2d(2),
        *block(2 * w, 4 * w), nn.MaxPool2d(2), *block(4 * w, 8 * w),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(8 * w, n_classes))


@dataclass(frozen=True)
class MorphTrainSettings:
    """Training settings of a morphology classifier."""

    epochs: int = 80  # most epochs
    patience: int = 15  # stop after this many epochs without a better validation score
    batch: int = 64  # crops per step
    lr: float = 2e-3  # AdamW learning rate (cosine decay)
    weight_decay: float = 1e-3  # AdamW weight decay
    size: int = 64  # crops are fitted into size x size px
    width: int = 24  # channels of the first block (x2, x4, x8 deeper)
    val_fraction: float = 0.15  # stratified part held out for early stopping
    balanced: bool = True  # draw classes evenly in each epoch
    seed: int = 0  # random seed
    device: str = "cpu"  # cpu or cuda:0
    init: str = ""  # start from this model's weights (all but the last layer): transfer
    channels: int = 1  # 1: gray crops (colour ones are converted); 3: colour (BGR) crops


#: Fine-tuning from another model (``MorphTrainSettings.init``) takes smaller steps and
#: waits longer: on MHSMA heads, from the synthetic head-shape model, 79.2 % with these
#: against 77.9 % with the from-scratch learning rate and patience.
TRANSFER_LR = 5e-4
TRANSFER_PATIENCE = 30


def transfer_settings(init: str, **values: Any) -> MorphTrainSettings:
    """Settings to fine-tune from the model ``init`` (other fields as ``values`` say)."""
    return MorphTrainSettings(**{"lr": TRANSFER_LR, "patience": TRANSFER_PATIENCE, **values,
                                 "init": init})


def _augment(x: Any, gen: Any) -> Any:
    """Random rotation, flip, contrast, blur and noise of a batch ``(B, C, S, S)``."""
    torch = require("torch")
    F = torch.nn.functional
    b = x.shape[0]
    dev = x.device
    ang = torch.rand(b, generator=gen, device=dev) * 2 * math.pi
    flip = torch.where(torch.rand(b, generator=gen, device=dev) < 0.5, -1.0, 1.0)
    scale = 1 + (torch.rand(b, generator=gen, device=dev) - 0.5) * 0.2
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, torch.zeros_like(cos)], 1),
                         torch.stack([sin * flip, cos, torch.zeros_like(cos)], 1)], 1)
    shift = (torch.rand(b, 2, generator=gen, device=dev) - 0.5) * 0.1
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    blur = torch.rand(b, generator=gen, device=dev) < 0.3
    if blur.any():
        k = torch.tensor([0.25, 0.5, 0.25], device=dev)
        c = x.shape[1]
        kern = (k[:, None] * k[None, :])[None, None].repeat(c, 1, 1, 1)
        x = torch.where(blur[:, None, None, None], F.conv2d(F.pad(x, (1, 1, 1, 1),
                                                                  mode="replicate"), kern,
                                                            groups=c), x)
    contrast = 1 + (torch.rand(b, 1, 1, 1, generator=gen, device=dev) - 0.5) * 0.5
    x = x * contrast + torch.randn(x.shape, generator=gen, device=dev) * 0.1
    return x


def _stratified_split(labels: np.ndarray, fraction: float, rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray]:
    val = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n = int(round(fraction * len(idx)))
        if len(idx) > 1:
            n = min(max(n, 1), len(idx) - 1)
        else:
            n = 0
        val.append(idx[:n])
    v = np.sort(np.concatenate(val)) if val else np.zeros(0, np.int64)
    t = np.setdiff1d(np.arange(len(labels)), v)
    return t, v


def stratified_folds(labels: np.ndarray, k: int, seed: int = 0) -> list[np.ndarray]:
    """Indices of ``k`` folds with each class spread evenly over them."""
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        for i, j in enumerate(idx):
            folds[i % k].append(int(j))
    return [np.sort(np.array(f, np.int64)) for f in folds]


def _channels(image: np.ndarray, channels: int) -> np.ndarray:
    """A crop as ``channels`` (1: gray, 3: BGR) planes, last axis for colour."""
    img = np.asarray(image)
    if channels == 1:
        return img if img.ndim == 2 else cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2GRAY)
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else img[..., :3]


def _stack(images: Sequence[np.ndarray], size: int, channels: int = 1) -> np.ndarray:
    """``(N, channels, size, size)`` float32 batch of fitted, standardised crops."""
    if len(images) == 0:
        return np.zeros((0, channels, size, size), np.float32)
    shape = (size, size) if channels == 1 else (size, size, channels)
    planes = [_channels(im, channels) for im in images]
    if all(p.shape == shape for p in planes):  # cut at the input size: standardise at once
        x = np.stack(planes).astype(np.float32)
        axes = tuple(range(1, x.ndim))
        x -= x.mean(axis=axes, keepdims=True)
        x /= np.maximum(x.std(axis=axes, keepdims=True), 1e-3)
    else:
        x = np.stack([fit_crop(p, size) for p in planes])
    x = x[:, None] if channels == 1 else x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, dtype=np.float32)


def train_classifier(images: Sequence[np.ndarray], labels: np.ndarray,
                     class_names: Sequence[str], task: str,
                     settings: MorphTrainSettings = MorphTrainSettings(),
                     log: LogFn | None = None) -> dict[str, Any]:
    """Train a classifier; returns its checkpoint (see :func:`save_checkpoint`).

    Args:
        images: Gray crops (any sizes).
        labels: Class index per crop ``(N,)``.
        class_names: Names of the class indices.
        task: What the classes mean (``head_shape``, ``head``, ...), stored with the model.
        settings: Training settings.
        log: Called with one line per epoch.

    Raises:
        InputError: Fewer than two classes or too few crops.
    """
    torch = require("torch")
    labels = np.asarray(labels, np.int64)
    if len(np.unique(labels)) < 2 or len(labels) < 10:
        raise InputError("training needs at least 10 crops of at least 2 classes")
    threads = torch.get_num_threads()
    torch.set_num_threads(torch_threads())
    try:
        return _train(torch, images, labels, tuple(class_names), task, settings, log)
    finally:
        torch.set_num_threads(threads)


def _train(torch: Any, images: Sequence[np.ndarray], labels: np.ndarray,
           class_names: tuple[str, ...], task: str, s: MorphTrainSettings,
           log: LogFn | None) -> dict[str, Any]:
    rng = np.random.default_rng(s.seed)
    torch.manual_seed(s.seed)
    gen = torch.Generator(device=s.device).manual_seed(s.seed)
    x_all = torch.from_numpy(_stack(images, s.size, s.channels))
    tr, va = _stratified_split(labels, s.val_fraction, rng)
    n_cls = len(class_names)
    model = _net(n_cls, s.width, s.channels).to(s.device)
    if s.init:
        try:  # weights_only: a checkpoint is tensors and numbers, it never runs code
            start = torch.load(s.init, map_location=s.device, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file gets one message
            raise ConfigError(f"{s.init} is not a readable model file ({type(exc).__name__})"
                              ) from None
        if not isinstance(start, dict) or start.get("format") != CHECKPOINT_FORMAT:
            raise ConfigError(f"{s.init} is not a detect-track morphology model")
        if int(start["settings"]["width"]) != s.width:
            raise ConfigError(f"{s.init} has width {start['settings']['width']}, not {s.width}")
        if int(start["settings"].get("channels", 1)) != s.channels:
            raise ConfigError(f"{s.init} reads {start['settings'].get('channels', 1)}-channel "
                              f"crops, not {s.channels}")
        own = model.state_dict()
        model.load_state_dict({k: v for k, v in start["state_dict"].items()
                               if k in own and own[k].shape == v.shape}, strict=False)
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, s.epochs))
    loss_fn = torch.nn.CrossEntropyLoss()
    counts = np.bincount(labels[tr], minlength=n_cls).astype(np.float64)
    weights = (1.0 / np.maximum(counts, 1))[labels[tr]] if s.balanced else np.ones(len(tr))
    weights /= weights.sum()
    best: tuple[float, float] = (-1.0, math.inf)
    best_state = copy.deepcopy(model.state_dict())
    stale, history = 0, []
    for epoch in range(1, s.epochs + 1):
        model.train()
        order = tr[rng.choice(len(tr), size=len(tr), replace=True, p=weights)]
        total = 0.0
        for i in range(0, len(order), s.batch):
            idx = order[i:i + s.batch]
            if len(idx) < 2:
                continue
            xb = _augment(x_all[idx].to(s.device), gen)
            yb = torch.from_numpy(labels[idx]).to(s.device)
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        acc, vloss = _evaluate(torch, model, x_all[va], labels[va], s.device) if len(va) else (
            0.0, total / len(order))
        history.append({"epoch": epoch, "train_loss": total / len(order), "val_acc": acc,
                        "val_loss": vloss})
        if log is not None:
            log(f"epoch {epoch}: train loss {total / len(order):.4f}  val accuracy {acc:.3f}  "
                f"val loss {vloss:.4f}")
        if (acc, -vloss) > (best[0], -best[1]):
            best, stale = (acc, vloss), 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= s.patience:
                break
    return {"format": CHECKPOINT_FORMAT, "task": task, "class_names": list(class_names),
            "settings": asdict(s), "state_dict": best_state,
            "train": {"n_train": int(len(tr)), "n_val": int(len(va)), "val_accuracy": best[0],
                      "epochs_run": len(history)}}


def _evaluate(torch: Any, model: Any, x: Any, y: np.ndarray, device: str
              ) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        logits = _tta_logits(torch, model, x.to(device))
        loss = float(torch.nn.functional.cross_entropy(logits, torch.from_numpy(y).to(device)))
    return float((logits.argmax(1).cpu().numpy() == y).mean()), loss


#: Images (crops x views) per model call by default. Measured on 2 cores: 16 per call is
#: as fast as 512, and ONNX Runtime's memory grows by 36 MB instead of 480 MB.
IMAGES_PER_CALL = 16

#: The rotations / flips averaged at prediction, by number of views: (mirrored, k x 90°).
TTA_VIEWS: dict[int, tuple[tuple[bool, int], ...]] = {
    1: ((False, 0),),
    2: ((False, 0), (False, 2)),  # keeps an aligned head's long axis horizontal
    4: tuple((False, k) for k in range(4)),
    8: tuple((flip, k) for flip in (False, True) for k in range(4)),
}


def _tta_logits(torch: Any, model: Any, x: Any, views: int = 8) -> Any:
    """Mean log-probabilities over ``views`` rotations / flips (see ``TTA_VIEWS``)."""
    outs = []
    for flip, k in TTA_VIEWS[views]:
        xf = torch.flip(x, dims=[3]) if flip else x
        outs.append(torch.log_softmax(model(torch.rot90(xf, k, dims=[2, 3])), dim=1))
    return torch.stack(outs).mean(0)


def save_checkpoint(ckpt: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a checkpoint atomically (torch format)."""
    torch = require("torch")
    from detect_track.io.export import atomic_write

    return atomic_write(path, lambda p: torch.save(ckpt, p))


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
        self._model = _net(len(ckpt["class_names"]), int(ckpt["settings"]["width"]), channels)
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
        x = _stack(images, self.size, self.channels)
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
                    logp = _tta_logits(torch, self._model, xt[i:i + batch].to(self.device),
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
                   settings: MorphTrainSettings = MorphTrainSettings(),
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
