"""``seqcast predict --workers N`` (or ``--scheduler ADDRESS``): a forecast of a partitioned dataset on Dask.

The dataset is a folder of Parquet files; each file is one task. A worker process loads the checkpoint
once (then keeps it for every task it runs), reads its file, forecasts it and writes its own output
partition, ``OUTPUT/<file's name>.parquet``: nothing but a summary comes back to the client, so the
client's memory does not grow with the panel. Locally (``--workers N``) Dask starts N worker processes
of one thread each; with ``--scheduler tcp://host:8786`` the tasks go to a running Dask cluster, whose
workers must see the checkpoint, the dataset and the output folder at the same paths (a shared
filesystem) and have seqcast installed. Dask is the ``cluster`` extra: ``pip install 'seqcast[cluster]'``.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, InputError, SeqcastError, UsageError
from . import Reporter
from .forecast import PredictRequest


@dataclass(frozen=True)
class PartitionedForecast:
    output: Path
    partitions: int
    series: int
    rows: int  # forecast rows written
    seconds: float
    notes: tuple[str, ...]


def predict_partitions(request: PredictRequest, output: str, workers: int, scheduler: str | None,
                       reporter: Reporter) -> PartitionedForecast:
    """Forecast every Parquet file of the folder ``request.data`` on Dask, one output partition per file
    written into the folder ``output`` (created; files of the same name in it are replaced)."""
    from ..data import dataset_files

    _check(request, output, workers, scheduler)
    if not Path(request.checkpoint).is_file():  # read by the workers: said here, before any starts
        raise CheckpointError(f"{request.checkpoint}: no such checkpoint")
    files = dataset_files(request.data)
    if not files:
        raise InputError(f"{request.data}: --workers and --scheduler read a folder of Parquet files (a partitioned "
                         "dataset); for one file, leave them out")
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"{Path(f).stem}.parquet" for f in files]
    if len(set(names)) < len(names):
        raise InputError(f"{request.data}: two files share a name in different subfolders ({_first_repeat(names)}); "
                         "each partition's forecast is written under its file's name")
    started = time.perf_counter()
    client, cluster = _client(workers, scheduler)
    try:
        checkpoint = str(Path(request.checkpoint).resolve())
        futures = client.map(_predict_one, files, [str(folder.resolve() / n) for n in names], checkpoint=checkpoint,
                             reading=request.reading, horizon=request.horizon, levels=request.levels,
                             threads=request.threads or 1, pure=False)
        try:
            done = client.gather(futures)
        except SeqcastError:
            raise
        except Exception as exc:  # a worker that died (out of memory, killed): not a mistake in the input
            raise InputError(f"{request.data}: a Dask worker failed ({type(exc).__name__}: {exc}); give each worker "
                             "more memory or the dataset smaller files, and run again") from None
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    _one_file_per_series(files, [part.pop("ids") for part in done])
    notes = tuple(dict.fromkeys(n for part in done for n in part["notes"]))
    reporter.notes(list(notes))
    return PartitionedForecast(folder, len(files), sum(p["series"] for p in done), sum(p["rows"] for p in done),
                               time.perf_counter() - started, notes)


def _check(request: PredictRequest, output: str, workers: int, scheduler: str | None) -> None:
    if workers < 0 or (workers == 0 and not scheduler):
        raise UsageError(f"--workers {workers}: give the number of worker processes (1 or more), or --scheduler")
    if workers and scheduler:
        raise UsageError("--workers starts a local cluster and --scheduler uses a running one: give one of them")
    if output in ("-", "") or output.lower().endswith((".csv", ".parquet")):
        raise UsageError(f"-o {output or '-'}: with --workers or --scheduler the output is a folder, one Parquet "
                         "partition per input file; name a folder")
    if Path(output).resolve() == Path(request.data).resolve():
        raise UsageError(f"-o {output}: is the dataset read; name another folder for the forecasts")
    unsupported = [name for name, on in (("--future", request.future), ("--plot", request.plot),
                                         ("--record", request.record), ("--adapt", request.adapt)) if on]
    if unsupported:
        raise UsageError(f"{', '.join(unsupported)}: not with --workers or --scheduler (each partition is forecast on "
                         "its own); forecast without them, or one file at a time")


def _one_file_per_series(files: list[str], ids: list[list[str]]) -> None:
    """Each series must be whole in one file (a partition is forecast from its own rows): a series in two
    files (a dataset split by time rather than by series) is an error naming both."""
    seen: dict[str, int] = {}
    for k, part in enumerate(ids):
        for sid in part:
            first = seen.setdefault(sid, k)
            if first != k:
                raise InputError(f"{files[k]}: series {sid!r} is in {files[first]} too; each file was forecast from "
                                 "its own rows, so a series split between files (by time) was forecast from part of "
                                 "its history: partition the dataset by series, or predict without --workers")


def _first_repeat(names: list[str]) -> str:
    seen: set[str] = set()
    return next(n for n in names if n in seen or seen.add(n))


def _client(workers: int, scheduler: str | None):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise UsageError("--workers and --scheduler run on Dask: pip install 'seqcast[cluster]'") from None
    if scheduler:
        try:
            return Client(scheduler, timeout="30s"), None
        except (OSError, TimeoutError) as exc:
            raise UsageError(f"--scheduler {scheduler}: cannot reach the Dask scheduler ({exc}); start one "
                             "(`dask scheduler`) or check the address") from None
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=40)
    return Client(cluster), cluster


@functools.lru_cache(maxsize=2)
def _checkpoint(path: str, stamp: float) -> Any:
    """A worker's checkpoint, loaded once for every task it runs (``stamp``: its modification time)."""
    from .forecast import open_forecaster

    return open_forecaster(Path(path))


def _predict_one(path: str, out: str, *, checkpoint: str, reading, horizon: int, levels: tuple[float, ...],
                 threads: int) -> dict:
    """One partition, in a worker: read, forecast, write ``out`` atomically; a summary back."""
    from ..data import load_series, table_bytes
    from ..files import atomic_write
    from ..forecasting import predict
    from ..intervals import check_levels
    from ..threads import using_threads

    ckpt = _checkpoint(checkpoint, os.stat(checkpoint).st_mtime)
    series = load_series(path, reading.again(ckpt))
    with using_threads(threads):
        frame = predict(ckpt, series, horizon, check_levels(levels, ckpt.calibration, checkpoint))
    atomic_write(out, table_bytes(frame, out))
    return {"series": len(series.series), "rows": len(frame), "notes": list(series.notes), "ids": series.ids}
