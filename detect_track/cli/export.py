"""``detect-track export onnx MODEL.pt``: ONNX export for the fast CPU path."""

from __future__ import annotations

from collections.abc import Sequence

from detect_track.cli.shared import add_trust_option, apply_trust, parser


def main(argv: Sequence[str]) -> int:
    """``detect-track export onnx MODEL.pt``: write the model as ONNX.

    Args:
        argv: The command line after ``export``.

    Returns:
        The exit status (0); the .onnx file's path is printed.
    """
    p = parser("export",
               "Export a YOLO detector or a morphology classifier to ONNX, the format the fast "
               "CPU path runs (detector.backend=onnx; it needs onnxruntime only, not torch). "
               "The shipped models come exported.",
               "example: detect-track export onnx runs/yolo/weights/best.pt --trust-model\n"
               "(your own checkpoint: a YOLO .pt from outside weights/ is a pickle that can "
               "run code)\nthen: detect-track VIDEO detector.yolo.weights="
               "runs/yolo/weights/best.pt", raw=False)
    p.add_argument("format", choices=["onnx"], metavar="FORMAT", help="onnx")
    p.add_argument("weights", metavar="MODEL.pt", help="the checkpoint to export")
    p.add_argument("--out", metavar="FILE.onnx", help="default: MODEL.onnx beside MODEL.pt")
    add_trust_option(p)
    args = p.parse_args(argv)
    apply_trust(args)
    from detect_track.training.export import export_onnx

    print(export_onnx(args.weights, args.out))
    return 0
