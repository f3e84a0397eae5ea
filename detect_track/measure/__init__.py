"""Measuring tracks: kinematics per track, motility class per track, per-sample statistics.

* :mod:`~detect_track.measure.kinematics`: VCL, VSL, VAP, LIN, STR, WOB, ALH, BCF, MAD.
* :mod:`~detect_track.measure.motility`: WHO motility classes and grades per track.
* :mod:`~detect_track.measure.sample`: counts and percentages per sample, concentration,
  plausibility warnings; pooling the fields of one sample.
* :mod:`~detect_track.measure.clinical`: the clinical block: 95 % Wilson intervals, the WHO
  6th-edition lower reference limits (one table) and flags, kinematics per class.
"""
