"""Rows into series: one series per id, on the frequency's grid, gaps and missing values dealt with.

``load_series`` reads a file (``table.py``), finds which column holds what (``columns.py``), reads
numbers with the file's decimal separator (``numbers.py``) and timestamps in its day/month order
(``times.py``), then splits the rows into series with one sort however many series there are,
checks what pandas would let slide (repeated or missing timestamps, gaps, a frequency that cannot be
right; ``frequency.py``), fills as asked, and raises ``InputError`` naming the file, line, column,
series and value. Splits, scaling and windows live in ``seqcast/windows.py``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from ..errors import InputError, UsageError, named
from .calendar import resolve_calendar
from .cells import MISSING, is_text
from .columns import (covariate_columns, default_target, id_column, reader_hints, require, time_columns,
                      unique_key_hint)
from .config import DEFAULT_ID, Ahead, DataConfig, Panel, Series, SeriesSet, check_config
from .frequency import check_freq, common_frequency, regular_series, regularise
from .numbers import ambiguity_notes, column_numbers, decimal_for, looks_numeric, static_number
from .limits import columns_allowed
from .table import Table, read_table, table_from_bytes
from .times import read_times
from .wide import long_form


def load_series(path: str, config: DataConfig = DataConfig(), last: int | None = None) -> SeriesSet:
    """Read, validate and regularise the series in ``path`` (``-`` for stdin).

    ``last``: only the last ``last`` rows are needed (a forecast's lookback, with room for gaps). A
    plain file holding one series with a time column is then read from its end; its first row read
    must have every target value, so that filling starts as it would from the whole file. Anything
    else is read whole. Problems in the rows not read are not looked for.
    """
    check_config(config)
    if config.past_cols or config.future_cols or config.static_cols:
        last = None  # covariates, and rows to forecast at the end, are checked in the whole file
    table = read_table(path, *reader_hints(config), last=last, max_columns=columns_allowed(config.wide))
    if table.partial:
        try:
            loaded = _series_set(table, config)
        except InputError:
            loaded = None  # the whole file says what is wrong, or that nothing is
        if loaded is not None and loaded.id_col is None and loaded.time_col \
                and not any(_missing_first(table, t) for t in loaded.targets):
            return loaded
        table = read_table(path, *reader_hints(config), max_columns=columns_allowed(config.wide))
    return _series_set(table, config)


def _missing_first(table: Table, column: str) -> bool:
    first = table.columns[column][0]
    return bool(np.isnan(first)) if not is_text(table.columns[column]) else str(first).strip().lower() in MISSING


def series_from_text(name: str, text: str, config: DataConfig = DataConfig()) -> SeriesSet:
    check_config(config)
    table = table_from_bytes(name, text.encode("utf-8"), *reader_hints(config), columns_allowed(config.wide))
    return _series_set(table, config)


def _series_set(table: Table, config: DataConfig) -> SeriesSet:
    wide = long_form(table, config)
    if wide:
        table, config, note = wide
        return _with_note(_series_set(table, config), note, wide=True)
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
    past, future, static = covariate_columns(config, header, name, used | set(targets))
    named = set(past) | set(future) | set(static)
    decimal, proven = decimal_for(table, config.decimal, [c for c in candidates if c not in static], candidates)
    if not targets:
        left = [c for c in candidates if c not in named]
        forecastable = [c for c in candidates if c not in static]
        natural = default_target(forecastable, columns, decimal, []) if forecastable else None
        if natural in named:  # the column seqcast would forecast, named as a covariate: never switch silently
            option = "--past-cols" if natural in past else "--future-cols"
            raise UsageError(f"{name}: {option} {natural}: {natural!r} is the column seqcast would forecast; "
                             f"give --target to forecast another column with {natural!r} as a covariate, "
                             f"or leave it out of {option}")
        if not left:
            raise InputError(f"{name}: no column left to forecast; columns are: {', '.join(header)}")
        targets = [default_target(left, columns, decimal, notes)]
    unused = [h for h in header if h not in used and h not in named and h not in targets]
    if unused:
        notes.append(f"column{'s' if len(unused) > 1 else ''} not used: {', '.join(unused[:8])}"
                     + (f" and {len(unused) - 8} more" if len(unused) > 8 else "")
                     + "; name them with --past-cols, --future-cols or --static-cols to use them as covariates, "
                       "or with --target to forecast them")
    number_columns = targets + past + future  # read alike; covariates split off once the rows are regular
    numbers = [column_numbers(table, c, decimal, bool(config.decimal)) for c in number_columns]
    values = numbers[0][:, None] if len(numbers) == 1 else np.stack(numbers, axis=1)  # one column: a view
    ambiguous = [] if config.decimal or proven else ambiguity_notes(table, targets)
    notes.extend(ambiguous)
    codes, ids = _series_ids(columns[id_col], id_col, lines, name, table.codes.get(id_col)) if id_col else \
        (None, [DEFAULT_ID])
    constant = _static_values({c: table.text(c) for c in static}, codes, ids, lines, name) if static else {}
    if len(time_cols) == 2:
        table.as_text(time_cols)  # a year and a period column: errors quote them as written
    times, dayfirst = read_times(config, time_cols, columns, lines, codes, name, notes)
    times, values, lines, bounds = _split(name, times, values, lines, codes, ids, notes, lambda: unique_key_hint(
        header, columns, times, codes, id_col, time_cols, set(used) | set(targets)))
    if id_col:  # coded: a million series' ids are 480 MB of pointers no longer needed
        columns[id_col] = None
    ahead: dict[str, Ahead] = {}
    if future:
        times, values, lines, bounds, ahead = _split_ahead(name, times, values, lines, bounds, ids, targets, past)
    if config.min_length > 0:
        times, values, lines, bounds, ids, ahead = _at_least(name, config.min_length, times, values, lines, bounds,
                                                             ids, ahead, notes)
    missing_lines = lines[np.isnan(values).any(axis=1)].tolist()
    panel = Panel(ids, times, values, bounds)
    if missing_lines and config.fill == "none":
        first = ", ".join(str(x) for x in sorted(missing_lines)[:5])
        raise InputError(
            f"{name}: {len(missing_lines)} missing values (first at lines {first}); "
            "choose how to fill them with --fill ffill|interpolate|zero"
        )
    freq = check_freq(config.freq, times[: bounds[1]]) if config.freq else common_frequency(panel, name)
    clean = regular_series(times, bounds, freq)  # all at once; the rest one by one, in file order
    if clean.all() and not missing_lines:  # the usual file: the panel as read
        series = panel if not (past or future) else Panel(ids, times, values[:, : len(targets)], bounds,
                                                          values[:, len(targets):])
        return _loaded(table, config, time_cols, targets, id_col, freq, series, notes, ambiguous, proven, dayfirst,
                       past, future, static, constant, ahead)
    series = [s if ok else regularise(s, freq, config.fill, name, notes) for s, ok in zip(panel, clean)]
    if missing_lines or any(np.isnan(s.values).any() for s in series):
        for s in series:
            empty = np.isnan(s.values).all(axis=0)
            if empty.any():
                raise InputError(f"{name}: series {s.id!r} has no values at all in column "
                                 f"{number_columns[int(np.argmax(empty))]!r}")
        series = [Series(s.id, s.times, _fill(s.values, config.fill)) if np.isnan(s.values).any() else s
                  for s in series]
        if missing_lines:
            notes.append(f"filled {len(missing_lines)} missing values ({config.fill})")
    lengths = [len(s.times) for s in series]
    edges = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    rows = times[:0].append([s.times for s in series])
    stacked = np.concatenate([s.values for s in series])
    series = Panel(ids, rows, stacked[:, : len(targets)], edges, stacked[:, len(targets):] if past or future else None)
    return _loaded(table, config, time_cols, targets, id_col, freq, series, notes, ambiguous, proven, dayfirst, past,
                   future, static, constant, ahead)


def _loaded(table: Table, config: DataConfig, time_cols, targets, id_col, freq, series: Panel, notes, ambiguous,
            proven, dayfirst, past, future, static, constant, ahead) -> SeriesSet:
    return SeriesSet(table.name, ",".join(time_cols) or None, targets, id_col, freq, series, notes,
                     decimal=config.decimal or proven or ("." if ambiguous else None), dayfirst=dayfirst,
                     date_format=config.date_format, fill=config.fill, freq_given=config.freq is not None,
                     past_cols=past, future_cols=future, static_cols=static, static=constant,
                     calendar=resolve_calendar(config.calendar, series.times[: series.bounds[1]], freq, notes),
                     ahead=ahead)


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
                 + named(left))
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
    check_config(config)
    if not config.time_col:
        raise InputError(f"{path}: --future needs timestamps, and the model was trained on numbered rows")
    table = read_table(path, *reader_hints(config), max_columns=columns_allowed(config.wide))
    name, header, columns, lines = table.name, table.header, table.columns, table.lines
    id_col = require(config.id_col, header, name, "series id column") if config.id_col else None
    time_cols = time_columns(config.time_col, header, columns, set(), name)
    future = [require(c, header, name, "future covariate") for c in config.future_cols]
    decimal, _ = decimal_for(table, config.decimal, future, future)
    values = np.stack([column_numbers(table, c, decimal, bool(config.decimal)) for c in future], axis=1)
    codes, ids = _series_ids(columns[id_col], id_col, lines, name) if id_col else (None, [DEFAULT_ID])
    if len(time_cols) == 2:
        table.as_text(time_cols)
    times, _ = read_times(config, time_cols, columns, lines, codes, name, [])
    times, values, lines, bounds = _split(name, times, values, lines, codes, ids, [], lambda: "")
    return {sid: Ahead(times[a:b], values[a:b], name, lines[a:b]) for sid, a, b in zip(ids, bounds[:-1], bounds[1:])}


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


def _series_ids(raw: np.ndarray, id_col: str, lines: np.ndarray, name: str,
                known: tuple[np.ndarray, list] | None = None) -> tuple[np.ndarray, list[str]]:
    """Each row's series as a code into the ids, in order of first appearance (ids stripped); ``known``:
    the codes and distinct values the reader found already (``Table.codes``)."""
    codes, uniques = known if known is not None else pd.factorize(np.asarray(raw, dtype=object))
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


def _static_values(raw: dict[str, np.ndarray], codes: np.ndarray | None, ids: list[str], lines: np.ndarray,
                  name: str) -> dict[str, tuple]:
    """Per series, the value of each static column (a float for a numeric column, else the text);
    the column must hold one value per series (empty rows take it)."""
    out: dict[str, list] = {sid: [] for sid in ids}
    group = codes if codes is not None else np.zeros(len(lines), dtype=np.int64)
    for column, values in raw.items():
        text = pd.Series(values, dtype=object).astype(str).str.strip()
        text = text.mask(text.str.lower().isin(("", "nan", "na", "n/a", "null", "none")))
        numeric = bool(looks_numeric(text.dropna().to_numpy()).all())
        frame = pd.DataFrame({"series": group, "value": text, "line": lines}).dropna(subset=["value"])
        first = frame.drop_duplicates(["series", "value"])
        clash = first[first.duplicated("series", keep=False)]
        if len(clash):
            code = clash["series"].iloc[0]
            rows = clash[clash["series"] == code].head(2)
            label = f"series {ids[code]!r}" if codes is not None else "the series"
            raise InputError(f"{name}: static column {column!r} is not constant for {label}: {rows['value'].iloc[0]!r} "
                             f"(line {rows['line'].iloc[0]}) and {rows['value'].iloc[1]!r} (line {rows['line'].iloc[1]}); "
                             "a static covariate holds one value per series (use --past-cols or --future-cols for "
                             "values that change)")
        found = dict(zip(first["series"], first["value"]))
        for code, sid in enumerate(ids):
            if code not in found:
                raise InputError(f"{name}: static column {column!r} has no value for series {sid!r}")
            out[sid].append(static_number(found[code]) if numeric else found[code])
    return {sid: tuple(v) for sid, v in out.items()}


def _fill(values: np.ndarray, policy: str) -> np.ndarray:
    frame = pd.DataFrame(values)
    if policy == "zero":
        frame = frame.fillna(0.0)
    elif policy == "ffill":
        frame = frame.ffill().bfill()
    elif policy == "interpolate":
        frame = frame.interpolate(limit_direction="both")
    return frame.to_numpy(dtype=np.float64)
