"""Finding model files: weights by name or path, and the file a backend runs.

The bottom layer of the package (it imports nothing of detect-track but its errors), so
the configuration, every detector, the morphology classifier and the tail map can look
up their models without importing each other.

Names are looked up in ``$DETECT_TRACK_WEIGHTS`` (folders separated by ``os.pathsep``)
and then in the repository's ``weights/`` folder (:data:`WEIGHTS_DIR`).
"""

from __future__ import annotations

import os
from pathlib import Path

from detect_track.errors import ConfigError

#: Folder of the shipped weights (``weights/`` at the top of the repository).
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"

#: Inference backends of the learned models (``detector.backend``).
BACKENDS = ("auto", "torch", "onnx")


def weights_dirs() -> list[Path]:
    """Folders searched for weights by name: ``$DETECT_TRACK_WEIGHTS`` then ``weights/``."""
    dirs = [Path(p) for p in os.environ.get("DETECT_TRACK_WEIGHTS", "").split(os.pathsep) if p]
    return [*dirs, WEIGHTS_DIR]


def resolve_weights(name_or_path: str, default: str, suffix: str) -> Path:
    """Find a weights file given a path or a name in the weights folders.

    Args:
        name_or_path: A file path, a name such as ``yolo-sperm`` (looked up as
            ``<name><suffix>`` in :func:`weights_dirs`), or ``""`` for ``default``.
        default: Name of the shipped weights.
        suffix: File suffix of this detector's weights (``.pt``).

    Returns:
        The path of the file found.

    Raises:
        ConfigError: If no such file exists (the message lists where it looked).
    """
    name = name_or_path or default
    direct = Path(name).expanduser()
    if direct.is_file():
        return direct
    candidates = [d / (name if name.endswith(suffix) else name + suffix) for d in weights_dirs()]
    for path in candidates:
        if path.is_file():
            return path
    looked = ", ".join(str(p) for p in candidates)
    raise ConfigError(f"weights '{name}' not found (looked for {direct} and {looked})")


def resolve_model(name_or_path: str, default: str, backend: str) -> Path:
    """The model file to run for a weights name or path and a backend.

    ``torch`` takes the ``.pt`` file; ``onnx`` its ``.onnx`` export (``x.pt`` given: the
    ``x.onnx`` beside it); ``auto`` the ONNX export when onnxruntime is installed and the
    export exists, else the ``.pt`` file. A path to an ``.onnx`` file is used as it is.

    Args:
        name_or_path: A file path, a name in the weights folders, or ``""`` for ``default``.
        default: Name of the shipped weights.
        backend: One of :data:`BACKENDS`.

    Returns:
        The path of the model file.

    Raises:
        ConfigError: If the backend is unknown or the file for it does not exist.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend '{backend}' (available: {', '.join(BACKENDS)})")
    given = Path(name_or_path).expanduser() if name_or_path else None
    if backend == "auto":
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            backend = "torch"
        else:
            try:
                return resolve_model(name_or_path, default, "onnx")
            except ConfigError:
                backend = "torch"
    if backend == "torch" or (given is not None and given.suffix == ".onnx"):
        return resolve_weights(name_or_path, default, ".pt")
    if given is not None and given.suffix == ".pt":
        sibling = given.with_suffix(".onnx")
        if sibling.is_file():
            return sibling
        raise ConfigError(f"no ONNX model beside {name_or_path}; export one with "
                          f"'detect-track export onnx {name_or_path}' or use "
                          "detector.backend=torch")
    return resolve_weights(name_or_path, default, ".onnx")
