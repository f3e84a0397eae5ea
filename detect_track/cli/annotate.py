"""``detect-track annotate VIDEO --out DIR``: frames + detections to correct, then train."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from detect_track.cli.shared import dash_names, float_arg, load_cfg, parser, progress_bar

EPILOG = """\
example:
  detect-track annotate video.avi --um-per-px 0.5 --out labels/
  (correct labels/ in CVAT or Label Studio)
  detect-track train yolo labels/data.yaml --init weights/yolo-sperm.pt --out runs/mine
  detect-track video.avi detector.yolo.weights=runs/mine/train/weights/best.pt --trust-model"""


def main(argv: Sequence[str]) -> int:
    """``detect-track annotate VIDEO --out DIR``: export frames with pre-annotations.

    Args:
        argv: The command line after ``annotate``.

    Returns:
        The exit status (0); the dataset's data.yaml path is printed.
    """
    p = parser("annotate",
               "Export frames of a video with the current detections as pre-annotations "
               "(YOLO txt and COCO json, which CVAT and Label Studio import). Correct them, "
               "then fine-tune the detector on your own set-up.", EPILOG)
    p.add_argument("video", metavar="VIDEO", help="video file, folder of frames or TIFF stack")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides, e.g. detector.name=classical")
    p.add_argument("-o", "--out", metavar="DIR", required=True, help="output folder")
    p.add_argument("--um-per-px", type=float_arg("--um-per-px"), metavar="X",
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
    args = p.parse_intermixed_args(dash_names(argv))
    from detect_track.training.preannotate import PreannotateSettings, preannotate

    settings = PreannotateSettings(every_n_frames=args.every, max_frames=args.max_frames,
                                   min_confidence=args.min_confidence)
    cfg = load_cfg(args.config, args.overrides)
    update, close = progress_bar(Path(args.video).name, args.quiet)
    try:
        data = preannotate(args.video, args.out, cfg, settings, um_per_px=args.um_per_px,
                           progress=update)
    finally:
        close()
    print(data)
    return 0
