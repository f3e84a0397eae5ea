"""Which model files may run code when they are loaded.

A PyTorch ``.pt`` file is a pickle: loading it with ``torch.load(weights_only=False)``,
as ultralytics does for its YOLO checkpoints, runs whatever the file asks for. So:

* checkpoints that are plain tensors and numbers (morphology classifiers, EfficientDet)
  are always loaded with ``weights_only=True``, which runs nothing;
* a checkpoint that needs the full unpickler (an ultralytics YOLO ``.pt``) is loaded only
  from the shipped ``weights/`` folder, from a folder named in ``$DETECT_TRACK_WEIGHTS``
  (set by the user, never by a file), or after an explicit opt-in: ``--trust-model`` on
  the command line, which sets ``DETECT_TRACK_TRUST_MODELS=1`` for this process and its
  workers. A config file cannot opt in: a shared YAML must not be able to run code.

ONNX models run no Python code and need no trust.
"""

from __future__ import annotations

import os
from pathlib import Path

from detect_track.errors import ConfigError

#: Environment variable that, set to ``1``, trusts every model file (``--trust-model``).
TRUST_ENV = "DETECT_TRACK_TRUST_MODELS"
#: The shipped weights folder.
SHIPPED_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"


def trusted_dirs() -> list[Path]:
    """Folders whose model files are trusted: ``$DETECT_TRACK_WEIGHTS`` and ``weights/``."""
    extra = [Path(p) for p in os.environ.get("DETECT_TRACK_WEIGHTS", "").split(os.pathsep) if p]
    return [p.expanduser().resolve() for p in (*extra, SHIPPED_WEIGHTS)]


def trust_all() -> bool:
    """Whether the user opted in to loading any model file (``--trust-model``)."""
    return os.environ.get(TRUST_ENV, "").strip().lower() in ("1", "true", "yes")


def is_trusted(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` may be unpickled: in a trusted folder, or everything is trusted."""
    if trust_all():
        return True
    real = Path(path).expanduser().resolve()
    return any(real.parent == d or d in real.parents for d in trusted_dirs())


def require_trusted(path: str | os.PathLike[str], what: str) -> None:
    """Refuse to unpickle ``path`` unless it is trusted (see the module docstring).

    Args:
        path: The model file about to be loaded with the full unpickler.
        what: What it is, for the message (``"YOLO checkpoint"``).

    Raises:
        ConfigError: If the file lies outside the trusted folders and no opt-in was given.
    """
    if not is_trusted(path):
        raise ConfigError(
            f"{path} is a {what} outside weights/: loading such a .pt file can run code it "
            "holds, so it is refused; use its .onnx export, or pass --trust-model (or set "
            f"{TRUST_ENV}=1) if you trust where the file came from")
