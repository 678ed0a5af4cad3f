"""What a load is asked for and what it gives back: ``DataConfig`` (how to read a file) and
``SeriesSet`` (the series read, and how they were read), with ``Series`` (one series) and ``Ahead``
(a series' known-future covariates after its last observation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    series: list[Series]
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


def check_config(config: DataConfig) -> None:
    """Refuse a fill policy or a decimal separator seqcast does not know, before anything is read."""
    if config.fill not in FILL_POLICIES:
        raise InputError(f"--fill {config.fill!r}: choose one of {', '.join(FILL_POLICIES)}")
    if config.decimal not in (None, ".", ","):
        raise InputError(f"--decimal {config.decimal!r}: use . (1234.5) or , (1234,5)")
