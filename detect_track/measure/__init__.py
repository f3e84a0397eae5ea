"""Measuring tracks: kinematics per track, motility class per track, per-sample statistics.

* :mod:`~detect_track.measure.kinematics`: VCL, VSL, VAP, LIN, STR, WOB, ALH, BCF, MAD.
* :mod:`~detect_track.measure.motility`: WHO motility classes and grades per track.
* :mod:`~detect_track.measure.sample`: counts and percentages per sample, concentration,
  plausibility warnings.
"""
