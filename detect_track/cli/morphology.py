"""``detect-track morphology train|predict|synth``: sperm-head morphology classifiers."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from detect_track.cli.shared import Action, action_parser, logger, progress_bar
from detect_track.errors import ConfigError

DESCRIPTION = """\
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
Options of one action: 'detect-track morphology ACTION --help'.
"""


def _train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", metavar="DATA", help="labelled crops (see 'morphology --help')")
    p.add_argument("--task", help="head_shape | head | acrosome | vacuole | tail")
    p.add_argument("--out", metavar="MODEL.pt", help="model file to write (required)")
    p.add_argument("--folds", type=int, default=0,
                   help="also report stratified K-fold accuracy (K models)")
    p.add_argument("--epochs", type=int, help="most epochs (default 80)")
    p.add_argument("--init", metavar="MODEL.pt",
                   help="fine-tune this model (e.g. weights/head-shape-synth.pt; "
                   "smaller learning rate, more patience)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda:0")


def _predict_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL.pt", help="a classifier from 'morphology train'")
    p.add_argument("input", metavar="INPUT", help="crops to classify")
    p.add_argument("--out", metavar="FILE.csv", help="CSV file (default: standard output)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda:0")


def _synth_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("out_dir", metavar="OUT_DIR", help="folder to write the crops into")
    p.add_argument("--n-per-class", type=int, default=500, help="crops per class")
    p.add_argument("--seed", type=int, default=0, help="random seed")


def train(args: argparse.Namespace) -> int:
    """``morphology train``: fit a classifier (optionally cross-validated) and save it."""
    import numpy as np

    from detect_track.morphology.classifier import cross_validate
    from detect_track.morphology.cnn import TASKS, save_checkpoint
    from detect_track.morphology.data import load_image_set
    from detect_track.morphology.training import (
        MorphTrainSettings,
        train_classifier,
        transfer_settings,
    )

    say = logger(args.quiet)
    if args.task not in TASKS:
        raise ConfigError(f"--task must be one of {', '.join(TASKS)}")
    if not args.out:
        raise ConfigError("morphology train: give the model file with --out MODEL.pt")
    data = load_image_set(args.data, task=args.task, labelled=True)
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


def predict(args: argparse.Namespace) -> int:
    """``morphology predict``: one label and confidence per crop, to a CSV or stdout."""
    import pandas as pd

    from detect_track.morphology.classifier import MorphologyClassifier
    from detect_track.morphology.data import load_image_set

    model = MorphologyClassifier(args.model, args.device)
    data = load_image_set(args.input, task=None, labelled=False)
    labels, conf = model.predict(data.images)
    table = pd.DataFrame({"item": data.items, "label": labels, "confidence": conf})
    if args.out:
        from detect_track.io.export import write_csv

        write_csv(table, args.out)
        logger(args.quiet)(f"{len(table)} predictions -> {args.out}")
    else:
        from detect_track.io.export import escape_formulas

        escape_formulas(table).to_csv(sys.stdout, index=False, float_format="%.4f")
    return 0


def synth(args: argparse.Namespace) -> int:
    """``morphology synth``: simulated head crops, one sub-folder per head shape."""
    from detect_track.synth.heads import write_head_folder

    update, close = progress_bar("rendering heads", args.quiet)
    try:
        out = write_head_folder(args.out_dir, args.n_per_class, args.seed, progress=update)
    finally:
        close()
    print(out)
    return 0


#: ``morphology ACTION``: the dispatch table (the sub-parsers are built from it).
ACTIONS: dict[str, Action] = {
    "train": Action("train a head-morphology classifier", _train_options, train),
    "predict": Action("classify crops with a trained model", _predict_options, predict),
    "synth": Action("render simulated head crops", _synth_options, synth),
}


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``detect-track morphology`` with one sub-parser per action."""
    return action_parser("morphology", DESCRIPTION, ACTIONS, "action")


def main(argv: Sequence[str]) -> int:
    """``detect-track morphology ACTION ...``: train, apply or simulate.

    Args:
        argv: The command line after ``morphology``.

    Returns:
        The exit status (0).
    """
    args = build_parser().parse_args(argv)
    return ACTIONS[args.action].run(args)
