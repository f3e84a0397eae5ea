"""Export trained models to ONNX for the fast, torch-free inference path.

``detect-track export onnx MODEL.pt`` writes ``MODEL.onnx`` beside it (or ``--out``):
YOLO detectors through ultralytics' exporter (dynamic height and width, so any frame
size padded to a multiple of 32 runs), morphology classifiers through torch's. Needs the
``ml`` extra (torch, ultralytics, onnx); running the exported file needs only
onnxruntime.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pickle
import shutil
import tempfile
import warnings
from pathlib import Path

from detect_track.errors import ConfigError
from detect_track.ml import prepare_ultralytics, require
from detect_track.trust import require_trusted

#: ONNX opset of the exports (ONNX Runtime >= 1.12 runs it).
OPSET = 17


def export_yolo_onnx(weights: str | os.PathLike[str], out: str | os.PathLike[str] | None = None
                     ) -> Path:
    """Export an ultralytics YOLO checkpoint to ONNX with dynamic input size.

    Args:
        weights: The ``.pt`` checkpoint.
        out: The ``.onnx`` file (default: beside ``weights``).

    Returns:
        The file written (complete, or not there at all).

    Raises:
        ConfigError: If the checkpoint cannot be loaded or exported.
    """
    src = Path(weights)
    target = Path(out) if out else src.with_suffix(".onnx")
    require_trusted(src, "YOLO checkpoint")  # ultralytics unpickles it
    prepare_ultralytics()
    require("onnx")
    from ultralytics import YOLO

    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        copy = Path(tmp) / src.name
        shutil.copyfile(src, copy)  # ultralytics writes its export beside the checkpoint
        from ultralytics.utils import LOGGER

        level = LOGGER.level
        LOGGER.setLevel(logging.ERROR)  # ultralytics logs its progress: library code is quiet
        try:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch's note on its legacy exporter
                exported = YOLO(str(copy), task="detect").export(
                    format="onnx", dynamic=True, simplify=True, opset=OPSET, imgsz=480,
                    device="cpu", verbose=False)
        except Exception as exc:  # noqa: BLE001 - one message for any exporter failure
            raise ConfigError(f"cannot export {src} to ONNX: {exc}") from exc
        finally:
            LOGGER.setLevel(level)
        os.chmod(exported, 0o644)
        os.replace(exported, target)
    return target


def export_onnx(weights: str | os.PathLike[str], out: str | os.PathLike[str] | None = None
                ) -> Path:
    """Export a YOLO detector or a morphology classifier checkpoint to ONNX.

    Raises:
        ConfigError: Missing file, EfficientDet (not supported), or an export failure.
    """
    from detect_track.morphology.classifier import export_onnx as export_morphology

    path = Path(weights)
    if not path.is_file():
        raise ConfigError(f"no such model file: {path}")
    if path.suffix != ".pt":
        raise ConfigError(f"export onnx takes a .pt checkpoint, got {path.name}")
    torch = require("torch")
    try:  # weights_only: plain-tensor checkpoints (ours) load without running anything
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # needs the full unpickler (an ultralytics checkpoint),
        return export_yolo_onnx(path, out)  # which may run code: only a trusted file goes on
    except Exception as exc:  # noqa: BLE001 - unreadable checkpoint
        raise ConfigError(f"{path} is not a readable model file ({type(exc).__name__})") from None
    from detect_track.detectors.effdet import CHECKPOINT_FORMAT as EFFDET_FORMAT
    from detect_track.morphology.cnn import CHECKPOINT_FORMAT as MORPHOLOGY_FORMAT

    kind = ckpt.get("format") if isinstance(ckpt, dict) else None
    if kind == MORPHOLOGY_FORMAT:
        return export_morphology(path, out)
    if kind == EFFDET_FORMAT:
        raise ConfigError("EfficientDet has no ONNX export yet (its anchor decoding and NMS "
                          "live in python); it runs with detector.backend=torch")
    return export_yolo_onnx(path, out)
