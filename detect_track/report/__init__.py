"""Overlays and reports of results.

* :mod:`~detect_track.report.html`: the HTML reports of a video and of a batch (renders the
  Jinja templates in ``templates/``: ``video.html.j2``, ``batch.html.j2``, ``base.html.j2``,
  ``macros.html.j2`` and the stylesheet ``report.css``).
* :mod:`~detect_track.report.context`: what the templates show, built from the tables.
* :mod:`~detect_track.report.figures`: the matplotlib figures embedded in the reports.
* :mod:`~detect_track.report.formatting`: class names and number formatting they share.
* :mod:`~detect_track.report.overlay`: the overlay video (reads the source, writes the file).
* :mod:`~detect_track.report.overlay_renderer`: draws boxes, trails, legend, scale bar and
  time onto each frame.
"""

#: Colour of each motility class (colour-blind-friendly "Dark2" hues), shared by the HTML
#: report and the overlay video. Tracks too short to classify are "unclassified".
MOTILITY_COLOURS: dict[str, str] = {
    "progressive": "#1b9e77",
    "non_progressive": "#d95f02",
    "immotile": "#7570b3",
    "unclassified": "#999999",
}

__all__ = ["MOTILITY_COLOURS"]
