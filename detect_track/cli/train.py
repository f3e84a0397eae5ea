"""``detect-track train dataset|smears|yolo|effdet``: training sets and detector training.

Each action is one entry of :data:`ACTIONS`: its sub-parser's options and the function
that runs it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from detect_track.cli.shared import (
    Action,
    action_parser,
    add_trust_option,
    apply_trust,
    float_arg,
    logger,
    progress_bar,
)
from detect_track.errors import ConfigError

DESCRIPTION = """\
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
Options of one action: 'detect-track train ACTION --help'.
"""

#: The shipped network yamls (``--arch NAME``).
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
#: Options handed to the trainers' settings as they are, when given.
TRAINER_SETTINGS = ("epochs", "patience", "batch", "imgsz", "seed", "fraction", "device")


def arch_path(name: str) -> str:
    """A network yaml from a path or a shipped name (``detect_track/models/<name>.yaml``).

    Args:
        name: ``--arch``: a file, or the stem of a shipped yaml.

    Returns:
        The yaml's path.

    Raises:
        ConfigError: If neither exists (the message lists the shipped ones).
    """
    import difflib

    if Path(name).is_file():
        return name
    if (MODELS_DIR / f"{name}.yaml").is_file():
        return str(MODELS_DIR / f"{name}.yaml")
    shipped = sorted(p.stem for p in MODELS_DIR.glob("*.yaml"))
    close = difflib.get_close_matches(name, shipped, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f" (shipped: {', '.join(shipped)})"
    raise ConfigError(f"no network yaml '{name}'{hint}")


def refuse_dataset_scripts(data: Path) -> None:
    """Refuse a YOLO data.yaml with a ``download`` entry: ultralytics runs it (Python or bash).

    Args:
        data: The data.yaml (anything else, e.g. a COCO folder, is let through).

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


def _dataset_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", metavar="OUT_DIR", help="folder to write the dataset into")
    p.add_argument("--n-videos", type=int, help="simulated clips (default 400)")
    p.add_argument("--tile-px", type=int, help="tile side in px (default 320)")
    p.add_argument("--preset", metavar="NAME",
                   help="draw the clips from a simulator preset fitted to real footage (visem) "
                   "instead of the widely varied random looks")
    p.add_argument("--preset-fraction", type=float_arg("--preset-fraction"),
                   help="fraction of clips from --preset (default 1)")
    p.add_argument("--seed", type=int, help="random seed")


def _smears_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", metavar="OUT_DIR", help="folder to write the dataset into")
    p.add_argument("--n-images", type=int, help="training images (default 320; "
                   "validation and test get 1/8 and 1/6 of that)")
    p.add_argument("--kind", choices=["testicular", "slide"], default="testicular",
                   help="testicular smears or semen slides")
    p.add_argument("--seed", type=int, help="random seed")


def _trainer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", metavar="DATA", help="a YOLO data.yaml or a COCO folder")
    p.add_argument("--out", metavar="RUN_DIR", help="run folder (required)")
    p.add_argument("--arch", metavar="NAME|YAML", help="network yaml (see 'train --help')")
    p.add_argument("--init", metavar="WEIGHTS", help="start from these weights (fine-tuning)")
    p.add_argument("--epochs", type=int, help="maximum epochs")
    p.add_argument("--patience", type=int, help="early stopping patience (epochs)")
    p.add_argument("--batch", type=int, help="images per batch")
    p.add_argument("--imgsz", type=int, help="training tile size in px (multiple of 32)")
    p.add_argument("--device", help="cpu (default) or a CUDA device, e.g. 0")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--fraction", type=float_arg("--fraction"),
                   help="fraction of the training images (smoke runs)")
    add_trust_option(p)


def _yolo_options(p: argparse.ArgumentParser) -> None:
    _trainer_options(p)
    p.add_argument("--resize", action="store_true",
                   help="resize images to --imgsz instead of tiling them")


def build_dataset(args: argparse.Namespace) -> Path:
    """``train dataset``: the simulated video-tile training set."""
    from detect_track.synth.dataset import DatasetSpec, build_detection_dataset

    spec_values = {k: v for k, v in (("n_videos", args.n_videos), ("seed", args.seed),
                                     ("tile_px", args.tile_px), ("preset", args.preset),
                                     ("preset_fraction", args.preset_fraction))
                   if v is not None}
    try:
        spec = DatasetSpec(**spec_values)
    except TypeError as exc:  # pragma: no cover - argparse guards the names
        raise ConfigError(str(exc)) from exc
    update, close = progress_bar("rendering clips", args.quiet)
    try:
        return build_detection_dataset(args.path, spec, progress=update)
    finally:
        close()


def build_smears(args: argparse.Namespace) -> Path:
    """``train smears``: the synthetic stained-smear or slide training set."""
    from detect_track.synth.smears import build_still_dataset

    n = args.n_images if args.n_images is not None else 320
    if n < 1:
        raise ConfigError("--n-images must be >= 1")
    update, close = progress_bar("rendering images", args.quiet)
    try:
        return build_still_dataset(args.path, n, max(1, n // 8), max(1, n // 6),
                                   seed=args.seed or 0, preset=args.kind, progress=update)
    finally:
        close()


def _trainer_values(args: argparse.Namespace) -> dict[str, Any]:
    """The settings both trainers take, from the options given; checks ``--out``."""
    if not args.out:
        raise ConfigError(f"train {args.what}: give the run folder with --out RUN_DIR")
    return {k: getattr(args, k) for k in TRAINER_SETTINGS if getattr(args, k) is not None}


def train_yolo(args: argparse.Namespace) -> Path:
    """``train yolo``: ultralytics YOLO on a data.yaml or a COCO folder."""
    values = _trainer_values(args)
    from detect_track.training.yolo import YoloTrainSettings
    from detect_track.training.yolo import train_yolo as train

    refuse_dataset_scripts(Path(args.path))
    if args.arch:
        values["model_yaml"] = arch_path(args.arch)
    if args.init:
        from detect_track.trust import require_trusted

        if Path(args.init).is_file():
            require_trusted(args.init, "YOLO checkpoint")  # ultralytics unpickles it
        values["init_weights"] = args.init
    return train(args.path, args.out, YoloTrainSettings(**values, tile=not args.resize),
                 log=logger(args.quiet))


def train_effdet(args: argparse.Namespace) -> Path:
    """``train effdet``: EfficientDet on a data.yaml or a COCO folder."""
    values = _trainer_values(args)
    from detect_track.training.effdet import EffdetTrainSettings
    from detect_track.training.effdet import train_effdet as train

    if args.arch:
        values["arch_yaml"] = arch_path(args.arch)
    if "device" in values and values["device"].isdigit():
        values["device"] = f"cuda:{values['device']}"
    if args.init:
        values["init_weights"] = args.init
    return train(args.path, args.out, EffdetTrainSettings(**values), log=logger(args.quiet))


#: ``train WHAT``: the dispatch table (the sub-parsers are built from it).
ACTIONS: dict[str, Action] = {
    "dataset": Action("render a simulated YOLO + COCO dataset of video tiles",
                      _dataset_options, build_dataset),
    "smears": Action("render a YOLO + COCO dataset of synthetic smears or slides",
                     _smears_options, build_smears),
    "yolo": Action("train a YOLO detector", _yolo_options, train_yolo),
    "effdet": Action("train an EfficientDet detector", _trainer_options, train_effdet),
}


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``detect-track train`` with one sub-parser per action."""
    return action_parser("train", DESCRIPTION, ACTIONS, "what")


def main(argv: Sequence[str]) -> int:
    """``detect-track train WHAT ...``: build a dataset or train a detector.

    Args:
        argv: The command line after ``train``.

    Returns:
        The exit status (0); the dataset's or the best weights' path is printed.
    """
    args = build_parser().parse_args(argv)
    apply_trust(args)
    print(ACTIONS[args.what].run(args))
    return 0
