"""One sample from several fields: run each field as a batch job, then pool them.

WHO asks for at least 200 assessed cells over several fields of one sample. Each field
(a video, TIFF stack or folder of frames) runs as a batch job into ``OUT/fields/<name>/``
(resumable, with its own tables and report; ``OUT/fields/`` also gets the batch log and
report of the fields); then the fields' summaries and tracks are pooled into the sample's
``OUT/summary.json`` (:func:`detect_track.results.pool_summaries`), ``OUT/tracks.csv``
(every field's tracks, with a ``field`` column) and ``OUT/report.html``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from detect_track.batch.combine import BATCH_LOG
from detect_track.batch.discover import discover
from detect_track.batch.executors import EventFn, run_batch
from detect_track.batch.jobs import BatchItem, JobSpec
from detect_track.errors import InputError
from detect_track.io.export import ensure_output_dir, write_csv
from detect_track.results import Summary, pool_summaries, read_summary, write_summary

#: Sub-folder of the sample's output folder holding one folder per field.
FIELDS_DIR = "fields"


@dataclass
class SampleOutcome:
    """What :func:`run_sample` did.

    Attributes:
        summary: The pooled summary (None when every field failed).
        records: One batch-log record per field, in the order given.
        paths: Files written for the sample, by name.
    """

    summary: Summary | None
    records: list[dict[str, Any]]
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def n_failed(self) -> int:
        """Fields that failed."""
        return sum(r["status"] == "failed" for r in self.records)


def field_items(inputs: Sequence[str | os.PathLike[str]],
                exclude: str | os.PathLike[str] | None = None) -> list[BatchItem]:
    """The fields of a sample: each input given, a folder expanded to the videos under it.

    Args:
        inputs: Videos, TIFF stacks, folders of frames, or folders of such fields.
        exclude: A folder never searched (the sample's output folder).

    Returns:
        One item per field, in the order given, each with a unique output sub-folder.

    Raises:
        InputError: An input that does not exist or holds no video.
    """
    items: list[BatchItem] = []
    for spec in inputs:
        items.extend(discover(spec, exclude=exclude))
    seen: set[Path] = set()
    unique = []
    for item in items:  # the same file given twice is one field
        if item.path not in seen:
            seen.add(item.path)
            unique.append(item)
    counts = Counter(i.rel for i in unique)
    out = []
    for k, item in enumerate(unique):
        rel = item.rel if counts[item.rel] == 1 else f"{item.rel}-{k + 1}"
        out.append(replace(item, rel=rel))
    return out


def run_sample(inputs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str],
               spec: JobSpec, *, sample_id: str, operator: str | None = None,
               volume_ml: float | None = None, dilution: float | None = None,
               workers: int = 1, force: bool = False,
               on_event: EventFn | None = None) -> SampleOutcome:
    """Run every field of one sample and pool them into one result.

    Args:
        inputs: The fields (see :func:`field_items`).
        out: The sample's output folder.
        spec: Settings of every field's job (config with the chamber depth, fps, µm/px,
            outputs).
        sample_id: The sample's identifier.
        operator: Who runs the analysis, or None.
        volume_ml: Semen volume, ml (total and motile counts), or None.
        dilution: Dilution factor of the imaged specimen, or None (neat).
        workers: Fields processed in parallel.
        force: Redo fields whose outputs are complete.
        on_event: Progress callback, as for :func:`~detect_track.batch.run_batch`.

    Returns:
        The pooled summary, the fields' records and the sample's files.

    Raises:
        InputError: No field found.
    """
    root = Path(out)
    items = field_items(inputs, exclude=root)
    if not items:
        raise InputError("no field given")
    root = ensure_output_dir(root)
    fields_dir = root / FIELDS_DIR
    outcome = run_batch(items, fields_dir, spec, workers=workers, force=force,
                        on_event=on_event)
    summaries: list[Summary] = []
    tracks: list[pd.DataFrame] = []
    outputs: list[str] = []
    warnings = []
    for k, rec in enumerate(outcome.records):
        if rec["status"] == "failed":
            warnings.append(f"field {rec['file']} failed and is not pooled: {rec['error']}")
            continue
        folder = fields_dir / rec["output"]
        summary = read_summary(folder / "summary.json")
        table = pd.read_csv(folder / "tracks.csv")
        table.insert(0, "field", k + 1)
        table.insert(1, "video", summary.video)
        summaries.append(summary)
        tracks.append(table)
        outputs.append(f"{FIELDS_DIR}/{rec['output']}")
    paths: dict[str, Path] = {"fields": fields_dir, "log": fields_dir / BATCH_LOG}
    if not summaries:
        return SampleOutcome(None, outcome.records, paths)
    all_tracks = pd.concat(tracks, ignore_index=True)
    pooled = pool_summaries(summaries, all_tracks, sample_id=sample_id,
                            path=_common_folder([Path(r["file"]) for r in outcome.records]),
                            outputs=outputs, operator=operator, volume_ml=volume_ml,
                            dilution=dilution, warnings=warnings)
    paths["tracks"] = write_csv(all_tracks, root / "tracks.csv")
    paths["summary"] = write_summary(pooled, root / "summary.json")
    if spec.report:
        from detect_track.report.html import write_sample_report

        paths["report"] = write_sample_report(all_tracks, pooled, root / "report.html")
    return SampleOutcome(pooled, outcome.records, paths)


def _common_folder(paths: Sequence[Path]) -> str:
    """The deepest folder holding every path (absolute)."""
    resolved = [str(p.resolve().parent) for p in paths]
    return os.path.commonpath(resolved) if resolved else ""
