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
    "track": Command("track", "DETECTIONS.csv --fps F --um-per-px X",
                     "link detections from other software, then measure"),
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
    width = max(len(f"{name} {c.usage}") for name, c in COMMANDS.items())
    lines = [f"  {PROG} {f'{name} {c.usage}':<{width}}  {c.summary}"
             for name, c in COMMANDS.items()]
    return ("other commands (run 'detect-track COMMAND --help' for details):\n"
            + "\n".join(lines) + "\n")


#: What ``detect-track`` without arguments prints: the three everyday forms.
SHORT_USAGE = f"""\
usage: {PROG} VIDEO [options]            one video (AVI, MP4, TIFF stack, folder of frames)
       {PROG} FOLDER --out DIR [options] a batch: every video under FOLDER
       {PROG} IMAGE --config sperm-slide a still image or a folder of images (stained slides)
e.g.   {PROG} sample.avi --um-per-px 0.7
no VIDEO given; full help: '{PROG} --help' (a command's: '{PROG} COMMAND --help')
"""
