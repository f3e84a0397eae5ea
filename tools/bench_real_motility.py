"""Real motility benchmark: linking annotated heads and grading them against the lab.

Works from annotated head positions only (no detector), so it measures the tracker, the
track filters, the kinematics and the WHO gates on real cells:

* VISEM-Tracking (``../shared/data/visem-tracking-labels``, 9 videos of ~30 s at ~49 fps,
  640x480): the annotated head centres *without their ids* go through the same path as
  ``detect-track track points.csv --fps F --um-per-px 0.5`` (:func:`track_detections`,
  default configuration, track filters on) and, beside it, through plain
  ``trackpy.link`` (search range = the tracker's speed gate over one frame, memory =
  ``tracker.max_gap_s``); both are scored against the annotated ids with trackeval
  (:func:`detect_track.eval.metrics.tracking_metrics`). The % progressive /
  non-progressive / immotile of the sample (``summary.json``) is compared with the lab's
  whole-sample WHO motility of the same man (``../shared/data/visem-clinical``), beside
  the same grading of the *annotated* tracks (linking taken out) and beside a constant
  predictor (the mean of the lab values of the tuning videos).
* Schmidt et al. hand-corrected tracks (``../shared/data/schmidt-sperm-tracks``, 9 fps,
  0.9546 µm/px): the points without ids, our default path vs plain ``trackpy.link``.

Held out: VISEM videos 21, 35 and 60 (every third video in id order, chosen before any
number was looked at); no constant of the tracker, the kinematics or the gates was tuned
on them. Their numbers are reported separately.

Frame rate: frames in the clip / 30 s (49 fps for 1470 frames, 48 for 1440). Scale:
VISEM publishes no µm/px; 0.5 µm/px is assumed (see ``VISEM_UM_PER_PX``).

    .venv/bin/python tools/bench_real_motility.py [--no-write] [--videos 13,15]

Writes benchmarks/real_motility.md. Skips (with a note) any data folder that is absent.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detect_track.config import Config, load_config  # noqa: E402
from detect_track.eval.metrics import tracking_metrics  # noqa: E402
from detect_track.measure.motility import analyse  # noqa: E402
from detect_track.measure.sample import sample_summary  # noqa: E402
from detect_track.pipeline import track_detections  # noqa: E402
from detect_track.tracking.trajectories import build_trajectories  # noqa: E402
from detect_track.types import MOTILITY_CLASSES, VideoMeta  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
VISEM = DATA / "visem-tracking-labels"
CLINICAL = DATA / "visem-clinical" / "semen_analysis.csv"
SCHMIDT = DATA / "schmidt-sperm-tracks"
DIFFUSER = DATA / "sperm-diffuser-motility" / "head_tracks.csv"
#: sperm-diffuser states no frame rate or scale: its speeds are px/frame; assumed products
#: µm/px x fps (µm/s per px/frame) at which the rule is tried, at an assumed 50 fps.
DIFFUSER_SCALES = (5.0, 7.5, 10.0, 12.5, 15.0, 20.0, 25.0)
DIFFUSER_CLASSES = {"progressive": "progressive", "slow": "non_progressive",
                    "inmotile": "immotile"}
#: Held-out VISEM videos: every third one in id order (13 15 [21] 23 29 [35] 38 52 [60]).
HELD_OUT = ("21", "35", "60")
#: VISEM clips are cut to 30 s (the authors' ffmpeg scripts); fps = frames / 30 s.
VISEM_CLIP_S = 30.0
#: Assumed VISEM scale. Not published; estimated from head size: in the real frames of
#: video 11 (../shared/data/visem-tracking-frames) the bright head spots measure 7.7 px
#: long and 5.3 px wide at half maximum (median of 389 heads), and a human head is
#: 4.0-5.5 µm long and 2.5-3.5 µm wide (WHO) -> 0.55-0.6 µm/px; blur widens the spots, so
#: somewhat less. 0.5 µm/px (heads ~9 px, the issue's command) is used throughout.
VISEM_UM_PER_PX = 0.5
SCHMIDT_FPS = 9.0
SCHMIDT_UM_PER_PX = 1 / 1.0476
MATCH_RADIUS_PX = 5.0  # centres match within 5 px (2.5 µm on VISEM, 4.8 µm on Schmidt)
LAB_COLUMNS = {"progressive": "Progressive motility (%)",
               "non_progressive": "Non progressive sperm motility (%)",
               "immotile": "Immotile sperm (%)"}
NO_FILTERS = {"tracker.min_track_s": 0.0, "tracker.min_confident_fraction": 0.0,
              "tracker.satellite_fraction": 2.0}


# --------------------------------------------------------------------------- data


def visem_videos() -> list[str]:
    """Ids of the shared VISEM videos, in numeric order."""
    return sorted((p.name.split("_")[1].split(".")[0] for p in VISEM.glob("video_*.csv.gz")),
                  key=int)


def visem_truth(video: str) -> tuple[pd.DataFrame, float]:
    """Annotated heads of one video (integer track ids) and its frame rate."""
    df = pd.read_csv(VISEM / f"video_{video}.csv.gz")
    df = df[df["class_id"] == 0]
    df = df.assign(track_id=pd.factorize(df["track_id"])[0] + 1)
    n_frames = int(df["frame"].max()) + 1
    fps = round(n_frames / VISEM_CLIP_S)
    return df.rename(columns={"cx_px": "x_px", "cy_px": "y_px"}), float(fps)


def schmidt_truth(video: str) -> pd.DataFrame:
    """Hand-corrected Schmidt tracks (first row of a repeated (track, frame) pair kept)."""
    df = pd.read_csv(SCHMIDT / f"video_{video}_corrected.csv").drop_duplicates(["frame", "sperm"])
    return df.rename(columns={"x": "x_px", "y": "y_px", "sperm": "track_id"})


def lab_values() -> pd.DataFrame:
    """The lab's WHO motility (%) per VISEM video id."""
    lab = pd.read_csv(CLINICAL)
    out = pd.DataFrame({c: lab[col].astype(float) for c, col in LAB_COLUMNS.items()})
    out.index = lab["ID"].astype(str)
    return out


# --------------------------------------------------------------------------- linking


def score(gt: pd.DataFrame, pred: pd.DataFrame) -> dict:
    """trackeval HOTA/AssA/IDSW of ``pred`` against ``gt`` (columns frame, track_id, x_px, y_px)."""
    def pts(df: pd.DataFrame) -> pd.DataFrame:
        return df[["frame", "track_id", "x_px", "y_px"]].rename(columns={"x_px": "x",
                                                                          "y_px": "y"})
    return tracking_metrics(pts(gt), pts(pred), MATCH_RADIUS_PX)


def points_only(gt: pd.DataFrame) -> pd.DataFrame:
    """The annotated points without ids, rows shuffled (the tracker sees points only)."""
    cols = [c for c in ("frame", "x_px", "y_px", "w_px", "h_px") if c in gt.columns]
    return gt[cols].sample(frac=1.0, random_state=0).sort_values("frame", kind="stable")


def link_ours(gt: pd.DataFrame, fps: float, um_per_px: float, cfg: Config):  # noqa: ANN201
    """Our default path (``detect-track track``): the Results and the linked rows."""
    n_frames = int(gt["frame"].max()) + 1
    res = track_detections(points_only(gt), cfg, fps=fps, um_per_px=um_per_px,
                           n_frames=n_frames)
    traj = res.trajectories
    return res, traj[~traj["interpolated"].astype(bool)]


def link_trackpy(gt: pd.DataFrame, fps: float, um_per_px: float, cfg: Config) -> pd.DataFrame:
    """Plain ``trackpy.link``: search range = the speed gate over one frame, memory = max_gap_s."""
    import trackpy

    trackpy.quiet()
    search_px = max(cfg.tracker.gate_min_um, cfg.tracker.max_speed_um_s / fps) / um_per_px
    memory = int(np.floor(cfg.tracker.max_gap_s * fps + 1e-9))
    pts = points_only(gt).rename(columns={"x_px": "x", "y_px": "y"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        linked = trackpy.link(pts, search_px, memory=memory,
                              adaptive_stop=0.2 * search_px, adaptive_step=0.9)
    return linked.rename(columns={"x": "x_px", "y": "y_px", "particle": "track_id"})


# --------------------------------------------------------------------------- motility


def grade_truth(gt: pd.DataFrame, fps: float, um_per_px: float, cfg: Config) -> dict:
    """Sample summary of the annotated tracks themselves (every annotated cell, gaps filled)."""
    meta = VideoMeta("truth", fps, int(gt["frame"].max()) + 1, 640, 480, um_per_px, "cli", "cli")
    rows = gt.assign(confidence=1.0, class_name="sperm")
    traj = build_trajectories(rows, meta, load_config(None, NO_FILTERS), "truth")
    return sample_summary(analyse(traj, meta, cfg))


def pcts(summary: dict) -> dict[str, float]:
    """The three WHO class percentages of a sample summary."""
    return {c: float(summary[f"pct_{c}"]) for c in MOTILITY_CLASSES}


def mae(a: dict[str, float], b: dict[str, float]) -> float:
    """Mean absolute difference over the three classes, percentage points."""
    return float(np.mean([abs(a[c] - b[c]) for c in MOTILITY_CLASSES]))


# --------------------------------------------------------------------------- runs


def bench_visem(videos: list[str], cfg: Config) -> list[dict]:
    """Linking and motility rows, one per VISEM video."""
    if not VISEM.is_dir():
        print(f"note: {VISEM} is absent: VISEM part skipped")
        return []
    lab = lab_values() if CLINICAL.is_file() else None
    if lab is None:
        print(f"note: {CLINICAL} is absent: motility is not compared with the lab")
    rows = []
    for video in videos:
        gt, fps = visem_truth(video)
        t0 = time.perf_counter()
        res, ours = link_ours(gt, fps, VISEM_UM_PER_PX, cfg)
        t_ours = time.perf_counter() - t0
        m_ours = score(gt, ours)
        tp = link_trackpy(gt, fps, VISEM_UM_PER_PX, cfg)
        m_tp = score(gt, tp)
        row = {"video": video, "held_out": video in HELD_OUT, "fps": fps,
               "n_gt_tracks": m_ours["n_gt_tracks"], "cells_per_frame": len(gt) / (
                   gt["frame"].max() + 1),
               "ours": m_ours, "trackpy": m_tp, "ours_s": t_ours,
               "pred": pcts(res.summary), "n_graded": res.summary.get("n_gradable",
                                                                      res.summary["n_tracks"]),
               "n_tracks": res.summary["n_tracks"],
               "truth_graded": pcts(grade_truth(gt, fps, VISEM_UM_PER_PX, cfg))}
        if lab is not None and video in lab.index:
            row["lab"] = lab.loc[video].to_dict()
        rows.append(row)
        print(f"  VISEM {video} ({fps:g} fps): ours HOTA {m_ours['HOTA']:.4f} IDSW "
              f"{m_ours['IDSW']} | trackpy HOTA {m_tp['HOTA']:.4f} IDSW {m_tp['IDSW']} | "
              f"PR/NP/IM ours {fmt3(row['pred'])} truth-tracks {fmt3(row['truth_graded'])}"
              + (f" lab {fmt3(row['lab'])}" if "lab" in row else ""), flush=True)
    return rows


def bench_schmidt(cfg: Config, overrides: dict | None = None) -> list[dict]:
    """Linking rows, one per Schmidt video: our default path vs trackpy.link."""
    if not SCHMIDT.is_dir():
        print(f"note: {SCHMIDT} is absent: Schmidt part skipped")
        return []
    rows = []
    videos = sorted(p.name.split("_")[1] for p in SCHMIDT.glob("video_*_corrected.csv"))
    for video in videos:
        gt = schmidt_truth(video)
        _, ours = link_ours(gt, SCHMIDT_FPS, SCHMIDT_UM_PER_PX, cfg)
        nofilt = load_config(None, {**(overrides or {}), **NO_FILTERS})
        _, ours_nf = link_ours(gt, SCHMIDT_FPS, SCHMIDT_UM_PER_PX, nofilt)
        tp = link_trackpy(gt, SCHMIDT_FPS, SCHMIDT_UM_PER_PX, cfg)
        row = {"video": video, "ours": score(gt, ours), "ours_nofilter": score(gt, ours_nf),
               "trackpy": score(gt, tp)}
        rows.append(row)
        print(f"  Schmidt {video}: ours HOTA {row['ours']['HOTA']:.4f} IDSW "
              f"{row['ours']['IDSW']} (filters off {row['ours_nofilter']['HOTA']:.4f} / "
              f"{row['ours_nofilter']['IDSW']}) | trackpy HOTA {row['trackpy']['HOTA']:.4f} "
              f"IDSW {row['trackpy']['IDSW']}", flush=True)
    return rows


def bench_diffuser(cfg: Config) -> list[dict]:
    """Per-class agreement on the labelled sperm-diffuser tracks, per assumed scale x fps."""
    if not DIFFUSER.is_file():
        print(f"note: {DIFFUSER} is absent: sperm-diffuser part skipped")
        return []
    import dataclasses

    from detect_track.measure.kinematics import kinematics_table
    from detect_track.measure.motility import classify_motility

    df = pd.read_csv(DIFFUSER).sort_values(["sequence", "frame"])
    df["track_id"] = pd.factorize(df["sequence"])[0]
    df["frame"] = df.groupby("track_id").cumcount()  # one sequence skips a file: consecutive
    truth = df.groupby("track_id")["motility_class"].first().map(DIFFUSER_CLASSES)
    pts = df.rename(columns={"head_x": "x_px", "head_y": "y_px"})
    fps = 50.0
    mcfg = dataclasses.replace(cfg.motility, min_gradable_s=0.0)  # 25 frames: grade them all
    rows = []
    for product in DIFFUSER_SCALES:
        kin = kinematics_table(pts, um_per_px=product / fps, fps=fps,
                               window_frames=cfg.kinematics.smoothing_window_frames,
                               progression_window_s=cfg.kinematics.progression_window_s)
        got = classify_motility(kin, mcfg).set_index("track_id")["motility"]
        row = {"product": product, "n": int(len(truth)),
               "accuracy": float((got == truth).mean())}
        for c in MOTILITY_CLASSES:
            row[c] = float((got[truth == c] == c).mean())
            row[f"n_{c}"] = int((truth == c).sum())
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- report


def fmt3(p: dict[str, float]) -> str:
    """``PR/NP/IM`` percentages as ``a/b/c``."""
    return "/".join(f"{p[c]:.0f}" for c in MOTILITY_CLASSES)


def _link_table(rows: list[dict], label: str) -> list[str]:
    lines = [f"| video | {label} | true tracks | ours HOTA | ours AssA | ours IDSW | "
             "trackpy HOTA | trackpy AssA | trackpy IDSW |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        o, t = r["ours"], r["trackpy"]
        lines.append(f"| {r['video']} | {r['_label']} | {o['n_gt_tracks']} | {o['HOTA']:.4f} | "
                     f"{o['AssA']:.4f} | {o['IDSW']} | {t['HOTA']:.4f} | {t['AssA']:.4f} | "
                     f"{t['IDSW']} |")
    return lines


def _link_means(rows: list[dict], name: str) -> str:
    def mean(k: str, key: str) -> float:
        return float(np.mean([r[k][key] for r in rows]))

    def total(k: str) -> int:
        return int(sum(r[k]["IDSW"] for r in rows))

    return (f"| {name} | {len(rows)} | {mean('ours', 'HOTA'):.4f} | {mean('ours', 'AssA'):.4f} "
            f"| {total('ours')} | {mean('trackpy', 'HOTA'):.4f} | "
            f"{mean('trackpy', 'AssA'):.4f} | {total('trackpy')} |")


def report(visem: list[dict], schmidt: list[dict], cfg: Config, command: str,
           elapsed: float, diffuser: list[dict] | None = None) -> str:
    """The markdown report."""
    from tools.bench_speed import cpu_model

    t = cfg.tracker
    lines = ["# Real motility benchmark: linking and WHO grading against real tracks and the lab",
             "", f"Generated {dt.date.today().isoformat()} on {cpu_model()}, "
             f"{os.cpu_count()} CPU cores, in {elapsed / 60:.1f} min by", "",
             f"    {command}", "",
             "No detector: the annotated head positions, without their ids, are linked by "
             "the default path of `detect-track track points.csv --fps F --um-per-px X` "
             "(tracker `sort`, default configuration, track filters on) and, beside it, by "
             "plain `trackpy.link` (search range = `tracker.max_speed_um_s` over one frame = "
             f"{t.max_speed_um_s:g} µm/s / fps, memory = `tracker.max_gap_s` = "
             f"{t.max_gap_s:g} s, adaptive search on oversized subnetworks, no filter). "
             "Scored with trackeval against the annotated ids (centres match within "
             f"{MATCH_RADIUS_PX:g} px; IDSW = CLEAR id switches).", ""]
    if visem:
        lines += [f"## VISEM-Tracking (9 videos, ~49 fps, {VISEM_UM_PER_PX:g} µm/px assumed)", "",
                  f"Held out of all tuning: videos {', '.join(HELD_OUT)} (every third in id "
                  "order, fixed before any number was seen). fps = frames / 30 s.",
                  "", "Scale: VISEM publishes no µm/px. In the real frames of video 11 "
                  "(`visem-tracking-frames`) the bright head spots measure 7.7 x 5.3 px at "
                  "half maximum (median of 389 heads); human heads are 4.0-5.5 x 2.5-3.5 µm "
                  "(WHO), i.e. about 0.55-0.6 µm/px, less once the blur that widens the spots "
                  f"is allowed for; {VISEM_UM_PER_PX:g} µm/px (heads ~9 px) is assumed, as in "
                  "the issue's command.", "", "### Linking", ""]
        for r in visem:
            r["_label"] = "held out" if r["held_out"] else "tuning"
        lines += _link_table(visem, "set")
        held = [r for r in visem if r["held_out"]]
        tune = [r for r in visem if not r["held_out"]]
        lines += ["", "| videos | n | ours HOTA (mean) | ours AssA | ours IDSW (sum) | "
                  "trackpy HOTA | trackpy AssA | trackpy IDSW |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, part in (("held out", held), ("tuning", tune), ("all", visem)):
            if part:
                lines.append(_link_means(part, name))
        with_lab = [r for r in visem if "lab" in r]
        if with_lab:
            tune_lab = [r for r in with_lab if not r["held_out"]] or with_lab
            const = {c: float(np.mean([r["lab"][c] for r in tune_lab])) for c in MOTILITY_CLASSES}
            const_all = {c: float(np.mean([r["lab"][c] for r in with_lab]))
                         for c in MOTILITY_CLASSES}
            lines += ["", "### WHO motility of the sample vs the lab", "",
                      "% progressive / non-progressive / immotile. *ours*: the summary of "
                      "`detect-track track` on the points (what a user gets); *annotated "
                      "tracks*: the same kinematics and gates on the annotated tracks (linking "
                      "taken out); *lab*: the lab's whole-sample WHO motility of the same man. "
                      "MAE = mean absolute error over the three classes (points). Constant "
                      "predictor: the mean lab values of the tuning videos "
                      f"({fmt3(const)}).", "",
                      "| video | set | graded / tracks | ours PR/NP/IM | annotated tracks | lab | "
                      "MAE ours | MAE annotated | MAE constant |",
                      "|---|---|---|---|---|---|---|---|---|"]
            for r in with_lab:
                r["mae"] = mae(r["pred"], r["lab"])
                r["mae_truth"] = mae(r["truth_graded"], r["lab"])
                r["mae_const"] = mae(const, r["lab"])
                r["mae_const_all"] = mae(const_all, r["lab"])
                lines.append(f"| {r['video']} | {r['_label']} | {r['n_graded']} / "
                             f"{r['n_tracks']} | {fmt3(r['pred'])} | {fmt3(r['truth_graded'])} "
                             f"| {fmt3(r['lab'])} | {r['mae']:.1f} | {r['mae_truth']:.1f} | "
                             f"{r['mae_const']:.1f} |")
            lines += ["", "| videos | n | MAE ours | MAE annotated tracks | MAE constant | "
                      "MAE constant (mean of all 9) |", "|---|---|---|---|---|---|"]
            for name, part in (("held out", [r for r in with_lab if r["held_out"]]),
                               ("tuning", [r for r in with_lab if not r["held_out"]]),
                               ("all", with_lab)):
                if part:
                    lines.append(
                        f"| {name} | {len(part)} | {np.mean([r['mae'] for r in part]):.1f} | "
                        f"{np.mean([r['mae_truth'] for r in part]):.1f} | "
                        f"{np.mean([r['mae_const'] for r in part]):.1f} | "
                        f"{np.mean([r['mae_const_all'] for r in part]):.1f} |")
        lines.append("")
    else:
        lines += ["VISEM part skipped (../shared/data/visem-tracking-labels absent).", ""]
    if schmidt:
        lines += ["## Schmidt et al. hand-corrected tracks (9 fps, 0.9546 µm/px)", "",
                  "*ours*: the default path (filters on, as a user runs it); *ours, filters "
                  "off*: `tracker.min_track_s=0 tracker.min_confident_fraction=0 "
                  "tracker.satellite_fraction=2` (as in benchmarks/tracking.md).", "",
                  "| video | true tracks | ours HOTA | ours AssA | ours IDSW | filters off HOTA "
                  "| filters off IDSW | trackpy HOTA | trackpy AssA | trackpy IDSW |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in schmidt:
            o, n, t = r["ours"], r["ours_nofilter"], r["trackpy"]
            lines.append(f"| {r['video']} | {o['n_gt_tracks']} | {o['HOTA']:.4f} | "
                         f"{o['AssA']:.4f} | {o['IDSW']} | {n['HOTA']:.4f} | {n['IDSW']} | "
                         f"{t['HOTA']:.4f} | {t['AssA']:.4f} | {t['IDSW']} |")
        lines.append("")
    else:
        lines += ["Schmidt part skipped (../shared/data/schmidt-sperm-tracks absent).", ""]
    if diffuser:
        d0 = diffuser[0]
        lines += ["## sperm-diffuser real head tracks labelled progressive / slow / immotile", "",
                  f"{d0['n']} real single-sperm sequences of 25 frames "
                  f"({d0['n_progressive']} progressive, {d0['n_non_progressive']} slow, "
                  f"{d0['n_immotile']} immotile; slow compared with non-progressive). The "
                  "source states no frame rate or scale, so the default rule (every cell "
                  "graded: `min_gradable_s=0`) is tried at several assumed products "
                  "µm/px x fps; fraction of each class given its label:", "",
                  "| µm/px x fps | progressive | slow -> non-progressive | immotile | all |",
                  "|---|---|---|---|---|"]
        for r in diffuser:
            lines.append(f"| {r['product']:g} | {r['progressive']:.2f} | "
                         f"{r['non_progressive']:.2f} | {r['immotile']:.2f} | "
                         f"{r['accuracy']:.2f} |")
        lines += ["", "No single scale separates slow from progressive: the authors' slow "
                  "cells swim as straight as the progressive ones, only slower (WHO grade b "
                  "rather than c), while immotile and progressive cells sit on either side "
                  "of the gates over a range of scales.", ""]
    return "\n".join(lines) + "\n"


def main() -> int:
    """Run the benchmark and write benchmarks/real_motility.md."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", default="", help="VISEM ids to run (default: all)")
    ap.add_argument("--skip-schmidt", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                    help="config overrides (exploration; the committed run uses none)")
    args = ap.parse_args()
    from detect_track.config import parse_overrides

    overrides = parse_overrides(args.overrides) if args.overrides else {}
    cfg = load_config(None, overrides)
    t0 = time.perf_counter()
    videos = visem_videos() if VISEM.is_dir() else []
    if args.videos:
        wanted = {v.strip() for v in args.videos.split(",")}
        videos = [v for v in videos if v in wanted]
    visem = bench_visem(videos, cfg)
    schmidt = [] if args.skip_schmidt else bench_schmidt(cfg, overrides)
    diffuser = bench_diffuser(cfg)
    command = ".venv/bin/python tools/bench_real_motility.py " + " ".join(sys.argv[1:])
    text = report(visem, schmidt, cfg, command.strip(), time.perf_counter() - t0, diffuser)
    print(text)
    if not args.no_write and not args.videos and not args.overrides:
        from detect_track.io.export import write_text

        print(f"wrote {write_text(text, ROOT / 'benchmarks' / 'real_motility.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
