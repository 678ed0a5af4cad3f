"""What a load is asked for and what it gives back: ``DataConfig`` (how to read a file) and
``SeriesSet`` (the series read, and how they were read), with ``Series`` (one series), ``Panel`` (many,
held column-wise) and ``Ahead`` (a series' known-future covariates after its last observation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..errors import InputError

DEFAULT_ID = "main"  # the id of the one series of a file without an id column
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
    calendar: str = "none"  # generated calendar features: none, auto, or names (calendar.CALENDAR_FEATURES)
    min_length: int = 0  # leave out (with a note naming them) the series with fewer rows than this; 0 = keep all
    wide: bool = False  # one row per series, one column per time (headers 1960, 1961, ...): read as a panel


@dataclass
class Series:
    """One series: its id, its timestamps, its target values and its past and future covariates."""

    id: str
    times: pd.Index  # DatetimeIndex, or an int64 Index for integer steps
    values: np.ndarray  # (T, C) float64 in original units
    covariates: np.ndarray | None = None  # (T, P + F) float64: the past, then the future covariates; None: none

    def head(self, rows: int) -> "Series":
        """The series' first ``rows`` rows."""
        return Series(self.id, self.times[:rows], self.values[:rows],
                      None if self.covariates is None else self.covariates[:rows])


class _PanelSeries(Series):
    """A series of a ``Panel``: its values are views of the panel's arrays, its timestamps are sliced
    from the panel's the first time they are read. Otherwise a ``Series`` (``replace`` makes one alike)."""

    @property
    def times(self) -> pd.Index:
        held = self.__dict__
        if "_times" not in held:
            times, a, b = held["_rows"]
            held["_times"] = times[a:b]
        return held["_times"]

    @times.setter
    def times(self, value: pd.Index) -> None:
        self.__dict__["_times"] = value


class Panel(Sequence):
    """Series held column-wise, as a load gives them: every series' rows end to end in ``times`` (rows),
    ``values`` (rows, C) and ``covariates`` (rows, P + F, or None), series ``i`` in rows
    ``bounds[i]:bounds[i + 1]`` under id ``ids[i]``. A panel of a million series is four arrays and a
    list of ids; a ``Series`` (views of the arrays) is made only when one is asked for, so work over
    the whole panel reads the arrays (``SeriesSet.bounds``, ``SeriesSet.stacked_values``) instead."""

    __slots__ = ("ids", "times", "values", "bounds", "covariates")

    def __init__(self, ids: list[str], times: pd.Index, values: np.ndarray, bounds: np.ndarray,
                 covariates: np.ndarray | None = None):
        self.ids, self.times, self.values, self.covariates = ids, times, values, covariates
        self.bounds = np.asarray(bounds, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = range(len(self))[i]  # an IndexError past the end, negative indices from it
        a, b = int(self.bounds[i]), int(self.bounds[i + 1])
        one = object.__new__(_PanelSeries)  # a pandas Index costs ~25 us to slice: made only if read
        one.__dict__.update(id=self.ids[i], values=self.values[a:b], _rows=(self.times, a, b),
                            covariates=None if self.covariates is None else self.covariates[a:b])
        return one

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def heads(self, rows: np.ndarray) -> "Panel":
        """Each series' first ``rows[i]`` rows."""
        lengths = np.diff(self.bounds)
        rows = np.minimum(np.asarray(rows, dtype=np.int64), lengths)
        if (rows == lengths).all():
            return self  # every series whole: nothing to copy
        within = np.arange(self.bounds[-1]) - np.repeat(self.bounds[:-1], lengths)
        keep = within < np.repeat(rows, lengths)
        return Panel(self.ids, self.times[keep], self.values[keep], np.concatenate([[0], np.cumsum(rows)]),
                     None if self.covariates is None else self.covariates[keep])

    def subset(self, keep: np.ndarray) -> "Panel":
        """The series where ``keep`` (N,) is true, in their order."""
        keep = np.asarray(keep, dtype=bool)
        if keep.all():
            return self
        lengths = np.diff(self.bounds)
        rows = np.repeat(keep, lengths)
        return Panel([sid for sid, k in zip(self.ids, keep.tolist()) if k], self.times[rows], self.values[rows],
                     np.concatenate([[0], np.cumsum(lengths[keep])]),
                     None if self.covariates is None else self.covariates[rows])


@dataclass(frozen=True)
class Ahead:
    """Known-future values of one series after its last observation: ``times`` (K,) and ``values`` (K, F)
    of the future covariates (NaN where a row left one empty), with the file and lines they came from."""

    times: pd.Index
    values: np.ndarray
    source: str
    lines: np.ndarray


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
    series: list[Series] | Panel  # a Panel as loaded; a list where a step rebuilt some series
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
    calendar: tuple[str, ...] = ()  # calendar features asked for (calendar.resolve_calendar)
    ahead: dict[str, Ahead] = field(default_factory=dict)  # per series, future covariates after its last row
    wide: bool = False  # read from a wide file (--wide): one row per series, one column per time

    @property
    def covariate_inputs(self) -> tuple[str, ...]:
        """The model inputs these covariates need: past, future (calendar too), static."""
        return tuple(k for k, on in (("past", self.past_cols), ("future", self.future_cols or self.calendar),
                                      ("static", self.static_cols)) if on)

    @property
    def integer_time(self) -> bool:
        return not isinstance(self.series[0].times, pd.DatetimeIndex)

    @property
    def ids(self) -> list[str]:
        return self.series.ids if isinstance(self.series, Panel) else [s.id for s in self.series]

    @property
    def lengths(self) -> np.ndarray:
        """Rows per series (N,)."""
        return np.diff(self.bounds)

    @property
    def bounds(self) -> np.ndarray:
        """Where each series starts in the concatenation of all (N + 1,: the last is the total rows)."""
        if isinstance(self.series, Panel):
            return self.series.bounds
        return np.concatenate([[0], np.cumsum([len(s.times) for s in self.series])]).astype(np.int64)

    def subset(self, keep) -> "SeriesSet":
        """The same set with only the series where ``keep`` (N,) is true, in their order."""
        if isinstance(self.series, Panel):
            return replace(self, series=self.series.subset(keep))
        return replace(self, series=[s for s, k in zip(self.series, keep) if k])

    def heads(self, rows) -> "SeriesSet":
        """The same set with each series cut to its first ``rows[i]`` rows."""
        if isinstance(self.series, Panel):
            return replace(self, series=self.series.heads(rows))
        return replace(self, series=[s.head(r) for s, r in zip(self.series, rows)])

    def stacked_values(self) -> np.ndarray:
        """Every series' values end to end, (rows, C) float64 in original units."""
        if isinstance(self.series, Panel):
            return self.series.values
        return np.concatenate([s.values for s in self.series])

    def stacked_times(self) -> pd.Index:
        """Every series' timestamps end to end, one Index (of the series' own dtype and time zone)."""
        if isinstance(self.series, Panel):
            return self.series.times
        first = self.series[0].times
        return first.append([s.times for s in self.series[1:]]) if len(self.series) > 1 else first


def check_config(config: DataConfig) -> None:
    """Refuse a fill policy or a decimal separator seqcast does not know, before anything is read."""
    if config.fill not in FILL_POLICIES:
        raise InputError(f"--fill {config.fill!r}: choose one of {', '.join(FILL_POLICIES)}")
    if config.decimal not in (None, ".", ","):
        raise InputError(f"--decimal {config.decimal!r}: use . (1234.5) or , (1234,5)")
