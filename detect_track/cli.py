"""Command line: ``detect-track VIDEO`` and its sub-commands.

Argument parsing and printing only; the work is done by :mod:`detect_track.pipeline`,
:mod:`detect_track.synth` and :mod:`detect_track.eval`. Errors a user can cause are
reported on one line with a non-zero exit status, never with a traceback.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable, Iterator, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from detect_track import __version__  # noqa: E402
from detect_track.errors import ConfigError, DetectTrackError, InputError  # noqa: E402

PROG = "detect-track"
EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1

RUN_DESCRIPTION = """\
Find every sperm cell in a microscopy video, follow it from frame to frame, and
measure it: CASA kinematics (VCL, VSL, VAP, LIN, STR, WOB, ALH, BCF, MAD in µm and
seconds) and the WHO motility class (progressive / non-progressive / immotile).

Writes into the output folder:
  trajectories.csv  one row per cell per frame (positions in px and µm)
  tracks.csv        one row per cell: kinematics, motility class, WHO grade a/b/c/d,
                    head morphology (normal, tapered, pyriform, amorphous, small)
  summary.json      counts and percentages, the fps and µm/px used and where they came from
  report.html       one-page report: summary, trajectory plot, histograms, track table
  overlay.mp4       (--overlay) the video with boxes, ids and trails coloured by class

Still images (stained slides): --config sperm-slide with an image or a folder of
images (PNG, JPEG, TIFF; 8/16-bit) writes detections.csv (boxes in px, class,
confidence, head-shape call), counts.csv (per image and class) and annotated/*.png.

Batch: give a folder (searched recursively for videos, TIFF stacks and folders of
frames), a quoted glob ('data/**/*.avi') or a list file (.txt, one path per line).
Each input gets OUT/<relative path>/; OUT/ gets all_tracks.csv, all_summaries.csv
(and .parquet copies), batch_log.csv (status, error, time per file) and report.html.
Rerunning the same command skips inputs already done with the same content and
settings; a killed run loses nothing that finished. Exit status: 0 all done, 3 some
inputs failed (see batch_log.csv), 2 bad command line.
"""

RUN_EPILOG = """\
other commands:
  detect-track track DETECTIONS.csv --fps F --um-per-px X
                                            link detections from other software
  detect-track synth OUT_DIR [options]      simulate a video with ground truth
  detect-track eval PRED_DIR TRUTH_DIR      score results against ground truth
  detect-track annotate VIDEO --out DIR     frames + detections to correct (YOLO, COCO)
  detect-track train yolo|effdet|dataset    train a detector / build a training set
  detect-track morphology train|predict     head-morphology classifiers
  detect-track export onnx MODEL.pt         ONNX export for the fast CPU path
  (run 'detect-track COMMAND --help' for details)

examples:
  detect-track sample.avi --um-per-px 0.7
  detect-track sample.avi --fps 50 --out results/sample tracker.max_gap_s=0.3
  detect-track frames/ --fps 60 --um-per-px 0.5 --config sperm
  detect-track sample.avi --detector classical   (no model: band-pass + threshold)
  detect-track sample.avi --tracker trackpy --export mot
  detect-track sample.avi --overlay --chamber-depth-um 20
  detect-track archive/ --out results/archive --workers 2
  detect-track slides/ --config sperm-slide --um-per-px 0.08
  detect-track archive/ --executor dask --dask-address tcp://scheduler:8786

Distances and speeds are only right with the right scale: pass --um-per-px (the
camera's micrometres per pixel at your objective). The frame rate is read from the
video unless --fps is given; both values used are recorded in summary.json.
"""


def _float_arg(name: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        return value

    return parse


class _Parser(argparse.ArgumentParser):
    """ArgumentParser that reports errors as one line plus a usage hint."""

    def error(self, message: str) -> None:  # type: ignore[override]
        """Print one line and exit with status 2."""
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} "
                                    f"(run '{self.prog} --help' for usage)\n")


def _dash_names(argv: Sequence[str]) -> list[str]:
    """Arguments after ``--`` as plain names even when they start with ``-`` (``-x.avi``).

    argparse's intermixed parsing loses what follows ``--``; ``./-x.avi`` names the same
    file and cannot be taken for an option. They come first, so that the input is the
    first positional argument even when ``KEY=VALUE`` overrides precede ``--``.
    """
    argv = list(argv)
    if "--" not in argv:
        return argv
    i = argv.index("--")
    return [f"./{a}" if a.startswith("-") else a for a in argv[i + 1:]] + argv[:i]


def _output_folder(given: str | None, stem: str) -> Path:
    """``--out``, or ``results/<stem>`` with the stem made valid UTF-8.

    Raises:
        ConfigError: If ``--out`` is not valid UTF-8 (OpenCV cannot write there).
    """
    from detect_track.io.video import printable_name

    if given is None:
        return Path("results") / printable_name(stem)
    try:
        given.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"--out {printable_name(given)!r}: the folder name is not valid "
                          "UTF-8; choose another") from None
    return Path(given)


@contextlib.contextmanager
def _run_folder(out: Path) -> Iterator[Path]:
    """The output folder of one run, held while the run writes into it.

    Created and checked, locked against a second run into it, cleared of what a killed
    run left (temporary files), and removed again when the run failed and left it empty.

    Raises:
        OutputError: If the folder cannot be written.
        ConfigError: If another detect-track run writes into it.
    """
    from detect_track.batch import output_lock
    from detect_track.io.export import ensure_output_dir, remove_stale_temporaries

    created = not out.exists()
    ensure_output_dir(out)  # fail before the long work, not after
    try:
        with output_lock(out):
            try:
                yield out
            except BaseException:  # e.g. SIGTERM between creating a temporary file and the
                remove_stale_temporaries(out)  # code that would remove it: ours, we hold
                raise  # the lock
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()  # only if empty
        raise


def _run_parser() -> argparse.ArgumentParser:
    from detect_track.config import list_presets
    from detect_track.detectors import available_detectors
    from detect_track.tracking import available_trackers

    p = _Parser(prog=PROG, description=RUN_DESCRIPTION, epilog=RUN_EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", metavar="VIDEO",
                   help="video file (AVI, MP4, ...), folder of frames, multi-page TIFF; or "
                   "for a batch: a folder of videos, a quoted glob, or a list file")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides, e.g. tracker.max_gap_s=0.3")
    p.add_argument("-o", "--out", metavar="DIR",
                   help="output folder (default: results/<video name>)")
    p.add_argument("--um-per-px", type=_float_arg("--um-per-px"), metavar="X",
                   help="micrometres per pixel (default: from the config, else 0.7, flagged)")
    p.add_argument("--fps", type=_float_arg("--fps"), metavar="F",
                   help="frames per second (default: read from the video)")
    p.add_argument("--detector", metavar="NAME",
                   help=f"detector: {', '.join(available_detectors())} (default: from config)")
    p.add_argument("--tracker", metavar="NAME",
                   help=f"tracker: {', '.join(available_trackers())} (default: from config)")
    p.add_argument("--backend", choices=["auto", "torch", "onnx"],
                   help="inference of the learned models: onnx (fast, no torch needed), torch; "
                   "auto (default) = onnx when onnxruntime and the .onnx model are there")
    p.add_argument("-c", "--config", metavar="PRESET|FILE",
                   help=f"preset ({', '.join(list_presets())}) or YAML file")
    _trust_option(p)
    _video_options(p)
    _common_run_options(p)
    p.add_argument("-V", "--version", action="version", version=f"{PROG} {__version__}")
    return p


def _trust_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trust-model", action="store_true",
                   help="load .pt model files from outside weights/ even when they need "
                   "Python's unpickler (which can run code they hold): only for files you trust")


def _apply_trust(args: argparse.Namespace) -> None:
    """``--trust-model``: this process and the workers it starts may unpickle any model."""
    if getattr(args, "trust_model", False):
        from detect_track.trust import TRUST_ENV

        os.environ[TRUST_ENV] = "1"


def _video_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-morphology", action="store_true",
                   help="skip the head-morphology call (morphology columns stay empty)")
    p.add_argument("--save-crops", action="store_true",
                   help="write each track's head crops to OUT/crops/ (PNG)")
    p.add_argument("--overlay", action="store_true",
                   help="write overlay.mp4: boxes, ids, trails coloured by motility class")
    p.add_argument("--no-report", action="store_true", help="do not write report.html")
    p.add_argument("--chamber-depth-um", type=_float_arg("--chamber-depth-um"), metavar="D",
                   help="counting-chamber depth in µm (e.g. 20): adds the concentration")
    b = p.add_argument_group("batch")
    b.add_argument("--batch", action="store_true",
                   help="treat VIDEO as a batch even if it looks like one video (a folder "
                   "whose sub-folders each hold the frames of one video is found anyway)")
    b.add_argument("--workers", type=int, default=1, metavar="N",
                   help="inputs processed in parallel (local processes or Dask workers)")
    b.add_argument("--executor", choices=["local", "dask"], default="local",
                   help="local (default) or dask: one Dask task per input; a LocalCluster "
                   "unless --dask-address is given")
    b.add_argument("--dask-address", metavar="tcp://HOST:PORT",
                   help="scheduler of an existing Dask cluster (workers need detect-track "
                   "installed and must see the input and output folders)")
    b.add_argument("--force", action="store_true",
                   help="reprocess inputs whose outputs are already complete")


def _common_run_options(p: argparse.ArgumentParser) -> None:
    from detect_track.io.export import EXPORT_FORMATS

    p.add_argument("--export", action="append", default=[], metavar="FORMAT",
                   choices=list(EXPORT_FORMATS),
                   help="also write FORMAT: mot = mot.txt, MOTChallenge tracks for TrackEval "
                   "(repeatable)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument("--debug", action="store_true", help="show a traceback on internal errors")


def _load_cfg(preset: str | None, overrides: Sequence[str], **extra: Any) -> Any:
    from detect_track.config import load_config, parse_overrides

    ov: dict[str, Any] = parse_overrides(list(overrides))
    ov.update({k: v for k, v in extra.items() if v is not None})
    return load_config(preset, ov)


def _progress_bar(desc: str, quiet: bool) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit="frame", disable=True if quiet else None, file=sys.stderr,
               dynamic_ncols=True, leave=False)

    def update(done: int, total: int) -> None:
        if total > 0 and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    return update, bar.close


def cmd_run(argv: Sequence[str]) -> int:
    """``detect-track VIDEO ...``: run the pipeline on one video."""
    parser = _run_parser()
    if not argv:
        parser.error("no VIDEO given")
    args = parser.parse_intermixed_args(_dash_names(argv))
    _apply_trust(args)
    from detect_track.batch import is_batch_input, write_outputs
    from detect_track.config import check_um_per_px
    from detect_track.pipeline import run_video

    if args.um_per_px is not None:
        check_um_per_px(args.um_per_px)

    cfg = _load_cfg(args.config, args.overrides,
                    **{"detector.name": args.detector, "tracker.name": args.tracker,
                       "detector.backend": args.backend,
                       "morphology.enabled": False if args.no_morphology else None,
                       "video.chamber_depth_um": args.chamber_depth_um})
    if cfg.still.enabled:
        return _run_stills(args, cfg)
    if args.batch or is_batch_input(args.video):
        return _run_batch(args, cfg)
    for name in ("workers", "executor", "dask_address", "force"):
        if getattr(args, name) not in (None, False, 1, "local"):
            raise ConfigError(f"--{name.replace('_', '-')} is for batches (a folder of "
                              "videos, a glob or a list file; or add --batch)")
    video = Path(args.video)
    if not video.exists():  # before any output folder is made
        raise InputError(f"no such file or folder: {video}")
    out = _output_folder(args.out, video.stem or "video")
    with _run_folder(out):
        update, close = _progress_bar(video.name, args.quiet)
        try:
            results = run_video(video, cfg, fps=args.fps, um_per_px=args.um_per_px,
                                progress=update, trajectories_csv=out / "trajectories.csv")
        finally:
            close()
        update, close = _progress_bar("overlay", args.quiet or not args.overlay)
        try:
            paths = write_outputs(video, results, out, _job_spec(args, cfg),
                                  overlay_progress=update)
        finally:
            close()
    if not args.quiet:
        _print_outcome(results, out, paths)
    return 0


EXIT_SOME_FAILED = 3


def _run_stills(args: argparse.Namespace, cfg: Any) -> int:
    """Still images (``--config sperm-slide``): detections.csv, counts.csv, annotated PNGs."""
    from detect_track.io.export import ensure_output_dir
    from detect_track.stills import list_images, run_images, write_still_results

    images = list_images(args.video)
    name = Path(str(args.video).rstrip("/")).stem or "images"
    out = _output_folder(args.out, name)
    with _run_folder(out):
        annotated = ensure_output_dir(out / "annotated") if cfg.still.annotate else None
        update, close = _progress_bar("images", args.quiet)
        try:
            results = run_images(images, cfg, args.um_per_px, progress=update,
                                 annotated_dir=annotated)
        finally:
            close()
        paths = write_still_results(results, out)
    if annotated is not None:
        paths["annotated"] = annotated
    for w in results.warnings:
        print(f"warning: {w}", file=sys.stderr)
    for image, message in results.errors:
        print(f"failed: {image}: {message}", file=sys.stderr)
    if not args.quiet:
        per_class = results.counts.groupby("class_name")["count"].sum()
        print(f"{len(images) - len(results.errors)} images: "
              + ", ".join(f"{n} {c}" for c, n in per_class.items())
              + f" -> {out}/: " + ", ".join(p.name for p in paths.values()))
    return EXIT_SOME_FAILED if results.errors else 0


def _job_spec(args: argparse.Namespace, cfg: Any) -> Any:
    """The outputs and settings the command line asks for, as a batch job spec."""
    from detect_track.batch import JobSpec

    return JobSpec(cfg, fps=args.fps, um_per_px=args.um_per_px, exports=tuple(args.export),
                   save_crops=args.save_crops, report=not args.no_report,
                   overlay=args.overlay, trust_models=args.trust_model)


def _run_batch(args: argparse.Namespace, cfg: Any) -> int:
    """A batch: every input found, resumable; exit 3 when some input failed."""
    from tqdm import tqdm

    from detect_track.batch import discover, run_batch
    from detect_track.io.export import ensure_output_dir
    from detect_track.pipeline import _in_range

    if args.fps is not None:  # checked once here, not once per input
        _in_range(args.fps, "--fps", cfg.video.max_fps)
    name = Path(str(args.video).split("*")[0].rstrip("/")).stem or "batch"
    out = _output_folder(args.out, name)
    items = discover(args.video, exclude=out)  # no input: no output folder either
    created = not out.exists()
    out = ensure_output_dir(out)
    spec = _job_spec(args, cfg)
    files = tqdm(total=len(items), desc="files", unit="file", file=sys.stderr,
                 disable=True if args.quiet else None, dynamic_ncols=True, position=0)
    frames = tqdm(desc="frames", unit="frame", file=sys.stderr,
                  disable=True if args.quiet else None, dynamic_ncols=True, position=1,
                  leave=False)
    seen: dict[int, int] = {}

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if kind == "frames":
            i = data["index"]
            frames.update(data["done"] - seen.get(i, 0))
            seen[i] = data["done"]
        elif kind == "item":
            rec = data["record"]
            files.update(1)
            if rec["status"] == "failed":
                files.write(f"failed: {rec['file']}: {rec['error']}", file=sys.stderr)

    try:
        outcome = run_batch(items, out, spec, workers=args.workers, executor=args.executor,
                            dask_address=args.dask_address, force=args.force,
                            on_event=on_event)
    except BaseException:
        if created:  # e.g. the Dask scheduler could not be reached: leave no empty folder
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    finally:
        frames.close()
        files.close()
    counts = {s: sum(r["status"] == s for r in outcome.records)
              for s in ("ok", "skipped", "failed")}
    if not args.quiet or counts["failed"]:
        print(f"{len(items)} inputs: {counts['ok']} done, {counts['skipped']} already done "
              f"(skipped), {counts['failed']} failed -> {out}/ "
              f"({', '.join(p.name for p in outcome.paths.values())})")
    return EXIT_SOME_FAILED if counts["failed"] else 0


def _print_outcome(results: Any, out: Path, paths: dict[str, Path]) -> None:
    s = results.summary
    for w in results.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"{s['video']}: {s['n_frames']} frames at {s['fps']:g} fps, "
          f"{s['um_per_px']:g} µm/px -> {s['n_tracks']} tracks: "
          f"{s['pct_progressive']:.1f}% progressive, "
          f"{s['pct_non_progressive']:.1f}% non-progressive, "
          f"{s['pct_immotile']:.1f}% immotile"
          + (f"; {s['pct_normal_forms']:.0f}% normal forms of {s['n_morphology_assessed']} "
             "assessed" if s.get("pct_normal_forms") is not None else ""))
    print(f"results in {out}/: " + ", ".join(p.name for p in paths.values()))


TRACK_DESCRIPTION = """\
Link per-frame detections from any source into tracks, then measure them exactly as
for a video: trajectories.csv, tracks.csv, summary.json.

DETECTIONS.csv columns (one row per detected cell per frame, pixels):
  frame         0-based frame index                          (required)
  x_px, y_px    centre of the cell, x = column, y = row       (required)
  w_px, h_px    box size (default: a 5 µm square)             (optional)
  confidence    detection score 0..1 (default 1)              (optional)
  class_name    e.g. sperm, cluster (default sperm)           (optional)

Positions filled in across a bridged gap carry interpolated = true.
example: detect-track track spots.csv --fps 50 --um-per-px 0.7 --out results/spots
"""


def cmd_track(argv: Sequence[str]) -> int:
    """``detect-track track DETECTIONS.csv``: link external detections into tracks."""
    from detect_track.tracking import available_trackers

    p = _Parser(prog=f"{PROG} track", description=TRACK_DESCRIPTION,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("detections", metavar="DETECTIONS.csv", help="per-frame detections (CSV)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides, e.g. tracker.max_gap_s=0.3")
    p.add_argument("--fps", type=_float_arg("--fps"), required=True, metavar="F",
                   help="frames per second of the video the detections come from")
    p.add_argument("--um-per-px", type=_float_arg("--um-per-px"), required=True, metavar="X",
                   help="micrometres per pixel")
    p.add_argument("-o", "--out", metavar="DIR",
                   help="output folder (default: results/<file name>)")
    p.add_argument("--tracker", metavar="NAME",
                   help=f"tracker: {', '.join(available_trackers())} (default: from config)")
    p.add_argument("--n-frames", type=int, metavar="N",
                   help="frames in the video (default: last frame in the file + 1)")
    p.add_argument("-c", "--config", metavar="PRESET|FILE", help="preset or YAML file")
    _common_run_options(p)
    if not argv:
        p.error("no DETECTIONS.csv given")
    args = p.parse_intermixed_args(_dash_names(argv))
    from detect_track.config import check_um_per_px
    from detect_track.io.detections import MAX_FRAMES, read_detections
    from detect_track.io.video import printable_name
    from detect_track.pipeline import track_detections, write_results

    check_um_per_px(args.um_per_px)
    if args.n_frames is not None and not 0 <= args.n_frames <= MAX_FRAMES:
        raise ConfigError(f"--n-frames must be in [0, {MAX_FRAMES}], got {args.n_frames}")
    cfg = _load_cfg(args.config, args.overrides, **{"tracker.name": args.tracker})
    path = Path(args.detections)
    table = read_detections(path)
    out = _output_folder(args.out, path.stem or "detections")
    with _run_folder(out):
        update, close = _progress_bar(path.name, args.quiet)
        try:
            results = track_detections(table, cfg, fps=args.fps, um_per_px=args.um_per_px,
                                       name=printable_name(path.name), path=path,
                                       n_frames=args.n_frames, progress=update,
                                       trajectories_csv=out / "trajectories.csv")
        finally:
            close()
        paths = write_results(results, out, exports=args.export)
    if not args.quiet:
        _print_outcome(results, out, paths)
    return 0


def _synth_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=f"{PROG} synth", formatter_class=argparse.RawDescriptionHelpFormatter,
                description="Simulate a microscopy video of sperm with ground truth: the video, "
                "gt/gt.txt (MOTChallenge head boxes), truth_tracks.csv (true kinematics and "
                "motility class per cell) and truth.json.",
                epilog="Any other simulator setting can be given as KEY=VALUE, e.g. "
                "n_debris=30 look=phase_dark.\nexample: detect-track synth sim/ --seed 3 "
                "--duration-s 10 --n-cells 50\n         detect-track synth sim/ --preset visem")
    p.add_argument("out_dir", metavar="OUT_DIR", help="folder to write the video and truth into")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="simulator settings")
    p.add_argument("--seed", type=int, help="random seed (same seed, same video)")
    p.add_argument("--duration-s", type=_float_arg("--duration-s"), help="length in seconds")
    p.add_argument("--fps", type=_float_arg("--fps"), help="frames per second")
    p.add_argument("--um-per-px", type=_float_arg("--um-per-px"), help="micrometres per pixel")
    p.add_argument("--n-cells", type=int, help="number of cells")
    p.add_argument("--width", type=int, dest="width_px", help="frame width in px")
    p.add_argument("--height", type=int, dest="height_px", help="frame height in px")
    p.add_argument("--random", action="store_true",
                   help="draw all conditions at random from the seed (wide variation)")
    p.add_argument("--preset", metavar="NAME",
                   help="start from a preset fitted to real footage: visem (VISEM-Tracking "
                   "look and motion, 0.5 um/px, 49 fps)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def synth_config_from(base: Any, values: dict[str, Any]) -> Any:
    """Apply ``values`` (strings or numbers) to a simulator config, checking names and types.

    Raises:
        ConfigError: On an unknown setting (with a suggestion) or a bad value.
    """
    from detect_track.config import _coerce, _unknown_key

    names = [f.name for f in dataclasses.fields(base)]
    changes = {}
    for key, value in values.items():
        if key not in names:
            raise _unknown_key(key, names)
        changes[key] = _coerce(value, getattr(base, key), key)
    try:
        return dataclasses.replace(base, **changes)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def cmd_synth(argv: Sequence[str]) -> int:
    """``detect-track synth OUT_DIR``: simulate a video with ground truth."""
    parser = _synth_parser()
    if not argv:
        parser.error("no OUT_DIR given")
    args = parser.parse_intermixed_args(argv)
    from detect_track.config import parse_overrides
    from detect_track.synth import SynthConfig, random_config, simulate
    from detect_track.synth.config import preset_config

    values: dict[str, Any] = parse_overrides(args.overrides)
    for key in ("duration_s", "fps", "um_per_px", "n_cells", "width_px", "height_px"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    seed = args.seed if args.seed is not None else 0
    if args.preset and args.random:
        raise ConfigError("synth: --preset and --random exclude each other")
    if args.preset:
        base = preset_config(args.preset, seed=seed)
    else:
        base = random_config(seed) if args.random else SynthConfig(seed=seed)
    cfg = synth_config_from(base, values)
    from detect_track.io.detections import MAX_FRAMES
    from detect_track.io.video import DEFAULT_MAX_PIXELS

    if cfg.width_px * cfg.height_px > DEFAULT_MAX_PIXELS:  # a typo must not fill the memory
        raise ConfigError(f"synth: {cfg.width_px} x {cfg.height_px} px is more than "
                          f"{DEFAULT_MAX_PIXELS / 1e6:g} Mpx")
    if cfg.duration_s * cfg.fps > MAX_FRAMES or cfg.n_cells > 100_000:
        raise ConfigError(f"synth: at most {MAX_FRAMES:,} frames and 100,000 cells")
    update, close = _progress_bar("simulating", args.quiet)
    try:
        res = simulate(args.out_dir, cfg, progress=update)
    finally:
        close()
    print(f"simulated {res.n_tracks} tracks -> {res.video_path} (truth: {res.gt_path}, "
          f"{res.tracks_path}, {res.meta_path})")
    return 0


def cmd_eval(argv: Sequence[str]) -> int:
    """``detect-track eval PRED_DIR TRUTH_DIR``: score results against ground truth."""
    p = _Parser(prog=f"{PROG} eval",
                description="Score a results folder (trajectories.csv, tracks.csv, summary.json) "
                "against a simulated truth folder (gt/gt.txt, truth_tracks.csv, truth.json): "
                "detection precision/recall/AP50, tracking HOTA/MOTA/IDF1/id switches, "
                "kinematics errors, motility accuracy and sample percentage errors. "
                "Predictions match truth by centroid distance (Hungarian, per frame).")
    p.add_argument("pred_dir", metavar="PRED_DIR")
    p.add_argument("truth_dir", metavar="TRUTH_DIR")
    p.add_argument("--match-radius-um", type=_float_arg("--match-radius-um"), default=4.0,
                   help="a prediction within this distance of a true head matches (default 4)")
    p.add_argument("--json", metavar="FILE", help="also write the full result as JSON")
    args = p.parse_args(argv)
    if not args.match_radius_um > 0:
        raise ConfigError("--match-radius-um must be > 0")
    from detect_track.eval import evaluate, format_report
    from detect_track.io.export import write_json

    result = evaluate(args.pred_dir, args.truth_dir, match_radius_um=args.match_radius_um)
    print(format_report(result))
    if args.json:
        write_json(result, args.json)
    return 0


TRAIN_DESCRIPTION = """\
Train a detector, or build a simulated training set.

  detect-track train dataset OUT_DIR [--n-videos N] [--seed S] [--tile-px 320]
      render a YOLO + COCO dataset of native-resolution tiles from the simulator
  detect-track train smears OUT_DIR [--n-images N] [--seed S] [--kind testicular|slide]
      render a YOLO + COCO dataset of synthetic stained smears (six testicular cell
      types) or semen slides (whole sperm + heads); 768x1024 images
  detect-track train yolo DATA --out RUN_DIR [--arch NAME|YAML] [--epochs N] ...
      DATA: a YOLO data.yaml (videos: classes 0 sperm, 1 cluster, 2 small_or_pinhead)
      or a COCO folder (annotations/{train,val}.json, images/; converted to YOLO first)
  detect-track train effdet DATA --out RUN_DIR [--arch NAME|YAML] [--epochs N] ...
      DATA: a YOLO data.yaml or a COCO folder (annotations/{train,val}.json, images/)

--arch picks the network: a yaml path or a shipped one in detect_track/models/
(yolo-sperm-p2, yolo-testis-p2, yolo-slide; effdet-sperm, effdet-testis). The classes
come from DATA. Images larger than --imgsz are cut into native-resolution tiles for
YOLO (never shrunk) unless --resize is given (whole cells on a slide).
Testicular smears, as the shipped models were trained:
  detect-track train yolo smears/data.yaml --arch yolo-testis-p2 --imgsz 512 --out runs/y
  detect-track train effdet smears --arch effdet-testis --imgsz 384 --out runs/e

The best weights are written to RUN_DIR and their path printed; use them with
  detect-track VIDEO --detector yolo detector.yolo.weights=RUN_DIR/.../best.pt --trust-model
  detect-track SMEAR.png --config testicular detector.effdet.weights=RUN_DIR/best.pt
A YOLO .pt is a pickle that can run code: one from outside weights/ loads only with
--trust-model, or export it once ('detect-track export onnx BEST.pt --trust-model') and
the .onnx beside it is used without (see SECURITY.md).
"""


def _arch_path(name: str) -> str:
    """A network yaml from a path or a shipped name (``detect_track/models/<name>.yaml``).

    Raises:
        ConfigError: If neither exists (the message lists the shipped ones).
    """
    import difflib

    models = Path(__file__).resolve().parent / "models"
    if Path(name).is_file():
        return name
    if (models / f"{name}.yaml").is_file():
        return str(models / f"{name}.yaml")
    shipped = sorted(p.stem for p in models.glob("*.yaml"))
    close = difflib.get_close_matches(name, shipped, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f" (shipped: {', '.join(shipped)})"
    raise ConfigError(f"no network yaml '{name}'{hint}")


def _refuse_dataset_scripts(data: Path) -> None:
    """Refuse a YOLO data.yaml with a ``download`` entry: ultralytics runs it (Python or bash).

    Raises:
        ConfigError: If the file holds one (or cannot be parsed safely).
    """
    from detect_track.config import MAX_YAML_BYTES, load_yaml

    if not data.is_file():
        return
    if data.stat().st_size > MAX_YAML_BYTES:
        raise ConfigError(f"{data} is larger than {MAX_YAML_BYTES // 1024} kB; not a data.yaml")
    try:
        text = data.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {data}: {exc}") from None
    spec = load_yaml(text, f"dataset file '{data}'")
    if isinstance(spec, dict) and spec.get("download"):
        raise ConfigError(f"{data} has a 'download' entry, which ultralytics would run as a "
                          "script; remove it (detect-track never downloads datasets)")


def cmd_train(argv: Sequence[str]) -> int:
    """``detect-track train dataset|yolo|effdet ...``: datasets and detector training."""
    p = _Parser(prog=f"{PROG} train", formatter_class=argparse.RawDescriptionHelpFormatter,
                description=TRAIN_DESCRIPTION)
    p.add_argument("what", choices=["dataset", "smears", "yolo", "effdet"], metavar="WHAT",
                   help="dataset | smears | yolo | effdet")
    p.add_argument("path", metavar="PATH",
                   help="OUT_DIR for dataset / smears, DATA for yolo / effdet")
    p.add_argument("--arch", metavar="NAME|YAML", help="network yaml (see above)")
    p.add_argument("--resize", action="store_true",
                   help="yolo: resize images to --imgsz instead of tiling them")
    p.add_argument("--init", metavar="WEIGHTS",
                   help="yolo / effdet: start from these weights (fine-tuning)")
    p.add_argument("--n-images", type=int, help="smears: training images (default 320; "
                   "validation and test get 1/8 and 1/6 of that)")
    p.add_argument("--kind", choices=["testicular", "slide"], default="testicular",
                   help="smears: testicular smears or semen slides")
    p.add_argument("--out", metavar="RUN_DIR", help="run folder for yolo / effdet")
    p.add_argument("--epochs", type=int, help="maximum epochs")
    p.add_argument("--patience", type=int, help="early stopping patience (epochs)")
    p.add_argument("--batch", type=int, help="images per batch")
    p.add_argument("--imgsz", type=int, help="training tile size in px (multiple of 32)")
    p.add_argument("--device", help="cpu (default) or a CUDA device, e.g. 0")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--fraction", type=_float_arg("--fraction"),
                   help="fraction of the training images (smoke runs)")
    p.add_argument("--n-videos", type=int, help="dataset: simulated clips (default 400)")
    p.add_argument("--tile-px", type=int, help="dataset: tile side in px (default 320)")
    p.add_argument("--preset", metavar="NAME",
                   help="dataset: draw the clips from a simulator preset fitted to real "
                   "footage (visem) instead of the widely varied random looks")
    p.add_argument("--preset-fraction", type=_float_arg("--preset-fraction"),
                   help="dataset: fraction of clips from --preset (default 1)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    _trust_option(p)
    args = p.parse_args(argv)
    _apply_trust(args)
    say = (lambda _m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    if args.what == "dataset":
        from detect_track.synth.dataset import DatasetSpec, build_detection_dataset

        spec_values = {k: v for k, v in (("n_videos", args.n_videos), ("seed", args.seed),
                                         ("tile_px", args.tile_px), ("preset", args.preset),
                                         ("preset_fraction", args.preset_fraction))
                       if v is not None}
        try:
            spec = DatasetSpec(**spec_values)
        except TypeError as exc:  # pragma: no cover - argparse guards the names
            raise ConfigError(str(exc)) from exc
        update, close = _progress_bar("rendering clips", args.quiet)
        try:
            path = build_detection_dataset(args.path, spec, progress=update)
        finally:
            close()
        print(path)
        return 0
    if args.what == "smears":
        from detect_track.synth.smears import build_still_dataset

        n = args.n_images if args.n_images is not None else 320
        if n < 1:
            raise ConfigError("--n-images must be >= 1")
        update, close = _progress_bar("rendering images", args.quiet)
        try:
            path = build_still_dataset(args.path, n, max(1, n // 8), max(1, n // 6),
                                       seed=args.seed or 0, preset=args.kind, progress=update)
        finally:
            close()
        print(path)
        return 0
    if not args.out:
        raise ConfigError(f"train {args.what}: give the run folder with --out RUN_DIR")
    values = {k: getattr(args, k) for k in ("epochs", "patience", "batch", "imgsz", "seed",
                                            "fraction", "device") if getattr(args, k) is not None}
    if args.what == "yolo":
        from detect_track.training.yolo import YoloTrainSettings, train_yolo

        _refuse_dataset_scripts(Path(args.path))

        if args.arch:
            values["model_yaml"] = _arch_path(args.arch)
        if args.init:
            from detect_track.trust import require_trusted

            if Path(args.init).is_file():
                require_trusted(args.init, "YOLO checkpoint")  # ultralytics unpickles it
            values["init_weights"] = args.init
        best = train_yolo(args.path, args.out,
                          YoloTrainSettings(**values, tile=not args.resize), log=say)
    else:
        from detect_track.training.effdet import EffdetTrainSettings, train_effdet

        if args.arch:
            values["arch_yaml"] = _arch_path(args.arch)
        if "device" in values and values["device"].isdigit():
            values["device"] = f"cuda:{values['device']}"
        if args.init:
            values["init_weights"] = args.init
        best = train_effdet(args.path, args.out, EffdetTrainSettings(**values), log=say)
    print(best)
    return 0

MORPHOLOGY_DESCRIPTION = """\
Sperm-head morphology classifiers: train on your crops, predict on new ones.

  detect-track morphology train DATA --task TASK --out MODEL.pt [--folds K] [--epochs N]
  detect-track morphology predict MODEL.pt INPUT [--out FILE.csv]
  detect-track morphology synth OUT_DIR [--n-per-class N] [--seed S]

TASK: head_shape (normal, tapered, pyriform, amorphous, small, not_assessable: the
classes are the sub-folder names of DATA) or head | acrosome | vacuole | tail (normal /
abnormal). DATA / INPUT: a folder with one sub-folder per class, a folder of images, or
MHSMA-style arrays (x_*.npy images with y_<task>_*.npy labels; the folder or one x file).
predict writes item,label,confidence (item = file name, or the 0-based index for .npy).
synth writes simulated head crops, one sub-folder per head shape.
"""


def cmd_morphology(argv: Sequence[str]) -> int:
    """``detect-track morphology train|predict|synth ...``."""
    p = _Parser(prog=f"{PROG} morphology", description=MORPHOLOGY_DESCRIPTION,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["train", "predict", "synth"], metavar="ACTION",
                   help="train | predict | synth")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="train: DATA; predict: MODEL INPUT; synth: OUT_DIR")
    p.add_argument("--task", help="train: head_shape | head | acrosome | vacuole | tail")
    p.add_argument("--out", metavar="FILE", help="train: model file; predict: CSV file")
    p.add_argument("--folds", type=int, default=0,
                   help="train: also report stratified K-fold accuracy (K models)")
    p.add_argument("--epochs", type=int, help="train: most epochs (default 80)")
    p.add_argument("--init", metavar="MODEL.pt",
                   help="train: fine-tune this model (e.g. weights/head-shape-synth.pt; "
                   "smaller learning rate, more patience)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda:0")
    p.add_argument("--n-per-class", type=int, default=500, help="synth: crops per class")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    args = p.parse_args(argv)
    say = (lambda _m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    want = {"train": 1, "predict": 2, "synth": 1}[args.action]
    if len(args.paths) != want:
        raise ConfigError(f"morphology {args.action} takes {want} path(s), got "
                          f"{len(args.paths)} (see 'detect-track morphology --help')")
    if args.action == "synth":
        from detect_track.synth.heads import write_head_folder

        update, close = _progress_bar("rendering heads", args.quiet)
        try:
            out = write_head_folder(args.paths[0], args.n_per_class, args.seed,
                                    progress=update)
        finally:
            close()
        print(out)
        return 0
    import numpy as np
    import pandas as pd

    from detect_track.morphology.classifier import TASKS
    from detect_track.morphology.data import load_image_set

    if args.action == "train":
        from detect_track.morphology.classifier import (
            MorphTrainSettings,
            cross_validate,
            save_checkpoint,
            train_classifier,
            transfer_settings,
        )

        if args.task not in TASKS:
            raise ConfigError(f"--task must be one of {', '.join(TASKS)}")
        if not args.out:
            raise ConfigError("morphology train: give the model file with --out MODEL.pt")
        data = load_image_set(args.paths[0], task=args.task, labelled=True)
        values: dict[str, Any] = {"seed": args.seed, "device": args.device}
        if args.epochs is not None:
            values["epochs"] = args.epochs
        if args.init and not Path(args.init).is_file():
            raise ConfigError(f"--init: {args.init} not found")
        settings = (transfer_settings(args.init, **values) if args.init
                    else MorphTrainSettings(**values))
        if data.labels is None:  # pragma: no cover - load_image_set guarantees labels
            raise ConfigError("no labels")
        say(f"{len(data)} crops, classes: " + ", ".join(
            f"{c} {n}" for c, n in zip(data.class_names, np.bincount(
                data.labels, minlength=len(data.class_names)), strict=True)))
        if args.folds:
            cv = cross_validate(data.images, data.labels, data.class_names, args.task,
                                args.folds, settings, log=say)
            print(f"{args.folds}-fold accuracy {cv['accuracy']:.3f} (folds: "
                  + ", ".join(f"{a:.3f}" for a in cv["fold_accuracy"]) + ")")
        ckpt = train_classifier(data.images, data.labels, data.class_names, args.task,
                                settings, log=say)
        print(save_checkpoint(ckpt, args.out))
        return 0
    from detect_track.morphology.classifier import MorphologyClassifier

    model = MorphologyClassifier(args.paths[0], args.device)
    data = load_image_set(args.paths[1], task=None, labelled=False)
    labels, conf = model.predict(data.images)
    table = pd.DataFrame({"item": data.items, "label": labels, "confidence": conf})
    if args.out:
        from detect_track.io.export import write_csv

        write_csv(table, args.out)
        say(f"{len(table)} predictions -> {args.out}")
    else:
        from detect_track.io.export import escape_formulas

        escape_formulas(table).to_csv(sys.stdout, index=False, float_format="%.4f")
    return 0


def cmd_export(argv: Sequence[str]) -> int:
    """``detect-track export onnx MODEL.pt``: ONNX export for the fast CPU path."""
    p = _Parser(prog=f"{PROG} export",
                description="Export a YOLO detector or a morphology classifier to ONNX, the "
                "format the fast CPU path runs (detector.backend=onnx; it needs onnxruntime "
                "only, not torch). The shipped models come exported.",
                epilog="example: detect-track export onnx runs/yolo/weights/best.pt "
                "--trust-model\n(your own checkpoint: a YOLO .pt from outside weights/ is "
                "a pickle that can run code)\n"
                "then: detect-track VIDEO detector.yolo.weights=runs/yolo/weights/best.pt")
    p.add_argument("format", choices=["onnx"], metavar="FORMAT", help="onnx")
    p.add_argument("weights", metavar="MODEL.pt", help="the checkpoint to export")
    p.add_argument("--out", metavar="FILE.onnx", help="default: MODEL.onnx beside MODEL.pt")
    _trust_option(p)
    args = p.parse_args(argv)
    _apply_trust(args)
    from detect_track.training.export import export_onnx

    print(export_onnx(args.weights, args.out))
    return 0


def cmd_annotate(argv: Sequence[str]) -> int:
    """``detect-track annotate VIDEO --out DIR``: frames + detections to correct, then train."""
    p = _Parser(prog=f"{PROG} annotate", formatter_class=argparse.RawDescriptionHelpFormatter,
                description="Export frames of a video with the current detections as "
                "pre-annotations (YOLO txt and COCO json, which CVAT and Label Studio import). "
                "Correct them, then fine-tune the detector on your own set-up.",
                epilog="example:\n  detect-track annotate video.avi --um-per-px 0.5 --out "
                "labels/\n  (correct labels/ in CVAT or Label Studio)\n  detect-track train "
                "yolo labels/data.yaml --init weights/yolo-sperm.pt --out runs/mine\n"
                "  detect-track video.avi detector.yolo.weights=runs/mine/train/weights/best.pt "
                "--trust-model")
    p.add_argument("video", metavar="VIDEO", help="video file, folder of frames or TIFF stack")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides, e.g. detector.name=classical")
    p.add_argument("-o", "--out", metavar="DIR", required=True, help="output folder")
    p.add_argument("--um-per-px", type=_float_arg("--um-per-px"), metavar="X",
                   help="micrometres per pixel (default: from config)")
    p.add_argument("--every", type=int, default=25, metavar="N",
                   help="export every N-th frame (default 25)")
    p.add_argument("--max-frames", type=int, default=40, metavar="N",
                   help="export at most N frames (default 40)")
    p.add_argument("--min-confidence", type=float, default=0.5, metavar="C",
                   help="keep boxes of at least this calibrated confidence (default 0.5, the "
                   "operating point)")
    p.add_argument("-c", "--config", metavar="PRESET|FILE", help="preset or YAML file")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    if not argv:
        p.error("no VIDEO given")
    args = p.parse_intermixed_args(_dash_names(argv))
    from detect_track.training.preannotate import PreannotateSettings, preannotate

    settings = PreannotateSettings(every_n_frames=args.every, max_frames=args.max_frames,
                                   min_confidence=args.min_confidence)
    cfg = _load_cfg(args.config, args.overrides)
    update, close = _progress_bar(Path(args.video).name, args.quiet)
    try:
        data = preannotate(args.video, args.out, cfg, settings, um_per_px=args.um_per_px,
                           progress=update)
    finally:
        close()
    print(data)
    return 0


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "annotate": cmd_annotate,
    "export": cmd_export,
    "track": cmd_track,
    "synth": cmd_synth,
    "eval": cmd_eval,
    "train": cmd_train,
    "morphology": cmd_morphology,
}


def _one_line(message: str, limit: int = 2000) -> str:
    """A message on one line (a library's multi-line text folded), at most ``limit`` chars."""
    text = " ".join(message.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, Slurm, ``docker stop``), raised where the program is.

    So the same clean-up as for Ctrl-C runs: temporary files removed, locks released.
    """


#: Exit status after SIGTERM (128 + 15, as a shell reports a process it terminated).
EXIT_TERMINATED = 143


def _on_sigterm(signum: int, frame: Any) -> None:
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends us at once
    raise Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while a command runs (main thread only)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``detect-track`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    command = COMMANDS.get(argv[0]) if argv else None
    from detect_track.trust import TRUST_ENV

    trust = os.environ.get(TRUST_ENV)  # --trust-model holds for this command only
    try:
        with _sigterm_as_interrupt():
            if command is not None:
                return command(argv[1:])
            return cmd_run(argv)
    except DetectTrackError as exc:
        print(f"{PROG}: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # output piped into `head` & co.: not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Terminated:
        print(f"{PROG}: terminated (SIGTERM; finished outputs are complete, nothing "
              "half-written)", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted (finished outputs are complete; nothing half-written)",
              file=sys.stderr)
        return 130
    except MemoryError:
        print(f"{PROG}: error: out of memory", file=sys.stderr)
        return EXIT_INTERNAL_ERROR
    except OSError as exc:  # a file the system refuses: name too long, permission, disk full
        if debug:
            raise
        name = str(exc.filename) if exc.filename is not None else ""
        name = name if len(name) <= 120 else name[:117] + "..."
        print(f"{PROG}: error: {_one_line(exc.strerror or str(exc))}"
              + (f": {name}" if name else ""), file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as exc:  # last resort: never show a traceback to a lab user
        if debug:
            raise
        print(f"{PROG}: internal error: {type(exc).__name__}: {_one_line(str(exc))} "
              "(re-run with --debug for details, and please report it)", file=sys.stderr)
        return EXIT_INTERNAL_ERROR
    finally:
        if trust is None:
            os.environ.pop(TRUST_ENV, None)
        else:
            os.environ[TRUST_ENV] = trust


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
