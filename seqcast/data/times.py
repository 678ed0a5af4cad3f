"""Timestamps from text: ISO 8601, day/month order, quarter labels, years, and a year column combined
with a quarter or month column.

ISO 8601 is read first; dates like 01.02.1949 are read day first or month first as the whole column
proves, and when nothing in the column does, as the one order whose reading is a regular series
(``read_times``); anything else is read with one format guessed from the first row. Every function
is vectorised over a column and raises ``InputError`` naming the file, line, column and value. This
is the only place that decides the day/month order.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

from ..errors import InputError
from .cells import INTEGER, TIME_ZONE_OFFSET, stripped
from .config import DataConfig
from .frequency import reads_as_regular

YEAR_NAMES = ("year", "yr")  # a column of years, read as yearly dates, or combined with a period column
QUARTER_NAMES = ("quarter", "qtr", "q")
MONTH_NAMES = ("month", "mon")

# Dates whose first two fields are day and month in an order only the column can tell: 01.02.1949,
# 1/2/49 13:00. The separator must repeat (\2); the year is 4 or 2 digits.
_DAY_MONTH = r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})((?:[ T].*)?)$"


def _to_datetime(text: pd.Series, utc: bool, **kwargs) -> pd.Series | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            return pd.to_datetime(text, errors="coerce", utc=utc, **kwargs)
        except (ValueError, TypeError, OverflowError):
            return None


def _guess(value: str, dayfirst: bool = False) -> str | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Parsing dates in %m %d %Y format when dayfirst=True..."
        return pd.tseries.api.guess_datetime_format(value, dayfirst=dayfirst)


def _swap_day_month(fmt: str) -> str:
    return fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")


def day_month_format(example: str, dayfirst: bool) -> str:
    """The strftime format that reads a date like ``example`` (01.02.1949) in the given order."""
    fmt = _guess(example, dayfirst=True)
    if not fmt or "%d" not in fmt or "%m" not in fmt:
        match = re.match(_DAY_MONTH, example)
        sep, year = (match.group(2), "%Y" if len(match.group(4)) == 4 else "%y") if match else (".", "%Y")
        fmt = f"%d{sep}%m{sep}{year}"
    if fmt.index("%d") > fmt.index("%m"):
        fmt = _swap_day_month(fmt)
    return fmt if dayfirst else _swap_day_month(fmt)


def _order_open(fmt: str | None) -> bool:
    """Whether a guessed format puts day and month first, in an order the value alone cannot tell.
    Year-first formats are always year-month-day."""
    return bool(fmt) and "%d" in fmt and "%m" in fmt and all(
        fmt.index(y) > max(fmt.index("%d"), fmt.index("%m")) for y in ("%Y", "%y") if y in fmt)


def parse_times(raw: np.ndarray, column: str, lines: np.ndarray, name: str, dayfirst: bool | None = None,
                date_format: str | None = None) -> dict[bool | None, pd.Index]:
    """Strings -> DatetimeIndex (UTC when the values carry offsets) or int64 Index of steps.

    Returned keyed by the day/month order used: ``{None: times}`` when the values have no such order
    (ISO, an explicit format, integers), ``{True: ...}`` or ``{False: ...}`` when the column or
    ``dayfirst`` settles it, and both readings when nothing does: the caller chooses.
    """
    text = stripped(raw)
    empty = (text == "").to_numpy()
    if empty.any():
        i = int(np.argmax(empty))
        raise InputError(f"{name}: line {lines[i]}, column {column!r}: empty timestamp")
    has_tz = text.str.contains(TIME_ZONE_OFFSET.pattern, regex=True).to_numpy()
    if date_format:
        return {None: _with_format(text, raw, column, lines, name, date_format, bool(has_tz.any()))}
    if text.str.fullmatch(_WHOLE_FLOAT).all():  # 1700.0: a spreadsheet's whole numbers, read as the integers they are
        text = text.str.replace(r"\.0*$", "", regex=True)
    if text.str.fullmatch(INTEGER.pattern).all():
        return {None: pd.Index(text.astype(np.int64).to_numpy(), dtype=np.int64)}
    quarters = quarter_labels(text)
    if quarters is not None:
        return {None: quarters}
    if has_tz.any() and not has_tz.all():
        i = int(np.argmax(has_tz != has_tz[0]))
        raise InputError(
            f"{name}: line {lines[i]}, column {column!r}: {raw[i]!r} mixes timestamps with and "
            "without a time zone offset; use one form for every row"
        )
    utc = bool(has_tz.all())
    parsed = _to_datetime(text, utc, format="ISO8601")
    if parsed is not None and parsed.notna().all():
        return {None: pd.DatetimeIndex(parsed)}
    failures = [parsed.isna().to_numpy() if parsed is not None else np.ones(len(text), bool)]
    fields = text.str.extract(_DAY_MONTH)
    if fields[0].notna().all() and fields[1].nunique() == 1:
        return _day_month(fields, text, raw, column, lines, name, dayfirst, utc)
    guessed = _guess(text.iloc[0])
    if _order_open(guessed):  # like 1 2 2024: read it both ways, keep the orders that read every value
        readings = _both_orders(text, raw, column, lines, name, dayfirst, utc, failures)
        if readings:
            return readings
    elif guessed:
        parsed = _to_datetime(text, utc, format=guessed)
        if parsed is not None and parsed.notna().all():
            return {None: pd.DatetimeIndex(parsed)}
        failures.append(parsed.isna().to_numpy() if parsed is not None else np.ones(len(text), bool))
    else:
        parsed = _value_by_value(text, raw, column, lines, name, utc, failures)
        if parsed is not None:
            return {None: parsed}
    best = min(failures, key=lambda f: f.sum())
    i = int(np.argmax(best))
    raise InputError(
        f"{name}: line {lines[i]}, column {column!r}: cannot read {raw[i]!r} as a timestamp"
        + (f" in the format of line {lines[0]} ({raw[0]!r})" if i else "")
        + "; use one date format (ISO 8601 like 2024-01-31 13:00 is safest), or give it with --date-format"
    )


def _both_orders(text: pd.Series, raw: np.ndarray, column: str, lines: np.ndarray, name: str,
                 dayfirst: bool | None, utc: bool, failures: list) -> dict[bool | None, pd.Index]:
    """The readings of a day/month format, in the given order or both, that read every value."""
    readings = {}
    for order in [dayfirst] if dayfirst is not None else [True, False]:
        fmt = day_month_format(text.iloc[0], order)
        parsed = _to_datetime(text, utc, format=fmt)
        failed = parsed.isna().to_numpy() if parsed is not None else np.ones(len(text), bool)
        if not failed.any():
            readings[order] = pd.DatetimeIndex(parsed)
        elif dayfirst is not None:
            i = int(np.argmax(failed))
            raise InputError(f"{name}: line {lines[i]}, column {column!r}: cannot read {raw[i]!r} as a date "
                             f"{'day' if order else 'month'} first ({fmt}); give the format with --date-format")
        failures.append(failed)
    return readings


def _value_by_value(text: pd.Series, raw: np.ndarray, column: str, lines: np.ndarray, name: str, utc: bool,
                    failures: list) -> pd.DatetimeIndex | None:
    """No single format fits: each value alone, accepted only where day/month order cannot change a
    date (parsing alone would read 01/02 month first and 13/02 day first in the same column)."""
    month_first, day_first = (_to_datetime(text, utc, format="mixed", dayfirst=d) for d in (False, True))
    if month_first is None or day_first is None:
        return None
    if not (month_first.notna().all() and day_first.notna().all()):
        failures.append(month_first.isna().to_numpy())
        return None
    differs = (month_first != day_first).to_numpy()
    if differs.any():
        i = int(np.argmax(differs))
        raise InputError(
            f"{name}: line {lines[i]}, column {column!r}: {raw[i]!r} reads as {month_first.iloc[i]} month "
            f"first but {day_first.iloc[i]} day first; give the format with --date-format (e.g. '%d/%m/%Y %H:%M')")
    return pd.DatetimeIndex(month_first)


def _with_format(text: pd.Series, raw: np.ndarray, column: str, lines: np.ndarray, name: str, date_format: str,
                 utc: bool) -> pd.DatetimeIndex:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            parsed = pd.to_datetime(text, format=date_format, errors="coerce", utc=utc)
    except ValueError as exc:
        raise InputError(f"--date-format {date_format!r} is not a date format ({exc}); use strftime codes, "
                         "e.g. '%d.%m.%Y %H:%M'") from None
    except (TypeError, OverflowError):
        parsed = pd.Series(pd.NaT, index=text.index)
    failed = parsed.isna().to_numpy()
    if failed.any():
        i = int(np.argmax(failed))
        raise InputError(f"{name}: line {lines[i]}, column {column!r}: {raw[i]!r} does not match --date-format "
                         f"{date_format!r}")
    return pd.DatetimeIndex(parsed)


def _day_month(fields: pd.DataFrame, text: pd.Series, raw: np.ndarray, column: str, lines: np.ndarray, name: str,
               dayfirst: bool | None, utc: bool) -> dict[bool | None, pd.Index]:
    first, second = fields[0].astype(int).to_numpy(), fields[2].astype(int).to_numpy()
    if dayfirst is None:
        day_proof, month_proof = first > 12, second > 12
        if day_proof.any() and month_proof.any():
            d, m = int(np.argmax(day_proof)), int(np.argmax(month_proof))
            raise InputError(
                f"{name}: column {column!r} has dates day first (line {lines[d]}: {raw[d]!r}) and month first "
                f"(line {lines[m]}: {raw[m]!r}); write one order, or give it with --date-format")
        orders = [True] if day_proof.any() else [False] if month_proof.any() else [True, False]
    else:
        orders = [dayfirst]
    year = fields[3].astype(int)
    year = year.where(fields[3].str.len() == 4, year + np.where(year >= 69, 1900, 2000))  # strptime's %y pivot
    readings = {}
    for order in orders:
        day, month = (fields[0], fields[2]) if order else (fields[2], fields[0])
        iso = year.astype(str).str.zfill(4) + "-" + month.str.zfill(2) + "-" + day.str.zfill(2) + fields[4]
        parsed = _to_datetime(iso, utc, format="ISO8601")
        if parsed is None or parsed.isna().any():  # a time part ISO does not cover, such as 1:00 PM;
            parsed = _to_datetime(iso, utc, format="mixed")  # safe per value: the date part is now ISO
        failed = parsed.isna().to_numpy() if parsed is not None else np.ones(len(text), bool)
        if failed.any():
            i = int(np.argmax(failed))
            fmt = day_month_format(text.iloc[i], order)
            raise InputError(f"{name}: line {lines[i]}, column {column!r}: cannot read {raw[i]!r} as a date "
                             f"{'day' if order else 'month'} first ({fmt}); give the format with --date-format")
        readings[order] = pd.DatetimeIndex(parsed)
    return readings


_WHOLE_FLOAT = r"[+-]?\d+\.0*"
_QUARTER_LABELS = (r"(?P<year>\d{4})\s*[-/ ]?\s*[Qq](?P<quarter>[1-4])", r"[Qq](?P<quarter>[1-4])\s*[-/ ]?\s*(?P<year>\d{4})")


def quarter_labels(text: pd.Series) -> pd.DatetimeIndex | None:
    """Quarter labels (``1956 Q1``, ``1956-Q1``, ``1956Q1``, ``Q1 1965``, ``q1/1965``) -> the first day of each
    quarter; None unless every value is one (in one of the two orders)."""
    for pattern in _QUARTER_LABELS:
        fields = text.astype(str).str.strip().str.extract(f"^{pattern}$")
        if len(fields) and fields["year"].notna().all():
            years, quarters = fields["year"].astype(int), fields["quarter"].astype(int)
            return pd.DatetimeIndex(pd.to_datetime(
                pd.DataFrame({"year": years, "month": 3 * quarters - 2, "day": 1})))
    return None


def years_as_dates(times: pd.Index) -> pd.DatetimeIndex | None:
    """Integer years 1000..2999 as 1 January of each year; None when they are not all such years."""
    values = np.asarray(times)
    if len(values) == 0 or values.min() < 1000 or values.max() > 2999:
        return None
    return pd.DatetimeIndex(pd.to_datetime(pd.Series(values.astype(str)), format="%Y"))


_MONTHS = {m.lower(): i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}
_MONTHS.update({pd.Timestamp(2000, i, 1).month_name().lower(): i for i in range(1, 13)})


def year_period_times(year_raw: np.ndarray, period_raw: np.ndarray, year_col: str, period_col: str, quarterly: bool,
                      lines: np.ndarray, name: str) -> pd.DatetimeIndex:
    """A year column and a quarter (1-4, Q1-Q4) or month (1-12, Jan, January) column -> period-start dates."""
    years = stripped(year_raw)
    bad = ~years.str.fullmatch(r"\d{4}").to_numpy(dtype=bool)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{name}: line {lines[i]}, column {year_col!r}: {year_raw[i]!r} is not a 4-digit year")
    period = stripped(period_raw).str.lower()
    if quarterly:
        number = pd.to_numeric(period.str.removeprefix("q"), errors="coerce")
        valid, what = number.isin([1, 2, 3, 4]).to_numpy(), "a quarter (1-4 or Q1-Q4)"
        month = (number - 1) * 3 + 1
    else:
        month = pd.to_numeric(period, errors="coerce").fillna(period.map(_MONTHS))
        valid, what = month.isin(range(1, 13)).to_numpy(), "a month (1-12 or a month name)"
    if not valid.all():
        i = int(np.argmax(~valid))
        raise InputError(f"{name}: line {lines[i]}, column {period_col!r}: {period_raw[i]!r} is not {what}")
    frame = pd.DataFrame({"year": years.astype(int), "month": month.astype(int), "day": 1})
    return pd.DatetimeIndex(pd.to_datetime(frame))


def is_period_column(raw: np.ndarray, quarterly: bool) -> bool:
    """Whether every value names a quarter (1-4, Q1-Q4) or a month (1-12, Jan, January)."""
    period = stripped(raw).str.lower()
    if quarterly:
        return bool(period.str.fullmatch(r"q?[1-4]").all())
    return bool((period.str.fullmatch(r"0?[1-9]|1[0-2]") | period.isin(list(_MONTHS))).all())


def typed_times(values: pd.Series) -> tuple[str, object] | None:
    """A chunk of a time column as the fast reader types it: integer steps or ISO 8601 timestamps (UTC
    when they carry offsets, as ``parse_times`` reads them), with what kind that is ("steps", "naive",
    "utc"); None when it is neither, or mixes offsets with none."""
    text = pd.Series(values.to_numpy(dtype=object), dtype=object)
    if INTEGER.match(text.iloc[0]):  # a cheap look first: the full check only where it can pass
        if text.str.fullmatch(INTEGER.pattern).all():
            try:
                return "steps", text.astype(np.int64).to_numpy()
            except OverflowError:  # beyond 64 bits (pandas 2 raises here): the exact reader names the row
                return None
        return None
    try:
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
    except ValueError:  # different offsets: read in UTC if every value has one
        if not text.str.contains(TIME_ZONE_OFFSET.pattern, regex=True).all():
            return None
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    except (TypeError, OverflowError):
        return None
    if not parsed.notna().all():
        return None
    index = pd.DatetimeIndex(parsed)
    if index.tz is None:
        return "naive", index
    if not text.str.contains(TIME_ZONE_OFFSET.pattern, regex=True).all():  # pandas 2 reads a mix as UTC
        return None
    return "utc", index.tz_convert("UTC")



def read_times(config: DataConfig, time_cols: list[str], columns: dict, lines: np.ndarray, codes: np.ndarray | None,
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
    plausible = [order for order, times in readings.items() if reads_as_regular(times, codes, freq)]
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

