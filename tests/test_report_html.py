"""HTML reports: content, escaping, self-containment, well-formedness, atomic writes,
templates (own stylesheet / templates), contexts, formatting and figures."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detect_track import __version__
from detect_track.report import html as html_module
from detect_track.report.context import batch_context, video_context
from detect_track.report.figures import (
    class_bar_figure,
    display_width,
    histogram_figure,
    png_data_uri,
    trajectory_figure,
)
from detect_track.report.formatting import fmt, with_classes
from detect_track.report.html import (
    MOTILITY_COLOURS,
    batch_report,
    video_report,
    write_batch_report,
    write_video_report,
)
from detect_track.types import TRACK_COLUMNS, TRAJECTORY_COLUMNS

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class TagChecker(HTMLParser):
    """Every non-void element closed, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.srcs: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "src" in attrs:
            self.srcs.append(attrs["src"])
        if "href" in attrs:
            self.hrefs.append(attrs["href"])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            if tag in self.stack:
                while self.stack.pop() != tag:
                    pass
        else:
            self.stack.pop()


def check_html(doc: str) -> TagChecker:
    assert doc.startswith("<!DOCTYPE html>")
    parser = TagChecker()
    parser.feed(doc)
    parser.close()
    assert parser.problems == []
    assert parser.stack == [], f"unclosed: {parser.stack}"
    return parser


def check_self_contained(doc: str) -> None:
    assert "http://" not in doc and "https://" not in doc
    assert 'src="/' not in doc and "src='/" not in doc
    assert "<script" not in doc.lower()
    assert "url(" not in doc


def tables(name: str = "clip.avi", motility=("progressive", "immotile")):
    n = 6
    rows = []
    for tid, (dx, dy) in ((1, (10.0, 2.0)), (2, (0.1, 0.1))):
        for f in range(n):
            x, y = 20.0 + dx * f, 30.0 + dy * f
            rows.append({"video": name, "frame": f, "time_s": f / 50, "track_id": tid,
                         "x_px": x / 0.7, "y_px": y / 0.7, "x_um": x, "y_um": y, "w_px": 7.0,
                         "h_px": 7.0, "class_name": "sperm", "confidence": 0.9,
                         "interpolated": False})
    traj = pd.DataFrame(rows, columns=list(TRAJECTORY_COLUMNS))
    tracks = pd.DataFrame({
        "track_id": [1, 2], "n_frames": [n, n], "duration_s": [0.1, 0.1],
        "vcl_um_s": [60.8194, 8.52412], "vsl_um_s": [46.6668, 0.534089],
        "vap_um_s": [46.9468, 2.21754], "lin": [0.767302, 0.0626562],
        "str": [0.994037, 0.240847], "wob": [0.771905, 0.260149],
        "alh_um": [1.70381, 0.139062], "alh_max_um": [2.34087, 1.19279],
        "bcf_hz": [21.2245, 25.9184], "mad_deg": [44.275, 109.346],
        "motility": list(motility), "who_grade": ["a", "d"],
        "morphology": ["normal", "not_assessable"], "morphology_confidence": [0.556061, np.nan],
    }, columns=list(TRACK_COLUMNS))
    summary = {
        "video": name, "path": f"/data/{name}", "n_frames": n, "duration_s": 0.12,
        "width_px": 640, "height_px": 480, "fps": 50.0, "fps_source": "container",
        "um_per_px": 0.7, "um_per_px_source": "cli", "detector": "yolo",
        "detector_weights": "yolo-sperm.pt", "tracker": "sort", "n_tracks": 2,
        "n_progressive": 1, "n_non_progressive": 0, "n_immotile": 1,
        "pct_progressive": 50.0, "pct_non_progressive": 0.0, "pct_immotile": 50.0,
        "n_grade_a": 1, "n_grade_b": 0, "n_grade_c": 0, "n_grade_d": 1,
        "pct_grade_a": 50.0, "pct_grade_b": 0.0, "pct_grade_c": 0.0, "pct_grade_d": 50.0,
        "pct_motile": 50.0, "n_morphology_assessed": 1, "pct_normal_forms": 100.0,
        "morphology_model": "head-shape-synth.pt", "n_detections": 12, "n_interpolated": 0,
        "warnings": [], "elapsed_s": 1.234, "chamber_depth_um": None,
        "concentration_million_per_ml": None,
        "config": {"tracker": {"name": "sort", "max_gap_s": 0.5},
                   "detector": {"yolo": {"confidence": 0.05, "weights": ""}}},
        "versions": {"detect_track": __version__, "python": "3.11.7"},
    }
    return traj, tracks, summary


def test_video_report_content():
    traj, tracks, summary = tables()
    doc = video_report(traj, tracks, summary)
    check_html(doc)
    check_self_contained(doc)
    text = re.sub(r"<[^>]+>", " ", doc)
    assert "clip.avi" in text
    for expected in ("50.0%", "screening, trained on simulated heads",
                     "give --chamber-depth-um",
                     "rapidly progressive", "yolo-sperm.pt", "sort", "container", "cli",
                     "max_gap_s", "3.11.7", f"detect-track {__version__}"):
        assert expected in text, expected
    # track table: speeds with 1 decimal, ratios with 2
    assert "60.8" in text and "46.7" in text and "0.77" in text and "0.99" in text
    assert "60.8194" not in text
    assert "<details>" in doc
    assert MOTILITY_COLOURS["progressive"] in doc
    assert "No warnings" in text
    # a screening morphology call is no headline card (normal forms 100% of 1 head)
    assert "100.0%" not in text and "n = 1 assessed" not in text


def test_video_report_embeds_png_figures():
    traj, tracks, summary = tables()
    doc = video_report(traj, tracks, summary)
    parser = check_html(doc)
    assert len(parser.srcs) >= 2  # trajectory plot and histograms
    for src in parser.srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_video_report_escapes_data_text():
    traj, tracks, summary = tables(name="<b>&x.avi")
    summary["warnings"] = ["fps <guessed> & \"wrong\""]
    doc = video_report(traj, tracks, summary)
    check_html(doc)
    assert "<b>&x" not in doc
    assert "&lt;b&gt;&amp;x.avi" in doc
    assert "fps &lt;guessed&gt; &amp; &quot;wrong&quot;" in doc
    assert "Warnings (1)" in doc


def test_concentration_and_unclassified_tracks():
    traj, tracks, summary = tables(motility=("progressive", np.nan))
    summary.update(chamber_depth_um=20.0, concentration_million_per_ml=12.345)
    doc = video_report(traj, tracks, summary)
    check_html(doc)
    assert "12.3" in doc and "20 µm" in doc and "give --chamber-depth-um" not in doc
    assert "Unclassified" in doc


@pytest.mark.parametrize("bare", [False, True])
def test_video_report_without_tracks(bare):
    traj, tracks, summary = tables()
    if bare:
        traj, tracks = pd.DataFrame(), pd.DataFrame()
    else:
        traj, tracks = traj.iloc[:0], tracks.iloc[:0]
    summary.update(n_tracks=0, n_progressive=0, n_immotile=0, pct_progressive=None,
                   pct_non_progressive=None, pct_immotile=None, pct_motile=None,
                   n_morphology_assessed=0, pct_normal_forms=None,
                   warnings=["no cells detected"])
    doc = video_report(traj, tracks, summary)
    check_html(doc)
    check_self_contained(doc)
    assert "No tracks" in doc
    assert "no cells detected" in doc


def batch_tables(tmp_path: Path | None = None):
    traj, tracks, summary = tables()
    flat = {k: v for k, v in summary.items() if k not in ("config", "versions")}
    flat["warnings"] = "fps from the default"
    ok = {**flat, "file": "/data/clip.avi", "output": "clip", "status": "ok", "error": "",
          "report": "clip/report.html"}
    failed = {"file": "/data/bad <1>.avi", "output": "bad", "status": "failed",
              "error": "cannot read video: no frame could be decoded & <stop>"}
    summaries = pd.DataFrame([ok, failed])
    all_tracks = tracks.assign(video="clip.avi")
    log = pd.DataFrame([
        {"file": "/data/clip.avi", "status": "ok", "error": "", "elapsed_s": 2.5},
        {"file": "/data/bad <1>.avi", "status": "failed", "error": failed["error"],
         "elapsed_s": 0.1},
    ])
    return summaries, all_tracks, log


def test_batch_report_content():
    summaries, tracks, log = batch_tables()
    doc = batch_report(summaries, tracks, log)
    parser = check_html(doc)
    check_self_contained(doc)
    assert "bad &lt;1&gt;.avi" in doc and "<1>" not in doc
    assert "cannot read video: no frame could be decoded &amp; &lt;stop&gt;" in doc
    assert doc.count('class="st-failed"') == 2  # videos table and log
    assert "failed" in doc and "1 input(s) failed" in doc
    assert parser.hrefs == ["clip/report.html"]
    assert "fps from the default" in doc
    srcs = [s for s in parser.srcs if s.startswith("data:image/png;base64,")]
    assert len(srcs) == len(parser.srcs) == 2  # class bars and pooled histograms
    assert "50.0%" in doc  # pooled progressive share


def test_batch_report_all_failed():
    summaries, tracks, log = batch_tables()
    doc = batch_report(summaries.iloc[1:], tracks.iloc[:0], log.iloc[1:])
    check_html(doc)
    assert "No tracks" in doc
    doc = batch_report(pd.DataFrame(), pd.DataFrame(), pd.DataFrame())
    check_html(doc)


def test_writes_are_atomic(tmp_path):
    traj, tracks, summary = tables()
    target = tmp_path / "report.html"
    target.write_text("old", encoding="utf-8")
    assert write_video_report(traj, tracks, summary, target) == target
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    summaries, all_tracks, log = batch_tables()
    batch = tmp_path / "sub" / "batch.html"
    assert write_batch_report(summaries, all_tracks, log, batch) == batch
    assert "Batch report" in batch.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["batch.html", "report.html", "sub"]


def test_report_css_is_inlined_from_its_file():
    css = (Path(html_module.__file__).parent / "templates" / "report.css").read_text("utf-8")
    traj, tracks, summary = tables()
    doc = video_report(traj, tracks, summary)
    assert css.strip() in doc
    assert doc.count("<style>") == 1 and "<link" not in doc


def test_template_dirs_brand_the_report(tmp_path):
    (tmp_path / "report.css").write_text("body { color: #123456; } /* lab brand */\n", "utf-8")
    traj, tracks, summary = tables()
    doc = video_report(traj, tracks, summary, template_dirs=[tmp_path])
    check_html(doc)
    assert "#123456" in doc and "--bg-alt" not in doc  # the packaged CSS is replaced
    summaries, all_tracks, log = batch_tables()
    target = write_batch_report(summaries, all_tracks, log, tmp_path / "b.html",
                                template_dirs=[str(tmp_path)])
    assert "lab brand" in target.read_text(encoding="utf-8")
    assert "#123456" not in video_report(traj, tracks, summary)  # default unchanged


def test_own_templates_still_autoescape(tmp_path):
    (tmp_path / "video.html.j2").write_text(
        '{% extends "base.html.j2" %}{% block main %}<h1>{{ name }}</h1>'
        "<p>{{ path|wbr }}</p>{% endblock %}", "utf-8")
    traj, tracks, summary = tables(name="<script>x</script>.avi")
    summary["path"] = "/d/<i>/a.avi"
    doc = video_report(traj, tracks, summary, template_dirs=[tmp_path])
    check_html(doc)
    assert "<script>" not in doc
    assert "<h1>&lt;script&gt;x&lt;/script&gt;.avi</h1>" in doc
    assert "/<wbr>&lt;i&gt;/<wbr>a.avi" in doc


def test_batch_report_links_cannot_carry_a_scheme():
    summaries, tracks, log = batch_tables()
    summaries.loc[0, "report"] = 'javascript:alert("x")'
    parser = check_html(batch_report(summaries, tracks, log))
    assert len(parser.hrefs) == 1
    assert not parser.hrefs[0].lower().startswith("javascript:")
    assert ":" not in parser.hrefs[0] and '"' not in parser.hrefs[0]


def test_contexts_hold_plain_text():
    traj, tracks, summary = tables(name="<b>.avi")
    ctx = video_context(traj, tracks, summary)
    assert ctx["name"] == "<b>.avi"  # escaping is the template's job
    assert [c.key for c in ctx["cards"]][:2] == ["Tracks", "Progressive"]
    assert ctx["cards"][1].value == "50.0%"
    assert ctx["n_tracks"] == 2 and len(ctx["track_rows"]) == 2
    assert ctx["trajectory_plot"].src.startswith("data:image/png;base64,")
    summaries, all_tracks, log = batch_tables()
    bctx = batch_context(summaries, all_tracks, log)
    assert bctx["counts"] == {"inputs": 2, "ok": 1, "skipped": 0, "failed": 1}
    assert [v["status"] for v in bctx["videos"]] == ["ok", "failed"]
    assert bctx["failed"][0]["file"] == "/data/bad <1>.avi"


@pytest.mark.parametrize(("value", "decimals", "unit", "expected"), [
    (1.2345, 2, "", "1.23"), (3.6, None, "", "4"), (None, 1, "", "—"), (np.nan, 1, "%", "—"),
    ("sperm", None, "", "sperm"), ("sperm", 1, "", "—"), (50.0, 1, "%", "50.0%"),
])
def test_fmt(value, decimals, unit, expected):
    assert fmt(value, decimals, unit) == expected


def test_figures_draw_pngs():
    traj, tracks, summary = tables()
    classed = with_classes(tracks)
    for fig in (trajectory_figure(traj, classed, summary), histogram_figure(classed)):
        uri = png_data_uri(fig)
        assert base64.b64decode(uri.split(",", 1)[1])[:4] == b"\x89PNG"
        assert display_width(fig) > 500
    assert class_bar_figure([], []) is None


def test_one_template_dir_may_be_given_as_is(tmp_path):
    (tmp_path / "report.css").write_text("h1 { color: #654321; }\n", "utf-8")
    traj, tracks, summary = tables()
    assert "#654321" in video_report(traj, tracks, summary, template_dirs=tmp_path)


@pytest.mark.parametrize("screening,shown", [("True", False), (True, False), ("False", True)])
def test_batch_normal_forms_card_only_from_a_validated_model(screening, shown):
    summaries, tracks, log = batch_tables()
    summaries.loc[0, ["morphology_model", "morphology_screening", "n_morphology_assessed",
                      "pct_normal_forms"]] = ["head-shape.onnx", screening, 10, 30.0]
    cards = {c.key: c for c in batch_context(summaries, tracks, log)["cards"]}
    card = cards["Normal forms"]
    assert (card.value == "30.0%") is shown
    assert ("screening" in card.detail) is not shown
