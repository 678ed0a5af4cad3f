"""What each command does between its options and its output, as library calls.

Each command of the CLI builds one typed, keyword-only request and makes one call here:
``train`` (fit, tune), ``forecast`` (predict, explain, export), ``evaluate`` (evaluate, compare).
What the commands shared lives here once: reading a file with its notes, a checkpoint or an exported
ONNX model, the rows a forecast reads, the known-future file, threads, output locks and torchrun
ranks. Nothing here prints: notes and progress go to the ``Reporter`` the caller passes (the CLI's
is its ``Output``), results come back as values.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import Any, ContextManager, Iterable, Protocol

from ..errors import UsageError


class Reporter(Protocol):
    """Where a run sends what the user should hear while it works."""

    def notes(self, notes: Iterable[str], warnings: Iterable[str] = ()) -> None:
        """Notes (how the data was read, what was decided) and warnings, in order."""

    def say(self, message: str) -> None:
        """One line of what was found (the data a run read)."""

    def progress(self, label: str, epochs: bool = True) -> ContextManager[Any]:
        """Training progress of one model: the object entered has ``epoch(report)`` and ``step(step, total)``;
        ``epochs`` False: a line per epoch only on a progress bar, not as text of its own."""


class Quiet:
    """A Reporter that keeps everything to itself: for library callers that want only the results."""

    def notes(self, notes: Iterable[str], warnings: Iterable[str] = ()) -> None:
        pass

    def say(self, message: str) -> None:
        pass

    def progress(self, label: str, epochs: bool = True) -> ContextManager[Any]:
        return contextlib.nullcontext(_Silent())


class _Silent:
    def epoch(self, report: Any) -> None:
        pass

    def step(self, step: int, total: int) -> None:
        pass


@dataclass(frozen=True, kw_only=True)
class Reading:
    """How the user asked to read a file: the columns of a fresh read, and the reading options that, for
    a checkpoint's data, win over what fit recorded (``None``: decided, or the checkpoint's)."""

    time_col: str | None = None
    target: tuple[str, ...] = ()
    id_col: str | None = None
    freq: str | None = None
    fill: str | None = None
    decimal: str | None = None
    dayfirst: bool | None = None
    date_format: str | None = None
    past_cols: tuple[str, ...] = ()
    future_cols: tuple[str, ...] = ()
    static_cols: tuple[str, ...] = ()
    calendar: str = "none"
    min_length: int = 0
    wide: bool = False

    @property
    def covariate_inputs(self) -> tuple[str, ...]:
        """The covariate inputs a model must read for these columns (registry.COVARIATE_INPUTS)."""
        wanted = {"past": self.past_cols, "future": self.future_cols or self.calendar != "none",
                  "static": self.static_cols}
        return tuple(kind for kind, on in wanted.items() if on)

    def fresh(self):
        """A data.DataConfig for a file read for the first time: the options given, the rest inferred."""
        from ..data import DataConfig

        return DataConfig(time_col=self.time_col, target=self.target, id_col=self.id_col, freq=self.freq,
                          fill=self.fill or "none", decimal=self.decimal, dayfirst=self.dayfirst,
                          date_format=self.date_format, past_cols=self.past_cols, future_cols=self.future_cols,
                          static_cols=self.static_cols, calendar=self.calendar, min_length=self.min_length,
                          wide=self.wide)

    def again(self, ckpt):
        """A data.DataConfig for new history of ``ckpt``: as fit read its data, these options on top."""
        from ..forecasting import data_config

        return replace(data_config(ckpt, fill=self.fill, freq=self.freq, decimal=self.decimal, dayfirst=self.dayfirst,
                                   date_format=self.date_format), min_length=self.min_length)

    def for_fit(self, init):
        """How fit reads its file: fresh, or for a warm start as the checkpoint ``init`` says (its columns)."""
        if init is None:
            return self.fresh()
        if self.target or self.time_col or self.id_col or self.covariate_inputs:
            raise UsageError("--init-from: the targets, time, id and covariate columns come from the checkpoint; "
                             "drop --target, --time-col, --id-col, --past-cols, --future-cols, --static-cols and "
                             "--calendar")
        return replace(self.again(init), wide=self.wide or init.policy.wide)


def load(reporter: Reporter, path: str, config, describe: bool = False, last: int | None = None):
    """The series of ``path`` read with ``config`` (only its last ``last`` rows where that is enough);
    its notes, and with ``describe`` what was found, to ``reporter``."""
    from ..data import load_series

    series = load_series(path, config, last=last)
    reporter.notes(series.notes)
    if describe:
        reporter.say(described(series))
    return series


def described(series) -> str:
    """One line: the file's series, rows, time column, targets and frequency."""
    count = len(series.series)
    rows = int(series.bounds[-1])
    what = f"{count} series" if count > 1 else "1 series"
    return (f"{series.source}: {what}, {rows} rows; time column {series.time_col or '(row number)'}, "
            f"target {', '.join(series.targets)}, frequency {series.freq}")
