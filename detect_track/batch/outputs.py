"""The outputs of one video: tables, summary, report and overlay.

Used by every batch job and by ``detect-track VIDEO`` for a single video.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from detect_track.batch.jobs import JobSpec

#: Trajectory columns the per-video report plots.
REPORT_COLUMNS = ("track_id", "frame", "x_um", "y_um")


def write_outputs(source: Path, results: Any, out: Path, spec: JobSpec,
                  overlay_progress: Callable[[int, int], None] | None = None
                  ) -> dict[str, Path]:
    """Every output of one video: tables, summary, then report and overlay if asked.

    Args:
        source: The video the results came from (the overlay draws on it).
        results: What :func:`~detect_track.pipeline.run_video` returned.
        out: The video's output folder.
        spec: Which outputs (exports, crops, report, overlay).
        overlay_progress: ``progress(frames_done, frames_total)`` while drawing.

    Returns:
        The paths written, by name.
    """
    from detect_track.results import with_clinical, write_results

    if spec.sample_id is not None or spec.operator is not None:
        results.summary = with_clinical(results.summary, results.tracks,
                                        sample_id=spec.sample_id, operator=spec.operator)
    paths = write_results(results, out, exports=spec.exports, save_crops=spec.save_crops,
                          csv_dialect=spec.csv_dialect)
    overlay = None
    if spec.overlay:  # first, so that the report can show the video it got
        from detect_track.report.overlay import write_overlay_video

        overlay = write_overlay_video(source, results.trajectories, results.tracks,
                                      out / "overlay.mp4", fps=results.meta.fps,
                                      um_per_px=results.meta.um_per_px,
                                      progress=overlay_progress)
        paths["overlay"] = overlay.path
    if spec.report:
        from detect_track.report.html import write_video_report
        from detect_track.results import read_trajectories

        # a streamed table is read back with only the plotted columns (long videos)
        traj = (read_trajectories(results.trajectories_path, REPORT_COLUMNS)
                if results.streamed else results.trajectories)
        paths["report"] = write_video_report(
            traj, results.tracks, results.summary, out / "report.html",
            overlay=overlay.as_dict() if overlay is not None else None)
        del traj
    return paths
