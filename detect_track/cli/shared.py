"""What the commands share: the parser class, common options, output folders, progress bars.

Imports nothing heavy at module level: ``detect-track --help`` builds its parsers from
this module without loading NumPy, pandas, OpenCV or torch.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from detect_track.errors import ConfigError

PROG = "detect-track"
#: Exit status of a command a user got wrong (bad option, missing file, bad setting).
EXIT_USER_ERROR = 2
#: Exit status of a bug (an exception nobody foresaw).
EXIT_INTERNAL_ERROR = 1
#: Exit status of a batch or a set of images in which some inputs failed.
EXIT_SOME_FAILED = 3

#: Names the help lists without importing the detectors and trackers (which load OpenCV
#: and SciPy); a test keeps them equal to the registries.
DETECTOR_NAMES = ("classical", "effdet", "yolo")
TRACKER_NAMES = ("botsort", "bytetrack", "sort", "trackpy")
#: ``--export`` formats (:data:`detect_track.io.export.EXPORT_FORMATS`, which loads pandas).
EXPORT_FORMATS = ("mot", "xlsx", "parquet")
#: ``--csv-dialect`` names (:data:`detect_track.io.export.CSV_DIALECTS`).
CSV_DIALECTS = ("standard", "excel-eu")
#: The bundled presets (``detect_track/configs/*.yaml``; see :mod:`detect_track.config`).
PRESET_DIR = Path(__file__).resolve().parent.parent / "configs"


def preset_names() -> list[str]:
    """Names of the bundled presets, found without importing :mod:`detect_track.config`."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


class Parser(argparse.ArgumentParser):
    """ArgumentParser that reports errors as one line plus a usage hint."""

    def error(self, message: str) -> None:  # type: ignore[override]
        """Print one line and exit with status 2."""
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} "
                                    f"(run '{self.prog} --help' for usage)\n")


def parser(prog: str, description: str | None = None, epilog: str | None = None, *,
           raw: bool = True) -> Parser:
    """A :class:`Parser` for ``detect-track <prog>``.

    Args:
        prog: The command after ``detect-track`` (empty for the bare ``detect-track VIDEO``).
        description: Text above the options.
        epilog: Text below the options.
        raw: Keep the line breaks of ``description`` and ``epilog`` (else they are wrapped).
    """
    return Parser(prog=f"{PROG} {prog}".strip(), description=description, epilog=epilog,
                  formatter_class=(argparse.RawDescriptionHelpFormatter if raw
                                   else argparse.HelpFormatter))


class Action(NamedTuple):
    """One action of a command with sub-parsers (``train yolo``, ``morphology predict``).

    Attributes:
        help: What it does, in one line.
        add_options: Adds its arguments to its sub-parser.
        run: Runs it on the parsed arguments.
    """

    help: str
    add_options: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], Any]


def action_parser(prog: str, description: str, actions: dict[str, Action],
                  dest: str) -> Parser:
    """A command's parser with one sub-parser per action, each with ``--quiet``.

    Args:
        prog: The command after ``detect-track``.
        description: The command's help text.
        actions: The actions by name (the dispatch table).
        dest: Attribute of the parsed arguments that holds the action's name.
    """
    p = parser(prog, description)
    sub = p.add_subparsers(dest=dest, metavar=dest.upper(), required=True,
                           help=" | ".join(actions))
    for name, action in actions.items():
        a = sub.add_parser(name, help=action.help, description=action.help)
        action.add_options(a)
        a.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    return p


def float_arg(name: str) -> Callable[[str], float]:
    """An argparse ``type`` that reads a float and names the option when it cannot.

    Args:
        name: The option, e.g. ``--fps``, quoted in the error.
    """

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        return value

    return parse


def dash_names(argv: Sequence[str]) -> list[str]:
    """Arguments after ``--`` as plain names even when they start with ``-`` (``-x.avi``).

    argparse's intermixed parsing loses what follows ``--``; ``./-x.avi`` names the same
    file and cannot be taken for an option. They come first, so that the input is the
    first positional argument even when ``KEY=VALUE`` overrides precede ``--``.

    Args:
        argv: The command line after the command name.

    Returns:
        The arguments to hand to ``parse_intermixed_args``.
    """
    argv = list(argv)
    if "--" not in argv:
        return argv
    i = argv.index("--")
    return [f"./{a}" if a.startswith("-") else a for a in argv[i + 1:]] + argv[:i]


def add_trust_option(p: argparse.ArgumentParser) -> None:
    """``--trust-model``: unpickle model files from outside ``weights/``."""
    p.add_argument("--trust-model", action="store_true",
                   help="load .pt model files from outside weights/ even when they need "
                   "Python's unpickler (which can run code they hold): only for files you trust")


def apply_trust(args: argparse.Namespace) -> None:
    """``--trust-model``: this process and the workers it starts may unpickle any model."""
    if getattr(args, "trust_model", False):
        from detect_track.trust import TRUST_ENV

        os.environ[TRUST_ENV] = "1"


def add_output_options(p: argparse.ArgumentParser) -> None:
    """``--export``, ``--csv-dialect``, ``--quiet``, ``--debug``: for ``VIDEO`` and ``track``."""
    p.add_argument("--export", action="append", default=[], metavar="FORMAT",
                   choices=list(EXPORT_FORMATS),
                   help="also write FORMAT: mot = mot.txt, MOTChallenge tracks for TrackEval; "
                   "xlsx = results.xlsx (summary, tracks and trajectories sheets); parquet = "
                   "trajectories.parquet and tracks.parquet (repeatable)")
    p.add_argument("--csv-dialect", choices=list(CSV_DIALECTS), default="standard",
                   help="CSV files: standard (comma, decimal point; default) or excel-eu "
                   "(semicolon, decimal comma, as Excel reads CSV in most European locales)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument("--debug", action="store_true", help="show a traceback on internal errors")


def load_cfg(preset: str | None, overrides: Sequence[str], **extra: Any) -> Any:
    """The configuration of a run: preset or file, ``KEY=VALUE`` overrides, option values.

    Args:
        preset: ``--config`` (a preset name or a YAML file), or None for the defaults.
        overrides: ``KEY=VALUE`` texts from the command line.
        **extra: Dotted keys set by options; None values are left out.

    Returns:
        The validated :class:`detect_track.config.Config`.
    """
    from detect_track.config import load_config, parse_overrides

    ov: dict[str, Any] = parse_overrides(list(overrides))
    ov.update({k: v for k, v in extra.items() if v is not None})
    return load_config(preset, ov)


def progress_bar(desc: str, quiet: bool) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A tqdm bar on stderr as a ``progress(done, total)`` callback and its ``close``.

    Args:
        desc: Label of the bar.
        quiet: No bar at all.
    """
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit="frame", disable=True if quiet else None, file=sys.stderr,
               dynamic_ncols=True, leave=False)

    def update(done: int, total: int) -> None:
        if total > 0 and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    return update, bar.close


def logger(quiet: bool) -> Callable[[str], None]:
    """A ``log(message)`` callback: a line on stderr, or nothing when ``quiet``."""
    if quiet:
        return lambda _m: None
    return lambda m: print(m, file=sys.stderr, flush=True)


def output_folder(given: str | None, stem: str) -> Path:
    """``--out``, or ``results/<stem>`` with the stem made valid UTF-8.

    Args:
        given: The ``--out`` value, or None.
        stem: The input's name, for the default folder.

    Raises:
        ConfigError: If ``--out`` is not valid UTF-8 (OpenCV cannot write there).
    """
    from detect_track.io.video import printable_name

    if given is None:
        return Path("results") / printable_name(stem)
    try:
        given.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"--out {printable_name(given)!r}: the folder name is not valid "
                          "UTF-8; choose another") from None
    return Path(given)


@contextlib.contextmanager
def run_folder(out: Path) -> Iterator[Path]:
    """The output folder of one run, held while the run writes into it.

    Created and checked, locked against a second run into it, cleared of what a killed
    run left (temporary files), and removed again when the run failed and left it empty.

    Args:
        out: The folder.

    Yields:
        The same folder, locked.

    Raises:
        OutputError: If the folder cannot be written.
        ConfigError: If another detect-track run writes into it.
    """
    from detect_track.batch import output_lock
    from detect_track.io.export import ensure_output_dir, remove_stale_temporaries

    created = not out.exists()
    ensure_output_dir(out)  # fail before the long work, not after
    try:
        with output_lock(out):
            try:
                yield out
            except BaseException:  # e.g. SIGTERM between creating a temporary file and the
                remove_stale_temporaries(out)  # code that would remove it: ours, we hold
                raise  # the lock
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()  # only if empty
        raise
