"""The lock of an output folder: one batch (or single run) writes into it at a time."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from detect_track.errors import ConfigError
from detect_track.io.export import remove_stale_temporaries

#: The lock file in an output folder; it holds the locking process's id.
LOCK_FILE = ".detect-track-batch.lock"


@contextlib.contextmanager
def output_lock(out: Path, what: str = "run") -> Iterator[None]:
    """Only one batch or run writes into a folder at a time; a dead one's lock is taken over.

    The temporary files a killed run left in ``out`` are removed once the lock is held.

    Args:
        out: The output folder.
        what: What holds it, for the message (``batch``, ``run``).

    Raises:
        ConfigError: If a running batch (or single run) holds the folder.
    """
    lock = out / LOCK_FILE
    for _attempt in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and _alive(pid):
                raise ConfigError(f"another detect-track {what} (process {pid}) is writing "
                                  f"into {out}; wait for it or choose another --out") from None
            lock.unlink(missing_ok=True)  # left by a killed batch
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        break
    else:  # pragma: no cover - lost a race twice
        raise ConfigError(f"cannot lock {out} for this batch")
    try:
        remove_stale_temporaries(out)  # a killed batch's half-written tables
        yield
    finally:
        lock.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (POSIX; elsewhere a lock is assumed stale)."""
    if os.name != "posix":
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
