"""detect-track: detect, track and measure sperm cells in microscopy videos.

The public API is small:

* :func:`detect_track.pipeline.run_video` turns a video into trajectories, CASA
  kinematics and WHO motility classes (pandas DataFrames).
* :mod:`detect_track.synth` renders microscopy-like videos with ground truth.
* :mod:`detect_track.eval` scores results against ground truth.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("detect-track")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
