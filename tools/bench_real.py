"""Real-footage benchmark: the yardstick of the video detector -> benchmarks/real.md.

1. Real annotated frames: VISEM-Tracking video 11, frames 0-99 (human semen, unstained,
   phase contrast, 640x480, ~49 fps; ../shared/data/visem-tracking-frames). Frames
   ``TUNE`` (0-54) may be trained and tuned on; frames ``HELD`` (65-99) are only ever
   measured; 55-64 are a gap so that the two parts do not share near-identical frames.
   - detection: every detector frame by frame at its operating point (calibrated
     confidence >= 0.5): recall and precision of head centres within 6 px (about 3 µm) of
     an annotated box centre, one-to-one per frame (Hungarian); predictions inside an
     annotated ``cluster`` box are ignored; AP of the ranked answers at the same radius;
   - the whole pipeline (``detect-track FRAMES --fps 49 --um-per-px 0.5``): recall and
     precision of the published trajectory rows, HOTA / IDF1 / ID switches against the
     annotated track ids; trackpy ``locate`` + ``link`` on the same frames as the peer.
2. Plausibility on ../shared/data/real-phase-contrast-unlabelled (no truth): cells per
   frame, % per motility class, track lengths, and one frame per clip with the detections
   drawn (benchmarks/real/*.jpg: look at them).

Scale: VISEM publishes none; heads are about 9 px long and a human head is 4-5 µm, so
0.5 µm/px is assumed for VISEM (and for the unlabelled clips, whose scale is unknown).

    python tools/bench_real.py                       # writes benchmarks/real.md (~5 min)
    python tools/bench_real.py --quick               # default detector only, prints only
    python tools/bench_real.py --yolo-weights runs/x/best.pt --quick   # try a candidate
"""

from __future__ import annotations

import argparse
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

from detect_track.config import Config, apply_overrides  # noqa: E402
from detect_track.detectors import create_detector  # noqa: E402
from detect_track.eval.metrics import detection_metrics, tracking_metrics  # noqa: E402
from detect_track.io.video import FrameSource  # noqa: E402
from detect_track.ml import set_threads  # noqa: E402
from detect_track.pipeline import run_video  # noqa: E402
from detect_track.types import VideoMeta  # noqa: E402
from tools.bench_detection import variant  # noqa: E402
from tools.bench_speed import cpu_model  # noqa: E402

THREADS = 2  # CPU threads of every model here
set_threads(THREADS)

SHARED = ROOT.parent / "shared" / "data"
VISEM = SHARED / "visem-tracking-frames" / "video_11"
UNLABELLED = SHARED / "real-phase-contrast-unlabelled"
TUNE = range(0, 55)  # frames that training and tuning may use
HELD = range(65, 100)  # frames only ever measured
FPS = 49.0
UM_PER_PX = 0.5  # assumed: ~9 px heads of 4-5 µm
RADIUS_PX = 6.0  # about 3 µm at 0.5 µm/px
OPERATING = 0.5  # calibrated confidence of each detector's operating point
TRACKED = ("sperm", "small_or_pinhead")
#: ``yolo-sim``: the simulation-trained YOLO with its verifier (preset sperm-sim), the
#: default until 2026-12-07
DETECTORS = ("yolo", "yolo-sim", "effdet", "classical")
FIGURES = ROOT / "benchmarks" / "real"
TRACKPY_MINMASS = 1100  # tuned on TUNE (see run_trackpy)


def load_visem(root: Path = VISEM) -> tuple[dict[int, Path], pd.DataFrame, dict[int, np.ndarray]]:
    """Frames, annotated heads (``frame, track_id, x, y`` in px) and cluster boxes per frame."""
    frames, rows, clusters = {}, [], {}
    for img in (root / "images").glob("11_frame_*.jpg"):
        i = int(img.stem.rsplit("_", 1)[1])
        frames[i] = img
        h, w = cv2.imread(str(img), cv2.IMREAD_GRAYSCALE).shape
        for line in (root / "labels_ftid" / f"{img.stem}_with_ftid.txt").read_text().split("\n"):
            if line.strip():
                tid, _, cx, cy, _, _ = line.split()
                rows.append((i, tid, float(cx) * w, float(cy) * h))
        boxes = []
        for line in (root / "labels" / f"{img.stem}.txt").read_text().split("\n"):
            parts = line.split()
            if parts and parts[0] == "1":
                cx, cy, bw, bh = (float(v) for v in parts[1:5])
                boxes.append(((cx - bw / 2) * w, (cy - bh / 2) * h,
                              (cx + bw / 2) * w, (cy + bh / 2) * h))
        clusters[i] = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    gt = pd.DataFrame(rows, columns=["frame", "track_id", "x", "y"])
    gt["track_id"] = pd.factorize(gt["track_id"])[0]
    return dict(sorted(frames.items())), gt, clusters


def drop_in_clusters(pred: pd.DataFrame, clusters: dict[int, np.ndarray]) -> pd.DataFrame:
    """Predictions whose centre lies outside every annotated cluster box of its frame."""
    keep = np.ones(len(pred), dtype=bool)
    fr, x, y = (pred[c].to_numpy() for c in ("frame", "x", "y"))
    for k in range(len(pred)):
        b = clusters.get(int(fr[k]))
        if b is not None and len(b):
            inside = (b[:, 0] <= x[k]) & (x[k] <= b[:, 2]) & (b[:, 1] <= y[k]) & (y[k] <= b[:, 3])
            keep[k] = not inside.any()
    return pred[keep]


def detect_frames(name: str, cfg: Config, frames: dict[int, Path]) -> tuple[pd.DataFrame, float]:
    """Sperm-head answers of one detector per frame (``frame, x, y, confidence``), ms/frame."""
    base, cfg = variant(name, cfg)
    meta = VideoMeta(path="visem", fps=FPS, n_frames=len(frames), width_px=640, height_px=480,
                     um_per_px=UM_PER_PX, um_per_px_source="cli")
    det = create_detector(base, cfg, meta)
    names = list(det.class_names)
    keep = [names.index(n) for n in TRACKED if n in names]
    rows, times = [], []
    for i, path in frames.items():
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        t = time.perf_counter()
        d = det.detect(img)
        times.append(time.perf_counter() - t)
        m = np.isin(d.class_id, keep)
        c = (d.xyxy[m, :2] + d.xyxy[m, 2:]) / 2
        rows += [(i, x, y, s) for (x, y), s in zip(c, d.confidence[m], strict=True)]
    return pd.DataFrame(rows, columns=["frame", "x", "y", "confidence"]), 1000 * float(
        np.median(times[2:] or times))


def run_pipeline(cfg: Config, frames: dict[int, Path], tmp: Path) -> pd.DataFrame:
    """The whole pipeline on these frames: trajectory rows as ``frame, track_id, x, y``."""
    folder = tmp / f"frames_{min(frames)}_{max(frames)}"
    folder.mkdir(exist_ok=True)
    for k, i in enumerate(frames):
        link = folder / f"{k:05d}.jpg"
        if not link.exists():
            link.symlink_to(frames[i])
    res = run_video(folder, cfg, fps=FPS, um_per_px=UM_PER_PX)
    t = res.trajectories
    first = min(frames)
    return pd.DataFrame({"frame": t["frame"].to_numpy() + first, "track_id": t["track_id"],
                         "x": t["x_px"], "y": t["y_px"]})


def run_trackpy(frames: dict[int, Path]) -> pd.DataFrame:
    """trackpy ``batch`` and ``link`` with the peer's settings tuned on the tune frames.

    Bright features of 11 px with ``minmass`` 1100 (the best F1 of a sweep of diameter 9 /
    11 / 13 and minmass 400-2500 on frames 0-54: recall 0.88, precision 0.75), linked over
    14 px (350 µm/s at 49 fps and 0.5 µm/px) with a memory of 5 frames.
    """
    import trackpy as tp

    tp.quiet()
    imgs = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in frames.values()]
    feats = tp.batch(np.stack(imgs), diameter=11, minmass=TRACKPY_MINMASS, processes=1)
    linked = tp.link(feats, search_range=14, memory=5)
    first = min(frames)
    return pd.DataFrame({"frame": linked["frame"].to_numpy() + first,
                         "track_id": linked["particle"], "x": linked["x"] + 0.5,
                         "y": linked["y"] + 0.5})  # trackpy: pixel centres at integers


def score(gt: pd.DataFrame, pred: pd.DataFrame, clusters: dict[int, np.ndarray],
          part: range, tracks: bool) -> dict:
    """Detection (and with ``tracks`` tracking) scores on the frames of ``part``."""
    g = gt[gt["frame"].isin(part)]
    p = drop_in_clusters(pred[pred["frame"].isin(part)], clusters)
    out = detection_metrics(g, p, RADIUS_PX)
    if tracks:
        out.update(tracking_metrics(g, p, RADIUS_PX))
    return out


def draw(path: Path, img: np.ndarray, pred: pd.DataFrame, gt: pd.DataFrame | None) -> None:
    """JPEG of a frame: true heads as green circles, answers as red crosses."""
    out = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if gt is not None:
        for x, y in gt[["x", "y"]].to_numpy():
            cv2.circle(out, (round(x), round(y)), int(RADIUS_PX), (0, 200, 0), 1)
    for x, y in pred[["x", "y"]].to_numpy():
        cv2.drawMarker(out, (round(x), round(y)), (0, 0, 255), cv2.MARKER_CROSS, 7, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), out, [cv2.IMWRITE_JPEG_QUALITY, 90])


def plausibility(cfg: Config, tmp: Path) -> list[dict]:
    """The default pipeline on the unlabelled real clips and stills (no truth)."""
    rows = []
    for clip in sorted((UNLABELLED / "nashiffrd").glob("*.mp4")):
        res = run_video(clip, cfg, um_per_px=UM_PER_PX)
        t, tr = res.trajectories, res.tracks
        n_frames = int(res.meta.n_frames) if res.meta.n_frames > 0 else t["frame"].max() + 1
        pct = tr["motility"].value_counts(normalize=True) * 100 if len(tr) else pd.Series()
        mid = n_frames // 2
        frame = next(f for i, f in FrameSource(clip) if i == mid)
        gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        at = t[t["frame"] == mid]
        draw(FIGURES / f"{clip.stem}.jpg", gray, at.rename(columns={"x_px": "x", "y_px": "y"}),
             None)
        rows.append({"input": f"nashiffrd/{clip.name}", "frames": n_frames,
                     "cells_per_frame": len(t[~t["interpolated"].astype(bool)]) / n_frames,
                     "tracks": len(tr), "median_track_s": float(tr["duration_s"].median())
                     if len(tr) else float("nan"),
                     **{k: float(pct.get(k, 0.0)) for k in
                        ("progressive", "non_progressive", "immotile")}})
    stills = sorted((UNLABELLED / "singan-sperm-frames").glob("*.jpg"))
    if stills:
        det_rows, _ = detect_frames("yolo", cfg, dict(enumerate(stills)))
        for i, s in enumerate(stills):
            d = det_rows[(det_rows["frame"] == i) & (det_rows["confidence"] >= OPERATING)]
            draw(FIGURES / f"{s.stem}.jpg", cv2.imread(str(s), cv2.IMREAD_GRAYSCALE), d, None)
            rows.append({"input": f"singan-sperm-frames/{s.name}", "frames": 1,
                         "cells_per_frame": float(len(d))})
    return rows


def fmt(x: object, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "n/a"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def report(det_rows: list[dict], trk_rows: list[dict], plaus: list[dict], cmd: str) -> str:
    lines = [
        "# Real footage benchmark",
        "",
        f"`{cmd}` ({date.today().isoformat()}, {cpu_model()}, 2 threads). See the tool's "
        "docstring for the protocol.",
        "",
        f"Data: VISEM-Tracking video 11 (real, unstained phase contrast, 640x480, ~{FPS:g} "
        f"fps), frames {TUNE.start}-{TUNE.stop - 1} = **tune** (may be trained and tuned on), "
        f"{HELD.start}-{HELD.stop - 1} = **held-out** (only measured), {UM_PER_PX} µm/px "
        f"assumed. A head counts as found when an answer's centre lies within {RADIUS_PX:g} px "
        "of its annotated box centre (one-to-one per frame); answers inside annotated "
        "`cluster` boxes are ignored. Targets (issue 32), on the held-out frames: recall and "
        "precision >= 0.90, tracking HOTA >= 0.70, and above trackpy. `yolo` is the default "
        "(tuned on the tune frames, weights/yolo-sperm.md); `yolo-sim` the simulation-trained "
        "default before it, with its sperm verifier (preset `sperm-sim`).",
        "",
        "## Detection, frame by frame, at the operating point (calibrated confidence >= 0.5)",
        "",
        "| detector | part | recall | precision | F1 | AP | heads | answers | ms / frame |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in det_rows:
        lines.append(f"| {r['name']} | {r['part']} | {fmt(r['recall'])} | {fmt(r['precision'])} "
                     f"| {fmt(r['f1'])} | {fmt(r['ap50'])} | {r['n_gt']} | {r['n_pred']} | "
                     f"{fmt(r.get('ms'), 0)} |")
    lines += [
        "",
        "## Whole pipeline: published trajectory rows against the annotated tracks",
        "",
        "`detect-track FRAMES --fps 49 --um-per-px 0.5 detector.name=NAME` on each part "
        "alone; trackpy: `batch(diameter=11, minmass=1100)` (tuned on the tune frames) + "
        "`link(search_range=14, memory=5)`.",
        "",
        "| pipeline | part | recall | precision | HOTA | DetA | AssA | IDF1 | IDSW | tracks "
        "(true) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in trk_rows:
        lines.append(f"| {r['name']} | {r['part']} | {fmt(r['recall'])} | {fmt(r['precision'])} "
                     f"| {fmt(r['HOTA'])} | {fmt(r['DetA'])} | {fmt(r['AssA'])} | "
                     f"{fmt(r['IDF1'])} | {r['IDSW']} | {r['n_pred_tracks']} "
                     f"({r['n_gt_tracks']}) |")
    lines += [
        "",
        "## Plausibility on unlabelled real footage (default pipeline, no truth)",
        "",
        f"../shared/data/real-phase-contrast-unlabelled at {UM_PER_PX} µm/px (scale unknown), "
        "container frame rates. The middle frame of each clip with its tracked cells drawn "
        "(red crosses) is in `benchmarks/real/`.",
        "",
        "| input | frames | cells / frame | tracks | median track s | % progressive | "
        "% non-progressive | % immotile |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in plaus:
        lines.append(f"| {r['input']} | {r['frames']} | {fmt(r['cells_per_frame'], 1)} | "
                     f"{r.get('tracks', '')} | {fmt(r.get('median_track_s'), 2)} | "
                     f"{fmt(r.get('progressive'), 0)} | {fmt(r.get('non_progressive'), 0)} | "
                     f"{fmt(r.get('immotile'), 0)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="print only, no plausibility part")
    ap.add_argument("--detectors", default=",".join(DETECTORS), help="comma-separated names")
    ap.add_argument("--detect-only", action="store_true", help="skip the pipeline and trackpy")
    ap.add_argument("--yolo-weights", default="", help="evaluate these YOLO weights instead")
    ap.add_argument("--set", nargs="*", default=[], help="config overrides KEY=VALUE")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "real.md"))
    args = ap.parse_args()
    if not (VISEM / "images").is_dir():
        print(f"note: {VISEM} is absent; nothing to measure")
        return
    over: dict[str, object] = dict(kv.split("=", 1) for kv in args.set)
    if args.yolo_weights:
        over["detector.yolo.weights"] = args.yolo_weights
    cfg = apply_overrides(Config(), over) if over else Config()
    frames, gt, clusters = load_visem()
    parts = {"tune": TUNE, "held-out": HELD}
    det_rows, trk_rows = [], []
    t0 = time.time()
    names = [n for n in args.detectors.split(",") if n]
    for name in names:
        pred, ms = detect_frames(name, cfg, frames)
        strong = pred[pred["confidence"] >= OPERATING]
        for part_name, part in parts.items():
            ap50 = score(gt, pred, clusters, part, tracks=False)["ap50"]  # every answer ranked
            r0 = score(gt, strong, clusters, part, tracks=False)
            det_rows.append({"name": name, "part": part_name, **r0, "ap50": ap50, "ms": ms})
            print("detect", name, part_name, {k: round(v, 3) for k, v in r0.items()
                                              if k in ("recall", "precision")},
                  f"AP {ap50:.3f}", f"{ms:.0f} ms", flush=True)
        mid = HELD.start + len(HELD) // 2
        draw(FIGURES / f"visem11_frame{mid}_{name}.jpg",
             cv2.imread(str(frames[mid]), cv2.IMREAD_GRAYSCALE),
             strong[strong["frame"] == mid], gt[gt["frame"] == mid])
    with tempfile.TemporaryDirectory() as tmp:
        pipelines = [n for n in names if n == "yolo-sim" or "-" not in n and "*" not in n]
        pipelines.append("trackpy")
        for name in [] if args.detect_only else pipelines:
            for part_name, part in parts.items():
                sub = {i: frames[i] for i in part}
                if name == "trackpy":
                    pred = run_trackpy(sub)
                else:
                    base, pcfg = variant(name, cfg)
                    pred = run_pipeline(apply_overrides(pcfg, {"detector.name": base}), sub,
                                        Path(tmp))
                r = score(gt, pred, clusters, part, tracks=True)
                trk_rows.append({"name": name, "part": part_name, **r})
                print("track", name, part_name, {k: round(r[k], 3) for k in
                                                 ("recall", "precision", "HOTA", "IDF1")},
                      f"IDSW {r['IDSW']}", flush=True)
        plaus = [] if args.quick else plausibility(cfg, Path(tmp))
    cmd = "python " + " ".join([Path(sys.argv[0]).relative_to(ROOT).as_posix()
                                if Path(sys.argv[0]).is_absolute() else sys.argv[0],
                                *sys.argv[1:]])
    md = report(det_rows, trk_rows, plaus, cmd)
    if args.quick:
        print(md)
        return
    tmp_out = Path(args.out).with_suffix(".md.tmp")
    tmp_out.write_text(md)
    os.replace(tmp_out, args.out)
    print(f"wrote {args.out} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
