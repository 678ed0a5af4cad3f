"""Which column holds what: the series id, the time (one column, or a year and a period), the
target by default, and which column would make repeated timestamps unique. Chosen by name first,
then by content; every choice that could have gone another way leaves a note.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .csvfile import is_text
from .errors import InputError
from .reading import INTEGER, is_period_column, looks_numeric, parse_numbers, quarter_labels

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


def pick(header: list[str], names: tuple[str, ...], exclude: set[str]) -> str | None:
    lowered = {h.lower(): h for h in header if h not in exclude}
    return next((lowered[n] for n in names if n in lowered), None)


def require(column: str, header: list[str], name: str, role: str) -> str:
    if column not in header:
        raise InputError(f"{name}: no column {column!r} (the {role}); the columns are: {', '.join(header)}")
    return column


def is_key(raw: np.ndarray) -> bool:
    """Values that can name series: not (all) numbers, and repeated, as a panel's key is."""
    return not looks_numeric(raw).all() and len(set(raw)) < len(raw)


def typed(values) -> bool:
    """Numbers or timestamps as the fast reader typed them, not the file's text."""
    return not is_text(values)


def id_column(given: str | None, header: list[str], columns: dict, name: str, notes: list[str]) -> str | None:
    if given:
        return require(given, header, name, "series id column")
    named = pick(header, ID_NAMES, set())
    if named:
        return named
    lowered = {h.lower(): h for h in header}
    entity = next((lowered[n] for n in ENTITY_NAMES if n in lowered and is_key(columns[lowered[n]])), None)
    if entity:
        count = len(set(pd.Series(columns[entity], dtype=object).astype(str).str.strip()))
        notes.append(f"series id column: {entity} ({count} series; choose another with --id-col)")
    return entity


def time_columns(given: str | None, header: list[str], columns: dict, used: set[str], name: str) -> list[str]:
    """The time column, or a year column and a quarter or month column to combine; [] for none."""
    if given:
        if given in header or "," not in given:
            return [require(given, header, name, "time column")]
        parts = [p.strip() for p in given.split(",")]
        if len(parts) != 2:
            raise InputError(f"--time-col {given!r}: give one column, or a year and a quarter or month "
                             "column, e.g. --time-col year,quarter")
        return [require(p, header, name, "time column") for p in parts]
    lowered = {h.lower(): h for h in header if h not in used}
    year = pick(header, YEAR_NAMES, used)
    if year and not any(n in lowered for n in TIME_NAMES if n not in ("year", "month")) \
            and pd.Series(columns[year], dtype=object).astype(str).str.strip().str.fullmatch(r"\d{4}").all():
        for names, quarterly in ((QUARTER_NAMES, True), (MONTH_NAMES, False)):
            period = pick(header, names, used | {year})
            if period and is_period_column(columns[period], quarterly):
                return [year, period]
    time_col = pick(header, TIME_NAMES, used)
    first = next((h for h in header if h not in used), None)
    if time_col is None and first is not None and len(header) > 1:
        sample = columns[first][:20]
        if isinstance(sample, pd.DatetimeIndex):
            time_col = first  # read as ISO timestamps already
        elif not all(INTEGER.match(str(v).strip()) for v in sample):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                text = pd.Series(sample, dtype=object).astype(str).str.strip()
                # utc=True: a column mixing zones (or naive and zoned stamps) is still a time column
                # here; reading its timestamps says what is wrong with it
                if quarter_labels(text) is not None or pd.to_datetime(
                        text, format="mixed", errors="coerce", utc=True).notna().all():
                    time_col = first
    return [time_col] if time_col else []


def unique_key_hint(header: list[str], columns: dict, times: pd.Index, codes: np.ndarray | None, id_col: str | None,
                     time_cols: list[str], exclude: set[str]) -> str:
    """The column whose values would make the repeated timestamps unique, as advice; '' when none does.

    Only columns whose values repeat and are not fractional numbers qualify; text columns, then
    those with fewest distinct values, come first."""
    base = pd.DataFrame({"t": np.asarray(times), "id": codes if codes is not None else 0})
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
    if codes is None:
        return f"; column {column!r} would make the timestamps unique: pass --id-col {column}"
    return (f"; column {column!r} would make them unique within each {id_col!r} series: combine the two into one "
            "id column")


def default_target(candidates: list[str], columns: dict, decimal: str, notes: list[str]) -> str:
    """A column named like a target, else the last numeric column whose values vary (a gauge stuck at
    0 is no target), else the last numeric column, else the last column (whose error then says why)."""
    named = pick(candidates, TARGET_NAMES, set())
    if named:
        return named
    parsed = {c: as_numbers(columns[c], decimal) for c in candidates}
    numeric = [c for c, v in parsed.items() if v is not None]
    if not numeric:
        return candidates[-1]
    varying = [c for c in numeric if np.unique(parsed[c][~np.isnan(parsed[c])]).size > 1]
    target = (varying or numeric)[-1]
    passed = numeric[numeric.index(target) + 1:]
    if passed:
        notes.append(f"target: {target} (the last numeric column that varies: {', '.join(passed)} "
                     f"{'is' if len(passed) == 1 else 'are'} constant; choose others with --target)")
    elif len(numeric) > 1:
        notes.append(f"target: {target} (the last numeric column; choose others with --target)")
    return target


def as_numbers(raw: np.ndarray, decimal: str) -> np.ndarray | None:
    if typed(raw):  # numbers as the fast reader typed them (decimal point), or timestamps
        kind = np.asarray(raw).dtype.kind
        return np.asarray(raw, dtype=np.float64) if kind in "fiu" and decimal == "." else None
    try:
        return parse_numbers(raw, "", np.zeros(len(raw), dtype=int), "", decimal)
    except InputError:
        return None
