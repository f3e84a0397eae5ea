"""Overlays and reports of results."""

#: Colour of each motility class (colour-blind-friendly "Dark2" hues), shared by the HTML
#: report and the overlay video. Tracks too short to classify are "unclassified".
MOTILITY_COLOURS: dict[str, str] = {
    "progressive": "#1b9e77",
    "non_progressive": "#d95f02",
    "immotile": "#7570b3",
    "unclassified": "#999999",
}

__all__ = ["MOTILITY_COLOURS"]
