"""Input sources and output writers."""
