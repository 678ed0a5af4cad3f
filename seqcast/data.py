"""Series from CSV: one series per id, on the frequency's grid, gaps and missing values dealt with.

``csvfile.py`` reads the file into columns, ``roles.py`` says which column holds what,
``reading.py`` turns text into numbers and timestamps, ``frequency.py`` knows grids and
frequencies; this module decides the decimal separator and day/month order, splits the rows into series (one sort, however many series), checks what pandas would let slide (repeated or
missing timestamps, gaps, a frequency that cannot be right) and raises ``InputError`` naming the
file, line, column, series and value. Splits, scaling and windows live in ``windows.py``.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from .covariates import Ahead, resolve_calendar, static_values
from .csvfile import Table, decode, read_bytes, read_table, table_from_bytes
from .errors import InputError, UsageError
from .frequency import (DEFAULT_ID, Series, check_freq, common_frequency, future_times, grid, infer_frequency,
                        regular_series, regularise, season_length)
from .reading import (INTEGER, MISSING, choose_decimal, day_month_format, decimal_note, parse_numbers, parse_times,
                      year_period_times, years_as_dates)
from .roles import (ENTITY_NAMES, ID_NAMES, MONTH_NAMES, QUARTER_NAMES, TIME_NAMES, YEAR_NAMES, default_target,
                    id_column, require, time_columns, typed, unique_key_hint)

__all__ = ["DataConfig", "Series", "SeriesSet", "load_series", "series_from_text", "future_times",
           "season_length", "grid", "write_csv", "infer_frequency", "DEFAULT_ID", "FILL_POLICIES", "read_bytes",
           "decode", "load_future"]

FILL_POLICIES = ("none", "ffill", "interpolate", "zero")


@dataclass(frozen=True)
class DataConfig:
    """How to read a CSV: which columns hold what, the frequency, and how to fill holes."""

    time_col: str | None = None  # one column, or "year,quarter" / "year,month" to combine two
    target: tuple[str, ...] = ()
    id_col: str | None = None
    freq: str | None = None
    fill: str = "none"
    decimal: str | None = None  # "." or ","; None = decided from the numbers themselves
    dayfirst: bool | None = None  # day before month in dates like 01.02.1949; None = inferred from the column
    date_format: str | None = None  # an explicit strftime format for the time column
    past_cols: tuple[str, ...] = ()  # covariates observed up to the forecast origin (covariates.py)
    future_cols: tuple[str, ...] = ()  # covariates known for the horizon too
    static_cols: tuple[str, ...] = ()  # covariates constant per series: numbers or categories
    calendar: str = "none"  # generated calendar features: none, auto, or names (covariates.CALENDAR_FEATURES)
    min_length: int = 0  # leave out (with a note naming them) the series with fewer rows than this; 0 = keep all
    wide: bool = False  # one row per series, one column per time (headers 1960, 1961, ...): read as a panel


@dataclass
class SeriesSet:
    """Everything read from one CSV: one or many series sharing targets and frequency.

    ``decimal``, ``dayfirst``, ``date_format``, ``fill`` and ``freq_given`` are how the file was
    read: given back as a ``DataConfig`` they read it, and new files of its kind, the same way.
    """

    source: str
    time_col: str | None
    targets: list[str]
    id_col: str | None
    freq: str  # pandas offset alias ("h", "W-SUN", "MS", "B"), or the integer step ("1")
    series: list[Series]
    notes: list[str] = field(default_factory=list)
    decimal: str | None = None  # the decimal separator given or decided; None when no number settled it
    dayfirst: bool | None = None  # how day/month dates were read; None when the dates were unambiguous (ISO)
    date_format: str | None = None  # the user's --date-format, if any
    fill: str = "none"  # the fill policy the series were read with
    freq_given: bool = False  # the frequency was imposed (--freq), not inferred
    past_cols: list[str] = field(default_factory=list)  # each series' ``covariates`` holds these columns,
    future_cols: list[str] = field(default_factory=list)  # then these
    static_cols: list[str] = field(default_factory=list)
    static: dict[str, tuple] = field(default_factory=dict)  # per series, its value of each static column
    calendar: tuple[str, ...] = ()  # calendar features asked for (covariates.resolve_calendar)
    ahead: dict[str, Ahead] = field(default_factory=dict)  # per series, future covariates after its last row
    wide: bool = False  # read from a wide file (--wide): one row per series, one column per time

    @property
    def covariate_kinds(self) -> tuple[str, ...]:
        """The model inputs these covariates need: past, future (calendar too), static."""
        return tuple(k for k, on in (("past", self.past_cols), ("future", self.future_cols or self.calendar),
                                      ("static", self.static_cols)) if on)

    @property
    def integer_time(self) -> bool:
        return not isinstance(self.series[0].times, pd.DatetimeIndex)


def _fill(values: np.ndarray, policy: str) -> np.ndarray:
    frame = pd.DataFrame(values)
    if policy == "zero":
        frame = frame.fillna(0.0)
    elif policy == "ffill":
        frame = frame.ffill().bfill()
    elif policy == "interpolate":
        frame = frame.interpolate(limit_direction="both")
    return frame.to_numpy(dtype=np.float64)


def load_series(path: str, config: DataConfig = DataConfig(), last: int | None = None) -> SeriesSet:
    """Read, validate and regularise the series in ``path`` (``-`` for stdin).

    ``last``: only the last ``last`` rows are needed (a forecast's lookback, with room for gaps). A
    plain file holding one series with a time column is then read from its end; its first row read
    must have every target value, so that filling starts as it would from the whole file. Anything
    else is read whole. Problems in the rows not read are not looked for.
    """
    _check_config(config)
    if config.past_cols or config.future_cols or config.static_cols:
        last = None  # covariates, and rows to forecast at the end, are checked in the whole file
    table = read_table(path, *_typing(config), last=last)
    if table.partial:
        try:
            series = _series(table, config)
        except InputError:
            series = None  # the whole file says what is wrong, or that nothing is
        if series is not None and series.id_col is None and series.time_col \
                and not any(_missing_first(table, t) for t in series.targets):
            return series
        table = read_table(path, *_typing(config))
    return _series(table, config)


def _missing_first(table: Table, column: str) -> bool:
    first = table.columns[column][0]
    return bool(np.isnan(first)) if typed(table.columns[column]) else str(first).strip().lower() in MISSING


def series_from_text(name: str, text: str, config: DataConfig = DataConfig()) -> SeriesSet:
    _check_config(config)
    return _series(table_from_bytes(name, text.encode("utf-8"), *_typing(config)), config)


def _check_config(config: DataConfig) -> None:
    if config.fill not in FILL_POLICIES:
        raise InputError(f"--fill {config.fill!r}: choose one of {', '.join(FILL_POLICIES)}")
    if config.decimal not in (None, ".", ","):
        raise InputError(f"--decimal {config.decimal!r}: use . (1234.5) or , (1234,5)")


def _typing(config: DataConfig):
    """Which columns the fast reader keeps as text (whatever may be a series id) and which it may read
    as ISO timestamps or integer steps (whatever may be the time column)."""
    def text(header: list[str]) -> set[str]:
        named = {h for h in header if h.lower() in ID_NAMES + ENTITY_NAMES}
        return named | {config.id_col} - {None}

    def times(header: list[str]) -> set[str] | None:
        if config.date_format:
            return None
        given = set(config.time_col.split(",")) if config.time_col else set()
        return {h for h in header if h.lower() in TIME_NAMES} | given | set(header[:1])

    return text, times


WIDE_VALUE = "value"  # a wide file becomes its id column, "year" (or "period" for other times) and this
_TIME_HEADER = re.compile(r"\s*(\d{4}|\d{4}-\d{2}(-\d{2})?|\d{4}\s*-?\s*[Qq][1-4])\s*")


def _wide_times(header: list[str], config: DataConfig) -> list[str]:
    """The column headers that are times (years, ISO months or days, quarters), when they make a wide
    file: at least three of them, at least half the columns, in increasing order. Unless --wide says so,
    a file with a time column (by name, or --time-col) or named targets is never taken for one: sensors
    numbered 1001, 1002, ... are columns of values."""
    times = [h for h in header if _TIME_HEADER.fullmatch(h)]
    if len(times) < 3 or 2 * len(times) < len(header):
        return []
    if not config.wide:
        if config.time_col or config.target or any(h.strip().lower() in TIME_NAMES for h in header):
            return []
        if [t.strip() for t in times] != sorted(t.strip() for t in times) or len({t.strip() for t in times}) < len(times):
            return []
    return times


def _long(table: Table, config: DataConfig, times: list[str]) -> tuple[Table, DataConfig, str]:
    """A wide table (a row per series, a column per time) as a long one: ``id, period, value`` rows, the
    id the given --id-col or the first column that is not a time; the other such columns are dropped
    (a note names them). Returns the table, the config that reads it, and the note."""
    rest = [h for h in table.header if h not in times]
    if not rest:
        raise InputError(f"{table.name}: --wide: every column header is a time; the file needs a column naming "
                         "each row's series")
    id_col = require(config.id_col, table.header, table.name, "id column") if config.id_col else rest[0]
    table.as_text([id_col, *times])  # every column as written, in one pass over the file
    ids = table.text(id_col)
    if len(set(ids)) != len(ids):
        raise InputError(f"{table.name}: --wide: column {id_col!r} names a series twice; give --id-col a column "
                         "with one value per row")
    cells = {t: table.text(t) for t in times}
    time_col = "year" if all(t.strip().isdigit() for t in times) else "period"  # years become yearly dates
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([id_col, time_col, WIDE_VALUE])
    for i, sid in enumerate(ids):
        writer.writerows((sid, t.strip(), cells[t][i]) for t in times)
    long = replace(config, wide=False, id_col=id_col, time_col=time_col, target=(WIDE_VALUE,))
    note = (f"--wide: read {len(ids)} rows as series (id {id_col!r}) over {len(times)} columns of times "
            f"({times[0].strip()} to {times[-1].strip()})"
            + (f"; columns not used: {', '.join(h for h in rest if h != id_col)}" if len(rest) > 1 else ""))
    return table_from_bytes(f"{table.name} (read --wide)", buffer.getvalue().encode("utf-8"), *_typing(long)), long, note


def _series(table: Table, config: DataConfig) -> SeriesSet:
    times = _wide_times(table.header, config)
    if config.wide or times:
        if not times:
            raise InputError(f"{table.name}: read as a wide file (fit --wide, or a model fit so) but no column "
                             "header is a time (1960, 2024-01, 2024-01-31, 1960Q1); a file with one row per time "
                             "needs a model fit without --wide")
        if not config.wide:
            raise InputError(f"{table.name}: the column headers {times[0].strip()}, {times[1].strip()}, ... "
                             f"{times[-1].strip()} are times: one row per series, one column per time (a wide "
                             "file); pass --wide to read each row as a series, or give one row per time")
        table, config, note = _long(table, config, times)
        return _with_note(_series(table, config), note, wide=True)
    name, header, columns, lines = table.name, table.header, table.columns, table.lines
    notes: list[str] = []
    id_col = id_column(config.id_col, header, columns, name, notes)
    used = {id_col} - {None}
    time_cols = time_columns(config.time_col, header, columns, used, name)
    used |= set(time_cols)
    candidates = [h for h in header if h not in used]
    targets = [require(t, header, name, "target") for t in config.target]
    overlap = set(targets) & used
    if overlap:
        raise InputError(f"{name}: column {overlap.pop()!r} cannot be both the target and the time or id column")
    past, future, static = _covariate_columns(config, header, name, used | set(targets))
    named = set(past) | set(future) | set(static)
    proven = _decide_decimal(table, [c for c in candidates if c not in static]) if not config.decimal else None
    decimal = config.decimal or proven or "."
    if decimal == ",":
        table.as_text(candidates)  # typed numbers were read with a decimal point
    if not targets:
        left = [c for c in candidates if c not in named]
        if not left:
            raise InputError(f"{name}: no column left to forecast; columns are: {', '.join(header)}")
        natural = default_target([c for c in candidates if c not in static], columns, decimal, [])
        if natural in named:  # the column seqcast would forecast, named as a covariate: never switch silently
            option = "--past-cols" if natural in past else "--future-cols"
            raise UsageError(f"{name}: {option} {natural}: {natural!r} is the column seqcast would forecast; "
                             f"give --target to forecast another column with {natural!r} as a covariate, "
                             f"or leave it out of {option}")
        targets = [default_target(left, columns, decimal, notes)]
    unused = [h for h in header if h not in used and h not in named and h not in targets]
    if unused:
        notes.append(f"column{'s' if len(unused) > 1 else ''} not used: {', '.join(unused[:8])}"
                     + (f" and {len(unused) - 8} more" if len(unused) > 8 else "")
                     + "; name them with --past-cols, --future-cols or --static-cols to use them as covariates, "
                       "or with --target to forecast them")
    numbers = targets + past + future  # read alike; covariates split off once the rows are regular
    values = np.stack([_target_values(table, t, decimal, bool(config.decimal)) for t in numbers], axis=1)
    ambiguous = [] if config.decimal or proven else [  # typed numbers are integers here: nothing to note
        n for n in (None if typed(columns[t]) else decimal_note(columns[t], t) for t in targets) if n]
    notes.extend(ambiguous)
    codes, ids = _series_ids(columns[id_col], id_col, lines, name) if id_col else (None, [DEFAULT_ID])
    constant = static_values({c: table.text(c) for c in static}, codes, ids, lines, name) if static else {}
    if len(time_cols) == 2:
        table.as_text(time_cols)  # a year and a period column: errors quote them as written
    times, dayfirst = _read_times(config, time_cols, columns, lines, codes, name, notes)
    times, values, lines, bounds = _split(name, times, values, lines, codes, ids, notes, lambda: unique_key_hint(
        header, columns, times, codes, id_col, time_cols, set(used) | set(targets)))
    ahead: dict[str, Ahead] = {}
    if future:
        times, values, lines, bounds, ahead = _split_ahead(name, times, values, lines, bounds, ids, targets, past)
    if config.min_length > 0:
        times, values, lines, bounds, ids, ahead = _at_least(name, config.min_length, times, values, lines, bounds,
                                                             ids, ahead, notes)
    missing_lines = lines[np.isnan(values).any(axis=1)].tolist()
    series = [Series(sid, times[a:b], values[a:b]) for sid, a, b in zip(ids, bounds[:-1], bounds[1:])]
    if missing_lines and config.fill == "none":
        first = ", ".join(str(x) for x in sorted(missing_lines)[:5])
        raise InputError(
            f"{name}: {len(missing_lines)} missing values (first at lines {first}); "
            "choose how to fill them with --fill ffill|interpolate|zero"
        )
    freq = check_freq(config.freq, series[0].times) if config.freq else common_frequency(series, name)
    clean = regular_series(times, bounds, freq)  # all at once; the rest one by one, in file order
    series = [s if ok else regularise(s, freq, config.fill, name, notes) for s, ok in zip(series, clean)]
    if missing_lines or any(np.isnan(s.values).any() for s in series):
        for s in series:
            empty = np.isnan(s.values).all(axis=0)
            if empty.any():
                raise InputError(f"{name}: series {s.id!r} has no values at all in column "
                                 f"{numbers[int(np.argmax(empty))]!r}")
        series = [Series(s.id, s.times, _fill(s.values, config.fill)) if np.isnan(s.values).any() else s
                  for s in series]
        if missing_lines:
            notes.append(f"filled {len(missing_lines)} missing values ({config.fill})")
    if past or future:
        series = [Series(s.id, s.times, s.values[:, : len(targets)], s.values[:, len(targets):]) for s in series]
    return SeriesSet(name, ",".join(time_cols) or None, targets, id_col, freq, series, notes,
                     decimal=config.decimal or proven or ("." if ambiguous else None), dayfirst=dayfirst,
                     date_format=config.date_format, fill=config.fill, freq_given=config.freq is not None,
                     past_cols=past, future_cols=future, static_cols=static, static=constant,
                     calendar=resolve_calendar(config.calendar, series[0].times, freq, notes), ahead=ahead)


def _at_least(name: str, rows: int, times, values, lines, bounds, ids, ahead, notes: list[str]):
    """The rows of the series with at least ``rows`` rows (``--min-length``); a note names those left out."""
    lengths = np.diff(bounds)
    keep = lengths >= rows
    if keep.all():
        return times, values, lines, bounds, ids, ahead
    if not keep.any():
        raise InputError(f"{name}: --min-length {rows}: every series is shorter (the longest has {lengths.max()} "
                         "rows); give a smaller --min-length")
    left = [sid for sid, k in zip(ids, keep) if not k]
    notes.append(f"--min-length {rows}: left out {len(left)} of {len(ids)} series with fewer rows: "
                 + ", ".join(repr(sid) for sid in left[:10]) + (f" and {len(left) - 10} more" if len(left) > 10 else ""))
    rows_kept = np.repeat(keep, lengths)
    kept_ids = [sid for sid, k in zip(ids, keep) if k]
    new_bounds = np.concatenate([[0], np.cumsum(lengths[keep])])
    return (times[rows_kept], values[rows_kept], lines[rows_kept], new_bounds, kept_ids,
            {sid: a for sid, a in ahead.items() if sid in set(kept_ids)})


def _with_note(series: SeriesSet, note: str, **changes) -> SeriesSet:
    return replace(series, notes=[note, *series.notes], **changes)


def load_future(path: str, config: DataConfig) -> dict[str, Ahead]:
    """The known-future covariates in ``path`` (``predict --future``), per series, in time order: a CSV
    with the history's time and id columns and ``config.future_cols`` (other columns are ignored, so a
    target column left empty does no harm). A repeated timestamp is an error; which timestamps are
    needed is the forecast's to check (``covariates.horizon_values``)."""
    _check_config(config)
    if not config.time_col:
        raise InputError(f"{path}: --future needs timestamps, and the model was trained on numbered rows")
    table = read_table(path, *_typing(config))
    name, header, columns, lines = table.name, table.header, table.columns, table.lines
    id_col = require(config.id_col, header, name, "series id column") if config.id_col else None
    time_cols = time_columns(config.time_col, header, columns, set(), name)
    future = [require(c, header, name, "future covariate") for c in config.future_cols]
    decimal = config.decimal or _decide_decimal(table, future) or "."
    if decimal == ",":
        table.as_text(future)
    values = np.stack([_target_values(table, c, decimal, bool(config.decimal)) for c in future], axis=1)
    codes, ids = _series_ids(columns[id_col], id_col, lines, name) if id_col else (None, [DEFAULT_ID])
    if len(time_cols) == 2:
        table.as_text(time_cols)
    times, _ = _read_times(config, time_cols, columns, lines, codes, name, [])
    times, values, lines, bounds = _split(name, times, values, lines, codes, ids, [], lambda: "")
    return {sid: Ahead(times[a:b], values[a:b], name, lines[a:b]) for sid, a, b in zip(ids, bounds[:-1], bounds[1:])}


def _covariate_columns(config: DataConfig, header: list[str], name: str, taken: set[str]
                       ) -> tuple[list[str], list[str], list[str]]:
    """The past, future and static covariate columns, each in the file and in one role only."""
    roles = {"past covariate": config.past_cols, "future covariate": config.future_cols,
             "static covariate": config.static_cols}
    seen: dict[str, str] = {}
    for role, names in roles.items():
        for column in names:
            require(column, header, name, role)
            if column in taken:
                raise InputError(f"{name}: column {column!r} cannot be both a {role} and the target, time or id column")
            if column in seen:
                raise InputError(f"{name}: column {column!r} is named both as a {seen[column]} and as a {role}")
            seen[column] = role
    return [list(names) for names in roles.values()]


def _split_ahead(name: str, times: pd.Index, values: np.ndarray, lines: np.ndarray, bounds: np.ndarray,
                 ids: list[str], targets: list[str], past: list[str]):
    """Take off each series' rows after its last observed target (every target empty): the known-future
    covariates of the steps to forecast (``Ahead``). Returns the remaining times, values, lines and
    bounds, and the rows taken per series."""
    observed = ~np.isnan(values[:, : len(targets)]).all(axis=1)
    last = np.maximum.reduceat(np.where(observed, np.arange(len(values)), -1), bounds[:-1])  # (N,) -1: none
    nothing = np.flatnonzero(last < bounds[:-1])
    if len(nothing):
        raise InputError(f"{name}: series {ids[nothing[0]]!r} has no values at all in column {targets[0]!r}")
    ends = last + 1
    ahead = {}
    for i in np.flatnonzero(ends < bounds[1:]):
        rows = slice(ends[i], bounds[i + 1])
        ahead[ids[i]] = Ahead(times[rows], values[rows, len(targets) + len(past):], name, lines[rows])
    if not ahead:
        return times, values, lines, bounds, ahead
    keep = np.repeat(np.arange(len(ids)), np.diff(bounds))
    keep = np.arange(len(values)) < ends[keep]
    counts = ends - bounds[:-1]
    return (times[keep], values[keep], lines[keep], np.concatenate([[0], np.cumsum(counts)]).astype(bounds.dtype),
            ahead)


def _decide_decimal(table: Table, candidates: list[str]) -> str | None:
    """The decimal separator the numbers prove (see ``reading.choose_decimal``). Numbers the C reader
    typed were written with a decimal point (a comma would have left them text); a value with more
    than three decimals, or of 1000 and more with a fraction, proves it. A typed column that proves
    nothing, or a file where some column proves a comma, is judged from its text."""
    columns = table.columns
    floats = [c for c in candidates if typed(columns[c]) and np.asarray(columns[c]).dtype.kind == "f"]
    unproven = [c for c in floats if not _proves_point(columns[c])]
    table.as_text(unproven)
    text = [c for c in candidates if not typed(columns[c])]
    found = choose_decimal(table.name, {c: columns[c] for c in text}, table.lines)
    if found == ",":
        table.as_text(candidates)
        return choose_decimal(table.name, {c: columns[c] for c in candidates}, table.lines)
    return found or ("." if len(unproven) < len(floats) else None)


def _proves_point(values: np.ndarray) -> bool:
    for start in range(0, len(values), 1 << 16):  # a proof is usually in the first rows: look in blocks
        v = values[start : start + (1 << 16)]
        v = v[np.isfinite(v)]
        thousandths = v * 1000
        fraction = np.abs(thousandths - np.round(thousandths)) > 1e-9 * np.maximum(1.0, np.abs(thousandths))
        if (fraction | ((np.abs(v) >= 1000) & (v != np.round(v)))).any():
            return True
    return False


def _target_values(table: Table, column: str, decimal: str, forced: bool) -> np.ndarray:
    """A target column as float64 (NaN where missing); a typed column that holds an infinity is read
    again as text so that the error quotes it."""
    values = table.columns[column]
    if typed(values) and np.asarray(values).dtype.kind in "fiu" and decimal == ".":
        numbers = np.asarray(values, dtype=np.float64)
        if not np.isinf(numbers).any():
            return numbers
    return parse_numbers(table.text(column), column, table.lines, table.name, decimal, forced=forced)


def _series_ids(raw: np.ndarray, id_col: str, lines: np.ndarray, name: str) -> tuple[np.ndarray, list[str]]:
    """Each row's series as a code into the ids, in order of first appearance (ids stripped)."""
    codes, uniques = pd.factorize(np.asarray(raw, dtype=object))
    names = [str(u).strip() for u in uniques]
    if len(set(names)) < len(names):  # " a" and "a" are one series
        stripped, merged = pd.factorize(np.array(names, dtype=object))
        codes, names = stripped[codes], list(merged)
    ids = [str(i) for i in names]
    if "" in ids:
        i = int(np.argmax(codes == ids.index("")))
        raise InputError(f"{name}: line {lines[i]}, column {id_col!r}: empty series id")
    return codes, ids


def _split(name: str, times: pd.Index, values: np.ndarray, lines: np.ndarray, codes: np.ndarray | None,
           ids: list[str], notes: list[str], hint) -> tuple[pd.Index, np.ndarray, np.ndarray, np.ndarray]:
    """The rows grouped by series with one stable sort: by series, then (where a series is out of
    order) by time. A repeated timestamp within a series is an error naming both lines (``hint()``
    adds which column would tell them apart). Returns times, values and lines in that order and the
    bounds of each series' rows."""
    stamp = np.asarray(times.asi8 if isinstance(times, pd.DatetimeIndex) else times, dtype=np.int64)
    if codes is None or (codes[1:] >= codes[:-1]).all():
        order, series_of = None, codes  # already grouped by series (one series, or a sorted panel)
    else:
        order = np.argsort(codes, kind="stable")
        series_of = codes[order]
    same = np.ones(len(stamp) - 1, dtype=bool) if codes is None else series_of[1:] == series_of[:-1]
    ordered = stamp if order is None else stamp[order]
    backwards = same & (ordered[1:] < ordered[:-1])
    if backwards.any():
        unsorted = np.unique(series_of[1:][backwards]) if codes is not None else [0]
        notes.extend(f"rows of series {ids[c]!r} were not in time order; sorted them" for c in unsorted[:3])
        if len(unsorted) > 3:
            notes.append(f"rows of {len(unsorted) - 3} more series were not in time order; sorted them")
        order = np.lexsort((stamp, codes)) if codes is not None else np.argsort(stamp, kind="stable")
        ordered = stamp[order]
    repeated = np.flatnonzero(same & (ordered[1:] == ordered[:-1]))
    at = (lambda i: i) if order is None else order.__getitem__
    if len(repeated):  # the first in the first series, as the file orders them
        i = repeated[0]
        label = f"series {ids[series_of[i]]!r}: " if codes is not None else ""
        raise InputError(f"{name}: {label}timestamp {times[at(i)]} appears twice (lines {lines[at(i)]} and "
                         f"{lines[at(i + 1)]})" + hint())
    bounds = np.concatenate([[0], np.flatnonzero(~same) + 1, [len(stamp)]])
    if order is None:
        return times, values, lines, bounds
    return times[order], values[order], lines[order], bounds


def _read_times(config: DataConfig, time_cols: list[str], columns: dict, lines: np.ndarray, codes: np.ndarray | None,
                name: str, notes: list[str]) -> tuple[pd.Index, bool | None]:
    """The timestamp of every row and the day/month order used (None where the dates have none)."""
    if not time_cols:
        notes.append("no time column found: rows are numbered steps (name one with --time-col)")
        return pd.Index(np.arange(len(lines), dtype=np.int64)), None
    if len(time_cols) == 2:
        year, period = time_cols
        quarterly = period.lower() in QUARTER_NAMES or (period.lower() not in MONTH_NAMES and all(
            str(v).strip().lower().startswith("q") for v in columns[period][:20]))  # Q1..Q4 in a column named otherwise
        times = year_period_times(columns[year], columns[period], year, period, quarterly, lines, name)
        if not config.time_col:
            notes.append(f"time: columns {year!r} and {period!r} combined into {'quarter' if quarterly else 'month'}"
                         f"-start dates ({columns[year][0]} {columns[period][0]} -> {times[0].date()}); "
                         f"--time-col {year},{period} says so explicitly")
        return times, None
    column = time_cols[0]
    raw = columns[column]
    if isinstance(raw, pd.DatetimeIndex):
        readings = {None: raw}  # ISO 8601 throughout, read by the fast reader
    elif raw.dtype != object:
        readings = {None: pd.Index(np.asarray(raw, dtype=np.int64), dtype=np.int64)}  # integer steps
    else:
        readings = parse_times(raw, column, lines, name, config.dayfirst, config.date_format)
    if len(readings) == 2:
        dayfirst = _choose_order(readings, codes, config.freq, raw, column, name, notes)
        times = readings[True if dayfirst is None else dayfirst]
    else:
        dayfirst, times = next(iter(readings.items()))
    integer_freq = bool(config.freq) and INTEGER.match(config.freq.strip()) is not None
    if not isinstance(times, pd.DatetimeIndex) and column.lower() in YEAR_NAMES and not integer_freq:
        dates = years_as_dates(times)
        if dates is not None:
            notes.append(f"column {column!r} holds years: read as yearly dates ({times[0]} -> {dates[0].date()}), "
                         "so forecasts carry dates; --freq 1 keeps them plain numbers")
            times = dates
    return times, dayfirst


def _choose_order(readings: dict, codes: np.ndarray | None, freq: str | None, raw: np.ndarray, column: str,
                  name: str, notes: list[str]) -> bool | None:
    """Day first or month first, when no date in the column proves either: the one order whose reading
    is a regular series; an error when both or neither are."""
    differs = np.asarray(readings[True] != readings[False])
    if not differs.any():
        return None  # every date has day == month: both orders read the same
    example = raw[int(np.argmax(differs))].strip()
    plausible = [order for order, times in readings.items() if _regular_reading(times, codes, freq)]
    if len(plausible) == 1:
        order = plausible[0]
        other = "--monthfirst" if order else "--dayfirst"
        notes.append(f"column {column!r}: read dates like {example!r} {'day' if order else 'month'} first "
                     f"({readings[order][int(np.argmax(differs))].date()}), the only order that gives a regular "
                     f"series; pass {other} or --date-format '{day_month_format(example, not order)}' for the other")
        return order
    why = "both orders give a regular series" if plausible else "neither order gives a regular series"
    raise InputError(f"{name}: column {column!r}: cannot tell whether {example!r} is day first or month first "
                     f"({why}); pass --dayfirst, --monthfirst or --date-format '{day_month_format(example, True)}'")


def _regular_reading(times: pd.DatetimeIndex, codes: np.ndarray | None, freq: str | None) -> bool:
    """Each series strictly increasing (or decreasing) in file order, on a grid where no more
    timestamps are missing than observed."""
    frame = pd.DataFrame({"id": codes if codes is not None else 0, "t": times})
    step = frame.groupby("id", sort=False)["t"].diff().dropna()
    if not ((step > pd.Timedelta(0)).all() or (step < pd.Timedelta(0)).all()):
        return False
    longest = frame["id"].value_counts().index[0]
    t = pd.DatetimeIndex(frame.loc[frame["id"] == longest, "t"]).sort_values()
    step_freq = check_freq(freq, t) if freq else infer_frequency(t)
    if step_freq is None:
        return False
    try:
        full = grid(t[0], t[-1], step_freq, len(t))
    except InputError:
        return False
    return t.difference(full).empty and len(full) - len(t) <= len(t)


def write_csv(frame: pd.DataFrame) -> bytes:
    """A forecast or table as UTF-8 CSV bytes; floats keep full precision (lossless round-trip)."""
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
