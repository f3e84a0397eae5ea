"""Exceptions raised by detect-track.

Every error a user can cause (bad file, bad option, bad config) is a
:class:`DetectTrackError`; the command line prints its message on one line and
exits with a non-zero status, never a traceback.
"""


class DetectTrackError(Exception):
    """Base class of all errors caused by user input."""


class InputError(DetectTrackError):
    """An input file is missing, unreadable, corrupt or unsuitable."""


class ConfigError(DetectTrackError):
    """A configuration value or key is invalid."""


class OutputError(DetectTrackError):
    """An output location cannot be written."""
