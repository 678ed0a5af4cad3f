"""Reading the values of CSV columns: numbers and timestamps.

Numbers: the decimal separator is decided once per file from what the numbers look like, never from
the delimiter. Timestamps: ISO 8601 first; dates like 01.02.1949 are read day first or month first
as the whole column proves (or, when nothing does, both readings go back to the caller to choose);
anything else is read with one format guessed from the first row. Every function is vectorised over
a column and raises ``InputError`` naming the file, line, column and value.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

from .errors import InputError

MISSING = {"", "na", "n/a", "nan", "null", "none", "-", "?", "#n/a"}
INTEGER = re.compile(r"^[+-]?\d+$")
_TZ_SUFFIX = re.compile(r"(?:Z|[+-]\d\d:?\d\d)$")

# Number shapes, matched against whole stripped fields. A leading group of 1-3 digits that does not
# start with 0 followed by groups of exactly 3 digits could be thousands grouping; anything else with
# a single separator can only be a decimal separator.
_SIGN = r"[+-]?"
_EXP = r"(?:[eE][+-]?\d+)?"
_POINT_GROUPED = rf"{_SIGN}[1-9]\d{{0,2}}(?:\.\d{{3}})+"
_COMMA_GROUPED = rf"{_SIGN}[1-9]\d{{0,2}}(?:,\d{{3}})+"
_COMMA_PROOF = (rf"(?!{_COMMA_GROUPED}\Z)(?:{_SIGN}\d*,\d+{_EXP}|{_SIGN}[1-9]\d{{0,2}}(?:\.\d{{3}})+,\d+"
                rf"|{_SIGN}[1-9]\d{{0,2}}(?:\.\d{{3}}){{2,}})")  # 1,5  1.234,5  1.234.567
_POINT_PROOF = (rf"(?!{_POINT_GROUPED}\Z)(?:{_SIGN}\d*\.\d+{_EXP}|{_SIGN}[1-9]\d{{0,2}}(?:,\d{{3}})+\.\d+"
                rf"|{_SIGN}[1-9]\d{{0,2}}(?:,\d{{3}}){{2,}})")  # 1.5  1,234.5  1,234,567
_AMBIGUOUS_POINT = rf"{_SIGN}[1-9]\d{{0,2}}\.\d{{3}}"  # 1.234: a decimal point, or 1234 grouped
_AMBIGUOUS_COMMA = rf"{_SIGN}[1-9]\d{{0,2}},\d{{3}}"  # 1,234: 1234 grouped, or a decimal comma
_NUMBERISH = rf"{_SIGN}[\d.,]*\d[\d.,]*{_EXP}"

# Dates whose first two fields are day and month in an order only the column can tell: 01.02.1949,
# 1/2/49 13:00. The separator must repeat (\2); the year is 4 or 2 digits.
_DAY_MONTH = r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})((?:[ T].*)?)$"


def _strip(raw: np.ndarray) -> pd.Series:
    return pd.Series(raw, dtype=object).astype(str).str.strip()


def looks_numeric(raw: np.ndarray) -> np.ndarray:
    """Per value: a number in either decimal convention, or a missing-value marker."""
    text = _strip(raw)
    return _matches(text, _NUMBERISH) | text.str.lower().isin(MISSING).to_numpy()


def _distinct(text: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Codes and distinct values: real columns repeat values, so each distinct one is matched once."""
    codes, uniques = pd.factorize(text)
    return codes, pd.Series(uniques, dtype=object)


def _matches(values: pd.Series, pattern: str) -> np.ndarray:
    return values.str.fullmatch(pattern).to_numpy(dtype=bool)


def choose_decimal(name: str, columns: dict[str, np.ndarray], lines: np.ndarray) -> str | None:
    """The decimal separator ('.' or ',') the numbers in ``columns`` prove; None when none proves one.

    Only columns where at least half the values look like numbers give evidence. A column holding
    both decimal commas and decimal points, or two columns that disagree, is an error.
    """
    found: dict[str, tuple[str, int]] = {}  # separator -> (column, row) of its first proof
    for column, raw in columns.items():
        codes, values = _distinct(_strip(raw))
        present = ~values.str.lower().isin(MISSING).to_numpy()[codes]
        if not present.any() or _matches(values, _NUMBERISH)[codes][present].mean() < 0.5:
            continue
        comma, point = _matches(values, _COMMA_PROOF)[codes], _matches(values, _POINT_PROOF)[codes]
        if comma.any() and point.any():
            c, p = int(np.argmax(comma)), int(np.argmax(point))
            raise InputError(
                f"{name}: column {column!r} has both decimal commas (line {lines[c]}: {raw[c]!r}) and decimal "
                f"points (line {lines[p]}: {raw[p]!r}); write one, or say which with --decimal . or --decimal ,")
        for separator, proof in ((",", comma), (".", point)):
            if proof.any() and separator not in found:
                found[separator] = (column, int(np.argmax(proof)))
    if len(found) == 2:
        (cc, c), (pc, p) = found[","], found["."]
        raise InputError(
            f"{name}: column {cc!r} has decimal commas (line {lines[c]}: {columns[cc][c]!r}) but column {pc!r} has "
            f"decimal points (line {lines[p]}: {columns[pc][p]!r}); say which the file uses with --decimal . or "
            "--decimal ,")
    return next(iter(found), None)


def decimal_note(raw: np.ndarray, column: str) -> str | None:
    """What a value that reads two ways was taken as, when no number in the file proved the separator."""
    text = _strip(raw)
    point, comma = (_matches(text, p) for p in (_AMBIGUOUS_POINT, _AMBIGUOUS_COMMA))
    if point.any():
        v = text.iloc[int(np.argmax(point))]
        read = f"{v!r} as {v} (a decimal point), not {v.replace('.', '')} (a dot grouping thousands)"
    elif comma.any():
        v = text.iloc[int(np.argmax(comma))]
        read = (f"{v!r} as {v.replace(',', '')} (a comma grouping thousands), not {v.replace(',', '.')} "
                "(a decimal comma)")
    else:
        return None
    return (f"column {column!r}: no number in the file shows its decimal separator; read {read}. "
            "If the file writes decimal commas (1.234,5), pass --decimal ,")


def parse_numbers(raw: np.ndarray, column: str, lines: np.ndarray, name: str, decimal: str = ".",
                  forced: bool = False) -> np.ndarray:
    """Strings -> float64, NaN where a value is missing; a non-number, infinity, or a value that
    contradicts the decimal separator is an error."""
    codes, text = _distinct(_strip(raw))
    missing = text.str.lower().isin(MISSING).to_numpy()
    if decimal == ",":
        contradicts, kind = _matches(text, _POINT_PROOF), "a decimal point (as 1,234.5 does)"
        cleaned = text.str.replace(r"^([+-]?\d{1,3}(?:\.\d{3})+)(?=,|$)", lambda m: m.group(1).replace(".", ""), regex=True)
        cleaned = cleaned.str.replace(",", ".", regex=False)
    else:
        contradicts, kind = _matches(text, _COMMA_PROOF), "a decimal comma (as 1.234,5 does)"
        cleaned = text.str.replace(r"^([+-]?\d{1,3}(?:,\d{3})+)(?=\.|$)", lambda m: m.group(1).replace(",", ""), regex=True)
    distinct = pd.to_numeric(cleaned.where(~missing, None), errors="coerce").to_numpy(dtype=np.float64)
    bad = ((np.isnan(distinct) & ~missing) | contradicts)[codes]
    if bad.any():
        i = int(np.argmax(bad))
        where = f"{name}: line {lines[i]}, column {column!r}: {raw[i]!r}"
        if contradicts[codes[i]]:
            said = f"the decimal separator is {decimal!r} (given with --decimal, or as the checkpoint recorded it)" \
                if forced else \
                f"the file's numbers are read with {decimal!r} as the decimal separator"
            raise InputError(f"{where} reads only with {kind}, but {said}; say which the file uses with --decimal . "
                             "or --decimal ,")
        raise InputError(f"{where} is not a number")
    values = distinct[codes]
    infinite = np.isinf(values)
    if infinite.any():
        i = int(np.argmax(infinite))
        raise InputError(f"{name}: line {lines[i]}, column {column!r}: {raw[i]!r} is not a finite number")
    return values


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
    text = _strip(raw)
    empty = (text == "").to_numpy()
    if empty.any():
        i = int(np.argmax(empty))
        raise InputError(f"{name}: line {lines[i]}, column {column!r}: empty timestamp")
    has_tz = text.str.contains(_TZ_SUFFIX.pattern, regex=True).to_numpy()
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
    years = _strip(year_raw)
    bad = ~years.str.fullmatch(r"\d{4}").to_numpy(dtype=bool)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{name}: line {lines[i]}, column {year_col!r}: {year_raw[i]!r} is not a 4-digit year")
    period = _strip(period_raw).str.lower()
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
    period = _strip(raw).str.lower()
    if quarterly:
        return bool(period.str.fullmatch(r"q?[1-4]").all())
    return bool((period.str.fullmatch(r"0?[1-9]|1[0-2]") | period.isin(list(_MONTHS))).all())
