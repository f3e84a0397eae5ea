"""Simulate a microscopy video of semen with ground truth (:func:`simulate`).

Output files in ``out_dir`` (each written under a temporary name, then renamed):

* ``video.avi`` (MJPG), ``video.mp4`` (mp4v) or ``frames/000000.png ...`` (lossless):
  8-bit grayscale frames (AVI/MP4 store three equal channels).
* ``gt/gt.txt``: MOTChallenge rows ``frame (1-based), id, bb_left, bb_top, w, h, conf, 1,
  visibility`` for every sperm head whose centre is inside the frame (``conf = 1``). The
  box is centred exactly on the true head centre and spans the head's axis-aligned
  extent; it may reach past the frame edge. So that a head beating or jittering across
  an edge keeps its id (``keep_partial_heads``), a track that has started continues while
  its head box, widened by the beat's lateral swing, overlaps the frame; those rows, whose
  centre is outside the frame, have ``conf = 0`` ("ignore" in MOTChallenge: neither a
  miss nor a false positive), about 0.7 % of rows. Heads stuck in an agglutinate also
  have ``conf = 0``: overlapping heads cannot be localised one by one, and real
  annotations (VISEM-Tracking) label such a clump as one ``cluster``, not as sperm; WHO
  assesses motility on free spermatozoa. So do heads so far out of focus that less than
  ``MIN_RESOLVED_PEAK`` (0.3) of their in-focus peak contrast is left
  (:func:`~detect_track.synth.render.relative_peak`; ``resolved`` false in the points):
  nobody could annotate them, so finding one is neither a hit nor a false positive. A
  track never starts or ends on a row whose box is entirely outside the frame.
  ``visibility`` = fraction of the box inside the frame, lowered by up to half where other
  heads overlap it. Debris and round cells are not in the truth.
* ``truth_tracks.csv``: one row per track id of ``gt.txt``: the generating class
  (``motility``) and ``behaviour``, the true kinematics (computed with
  :func:`detect_track.measure.kinematics.kinematics_table`, window 5, on the noise-free head
  centres), the class the WHO rule gives on them (``rule_motility``), and the generating
  parameters (target VAP / ALH, beat frequency, head size, defocus, ...); ``ignore`` is
  true for agglutinated heads (left out of the sample percentages by the evaluation).
* ``truth_points.csv``: the noise-free head centre of every gt row (``frame`` 0-based,
  ``track_id``, ``x_px, y_px, x_um, y_um``, head ``angle_deg``, ``length_px``,
  ``width_px``, ``visibility``, ``in_focus``, ``resolved``).
* ``truth.json``: frame rate, scale, size, frame count, seed, the resolved look, the full
  configuration and class counts. Written last.

Written coordinates follow the box convention of the rest of detect-track (and of COCO,
ultralytics and OpenCV rectangles): x = column, pixel edges at integers, so the image
spans ``[0, width] x [0, height]`` and pixel ``(col, row)`` has its centre at ``(col +
0.5, row + 0.5)``; a head is in the field when its centre lies in that rectangle. (The
renderer works with pixel centres at integers; :data:`PIXEL_EDGE_OFFSET` converts.) A
cell that leaves the field (fully, with ``keep_partial_heads``) and comes back gets a new
id, so every id's frames are contiguous.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from detect_track.config import KinematicsConfig  # noqa: E402
from detect_track.errors import OutputError  # noqa: E402
from detect_track.measure.kinematics import kinematics_table  # noqa: E402
from detect_track.measure.motility import classify_motility  # noqa: E402

from .config import LOOKS, SynthConfig  # noqa: E402
from .motion import SWING, Cell, field_segments, simulate_cells  # noqa: E402
from .render import (  # noqa: E402
    MIN_RESOLVED_PEAK,
    Renderer,
    head_geometry,
    relative_peak,
    resolve_style,
)

#: A head within this distance (µm) of the focal plane counts as in focus.
IN_FOCUS_UM = 1.5
TRUTH_FORMAT = "detect-track-synth/2"  # /2: pixel-edge coordinates (/1: pixel centres)
#: renderer coordinates (pixel centres at integers) + this = written coordinates (edges)
PIXEL_EDGE_OFFSET = 0.5

TRACK_TRUTH_COLUMNS: tuple[str, ...] = (
    "track_id", "motility", "behaviour", "n_frames", "duration_s", "vcl_um_s", "vsl_um_s",
    "vap_um_s", "lin", "str", "wob", "alh_um", "alh_max_um", "bcf_hz", "mad_deg",
    "rule_motility", "first_frame", "last_frame", "target_vap_um_s", "target_alh_um",
    "beat_hz", "radius_um", "head_length_um", "head_width_um", "defocus_um", "in_focus",
    "cell_id", "cluster_id", "crossing_pair", "rule_checked", "ignore",
)


@dataclass(frozen=True)
class SynthResult:
    """Paths of a simulated video and its truth.

    Attributes:
        video_path: ``video.avi``, ``video.mp4`` or the ``frames`` folder.
        gt_path: ``gt/gt.txt`` (MOTChallenge head boxes).
        tracks_path: ``truth_tracks.csv`` (true kinematics and classes per track).
        meta_path: ``truth.json``.
        n_tracks: Number of true track ids.
    """

    video_path: Path
    gt_path: Path
    tracks_path: Path
    meta_path: Path
    n_tracks: int


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = _tmp_name(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_csv_atomic(df: pd.DataFrame, path: Path, float_format: str = "%.4f") -> None:
    tmp = _tmp_name(path)
    try:
        df.to_csv(tmp, index=False, float_format=float_format)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class _FrameWriter:
    """Write grayscale frames to a temporary AVI/MP4/PNG folder; ``commit`` renames it."""

    def __init__(self, out: Path, cfg: SynthConfig) -> None:
        self.fmt = cfg.video_format
        self.final = out / ("frames" if self.fmt == "png" else f"video.{self.fmt}")
        self.tmp = _tmp_name(self.final)
        self.index = 0
        self.writer: Any = None
        size = (cfg.width_px, cfg.height_px)
        if self.fmt == "png":
            self.tmp.mkdir()
            return
        if self.fmt == "avi":
            self.writer = cv2.VideoWriter(str(self.tmp), cv2.CAP_OPENCV_MJPEG,
                                          cv2.VideoWriter_fourcc(*"MJPG"), cfg.fps, size, True)
            if self.writer.isOpened():
                self.writer.set(cv2.VIDEOWRITER_PROP_QUALITY, float(cfg.jpeg_quality))
        else:
            self.writer = cv2.VideoWriter(str(self.tmp), cv2.CAP_FFMPEG,
                                          cv2.VideoWriter_fourcc(*"mp4v"), cfg.fps, size, True)
        if not self.writer.isOpened():
            self.discard()
            raise OutputError(f"cannot open a {self.fmt} video writer for {self.final}")

    def write(self, frame: np.ndarray) -> None:
        if self.fmt == "png":
            path = self.tmp / f"{self.index:06d}.png"
            if not cv2.imwrite(str(path), frame):
                raise OutputError(f"cannot write {path}")
        else:
            self.writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
        self.index += 1

    def commit(self) -> Path:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
        if self.final.is_dir():
            shutil.rmtree(self.final)
        os.replace(self.tmp, self.final)
        return self.final

    def discard(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
        if self.tmp.is_dir():
            shutil.rmtree(self.tmp, ignore_errors=True)
        elif self.tmp.exists():
            self.tmp.unlink()


def _drift(cfg: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """Common drift displacement of the sample per frame, ``(n_frames, 2)`` µm."""
    n = cfg.n_frames
    ang = rng.uniform(0, 2 * math.pi)
    t = np.arange(n) / cfg.fps
    wob = 1 + 0.2 * np.sin(2 * math.pi * t / rng.uniform(2.0, 8.0) + rng.uniform(0, 6.3))
    speed = cfg.drift_um_s * wob
    step = np.stack([speed * math.cos(ang), speed * math.sin(ang)], 1) / cfg.fps
    return np.concatenate([[[0.0, 0.0]], np.cumsum(step[:-1], 0)])


def _truth(cfg: SynthConfig, cells: list[Cell],
           brightfield: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ground-truth points (one row per head per frame in the field) and per-track table."""
    ppu = 1.0 / cfg.um_per_px
    w, h = cfg.width_px, cfg.height_px
    segs = []
    for cell in cells:
        x, y, yaw, a, b = head_geometry(cell, cfg.fps, ppu)
        ca, sa = np.abs(np.cos(yaw)), np.abs(np.sin(yaw))
        swing = SWING * float(cell.params.get("target_alh_um", 0.0)) * ppu
        half_w, half_h = np.hypot(a * ca, b * sa), np.hypot(a * sa, b * ca)
        for s0, s1 in field_segments(x, y, half_w, half_h, (-0.5, -0.5, w - 0.5, h - 0.5),
                                     swing if cfg.keep_partial_heads else None):
            segs.append((cell.f0 + s0, cell.agent_id, cell, s0, s1, x, y, yaw, a, b))
    segs.sort(key=lambda s: (s[0], s[1]))
    parts = []
    track_rows = []
    for tid, (f_start, _, cell, s0, s1, x, y, yaw, a, b) in enumerate(segs, start=1):
        sl = slice(s0, s1)
        ca, sa = np.abs(np.cos(yaw[sl])), np.abs(np.sin(yaw[sl]))
        bw = 2 * np.sqrt((a * ca) ** 2 + (b[sl] * sa) ** 2)
        bh = 2 * np.sqrt((a * sa) ** 2 + (b[sl] * ca) ** 2)
        xe, ye = x[sl] + PIXEL_EDGE_OFFSET, y[sl] + PIXEL_EDGE_OFFSET
        parts.append(pd.DataFrame({
            "frame": np.arange(f_start, f_start + s1 - s0), "track_id": tid,
            "x_px": xe, "y_px": ye, "x_um": xe / ppu, "y_um": ye / ppu,
            "angle_deg": np.degrees(yaw[sl]) % 360.0, "length_px": 2 * a,
            "width_px": 2 * b[sl], "box_w": bw, "box_h": bh,
            "in_focus": cell.defocus(sl) <= IN_FOCUS_UM,
            "resolved": relative_peak(cell.height(sl), cfg.head_blur_um, a / ppu, b[sl] / ppu,
                                      brightfield) >= MIN_RESOLVED_PEAK,
            "agglutinated": cell.cluster_id >= 0,
        }))
        lk, p = cell.look, cell.params
        track_rows.append({
            "track_id": tid, "motility": cell.motility, "behaviour": cell.behaviour,
            "first_frame": f_start, "last_frame": f_start + s1 - s0 - 1,
            "target_vap_um_s": p.get("target_vap_um_s", 0.0),
            "target_alh_um": p.get("target_alh_um", 0.0), "beat_hz": p.get("beat_hz", 0.0),
            "radius_um": p.get("radius_um", 0.0), "head_length_um": lk.length_um,
            "head_width_um": lk.width_um, "defocus_um": float(np.mean(cell.defocus(sl))),
            "in_focus": bool(np.mean(cell.defocus(sl)) <= IN_FOCUS_UM),
            "cell_id": cell.agent_id,
            "cluster_id": cell.cluster_id, "crossing_pair": p.get("pair_id", -1),
            "rule_checked": bool(p.get("rule_checked", False)),
            "ignore": cell.cluster_id >= 0,
        })
    cols = ["frame", "track_id", "x_px", "y_px", "x_um", "y_um", "angle_deg", "length_px",
            "width_px", "box_w", "box_h", "in_focus", "resolved", "agglutinated"]
    points = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
    points = points.sort_values(["frame", "track_id"], kind="stable").reset_index(drop=True)
    points["in_focus"] = points["in_focus"].astype(bool)
    points["resolved"] = points["resolved"].astype(bool)
    points["visibility"] = _visibility(points, w, h)
    meta = pd.DataFrame(track_rows)
    if len(points):
        kin = kinematics_table(points, um_per_px=cfg.um_per_px, fps=cfg.fps,
                               window_frames=KinematicsConfig().smoothing_window_frames)
        tracks = meta.merge(kin, on="track_id", how="left")
        tracks["rule_motility"] = classify_motility(tracks)["motility"]
        tracks = tracks[list(TRACK_TRUTH_COLUMNS)]
    else:
        tracks = pd.DataFrame(columns=list(TRACK_TRUTH_COLUMNS))
    return points, tracks


def _visibility(points: pd.DataFrame, w: int, h: int) -> np.ndarray:
    """Fraction of each box inside the frame, lowered by up to 1/2 by overlapping heads."""
    if len(points) == 0:
        return np.zeros(0)
    x1 = (points["x_px"] - points["box_w"] / 2).to_numpy()
    x2 = (points["x_px"] + points["box_w"] / 2).to_numpy()
    y1 = (points["y_px"] - points["box_h"] / 2).to_numpy()
    y2 = (points["y_px"] + points["box_h"] / 2).to_numpy()
    area = np.maximum((x2 - x1) * (y2 - y1), 1e-9)
    inside = (np.clip(x2, 0, w) - np.clip(x1, 0, w)) * (np.clip(y2, 0, h) - np.clip(y1, 0, h)) \
        / area
    overlap = np.zeros(len(points))
    frames = points["frame"].to_numpy()
    bounds = np.flatnonzero(np.diff(frames)) + 1
    for idx in np.split(np.arange(len(points)), bounds):
        if len(idx) < 2:
            continue
        ix = np.clip(np.minimum(x2[idx, None], x2[None, idx])
                     - np.maximum(x1[idx, None], x1[None, idx]), 0, None)
        iy = np.clip(np.minimum(y2[idx, None], y2[None, idx])
                     - np.maximum(y1[idx, None], y1[None, idx]), 0, None)
        inter = ix * iy
        np.fill_diagonal(inter, 0)
        overlap[idx] = np.clip(inter.max(1) / area[idx], 0, 1)
    return np.round(np.clip(inside, 0, 1) * (1 - 0.5 * overlap), 3)


def _gt_text(points: pd.DataFrame, w: int, h: int) -> str:
    """MOTChallenge lines; ``conf`` is 1 for a free head centred in the frame, else 0."""
    if len(points) == 0:
        return ""
    x, y = points["x_px"], points["y_px"]
    left = x - points["box_w"] / 2
    top = y - points["box_h"] / 2
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    conf = (inside & ~points["agglutinated"].astype(bool)
            & points["resolved"].astype(bool)).astype(int)
    lines = [
        f"{f + 1},{t},{bl:.3f},{bt:.3f},{bw:.3f},{bh:.3f},{c},1,{v:.3f}"
        for f, t, bl, bt, bw, bh, c, v in zip(points["frame"], points["track_id"], left, top,
                                             points["box_w"], points["box_h"], conf,
                                             points["visibility"], strict=True)
    ]
    return "\n".join(lines) + "\n"


DEFAULT_CONFIG = SynthConfig()


def simulate(out_dir: str | Path, cfg: SynthConfig = DEFAULT_CONFIG,
             progress: Callable[[int, int], None] | None = None) -> SynthResult:
    """Render a video of swimming sperm and write it with its ground truth.

    Frames are rendered and written one at a time (the video is never held in memory);
    every output file is written under a temporary name and renamed when complete. The
    same configuration (seed included) gives identical truth and identical frames.

    Args:
        out_dir: Folder to write into (created if missing). Earlier outputs of another
            video format (``video.avi``/``video.mp4``/``frames``) are removed.
        cfg: Simulator settings.
        progress: Called as ``progress(done, total)`` after each frame.

    Returns:
        Paths of the video and the truth files, and the number of true tracks.

    Raises:
        OutputError: If the folder or the video cannot be written.
    """
    out = Path(out_dir)
    try:
        (out / "gt").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder {out}: {exc}") from exc
    seeds = np.random.SeedSequence([int(cfg.seed) & 0xFFFFFFFF, 0x51A7]).spawn(4)
    rng_look, rng_motion, rng_scene = (np.random.default_rng(s) for s in seeds[:3])
    look = cfg.look if cfg.look != "random" else str(rng_look.choice(LOOKS))
    style = resolve_style(cfg, look)
    drift = _drift(cfg, rng_look)
    cells = simulate_cells(cfg, rng_motion, drift)
    points, tracks = _truth(cfg, cells, brightfield=look == "brightfield")

    renderer = Renderer(cfg, style, cells, drift / cfg.um_per_px, rng_scene,
                        noise_seed=int(seeds[3].generate_state(1)[0]))
    n = cfg.n_frames
    writer = _FrameWriter(out, cfg)
    try:
        for f in range(n):
            writer.write(renderer.render(f))
            if progress is not None:
                progress(f + 1, n)
        video_path = writer.commit()
    except BaseException:
        writer.discard()
        raise
    for stale in ("video.avi", "video.mp4", "frames"):
        p = out / stale
        if p != video_path and p.exists():
            shutil.rmtree(p) if p.is_dir() else p.unlink()

    gt_path = out / "gt" / "gt.txt"
    _write_text_atomic(gt_path, _gt_text(points, cfg.width_px, cfg.height_px))
    tracks_path = out / "truth_tracks.csv"
    _write_csv_atomic(tracks, tracks_path)
    pts = points[["frame", "track_id", "x_px", "y_px", "x_um", "y_um", "angle_deg",
                  "length_px", "width_px", "visibility", "in_focus", "resolved",
                  "agglutinated"]]
    _write_csv_atomic(pts, out / "truth_points.csv")

    per_frame = points.groupby("frame").size().reindex(range(n), fill_value=0)
    counts = {
        "tracks": {k: int((tracks["motility"] == k).sum())
                   for k in ("progressive", "non_progressive", "immotile")},
        "tracks_by_behaviour": {str(k): int(v) for k, v in
                                tracks["behaviour"].value_counts().sort_index().items()},
        "cell_lives": {k: int(sum(c.motility == k for c in cells))
                       for k in ("progressive", "non_progressive", "immotile")},
        "rule_agreement": float((tracks["motility"] == tracks["rule_motility"]).mean())
        if len(tracks) else math.nan,
        "mean_heads_per_frame": float(per_frame.mean()),
    }
    meta = {
        "format": TRUTH_FORMAT,
        "fps": cfg.fps,
        "um_per_px": cfg.um_per_px,
        "width_px": cfg.width_px,
        "height_px": cfg.height_px,
        "n_frames": n,
        "seed": cfg.seed,
        "look": look,
        "video": video_path.name,
        "n_tracks": int(len(tracks)),
        "class_counts": counts,
        "drift_um_per_s": (np.diff(drift, axis=0).mean(0) * cfg.fps).round(4).tolist()
        if n > 1 else [0.0, 0.0],
        "kinematics_window_frames": KinematicsConfig().smoothing_window_frames,
        "in_focus_um": IN_FOCUS_UM,
        "coordinates": "pixels, x = column, pixel edges at integers (the image spans "
                       "[0, width] x [0, height]; pixel (c, r) is centred at (c+0.5, r+0.5)); "
                       "gt.txt frames are 1-based, truth_points.csv frames 0-based",
        "config": dataclasses.asdict(cfg),
    }
    meta_path = out / "truth.json"
    _write_text_atomic(meta_path, json.dumps(meta, indent=2, allow_nan=True) + "\n")
    return SynthResult(video_path, gt_path, tracks_path, meta_path, int(len(tracks)))
