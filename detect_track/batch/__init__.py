"""Batch processing: every video under a folder, resumable, on local processes or Dask.

One job per input (a video file, a multi-page TIFF, or a folder of frames). Each job
runs :func:`detect_track.pipeline.run_video` with a fresh detector and tracker, writes
its outputs into ``OUT/<relative path>/`` and, last of all, a ``.done.json`` marker
holding the job key (a hash of the input's content and of everything that changes the
result: config, fps, µm/px, outputs asked for, software version). A rerun skips inputs
whose marker matches; a job killed at any point leaves no marker, so it is redone.

Jobs are plain functions of picklable arguments, so the same job runs in this process,
in a local process pool, or as a task on a Dask cluster, and writes the same files.
Library code: reports progress through callbacks, never prints.

The stages, one module each:

- :mod:`~detect_track.batch.discover`: finding the inputs (folder, glob, list file).
- :mod:`~detect_track.batch.jobs`: a job's settings, key, ``.done.json`` marker and run.
- :mod:`~detect_track.batch.outputs`: one video's output files (also for single runs).
- :mod:`~detect_track.batch.executors`: running the jobs here, in a pool or on Dask.
- :mod:`~detect_track.batch.locks`: one writer per output folder.
- :mod:`~detect_track.batch.combine`: ``batch_log.csv``, ``all_tracks``,
  ``all_summaries`` and the batch report.
"""

from __future__ import annotations

from detect_track.batch.combine import ALL_SUMMARIES, ALL_TRACKS, BATCH_LOG, combine, write_log
from detect_track.batch.discover import ITEM_SETTINGS, LIST_SUFFIXES, discover, is_batch_input
from detect_track.batch.executors import EXECUTORS, BatchOutcome, EventFn, run_batch
from detect_track.batch.jobs import (
    DONE_MARKER,
    LOG_COLUMNS,
    BatchItem,
    JobSpec,
    content_hash,
    process_item,
)
from detect_track.batch.locks import LOCK_FILE, output_lock
from detect_track.batch.outputs import REPORT_COLUMNS, write_outputs

__all__ = [
    "ALL_SUMMARIES",
    "ALL_TRACKS",
    "BATCH_LOG",
    "DONE_MARKER",
    "EXECUTORS",
    "ITEM_SETTINGS",
    "LIST_SUFFIXES",
    "LOCK_FILE",
    "LOG_COLUMNS",
    "REPORT_COLUMNS",
    "BatchItem",
    "BatchOutcome",
    "EventFn",
    "JobSpec",
    "combine",
    "content_hash",
    "discover",
    "is_batch_input",
    "output_lock",
    "process_item",
    "run_batch",
    "write_log",
    "write_outputs",
]
