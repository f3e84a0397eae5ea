"""Fine-tune the YOLO sperm detector on real annotated frames (weights/yolo-sperm.pt).

The recipe of the shipped default detector, in resumable pieces (each well under 40 min on
2 CPU cores):

1. builds ``datasets/generated/visem11-tune`` (git-ignored) from the **tune** frames of
   ../shared/data/visem-tracking-frames (``tools/bench_real.TUNE``: frames 0-44 train,
   45-54 validation; the benchmark's held-out frames 65-99 are never read). Heads become
   10x10 px boxes (5 µm at the assumed 0.5 µm/px, the simulator's head-box convention)
   around the annotated centres, since VISEM's boxes are drawn generously (~17x18 px);
   ``cluster`` boxes are kept as annotated; every 3rd tile of a small simulated set
   (``SIM_SPEC``, 300 tiles rendered into ``datasets/generated/sim-mix``) is mixed in;
2. trains ``--epochs`` epochs from ``--init`` (default: the simulation-trained
   ``weights/yolo-sperm-sim.pt``; give a previous run's ``last.pt`` to continue) with the
   augmentations of :mod:`detect_track.training.yolo` (flips, mosaic, brightness, scale);
3. chooses the operating confidence on the validation frames by the benchmark's own
   criterion (head centre within 6 px, best F1) and prints it;
4. with ``--ship``: copies ``best.pt`` to ``weights/yolo-sperm.pt`` and exports the ONNX file.

    python tools/train_yolo_real.py --epochs 30 --out runs/real1            # ~15-30 min
    DETECT_TRACK_TRUST_MODELS=1 python tools/train_yolo_real.py \
        --init runs/real1/train/weights/last.pt --epochs 5 --lr0 0.001 --out runs/real2 --ship

(A run's own checkpoint lies outside weights/, so continuing from it needs
DETECT_TRACK_TRUST_MODELS=1: it is your file. The shipped file's exact pieces are in
weights/yolo-sperm.md.)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detect_track.config import Config, apply_overrides  # noqa: E402
from detect_track.eval.metrics import detection_metrics  # noqa: E402
from detect_track.io.datasets import (  # noqa: E402
    Sample,
    write_data_yaml,
    write_yolo_dataset,
)
from detect_track.synth.dataset import DatasetSpec, build_detection_dataset  # noqa: E402
from detect_track.training.yolo import YoloTrainSettings, train_yolo  # noqa: E402
from tools.bench_real import (  # noqa: E402
    RADIUS_PX,
    TUNE,
    VISEM,
    detect_frames,
    drop_in_clusters,
    load_visem,
)
from tools.train_yolo import log_since  # noqa: E402

DATASET = ROOT / "datasets" / "generated" / "visem11-tune"
MIXED = ROOT / "datasets" / "generated" / "visem11-mix"
SIM = ROOT / "datasets" / "generated" / "sim-mix"
#: Simulated tiles mixed in, so that looks the real video lacks (dark heads, bright field,
#: other magnifications) are not forgotten: 50 clips, 30 % with harder optics.
SIM_SPEC = DatasetSpec(n_videos=50, seed=3, tile_px=320, hard_fraction=0.3, val_fraction=0.0)
#: Simulated tiles in the look fitted to the real VISEM frames (synth preset ``visem``,
#: benchmarks/sim_realism.md) near VISEM's scale: bright haloed heads among dark specks at
#: 10-100 heads per frame, the two failure modes of the simulation-trained model.
VISEM_SIM = ROOT / "datasets" / "generated" / "sim-visem"
VISEM_SIM_SPEC = DatasetSpec(n_videos=40, seed=11, tile_px=320, val_fraction=0.0,
                             preset="visem", preset_fraction=1.0,
                             um_per_px_min=0.4, um_per_px_max=0.65)
TRAIN = range(TUNE.start, TUNE.stop - 10)  # 0-44
VAL = range(TUNE.stop - 10, TUNE.stop)  # 45-54
HEAD_BOX_PX = 10.0


def build_dataset(out: Path = DATASET) -> Path:
    """YOLO dataset of the tune frames: 10 px head boxes, annotated cluster boxes."""
    frames, gt, clusters = load_visem()

    def samples(part: range) -> list[Sample]:
        out_samples = []
        for i in part:
            xy = gt.loc[gt["frame"] == i, ["x", "y"]].to_numpy()
            heads = np.concatenate([xy - HEAD_BOX_PX / 2, xy + HEAD_BOX_PX / 2], axis=1)
            boxes = np.concatenate([heads, clusters[i]]).reshape(-1, 4)
            classes = np.repeat([0, 1], [len(heads), len(clusters[i])]).astype(np.int64)
            out_samples.append(Sample(frames[i], boxes, classes))
        return out_samples

    return write_yolo_dataset({"train": samples(TRAIN), "val": samples(VAL)}, out,
                              ["sperm", "cluster", "small_or_pinhead"])


def mix_dataset(real: Path, every: int, visem_every: int = 0) -> Path:
    """The real dataset plus every ``every``-th simulated tile of ``SIM_SPEC`` and every
    ``visem_every``-th of ``VISEM_SIM_SPEC`` (0: none), as symlinks."""
    if every and not (SIM / "data.yaml").is_file():
        build_detection_dataset(SIM, SIM_SPEC)
    if visem_every and not (VISEM_SIM / "data.yaml").is_file():
        build_detection_dataset(VISEM_SIM, VISEM_SIM_SPEC)
    if MIXED.exists():  # the mix depends on the options: rebuilt each time
        shutil.rmtree(MIXED)
    for split in ("train", "val"):
        for kind in ("images", "labels"):
            (MIXED / kind / split).mkdir(parents=True, exist_ok=True)
    links = [(p, f"{split}/{p.name}") for split in ("train", "val")
             for p in sorted((real / "images" / split).glob("*.png"))]
    for folder, step in ((SIM, every), (VISEM_SIM, visem_every)):
        if step:
            links += [(p, f"train/{folder.name}-{p.name}") for p in
                      sorted((folder / "images" / "train").glob("*.png"))[::step]]
    for img, rel in links:
        label = img.parent.parent.parent / "labels" / img.parent.name / f"{img.stem}.txt"
        for src, dst in ((img, MIXED / "images" / rel),
                         (label, (MIXED / "labels" / rel).with_suffix(".txt"))):
            if not dst.exists():
                dst.symlink_to(src.resolve())
    return write_data_yaml(MIXED, ["train", "val"], ["sperm", "cluster", "small_or_pinhead"])


def calibrate(weights: Path) -> tuple[float, dict]:
    """Raw-score threshold with the best F1 on the validation frames (centres within 6 px)."""
    cfg = apply_overrides(Config(), {"detector.yolo.weights": str(weights),
                                     "detector.yolo.confidence": 0.01,
                                     "detector.yolo.operating_confidence": 0.5,
                                     "detector.yolo.verifier": ""})
    frames, gt, clusters = load_visem()
    pred, _ = detect_frames("yolo", cfg, {i: frames[i] for i in VAL})
    pred = drop_in_clusters(pred, clusters)
    g = gt[gt["frame"].isin(VAL)]
    best: tuple[float, dict] = (0.5, {"f1": -1.0})
    for t in np.arange(0.05, 0.951, 0.025):
        r = detection_metrics(g, pred[pred["confidence"] >= t], RADIUS_PX)
        if r["f1"] > best[1]["f1"]:
            best = (round(float(t), 3), r)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--init", default=str(ROOT / "weights" / "yolo-sperm-sim.pt"))
    ap.add_argument("--lr0", type=float, default=0.002)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(ROOT / "runs" / "yolo-real"))
    ap.add_argument("--sim-every", type=int, default=3,
                    help="mix in every N-th of the 300 simulated tiles (0 = real frames only)")
    ap.add_argument("--visem-every", type=int, default=0,
                    help="mix in every N-th tile of the simulation fitted to VISEM "
                    "(VISEM_SIM_SPEC; 0 = none)")
    ap.add_argument("--warmup-epochs", type=float, default=1.0,
                    help="learning-rate warm-up (0: none, for continuing a trained model)")
    ap.add_argument("--ship", action="store_true",
                    help="copy best.pt to weights/yolo-sperm.pt and export its ONNX file")
    args = ap.parse_args()
    if not (VISEM / "images").is_dir():
        print(f"note: {VISEM} is absent; nothing to train on")
        return
    data = DATASET / "data.yaml"
    if not data.is_file():
        data = build_dataset()
    if args.sim_every or args.visem_every:
        data = mix_dataset(DATASET, args.sim_every, args.visem_every)
    t0 = time.time()
    best = train_yolo(data, args.out,
                      YoloTrainSettings(epochs=args.epochs, patience=args.epochs, batch=16,
                                        workers=2, device=args.device, seed=0, lr0=args.lr0,
                                        init_weights=args.init, scale=0.3, close_mosaic=3,
                                        warmup_epochs=args.warmup_epochs),
                      log=log_since(t0))
    t, r = calibrate(best)
    print(f"{best}: operating_confidence {t} on frames {VAL.start}-{VAL.stop - 1}: "
          f"precision {r['precision']:.3f} recall {r['recall']:.3f} F1 {r['f1']:.3f}")
    if args.ship:
        from detect_track.training.export import export_onnx

        target = ROOT / "weights" / "yolo-sperm.pt"
        shutil.copyfile(best, target)
        print(export_onnx(target))
        print(f"set detector.yolo.operating_confidence = {t} (config/schema.py, sperm.yaml, card)")


if __name__ == "__main__":
    main()
