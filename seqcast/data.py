"""Reading series from CSV: delimiter, columns, timestamps, numbers, frequency, gaps and missing values.

The reader checks what pandas would let slide (short rows, mixed date formats, duplicate or missing
timestamps) and raises ``InputError`` naming the file, line, column, series and value. Splits,
scaling and windows live in ``windows.py``.
"""

from __future__ import annotations

import csv
import io
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError

TIME_NAMES = ("ds", "date", "datetime", "timestamp", "time", "period", "month", "week", "day", "year", "step")
ID_NAMES = ("unique_id", "series_id", "series", "id")
TARGET_NAMES = ("y", "value", "target")
FILL_POLICIES = ("none", "ffill", "interpolate", "zero")
DEFAULT_ID = "main"
_MISSING = {"", "na", "n/a", "nan", "null", "none", "-", "?", "#n/a"}
_INTEGER = re.compile(r"^[+-]?\d+$")
_TZ_SUFFIX = re.compile(r"(?:Z|[+-]\d\d:?\d\d)$")


@dataclass(frozen=True)
class DataConfig:
    """How to read a CSV: which columns hold what, the frequency, and how to fill holes."""

    time_col: str | None = None
    target: tuple[str, ...] = ()
    id_col: str | None = None
    freq: str | None = None
    fill: str = "none"


@dataclass
class Series:
    id: str
    times: pd.Index  # DatetimeIndex, or an int64 Index for integer steps
    values: np.ndarray  # (T, C) float64 in original units


@dataclass
class SeriesSet:
    """Everything read from one CSV: one or many series sharing targets and frequency."""

    source: str
    time_col: str | None
    targets: list[str]
    id_col: str | None
    freq: str  # pandas offset alias ("h", "W-SUN", "MS"), or the integer step ("1")
    series: list[Series]
    notes: list[str] = field(default_factory=list)

    @property
    def integer_time(self) -> bool:
        return not isinstance(self.series[0].times, pd.DatetimeIndex)


def read_bytes(path: str) -> tuple[str, bytes]:
    """The raw bytes of ``path``, or of stdin for ``-``, with the name errors should use."""
    if path == "-":
        if sys.stdin is None or sys.stdin.isatty():
            raise InputError("reading data from stdin ('-'), but stdin is a terminal; pipe a CSV in, e.g. `cat data.csv | seqcast ... -`")
        return "<stdin>", sys.stdin.buffer.read()
    try:
        return path, Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a CSV file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None


def decode(name: str, data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise InputError(f"{name}: looks like UTF-16 but cannot be decoded; save it as UTF-8") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{name}: line {line}: byte 0x{data[exc.start]:02x} is not UTF-8; save the file as UTF-8"
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise InputError(f"{name}: line {line}: contains a NUL byte; this is not a text CSV file")
    return text


def _delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def parse_table(name: str, text: str) -> tuple[list[str], dict[str, np.ndarray], np.ndarray, str]:
    """Split CSV text into header, string columns and the source line of each row.

    Returns ``(header, columns, lines, delimiter)``. Every row must have as many fields as the header.
    """
    stripped = text.lstrip("\r\n")
    if not stripped.strip():
        raise InputError(f"{name}: no data rows (the input is empty)")
    skipped = text[: len(text) - len(stripped)].count("\n")
    delimiter = _delimiter(stripped.splitlines()[0])
    reader = csv.reader(io.StringIO(stripped, newline=""), delimiter=delimiter)
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        header = [h.strip() for h in next(reader)]
        width = len(header)
        start = reader.line_num + 1  # a quoted field may span lines: name the line where the row starts
        for row in reader:
            line, start = start + skipped, reader.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != width:
                spans = f" (a quoted field runs on to line {reader.line_num + skipped}; is a quote unclosed?)" \
                    if reader.line_num + skipped > line else ""
                raise InputError(f"{name}: line {line}: expected {width} fields, saw {len(row)}{spans}")
            rows.append(row)
            lines.append(line)
    except csv.Error as exc:
        raise InputError(f"{name}: line {reader.line_num + skipped}: {exc}") from None
    for i, column in enumerate(header):
        if not column:
            raise InputError(f"{name}: line {1 + skipped}: column {i + 1} has no name; every column needs a header")
        if column in header[:i]:
            raise InputError(f"{name}: line {1 + skipped}: column name {column!r} appears twice")
    if not rows:
        raise InputError(f"{name}: no data rows (only a header: {', '.join(header)})")
    table = np.array(rows, dtype=object).reshape(len(rows), width)
    columns = {column: table[:, i] for i, column in enumerate(header)}
    return header, columns, np.asarray(lines), delimiter


def parse_numbers(raw: np.ndarray, column: str, lines: np.ndarray, name: str, decimal_comma: bool) -> np.ndarray:
    """Strings -> float64, NaN where a value is missing; a non-number or infinity is an error."""
    text = pd.Series(raw, dtype=object).str.strip()
    missing = text.str.lower().isin(_MISSING).to_numpy()
    if decimal_comma:
        cleaned = text.str.replace(r"^([+-]?\d{1,3}(?:\.\d{3})+)(?=,|$)", lambda m: m.group(1).replace(".", ""), regex=True)
        cleaned = cleaned.str.replace(",", ".", regex=False)
    else:
        cleaned = text.str.replace(r"^([+-]?\d{1,3}(?:,\d{3})+)(?=\.|$)", lambda m: m.group(1).replace(",", ""), regex=True)
    values = pd.to_numeric(cleaned.where(~missing, None), errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(values) & ~missing
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{name}: line {lines[i]}, column {column!r}: {raw[i]!r} is not a number")
    infinite = np.isinf(values)
    if infinite.any():
        i = int(np.argmax(infinite))
        raise InputError(f"{name}: line {lines[i]}, column {column!r}: {raw[i]!r} is not a finite number")
    return values


def parse_times(raw: np.ndarray, column: str, lines: np.ndarray, name: str) -> pd.Index:
    """Strings -> DatetimeIndex (UTC when the values carry offsets) or int64 Index of steps."""
    text = pd.Series(raw, dtype=object).str.strip()
    empty = (text == "").to_numpy()
    if empty.any():
        i = int(np.argmax(empty))
        raise InputError(f"{name}: line {lines[i]}, column {column!r}: empty timestamp")
    if text.str.fullmatch(_INTEGER.pattern).all():
        return pd.Index(text.astype(np.int64).to_numpy(), dtype=np.int64)
    has_tz = text.str.contains(_TZ_SUFFIX.pattern, regex=True).to_numpy()
    if has_tz.any() and not has_tz.all():
        i = int(np.argmax(has_tz != has_tz[0]))
        raise InputError(
            f"{name}: line {lines[i]}, column {column!r}: {raw[i]!r} mixes timestamps with and "
            "without a time zone offset; use one form for every row"
        )
    best = None
    for fmt in ("ISO8601", None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            try:
                parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=bool(has_tz.all()))
            except (ValueError, TypeError, OverflowError):
                continue
        failed = parsed.isna().to_numpy()
        if not failed.any():
            return pd.DatetimeIndex(parsed)
        if best is None or failed.sum() < best.sum():
            best = failed
    i = int(np.argmax(best)) if best is not None else 0
    raise InputError(
        f"{name}: line {lines[i]}, column {column!r}: cannot read {raw[i]!r} as a timestamp"
        + (f" in the format of line {lines[0]} ({raw[0]!r})" if i else "")
        + "; use one date format (ISO 8601 like 2024-01-31 13:00 is safest)"
    )


def _pick(header: list[str], names: tuple[str, ...], exclude: set[str]) -> str | None:
    lowered = {h.lower(): h for h in header if h not in exclude}
    return next((lowered[n] for n in names if n in lowered), None)


def _require(column: str, header: list[str], name: str, role: str) -> str:
    if column not in header:
        raise InputError(f"{name}: no column {column!r} (the {role}); the columns are: {', '.join(header)}")
    return column


def infer_frequency(times: pd.Index) -> str | None:
    """The pandas offset alias (or integer step) that puts every timestamp on one regular grid."""
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
    if 27 <= days <= 32:
        candidates = ["MS", "ME"]
    elif 88 <= days <= 93:
        candidates = [f"QS-{m}" for m in ("JAN", "FEB", "MAR")] + [f"QE-{m}" for m in ("DEC", "JAN", "FEB")]
    elif 364 <= days <= 367:
        candidates = ["YS", "YE"]
    elif days == 7:
        candidates = [f"W-{times[0].day_name()[:3].upper()}"]
    else:
        candidates = [pd.tseries.frequencies.to_offset(mode).freqstr]
    for candidate in candidates:
        if times.difference(grid(times[0], times[-1], candidate, len(times))).empty:
            return candidate
    return None


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
    """Calendar features (T, F) in [-0.5, 0.5]; None for integer steps (see models.N_TIME_FEATURES)."""
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


def _regularise(series: Series, freq: str, policy: str, name: str, notes: list[str]) -> Series:
    """Check ``series`` lies on the ``freq`` grid without gaps; fill gaps when a policy allows."""
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
    missing = len(full) - len(times)
    if policy == "none":
        raise InputError(
            f"{name}: {label}gap after {times[position - 1]}: next timestamp is {times[position]}, "
            f"expected {full[position]} (frequency {freq!r}); {missing} timestamps missing in all. "
            "Fill them with --fill ffill|interpolate|zero, or set another --freq"
        )
    notes.append(f"{label}filled {missing} missing timestamps ({policy})")
    frame = pd.DataFrame(series.values, index=times).reindex(full)
    return Series(series.id, full, frame.to_numpy(dtype=np.float64))


def load_series(path: str, config: DataConfig = DataConfig()) -> SeriesSet:
    """Read, validate and regularise the series in ``path`` (``-`` for stdin)."""
    if config.fill not in FILL_POLICIES:
        raise InputError(f"--fill {config.fill!r}: choose one of {', '.join(FILL_POLICIES)}")
    name, raw = read_bytes(path)
    return series_from_text(name, decode(name, raw), config)


def series_from_text(name: str, text: str, config: DataConfig = DataConfig()) -> SeriesSet:
    header, columns, lines, delimiter = parse_table(name, text)
    notes: list[str] = []
    id_col = _require(config.id_col, header, name, "series id column") if config.id_col else _pick(header, ID_NAMES, set())
    used = {id_col} - {None}
    if config.time_col:
        time_col = _require(config.time_col, header, name, "time column")
    else:
        time_col = _pick(header, TIME_NAMES, used)
        first = next((h for h in header if h not in used), None)
        if time_col is None and first is not None and len(header) > 1:
            sample = columns[first][:20]
            if not all(_INTEGER.match(str(v).strip()) for v in sample):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    if pd.to_datetime(pd.Series(sample).str.strip(), format="mixed", errors="coerce").notna().all():
                        time_col = first
    used |= {time_col} - {None}
    candidates = [h for h in header if h not in used]
    decimal_comma = delimiter != ","
    if config.target:
        targets = [_require(t, header, name, "target") for t in config.target]
    else:
        if not candidates:
            raise InputError(f"{name}: no column left to forecast; columns are: {', '.join(header)}")
        targets = [_pick(candidates, TARGET_NAMES, set())] if _pick(candidates, TARGET_NAMES, set()) else []
        if not targets:
            numeric = [c for c in candidates if _parses(columns[c], decimal_comma)]
            targets = [numeric[-1] if numeric else candidates[-1]]
            if len(numeric) > 1:
                notes.append(f"target: {targets[0]} (the last numeric column; choose others with --target)")
    overlap = set(targets) & (used)
    if overlap:
        raise InputError(f"{name}: column {overlap.pop()!r} cannot be both the target and the time or id column")
    values = np.stack([parse_numbers(columns[t], t, lines, name, decimal_comma) for t in targets], axis=1)
    if time_col:
        times = parse_times(columns[time_col], time_col, lines, name)
    else:
        times = pd.Index(np.arange(len(lines), dtype=np.int64))
        notes.append("no time column found: rows are numbered steps (name one with --time-col)")
    ids = np.array([str(v).strip() for v in columns[id_col]], dtype=object) if id_col else None
    if ids is not None and (ids == "").any():
        i = int(np.argmax(ids == ""))
        raise InputError(f"{name}: line {lines[i]}, column {id_col!r}: empty series id")

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
    return SeriesSet(name, time_col, targets, id_col, freq, series, notes)


def _parses(raw: np.ndarray, decimal_comma: bool) -> bool:
    try:
        parse_numbers(raw, "", np.zeros(len(raw), dtype=int), "", decimal_comma)
    except InputError:
        return False
    return True


def _check_freq(freq: str, times: pd.Index) -> str:
    """The user's --freq as a canonical alias, or an error: a positive step for integer times, else an offset."""
    if not isinstance(times, pd.DatetimeIndex):
        if not _INTEGER.match(freq.strip()) or int(freq) < 1:
            raise InputError(f"--freq {freq!r}: the time column holds integer steps; give the step as a whole "
                             "number, e.g. --freq 1")
        return str(int(freq))
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except ValueError:
        offset = None
    if offset is None or offset.n < 1:
        raise InputError(f"--freq {freq!r} is not a frequency for timestamps; use a pandas alias such as "
                         "h, D, W, MS or 15min")
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
        usual = pd.tseries.frequencies.to_offset(pd.Timedelta(usual)).freqstr
        raise InputError(
            f"{name}: cannot infer a regular frequency from the timestamps of series {longest.id!r}: "
            f"the usual step is {usual!r}, but {longest.times[i]} is followed by {longest.times[i + 1]}; "
            "set it with --freq (e.g. h, D, W, MS) and --fill, or resample the data"
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
             "QS": 4, "QE": 4, "Q": 4, "YS": 1, "YE": 1, "Y": 1, "S": 60}
    season = table.get(name, table.get(name.lower(), 1))
    return max(1, season // n) if season > 1 else 1


def write_csv(frame: pd.DataFrame) -> bytes:
    """A forecast or table as UTF-8 CSV bytes; floats keep full precision (lossless round-trip)."""
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
