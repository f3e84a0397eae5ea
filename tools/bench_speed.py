"""Speed benchmark: detect-track side by side with `yolo track` and trackpy, on 2 CPU cores.

Simulates one 640x480, 50 fps video (30 s by default, about 50 heads in view, fixed seed)
with the project's simulator, and a 10x longer one made by writing the same frames 10
times in a row. Each contender then runs in a fresh Python process (so its peak memory is
its own) with the same thread budget, on the same video:

* decode only: `FrameSource` iterated, frames discarded (the floor);
* detect-track `run_video` + `write_results`: the default configuration (the ONNX export
  run by OpenVINO when it is installed), the same export on ONNX Runtime, the torch
  backend, and morphology off (per-stage times from `summary["timings_s"]`);
* ultralytics `YOLO("weights/yolo-sperm.pt").track(..., tracker="bytetrack.yaml")`;
* trackpy `locate` (one per frame, in a pool of worker processes) + `link`;
* the default tracker + kinematics on 100 synthetic cells x 1,500 frames (no video);
* detect-track default on the 10x longer video (peak memory).

    .venv/bin/python tools/bench_speed.py [--duration-s 30] [--work DIR] [--skip memory]

Writes benchmarks/speed.md (or --out). Videos are cached in --work (a temporary folder by
default), so a rerun with the same --work skips the simulation. The full run takes about
20 minutes on 2 cores; run it on a quiet machine (the report flags runs that shared the
CPU with other processes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SEED = 940001  # never used by tests or the other benchmarks
WIDTH, HEIGHT, FPS, UM_PER_PX = 640, 480, 50.0, 0.7
N_CELLS = 85  # cells in the simulated domain (field + 60 µm margin): about 50 in view
LOOK = "phase_bright"  # negative phase contrast, the usual CASA look (bright heads)
WEIGHTS = ROOT / "weights" / "yolo-sperm.pt"
CONTENDERS = ("decode", "detect-track", "ultralytics", "trackpy", "tracker", "memory")
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("default", {}),
    ("onnxruntime", {"detector.backend": "onnx", "detector.onnx_runtime": "onnxruntime"}),
    ("torch", {"detector.backend": "torch"}),
    ("morphology off", {"morphology.enabled": False}),
]
STAGES = ("decode", "detect", "track", "morphology", "kinematics")
HEAD_LENGTH_UM = 5.0
MAX_SPEED_UM_S = 250.0
FLAT_RATIO = 1.25  # "flat" peak memory: 10x the frames cost at most 25 % more memory
POLL_S = 0.05
OTHER_LOAD_WARN = 0.05  # other processes using more CPU than this share: warned


# --------------------------------------------------------------------------- children
# Each function below runs inside a fresh child process (`--child KIND`) and returns a
# JSON-able dict; the parent adds the peak memory it saw.


def _child_decode(spec: dict) -> dict:
    t0 = time.perf_counter()
    from detect_track.io.video import FrameSource

    t1 = time.perf_counter()
    src = FrameSource(spec["video"])
    t2 = time.perf_counter()
    n = 0
    for _index, _frame in src:
        n += 1
    t3 = time.perf_counter()
    return {"frames": n, "import_s": t1 - t0, "startup_s": t2 - t1, "total_s": t3 - t1,
            "steady_s": t3 - t2}


def _child_detect_track(spec: dict) -> dict:
    t0 = time.perf_counter()
    from detect_track.config import load_config
    from detect_track.errors import ConfigError
    from detect_track.ml import set_threads
    from detect_track.pipeline import run_video
    from detect_track.results import write_results

    set_threads(int(spec["threads"]))
    t1 = time.perf_counter()
    try:
        cfg = load_config(None, spec["overrides"])
    except ConfigError as exc:
        return {"skipped": f"load_config rejected {spec['overrides']}: {exc}"}
    marks: dict[str, float] = {}

    def progress(done: int, _total: int) -> None:
        if done == 1:
            marks["first"] = time.perf_counter()
        marks["last"] = time.perf_counter()

    t2 = time.perf_counter()
    out_dir = Path(spec["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    # as the command line does: trajectory rows go to the CSV while the video runs
    res = run_video(spec["video"], cfg, um_per_px=spec["um_per_px"], progress=progress,
                    trajectories_csv=out_dir / "trajectories.csv")
    t3 = time.perf_counter()
    write_results(res, spec["out_dir"])
    t4 = time.perf_counter()
    s = res.summary
    n = int(s["n_frames"])
    torch = sys.modules.get("torch")
    return {
        "frames": n, "import_s": t1 - t0, "run_s": t3 - t2, "export_s": t4 - t3,
        "total_s": t4 - t2, "timings_s": s["timings_s"],
        "steady_s": sum(s["timings_s"].values()),
        "loop_fps_after_first": (n - 1) / max(marks["last"] - marks["first"], 1e-9),
        "backend": s.get("detector_backend"), "weights": s.get("detector_weights"),
        "runtime": s.get("detector_runtime"),
        "torch_imported": torch is not None,
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "n_tracks": s.get("n_tracks"), "pct_progressive": s.get("pct_progressive"),
        "pct_non_progressive": s.get("pct_non_progressive"),
        "pct_immotile": s.get("pct_immotile"), "warnings": s.get("warnings", []),
    }


def _child_ultralytics(spec: dict) -> dict:
    t0 = time.perf_counter()
    from detect_track.ml import prepare_ultralytics

    prepare_ultralytics()
    import torch
    from ultralytics import YOLO

    t1 = time.perf_counter()
    threads = int(spec["threads"])
    model = YOLO(spec["weights"], task="detect")
    model.add_callback("on_predict_start", lambda _p: torch.set_num_threads(threads))
    stream = model.track(source=spec["video"], tracker="bytetrack.yaml", stream=True,
                         imgsz=spec["imgsz"], conf=0.05, verbose=False, device="cpu")
    n, n_boxes = 0, 0
    ids: set[int] = set()
    threads_seen: set[int] = set()
    t_first = t1
    for result in stream:
        if n == 0:
            t_first = time.perf_counter()
        n += 1
        threads_seen.add(torch.get_num_threads())
        boxes = result.boxes
        n_boxes += len(boxes)
        if boxes.id is not None:
            ids.update(int(i) for i in boxes.id.tolist())
    t2 = time.perf_counter()
    return {"frames": n, "import_s": t1 - t0, "startup_s": t_first - t1, "total_s": t2 - t1,
            "steady_frames": n - 1, "steady_s": t2 - t_first,
            "threads_seen": sorted(threads_seen), "boxes_per_frame": n_boxes / max(n, 1),
            "n_tracks": len(ids)}


def _child_trackpy(spec: dict) -> dict:
    t0 = time.perf_counter()
    from collections import deque
    from functools import partial
    from multiprocessing import Pool

    import pandas as pd
    import trackpy

    from detect_track.io.video import FrameSource

    trackpy.quiet()
    t1 = time.perf_counter()
    locate = partial(trackpy.locate, diameter=spec["diameter"], minmass=spec["minmass"],
                     invert=spec["invert"])
    processes = int(spec["processes"])
    src = FrameSource(spec["video"])
    parts = []
    pool = Pool(processes) if processes > 1 else None
    t2 = time.perf_counter()
    try:
        if pool is None:
            for index, frame in src:
                parts.append(locate(frame).assign(frame=index))
        else:  # a bounded window of frames in flight: memory stays flat, order kept
            pending: deque = deque()
            for index, frame in src:
                pending.append((index, pool.apply_async(locate, (frame,))))
                if len(pending) >= 4 * processes:
                    i, job = pending.popleft()
                    parts.append(job.get().assign(frame=i))
            while pending:
                i, job = pending.popleft()
                parts.append(job.get().assign(frame=i))
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    t3 = time.perf_counter()
    features = pd.concat(parts, ignore_index=True)
    sr = float(spec["search_range"])
    linked = trackpy.link(features, search_range=sr, memory=3, adaptive_stop=0.5 * sr,
                          adaptive_step=0.95)
    t4 = time.perf_counter()
    n = len(parts)
    return {"frames": n, "import_s": t1 - t0, "startup_s": t2 - t1, "total_s": t4 - t1,
            "steady_s": t4 - t2, "locate_s": t3 - t2, "link_s": t4 - t3,
            "features_per_frame": len(features) / max(n, 1),
            "n_tracks": int(linked["particle"].nunique())}


def _child_tracker(spec: dict) -> dict:
    import numpy as np
    import pandas as pd

    from detect_track.config import load_config
    from detect_track.pipeline import track_detections
    from detect_track.tracking import create_tracker
    from detect_track.types import Detections, VideoMeta

    n_cells, n_frames = int(spec["n_cells"]), int(spec["n_frames"])
    fps, um, box = float(spec["fps"]), float(spec["um_per_px"]), 6.0
    rng = np.random.default_rng(SEED)
    lo, hi = np.array([10.0, 10.0]), np.array([WIDTH - 10.0, HEIGHT - 10.0])
    xy = rng.uniform(lo, hi, (n_cells, 2))
    heading = rng.uniform(0, 2 * np.pi, n_cells)
    drift = (rng.uniform(0, 100, n_cells) / fps / um)[:, None] * np.column_stack(
        [np.cos(heading), np.sin(heading)])  # px per frame, 0-100 µm/s
    step_sd = 0.5 / um  # random walk: 0.5 µm per frame on each axis
    frames = []
    for _ in range(n_frames):
        xy = xy + drift + rng.normal(0, step_sd, xy.shape)
        for axis in (0, 1):  # reflect at the field edges: 100 cells stay in view
            low, high = xy[:, axis] < lo[axis], xy[:, axis] > hi[axis]
            xy[low, axis] = 2 * lo[axis] - xy[low, axis]
            xy[high, axis] = 2 * hi[axis] - xy[high, axis]
            drift[low | high, axis] *= -1
        frames.append(xy.copy())
    dets = [Detections(np.hstack([p - box / 2, p + box / 2]), np.full(n_cells, 0.9),
                       np.zeros(n_cells, np.int64)) for p in frames]
    cfg = load_config()
    meta = VideoMeta("synthetic-100-cells", fps, n_frames, WIDTH, HEIGHT, um, "cli", "cli")
    tracker = create_tracker(cfg.tracker.name, cfg, meta)
    for d in dets[:20]:  # warm-up (first allocations), then a fresh start
        tracker.update(d)
    tracker.reset()
    per_frame = np.empty(n_frames)
    for i, d in enumerate(dets):
        t0 = time.perf_counter()
        tracker.update(d)
        per_frame[i] = time.perf_counter() - t0
    table = pd.DataFrame({
        "frame": np.repeat(np.arange(n_frames), n_cells),
        "x_px": np.concatenate(frames)[:, 0], "y_px": np.concatenate(frames)[:, 1],
        "w_px": box, "h_px": box, "confidence": 0.9})
    t0 = time.perf_counter()
    res = track_detections(table, cfg, fps=fps, um_per_px=um, n_frames=n_frames)
    total = time.perf_counter() - t0
    return {"frames": n_frames, "n_cells": n_cells, "tracker": cfg.tracker.name,
            "tracker_ms": 1000 * float(per_frame.mean()),
            "tracker_p95_ms": 1000 * float(np.percentile(per_frame, 95)),
            "kinematics_ms": 1000 * res.summary["timings_s"].get("kinematics", float("nan"))
            / n_frames,
            "track_stage_ms": 1000 * res.summary["timings_s"].get("track", float("nan"))
            / n_frames,
            "track_detections_ms": 1000 * total / n_frames,
            "n_tracks": int(len(res.tracks))}


CHILDREN = {"decode": _child_decode, "detect-track": _child_detect_track,
            "ultralytics": _child_ultralytics, "trackpy": _child_trackpy,
            "tracker": _child_tracker}


def child_main(kind: str, spec_path: Path, result_path: Path) -> int:
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    out = CHILDREN[kind](spec)
    out["ru_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["ru_maxrss_children_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result_path.write_text(json.dumps(out, indent=1, default=str), encoding="utf-8")
    return 0


# --------------------------------------------------------------------------- parent side


def child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "NUMEXPR_NUM_THREADS"):
        env[key] = str(threads)
    env["YOLO_OFFLINE"] = "1"
    env["YOLO_VERBOSE"] = "False"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def pinned_cores(threads: int) -> list[int] | None:
    """The cores children are pinned to (None: the machine has no more than ``threads``)."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    return cores[:threads] if len(cores) > threads else None


def _busy_s(times: Any) -> float:
    """CPU seconds the whole machine spent busy (all cores), from ``psutil.cpu_times()``."""
    d = times._asdict()
    total = sum(v for k, v in d.items() if k not in ("guest", "guest_nice"))  # in user
    return total - d["idle"] - d.get("iowait", 0.0)


def _own_cpu_s() -> float:
    """CPU seconds of this process and its waited-for children."""
    own = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        own += ru.ru_utime + ru.ru_stime
    return own


def _tree_memory(proc: Any) -> int:
    """Memory of a process and its descendants, bytes: RSS of a lone process; with workers,
    their summed PSS (pages shared by forked workers counted once; slower to read)."""
    import psutil

    procs = [proc, *proc.children(recursive=True)]
    if len(procs) == 1:
        return int(proc.memory_info().rss)
    total = 0
    for p in procs:
        try:
            try:
                total += p.memory_full_info().pss
            except (psutil.AccessDenied, AttributeError):
                total += p.memory_info().rss
        except psutil.NoSuchProcess:  # a worker that just ended
            continue
    return total


def _yolo_operating() -> float:
    """The shipped YOLO's raw operating point (``detector.yolo.operating_confidence``)."""
    from detect_track.config import Config

    return Config().detector.yolo.operating_confidence


def _engine(res: dict) -> str:
    """The backend and, for ONNX, the runtime that ran it."""
    runtime = res.get("runtime")
    return f"{res['backend']} ({runtime})" if runtime else str(res["backend"])


def run_child(kind: str, spec: dict, work: Path, label: str, threads: int) -> dict:
    """Run one contender in a fresh process; its result plus peak memory (MB), wall time (s)
    and the share of the machine's CPU that other processes used meanwhile."""
    import psutil

    tag = "".join(c if c.isalnum() or c in "-_" else "_" for c in label)
    spec_path, result_path = work / f"spec_{tag}.json", work / f"result_{tag}.json"
    spec_path.write_text(json.dumps({"threads": threads, **spec}), encoding="utf-8")
    result_path.unlink(missing_ok=True)
    cores = pinned_cores(threads)

    def pin() -> None:
        if cores is not None:
            os.sched_setaffinity(0, cores)

    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind,
           "--spec", str(spec_path), "--result", str(result_path)]
    busy0, own0 = _busy_s(psutil.cpu_times()), _own_cpu_s()
    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, env=child_env(threads), preexec_fn=pin)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, _tree_memory(proc))
        except psutil.NoSuchProcess:
            break
        time.sleep(POLL_S)
    rc = proc.wait()
    wall = time.perf_counter() - t0
    foreign = (_busy_s(psutil.cpu_times()) - busy0) - (_own_cpu_s() - own0)
    other_load = max(0.0, foreign) / (wall * (psutil.cpu_count() or 1))
    if rc != 0 or not result_path.is_file():
        print(f"  {label}: the child process failed (exit status {rc})", flush=True)
        return {"error": f"child exited with status {rc}", "process_s": wall,
                "other_load": other_load}
    out = json.loads(result_path.read_text(encoding="utf-8"))
    out["process_s"] = wall
    out["other_load"] = other_load
    out["peak_rss_mb"] = max(peak / 2**20, out.get("ru_maxrss_mb", 0.0))
    if other_load > OTHER_LOAD_WARN:
        print(f"  warning: other processes used {100 * other_load:.0f} % of the CPU during "
              f"{label}: its times are unreliable", flush=True)
    return out


def fps_of(r: dict) -> tuple[float, float]:
    """Frames per second including start-up, and in steady state."""
    n = r["frames"]
    return n / r["total_s"], r.get("steady_frames", n) / r["steady_s"]


def simulate_video(work: Path, duration_s: float, fmt: str) -> tuple[Path, Path, dict]:
    from detect_track.synth import SynthConfig, simulate

    folder = work / f"sim_seed{SEED}_{duration_s:g}s_{fmt}_n{N_CELLS}"
    truth = folder / "truth.json"  # written last: present = complete
    if not truth.is_file():
        cfg = SynthConfig(width_px=WIDTH, height_px=HEIGHT, fps=FPS, duration_s=duration_s,
                          um_per_px=UM_PER_PX, n_cells=N_CELLS, look=LOOK, video_format=fmt,
                          seed=SEED)
        print(f"simulating {cfg.n_frames} frames ({duration_s:g} s) into {folder} ...",
              flush=True)
        t0 = time.perf_counter()

        def progress(done: int, total: int) -> None:
            if done % 250 == 0 or done == total:
                print(f"  {done}/{total} frames", flush=True)

        simulate(folder, cfg, progress=progress)
        print(f"  simulated in {time.perf_counter() - t0:.0f} s", flush=True)
    else:
        print(f"using the cached simulated video in {folder}", flush=True)
    info = json.loads(truth.read_text(encoding="utf-8"))
    return folder / info["video"], folder, info


def long_video(video: Path, factor: int) -> Path:
    """The frames of ``video`` written ``factor`` times in a row (same codec), cached."""
    import cv2

    out = video.with_name(f"{video.stem}_x{factor}{video.suffix}")
    cap = cv2.VideoCapture(str(video))
    n_src = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    if out.is_file():
        cap = cv2.VideoCapture(str(out))
        n_out = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        if n_out == factor * n_src:
            print(f"using the cached {factor}x video {out.name}", flush=True)
            return out
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if video.suffix == ".avi" else "mp4v"))
    tmp = out.with_name(f".tmp_{out.name}")
    writer = cv2.VideoWriter(str(tmp), fourcc, fps, (WIDTH, HEIGHT), True)
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {tmp}")
    print(f"writing the {factor}x longer video ({factor * n_src} frames) ...", flush=True)
    t0 = time.perf_counter()
    try:
        for _ in range(factor):
            cap = cv2.VideoCapture(str(video))
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                writer.write(frame)
            cap.release()
    finally:
        writer.release()
    os.replace(tmp, out)
    print(f"  written in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def trackpy_settings(video: Path, info: dict) -> dict:
    """Feature size, brightness threshold and search range for trackpy (untimed).

    ``minmass`` is set so that trackpy finds about as many features per frame as there are
    heads in view (from the simulator's truth), measured on 10 frames spread over the video.
    """
    import numpy as np
    import trackpy

    from detect_track.io.video import FrameSource

    trackpy.quiet()
    um = float(info["um_per_px"])
    diameter = int(round(HEAD_LENGTH_UM / um))
    diameter += 1 - diameter % 2  # odd
    invert = info["look"] != "phase_bright"  # heads dark on a bright background
    n = int(info["n_frames"])
    wanted = set(np.linspace(0, n - 1, min(10, n)).round().astype(int).tolist())
    masses = []
    for index, frame in FrameSource(video):
        if index in wanted:
            masses.append(trackpy.locate(frame, diameter, minmass=0, invert=invert)["mass"])
    mass = np.sort(np.concatenate(masses))[::-1]
    heads = float(info["class_counts"]["mean_heads_per_frame"])
    k = int(np.clip(round(heads * len(masses)), 1, len(mass)))
    return {"diameter": diameter, "minmass": float(mass[k - 1]), "invert": invert,
            "search_range": MAX_SPEED_UM_S / float(info["fps"]) / um,
            "heads_per_frame": heads}


# --------------------------------------------------------------------------- accuracy


def _starts(folder: Path) -> Any:
    import pandas as pd

    traj = pd.read_csv(folder / "trajectories.csv")
    traj = traj[~traj["interpolated"].astype(bool)]
    first = traj.sort_values("frame").groupby("track_id").first()
    tracks = pd.read_csv(folder / "tracks.csv").set_index("track_id")
    return first.join(tracks["vcl_um_s"])


def match_tracks(a_dir: Path, b_dir: Path, radius_px: float = 2.0) -> dict:
    """Tracks of two runs matched by start (same first frame, start within ``radius_px``)."""
    import numpy as np

    a, b = _starts(a_dir), _starts(b_dir)
    used: set[int] = set()
    diffs = []
    for _tid, row in a.iterrows():
        cand = b[(b["frame"] == row["frame"]) & ~b.index.isin(used)]
        if not len(cand):
            continue
        d = np.hypot(cand["x_px"] - row["x_px"], cand["y_px"] - row["y_px"])
        if d.min() <= radius_px:
            j = d.idxmin()
            used.add(j)
            diffs.append(abs(float(row["vcl_um_s"]) - float(cand.loc[j, "vcl_um_s"])))
    return {"n_a": len(a), "n_b": len(b), "matched": len(diffs),
            "mean_abs_dvcl": float(np.mean(diffs)) if diffs else float("nan"),
            "max_abs_dvcl": float(np.max(diffs)) if diffs else float("nan")}


def score(pred: Path, truth: Path) -> dict:
    from detect_track.errors import InputError
    from detect_track.eval import evaluate

    try:
        ev = evaluate(pred, truth)
    except (InputError, ValueError) as exc:
        print(f"  note: cannot score {pred.name}: {exc}", flush=True)
        return {}
    return {"HOTA": 100 * ev["tracking"]["HOTA"], "recall": ev["detection"]["recall"],
            "precision": ev["detection"]["precision"],
            "vcl_err": 100 * ev["kinematics"]["vcl_rel_err"],
            "motility_acc": 100 * ev["kinematics"]["motility_accuracy"]}


# --------------------------------------------------------------------------- report


def cpu_model() -> str:
    """The CPU's name, and which wide vector units it has (they set the model times)."""
    name, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name") and not name:
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    name = name or platform.processor() or platform.machine()
    units = [u for u, f in (("AVX-512", "avx512f"), ("bfloat16", "avx512_bf16"),
                            ("AMX", "amx_tile")) if f in flags]
    return f"{name} ({', '.join(units) if units else 'no AVX-512'})" if flags else name


def _versions() -> str:
    from importlib import metadata

    out = [f"Python {platform.python_version()}"]
    for dist in ("detect-track", "torch", "onnxruntime", "openvino", "ultralytics", "trackpy",
                 "opencv-python", "opencv-python-headless", "numpy"):
        try:
            out.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(out)


def _x(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b and b == b and a == a else "n/a"


def _f(v: Any, fmt: str = "{:.1f}") -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "n/a"
    return fmt.format(v)


def report(ctx: dict) -> str:
    r, a = ctx["results"], ctx["args"]
    info = ctx["info"]
    cores = pinned_cores(a.threads)
    pin_note = (f"children pinned to cores {cores}" if cores else
                f"the machine has {os.cpu_count()} cores")
    lines = [
        "# Speed benchmark: detect-track vs `yolo track` vs trackpy on CPU", "",
        f"Generated {dt.datetime.now().strftime('%Y-%m-%d %H:%M')} in "
        f"{ctx['elapsed_s'] / 60:.1f} min on {cpu_model()}, {os.cpu_count()} CPU cores "
        f"({a.threads} threads per contender; {pin_note}).", "",
        f"Versions: {_versions()}.", "",
        "Reproduce:", "", f"    {ctx['command']}", "",
        f"Test video: simulated by `detect_track.synth.simulate` (seed {SEED}), "
        f"{WIDTH}×{HEIGHT} px, {info['fps']:g} fps, {info['n_frames'] / info['fps']:g} s "
        f"({info['n_frames']} frames), {info['um_per_px']:g} µm/px, "
        f"{'AVI (MJPG, quality 90)' if a.format == 'avi' else 'MP4 (mp4v)'}, look "
        f"{info['look']}, {info['class_counts']['mean_heads_per_frame']:.0f} heads in view "
        "per frame on average.", "",
        "Each contender runs alone in a fresh Python process on the same video. Absolute "
        "times vary between runs and machines: read the ratios.", "",
    ]
    dt_default = r.get("dt:default") or {}
    ok_default = "frames" in dt_default
    fps_default = fps_of(dt_default) if ok_default else (float("nan"), float("nan"))

    # ---- targets
    targets: list[tuple[str, str, str]] = []
    if ok_default:
        met = fps_default[0] >= 50
        targets.append(("end-to-end ≥ 50 fps, default configuration, incl. start-up and export",
                        f"{fps_default[0]:.1f} fps", "met" if met else "NOT met"))
    for key, name in (("ultralytics", "ultralytics `track`"), ("trackpy", "trackpy")):
        other = r.get(key) or {}
        if ok_default and "frames" in other:
            ratio = fps_default[0] / fps_of(other)[0]
            steady = fps_default[1] / fps_of(other)[1]
            targets.append((f"≥ 2× the fps of {name} (incl. start-up)",
                            f"{ratio:.2f}× (steady state {steady:.2f}×)",
                            "met" if ratio >= 2 else "NOT met"))
    bare, other = r.get("dt:morphology off") or {}, r.get("ultralytics") or {}
    if "frames" in bare and "frames" in other:  # the same work as `yolo track` does
        ratio = fps_of(bare)[0] / fps_of(other)[0]
        targets.append(("≥ 2× ultralytics `track`, like for like: detect-track without the "
                        "morphology stage (`yolo track` classifies nothing)",
                        f"{ratio:.2f}× (steady state "
                        f"{fps_of(bare)[1] / fps_of(other)[1]:.2f}×)",
                        "met" if ratio >= 2 else "NOT met"))
    tr = r.get("tracker") or {}
    if "tracker_ms" in tr:
        total = tr["track_detections_ms"]  # tracker, track filters, kinematics: all of it
        targets.append(("tracker + kinematics ≤ 1 ms per frame at 100 cells (the whole "
                        "`track_detections` call)", f"{total:.3f} ms",
                        "met" if total <= 1 else "NOT met"))
    acc = ctx.get("accuracy") or {}
    if acc.get("verdict"):
        targets.append(("accuracy unchanged, default fast path vs the torch model",
                        acc["verdict"][0],
                        acc["verdict"][1]))
    mem = r.get("memory") or {}
    if ok_default and "frames" in mem:
        ratio = mem["peak_rss_mb"] / dt_default["peak_rss_mb"]
        targets.append((f"flat peak memory for a {a.long_factor}× longer video "
                        f"(≤ {FLAT_RATIO:g}× the peak)", f"{ratio:.2f}×",
                        "met" if ratio <= FLAT_RATIO else "NOT met"))
    busy = [k for k, v in r.items() if v.get("other_load", 0.0) > OTHER_LOAD_WARN]
    if busy:
        lines += [f"**Warning: other processes used more than {100 * OTHER_LOAD_WARN:.0f} % "
                  f"of the CPU during {', '.join(busy)}: those times are unreliable; rerun "
                  "on a quiet machine.**", ""]
    lines += ["## Targets", "", "| target | measured | result |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {v} |" for t, m, v in targets]
    lines += [""]

    # ---- contenders
    rows = []
    for key, name, workers in [
        ("decode", "decode only (floor)", "1 process"),
        *[(f"dt:{v}", f"detect-track, {v}", f"{a.threads} threads") for v, _ in VARIANTS],
        ("ultralytics", "ultralytics `track` (ByteTrack)", f"{a.threads} threads"),
        ("trackpy", "trackpy locate + link", f"{a.threads} processes"),
    ]:
        res = r.get(key)
        if res is None:
            continue
        if "frames" not in res:
            rows.append(f"| {name} | {workers} | {res.get('skipped') or res.get('error')} "
                        "| | | | | | | | |")
            continue
        fi, fs = fps_of(res)
        startup = res.get("startup_s", res["total_s"] - res["steady_s"])
        ratios = ("—", "—") if key == "decode" else (_x(fps_default[0], fi),
                                                        _x(fps_default[1], fs))
        rows.append(f"| {name} | {workers} | {res['frames']} | {res['import_s']:.1f} | "
                    f"{startup:.1f} | {fi:.1f} | {fs:.1f} | {res['peak_rss_mb']:.0f} | "
                    f"{ratios[0]} | {ratios[1]} | {100 * res['other_load']:.0f} |")
    if rows:
        lines += [
            "## Contenders on the same video", "",
            "fps incl. start-up = frames / wall time from model loading to the last result "
            "(detect-track: `run_video` + `write_results`). Steady fps: detect-track = frames "
            "/ sum of its stage times; ultralytics = frames after the first / time after "
            "the first result; trackpy = frames / (locate + link) after the worker pool "
            "started. Import s = Python imports, not in either fps. Peak RSS = the "
            "kernel's high-water mark of the process's resident memory, or, if larger, the "
            "largest total over the process and its workers polled every 50 ms (PSS: pages "
            "shared by forked workers counted once). Ratio = detect-track default fps / this "
            "row's fps. Other CPU % = share of the machine's CPU time used by other "
            "processes during the run (0 on a quiet machine).",
            "",
            "| contender | workers | frames | import s | start-up s | fps incl. start-up | "
            "fps steady | peak RSS MB | ratio incl. start-up | ratio steady | other CPU % |",
            "|---|---|---|---|---|---|---|---|---|---|---|", *rows, ""]

    # ---- stages
    srows = []
    for v, _ in VARIANTS:
        res = r.get(f"dt:{v}")
        if not res or "frames" not in res:
            continue
        n = res["frames"]
        t = res["timings_s"]
        ms = [1000 * t.get(s, 0.0) / n for s in STAGES]
        streamed = t.get("export", 0.0)  # trajectory rows written while the video ran
        srows.append(f"| {v} | {_engine(res)} | " + " | ".join(f"{m:.2f}" for m in ms)
                     + f" | {sum(ms):.2f} | "
                     f"{1000 * (streamed + res['export_s']) / n:.2f} | "
                     f"{res['run_s'] - res['steady_s']:.1f} |")
    if srows:
        lines += [
            "## detect-track time per stage", "",
            "ms per frame. decode = time spent waiting for the next frame (decoding runs in "
            "a background thread; only the part not hidden behind inference shows). "
            "track = tracker + streaming track store and filters. kinematics = gap filling, "
            "kinematics and motility of each batch of tracks that ended (morphology "
            "classifies the same batch). export = the trajectory rows written to "
            "`trajectories.csv` while the video runs, plus `write_results` (tracks.csv, "
            "summary.json). start-up s = `run_video` time outside the stages (model loading, "
            "opening the video, summary).", "",
            "| variant | backend | decode | detect | track | morphology | kinematics | sum | "
            "export | start-up s |", "|---|---|---|---|---|---|---|---|---|---|", *srows, ""]

    # ---- accuracy
    if acc.get("rows"):
        lines += [
            "## Accuracy across backends", "",
            "Same video, scored against the simulator's truth as `detect-track eval` does "
            "(centres within 4 µm). HOTA and motility accuracy in %, VCL error = median "
            "relative error of matched tracks in %.", "",
            "| variant | backend | tracks | % progressive | % non-progressive | % immotile | "
            "HOTA | detection recall | VCL error % | motility accuracy % |",
            "|---|---|---|---|---|---|---|---|---|---|"]
        for v, res, sc in acc["rows"]:
            lines.append(
                f"| {v} | {_engine(res)} | {res['n_tracks']} | "
                f"{_f(res['pct_progressive'])} | {_f(res['pct_non_progressive'])} | "
                f"{_f(res['pct_immotile'])} | {_f(sc.get('HOTA'))} | "
                f"{_f(sc.get('recall'), '{:.3f}')} | {_f(sc.get('vcl_err'))} | "
                f"{_f(sc.get('motility_acc'))} |")
        m = acc.get("match")
        if m:
            lines += ["", f"Default vs torch, track by track: {m['matched']} of {m['n_a']} "
                      f"default tracks and {m['n_b']} torch tracks start in the same frame "
                      "within 2 px; "
                      f"their VCL differs by {m['mean_abs_dvcl']:.2f} µm/s on average "
                      f"(largest {m['max_abs_dvcl']:.2f} µm/s)."]
        lines.append("")

    # ---- tracker micro-benchmark
    if "tracker_ms" in tr:
        store_ms = tr.get("track_stage_ms", float("nan")) - tr["tracker_ms"]
        lines += [
            "## Tracker + kinematics at 100 cells", "",
            f"{tr['n_cells']} synthetic cells (random walk with drift, 6 px boxes) for "
            f"{tr['frames']} frames at 50 fps, no video. First the default tracker "
            f"(`{tr['tracker']}`) alone gets one frame at a time; then `track_detections` "
            "links and measures the same points as the video pipeline does: tracker, "
            "streaming track store and filters (short, weak and satellite tracks), then, "
            "as tracks end, gap filling, kinematics and motility. "
            f"{tr['n_tracks']} tracks came out (a cell that bounces off the field edge "
            "often gets a new id).", "",
            "| stage | ms per frame |", "|---|---|",
            f"| tracker `update` (mean) | {tr['tracker_ms']:.3f} |",
            f"| tracker `update` (95th percentile) | {tr['tracker_p95_ms']:.3f} |",
            f"| track store and filters (track stage minus tracker) | {store_ms:.3f} |",
            f"| trajectories + kinematics + motility | {tr['kinematics_ms']:.3f} |",
            f"| **whole `track_detections` call** | **{tr['track_detections_ms']:.3f}** "
            "(target ≤ 1) |", ""]

    # ---- memory
    if ok_default and "frames" in mem:
        f30, f300 = fps_of(dt_default)[0], fps_of(mem)[0]
        lines += [
            f"## Memory, {a.long_factor}× longer video", "",
            f"The long video is the test video's frames written {a.long_factor} times in a "
            "row (same codec), so cells jump at each seam; the default configuration runs "
            "on each in a fresh process.", "",
            "| video | frames | fps incl. start-up | peak RSS MB |", "|---|---|---|---|",
            f"| {dt_default['frames'] / FPS:g} s | {dt_default['frames']} | {f30:.1f} | "
            f"{dt_default['peak_rss_mb']:.0f} |",
            f"| {mem['frames'] / FPS:g} s | {mem['frames']} | {f300:.1f} | "
            f"{mem['peak_rss_mb']:.0f} |",
            f"| ratio long / short | {mem['frames'] / dt_default['frames']:.0f}× | "
            f"{f300 / f30:.2f}× | {mem['peak_rss_mb'] / dt_default['peak_rss_mb']:.2f}× |",
            ""]

    # ---- notes
    notes = []
    ul = r.get("ultralytics") or {}
    if "threads_seen" in ul:
        notes.append(
            "ultralytics sets torch to min(8, cores - 1) threads when it selects the CPU "
            f"device (1 thread on 2 cores); an `on_predict_start` callback sets {a.threads} "
            f"again. Threads seen inside the loop: {ul['threads_seen']}. Same weights "
            f"({WEIGHTS.name}), imgsz {ctx['imgsz']}, conf 0.05, `bytetrack.yaml`; "
            f"it reports {ul['boxes_per_frame']:.1f} boxes per frame and {ul['n_tracks']} "
            "track ids: `track` returns only the boxes ByteTrack keeps, and its default "
            "thresholds (0.25 for the first association and to start a track) are above this "
            f"model's raw operating point ({_yolo_operating():g}), so it follows fewer cells "
            "than detect-track.")
    tp = r.get("trackpy") or {}
    if "frames" in tp:
        s = ctx["trackpy"]
        notes.append(
            f"trackpy: `locate(diameter={s['diameter']}, minmass={s['minmass']:.0f}, "
            f"invert={s['invert']})` runs in a pool of {a.threads} worker processes "
            "(as `trackpy.batch(processes=...)` does, with a bounded number of frames in "
            "flight), the main process decodes; then `link(search_range="
            f"{s['search_range']:.1f} px, memory=3)` in one process. minmass is set so that "
            f"about as many features are found per frame as there are heads in view "
            f"({s['heads_per_frame']:.0f}): it found {tp['features_per_frame']:.1f} per frame "
            f"and {tp['n_tracks']} tracks. Locate {tp['locate_s']:.1f} s, link "
            f"{tp['link_s']:.1f} s. numba is {'' if ctx['numba'] else 'not '}installed.")
    for v, _ in VARIANTS:
        res = r.get(f"dt:{v}") or {}
        if "frames" in res:
            notes.append(f"detect-track {v}: backend {_engine(res)} ({res['weights']}); "
                         f"torch {'imported' if res['torch_imported'] else 'not imported'}"
                         + (f", {res['torch_threads']} threads"
                            if res["torch_threads"] else "") + ".")
    d = r.get("dt:default") or {}
    if d.get("runtime") == "openvino":
        notes.append("The default configuration runs the ONNX export with OpenVINO "
                     "(`detector.onnx_runtime=auto` and OpenVINO installed), which computes in "
                     "bfloat16 on CPUs that have it (this one does); the onnxruntime row runs "
                     "the same file in float32. The accuracy table shows what that changes.")
    notes.append(f"Children run detect-track with `detect_track.ml.set_threads({a.threads})`, "
                 f"get OMP_NUM_THREADS and friends = {a.threads}, and YOLO_OFFLINE=1 "
                 "(nothing touches the network).")
    lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration-s", type=float, default=30.0, help="test video length, s")
    ap.add_argument("--long-factor", type=int, default=10,
                    help="the memory check's video is this many times longer")
    ap.add_argument("--format", choices=("avi", "mp4"), default="avi",
                    help="container of the test video (avi = MJPG)")
    ap.add_argument("--work", help="folder for videos and outputs, reused between runs "
                    "(default: a temporary folder, deleted at the end)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "speed.md"))
    ap.add_argument("--skip", default="", help=f"comma list of: {', '.join(CONTENDERS)}")
    ap.add_argument("--threads", type=int, default=2, help="threads (or processes) per contender")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--spec", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child_main(args.child, Path(args.spec), Path(args.result))

    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = skip - set(CONTENDERS)
    if unknown:
        ap.error(f"unknown --skip name(s) {', '.join(sorted(unknown))}; "
                 f"choose from {', '.join(CONTENDERS)}")
    if args.threads < 1 or args.duration_s <= 0 or args.long_factor < 1:
        ap.error("--threads, --duration-s and --long-factor must be positive")
    os.environ["YOLO_OFFLINE"] = "1"
    t_start = time.perf_counter()
    tmp = None
    if args.work:
        work = Path(args.work).resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench_speed_")
        work = Path(tmp.name)
    try:
        return _run(args, skip, work, t_start)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _run(args: argparse.Namespace, skip: set[str], work: Path, t_start: float) -> int:
    video, truth, info = simulate_video(work, args.duration_s, args.format)
    runs = work / "runs"
    if runs.exists():
        shutil.rmtree(runs)
    runs.mkdir()
    um = float(info["um_per_px"])
    imgsz = [-(-HEIGHT // 32) * 32, -(-WIDTH // 32) * 32]
    results: dict[str, dict] = {}
    ctx: dict[str, Any] = {"args": args, "info": info, "results": results, "imgsz": imgsz}
    th = args.threads

    def run(kind: str, key: str, spec: dict) -> dict:
        print(f"[{key}] running ...", flush=True)
        res = run_child(kind, spec, work, key, th)
        results[key] = res
        if "skipped" in res:
            print(f"  note: {key} skipped: {res['skipped']}", flush=True)
        elif "frames" in res:
            fi, fs = fps_of(res) if "total_s" in res else (float("nan"),) * 2
            print(f"  {res['frames']} frames, {fi:.1f} fps incl. start-up, {fs:.1f} fps "
                  f"steady, peak RSS {res['peak_rss_mb']:.0f} MB", flush=True)
        return res

    if "decode" not in skip:
        run("decode", "decode", {"video": str(video)})
    if "detect-track" not in skip:
        for name, overrides in VARIANTS:
            run("detect-track", f"dt:{name}", {
                "video": str(video), "overrides": overrides, "um_per_px": um,
                "out_dir": str(runs / f"dt_{name.replace(' ', '_')}")})
    if "ultralytics" not in skip:
        run("ultralytics", "ultralytics", {"video": str(video), "weights": str(WEIGHTS),
                                           "imgsz": imgsz, "threads": th})
    if "trackpy" not in skip:
        print("[trackpy] choosing minmass (untimed) ...", flush=True)
        settings = trackpy_settings(video, info)
        ctx["trackpy"] = settings
        run("trackpy", "trackpy", {"video": str(video), "processes": th, **settings})
    if "tracker" not in skip:
        print("[tracker] 100 cells x 1,500 frames ...", flush=True)
        res = run_child("tracker", {"n_cells": 100, "n_frames": 1500, "fps": 50.0,
                                    "um_per_px": 0.7}, work, "tracker", th)
        results["tracker"] = res
        if "tracker_ms" in res:
            print(f"  tracker {res['tracker_ms']:.3f} ms/frame, kinematics "
                  f"{res['kinematics_ms']:.3f} ms/frame", flush=True)
    if "memory" not in skip:
        if "frames" not in results.get("dt:default", {}):
            run("detect-track", "dt:default", {
                "video": str(video), "overrides": {}, "um_per_px": um,
                "out_dir": str(runs / "dt_default")})
        longv = long_video(video, args.long_factor)
        run("detect-track", "memory", {"video": str(longv), "overrides": {}, "um_per_px": um,
                                       "out_dir": str(runs / "dt_long")})

    # accuracy across backends (parent, untimed)
    acc_rows = []
    for name, _ in VARIANTS:
        res = results.get(f"dt:{name}") or {}
        if "frames" not in res:
            continue
        print(f"[accuracy] scoring detect-track {name} against the truth ...", flush=True)
        acc_rows.append((name, res, score(runs / f"dt_{name.replace(' ', '_')}", truth)))
    acc: dict[str, Any] = {"rows": acc_rows}
    by = {n: (res, sc) for n, res, sc in acc_rows}
    if "default" in by and "torch" in by:
        acc["match"] = match_tracks(runs / "dt_default", runs / "dt_torch")
        (ro, so), (rt, st) = by["default"], by["torch"]
        d_hota = abs(so.get("HOTA", float("nan")) - st.get("HOTA", float("nan")))
        classes = ("pct_progressive", "pct_non_progressive", "pct_immotile")
        d_pct = max(abs((ro[k] or 0.0) - (rt[k] or 0.0)) for k in classes)
        ok = (d_hota <= 1.0 or d_hota != d_hota) and d_pct <= 2.0
        dvcl = acc["match"]["mean_abs_dvcl"]
        acc["verdict"] = (f"HOTA {_f(so.get('HOTA'))} vs {_f(st.get('HOTA'))}; motility "
                          f"classes within {d_pct:.1f} points; VCL of matched tracks within "
                          f"{dvcl:.2f} µm/s on average",
                          "met (ΔHOTA ≤ 1, Δ% ≤ 2)" if ok else "NOT met")
    ctx["accuracy"] = acc
    try:
        import numba  # noqa: F401

        ctx["numba"] = True
    except ImportError:
        ctx["numba"] = False
    ctx["elapsed_s"] = time.perf_counter() - t_start
    ctx["command"] = (".venv/bin/python tools/bench_speed.py " + " ".join(sys.argv[1:])).strip()
    text = report(ctx)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
