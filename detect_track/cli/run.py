"""``detect-track VIDEO ...``: one video, a batch of inputs, or still images.

The input decides: still-image presets (``--config sperm-slide``) go to
:mod:`detect_track.stills`, a folder of videos, a glob or a list file to
:mod:`detect_track.batch`, anything else to :func:`detect_track.pipeline.run_video`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from detect_track import __version__
from detect_track.cli.commands import commands_help
from detect_track.cli.shared import (
    DETECTOR_NAMES,
    EXIT_SOME_FAILED,
    PROG,
    TRACKER_NAMES,
    add_output_options,
    add_trust_option,
    apply_trust,
    dash_names,
    float_arg,
    load_cfg,
    output_folder,
    parser,
    preset_names,
    progress_bar,
    run_folder,
)
from detect_track.errors import ConfigError, InputError

DESCRIPTION = """\
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
                    (H.264, played in report.html; legend in a strip above the frame)

Still images (stained slides): --config sperm-slide with an image or a folder of
images (PNG, JPEG, TIFF; 8/16-bit) writes detections.csv (boxes in px and, with
--um-per-px, µm; class, confidence, head-shape call), counts.csv (per image and
class), annotated/*.png (short labels, legend, scale bar), report.html and
annotations/ (coco.json, yolo/: the boxes to correct in CVAT or Label Studio).

Batch: give a folder (searched recursively for videos, TIFF stacks and folders of
frames), a quoted glob ('data/**/*.avi') or a list file (.txt, one path per line).
Each input gets OUT/<relative path>/; OUT/ gets all_tracks.csv, all_summaries.csv
(and .parquet copies), batch_log.csv (status, error, time per file) and report.html.
Rerunning the same command skips inputs already done with the same content and
settings; a killed run loses nothing that finished. Exit status: 0 all done, 3 some
inputs failed (see batch_log.csv), 2 bad command line.
"""

EXAMPLES = """
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


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``detect-track VIDEO``; its help is the main ``detect-track --help``."""
    p = parser("", DESCRIPTION, commands_help() + EXAMPLES)
    p.add_argument("video", metavar="VIDEO",
                   help="video file (AVI, MP4, ...), folder of frames, multi-page TIFF; or "
                   "for a batch: a folder of videos, a quoted glob, or a list file")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides, e.g. tracker.max_gap_s=0.3")
    p.add_argument("-o", "--out", metavar="DIR",
                   help="output folder (default: results/<video name>)")
    p.add_argument("--um-per-px", type=float_arg("--um-per-px"), metavar="X",
                   help="micrometres per pixel (default: from the config, else 0.7, flagged)")
    p.add_argument("--fps", type=float_arg("--fps"), metavar="F",
                   help="frames per second (default: read from the video)")
    p.add_argument("--detector", metavar="NAME",
                   help=f"detector: {', '.join(DETECTOR_NAMES)} (default: from config)")
    p.add_argument("--tracker", metavar="NAME",
                   help=f"tracker: {', '.join(TRACKER_NAMES)} (default: from config)")
    p.add_argument("--backend", choices=["auto", "torch", "onnx"],
                   help="inference of the learned models: onnx (fast, no torch needed), torch; "
                   "auto (default) = onnx when onnxruntime and the .onnx model are there")
    p.add_argument("-c", "--config", metavar="PRESET|FILE",
                   help=f"preset ({', '.join(preset_names())}) or YAML file")
    add_trust_option(p)
    _add_video_options(p)
    add_output_options(p)
    p.add_argument("-V", "--version", action="version", version=f"{PROG} {__version__}")
    return p


def _add_video_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-morphology", action="store_true",
                   help="skip the head-morphology call (morphology columns stay empty)")
    p.add_argument("--save-crops", action="store_true",
                   help="write each track's head crops to OUT/crops/ (PNG)")
    p.add_argument("--overlay", action="store_true",
                   help="write overlay.mp4: boxes, ids, trails coloured by motility class")
    p.add_argument("--no-report", action="store_true", help="do not write report.html")
    p.add_argument("--chamber-depth-um", type=float_arg("--chamber-depth-um"), metavar="D",
                   help="counting-chamber depth in µm (e.g. 20): adds the concentration")
    c = p.add_argument_group("sample facts (one video; several fields: detect-track sample)")
    c.add_argument("--sample-id", metavar="ID", help="the sample's identifier (on the report)")
    c.add_argument("--operator", metavar="NAME", help="who runs the analysis (on the report)")
    c.add_argument("--volume-ml", type=float_arg("--volume-ml"), metavar="V",
                   help="semen volume in ml: total count and motile counts (with "
                   "--chamber-depth-um)")
    c.add_argument("--dilution", type=float_arg("--dilution"), metavar="F",
                   help="dilution factor of the imaged specimen (default 1, neat)")
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


def main(argv: Sequence[str]) -> int:
    """``detect-track VIDEO ...``: run the pipeline on a video, a batch or still images.

    Args:
        argv: The command line without the program name.

    Returns:
        The exit status: 0, or 3 when some inputs of a batch or images failed.
    """
    p = build_parser()
    if not argv:
        p.error("no VIDEO given")
    args = p.parse_intermixed_args(dash_names(argv))
    apply_trust(args)
    from detect_track.batch import is_batch_input
    from detect_track.io.meta import check_um_per_px

    if args.um_per_px is not None:
        check_um_per_px(args.um_per_px)

    cfg = load_cfg(args.config, args.overrides,
                   **{"detector.name": args.detector, "tracker.name": args.tracker,
                      "detector.backend": args.backend,
                      "morphology.enabled": False if args.no_morphology else None,
                      "video.chamber_depth_um": args.chamber_depth_um})
    for name in ("volume_ml", "dilution"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be above 0, got {value:g}")
    if cfg.still.enabled:
        return run_stills(args, cfg)
    if args.batch or is_batch_input(args.video):
        for name in ("sample_id", "operator", "volume_ml", "dilution"):
            if getattr(args, name) is not None:
                raise ConfigError(f"--{name.replace('_', '-')} is for one video; the fields "
                                  "of one sample: detect-track sample FIELD ... --sample-id ID")
        return run_batch(args, cfg)
    return run_one_video(args, cfg)


def run_one_video(args: argparse.Namespace, cfg: Any) -> int:
    """One video: its tables, report and overlay in the output folder."""
    from detect_track.batch import write_outputs
    from detect_track.pipeline import run_video

    for name in ("workers", "executor", "dask_address", "force"):
        if getattr(args, name) not in (None, False, 1, "local"):
            raise ConfigError(f"--{name.replace('_', '-')} is for batches (a folder of "
                              "videos, a glob or a list file; or add --batch)")
    video = Path(args.video)
    if not video.exists():  # before any output folder is made
        raise InputError(f"no such file or folder: {video}")
    out = output_folder(args.out, video.stem or "video")
    with run_folder(out):
        update, close = progress_bar(video.name, args.quiet)
        try:
            results = run_video(video, cfg, fps=args.fps, um_per_px=args.um_per_px,
                                progress=update, trajectories_csv=out / "trajectories.csv")
        finally:
            close()
        if any(v is not None for v in (args.sample_id, args.operator, args.volume_ml,
                                       args.dilution)):
            from detect_track.results import with_clinical

            results.summary = with_clinical(results.summary, results.tracks,
                                            sample_id=args.sample_id, operator=args.operator,
                                            volume_ml=args.volume_ml, dilution=args.dilution)
        update, close = progress_bar("overlay", args.quiet or not args.overlay)
        try:
            paths = write_outputs(video, results, out, job_spec(args, cfg),
                                  overlay_progress=update)
        finally:
            close()
    if not args.quiet:
        print_outcome(results, out, paths)
    return 0


def run_stills(args: argparse.Namespace, cfg: Any) -> int:
    """Still images (``--config sperm-slide``): detections.csv, counts.csv, annotated PNGs."""
    from detect_track.io.export import ensure_output_dir
    from detect_track.report.annotated import draw_annotated
    from detect_track.stills import list_images, run_images, write_still_results

    images = list_images(args.video)
    name = Path(str(args.video).rstrip("/")).stem or "images"
    out = output_folder(args.out, name)
    with run_folder(out):
        annotated = ensure_output_dir(out / "annotated") if cfg.still.annotate else None
        update, close = progress_bar("images", args.quiet)
        try:
            results = run_images(images, cfg, args.um_per_px, progress=update,
                                 annotated_dir=annotated, annotator=draw_annotated)
        finally:
            close()
        paths = write_still_results(results, out)
        if not args.no_report:
            from detect_track.report.still_report import write_still_report

            paths["report"] = write_still_report(
                results, out / "report.html", source=str(args.video), config=cfg,
                annotated="annotated" if annotated is not None else None)
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


def job_spec(args: argparse.Namespace, cfg: Any) -> Any:
    """The outputs and settings the command line asks for, as a batch job spec."""
    from detect_track.batch import JobSpec

    return JobSpec(cfg, fps=args.fps, um_per_px=args.um_per_px, exports=tuple(args.export),
                   save_crops=args.save_crops, report=not args.no_report,
                   overlay=args.overlay, trust_models=args.trust_model,
                   csv_dialect=args.csv_dialect)


def run_batch(args: argparse.Namespace, cfg: Any) -> int:
    """A batch: every input found, resumable; exit 3 when some input failed."""
    from tqdm import tqdm

    from detect_track.batch import discover
    from detect_track.batch import run_batch as run_all
    from detect_track.io.export import ensure_output_dir
    from detect_track.io.meta import check_fps

    if args.fps is not None:  # checked once here, not once per input
        check_fps(args.fps, "--fps", cfg.video.max_fps)
    name = Path(str(args.video).split("*")[0].rstrip("/")).stem or "batch"
    out = output_folder(args.out, name)
    items = discover(args.video, exclude=out)  # no input: no output folder either
    created = not out.exists()
    out = ensure_output_dir(out)
    spec = job_spec(args, cfg)
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
        outcome = run_all(items, out, spec, workers=args.workers, executor=args.executor,
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


def motility_line(summary: Any) -> str:
    """The sample's motility in one line, saying on how many tracks the percentages rest.

    Percentages are of the gradable tracks only (a cell seen too briefly is not graded),
    so a short clip with one gradable track says so instead of a bare "100% progressive".

    Args:
        summary: The run's summary (``n_tracks``, ``n_gradable``, ``pct_<class>``).

    Returns:
        E.g. ``12 tracks: 62.5% progressive, 25.0% non-progressive, 12.5% immotile
        (percentages of 8 gradable tracks; 4 seen too briefly to grade)``.
    """
    n_tracks, n_gradable = int(summary["n_tracks"]), int(summary["n_gradable"])
    head = f"{n_tracks} track{'' if n_tracks == 1 else 's'}"
    if n_gradable == 0:
        return head + (": none seen long enough to grade motility" if n_tracks else "")
    graded = f"{n_gradable} gradable track{'' if n_gradable == 1 else 's'}"
    base = (f"(percentages of {graded})" if n_gradable == n_tracks else
            f"(percentages of {graded}; {n_tracks - n_gradable} seen too briefly to grade)")
    return (f"{head}: {summary['pct_progressive']:.1f}% progressive, "
            f"{summary['pct_non_progressive']:.1f}% non-progressive, "
            f"{summary['pct_immotile']:.1f}% immotile {base}")


def print_outcome(results: Any, out: Path, paths: dict[str, Path]) -> None:
    """The console summary of a video (or ``track``) run: warnings, motility, files.

    Args:
        results: The run's :class:`detect_track.pipeline.Results`.
        out: The output folder.
        paths: The files written, by kind.
    """
    s = results.summary
    for w in results.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"{s['video']}: {s['n_frames']} frames at {s['fps']:g} fps, "
          f"{s['um_per_px']:g} µm/px -> {motility_line(s)}"
          + (f"; {s['pct_normal_forms']:.0f}% normal forms of {s['n_morphology_assessed']} "
             "assessed" if s.get("pct_normal_forms") is not None else ""))
    print(f"results in {out}/: " + ", ".join(p.name for p in paths.values()))
