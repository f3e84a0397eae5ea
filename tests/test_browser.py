"""The reports in a real browser: headless Chromium opens each ``report.html``.

For each report (one video with its overlay, a folder of still images, a batch) a small
harness page next to it loads the report in an ``<iframe>`` and writes into its own DOM,
read back with ``--dump-dom``: the report's title, whether every image decoded (lazy ones
are made eager first), and, for each ``<video>``, its ``duration`` and ``error``. Chromium's
console (``--enable-logging=stderr``) must stay empty: the reports carry no script, so any
console message (a script error, a blocked resource) is a defect.

Chromium: ``$DETECT_TRACK_CHROMIUM`` or ``chromium`` / ``chromium-browser`` /
``google-chrome`` on the PATH (``make test`` installs Debian's ``chromium`` when it runs as
root with apt). Without it the tests skip with the reason printed (``pytest -rs`` and a
``SKIP browser tests`` line; the Makefile says so too), never silently; with
``DETECT_TRACK_REQUIRE_BROWSER=1`` a missing browser fails them instead.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detect_track.cli import main
from tests.helpers import render_blobs, write_video

ROOT = Path(__file__).resolve().parent.parent
SLIDE = ROOT / "datasets" / "samples" / "slide_stained" / "slide.jpg"
CLASSICAL = ["--detector", "classical", "detector.classical.polarity=bright",
             "tracker.min_track_s=0.2", "-q"]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

#: The harness: loads ``report.html`` in a frame, then reports what the browser made of it.
HARNESS = """<!DOCTYPE html>
<html><body><pre id="result">pending</pre>
<iframe id="report" src="REPORT" width="1200" height="900"></iframe>
<script>
const out = document.getElementById("result");
const frame = document.getElementById("report");
function settle(el, events) {
  return new Promise(done => {
    for (const e of events) el.addEventListener(e, done, {once: true});
    setTimeout(done, 6000);
  });
}
frame.addEventListener("load", async () => {
  try {
    const doc = frame.contentDocument;
    const images = [...doc.images];
    for (const img of images) img.loading = "eager";
    await Promise.all(images.filter(i => !i.complete).map(i => settle(i, ["load", "error"])));
    const videos = [...doc.querySelectorAll("video")];
    await Promise.all(videos.filter(v => v.readyState < 1 && !v.error)
                            .map(v => settle(v, ["loadedmetadata", "error"])));
    out.textContent = JSON.stringify({
      title: doc.title,
      h1: (doc.querySelector("h1") || {}).textContent || "",
      images: images.map(i => ({src: i.getAttribute("src").slice(0, 80),
                                ok: i.complete && i.naturalWidth > 0})),
      videos: videos.map(v => ({src: v.currentSrc, duration: v.duration,
                                width: v.videoWidth, height: v.videoHeight,
                                error: v.error ? v.error.code + " " + v.error.message : null})),
      links: [...doc.querySelectorAll("a[href]")].map(a => a.getAttribute("href")),
    });
  } catch (e) {
    out.textContent = "harness error: " + e;
  }
});
</script></body></html>
"""


def find_chromium() -> str | None:
    """The Chromium executable, or None."""
    explicit = os.environ.get("DETECT_TRACK_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else shutil.which(explicit)
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    """Path of headless Chromium; skips, saying why, when there is none (or fails, on request)."""
    path = find_chromium()
    if path is None:
        reason = ("headless Chromium not found (looked for $DETECT_TRACK_CHROMIUM, "
                  + ", ".join(BROWSERS) + "): install Debian's chromium "
                  "(apt-get install chromium; `make test` does this when run as root)")
        if os.environ.get("DETECT_TRACK_REQUIRE_BROWSER") == "1":
            pytest.fail(f"the browser tests are required here: {reason}")
        print(f"\nSKIP browser tests: {reason}")
        pytest.skip(reason)
    return path


def open_in_browser(chromium: str, report: Path, tmp_path: Path) -> tuple[dict[str, Any], str]:
    """Load ``report`` through the harness; return its findings and the console lines.

    Raises:
        AssertionError: If Chromium fails or the harness reports nothing.
    """
    harness = report.parent / f"harness-{report.stem}.html"
    harness.write_text(HARNESS.replace("REPORT", report.name))
    profile = tmp_path / f"chromium-profile-{report.parent.name}"
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-extensions", "--mute-audio", f"--user-data-dir={profile}",
           "--allow-file-access-from-files", "--enable-logging=stderr", "--v=0",
           "--virtual-time-budget=15000", "--dump-dom", harness.as_uri()]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    finally:
        harness.unlink(missing_ok=True)
    assert run.returncode == 0, f"chromium failed ({run.returncode}): {run.stderr[-2000:]}"
    match = re.search(r'<pre id="result">(.*?)</pre>', run.stdout, re.S)
    assert match, f"no harness output in the DOM: {run.stdout[:500]}"
    text = html.unescape(match.group(1))
    assert text.startswith("{"), f"harness did not finish: {text[:300]}"
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    return json.loads(text), "\n".join(console)


def check_page(found: dict[str, Any], console: str, title_part: str) -> None:
    """The page loaded, shows its title, every image decoded, the console stayed empty."""
    assert title_part in found["title"] and found["h1"]
    broken = [i["src"] for i in found["images"] if not i["ok"]]
    assert not broken, f"images that did not load: {broken}"
    assert console == "", f"console messages:\n{console}"


def blob_video(path: Path, shift: int = 0) -> Path:
    """A small video of two bright blobs, one moving right (classical detector)."""
    frames = [render_blobs(np.array([[30 + i + shift, 40], [120, 90]]), seed=i)
              for i in range(30)]
    return write_video(path, frames, fps=25.0)


def test_video_report_and_its_overlay_play(chromium: str, tmp_path: Path) -> None:
    """The video report loads cleanly and its overlay video has a duration and no error."""
    video = blob_video(tmp_path / "two_cells.avi")
    out = tmp_path / "video"
    assert main([str(video), "--um-per-px", "0.7", "--out", str(out), "--overlay",
                 *CLASSICAL]) == 0
    found, console = open_in_browser(chromium, out / "report.html", tmp_path)
    check_page(found, console, "two_cells")
    assert len(found["images"]) >= 2  # trajectory plot, histograms
    assert len(found["videos"]) == 1, "the report embeds the overlay in a <video>"
    clip = found["videos"][0]
    assert clip["error"] is None, f"the overlay does not play: {clip['error']}"
    assert clip["duration"] == pytest.approx(30 / 25.0, abs=0.1)
    assert clip["width"] >= 160 and clip["height"] > 120  # the frame plus the legend strip
    assert clip["src"].endswith("overlay.mp4#t=0.1")


def test_still_image_report(chromium: str, tmp_path: Path) -> None:
    """A folder of slides: the report loads and every annotated image decodes."""
    folder = tmp_path / "slides"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        shutil.copyfile(SLIDE, folder / name)
    out = tmp_path / "stills"
    assert main([str(folder), "--config", "sperm-slide", "--um-per-px", "0.1", "--out",
                 str(out), "-q"]) == 0
    found, console = open_in_browser(chromium, out / "report.html", tmp_path)
    check_page(found, console, "slides")
    assert sorted(i["src"] for i in found["images"]) == ["annotated/a.png", "annotated/b.png"]
    assert found["videos"] == []


def test_batch_report(chromium: str, tmp_path: Path) -> None:
    """A batch of two videos: the batch report loads; its links reach the video reports."""
    folder = tmp_path / "videos"
    folder.mkdir()
    blob_video(folder / "one.avi")
    blob_video(folder / "two.avi", shift=10)
    out = tmp_path / "batch"
    assert main([str(folder), "--um-per-px", "0.7", "--out", str(out), *CLASSICAL]) == 0
    found, console = open_in_browser(chromium, out / "report.html", tmp_path)
    check_page(found, console, "")
    reports = [h for h in found["links"] if h.endswith("report.html")]
    assert len(reports) == 2 and all((out / h).is_file() for h in reports)
    for link in reports:  # the per-video reports of a batch load cleanly too
        found, console = open_in_browser(chromium, out / link, tmp_path)
        check_page(found, console, "")


def test_sample_report(chromium: str, tmp_path: Path) -> None:
    """A two-field sample: the pooled report loads; its links reach each field's report."""
    fields = [blob_video(tmp_path / "field1.avi"), blob_video(tmp_path / "field2.avi", 10)]
    out = tmp_path / "sample"
    assert main(["sample", *map(str, fields), "--sample-id", "S1", "--um-per-px", "0.7",
                 "--out", str(out), *CLASSICAL]) == 0
    found, console = open_in_browser(chromium, out / "report.html", tmp_path)
    check_page(found, console, "S1")
    reports = [h for h in found["links"] if h.endswith("report.html")]
    assert len(reports) == 2 and all((out / h).is_file() for h in reports)
