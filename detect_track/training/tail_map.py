"""A small U-Net that maps where sperm midpieces and tails are on a bright-field slide.

The tail tracer (:mod:`detect_track.detectors.tails`) follows a map of thin lines. The
Hessian ridge map it uses by default answers to every thin dark line, and fades where a
stained tail is faint; this network learns the tail's look from the part masks of real
slides (Sperm Parsing v2: 4 midpiece, 5 tail) and gives a probability per pixel instead.

Input and output are at the tracer's working scale (:data:`UM_PER_PX`): one gray image,
standardised as :func:`standardise` does; output: one logit per pixel. Height and width
must be multiples of :data:`MULTIPLE` (the caller pads). That input contract lives with
the code that runs the shipped model through ONNX Runtime
(:mod:`detect_track.detectors.tail_map`); torch is needed only to train and export it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from detect_track.detectors.tail_map import (
    FORMAT,
    MULTIPLE,
    UM_PER_PX,
    pad_input,
)
from detect_track.ml import require, torch_threads, write_onnx

#: Part-mask values that are the tail line (midpiece, tail).
TAIL_PARTS = (4, 5)

LogFn = Callable[[str], None]


def _net(width: int) -> Any:
    torch = require("torch")
    nn = torch.nn

    def block(cin: int, cout: int) -> Any:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                             nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                             nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                             nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    class UNet(nn.Module):  # three poolings: 1, 1/2, 1/4, 1/8
        def __init__(self, w: int) -> None:
            super().__init__()
            self.e1, self.e2, self.e3 = block(1, w), block(w, 2 * w), block(2 * w, 4 * w)
            self.mid = block(4 * w, 4 * w)
            self.d3, self.d2, self.d1 = block(8 * w, 2 * w), block(4 * w, w), block(2 * w, w)
            self.out = nn.Conv2d(w, 1, 1)
            self.pool = nn.MaxPool2d(2)
            self.up = nn.Upsample(scale_factor=2, mode="nearest")

        def forward(self, x: Any) -> Any:
            e1 = self.e1(x)
            e2 = self.e2(self.pool(e1))
            e3 = self.e3(self.pool(e2))
            m = self.mid(self.pool(e3))
            d3 = self.d3(torch.cat([self.up(m), e3], 1))
            d2 = self.d2(torch.cat([self.up(d3), e2], 1))
            d1 = self.d1(torch.cat([self.up(d2), e1], 1))
            return self.out(d1)

    return UNet(width)


@dataclass(frozen=True)
class TailMapTrainSettings:
    """Training settings of the tail map."""

    steps: int = 1200  # optimiser steps
    batch: int = 8  # crops per step
    crop: int = 192  # side of the random training crops (px at the working scale)
    width: int = 12  # channels of the first level (x2, x4 deeper)
    lr: float = 3e-3  # AdamW learning rate (cosine decay)
    pos_weight: float = 3.0  # weight of tail pixels in the loss (they are ~2 % of pixels)
    seed: int = 0  # random seed
    device: str = "cpu"  # cpu or cuda:0


def tail_target(mask_paths: Sequence[Path], shape: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` float32 0/1 tail mask at ``shape`` from per-cell part masks."""
    acc: np.ndarray | None = None
    for p in mask_paths:
        m = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        if m is None:
            continue
        t = np.isin(m, TAIL_PARTS)
        acc = t if acc is None else (acc | t)
    if acc is None:
        return np.zeros(shape, np.float32)
    small = cv2.resize(acc.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    return (small >= 0.25).astype(np.float32)


def _augment(x: Any, y: Any, gen: Any) -> tuple[Any, Any]:
    """Random 90° rotation, flip, contrast, blur and noise of ``(B, 1, S, S)`` pairs."""
    torch = require("torch")
    k = int(torch.randint(0, 4, (1,), generator=gen))
    x, y = torch.rot90(x, k, dims=[2, 3]), torch.rot90(y, k, dims=[2, 3])
    if float(torch.rand(1, generator=gen)) < 0.5:
        x, y = torch.flip(x, dims=[3]), torch.flip(y, dims=[3])
    b = x.shape[0]
    x = x * (0.6 + 0.8 * torch.rand(b, 1, 1, 1, generator=gen))
    if float(torch.rand(1, generator=gen)) < 0.3:
        kern = torch.tensor([0.25, 0.5, 0.25])
        kern = (kern[:, None] * kern[None, :])[None, None]
        x = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"),
                                       kern)
    x = x + torch.randn(x.shape, generator=gen) * (0.5 * torch.rand(b, 1, 1, 1, generator=gen))
    return x, y


def train_tail_map(images: Sequence[np.ndarray], targets: Sequence[np.ndarray],
                   val_images: Sequence[np.ndarray], val_targets: Sequence[np.ndarray],
                   settings: TailMapTrainSettings = TailMapTrainSettings(),
                   log: LogFn | None = None) -> tuple[Any, dict[str, Any]]:
    """Train the tail map on standardised images and their 0/1 tail masks.

    Args:
        images: ``(H, W)`` float32 inputs (:func:`standardise`), at least ``crop`` px.
        targets: ``(H, W)`` 0/1 masks, same shapes.
        val_images: Validation inputs (whole images; their best model is kept).
        val_targets: Validation masks.
        settings: Training settings.
        log: Called with a line every 100 steps.

    Returns:
        ``(model, info)``: the torch module (eval mode, best validation F1) and a dict of
        ``val_f1``, ``threshold`` (of that F1) and ``steps``.
    """
    torch = require("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(torch_threads())
    try:
        return _train(torch, images, targets, val_images, val_targets, settings, log)
    finally:
        torch.set_num_threads(threads)


def _train(torch: Any, images: Sequence[np.ndarray], targets: Sequence[np.ndarray],
           val_images: Sequence[np.ndarray], val_targets: Sequence[np.ndarray],
           s: TailMapTrainSettings, log: LogFn | None) -> tuple[Any, dict[str, Any]]:
    import copy

    rng = np.random.default_rng(s.seed)
    torch.manual_seed(s.seed)
    gen = torch.Generator().manual_seed(s.seed)
    model = _net(s.width).to(s.device)
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=s.lr, total_steps=s.steps,
                                                pct_start=0.1)
    pos = torch.tensor([s.pos_weight], device=s.device)
    best: dict[str, Any] = {"val_f1": -1.0, "threshold": 0.5, "steps": 0}
    best_state = copy.deepcopy(model.state_dict())
    # Crops are drawn where tails are, half of the time, so each batch has some.
    tail_px = [np.argwhere(t > 0) for t in targets]
    for step in range(1, s.steps + 1):
        model.train()
        xb, yb = [], []
        for _ in range(s.batch):
            i = int(rng.integers(len(images)))
            h, w = images[i].shape
            if len(tail_px[i]) and rng.random() < 0.5:
                cy, cx = tail_px[i][rng.integers(len(tail_px[i]))]
                y0 = int(np.clip(cy - s.crop // 2, 0, h - s.crop))
                x0 = int(np.clip(cx - s.crop // 2, 0, w - s.crop))
            else:
                y0, x0 = int(rng.integers(h - s.crop + 1)), int(rng.integers(w - s.crop + 1))
            xb.append(images[i][y0:y0 + s.crop, x0:x0 + s.crop])
            yb.append(targets[i][y0:y0 + s.crop, x0:x0 + s.crop])
        x = torch.from_numpy(np.stack(xb)[:, None])
        y = torch.from_numpy(np.stack(yb)[:, None].astype(np.float32))
        x, y = _augment(x, y, gen)
        logits = model(x.to(s.device))
        y = y.to(s.device)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, pos_weight=pos)
        p = torch.sigmoid(logits)
        dice = 1 - (2 * (p * y).sum() + 1) / (p.sum() + y.sum() + 1)
        loss = bce + dice
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == s.steps:
            f1, thr = _val_f1(torch, model, val_images, val_targets, s.device)
            if log is not None:
                log(f"step {step}: loss {float(loss.detach()):.4f}  val F1 {f1:.3f} at {thr:.2f}")
            if f1 > best["val_f1"]:
                best = {"val_f1": f1, "threshold": thr, "steps": step}
                best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return model.eval(), best


def _val_f1(torch: Any, model: Any, images: Sequence[np.ndarray],
            targets: Sequence[np.ndarray], device: str) -> tuple[float, float]:
    """Best pixel F1 over thresholds, pooled over the validation images."""
    model.eval()
    thr = np.linspace(0.1, 0.9, 17)
    tp, fp, fn = np.zeros(len(thr)), np.zeros(len(thr)), np.zeros(len(thr))
    with torch.no_grad():
        for img, t in zip(images, targets, strict=True):
            x, (h, w) = pad_input(img), img.shape
            p = torch.sigmoid(model(torch.from_numpy(x[None, None]).to(device)))[0, 0, :h, :w]
            p = p.cpu().numpy()
            pos = t > 0
            for k, c in enumerate(thr):
                m = p >= c
                tp[k] += (m & pos).sum()
                fp[k] += (m & ~pos).sum()
                fn[k] += (~m & pos).sum()
    f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    k = int(np.argmax(f1))
    return float(f1[k]), float(thr[k])


def export_tail_map(model: Any, out: str | os.PathLike[str], info: dict[str, Any]) -> Path:
    """Write the model as ONNX (dynamic height and width) with its metadata, atomically."""
    torch = require("torch")
    from detect_track.io.export import atomic_write

    meta = {"um_per_px": UM_PER_PX, "multiple": MULTIPLE, **info}
    return atomic_write(out, lambda tmp: write_onnx(
        model.cpu().eval(), torch.zeros(1, 1, 64, 64), tmp, ("image", "logits"),
        {"image": {2: "height", 3: "width"}, "logits": {2: "height", 3: "width"}}, FORMAT,
        meta))
