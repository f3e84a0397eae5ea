"""Running a batch's jobs: in this process, in a local process pool, or on Dask.

:func:`run_batch` locks the output folder, runs every job, rewrites ``batch_log.csv``
after each finished one and writes the combined tables at the end. Pool workers are
spawned (torch and OpenCV threads do not survive ``fork``), send their frame counts back
through a queue, end with the batch process, and are interrupted on Ctrl-C so that they
remove their half-written files. Library code: reports progress through callbacks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detect_track.batch.combine import combine, write_log
from detect_track.batch.jobs import BatchItem, JobSpec, process_item
from detect_track.batch.locks import output_lock
from detect_track.errors import ConfigError
from detect_track.io.export import ensure_output_dir, remove_stale_temporaries
from detect_track.io.video import printable_name

#: Values of ``run_batch(executor=...)``.
EXECUTORS = ("local", "dask")
#: Seconds to wait for a Dask scheduler to answer (``--dask-address``).
DASK_CONNECT_S = 20.0

#: ``on_event(kind, data)``: the progress callback of :func:`run_batch`.
EventFn = Callable[[str, dict[str, Any]], None]

_PROGRESS_QUEUE: Any = None  # a pool worker's queue to the batch process (set at start)
_BUSY = False  # a pool worker is running a job (SIGINT then cleans up; idle, it just ends)


def _worker_sigint(signum: int, frame: Any) -> None:  # pragma: no cover - child process
    """SIGINT in a pool worker: interrupt the job (its files are cleaned up) or end quietly."""
    if _BUSY:
        raise KeyboardInterrupt
    os._exit(130)


def _worker_init(progress_queue: Any = None,
                 parent_pid: int | None = None) -> None:  # pragma: no cover - child process
    """Start a pool worker: quiet OpenCV, keep the progress queue, end with the batch."""
    global _PROGRESS_QUEUE
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    _PROGRESS_QUEUE = progress_queue
    # the worker started with SIGINT ignored (see _run_pool): a stop that came while it was
    # still starting left no traceback; from here on it interrupts the job or ends the worker
    signal.signal(signal.SIGINT, _worker_sigint)
    _exit_with_parent(parent_pid)


def _exit_with_parent(parent_pid: int | None = None, poll_s: float = 0.5) -> None:
    """End this worker process when the batch process dies (even by ``kill -9``).

    A pool worker whose parent is gone would otherwise finish its video, keep its
    memory and wait forever. Its finished outputs are complete, so a rerun may trust them.
    """
    import threading

    # the batch process's pid comes with the job (a worker that was still starting when its
    # parent died already has a new parent: comparing with that one would never fire)
    parent = os.getppid() if parent_pid is None else parent_pid
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="detect-track-parent-watch", daemon=True).start()


def _process_in_pool(item: BatchItem, out_root: str, spec: JobSpec, force: bool,
                     index: int) -> dict[str, Any]:  # pragma: no cover - child process
    """:func:`process_item` in a pool worker, sending every 10th frame count home."""
    queue = _PROGRESS_QUEUE

    def progress(done: int, total: int) -> None:
        if queue is not None and (done % 10 == 0 or done == total):
            queue.put((index, done, total))

    global _BUSY
    _BUSY = True
    try:
        return process_item(item, out_root, spec, force, progress)
    finally:
        _BUSY = False


@dataclass
class BatchOutcome:
    """What a batch did.

    Attributes:
        records: One ``batch_log.csv`` row per input, in input order.
        paths: Combined outputs written, by name.
    """

    records: list[dict[str, Any]]
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def n_failed(self) -> int:
        """Inputs that failed."""
        return sum(r["status"] == "failed" for r in self.records)


def run_batch(items: Sequence[BatchItem], out_root: str | os.PathLike[str], spec: JobSpec, *,
              workers: int = 1, executor: str = "local", dask_address: str | None = None,
              force: bool = False, on_event: EventFn | None = None) -> BatchOutcome:
    """Process every input, then write the combined tables and the batch report.

    ``batch_log.csv`` is rewritten (atomically) after every finished input, so a killed
    batch leaves an accurate log of what completed.

    Args:
        items: Inputs from :func:`discover`.
        out_root: Batch output folder.
        spec: Settings of every job.
        workers: Parallel jobs (local processes, or Dask workers of a LocalCluster).
        executor: ``"local"`` (this process when ``workers`` is 1, else a process pool)
            or ``"dask"`` (Dask distributed: a LocalCluster, or ``dask_address``).
        dask_address: Scheduler of an existing Dask cluster, e.g. ``tcp://host:8786``.
        force: Redo inputs whose outputs are complete.
        on_event: Called as ``on_event(kind, data)`` with kind ``"start"`` (``n_items``),
            ``"frames"`` (``index, done, total``) and ``"item"`` (``index``, ``record``).

    Returns:
        The per-input records and the combined outputs written.

    Raises:
        ConfigError: Unknown executor, workers < 1, or the Dask cluster cannot be reached.
    """
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor '{executor}' (available: {', '.join(EXECUTORS)})")
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    workers = min(workers, max(1, len(items)))  # no idle processes (--workers 10000)
    out = ensure_output_dir(out_root)
    with output_lock(out, "batch"):
        return _run_batch(items, out, spec, workers, executor, dask_address, force,
                          on_event or (lambda _k, _d: None))


def _run_batch(items: Sequence[BatchItem], out: Path, spec: JobSpec, workers: int,
               executor: str, dask_address: str | None, force: bool, emit: EventFn
               ) -> BatchOutcome:
    """:func:`run_batch` once the output folder is locked."""
    if spec.threads <= 0:
        cores = os.cpu_count() or 1
        spec = dataclasses.replace(spec, threads=max(1, cores // workers))
    records: list[dict[str, Any] | None] = [None] * len(items)
    emit("start", {"n_items": len(items)})

    def finished(index: int, record: dict[str, Any]) -> None:
        records[index] = record
        write_log([r for r in records if r is not None], out)
        emit("item", {"index": index, "record": record})

    if executor == "dask":
        _run_dask(items, out, spec, force, workers, dask_address, finished, emit)
    elif workers == 1:
        for i, item in enumerate(items):
            def progress(done: int, total: int, i: int = i) -> None:
                emit("frames", {"index": i, "done": done, "total": total})
            finished(i, process_item(item, out, spec, force, progress))
    else:
        _run_pool(items, out, spec, force, workers, finished, emit)
    done = [r for r in records if r is not None]
    outcome = BatchOutcome(done)
    outcome.paths = combine(out, done, report=spec.report, csv_dialect=spec.csv_dialect)
    return outcome


def _run_pool(items: Sequence[BatchItem], out: Path, spec: JobSpec, force: bool, workers: int,
              finished: Callable[[int, dict[str, Any]], None], emit: EventFn) -> None:
    """Run the jobs in a pool of ``workers`` spawned processes, relaying their progress.

    Raises:
        KeyboardInterrupt: After stopping the workers and removing their half-written files.
    """
    import multiprocessing as mp
    import queue as queue_mod

    ctx = mp.get_context("spawn")  # torch and OpenCV threads do not survive fork
    q = ctx.Queue()  # handed over at worker start (no manager process to outlive us)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                             initargs=(q, os.getpid())) as pool:
        # workers are spawned while jobs are submitted: with SIGINT ignored meanwhile, they
        # inherit "ignore" and a stop during their start-up prints no traceback
        with _sigint_ignored():
            futures = {pool.submit(_process_in_pool, item, str(out), spec, force, i): i
                       for i, item in enumerate(items)}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                while True:
                    try:
                        index, n, total = q.get_nowait()
                    except queue_mod.Empty:
                        break
                    emit("frames", {"index": index, "done": n, "total": total})
                for fut in done:
                    i = futures[fut]
                    try:
                        record = fut.result()
                    except Exception as exc:  # noqa: BLE001 - a worker died (killed, OOM)
                        record = _crashed(items[i], exc)
                    finished(i, record)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM (which reaches this process only)
            _stop_workers(pool)
            for item in items:  # what a stopped worker left half-written (we hold the lock)
                if (out / item.rel).is_dir():
                    remove_stale_temporaries(out / item.rel)
            raise
    q.close()


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT in this (main) thread for the block; elsewhere do nothing."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _stop_workers(pool: ProcessPoolExecutor, grace_s: float = 3.0) -> None:
    """Interrupt the pool's workers now instead of waiting for their videos to finish.

    Each worker gets SIGINT, so that it removes its half-written files as on Ctrl-C; one
    still alive after ``grace_s`` seconds is terminated.
    """
    import signal

    procs = list((getattr(pool, "_processes", None) or {}).values())  # before shutdown()
    pool.shutdown(wait=False, cancel_futures=True)  # ... which forgets them
    for proc in procs:
        with contextlib.suppress(OSError, ValueError):
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGINT)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.terminate()
            proc.join(2.0)


def _crashed(item: BatchItem, exc: BaseException) -> dict[str, Any]:
    """The ``batch_log.csv`` record of a job whose worker died."""
    return {"file": printable_name(str(item.path)), "output": item.rel, "status": "failed",
            "error": printable_name(f"worker crashed: {type(exc).__name__}: {exc}"),
            "warnings": "",
            "elapsed_s": None, "n_frames": None, "n_tracks": None, "finished_at": "", "key": ""}


def _process_on_dask(item: BatchItem, out_root: str, spec: JobSpec, force: bool, index: int,
                     queue_name: str) -> dict[str, Any]:  # pragma: no cover - on a worker
    """:func:`process_item` as a Dask task, sending every 25th frame count to the client."""
    from distributed import Queue

    queue = Queue(queue_name)

    def progress(done: int, total: int) -> None:
        if done % 25 == 0 or done == total:
            try:
                queue.put((index, done, total))
            except Exception:  # noqa: BLE001 - progress must never fail a job
                pass

    return process_item(item, out_root, spec, force, progress)


#: Seconds to wait for a Dask scheduler to answer (``--dask-address``).

def _connect_dask(client_cls: Any, address: str) -> Any:
    """A Dask client of the scheduler at ``address``, or a ConfigError within a bounded time.

    Something that accepts the connection but never answers (not a Dask scheduler) would
    hang ``Client`` for ever, and garbage in reply surfaces as odd errors (a huge frame
    length: MemoryError); so the client connects in a helper thread that is given up on
    after :data:`DASK_CONNECT_S` seconds.

    Raises:
        ConfigError: Unreachable, silent, or not speaking the Dask protocol.
    """
    import threading

    box: dict[str, Any] = {}

    def connect() -> None:
        try:
            box["client"] = client_cls(address, timeout=f"{DASK_CONNECT_S}s")
        except Exception as exc:  # noqa: BLE001 - reported below, in this thread's caller
            box["error"] = exc

    thread = threading.Thread(target=connect, name="detect-track-dask-connect", daemon=True)
    thread.start()
    thread.join(DASK_CONNECT_S + 5.0)
    if thread.is_alive():
        raise ConfigError(f"no Dask scheduler answered at {address} within "
                          f"{DASK_CONNECT_S:g} s (is that address a Dask scheduler?)")
    exc = box.get("error")
    if isinstance(exc, (OSError, TimeoutError)):
        raise ConfigError(f"cannot reach the Dask scheduler at {address}: {exc}")
    if exc is not None:
        raise ConfigError(f"{address} did not answer as a Dask scheduler "
                          f"({type(exc).__name__}: {exc})")
    return box["client"]


def _run_dask(items: Sequence[BatchItem], out: Path, spec: JobSpec, force: bool, workers: int,
              address: str | None, finished: Callable[[int, dict[str, Any]], None],
              emit: EventFn) -> None:
    """Run the jobs as Dask tasks (a LocalCluster, or the scheduler at ``address``).

    Raises:
        ConfigError: Dask distributed is not installed or the scheduler cannot be reached.
    """
    try:
        from distributed import Client, LocalCluster, Queue, wait
    except ImportError as exc:
        raise ConfigError("--executor dask needs Dask distributed: pip install "
                          "'detect-track[batch]' (or: pip install 'dask[distributed]')") from exc
    import uuid

    cluster = None
    try:
        if address:
            client = _connect_dask(Client, address)
        else:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=40)
            client = Client(cluster)
        with client:
            queue = Queue(f"detect-track-progress-{uuid.uuid4().hex}", client=client)
            futures = [client.submit(_process_on_dask, item, str(out), spec, force, i,
                                     queue.name, key=f"detect-track-{i}-{item.rel}",
                                     pure=False)
                       for i, item in enumerate(items)]
            index = {f.key: i for i, f in enumerate(futures)}
            pending = set(futures)
            while pending:
                try:
                    done, pending = wait(pending, timeout=0.5, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    done = set()
                for i, n, total in queue.get(batch=True) if queue.qsize() else []:
                    emit("frames", {"index": i, "done": n, "total": total})
                for fut in done:
                    i = index[fut.key]
                    try:
                        record = fut.result()
                    except Exception as exc:  # noqa: BLE001 - a worker died mid-task
                        record = _crashed(items[i], exc)
                    finished(i, record)
    finally:
        if cluster is not None:
            cluster.close()
