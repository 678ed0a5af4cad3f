"""The forecast record: every forecast ``predict --record DIR`` writes, kept for ``seqcast monitor``.

A record is a folder of plain files a user can read:

    index.jsonl           one JSON line per recorded run: its number, the time it ran (UTC), the checkpoint
                          (path, digest, the digest it was warm-started from, and its model's: ``root``),
                          the data, the targets,
                          horizon, levels and frequency, the first and last forecast timestamp, and the
                          rate of adaptive intervals (predict --adapt; null: static)
    forecasts/NNNNNN.csv  that run's forecast: predict's columns, with the run number first and each
                          series' origin (its last observed timestamp) after the series
    checkpoints/SHA.json  once per checkpoint: how to read the actuals (its reading options) and the fit's
                          backtest, which every run of it shares (so an index line stays a few hundred
                          bytes however many series the backtest names)
    adapt.csv             adaptive conformal state, one row per series, target and level (predict --adapt)

Append-only and crash-safe: a run's CSV is written whole (``files.atomic_write``) before its index line
is appended and fsynced. A run killed before its line leaves a CSV no line names, which readers ignore
(the next run takes the next free number: no file is written over); a line torn by a kill (no newline
at its end) is dropped when read and cut away by the next writer (a whole run without its newline, as
an editor may save it, gets one); a line that is not a run is skipped with a note. One writer at a
time: the lock of index.jsonl (``files.output_lock``), which a writer waits for (each holds it for
the milliseconds of an append), and which a killed writer never leaves stuck.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from .errors import InputError, UsageError

INDEX = "index.jsonl"
FORECASTS = "forecasts"
CHECKPOINTS = "checkpoints"
ENVIRONMENT = "SEQCAST_RECORD"  # predict records into this folder when --record is not given


@dataclass(frozen=True)
class Record:
    """A record's runs as its index lists them (oldest first), with what reading them noted."""

    folder: Path
    runs: tuple[dict[str, Any], ...]
    notes: tuple[str, ...] = ()

    def described(self, run: dict[str, Any]) -> dict[str, Any]:
        """What the record keeps of ``run``'s checkpoint: its reading options and backtest."""
        path = self.folder / CHECKPOINTS / f"{run['sha256']}.json"
        try:
            described = json.loads(path.read_text(encoding="utf-8"))
            backtest = described.get("backtest", "") if isinstance(described, dict) else ""
            if not isinstance(described.get("reading"), dict) or not (backtest is None or (
                    isinstance(backtest, dict) and isinstance(backtest.get("series_mase"), dict)
                    and all(isinstance(backtest.get(k), (int, float)) for k in ("windows", "mase", "smape", "bias")))):
                raise ValueError("not a checkpoint's reading options and backtest")
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: the record's description of run {run['run']}'s checkpoint cannot be read "
                             f"({exc}); record a forecast with that checkpoint again") from None
        return described

    def forecasts(self, runs: list[dict[str, Any]]) -> pd.DataFrame:
        """The recorded rows of ``runs`` (index entries), one frame, in run order."""
        frames = []
        needed = {"run", "series", "origin", "timestamp", "step", "target", "forecast"}
        for run in runs:
            path = self.folder / run["file"]
            try:
                frame = pd.read_csv(path, keep_default_na=False, na_values=[""],
                                    dtype={"series": str, "target": str, "model": str})
                if not needed <= set(frame.columns):
                    raise ValueError(f"it lacks {', '.join(sorted(needed - set(frame.columns)))}")
                frames.append(frame)
            except (OSError, ValueError) as exc:
                raise InputError(f"{path}: run {run['run']} of the record cannot be read ({exc}); restore the "
                                 f"file, or remove its line from {self.folder / INDEX}") from None
        if not frames:
            return pd.DataFrame()
        return pd.concat(frames, ignore_index=True)


def folder_of(path: str | Path) -> Path:
    """The record folder ``path`` names, created when missing; UsageError when it is a file."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--record {path}: is a file; give a folder for the forecast record")
    try:
        (folder / FORECASTS).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--record {path}: cannot create the record folder ({exc.strerror})") from None
    return folder


def read(path: str | Path) -> Record:
    """The runs a record's index lists; a torn last line is dropped, a damaged line skipped with a note."""
    folder = Path(path)
    index = folder / INDEX
    if not folder.is_dir():
        raise InputError(f"{path}: no such record folder; predict --record {path} creates it")
    try:
        text = index.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        raise InputError(f"{path}: holds no forecast record ({INDEX} is missing); predict --record {path} "
                         "writes one") from None
    lines = text.split("\n")
    torn = lines.pop()  # the text after the last newline: empty, or a line a killed writer left half-written
    runs, notes = [], []
    if torn:
        notes.append(f"{index}: its last line was cut off (a run killed while recording); it is ignored")
    for number, line in enumerate(lines, start=1):
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not _is_run(entry):
            notes.append(f"{index}: line {number} is not a recorded run; it is skipped")
            continue
        runs.append(entry)
    return Record(folder, tuple(runs), tuple(notes))


# What every index line holds, and of which JSON kind (bool is not taken for int).
KEYS = {"run": int, "file": str, "time": str, "sha256": str, "model": str, "series": int, "targets": list,
        "horizon": int, "levels": list, "freq": str, "integer_time": bool, "first": str, "last": str}


def _is_run(entry: Any) -> bool:
    """Whether an index line is a recorded run: every key of ``KEYS`` of its kind, times and levels that
    read, and a file under the record's forecasts folder (a hand-edited line cannot send a reader
    elsewhere)."""
    if not isinstance(entry, dict):
        return False
    for key, kind in KEYS.items():
        value = entry.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            return False
    if not entry["file"].startswith(f"{FORECASTS}/") or ".." in entry["file"] or "\\" in entry["file"]:
        return False
    try:
        pd.Timestamp(entry["time"])
        time_keys([entry["first"], entry["last"]], entry["integer_time"])
        if not entry["integer_time"]:
            pd.tseries.frequencies.to_offset(entry["freq"])
    except (ValueError, TypeError, OverflowError):
        return False
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 100 for v in entry["levels"])


@contextlib.contextmanager
def writing(folder: Path) -> Iterator[Record]:
    """The record, held by this writer alone (waiting for another), its torn last line cut away."""
    from .files import output_lock

    index = folder / INDEX
    with output_lock(index, wait=True):
        _cut_torn_line(index)
        yield read(folder) if index.exists() else Record(folder, ())


def _cut_torn_line(index: Path) -> None:
    """A last line without its newline: ended with one when it is a whole run (an editor saved the file so),
    else cut away (a writer killed mid-line)."""
    with contextlib.suppress(FileNotFoundError), open(index, "r+b") as handle:
        data = handle.read()
        if data and not data.endswith(b"\n"):
            tail = data[data.rfind(b"\n") + 1:]
            try:
                whole = _is_run(json.loads(tail))
            except ValueError:
                whole = False
            if whole:
                handle.write(b"\n")
            else:
                handle.truncate(data.rfind(b"\n") + 1)
            handle.flush()
            os.fsync(handle.fileno())


def append(record: Record, frame: pd.DataFrame, origins: dict[str, Any], entry: dict[str, Any],
           described: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``frame`` (predict's forecast) as the record's next run, then its index line (``entry`` plus the
    run number, file, time and rows). ``origins``: each series' last observed timestamp; ``described``: what
    the record keeps once per checkpoint (``Record.described``), written if it has not been. Inside
    ``writing``."""
    from .data import write_csv
    from .files import atomic_write

    if described is not None:
        kept = record.folder / CHECKPOINTS / f"{entry['sha256']}.json"
        if not kept.exists():
            kept.parent.mkdir(exist_ok=True)
            atomic_write(kept, json.dumps(described, ensure_ascii=False, default=_text).encode("utf-8"))

    # after every run listed and every forecast file present (an orphan of a killed run, a line skipped as
    # damaged): a number is never used twice, and no file is written over
    present = [int(p.stem) for p in (record.folder / FORECASTS).glob("*.csv") if p.stem.isdigit()]
    number = max([*(r["run"] for r in record.runs), *present], default=0) + 1
    name = f"{FORECASTS}/{number:06d}.csv"
    rows = frame.copy()
    rows.insert(0, "run", number)
    rows.insert(2, "origin", rows["series"].map(origins))
    stamps = frame["timestamp"]
    entry = {"run": number, "file": name, "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             **entry, "rows": len(frame), "first": str(stamps.min()), "last": str(stamps.max())}
    atomic_write(record.folder / name, write_csv(rows))
    line = (json.dumps(entry, ensure_ascii=False, default=_text) + "\n").encode("utf-8")
    index = record.folder / INDEX
    try:
        with open(index, "ab") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise InputError(f"{index}: cannot append to the forecast record ({exc.strerror}); the forecast was "
                         "not recorded") from None
    return entry


def root(record: Record, entry: dict[str, Any]) -> str:
    """The digest that names the model a new run's checkpoint belongs to (``monitor`` judges one model's runs
    together): its own for a fresh fit; for a warm start, its parent's model, or, when the parent was never
    recorded (a night whose predict failed), the model of the latest run if that run's checkpoint had the
    same path (a nightly warm start written in place). A checkpoint recorded before keeps its model."""
    known = {run["sha256"]: run.get("root", run["sha256"]) for run in record.runs}
    if entry["sha256"] in known:
        return known[entry["sha256"]]
    if entry["parent"] is None:
        return entry["sha256"]
    if entry["parent"] in known:
        return known[entry["parent"]]
    latest = record.runs[-1] if record.runs else None
    if latest is not None and latest.get("checkpoint") == entry["checkpoint"]:
        return latest.get("root", latest["sha256"])
    return entry["sha256"]


def _text(value: Any) -> Any:
    """JSON for what the index holds besides plain values: timestamps as predict writes them."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return str(value)


def reading_config(options: dict[str, Any], where: str):
    """The data.DataConfig a record stored (``where``: its file, for the message)."""
    from .data import DataConfig

    try:
        return DataConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in options.items()})
    except TypeError as exc:
        raise InputError(f"{where}: the reading options are not this seqcast's ({exc}); record a forecast "
                         "again") from None


def recorded_keys(record: Record, values: Any, integer_time: bool) -> np.ndarray:
    """``time_keys`` of timestamps read from ``record``'s forecasts; InputError naming it when one does not read."""
    try:
        return time_keys(values, integer_time)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InputError(f"{record.folder}: a recorded timestamp cannot be read ({exc}); restore the run's file "
                         f"under {FORECASTS}/, or remove its line from {INDEX}") from None


def time_keys(values: Any, integer_time: bool) -> np.ndarray:
    """Timestamps (text as predict writes them, or an index of a series) as int64 keys that compare and join:
    the integer step itself, or nanoseconds since the epoch in UTC (naive times taken as UTC)."""
    if integer_time:
        return np.asarray(values, dtype=np.int64)
    if isinstance(values, pd.DatetimeIndex):
        times = values
    else:
        times = pd.DatetimeIndex(pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601", utc=True))
    if times.tz is not None:
        times = times.tz_convert("UTC").tz_localize(None)
    return times.as_unit("ns").asi8


def actual_values(series) -> pd.DataFrame:
    """Every observed target value of ``series`` (a data.SeriesSet), one row per series, target and time:
    series, target, key (``time_keys``), actual."""
    if not series.series:
        return pd.DataFrame({"series": [], "target": [], "key": np.array([], dtype=np.int64), "actual": []})
    keys = np.concatenate([time_keys(s.times, series.integer_time) for s in series.series])
    ids = np.repeat(np.array([s.id for s in series.series], dtype=object), [len(s.times) for s in series.series])
    values = np.concatenate([s.values for s in series.series])  # (rows, C)
    frames = [pd.DataFrame({"series": ids, "target": target, "key": keys, "actual": values[:, c]})
              for c, target in enumerate(series.targets)]
    frame = pd.concat(frames, ignore_index=True)
    return frame[np.isfinite(frame["actual"].to_numpy())]
