"""Detection benchmark: classical vs YOLO vs EfficientDet -> benchmarks/detection.md.

Held-out simulated videos (seeds 910000+, never used in training; conditions pushed
beyond the simulator's random draws: denser, noisier, blurrier, lower contrast, 0.35 and
1.15 µm/px, 15 and 100 fps) and the real stained-slide images of ../shared/data/
sperm-parsing-v2 (head boxes cut from the part masks; skipped with a note when absent).

Scores: COCO-style AP of head boxes at IoU 0.5 and 0.5:0.95 (class ``sperm``; heads
inside agglutinates and heads whose centre left the frame are ignore regions), precision
and recall at the operating threshold, cluster AP for the learned models, and CPU ms per
640x480 frame (median, 2 threads, after warm-up).

    python tools/bench_detection.py            # full run, writes benchmarks/detection.md
    python tools/bench_detection.py --quick    # fewer videos, prints only
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detect_track.config import Config, apply_overrides, load_config  # noqa: E402
from detect_track.detectors import create_detector  # noqa: E402
from detect_track.eval.boxes import BoxSet, detection_ap  # noqa: E402
from detect_track.io.video import FrameSource  # noqa: E402
from detect_track.ml import set_threads  # noqa: E402
from detect_track.synth import random_config, simulate  # noqa: E402
from detect_track.types import VideoMeta  # noqa: E402
from tools.bench_speed import cpu_model  # noqa: E402

THREADS = 2  # CPU threads of every model here
set_threads(THREADS)

SLIDES = ROOT.parent / "shared" / "data" / "sperm-parsing-v2"
#: ``name@X``: the detector with frames enlarged to X µm/px (``max_um_per_px``) first
DETECTORS = ("classical", "yolo", "yolo@0.4", "yolo-sim", "yolo-sim-raw", "yolo-sim*4",
             "yolo-sim@0.4", "effdet", "effdet-raw")
OPERATING = 0.5  # score at which precision / recall are reported (tracker.high_confidence)
SEED0 = 910_000
SLIDE_NATIVE_UM_PER_PX = 0.053  # estimated: median head length 85 px for a 4.5 µm head
SLIDE_UM_PER_PX = 0.3  # slides are resized to this before detection (all detectors)


def conditions(seed: int) -> dict[str, dict]:
    """Held-out conditions: overrides of the random draw for ``seed``."""
    base = random_config(seed)
    return {
        "typical": {},
        "dense": {"n_cells": min(320, int(base.n_cells * 2.5))},
        "noisy, low contrast": {"noise_std": min(16.0, base.noise_std * 2.0),
                                "head_contrast": base.head_contrast * 0.7},
        "blurred, defocused": {"blur_um": 1.0, "defocus_frac": 0.35},
        "0.35 um/px, 100 fps": {"um_per_px": 0.35, "fps": 100.0},
        "1.15 um/px, 15 fps": {"um_per_px": 1.15, "fps": 15.0},
    }


def gt_boxes(gt_txt: Path, points_csv: Path) -> dict[int, BoxSet]:
    """Per frame: free heads (class 0), agglutinates (class 1), ignored heads."""
    from detect_track.synth.dataset import frame_boxes

    labelled = frame_boxes(gt_txt, points_csv)
    cols = ["frame", "id", "left", "top", "w", "h", "conf", "cls", "vis"]
    gt = pd.read_csv(gt_txt, header=None, names=cols)
    gt["frame"] -= 1
    ignored = gt[gt["conf"] == 0]
    out = {}
    frames = set(labelled) | set(ignored["frame"].unique().tolist()) | set(gt["frame"])
    for f in frames:
        lab = labelled.get(f, np.zeros((0, 5)))
        ig = ignored[ignored["frame"] == f]
        ig_boxes = np.c_[ig["left"], ig["top"], ig["left"] + ig["w"], ig["top"] + ig["h"]]
        xyxy = np.r_[lab[:, :4], ig_boxes.reshape(-1, 4)]
        cls = np.r_[lab[:, 4].astype(int), np.zeros(len(ig), int)]
        ignore = np.r_[np.zeros(len(lab), bool), np.ones(len(ig), bool)]
        out[int(f)] = BoxSet.make(xyxy, cls, ignore=ignore)
    return out


def to_boxset(d) -> BoxSet:  # noqa: ANN001 - Detections
    return BoxSet.make(d.xyxy, d.class_id, d.confidence)


def simulated(n_seeds: int, frames_per_clip: int, tmp: Path) -> list[dict]:
    """Render the held-out clips; return frames, truth and metadata per clip."""
    clips = []
    for k in range(n_seeds):
        seed = SEED0 + k
        for name, over in conditions(seed).items():
            cfg = random_config(seed, **over)
            n_frames = frames_per_clip * 3
            cfg = random_config(seed, **over, duration_s=n_frames / cfg.fps,
                                video_format=str(np.random.default_rng(seed).choice(
                                    ["avi", "mp4"])))
            out = tmp / f"{seed}_{len(clips)}"
            res = simulate(out, cfg)
            truth = gt_boxes(res.gt_path, out / "truth_points.csv")
            frames = {i: f for i, f in FrameSource(res.video_path) if i % 3 == 0}
            clips.append({"condition": name, "seed": seed, "um_per_px": cfg.um_per_px,
                          "fps": cfg.fps, "frames": frames, "truth": truth,
                          "look": json.loads(res.meta_path.read_text())["look"]})
    return clips


def variant(name: str, cfg: Config) -> tuple[str, Config]:
    """``"yolo@0.4"`` -> ``("yolo", cfg with frames enlarged to 0.4 µm/px)``;
    ``"yolo*4"`` -> ``("yolo", cfg fusing 4 views of each frame)``;
    ``"yolo-raw"`` -> ``("yolo", cfg without the sperm verifier)``;
    ``"yolo-sim"`` -> ``("yolo", cfg with the sperm-sim preset's YOLO: simulation-trained
    weights and their verifier, the default until 2026-12-07)``."""
    name, _, views = name.partition("*")
    name, sim, rest = name.partition("-sim")
    name += rest
    name, raw, _ = name.partition("-raw")
    base, _, scale = name.partition("@")
    over: dict[str, object] = {}
    if sim:
        preset = load_config("sperm-sim").detector.yolo
        over.update({f"detector.yolo.{k}": getattr(preset, k) for k in
                     ("weights", "operating_confidence", "verifier", "verifier_operating")})
    if raw:
        over[f"detector.{base}.verifier"] = ""
    if views:
        over[f"detector.{base}.tta_views"] = int(views)
    if scale:
        um = float(scale)
        sec = getattr(cfg.detector, base)
        over.update({f"detector.{base}.max_um_per_px": um,
                     f"detector.{base}.min_um_per_px": min(um, sec.min_um_per_px)})
    return base, apply_overrides(cfg, over) if over else cfg


def run_detector(name: str, frames: dict[int, np.ndarray], um_per_px: float,
                 cfg: Config) -> dict[int, BoxSet]:
    name, cfg = variant(name, cfg)
    meta = VideoMeta(path="bench", fps=50.0, n_frames=len(frames), width_px=640,
                     height_px=480, um_per_px=um_per_px, um_per_px_source="config")
    det = create_detector(name, cfg, meta)
    return {i: to_boxset(det.detect(f)) for i, f in frames.items()}


def time_detector(name: str, cfg: Config, frames: list[np.ndarray]) -> float:
    name, cfg = variant(name, cfg)
    meta = VideoMeta(path="bench", fps=50.0, n_frames=len(frames), width_px=640,
                     height_px=480, um_per_px=0.7, um_per_px_source="config")
    det = create_detector(name, cfg, meta)
    for f in frames[:3]:
        det.detect(f)
    times = []
    for f in frames:
        t = time.perf_counter()
        det.detect(f)
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def slides(max_images: int) -> tuple[list[dict], str]:
    """Held-out half of the shared stained slides with head boxes from the part masks."""
    ann = SLIDES / "annotations.json"
    if not ann.is_file():
        return [], f"real slides skipped: {SLIDES} not found"
    data = json.loads(ann.read_text())
    images = sorted(data["images"], key=lambda im: im["file_name"])[1::2][:max_images]
    by_image: dict[int, list[dict]] = {}
    for a in data["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    out = []
    for im in images:
        boxes = []
        for a in by_image.get(im["id"], []):
            mask = cv2.imread(str(SLIDES / "parsing" / a["parsing"]), cv2.IMREAD_GRAYSCALE)
            ys, xs = np.nonzero((mask >= 1) & (mask <= 3))  # vacuole, acrosome, nucleus
            if len(xs):
                boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        img = cv2.imread(str(SLIDES / "images" / im["file_name"]), cv2.IMREAD_COLOR)
        # shown to every detector at SLIDE_UM_PER_PX (what the learned ones would do anyway)
        f = SLIDE_NATIVE_UM_PER_PX / SLIDE_UM_PER_PX
        img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        out.append({"name": im["file_name"], "image": img,
                    "truth": BoxSet.make(np.array(boxes, float).reshape(-1, 4) * f)})
    return out, f"{len(out)} held-out slide images (every second file of the shared set)"


def fmt(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 seed per condition, print only")
    ap.add_argument("--seeds", type=int, default=2, help="seeds per condition (default 2)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "detection.md"))
    ap.add_argument("--detectors", default=",".join(DETECTORS), help="comma-separated names")
    args = ap.parse_args()
    names = [n for n in args.detectors.split(",") if n]
    n_seeds = 1 if args.quick else args.seeds
    cfg = apply_overrides(Config(), {"detector.yolo.confidence": 0.01,
                                     "detector.effdet.confidence": 0.01})
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        clips = simulated(n_seeds, 6, Path(tmp))
    print(f"{len(clips)} held-out clips rendered ({time.time() - t0:.0f} s)", flush=True)
    rows, per_condition = [], []
    for name in names:
        gt_all, pred_all = {}, {}
        for c in clips:
            preds = run_detector(name, c["frames"], c["um_per_px"], cfg)
            key = f"{c['seed']}/{c['condition']}"
            g = {f"{key}/{i}": c["truth"].get(i, BoxSet.make(np.zeros((0, 4))))
                 for i in c["frames"]}
            p = {f"{key}/{i}": preds[i] for i in c["frames"]}
            gt_all.update(g)
            pred_all.update(p)
            r = detection_ap(g, p, (0,), OPERATING)
            per_condition.append({"detector": name, "condition": c["condition"], **r})
        r = detection_ap(gt_all, pred_all, (0,), OPERATING)
        rc = detection_ap(gt_all, pred_all, (1,), OPERATING) if name != "classical" else {}
        frames = [f for c in clips if c["condition"] == "typical" for f in c["frames"].values()]
        ms = time_detector(name, Config(), frames[:20])  # the default score floor
        rows.append({"detector": name, **r, "cluster_ap50": rc.get("map50", float("nan")),
                     "ms": ms})
        print(name, {k: round(v, 3) for k, v in r.items()}, f"{ms:.0f} ms", flush=True)
    slide_imgs, slide_note = slides(128)
    slide_rows = []
    um_slide = SLIDE_UM_PER_PX
    for name in names:
        if not slide_imgs:
            break
        if "@" in name:  # slides are shown at SLIDE_UM_PER_PX to every detector anyway
            continue
        meta_cfg = cfg
        preds, gts = {}, {}
        meta = VideoMeta(path="slides", fps=1.0, n_frames=1, width_px=1280, height_px=1024,
                         um_per_px=um_slide, um_per_px_source="config")
        base, meta_cfg = variant(name, meta_cfg)
        det = create_detector(base, meta_cfg, meta)
        for s in slide_imgs:
            preds[s["name"]] = to_boxset(det.detect(s["image"]))
            gts[s["name"]] = s["truth"]
        r = detection_ap(gts, preds, (0,), OPERATING)
        slide_rows.append({"detector": name, **r})
        print("slides", name, {k: round(v, 3) for k, v in r.items()}, flush=True)
    md = report(rows, per_condition, slide_rows, slide_note, n_seeds, len(clips), um_slide)
    if args.quick:
        print(md)
    else:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        tmp_out = Path(args.out).with_suffix(".md.tmp")
        tmp_out.write_text(md)
        os.replace(tmp_out, args.out)
        print(f"wrote {args.out} ({time.time() - t0:.0f} s)")


def report(rows: list[dict], per_condition: list[dict], slide_rows: list[dict],
           slide_note: str, n_seeds: int, n_clips: int, um_slide: float) -> str:
    import torch

    lines = [
        "# Detection benchmark",
        "",
        f"Generated {date.today().isoformat()} by `python tools/bench_detection.py` "
        f"({cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{THREADS} threads).",
        "",
        f"Held-out simulated videos: {n_clips} clips ({n_seeds} seeds x 6 conditions, seeds "
        f"{SEED0}+, never used in training), 640x480, 6 frames each. Conditions: 2.5x "
        "denser, 2x noise at 0.7x contrast, strong blur and defocus, 0.35 and 1.15 µm/px "
        "at 100 and 15 fps (motion blur). Density and frame rates go beyond the training "
        "draws; the noise, contrast, blur and defocus lie beyond the simulator's random "
        "draws but inside those of the hard 30 % of `sim-det-v4`, on which the "
        "simulation-trained YOLO (`yolo-sim`) was last fine-tuned (its card). `yolo` is the "
        "default since 2026-12-07, tuned on real phase-contrast frames (`benchmarks/real.md`, "
        "the yardstick): the simulator's look is not the real one, and this model was not "
        "tuned for it; `yolo-sim` (preset `sperm-sim`) is for simulated footage. Boxes are head "
        "boxes (the head's axis-aligned extent); heads inside agglutinates, heads whose "
        "centre left the frame and heads too far out of focus to be seen (less than 30 % "
        "of their in-focus peak contrast left) are ignore regions. Scores: COCO-style AP "
        "(101-point), "
        f"precision and recall at calibrated score >= {OPERATING} (each detector's "
        "operating point, where the tracker may start tracks), "
        "IoU 0.5. Time: median CPU ms per 640x480 frame, one frame at a time, after "
        "warm-up, at the default score floor, with each detector's default backend "
        "(YOLO: its ONNX export on OpenVINO, "
        "bfloat16 where the CPU has it; EfficientDet: torch). Every detector is told the "
        "true scale, so the learned ones drop `sperm` boxes shorter than "
        "`min_head_um` (2 µm) as specks, as they do on a video with a stated scale.",
        "",
        "| detector | mAP50 | mAP50-95 | precision | recall | F1 | cluster AP50 | ms / frame |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['detector']} | {fmt(r['map50'])} | {fmt(r['map50_95'])} | "
                     f"{fmt(r['precision'])} | {fmt(r['recall'])} | {fmt(r['f1'])} | "
                     f"{fmt(r['cluster_ap50'])} | {r['ms']:.0f} |")
    if any("-raw" in r["detector"] for r in rows):
        lines += ["", "`name-raw`: the detector alone, without the sperm verifier that its "
                  "configuration runs after it (`sperm-sim` for YOLO, the default for "
                  "EfficientDet; `detector.<name>.verifier=\"\"`). The "
                  "verifier (`detect_track/detectors/verify.py`, `weights/sperm-verifier.md`) "
                  "looks again at every `sperm` box in a 14 µm gray crop and tells heads from "
                  "debris; the box's score becomes the geometric mean of the detector's score "
                  "and its P(sperm), calibrated at `verifier_operating` (YOLO 0.35, EfficientDet "
                  "0.45). It was trained on the YOLO's boxes in simulated frames only, never "
                  "on slides. It trades some recall in the noisy and blurred conditions for "
                  "precision everywhere."]
    if any("@" in r["detector"] for r in rows):
        lines += ["", "`name@X`: the same detector with every frame coarser than X µm/px "
                  "enlarged to X first (`detector.<name>.max_um_per_px=X`; default 1.2). Heads "
                  "then span more pixels, which this small model detects and places better, "
                  "at the cost of detection time growing with the pixel count (about 3x for "
                  "0.7 µm/px video): an accuracy option (`yolo-sim@0.4` is the `sperm-accurate` "
                  "preset), not the default, which keeps the speed targets of "
                  "`benchmarks/speed.md`."]
    if any("*" in r["detector"] for r in rows):
        lines += ["", "`name*N`: the same detector run on N views of each frame (4: the "
                  "frame and its flips), the answers fused (`detector.<name>.tta_views=N`, "
                  "`detect_track/detectors/views.py`; it keeps the one-view operating points, "
                  "0.225 for the detector (next to the best validation F1 with 4 views, 0.2) "
                  "and 0.35 with the verifier): N times the detection time. The "
                  "still-image preset `sperm-slide` uses it; videos keep one view."]
    lines += ["", "## Per condition (mAP50 of heads / recall at the operating threshold)", "",
              "| condition | " + " | ".join(r["detector"] for r in rows) + " |",
              "|---|" + "---|" * len(rows)]
    conds = list(dict.fromkeys(p["condition"] for p in per_condition))
    for c in conds:
        cells = []
        for r in rows:
            sel = [p for p in per_condition if p["condition"] == c and p["detector"] ==
                   r["detector"]]
            cells.append(f"{np.mean([p['map50'] for p in sel]):.3f} / "
                         f"{np.mean([p['recall'] for p in sel]):.3f}")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines += ["", "## Real stained slides (sperm-parsing-v2)", ""]
    if slide_rows:
        lines += [
            f"{slide_note}; head boxes = bounding box of the vacuole, acrosome and nucleus "
            "mask of each annotated sperm. Bright-field, stained, colour, 1280x1024 at "
            f"about {SLIDE_NATIVE_UM_PER_PX} µm/px (estimated: median head length 85 px for "
            f"4.5 µm), resized to {um_slide} µm/px (the finest the learned detectors are "
            "trained for; they would resize them the same way) before detection. No detector "
            "has seen such images: this measures transfer, not fit.",
            "",
            "| detector | head mAP50 | mAP50-95 | precision | recall |",
            "|---|---|---|---|---|",
        ]
        for r in slide_rows:
            lines.append(f"| {r['detector']} | {fmt(r['map50'])} | {fmt(r['map50_95'])} | "
                         f"{fmt(r['precision'])} | {fmt(r['recall'])} |")
    else:
        lines.append(slide_note)
    lines += ["", "Reproduce: `python tools/bench_detection.py` (about 2 minutes on 2 cores)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
