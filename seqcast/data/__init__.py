"""Series from CSV and Parquet files, and forecasts back to CSV or Parquet: the one entry to ``seqcast.data``.

One module per decision, each importing only those above it in this list:

    config.py     DataConfig (how to read), Series, Panel (series held column-wise), SeriesSet (what was read), Ahead
    cells.py      what a cell may hold: missing-value markers, whole numbers, time-zone offsets
    limits.py     the field, column and row-width limits checked on the bytes as they stream past
    source.py     bytes from a path or stdin: bounded reads, compressed CSV, Parquet, decoding
    frequency.py  frequencies, grids, the gap check over all series at once, seasons
    times.py      timestamps: ISO 8601, day/month order (the only place), quarters, years
    parquet.py    Parquet files, folders of them and Parquet on stdin as typed columns; Parquet forecasts
    table.py      bytes -> columns: the byte scan, pandas' C reader in chunks, the row-by-row reader
    numbers.py    numbers and the decimal separator (the only place)
    columns.py    which column holds what: id, time, target, covariates
    calendar.py   the calendar features --calendar names
    wide.py       a wide file (a row per series, a column per time) as a long table
    series.py     rows -> SeriesSet: one sort into series, gaps, fills, known-future rows

Code outside the package imports from here; the names below are the whole of it.
"""

from .calendar import CALENDAR_FEATURES
from .config import DEFAULT_ID, DataConfig, Panel, Series, SeriesSet
from .frequency import canonical as canonical_freq, future_grid, future_times, season_length, seasons
from .series import load_future, load_series, series_from_text
from .parquet import dataset_files
from .table import table_bytes, write_csv

__all__ = ["canonical_freq", "load_series", "load_future", "series_from_text", "write_csv", "table_bytes",
           "dataset_files", "DataConfig", "SeriesSet", "Series", "Panel", "DEFAULT_ID", "CALENDAR_FEATURES",
           "season_length", "seasons", "future_times", "future_grid"]
