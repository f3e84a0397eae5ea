"""``detect-track eval PRED_DIR TRUTH_DIR``: score a results folder against ground truth."""

from __future__ import annotations

from collections.abc import Sequence

from detect_track.cli.shared import float_arg, parser
from detect_track.errors import ConfigError


def main(argv: Sequence[str]) -> int:
    """``detect-track eval PRED_DIR TRUTH_DIR``: score results against ground truth.

    Args:
        argv: The command line after ``eval``.

    Returns:
        The exit status (0).
    """
    p = parser("eval",
               "Score a results folder (trajectories.csv, tracks.csv, summary.json) against a "
               "simulated truth folder (gt/gt.txt, truth_tracks.csv, truth.json): detection "
               "precision/recall/AP50, tracking HOTA/MOTA/IDF1/id switches, kinematics "
               "errors, motility accuracy and sample percentage errors. Predictions match "
               "truth by centroid distance (Hungarian, per frame).", raw=False)
    p.add_argument("pred_dir", metavar="PRED_DIR")
    p.add_argument("truth_dir", metavar="TRUTH_DIR")
    p.add_argument("--match-radius-um", type=float_arg("--match-radius-um"), default=4.0,
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
