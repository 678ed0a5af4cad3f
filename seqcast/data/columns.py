"""Which column holds what: the series id, the time (one column, or a year and a period), the target
by default, the covariates, and which column would make repeated timestamps unique. Chosen by name
first, then by content; every choice that could have gone another way leaves a note.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..errors import InputError
from .cells import INTEGER, stripped
from .config import DataConfig
from .numbers import as_numbers, looks_numeric
from .times import MONTH_NAMES, QUARTER_NAMES, YEAR_NAMES, is_period_column, quarter_labels

TIME_NAMES = ("ds", "date", "datetime", "timestamp", "time", "period", "month", "week", "day", "year", "step")
ID_NAMES = ("unique_id", "series_id", "series", "id")
# Usual names of a panel's key; taken as the id column only when the values are not numbers, so a
# numeric target is never taken for an id.
ENTITY_NAMES = ("symbol", "ticker", "store", "store_id", "item", "item_id", "sku", "product", "firm", "company",
                "country", "region", "city", "station", "site", "sensor", "location")
TARGET_NAMES = ("y", "value", "target")


def _pick(header: list[str], names: tuple[str, ...], exclude: set[str]) -> str | None:
    lowered = {h.lower(): h for h in header if h not in exclude}
    return next((lowered[n] for n in names if n in lowered), None)


def require(column: str, header: list[str], name: str, role: str) -> str:
    if column not in header:
        raise InputError(f"{name}: no column {column!r} (the {role}); the columns are: {', '.join(header)}")
    return column


def _is_key(raw: np.ndarray) -> bool:
    """Values that can name series: not (all) numbers, and repeated, as a panel's key is."""
    return not looks_numeric(raw).all() and len(set(raw)) < len(raw)


def id_column(given: str | None, header: list[str], columns: dict, name: str, notes: list[str]) -> str | None:
    if given:
        return require(given, header, name, "series id column")
    named = _pick(header, ID_NAMES, set())
    if named:
        return named
    lowered = {h.lower(): h for h in header}
    entity = next((lowered[n] for n in ENTITY_NAMES if n in lowered and _is_key(columns[lowered[n]])), None)
    if entity:
        count = len(set(stripped(columns[entity])))
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
    year = _pick(header, YEAR_NAMES, used)
    if year and not any(n in lowered for n in TIME_NAMES if n not in ("year", "month")) \
            and stripped(columns[year]).str.fullmatch(r"\d{4}").all():
        for names, quarterly in ((QUARTER_NAMES, True), (MONTH_NAMES, False)):
            period = _pick(header, names, used | {year})
            if period and is_period_column(columns[period], quarterly):
                return [year, period]
    time_col = _pick(header, TIME_NAMES, used)
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
        text = stripped(columns[column])
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
    named = _pick(candidates, TARGET_NAMES, set())
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



def covariate_columns(config: DataConfig, header: list[str], name: str, taken: set[str]
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


def reader_hints(config: DataConfig):
    """What the fast reader is told of a file's header before it reads the rows: which columns to keep
    as text (whatever may be a series id) and which it may read as ISO timestamps or integer steps
    (whatever may be the time column; none with --date-format). Two functions of the header."""
    def keep_as_text(header: list[str]) -> set[str]:
        named = {h for h in header if h.lower() in ID_NAMES + ENTITY_NAMES}
        return named | {config.id_col} - {None}

    def read_as_times(header: list[str]) -> set[str] | None:
        if config.date_format:
            return None
        given = set(config.time_col.split(",")) if config.time_col else set()
        return {h for h in header if h.lower() in TIME_NAMES} | given | set(header[:1])

    return keep_as_text, read_as_times

