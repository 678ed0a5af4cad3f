"""Series from CSV: which column holds what, one series per id, the frequency, gaps and missing values.

``reading.py`` turns the text into columns, numbers and timestamps; this module gives the columns
their roles, checks what pandas would let slide (duplicate or missing timestamps, gaps, a frequency
that cannot be right) and raises ``InputError`` naming the file, line, column, series and value.
Splits, scaling and windows live in ``windows.py``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import InputError
from .reading import (INTEGER, choose_decimal, day_month_format, decimal_note, decode, is_period_column,
                      looks_numeric, parse_numbers, parse_table, parse_times, read_bytes, year_period_times,
                      years_as_dates)

__all__ = ["DataConfig", "Series", "SeriesSet", "load_series", "series_from_text", "future_times", "time_features",
           "season_length", "grid", "write_csv", "infer_frequency", "DEFAULT_ID", "FILL_POLICIES", "read_bytes",
           "decode"]

TIME_NAMES = ("ds", "date", "datetime", "timestamp", "time", "period", "month", "week", "day", "year", "step")
ID_NAMES = ("unique_id", "series_id", "series", "id")
# Usual names of a panel's key; taken as the id column only when the values are not numbers, so a
# numeric target is never taken for an id.
ENTITY_NAMES = ("symbol", "ticker", "store", "store_id", "item", "item_id", "sku", "product", "firm", "company",
                "country", "region", "city", "station", "site", "sensor", "location")
TARGET_NAMES = ("y", "value", "target")
YEAR_NAMES = ("year", "yr")
QUARTER_NAMES = ("quarter", "qtr", "q")
MONTH_NAMES = ("month", "mon")
FILL_POLICIES = ("none", "ffill", "interpolate", "zero")
DEFAULT_ID = "main"


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


@dataclass
class Series:
    id: str
    times: pd.Index  # DatetimeIndex, or an int64 Index for integer steps
    values: np.ndarray  # (T, C) float64 in original units


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

    @property
    def integer_time(self) -> bool:
        return not isinstance(self.series[0].times, pd.DatetimeIndex)


def _pick(header: list[str], names: tuple[str, ...], exclude: set[str]) -> str | None:
    lowered = {h.lower(): h for h in header if h not in exclude}
    return next((lowered[n] for n in names if n in lowered), None)


def _require(column: str, header: list[str], name: str, role: str) -> str:
    if column not in header:
        raise InputError(f"{name}: no column {column!r} (the {role}); the columns are: {', '.join(header)}")
    return column


def _is_key(raw: np.ndarray) -> bool:
    """Values that can name series: not (all) numbers, and repeated, as a panel's key is."""
    return not looks_numeric(raw).all() and len(set(raw)) < len(raw)


def infer_frequency(times: pd.Index) -> str | None:
    """The pandas offset alias (or integer step) that puts every timestamp on one regular grid.

    Business days ("B") when every timestamp is a weekday at one time of day, the usual step is a
    day and the data spans a weekend; holidays are then gaps on that grid.
    """
    if len(times) < 2:
        return None
    if not isinstance(times, pd.DatetimeIndex):
        diffs = np.diff(times.to_numpy())
        step = int(np.gcd.reduce(diffs)) if len(diffs) else 1
        return str(step) if step > 0 else None
    if len(times) >= 3:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas 3 announces infer_freq's future return type
            freq = pd.infer_freq(times)
        if freq:
            return pd.tseries.frequencies.to_offset(freq).freqstr
    diffs = np.diff(times.to_numpy())  # timedelta64 in the index's own resolution
    values, counts = np.unique(diffs, return_counts=True)
    mode = pd.Timedelta(values[np.argmax(counts)])
    days = mode / pd.Timedelta(days=1)
    first_month = times[0].strftime("%b").upper()
    if _business_days(times, diffs, mode):
        candidates = ["B"]
    elif 27 <= days <= 32:
        candidates = ["MS", "ME", "BMS", "BME"]
    elif 88 <= days <= 93:
        candidates = [f"QS-{m}" for m in ("JAN", "FEB", "MAR")] + [f"QE-{m}" for m in ("DEC", "JAN", "FEB")]
    elif 364 <= days <= 367:
        candidates = ["YS-JAN", "YE-DEC", f"YS-{first_month}", f"YE-{first_month}"]
    elif days == 7:
        candidates = [f"W-{times[0].day_name()[:3].upper()}"]
    else:
        candidates = [_step_alias(mode)]
    for candidate in candidates:
        try:
            on_grid = times.difference(grid(times[0], times[-1], candidate, len(times))).empty
        except InputError:
            continue
        if on_grid:
            return pd.tseries.frequencies.to_offset(candidate).freqstr
    return None


def _business_days(times: pd.DatetimeIndex, diffs: np.ndarray, mode: pd.Timedelta) -> bool:
    if mode != pd.Timedelta(days=1) or (times.day_of_week >= 5).any():
        return False
    clock = times - times.normalize()
    weekday = times.day_of_week.to_numpy()
    spans_weekend = (np.diff(weekday) <= 0) | (diffs >= np.timedelta64(7, "D"))
    return bool((clock == clock[0]).all() and spans_weekend.any())


def _step_alias(step: pd.Timedelta) -> str:
    """A step as an alias: whole days as "D"/"2D" (pandas would say "24h"), else pandas' own."""
    if step > pd.Timedelta(0) and step % pd.Timedelta(days=1) == pd.Timedelta(0):
        n = step // pd.Timedelta(days=1)
        return "D" if n == 1 else f"{n}D"
    return pd.tseries.frequencies.to_offset(step).freqstr


def grid(start, end, freq: str, n_hint: int) -> pd.Index:
    """The regular grid from ``start`` to ``end``; refuses absurd sizes (a wrong --freq)."""
    if isinstance(start, (int, np.integer)):
        return pd.Index(np.arange(start, end + 1, int(freq), dtype=np.int64))
    offset = pd.tseries.frequencies.to_offset(freq)
    if isinstance(offset, pd.offsets.Tick):  # count without building the grid: "1us" over a year is 3e13 rows
        periods = int((end - start) / pd.Timedelta(offset)) + 1
    else:
        periods = len(pd.date_range(start, end, freq=freq)) if n_hint < 1_000_000 else 0
    if periods > 100 * n_hint + 10_000:
        raise InputError(f"frequency {freq!r} would need {periods} rows to cover {n_hint} timestamps; check --freq")
    return pd.date_range(start, end, freq=freq)


def future_times(last, freq: str, horizon: int) -> pd.Index:
    """The ``horizon`` timestamps after ``last`` on the series' grid."""
    if isinstance(last, (int, np.integer)):
        return pd.Index(last + int(freq) * np.arange(1, horizon + 1), dtype=np.int64)
    return pd.date_range(last, periods=horizon + 1, freq=freq)[1:]


def time_features(times: pd.Index) -> np.ndarray | None:
    """Calendar features (T, F) in [-0.5, 0.5]; None for integer steps (see models._layers.N_TIME_FEATURES)."""
    if not isinstance(times, pd.DatetimeIndex):
        return None
    return np.stack(
        [
            times.hour / 23.0 - 0.5,
            times.day_of_week / 6.0 - 0.5,
            (times.day - 1) / 30.0 - 0.5,
            (times.day_of_year - 1) / 365.0 - 0.5,
            (times.month - 1) / 11.0 - 0.5,
        ],
        axis=1,
    ).astype(np.float32)


def _fill(values: np.ndarray, policy: str) -> np.ndarray:
    frame = pd.DataFrame(values)
    if policy == "zero":
        frame = frame.fillna(0.0)
    elif policy == "ffill":
        frame = frame.ffill().bfill()
    elif policy == "interpolate":
        frame = frame.interpolate(limit_direction="both")
    return frame.to_numpy(dtype=np.float64)


_CHECK_READING = ("check --freq, and how the dates are read: --dayfirst or --monthfirst for dates like 01.02.2024, "
                  "or --date-format")


def _regularise(series: Series, freq: str, policy: str, name: str, notes: list[str]) -> Series:
    """Check ``series`` lies on the ``freq`` grid without gaps; fill gaps when a policy allows.

    Filling is refused when the grid has more missing timestamps than observed ones: the frequency
    or the reading of the dates is then wrong, and filling would invent most of the series.
    """
    times = series.times
    full = grid(times[0], times[-1], freq, len(times))
    off_grid = times.difference(full)
    label = f"series {series.id!r}: " if series.id != DEFAULT_ID else ""
    if not off_grid.empty:
        raise InputError(
            f"{name}: {label}timestamp {off_grid[0]} is off the {freq!r} grid that starts at {times[0]}; "
            "the spacing is irregular: set the frequency with --freq or resample the data"
        )
    if len(full) == len(times):
        return series
    position = int(np.argmax(np.asarray(full[: len(times)]) != np.asarray(times)))
    missing, observed = len(full) - len(times), len(times)
    business = freq == "B"
    what = ("business day" if business else "timestamp") + ("s" if missing != 1 else "")
    gap = (f"gap after {times[position - 1]}: next timestamp is {times[position]}, expected {full[position]} "
           f"(frequency {freq!r}{', business days Monday to Friday' if business else ''})")
    if missing > observed:
        wrong = (f"{missing} {what} missing for {observed} observed, so the frequency {freq!r} looks wrong "
                 f"(dates misread, e.g. day and month swapped, or a wrong --freq); {_CHECK_READING}")
        if policy == "none":
            raise InputError(f"{name}: {label}{gap}; {wrong}")
        raise InputError(f"{name}: {label}refusing --fill {policy}: it would invent more rows than were read; "
                         f"{gap}; {wrong}")
    if policy == "none":
        raise InputError(
            f"{name}: {label}{gap}; {missing} {what} missing in all{' (holidays?)' if business else ''}. "
            "Fill them with --fill ffill|interpolate|zero, or set another --freq"
        )
    notes.append(f"{label}filled {missing} missing {what} ({policy})")
    frame = pd.DataFrame(series.values, index=times).reindex(full)
    return Series(series.id, full, frame.to_numpy(dtype=np.float64))


def load_series(path: str, config: DataConfig = DataConfig()) -> SeriesSet:
    """Read, validate and regularise the series in ``path`` (``-`` for stdin)."""
    _check_config(config)
    name, raw = read_bytes(path)
    return series_from_text(name, decode(name, raw), config)


def _check_config(config: DataConfig) -> None:
    if config.fill not in FILL_POLICIES:
        raise InputError(f"--fill {config.fill!r}: choose one of {', '.join(FILL_POLICIES)}")
    if config.decimal not in (None, ".", ","):
        raise InputError(f"--decimal {config.decimal!r}: use . (1234.5) or , (1234,5)")


def series_from_text(name: str, text: str, config: DataConfig = DataConfig()) -> SeriesSet:
    _check_config(config)
    header, columns, lines, _ = parse_table(name, text)
    notes: list[str] = []
    id_col = _id_column(config, header, columns, name, notes)
    used = {id_col} - {None}
    time_cols = _time_columns(config, header, columns, used, name)
    used |= set(time_cols)
    candidates = [h for h in header if h not in used]
    targets = [_require(t, header, name, "target") for t in config.target]
    overlap = set(targets) & used
    if overlap:
        raise InputError(f"{name}: column {overlap.pop()!r} cannot be both the target and the time or id column")
    proven = choose_decimal(name, {c: columns[c] for c in candidates}, lines) if not config.decimal else None
    decimal = config.decimal or proven or "."
    if not targets:
        if not candidates:
            raise InputError(f"{name}: no column left to forecast; columns are: {', '.join(header)}")
        targets = [_default_target(candidates, columns, decimal, notes)]
    values = np.stack([parse_numbers(columns[t], t, lines, name, decimal, forced=bool(config.decimal))
                       for t in targets], axis=1)
    ambiguous = [] if config.decimal or proven else [n for n in (decimal_note(columns[t], t) for t in targets) if n]
    notes.extend(ambiguous)
    ids = np.array([str(v).strip() for v in columns[id_col]], dtype=object) if id_col else None
    if ids is not None and (ids == "").any():
        i = int(np.argmax(ids == ""))
        raise InputError(f"{name}: line {lines[i]}, column {id_col!r}: empty series id")
    times, dayfirst = _read_times(config, time_cols, columns, lines, ids, name, notes)

    series, missing_lines = [], []
    order = list(dict.fromkeys(ids)) if ids is not None else [DEFAULT_ID]
    for sid in order:
        rows = np.flatnonzero(ids == sid) if ids is not None else np.arange(len(lines))
        t, v, ln = times[rows], values[rows], lines[rows]
        if not t.is_monotonic_increasing:
            sort = np.argsort(np.asarray(t), kind="stable")
            t, v, ln = t[sort], v[sort], ln[sort]
            notes.append(f"rows of series {sid!r} were not in time order; sorted them")
        dup = np.flatnonzero(np.asarray(t[1:]) == np.asarray(t[:-1]))
        if len(dup):
            label = f"series {sid!r}: " if ids is not None else ""
            raise InputError(
                f"{name}: {label}timestamp {t[dup[0]]} appears twice (lines {ln[dup[0]]} and {ln[dup[0] + 1]})"
                + _unique_key_hint(header, columns, times, ids, id_col, time_cols, set(used) | set(targets))
            )
        missing_lines.extend(ln[np.isnan(v).any(axis=1)].tolist())
        series.append(Series(sid, t, v))

    if missing_lines and config.fill == "none":
        first = ", ".join(str(x) for x in sorted(missing_lines)[:5])
        raise InputError(
            f"{name}: {len(missing_lines)} missing values (first at lines {first}); "
            "choose how to fill them with --fill ffill|interpolate|zero"
        )
    freq = _check_freq(config.freq, series[0].times) if config.freq else _common_frequency(series, name)
    series = [_regularise(s, freq, config.fill, name, notes) for s in series]
    if missing_lines or any(np.isnan(s.values).any() for s in series):
        for s in series:
            if np.isnan(s.values).all(axis=0).any():
                raise InputError(f"{name}: series {s.id!r} has no values at all in a target column")
        series = [Series(s.id, s.times, _fill(s.values, config.fill)) for s in series]
        if missing_lines:
            notes.append(f"filled {len(missing_lines)} missing values ({config.fill})")
    return SeriesSet(name, ",".join(time_cols) or None, targets, id_col, freq, series, notes,
                     decimal=config.decimal or proven or ("." if ambiguous else None), dayfirst=dayfirst,
                     date_format=config.date_format, fill=config.fill, freq_given=config.freq is not None)


def _id_column(config: DataConfig, header: list[str], columns: dict, name: str, notes: list[str]) -> str | None:
    if config.id_col:
        return _require(config.id_col, header, name, "series id column")
    named = _pick(header, ID_NAMES, set())
    if named:
        return named
    lowered = {h.lower(): h for h in header}
    entity = next((lowered[n] for n in ENTITY_NAMES if n in lowered and _is_key(columns[lowered[n]])), None)
    if entity:
        count = len(set(pd.Series(columns[entity], dtype=object).astype(str).str.strip()))
        notes.append(f"series id column: {entity} ({count} series; choose another with --id-col)")
    return entity


def _time_columns(config: DataConfig, header: list[str], columns: dict, used: set[str], name: str) -> list[str]:
    """The time column, or a year column and a quarter or month column to combine; [] for none."""
    if config.time_col:
        if config.time_col in header or "," not in config.time_col:
            return [_require(config.time_col, header, name, "time column")]
        parts = [p.strip() for p in config.time_col.split(",")]
        if len(parts) != 2:
            raise InputError(f"--time-col {config.time_col!r}: give one column, or a year and a quarter or month "
                             "column, e.g. --time-col year,quarter")
        return [_require(p, header, name, "time column") for p in parts]
    lowered = {h.lower(): h for h in header if h not in used}
    year = _pick(header, YEAR_NAMES, used)
    if year and not any(n in lowered for n in TIME_NAMES if n not in ("year", "month")) \
            and pd.Series(columns[year], dtype=object).astype(str).str.strip().str.fullmatch(r"\d{4}").all():
        for names, quarterly in ((QUARTER_NAMES, True), (MONTH_NAMES, False)):
            period = _pick(header, names, used | {year})
            if period and is_period_column(columns[period], quarterly):
                return [year, period]
    time_col = _pick(header, TIME_NAMES, used)
    first = next((h for h in header if h not in used), None)
    if time_col is None and first is not None and len(header) > 1:
        sample = columns[first][:20]
        if not all(INTEGER.match(str(v).strip()) for v in sample):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                if pd.to_datetime(pd.Series(sample).str.strip(), format="mixed", errors="coerce").notna().all():
                    time_col = first
    return [time_col] if time_col else []


def _read_times(config: DataConfig, time_cols: list[str], columns: dict, lines: np.ndarray, ids: np.ndarray | None,
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
    readings = parse_times(columns[column], column, lines, name, config.dayfirst, config.date_format)
    if len(readings) == 2:
        dayfirst = _choose_order(readings, ids, config.freq, columns[column], column, name, notes)
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


def _choose_order(readings: dict, ids: np.ndarray | None, freq: str | None, raw: np.ndarray, column: str,
                  name: str, notes: list[str]) -> bool | None:
    """Day first or month first, when no date in the column proves either: the one order whose reading
    is a regular series; an error when both or neither are."""
    differs = np.asarray(readings[True] != readings[False])
    if not differs.any():
        return None  # every date has day == month: both orders read the same
    example = raw[int(np.argmax(differs))].strip()
    plausible = [order for order, times in readings.items() if _regular_reading(times, ids, freq)]
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


def _regular_reading(times: pd.DatetimeIndex, ids: np.ndarray | None, freq: str | None) -> bool:
    """Each series strictly increasing (or decreasing) in file order, on a grid where no more
    timestamps are missing than observed."""
    frame = pd.DataFrame({"id": ids if ids is not None else DEFAULT_ID, "t": times})
    step = frame.groupby("id", sort=False)["t"].diff().dropna()
    if not ((step > pd.Timedelta(0)).all() or (step < pd.Timedelta(0)).all()):
        return False
    longest = frame["id"].value_counts().index[0]
    t = pd.DatetimeIndex(frame.loc[frame["id"] == longest, "t"]).sort_values()
    step_freq = _check_freq(freq, t) if freq else infer_frequency(t)
    if step_freq is None:
        return False
    try:
        full = grid(t[0], t[-1], step_freq, len(t))
    except InputError:
        return False
    return t.difference(full).empty and len(full) - len(t) <= len(t)


def _unique_key_hint(header: list[str], columns: dict, times: pd.Index, ids: np.ndarray | None, id_col: str | None,
                     time_cols: list[str], exclude: set[str]) -> str:
    """The column whose values would make the repeated timestamps unique, as advice; '' when none does.

    Only columns whose values repeat and are not fractional numbers qualify; text columns, then
    those with fewest distinct values, come first."""
    base = pd.DataFrame({"t": np.asarray(times), "id": ids if ids is not None else ""})
    found = []
    for column in header:
        if column in exclude:
            continue
        text = pd.Series(columns[column], dtype=object).astype(str).str.strip()
        integers = bool(text.str.fullmatch(INTEGER.pattern).all())
        if text.nunique() >= len(text) or (looks_numeric(columns[column]).all() and not integers):
            continue
        if not base.assign(key=text.to_numpy()).duplicated().any():
            found.append((integers, text.nunique(), column))
    if not found:
        return ""
    column = min(found)[2]
    if len(time_cols) == 1 and time_cols[0].lower() in YEAR_NAMES \
            and column.lower() in QUARTER_NAMES + MONTH_NAMES:
        return f"; column {column!r} holds the period within the year: pass --time-col {time_cols[0]},{column}"
    if ids is None:
        return f"; column {column!r} would make the timestamps unique: pass --id-col {column}"
    return (f"; column {column!r} would make them unique within each {id_col!r} series: combine the two into one "
            "id column")


def _default_target(candidates: list[str], columns: dict, decimal: str, notes: list[str]) -> str:
    """A column named like a target, else the last numeric column whose values vary (a gauge stuck at
    0 is no target), else the last numeric column, else the last column (whose error then says why)."""
    named = _pick(candidates, TARGET_NAMES, set())
    if named:
        return named
    numbers = {c: _numbers(columns[c], decimal) for c in candidates}
    numeric = [c for c, v in numbers.items() if v is not None]
    if not numeric:
        return candidates[-1]
    varying = [c for c in numeric if np.unique(numbers[c][~np.isnan(numbers[c])]).size > 1]
    target = (varying or numeric)[-1]
    passed = numeric[numeric.index(target) + 1:]
    if passed:
        notes.append(f"target: {target} (the last numeric column that varies: {', '.join(passed)} "
                     f"{'is' if len(passed) == 1 else 'are'} constant; choose others with --target)")
    elif len(numeric) > 1:
        notes.append(f"target: {target} (the last numeric column; choose others with --target)")
    return target


def _numbers(raw: np.ndarray, decimal: str) -> np.ndarray | None:
    try:
        return parse_numbers(raw, "", np.zeros(len(raw), dtype=int), "", decimal)
    except InputError:
        return None


def _check_freq(freq: str, times: pd.Index) -> str:
    """The user's --freq as a canonical alias, or an error: a positive step for integer times, else an offset."""
    if not isinstance(times, pd.DatetimeIndex):
        if not INTEGER.match(freq.strip()) or int(freq) < 1:
            raise InputError(f"--freq {freq!r}: the time column holds integer steps; give the step as a whole "
                             "number, e.g. --freq 1")
        return str(int(freq))
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except ValueError:
        offset = None
    if offset is None or offset.n < 1:
        raise InputError(f"--freq {freq!r} is not a frequency for timestamps; use a pandas alias such as "
                         "h, D, B, W, MS or 15min")
    return offset.freqstr


def _common_frequency(series: list[Series], name: str) -> str:
    longest = max(series, key=lambda s: len(s.times))
    freq = infer_frequency(longest.times)
    if freq is None:
        if len(longest.times) < 2:
            raise InputError(f"{name}: only one row; a forecast needs a history of many rows")
        steps = np.diff(np.asarray(longest.times))
        values, counts = np.unique(steps, return_counts=True)
        usual = values[np.argmax(counts)]
        i = int(np.argmax(steps != usual))  # the first place the spacing breaks from the usual step
        usual = _step_alias(pd.Timedelta(usual))
        raise InputError(
            f"{name}: cannot infer a regular frequency from the timestamps of series {longest.id!r}: "
            f"the usual step is {usual!r}, but {longest.times[i]} is followed by {longest.times[i + 1]}; "
            "set it with --freq (e.g. h, D, B, W, MS) and --fill, or resample the data"
        )
    return freq


def season_length(freq: str) -> int:
    """The natural season of a frequency: a day for hourly and minute data (24, 96 for 15min), 7 for
    daily, 52 weekly, 12 monthly, 4 quarterly; 1 (no season) otherwise."""
    if freq.isdigit():
        return 1
    base = pd.tseries.frequencies.to_offset(freq)
    name = base.rule_code.split("-")[0].upper()
    n = getattr(base, "n", 1) or 1
    table = {"H": 24, "h": 24, "T": 1440, "MIN": 1440, "D": 7, "B": 5, "W": 52, "MS": 12, "ME": 12, "M": 12,
             "BMS": 12, "BME": 12, "QS": 4, "QE": 4, "Q": 4, "YS": 1, "YE": 1, "Y": 1, "S": 60}
    season = table.get(name, table.get(name.lower(), 1))
    return max(1, season // n) if season > 1 else 1


def write_csv(frame: pd.DataFrame) -> bytes:
    """A forecast or table as UTF-8 CSV bytes; floats keep full precision (lossless round-trip)."""
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
