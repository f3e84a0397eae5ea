"""Synthetic sperm-head crops of the five head shapes, plus unassessable crops.

Each crop shows one head (and the start of its midpiece) at a fixed pixel scale, so size
is a cue as it is under the microscope. Shapes follow the WHO / HuSHeM descriptions:

* ``normal``: smooth oval, length 4.0-5.0 µm, width 2.5-3.5 µm (length/width 1.3-1.9),
  acrosome cap over 40-70 % of the head;
* ``tapered``: cigar-shaped, length/width above 2, narrow (width 1.6-2.4 µm);
* ``pyriform``: pear-shaped, wide front and narrowing towards the midpiece;
* ``amorphous``: irregular outline (random low-frequency bumps, asymmetry);
* ``small``: an oval clearly below the normal size (length 2.4-3.4 µm);
* ``not_assessable``: a head strongly out of focus, covered by debris or another cell,
  or cut by the crop edge.

Looks: phase-contrast (dark or bright head with opposite halo), unstained bright-field
and stained bright-field (dark head, paler acrosome); texture, vacuoles, blur, noise and
illumination vary, and so does the camera resolution (1.2-6 px per µm: crops from videos
at 0.3-0.8 µm/px, fitted back to the crop scale, down to 100x still images). Everything
is drawn from a seeded generator.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from detect_track.morphology.cnn import HEAD_SHAPES

#: Pixels per µm of the crops (MHSMA-like: a normal head is ~ 20-30 px long).
PX_PER_UM = 6.0
_SS = 4  # supersampling of the outline


def head_outline(shape: str, rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
    """Head outline in µm, long axis along x, front (acrosome) at +x; returns (P, 2), L, W."""
    if shape == "tapered":
        length = rng.uniform(4.8, 6.2)
        width = rng.uniform(1.6, min(2.4, length / 2.1))
    elif shape == "small":
        length = rng.uniform(2.4, 3.4)
        width = length / rng.uniform(1.3, 1.8)
    elif shape == "pyriform":
        length = rng.uniform(4.0, 5.2)
        width = rng.uniform(2.6, 3.4)
    elif shape == "amorphous":
        length = rng.uniform(3.5, 5.8)
        width = rng.uniform(2.2, 4.2)
    else:  # normal (and the head behind an unassessable crop)
        length = rng.uniform(4.0, 5.0)
        width = length / rng.uniform(1.35, 1.85)
    t = np.linspace(0, 2 * math.pi, 181)[:-1]
    x = np.cos(t)  # -1 = back (midpiece), +1 = front
    y = np.sin(t)
    half = np.abs(y)
    if shape == "tapered":
        half = half ** rng.uniform(0.8, 1.1)
    elif shape == "pyriform":
        u = (x + 1) / 2  # 0 back .. 1 front
        half = half * (rng.uniform(0.3, 0.5) + (1 - rng.uniform(0.3, 0.5)) * u ** 0.7)
    radius = np.ones_like(t)
    if shape == "amorphous":
        for k in range(2, 6):
            radius += rng.uniform(0.04, 0.16) * np.cos(k * t + rng.uniform(0, 2 * math.pi))
        radius = np.clip(radius, 0.6, 1.5)
    px = x * length / 2 * radius
    py = np.sign(y) * half * width / 2 * radius
    if shape == "amorphous":  # a bent or lopsided head
        py += rng.uniform(-0.3, 0.3) * width * (x ** 2 - 0.5)
    return np.column_stack([px, py]), length, width


def _look(rng: np.random.Generator) -> str:
    return str(rng.choice(["phase_dark", "phase_bright", "unstained", "stained"],
                          p=[0.3, 0.2, 0.3, 0.2]))


def render_head(shape: str, rng: np.random.Generator, size: int = 64,
                native_px_per_um: float | None = None) -> np.ndarray:
    """Render one crop of the given class.

    Args:
        shape: One of :data:`~detect_track.morphology.cnn.HEAD_SHAPES`.
        rng: Random generator (everything is drawn from it).
        size: Crop side in pixels.
        native_px_per_um: The camera's resolution the crop is degraded to, px per µm
            (then fitted back to ``size``); None draws it at random between 1.2 and
            :data:`PX_PER_UM` (the training data). The same numbers are drawn either way.

    Returns:
        ``(size, size)`` uint8 crop.
    """
    if shape not in HEAD_SHAPES:
        raise ValueError(f"unknown head shape '{shape}'")
    base = shape if shape != "not_assessable" else str(
        rng.choice(["normal", "tapered", "pyriform", "amorphous", "small"]))
    pts, length, width = head_outline(base, rng)
    scale = PX_PER_UM * rng.uniform(0.9, 1.1)
    ang = rng.uniform(0, 2 * math.pi)
    rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
    centre = size / 2 + rng.normal(0, 1.5, 2)
    poly = (pts @ rot.T) * scale + centre
    big = size * _SS
    mask = np.zeros((big, big), np.uint8)
    cv2.fillPoly(mask, [np.round(poly * _SS).astype(np.int32)], 255)
    head = cv2.resize(mask.astype(np.float32) / 255, (size, size), interpolation=cv2.INTER_AREA)
    # coordinates along the head's long axis: acrosome in front, midpiece behind
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    along = ((xx - centre[0]) * math.cos(ang) + (yy - centre[1]) * math.sin(ang)) / scale
    across = (-(xx - centre[0]) * math.sin(ang) + (yy - centre[1]) * math.cos(ang)) / scale
    acro_frac = rng.uniform(0.4, 0.7)
    acrosome = head * (along > length / 2 - acro_frac * length).astype(np.float32)
    tail_len = rng.uniform(3.0, 8.0)
    tail_w = rng.uniform(0.35, 0.6)
    bend = rng.normal(0, 0.08)
    t_along = -along - length / 2
    t_across = across - bend * t_along ** 2
    tail = ((t_along > -0.3) & (t_along < tail_len)).astype(np.float32) * np.exp(
        -(t_across ** 2) / (2 * tail_w ** 2))
    texture = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), 1.5)
    look = _look(rng)
    contrast = rng.uniform(25, 70)
    if look == "phase_dark":
        body = -(head * (1 + 0.15 * texture) + 0.25 * acrosome) + 0.5 * tail * -1
        halo = 0.35
    elif look == "phase_bright":
        body = head * (1 + 0.15 * texture) + 0.3 * acrosome + 0.4 * tail
        halo = -0.35
    elif look == "stained":
        body = -(head * (1 + 0.1 * texture) - 0.45 * acrosome) - 0.5 * tail
        halo = 0.0
    else:  # unstained bright-field: a bright rim (MHSMA-like)
        rim = cv2.GaussianBlur(head, (0, 0), 1.0) - cv2.GaussianBlur(head, (0, 0), 2.5)
        body = 1.6 * (-0.4 * head + 1.5 * rim + 0.2 * acrosome - 0.3 * tail)
        halo = 0.15
    for _ in range(int(rng.integers(0, 3)) if rng.random() < 0.4 else 0):  # vacuoles
        vx, vy = rng.uniform(-0.3, 0.3) * length, rng.uniform(-0.25, 0.25) * width
        r = rng.uniform(0.25, 0.5)
        spot = np.exp(-((along - vx) ** 2 + (across - vy) ** 2) / (2 * r ** 2)) * head
        body += 0.5 * np.sign(halo or 1) * spot
    img = body + halo * (cv2.GaussianBlur(head, (0, 0), 3.0) - head) * 1.5
    blur = rng.uniform(0.5, 1.2)
    occluded = False
    if shape == "not_assessable":
        kind = rng.choice(["defocus", "occluded", "edge"], p=[0.45, 0.35, 0.2])
        if kind == "defocus":  # blurred well beyond the head's width
            blur = rng.uniform(4.5, 8.0)
        elif kind == "occluded":
            occluded = True
        else:
            shift = rng.choice([-1, 1], 2) * rng.uniform(0.3, 0.42) * size
            img = np.roll(img, np.round(shift).astype(int), axis=(0, 1))
            img[:int(max(shift[0], 0)), :] = 0
            img[:, :int(max(shift[1], 0))] = 0
    if occluded:  # debris or another head covering most of it
        ox, oy = centre + rng.normal(0, 3, 2)
        r = rng.uniform(0.5, 0.8) * length * scale / 2
        blob = np.exp(-(((xx - ox) ** 2 + (yy - oy) ** 2) / (2 * r ** 2)) ** 1.5)
        img = img * (1 - blob) + blob * rng.choice([-1.2, 1.2]) * (1 + 0.3 * texture)
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), blur)
    background = rng.uniform(80, 180)
    grad = rng.uniform(-8, 8) * (xx / size - 0.5) + rng.uniform(-8, 8) * (yy / size - 0.5)
    out = background + grad + contrast * img
    # camera resolution: a crop from a video at 0.3-1 µm/px holds 1-3 px per µm, fitted
    # back to this crop's scale by the classifier; slides and 100x images keep all detail
    native = PX_PER_UM * math.exp(rng.uniform(math.log(1.2 / PX_PER_UM), 0.0))
    if native_px_per_um is not None:
        native = float(native_px_per_um)
    if native < PX_PER_UM * 0.9:
        small = max(8, round(size * native / PX_PER_UM))
        low = cv2.resize(out.astype(np.float32), (small, small), interpolation=cv2.INTER_AREA)
        low = low + rng.normal(0, rng.uniform(1.5, 5.0), low.shape)
        out = cv2.resize(low, (size, size), interpolation=cv2.INTER_LINEAR)
    else:
        out = out + rng.normal(0, rng.uniform(1.5, 6.0), out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def head_dataset(n_per_class: int, seed: int, size: int = 64,
                 classes: tuple[str, ...] = HEAD_SHAPES) -> tuple[list[np.ndarray], np.ndarray]:
    """``n_per_class`` crops of each class, shuffled; returns crops and class indices."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(classes)), n_per_class)
    rng.shuffle(labels)
    return [render_head(classes[k], rng, size) for k in labels], labels


def write_head_folder(out_dir: str | os.PathLike[str], n_per_class: int, seed: int,
                      size: int = 64, progress: Callable[[int, int], None] | None = None
                      ) -> Path:
    """Write a class-folder dataset (``OUT/<class>/<i>.png``) of synthetic heads."""
    out = Path(out_dir)
    images, labels = head_dataset(n_per_class, seed, size)
    for c in HEAD_SHAPES:
        (out / c).mkdir(parents=True, exist_ok=True)
    for i, (img, k) in enumerate(zip(images, labels, strict=True)):
        cv2.imwrite(str(out / HEAD_SHAPES[k] / f"{i:05d}.png"), img)
        if progress is not None:
            progress(i + 1, len(images))
    return out
