"""Wide files: one row per series, one column per time (headers 1960, 1961, ... or 2024-01, 1960Q1),
told by their headers and read as the long table ``id, period, value`` that the rest of the package
reads (``fit --wide``).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace

from ..errors import InputError
from .columns import TIME_NAMES, reader_hints, require
from .config import DataConfig
from .table import Table, table_from_bytes

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


def long_form(table: Table, config: DataConfig) -> tuple[Table, DataConfig, str] | None:
    """A wide file as a long table, the config that reads it and a note saying so; None for a file with
    one row per time. A file whose headers are times without --wide, or --wide (given, or recorded by
    a model fit so) on a file whose headers are not, is an error saying which to do."""
    time_headers = _wide_times(table.header, config)
    if not config.wide and not time_headers:
        return None
    if not time_headers:
        raise InputError(f"{table.name}: read as a wide file (fit --wide, or a model fit so) but no column "
                         "header is a time (1960, 2024-01, 2024-01-31, 1960Q1); a file with one row per time "
                         "needs a model fit without --wide")
    if not config.wide:
        raise InputError(f"{table.name}: the column headers {time_headers[0].strip()}, {time_headers[1].strip()}, "
                         f"... {time_headers[-1].strip()} are times: one row per series, one column per time (a "
                         "wide file); pass --wide to read each row as a series, or give one row per time")
    return _long(table, config, time_headers)


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
    return table_from_bytes(f"{table.name} (read --wide)", buffer.getvalue().encode("utf-8"), *reader_hints(long)), long, note
