"""``detect-track track DETECTIONS.csv``: link detections from other software, then measure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from detect_track.cli.run import print_outcome
from detect_track.cli.shared import (
    TRACKER_NAMES,
    add_output_options,
    dash_names,
    float_arg,
    load_cfg,
    output_folder,
    parser,
    progress_bar,
    run_folder,
)
from detect_track.errors import ConfigError

DESCRIPTION = """\
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


def main(argv: Sequence[str]) -> int:
    """``detect-track track DETECTIONS.csv``: link external detections into tracks.

    Args:
        argv: The command line after ``track``.

    Returns:
        The exit status (0).
    """
    p = parser("track", DESCRIPTION)
    p.add_argument("detections", metavar="DETECTIONS.csv", help="per-frame detections (CSV)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides, e.g. tracker.max_gap_s=0.3")
    p.add_argument("--fps", type=float_arg("--fps"), required=True, metavar="F",
                   help="frames per second of the video the detections come from")
    p.add_argument("--um-per-px", type=float_arg("--um-per-px"), required=True, metavar="X",
                   help="micrometres per pixel")
    p.add_argument("-o", "--out", metavar="DIR",
                   help="output folder (default: results/<file name>)")
    p.add_argument("--tracker", metavar="NAME",
                   help=f"tracker: {', '.join(TRACKER_NAMES)} (default: from config)")
    p.add_argument("--n-frames", type=int, metavar="N",
                   help="frames in the video (default: last frame in the file + 1)")
    p.add_argument("-c", "--config", metavar="PRESET|FILE", help="preset or YAML file")
    add_output_options(p)
    if not argv:
        p.error("no DETECTIONS.csv given")
    args = p.parse_intermixed_args(dash_names(argv))
    from detect_track.io.detections import MAX_FRAMES, read_detections
    from detect_track.io.meta import check_um_per_px
    from detect_track.io.video import printable_name
    from detect_track.pipeline import track_detections
    from detect_track.results import write_results

    check_um_per_px(args.um_per_px)
    if args.n_frames is not None and not 0 <= args.n_frames <= MAX_FRAMES:
        raise ConfigError(f"--n-frames must be in [0, {MAX_FRAMES}], got {args.n_frames}")
    cfg = load_cfg(args.config, args.overrides, **{"tracker.name": args.tracker})
    path = Path(args.detections)
    table = read_detections(path)
    out = output_folder(args.out, path.stem or "detections")
    with run_folder(out):
        update, close = progress_bar(path.name, args.quiet)
        try:
            results = track_detections(table, cfg, fps=args.fps, um_per_px=args.um_per_px,
                                       name=printable_name(path.name), path=path,
                                       n_frames=args.n_frames, progress=update,
                                       trajectories_csv=out / "trajectories.csv")
        finally:
            close()
        paths = write_results(results, out, exports=args.export,
                              csv_dialect=args.csv_dialect)
    if not args.quiet:
        print_outcome(results, out, paths)
    return 0
