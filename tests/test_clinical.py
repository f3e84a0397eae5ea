"""The clinical block and the sample command: confidence intervals, reference limits,
pooling of fields, the 200-cell warning, the summary round trip, the reports and
``detect-track sample`` on two short fields."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detect_track.cli import main
from detect_track.cli.commands import COMMANDS, commands_help
from detect_track.measure.clinical import (
    MIN_ASSESSED_CELLS,
    REFERENCE_LIMITS,
    Clinical,
    clinical_block,
    kinematics_by_class,
    proportion,
    too_few_cells_warning,
    wilson_interval,
)
from detect_track.measure.sample import pool_concentration, pool_counts
from detect_track.report.html import sample_report, video_report
from detect_track.results import Summary, pool_summaries, read_summary, with_clinical
from tests.helpers import render_blobs, write_video
from tests.test_report_html import check_html, check_self_contained, tables


# -- confidence intervals ----------------------------------------------------------------
@pytest.mark.parametrize("k,n,low,high", [
    (0, 10, 0.0, 0.2775),      # Wilson 0/10: [0, 27.75 %] (the Wald interval is [0, 0])
    (5, 10, 0.2366, 0.7634),
    (10, 10, 0.7225, 1.0),
    (200, 200, 0.98116, 1.0),
    (1, 100, 0.001767, 0.05448),
])
def test_wilson_interval_known_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=2e-4) and hi == pytest.approx(high, abs=2e-4)


def test_wilson_interval_edges():
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    p = proportion(5, 10)
    assert (p.pct, p.ci95_low, p.ci95_high) == (50.0, 23.6593, 76.3407)
    assert proportion(0, 0).pct is None


# -- reference limits ---------------------------------------------------------------------
def test_reference_limits_are_who_2021():
    limits = {k: r.limit for k, r in REFERENCE_LIMITS.items()}
    assert limits == {"volume_ml": 1.4, "concentration_million_per_ml": 16.0,
                      "total_count_million": 39.0, "total_motility": 42.0,
                      "progressive": 30.0, "vitality": 54.0, "normal_forms": 4.0}


def counts(prog: int, nonprog: int, immotile: int, a: int | None = None) -> dict[str, int]:
    a = prog if a is None else a
    return {"n_gradable": prog + nonprog + immotile, "n_progressive": prog,
            "n_non_progressive": nonprog, "n_immotile": immotile, "n_grade_a": a,
            "n_grade_b": prog - a, "n_grade_c": nonprog, "n_grade_d": immotile}


@pytest.mark.parametrize("prog,nonprog,motile_below,prog_below", [
    (30, 12, False, False),   # exactly at both limits: not below
    (29, 12, True, True),
    (20, 30, False, True),
])
def test_motility_flags(prog, nonprog, motile_below, prog_below):
    block = clinical_block(counts(prog, nonprog, 100 - prog - nonprog), None)
    assert block.proportions["total_motility"].below_limit is motile_below
    assert block.proportions["progressive"].below_limit is prog_below
    assert block.proportions["total_motility"].lower_reference_limit == 42.0
    assert block.proportions["non_progressive"].below_limit is None  # no limit exists


def test_concentration_counts_and_flags():
    block = clinical_block(counts(30, 10, 60), None, measured_concentration=10.0,
                           chamber_depth_um=20.0, volume_ml=1.0, dilution=2.0)
    q = block.quantities
    assert q["concentration_million_per_ml"].value == 20.0  # 10 measured x dilution 2
    assert q["concentration_million_per_ml"].below_limit is False
    assert q["total_count_million"].value == 20.0 and q["total_count_million"].below_limit
    assert q["total_motile_million"].value == pytest.approx(8.0)
    assert q["progressive_motile_million"].value == pytest.approx(6.0)
    assert q["volume_ml"].below_limit is True  # 1.0 ml < 1.4 ml
    bare = clinical_block(counts(30, 10, 60), None)
    assert bare.quantities["concentration_million_per_ml"].value is None
    assert "--chamber-depth-um" in bare.quantities["concentration_million_per_ml"].note


def test_normal_forms_only_from_a_validated_model():
    screening = clinical_block(counts(1, 0, 0), None, pct_normal_forms=3.0)
    assert screening.quantities["normal_forms"].value is None
    assert "screening" in screening.quantities["normal_forms"].note
    validated = clinical_block(counts(1, 0, 0), None, pct_normal_forms=3.0,
                               normal_forms_validated=True)
    assert validated.quantities["normal_forms"].value == 3.0
    assert validated.quantities["normal_forms"].below_limit is True


def test_warning_below_200_cells():
    assert too_few_cells_warning(MIN_ASSESSED_CELLS) is None
    assert "199" in too_few_cells_warning(199)
    assert not clinical_block(counts(100, 50, 49), None).enough_cells
    assert clinical_block(counts(100, 50, 50), None).enough_cells
    assert clinical_block(counts(100, 50, 49), None).notes


def test_kinematics_mean_sd_per_class():
    tracks = pd.DataFrame({"motility": ["progressive", "progressive", "non_progressive",
                                        "immotile", "not_gradable"],
                           "vcl_um_s": [100.0, 60.0, 30.0, 5.0, 999.0],
                           "bcf_hz": [10.0, 12.0, 8.0, np.nan, 1.0]})
    k = kinematics_by_class(tracks)
    assert (k["progressive"]["vcl_um_s"].mean, k["progressive"]["vcl_um_s"].sd) == \
        (80.0, pytest.approx(28.3, abs=0.05))
    assert k["motile"]["vcl_um_s"].n == 3 and k["motile"]["vcl_um_s"].mean == \
        pytest.approx(63.3, abs=0.05)
    assert k["non_progressive"]["vcl_um_s"].sd is None  # one cell: no SD
    assert k["immotile"]["bcf_hz"].n == 0 and k["immotile"]["bcf_hz"].mean is None
    assert k["motile"]["lin"].n == 0  # column missing


# -- pooling --------------------------------------------------------------------------------
def field_summary(name: str, prog: int, nonprog: int, immotile: int, **extra) -> Summary:
    _traj, _tracks, base = tables(name)
    n = prog + nonprog + immotile
    data = {**base, "n_tracks": n, "n_gradable": n, "n_not_gradable": 0,
            **{k: v for k, v in counts(prog, nonprog, immotile).items() if k != "n_gradable"},
            "pct_progressive": 100 * prog / n, "pct_non_progressive": 100 * nonprog / n,
            "pct_immotile": 100 * immotile / n, "pct_grade_a": 100 * prog / n,
            "pct_grade_b": 0.0, "pct_grade_c": 100 * nonprog / n,
            "pct_grade_d": 100 * immotile / n, "pct_motile": 100 * (prog + nonprog) / n,
            "detector_backend": None, "detector_runtime": None, "morphology_task": None,
            "cells_per_frame": 10.0, "untracked_detections_per_frame": {},
            "timings_s": {"detect": 1.0}, **extra}
    return Summary.from_dict(data)


def test_pooling_adds_counts_and_takes_percentages_of_the_pool():
    one = field_summary("f1.avi", 10, 0, 0)
    two = field_summary("f2.avi", 0, 10, 20)
    pooled = pool_counts([one, two])
    assert pooled["n_gradable"] == 40 and pooled["n_progressive"] == 10
    assert pooled["pct_progressive"] == 25.0  # of the pool, not the mean of 100 % and 0 %
    assert pooled["pct_motile"] == 50.0 and pooled["n_grade_d"] == 20


def test_pooled_concentration_is_cells_over_volume():
    a = {"cells_per_frame": 10.0, "width_px": 100, "height_px": 100, "um_per_px": 1.0,
         "chamber_depth_um": 10.0}
    b = {**a, "cells_per_frame": 30.0}
    out = pool_concentration([a, b])
    # 40 cells over 2 x 1e5 µm³ = 2e-7 ml -> 200 x 10^6/ml (each field: 100 and 300)
    assert out["concentration_million_per_ml"] == pytest.approx(200.0)
    assert pool_concentration([a, {**b, "chamber_depth_um": None}])[
        "concentration_million_per_ml"] is None


def test_pooled_summary_round_trip(tmp_path: Path):
    fields = [field_summary("f1.avi", 10, 0, 0), field_summary("f2.avi", 0, 10, 20)]
    pooled = pool_summaries(fields, None, sample_id="S-1", path="/data", operator="AB",
                            outputs=["fields/f1", "fields/f2"], volume_ml=2.0)
    assert pooled.video == "S-1" and pooled.sample_id == "S-1" and pooled.operator == "AB"
    assert pooled.n_gradable == 40 and pooled.pct_progressive == 25.0
    assert [f["n_gradable"] for f in pooled.sample_fields] == [10, 30]
    assert pooled.clinical is not None and not pooled.clinical.enough_cells
    assert any("WHO asks for at least 200" in w for w in pooled.warnings)
    assert pooled.n_frames == 12
    from detect_track.results import write_summary

    write_summary(pooled, tmp_path / "summary.json")
    back = read_summary(tmp_path / "summary.json")
    assert back.to_dict() == pooled.to_dict()
    assert isinstance(back.clinical, Clinical)
    assert isinstance(back["clinical"], dict)  # by key: the JSON dict
    assert json.loads((tmp_path / "summary.json").read_text())["clinical"]["proportions"][
        "progressive"]["ci95_low"] == back.clinical.proportions["progressive"].ci95_low


def test_summary_without_the_new_keys_still_reads():
    old = field_summary("f.avi", 1, 1, 1).to_dict()
    for key in ("sample_id", "operator", "analysis_date", "clinical"):
        old.pop(key)
    s = Summary.from_dict(old)
    assert s.clinical is None and s.sample_id is None and "sample_fields" not in s
    s = with_clinical(s, None, sample_id="X", operator="Y")
    assert s.clinical.n_assessed == 3 and s.sample_id == "X"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", s.analysis_date)


# -- reports --------------------------------------------------------------------------------
def plain(doc: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", doc))


def test_video_report_starts_with_the_clinical_block():
    traj, tracks, summary = tables()
    summary = with_clinical(Summary.from_dict({
        **summary, "n_gradable": 2, "n_not_gradable": 0, "detector_backend": None,
        "detector_runtime": None, "morphology_task": None, "cells_per_frame": 2.0,
        "untracked_detections_per_frame": {}, "timings_s": {}}), tracks,
        sample_id="S-<7>", operator="AB")
    doc = video_report(traj, tracks, summary)
    check_html(doc)
    check_self_contained(doc)
    text = plain(doc)
    assert text.index("Semen analysis") < text.index("Sample summary")
    assert text.index("Semen analysis") < text.index("No warnings")
    for expected in ("S-&lt;7&gt;", "Operator AB", "Progressive motility (PR) 50.0 %",
                     "9.5–90.5 %", "≥ 42 %", "≥ 30 %", "≥ 16 ×10⁶/ml", "≥ 39 ×10⁶",
                     "≥ 4 %", "Wilson", "6th edition (2021)", "WHO asks for at least 200",
                     "All motile (PR + NP)", "60.8", "is graded b (slowly progressive)",
                     "Checked by"):
        assert expected in (doc if "&" in expected else text), expected
    assert "below limit" not in text  # 50 % is above both motility limits
    assert "screening, trained on simulated heads" in text
    assert "Normal forms 100.0%" not in text


def test_below_limit_is_flagged_in_the_report():
    traj, tracks, summary = tables(motility=("immotile", "immotile"))
    summary.update(n_progressive=0, n_immotile=2, n_grade_a=0, n_grade_d=2)
    text = plain(video_report(traj, tracks, summary))
    assert "Total motility (PR + NP) 0.0 % 0.0–65.8 % ≥ 42 % ▼ below limit" in text


def test_sample_report_lists_the_fields(tmp_path: Path):
    _traj, tracks, _s = tables()
    fields = [field_summary("f1.avi", 10, 0, 0), field_summary("f2.avi", 0, 10, 20)]
    pooled = pool_summaries(fields, tracks, sample_id="S-9", path="/data",
                            outputs=["fields/f1", "fields/f2"])
    doc = sample_report(tracks.assign(field=1), pooled)
    check_html(doc)
    text = plain(doc)
    assert "Sample S-9" in text and "2 fields pooled" in text
    assert 'href="fields/f1/report.html"' in doc and "2. f2.avi" in text
    assert "Progressive per field" in text and "25.0 %" in text


# -- the command ---------------------------------------------------------------------------
@pytest.fixture
def two_fields(tmp_path: Path) -> list[Path]:
    """Two short fields: a mover and a still cell each, the mover at a different speed."""
    paths = []
    for k, speed in enumerate((1.0, 1.5)):
        frames = [render_blobs(np.array([[30 + speed * i, 40], [120, 90]]), seed=10 * k + i)
                  for i in range(30)]
        paths.append(write_video(tmp_path / f"field{k + 1}.avi", frames, fps=25.0))
    return paths


def test_sample_command_pools_two_fields(two_fields: list[Path], tmp_path: Path, capsys):
    out = tmp_path / "S-2"
    args = [*map(str, two_fields), "--sample-id", "S-2", "--operator", "AB", "--out", str(out),
            "--um-per-px", "0.7", "--detector", "classical", "--chamber-depth-um", "20",
            "--volume-ml", "3", "detector.classical.polarity=bright", "tracker.min_track_s=0.2"]
    assert main(["sample", *args]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sample_id"] == "S-2" and summary["operator"] == "AB"
    assert len(summary["sample_fields"]) == 2
    per_field = [read_summary(out / f["output"] / "summary.json") for f in
                 summary["sample_fields"]]
    assert summary["n_tracks"] == sum(s.n_tracks for s in per_field) == 4
    assert summary["n_gradable"] == sum(s.n_gradable for s in per_field)
    clinical = summary["clinical"]
    assert clinical["n_assessed"] == summary["n_gradable"]
    assert clinical["quantities"]["total_count_million"]["value"] is not None
    assert clinical["volume_ml"] == 3.0
    tracks = pd.read_csv(out / "tracks.csv")
    assert sorted(tracks["field"].unique()) == [1, 2]
    doc = (out / "report.html").read_text()
    check_html(doc)
    assert "Semen analysis" in doc and "fields/field1/report.html" in doc
    field_doc = plain((out / "fields" / "field1" / "report.html").read_text())
    assert "Semen analysis" in field_doc and "Sample ID S-2" in field_doc
    assert per_field[0].sample_id == "S-2" and per_field[1].operator == "AB"
    err = capsys.readouterr().err
    assert "WHO asks for at least 200" in err
    # a rerun skips the fields done and writes the same pooled counts
    assert main(["sample", *args, "-q"]) == 0
    assert json.loads((out / "summary.json").read_text())["n_tracks"] == 4


def test_sample_command_is_listed_and_checks_its_options(two_fields: list[Path],
                                                         tmp_path: Path, capsys):
    assert "sample" in COMMANDS and "sample" in commands_help()
    with pytest.raises(SystemExit) as exc:  # --sample-id is required
        main(["sample", str(two_fields[0])])
    assert exc.value.code == 2
    assert main(["sample", str(two_fields[0]), "--sample-id", "X", "--volume-ml", "0",
                 "--out", str(tmp_path / "x")]) == 2
    assert "--volume-ml must be above 0" in capsys.readouterr().err


def test_video_command_takes_the_sample_facts(moving_blob_video: Path, tmp_path: Path):
    out = tmp_path / "one"
    assert main([str(moving_blob_video), "--um-per-px", "0.7", "--out", str(out), "-q",
                 "--detector", "classical", "detector.classical.polarity=bright",
                 "tracker.min_track_s=0.2", "--sample-id", "V-1", "--operator", "CD",
                 "--chamber-depth-um", "20", "--volume-ml", "2", "--dilution", "2"]) == 0
    summary = read_summary(out / "summary.json")
    assert (summary.sample_id, summary.operator) == ("V-1", "CD")
    q = summary.clinical.quantities
    assert q["concentration_million_per_ml"].value == pytest.approx(
        2 * summary.concentration_million_per_ml, rel=1e-3)
    assert q["total_count_million"].value == pytest.approx(
        2 * q["concentration_million_per_ml"].value, rel=1e-2)
    text = plain((out / "report.html").read_text())
    assert "V-1" in text and "Operator CD" in text and "Dilution 2×" in text


def test_flat_headline_columns_for_tables():
    flat = clinical_block(counts(30, 12, 58), None, measured_concentration=10.0).flat()
    assert flat["progressive_pct"] == 30.0 and flat["progressive_below_limit"] is False
    assert flat["concentration_million_per_ml"] == 10.0
    assert flat["concentration_million_per_ml_below_limit"] is True
    assert not any("vcl" in k for k in flat)  # kinematics stay in the track tables


def test_fields_from_files_and_folders(two_fields: list[Path], tmp_path: Path):
    from detect_track.batch.sample import field_items

    items = field_items([str(two_fields[0]), str(tmp_path), str(two_fields[0])])
    assert [i.path for i in items] == [two_fields[0].resolve(), two_fields[1].resolve()]
    assert len({i.rel for i in items}) == 2


def test_a_model_is_validated_only_when_it_ran_and_is_not_a_screening_model():
    from detect_track.measure.clinical import morphology_validated

    assert not morphology_validated({"morphology_model": None, "morphology_screening": False})
    assert not morphology_validated({"morphology_model": "head-shape-synth.onnx",
                                     "morphology_screening": True})
    assert morphology_validated({"morphology_model": "lab-model.onnx",
                                 "morphology_screening": False})
