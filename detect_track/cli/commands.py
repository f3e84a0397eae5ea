"""The sub-commands by name: where each lives and what it does in one line.

:func:`detect_track.cli.main` imports a command's module only when it runs, so that
``detect-track --help`` and the short usage load none of the heavy libraries.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import NamedTuple

from detect_track.cli.shared import PROG


class Command(NamedTuple):
    """One sub-command of ``detect-track``.

    Attributes:
        module: Module under :mod:`detect_track.cli` holding the command.
        usage: Its arguments in short, shown after the name in the help.
        summary: What it does, in one line.
    """

    module: str
    usage: str
    summary: str

    def handler(self) -> Callable[[Sequence[str]], int]:
        """The command's ``main(argv) -> exit status``, imported now."""
        return importlib.import_module(f"detect_track.cli.{self.module}").main


#: ``detect-track NAME ...`` -> the command; anything else is ``detect-track VIDEO ...``.
COMMANDS: dict[str, Command] = {
    "sample": Command("sample", "FIELD ... --sample-id ID",
                      "pool several fields of one sample (WHO: >= 200 cells)"),
    "track": Command("track", "DETECTIONS.csv", "link detections from other software, measure"),
    "synth": Command("synth", "OUT_DIR", "simulate a video with ground truth"),
    "eval": Command("eval", "PRED_DIR TRUTH_DIR", "score results against ground truth"),
    "annotate": Command("annotate", "VIDEO --out DIR",
                        "frames + detections to correct (YOLO, COCO)"),
    "train": Command("train", "dataset|smears|yolo|effdet",
                     "train a detector / build a training set"),
    "morphology": Command("morphology", "train|predict|synth", "head-morphology classifiers"),
    "export": Command("export", "onnx MODEL.pt", "ONNX export for the fast CPU path"),
}


def commands_help() -> str:
    """The sub-commands, one line each, for the main ``--help``."""
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {c.usage}: {c.summary}" for name, c in COMMANDS.items()]
    return (f"other commands ({PROG} COMMAND ...; '{PROG} COMMAND --help' for details):\n"
            + "\n".join(lines) + "\n")


#: What ``detect-track`` without arguments prints: the three everyday forms.
SHORT_USAGE = f"""\
usage: {PROG} VIDEO --um-per-px X            a video, TIFF stack or folder of frames
       {PROG} FOLDER --out DIR --um-per-px X a batch: every video under FOLDER
       {PROG} IMAGE --config sperm-slide     a still image or a folder of images
no VIDEO given. Full help, with every command: {PROG} --help
"""
