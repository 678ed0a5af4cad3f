"""The target's transform before scaling, and the floor at zero of a target that is never negative.

Counts, sales and rentals are never negative, and their swings grow with their level: a model trained
on the raw values forecasts -31 rentals for a night hour. ``fit --transform`` takes:

  * ``none``: the values as they are;
  * ``log``: ``log(1 + y)``, restored by ``exp(z) - 1``: multiplicative swings become additive ones;
  * ``boxcox``: the Box-Cox transform of ``1 + y``, ``((1 + y)^lambda - 1) / lambda`` (``log(1 + y)`` at
    lambda 0), with lambda per series and target chosen in [0, 1.5] by maximum likelihood on the rows
    fit reads (a series first seen at predict gets its own, from its history): between the log (0) and
    the values themselves (1);
  * ``auto`` (the default): for a target never negative, ``none`` and ``log`` are both probed on the
    validation windows and the better kept (``choosing.py``); otherwise ``none``.

``log`` and ``boxcox`` need every value at least 0. Whatever the transform, a target that was never
negative in the rows fit read is floored at zero: no forecast, band or quantile of it is negative
(``--allow-negative`` with ``--transform none`` keeps the model's raw output). The transform happens
in numpy before the scaler and after it on the way back, so an exported ONNX model needs nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from .errors import InputError, UsageError

if TYPE_CHECKING:
    from .data import SeriesSet

TRANSFORMS = ("none", "log", "boxcox")
LAMBDA_RANGE = (0.0, 1.5)  # the Box-Cox lambdas searched, in steps of 0.05: from the log to beyond the values
_LAMBDAS = np.linspace(*LAMBDA_RANGE, 31)


@dataclass(frozen=True)
class TargetTransform:
    """What fit did to the targets before scaling, and which targets forecasts keep at zero or above."""

    kind: str = "none"  # one of TRANSFORMS
    lambdas: dict[str, list[float]] = field(default_factory=dict)  # boxcox: per series, one per target
    floor: tuple[bool, ...] = ()  # per target: never negative when fit read it, so forecasts stay >= 0

    @classmethod
    def fit(cls, kind: str, series: SeriesSet, train_rows: dict[str, int], allow_negative: bool = False
            ) -> "TargetTransform":
        """The transform ``kind`` (one of TRANSFORMS) fit to the training rows of ``series`` (its lambdas,
        and the floor of each target never negative there); every row must suit the transform."""
        if kind not in TRANSFORMS:
            raise UsageError(f"--transform {kind!r}: choose auto or one of {', '.join(TRANSFORMS)}")
        if allow_negative and kind != "none":
            raise UsageError(f"--allow-negative with --transform {kind}: the transform needs values of at least 0; "
                             "give --transform none with --allow-negative")
        if kind != "none":
            _require_nonnegative(kind, series)
        edges, lengths = series.bounds, series.lengths
        rows = np.array([train_rows.get(sid, n) for sid, n in zip(series.ids, lengths.tolist())], dtype=np.int64)
        within = np.arange(edges[-1]) - np.repeat(edges[:-1], lengths)
        lowest = series.stacked_values()[within < np.repeat(rows, lengths)].min(axis=0)
        floor = tuple(False if allow_negative else bool(v >= 0) for v in np.atleast_1d(lowest))
        return cls(kind, {}, floor).refit(series, train_rows)

    def refit(self, series: SeriesSet, train_rows: dict[str, int]) -> "TargetTransform":
        """This transform for the series of ``series`` (a warm start's data): Box-Cox lambdas kept for the
        series it knows, fit on the training rows for a new one, none kept for a series gone."""
        if self.kind != "boxcox":
            return self
        return replace(self, lambdas={s.id: self.lambdas.get(s.id) or box_cox_lambda(
            s.values[: train_rows.get(s.id, len(s.values))]).tolist() for s in series.series})

    def apply(self, series: SeriesSet) -> SeriesSet:
        """``series`` with its target values transformed (the same object when there is nothing to do)."""
        if self.kind == "none":
            return series
        _require_nonnegative(self.kind, series)
        from .data import Panel

        if self.kind == "log" and isinstance(series.series, Panel):  # elementwise: the whole panel at once
            panel = series.series
            return replace(series, series=Panel(panel.ids, panel.times, forward(self.kind, panel.values), panel.bounds,
                                                panel.covariates))
        lam = self.lambdas_of(series)
        return replace(series, series=[replace(s, values=forward(self.kind, s.values, lam[i]))
                                       for i, s in enumerate(series.series)])

    def lambdas_of(self, series: SeriesSet) -> np.ndarray:
        """(N, C) the Box-Cox lambda of each series (its own, from its history, for one fit did not see)."""
        if self.kind != "boxcox":
            return np.zeros((len(series.series), len(series.targets)))
        return np.array([self.lambdas[s.id] if s.id in self.lambdas else box_cox_lambda(s.values)
                         for s in series.series], dtype=np.float64).reshape(len(series.series), -1)

    def restore(self, values: np.ndarray, lam: np.ndarray) -> np.ndarray:
        """Values (rows, H, C) in transformed units -> original units, floored at zero where the target
        never was negative. ``lam`` (rows, C): each row's lambdas (``lambdas_of``, per row's series)."""
        out = inverse(self.kind, values, lam[:, None, :]) if self.kind != "none" else values
        if any(self.floor):
            out = np.where(np.asarray(self.floor)[None, None, :], np.maximum(out, 0.0), out)
        return out

    def describe(self) -> str:
        """One line for ``info``."""
        floored = "forecasts floored at 0" if all(self.floor) and self.floor else (
            "forecasts may be negative" if not any(self.floor) else
            f"forecasts floored at 0 for {sum(self.floor)} of {len(self.floor)} targets")
        if self.kind == "boxcox":
            values = np.array(list(self.lambdas.values()), dtype=np.float64).reshape(-1)
            return f"boxcox (lambda {np.median(values):.2f} median, {values.min():.2f} to {values.max():.2f}); {floored}"
        return f"{self.kind}; {floored}"


def forward(kind: str, values: np.ndarray, lam: np.ndarray | float = 0.0) -> np.ndarray:
    """Original values (T, C) -> transformed ("log": log(1 + y); "boxcox" of 1 + y at ``lam`` (C,), or at
    any ``lam`` that broadcasts against ``values``, e.g. (N, 1, C) for windows of several series)."""
    if kind == "none":
        return values
    shifted = np.log1p(values)
    if kind == "log":
        return shifted
    lam = np.asarray(lam, dtype=np.float64)
    lam = np.broadcast_to(lam, values.shape[-1:]) if lam.ndim <= 1 else lam
    power = np.expm1(shifted * lam) / np.where(lam == 0, 1.0, lam)
    return np.where(lam == 0, shifted, power)


def inverse(kind: str, values: np.ndarray, lam: np.ndarray | float = 0.0) -> np.ndarray:
    """Transformed values -> original: the inverse of ``forward`` (below the transform's range, -1)."""
    if kind == "none":
        return values
    if kind == "log":
        return np.expm1(values)
    lam = np.asarray(lam, dtype=np.float64)
    base = np.maximum(1.0 + lam * values, 0.0)  # at or below 0: the bottom of the range, y = -1
    with np.errstate(divide="ignore", over="ignore"):  # each branch is computed for every value, and one kept
        power = np.expm1(np.log(base) / np.where(lam == 0, 1.0, lam))
        return np.where(lam == 0, np.expm1(values), power)


def box_cox_lambda(values: np.ndarray) -> np.ndarray:
    """(T, C) values of at least 0 -> (C,) the lambda in [0, 1.5] that maximises the Box-Cox profile
    likelihood of 1 + y (the Gaussian log-likelihood of the transformed values plus the Jacobian):
    (lambda - 1) * sum(log(1 + y)) - T / 2 * log(variance). A constant column gets 1 (no change)."""
    logs = np.log1p(np.asarray(values, dtype=np.float64))  # (T, C)
    if len(logs) < 2:
        return np.ones(logs.shape[1])
    transformed = np.stack([logs if lam == 0 else np.expm1(lam * logs) / lam for lam in _LAMBDAS])  # (K, T, C)
    variance = transformed.var(axis=1)  # (K, C)
    constant = np.ptp(logs, axis=0) == 0
    with np.errstate(divide="ignore"):
        likelihood = (_LAMBDAS[:, None] - 1) * logs.sum(axis=0) - len(logs) / 2 * np.log(variance)
    best = _LAMBDAS[np.argmax(np.where(np.isfinite(likelihood), likelihood, -np.inf), axis=0)]
    return np.where(constant, 1.0, best)


def _require_nonnegative(kind: str, series: SeriesSet) -> None:
    """``log`` and ``boxcox`` need every target value at least 0: else an error naming the first one below."""
    values = series.stacked_values()
    below = np.argwhere(values < 0)  # series by series, each row by row: the first in file order
    if len(below):
        row, column = below[0]
        sid = series.ids[int(np.searchsorted(series.bounds, row, side="right")) - 1]
        raise InputError(f"{series.source}: series {sid!r}, target {series.targets[column]!r}: value "
                         f"{values[row, column]:g} at {series.stacked_times()[row]} is negative, and --transform "
                         f"{kind} needs values of at least 0; give --transform none (fit again with it, for a model "
                         f"fit with {kind})")


__all__ = ["TRANSFORMS", "LAMBDA_RANGE", "TargetTransform", "forward", "inverse", "box_cox_lambda"]
