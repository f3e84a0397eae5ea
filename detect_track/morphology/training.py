"""Training the crop classifiers: class-balanced sampling, augmentation, early stopping.

Training draws classes evenly (class-balanced sampling), augments with free rotation,
flips, contrast, blur and noise, and stops early on a stratified validation part; it can
start from another model's weights (:func:`transfer_settings`). The result is a checkpoint
dict for :func:`detect_track.morphology.cnn.save_checkpoint` and
:class:`detect_track.morphology.classifier.MorphologyClassifier`.

torch is imported only here and in :mod:`~detect_track.morphology.cnn` (the ``ml`` extra).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from detect_track.errors import ConfigError, InputError
from detect_track.ml import require, torch_threads
from detect_track.morphology.cnn import CHECKPOINT_FORMAT, build_net, stack_crops, tta_logits

LogFn = Callable[[str], None]


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
    x_all = torch.from_numpy(stack_crops(images, s.size, s.channels))
    tr, va = _stratified_split(labels, s.val_fraction, rng)
    n_cls = len(class_names)
    model = build_net(n_cls, s.width, s.channels).to(s.device)
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
        logits = tta_logits(torch, model, x.to(device))
        loss = float(torch.nn.functional.cross_entropy(logits, torch.from_numpy(y).to(device)))
    return float((logits.argmax(1).cpu().numpy() == y).mean()), loss
