"""``detect-track sample FIELD ... --sample-id ID``: several fields of one sample, pooled."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from detect_track.cli.shared import (
    DETECTOR_NAMES,
    EXIT_SOME_FAILED,
    add_trust_option,
    apply_trust,
    dash_names,
    float_arg,
    load_cfg,
    output_folder,
    parser,
    preset_names,
    run_folder,
)
from detect_track.errors import ConfigError

DESCRIPTION = """\
Analyse one semen sample from several fields (WHO: at least 200 assessed cells, over
several fields). Each FIELD (a video, TIFF stack or folder of frames; or a folder holding
such fields) is detected, tracked and measured as by 'detect-track VIDEO'; then the
fields are pooled: counts add, and every percentage is of the pooled assessed cells, with
its 95 % Wilson score confidence interval, beside the WHO 6th-edition (2021) lower
reference limits.

Writes into the output folder:
  summary.json      the pooled sample: counts, percentages, clinical block (CIs, reference
                    limits and flags, mean ± SD of the kinematics per motility class,
                    concentration and total counts), sample ID, operator, date, each field
  tracks.csv        every field's tracks, with a 'field' column
  report.html       the pooled report: clinical summary on one printable A4 page, fields
  fields/NAME/      each field's own trajectories.csv, tracks.csv, summary.json, report
                    (fields/ also holds the batch log and report of the fields)

Concentration needs --chamber-depth-um; total count, total motile and progressive motile
count (10^6 per ejaculate) also need --volume-ml. --dilution multiplies the measured
concentration (a specimen diluted 1+1 is --dilution 2). Rerunning the same command
skips fields already done with the same content and settings.
"""

EXAMPLES = """
examples:
  detect-track sample field1.avi field2.avi field3.avi --sample-id S-2024-017 \\
      --operator AB --um-per-px 0.7 --chamber-depth-um 20 --volume-ml 3.2
  detect-track sample fields/ --sample-id S-2024-017 --out results/S-2024-017
"""


def build_parser() -> Any:
    """The parser of ``detect-track sample``."""
    p = parser("sample", DESCRIPTION, EXAMPLES)
    p.add_argument("fields", nargs="+", metavar="FIELD",
                   help="a field (video, TIFF stack, folder of frames) or a folder of fields")
    p.add_argument("--sample-id", required=True, metavar="ID",
                   help="the sample's identifier (shown on the report)")
    p.add_argument("--operator", metavar="NAME", help="who runs the analysis (on the report)")
    p.add_argument("-o", "--out", metavar="DIR", help="output folder (default: results/<ID>)")
    p.add_argument("--um-per-px", type=float_arg("--um-per-px"), metavar="X",
                   help="micrometres per pixel (default: from the config, else 0.7, flagged)")
    p.add_argument("--fps", type=float_arg("--fps"), metavar="F",
                   help="frames per second (default: read from each video)")
    p.add_argument("--chamber-depth-um", type=float_arg("--chamber-depth-um"), metavar="D",
                   help="counting-chamber depth in µm (e.g. 20): gives the concentration")
    p.add_argument("--volume-ml", type=float_arg("--volume-ml"), metavar="V",
                   help="semen volume in ml: gives total count, total motile and "
                   "progressive motile count")
    p.add_argument("--dilution", type=float_arg("--dilution"), metavar="F",
                   help="dilution factor of the imaged specimen (default 1, neat)")
    p.add_argument("-c", "--config", metavar="PRESET|FILE",
                   help=f"preset ({', '.join(preset_names())}) or YAML file")
    p.add_argument("--detector", metavar="NAME",
                   help=f"detector: {', '.join(DETECTOR_NAMES)} (default: from config)")
    p.add_argument("--no-morphology", action="store_true",
                   help="skip the head-morphology call")
    p.add_argument("--overlay", action="store_true", help="write each field's overlay.mp4")
    p.add_argument("--no-report", action="store_true", help="write no report.html")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="fields processed in parallel")
    p.add_argument("--force", action="store_true",
                   help="reprocess fields whose outputs are already complete")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", default=[],
                   help="config overrides, e.g. tracker.max_gap_s=0.3")
    add_trust_option(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or summary")
    p.add_argument("--debug", action="store_true", help="show a traceback on internal errors")
    return p


def _positive(name: str, value: float | None) -> None:
    if value is not None and not value > 0:
        raise ConfigError(f"{name} must be above 0, got {value:g}")


def main(argv: Sequence[str]) -> int:
    """``detect-track sample FIELD ...``: run every field, pool them into one sample.

    Args:
        argv: The command line after ``sample``.

    Returns:
        The exit status: 0, or 3 when some field failed (the others are pooled).
    """
    p = build_parser()
    if not argv:
        p.error("no FIELD given")
    args = p.parse_intermixed_args(dash_names(argv))
    # KEY=VALUE among the fields: intermixed parsing gives them all to "fields"
    overrides = list(args.overrides) + [f for f in args.fields
                                        if "=" in f and not Path(f).exists()]
    fields = [f for f in args.fields if f not in overrides]
    apply_trust(args)
    for name in ("volume_ml", "dilution", "chamber_depth_um"):
        _positive(f"--{name.replace('_', '-')}", getattr(args, name))
    if args.um_per_px is not None:
        from detect_track.io.meta import check_um_per_px

        check_um_per_px(args.um_per_px)
    from detect_track.batch import JobSpec
    from detect_track.batch.sample import run_sample
    from detect_track.cli.run import motility_line

    cfg = load_cfg(args.config, overrides,
                   **{"detector.name": args.detector,
                      "morphology.enabled": False if args.no_morphology else None,
                      "video.chamber_depth_um": args.chamber_depth_um})
    spec = JobSpec(cfg, fps=args.fps, um_per_px=args.um_per_px, report=not args.no_report,
                   overlay=args.overlay, trust_models=args.trust_model,
                   sample_id=args.sample_id, operator=args.operator)
    out = output_folder(args.out, args.sample_id)
    with run_folder(out):
        outcome = run_sample(fields, out, spec, sample_id=args.sample_id,
                             operator=args.operator, volume_ml=args.volume_ml,
                             dilution=args.dilution, workers=args.workers, force=args.force)
    for rec in outcome.records:
        if rec["status"] == "failed":
            print(f"failed: {rec['file']}: {rec['error']}", file=sys.stderr)
    s = outcome.summary
    if s is None:
        print(f"every field failed; nothing pooled (see {out}/fields/)", file=sys.stderr)
        return EXIT_SOME_FAILED
    if s.clinical is not None and not s.clinical.enough_cells:
        print(f"warning: only {s.clinical.n_assessed} cells assessed; WHO asks for at least "
              f"{s.clinical.min_assessed} (add fields)", file=sys.stderr)
    if not args.quiet:
        n_ok = len(outcome.records) - outcome.n_failed
        print(f"sample {s.video}: {n_ok} field(s) pooled -> {motility_line(s)}")
        print(f"results in {out}/: " + ", ".join(p.name for p in outcome.paths.values()))
    return EXIT_SOME_FAILED if outcome.n_failed else 0
