"""A pool of worker processes for tasks over one series set: compare's models trained at once
(``comparing.in_processes``), and tune's workers.

Each worker is a fresh interpreter (spawned: forking a process whose torch has started threads is
unsafe), receives the series once, and runs the tasks it is handed (module-level functions, so that
a worker can import them: compare's ``comparing.train_and_score`` trains and scores a model exactly as
in-process) on the threads the parent chose. The parent owns interrupts: the workers start with Ctrl-C ignored, and the parent ends them with SIGTERM, on which a
worker unwinds the model it is training (so that no half-written checkpoint is left) and exits.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable

from .errors import UsageError

if TYPE_CHECKING:
    from .data import SeriesSet


def run_tasks(series: "SeriesSet", threads: int, jobs: int, task: Callable[..., Any], calls: dict[str, tuple],
              finished: Callable[[str, Any], None] | None = None) -> None:
    """``task(series, *calls[key])`` for every key, in ``jobs`` worker processes on ``threads`` torch
    threads each (``task`` a module-level function); ``finished(key, result)`` as each is done. The
    series goes to each worker once. On an error in a task or an interrupt (KeyboardInterrupt: Ctrl-C,
    SIGTERM) the workers are ended at once and the exception is raised here."""
    import multiprocessing
    import signal
    import threading
    from concurrent.futures import ProcessPoolExecutor, as_completed

    executor = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start, initargs=(series, threads))
    try:
        # The workers start (in submit) with Ctrl-C ignored, inherited from here: an interrupt while
        # they import is not theirs to report either.
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            futures = {executor.submit(_call, task, *arguments): key for key, arguments in calls.items()}
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)
        for future in as_completed(futures):
            result = future.result()
            if finished:
                finished(futures[future], result)
    except BaseException:
        _end_workers(executor)
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _end_workers(executor) -> None:
    """End the workers now, models in training included (ProcessPoolExecutor ends them only after
    their current task, unless it has ``terminate_workers``: Python 3.14 and later)."""
    if hasattr(executor, "terminate_workers"):
        executor.terminate_workers()
        return
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        process.terminate()


_WORKER: dict[str, Any] = {}  # in a worker process: the series, and whether a model is in training


def _start(series: "SeriesSet", threads: int) -> None:
    """A worker: keep the series, use ``threads`` torch threads, leave interrupts to the parent."""
    import signal

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # already ignored from the start (see run_tasks)
    signal.signal(signal.SIGTERM, _stop)
    torch.set_num_threads(threads)
    _WORKER.update(series=series, busy=False)


def _stop(signum, frame) -> None:
    """SIGTERM from the parent: unwind a model in training (files being written are removed on the
    way), or end an idle worker at once."""
    if _WORKER.get("busy"):
        raise KeyboardInterrupt
    os._exit(130)


def _call(task: Callable[..., Any], *arguments: Any) -> Any:
    _WORKER["busy"] = True
    try:
        return task(_WORKER["series"], *arguments)
    except KeyboardInterrupt:  # ended by the parent, after unwinding
        os._exit(130)
    finally:
        _WORKER["busy"] = False


def available_cores() -> int:
    """The cores this process may run on (its affinity mask)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def jobs_for_cores(jobs: int, threads: int) -> int:
    """compare's and tune's --jobs: the processes to train in (0 = the cores available over the threads per model),
    checked so that the threads of all jobs fit the cores available to this process."""
    cores = available_cores()
    per_model = threads or 1
    if jobs < 0:
        raise UsageError(f"--jobs {jobs}: give the number of models to train at once (1 or more), or 0 for as "
                         "many as the cores allow")
    if jobs == 0:
        return max(1, cores // per_model)
    if jobs > 1 and jobs * per_model > cores:
        raise UsageError(f"--jobs {jobs} with {per_model} thread{'s' if per_model > 1 else ''} per model needs "
                         f"{jobs * per_model} cores; {cores} are available: lower --jobs or --threads")
    return jobs
