"""Command line: ``detect-track VIDEO`` and its sub-commands.

Argument parsing and printing only; the work is done by :mod:`detect_track.pipeline`,
:mod:`detect_track.batch`, :mod:`detect_track.stills`, :mod:`detect_track.synth`,
:mod:`detect_track.eval` and :mod:`detect_track.training`. Errors a user can cause are
reported on one line with a non-zero exit status, never with a traceback.

One module per command (:mod:`~detect_track.cli.run` for ``detect-track VIDEO``,
:mod:`~detect_track.cli.track`, :mod:`~detect_track.cli.synth`, ...), each with a
``main(argv) -> int``; :data:`~detect_track.cli.commands.COMMANDS` names them, and a
command's module (and the libraries it needs) is imported only when it runs.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import contextlib  # noqa: E402
import sys  # noqa: E402
from collections.abc import Iterator, Sequence  # noqa: E402
from typing import Any  # noqa: E402

from detect_track.cli.commands import COMMANDS, SHORT_USAGE  # noqa: E402
from detect_track.cli.shared import EXIT_INTERNAL_ERROR, EXIT_USER_ERROR, PROG  # noqa: E402
from detect_track.errors import DetectTrackError  # noqa: E402

__all__ = ["EXIT_TERMINATED", "Terminated", "main"]

#: Exit status after SIGTERM (128 + 15, as a shell reports a process it terminated).
EXIT_TERMINATED = 143
#: Exit status after Ctrl-C (128 + 2).
EXIT_INTERRUPTED = 130


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, Slurm, ``docker stop``), raised where the program is.

    So the same clean-up as for Ctrl-C runs: temporary files removed, locks released.
    """


def _one_line(message: str, limit: int = 2000) -> str:
    """A message on one line (a library's multi-line text folded), at most ``limit`` chars."""
    text = " ".join(message.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _on_sigterm(signum: int, frame: Any) -> None:
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends us at once
    raise Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while a command runs (main thread only)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _dispatch(argv: list[str]) -> int:
    """Run the command ``argv`` names; no arguments: the short usage (exit status 2)."""
    if not argv:
        print(SHORT_USAGE, end="", file=sys.stderr)
        return EXIT_USER_ERROR
    command = COMMANDS.get(argv[0])
    if command is not None:
        return command.handler()(argv[1:])
    from detect_track.cli.run import main as run_main

    return run_main(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``detect-track`` console script.

    Args:
        argv: The command line without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 done, 2 a user error (one line on stderr), 3 some inputs of a
        batch failed, 1 an internal error, 130 / 143 interrupted / terminated.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    from detect_track.trust import TRUST_ENV

    trust = os.environ.get(TRUST_ENV)  # --trust-model holds for this command only
    try:
        with _sigterm_as_interrupt():
            return _dispatch(argv)
    except DetectTrackError as exc:
        print(f"{PROG}: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # output piped into `head` & co.: not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Terminated:
        print(f"{PROG}: terminated (SIGTERM; finished outputs are complete, nothing "
              "half-written)", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted (finished outputs are complete; nothing half-written)",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        print(f"{PROG}: error: out of memory", file=sys.stderr)
        return EXIT_INTERNAL_ERROR
    except OSError as exc:  # a file the system refuses: name too long, permission, disk full
        if debug:
            raise
        name = str(exc.filename) if exc.filename is not None else ""
        name = name if len(name) <= 120 else name[:117] + "..."
        print(f"{PROG}: error: {_one_line(exc.strerror or str(exc))}"
              + (f": {name}" if name else ""), file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as exc:  # last resort: never show a traceback to a lab user
        if debug:
            raise
        print(f"{PROG}: internal error: {type(exc).__name__}: {_one_line(str(exc))} "
              "(re-run with --debug for details, and please report it)", file=sys.stderr)
        return EXIT_INTERNAL_ERROR
    finally:
        if trust is None:
            os.environ.pop(TRUST_ENV, None)
        else:
            os.environ[TRUST_ENV] = trust
