"""Chronological splits, per-series scaling fit on training rows only, and sliding windows.

Windows are views over one tensor: every series' scaled values are concatenated into a (rows, C)
tensor, ``unfold`` turns it into a (n, C, L + H) view, and a window is just a start index into it.
A batch copies only the windows it takes; nothing per sample runs in Python during training.

Work over many series is done on the concatenation too (``stacked_values``, ``bounds``): a panel of
50,000 series costs a few numpy calls, not 50,000 of them. Statistics per series (``Scaler``) are
computed on series of equal length stacked into one (S, T, C) array, which numpy reduces exactly as
it would each series alone, so the numbers do not depend on how many series share the file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .data import SeriesSet
from .errors import InputError
from .scaling import Scaler

if TYPE_CHECKING:  # torch loads only where windows become tensors: predicting with an ONNX model needs none
    import torch

    from .forecaster import CovariateSchema

# Default (horizon, lookback) by the base unit of the frequency; lookback shrinks for short series.
_DEFAULTS = {"h": (24, 96), "min": (60, 240), "D": (14, 56), "B": (10, 60), "W": (13, 104),
             "MS": (12, 48), "ME": (12, 48), "BMS": (12, 48), "BME": (12, 48), "QS": (8, 32), "QE": (8, 32), "YS": (5, 20), "YE": (5, 20)}


@dataclass(frozen=True)
class Split:
    """Row counts per series: the first ``train`` rows train, the next ``val`` validate, the next ``test`` test.

    Validation and test windows start ``lookback`` rows early, so their first target is the first row
    of their part (the ETT protocol). ``test = 0`` means no test part.
    """

    train: int
    val: int
    test: int = 0

    @classmethod
    def parse(cls, text: str) -> "Split":
        try:
            parts = [int(p) for p in text.replace(":", ",").split(",")]
        except ValueError:
            parts = []
        if len(parts) not in (2, 3) or min(parts) < 0 or parts[0] == 0:
            raise InputError(f"--split {text!r}: give row counts TRAIN,VAL[,TEST], e.g. --split 8640,2880,2880")
        return cls(*parts)


def default_horizon_lookback(freq: str) -> tuple[int, int]:
    if freq.isdigit():
        return 10, 40
    base = freq.split("-")[0].lstrip("0123456789")
    return _DEFAULTS.get(base, _DEFAULTS.get(base.lower(), (10, 40)))


def real_inputs(lookback: int, horizon: int) -> int:
    """The fewest real rows a padded window's input holds (the rest repeat the series' first value)."""
    return min(lookback, horizon)


def short_series(series: SeriesSet, lookback: int, horizon: int, val_fraction: float = 0.1) -> int:
    """How many series are too short for ``lookback`` plus a training window and their validation rows."""
    lengths = series.lengths
    return int((lengths < lookback + horizon + np.maximum(horizon, np.round(val_fraction * lengths))).sum())


def needs_padding(series: SeriesSet, lookback: int, horizon: int) -> bool:
    """Whether windows should start before a series' first row (``build_windows(pad_short=True)``):
    when some series are too short for the lookback but fewer than half of them (the lookback suits
    the panel, a few short series should not lose their windows); when most are, the lookback does
    not suit the data, and fit says so instead."""
    return 0 < 2 * short_series(series, lookback, horizon) < len(series.series)


def validation_rows(total: int, horizon: int, val_fraction: float = 0.1) -> int:
    """The rows a series of ``total`` rows keeps for validation: max(H, 10 %)."""
    return max(horizon, int(round(val_fraction * total)))


def default_split(series: SeriesSet, lookback: int, horizon: int, val_fraction: float = 0.1,
                  pad_short: bool = False, drop_short: bool = False) -> dict[str, Split]:
    """Per series: validation is the last max(H, 10 %) rows, the rest trains; too short is an error.
    With ``pad_short`` a series needs real rows for one padded training window, not a whole lookback.
    In a panel where some series validate, a series too short for validation trains on all its rows
    (its split has ``val = 0``; when it is too short even for a training window it gives none, and is
    only forecast): the other series validate and train the model, and the short series of competition
    panels (M3) keep their place. The error lists how many series are too short and the first ten;
    with ``drop_short`` (``--drop-sparse``) they get no split instead, and the caller leaves them out."""
    context = real_inputs(lookback, horizon) if pad_short else lookback
    ids, lengths = series.ids, series.lengths.astype(np.int64)
    val = np.maximum(horizon, np.round(val_fraction * lengths)).astype(np.int64)  # validation_rows, per series
    validates = context + horizon + val <= lengths
    kept = ~validates & validates.any() & (context <= lengths)  # trains on all its rows, or is only forecast
    val[kept] = 0
    too_short = ~kept & (lengths < context + horizon + val)
    what = f"{context} real input rows of a padded window" if pad_short else f"lookback {lookback}"
    short = [f"{ids[i]!r} has {lengths[i]} rows, needs {context + horizon + val[i]} "
             f"({what} + horizon {horizon} + validation {val[i]})" for i in np.flatnonzero(too_short)[:10]]
    fine = np.flatnonzero(~too_short)
    splits = {ids[i]: Split(t, v, 0)
              for i, t, v in zip(fine.tolist(), (lengths - val)[fine].tolist(), val[fine].tolist())}
    short_count = int(too_short.sum())
    if short_count and not (drop_short and splits):
        counted = f"series too short ({short_count} of {len(series.series)})" if len(series.series) > 1 else \
            "series too short"
        raise InputError(f"{series.source}: {counted}: {'; '.join(short)}"
                         + (f"; and {short_count - 10} more" if short_count > 10 else "")
                         + ". Use a shorter --lookback or --horizon, or more history"
                         + (", or --drop-sparse to leave them out" if len(series.series) > 1 and not drop_short
                            else ""))
    return splits


def explicit_split(series: SeriesSet, split: Split, lookback: int, horizon: int) -> dict[str, Split]:
    """The same row-count split for every series; each must be long enough for it."""
    need = split.train + split.val + split.test
    for sid, total in zip(series.ids, series.lengths.tolist()):
        if total < need:
            raise InputError(f"{series.source}: series {sid!r} has {total} rows; --split needs {need}")
    if split.train < lookback + horizon or (split.val and split.val < horizon) or (split.test and split.test < horizon):
        raise InputError(f"--split {split.train},{split.val},{split.test}: each part needs at least the horizon "
                         f"({horizon}) rows and training needs lookback + horizon ({lookback + horizon})")
    return dict.fromkeys(series.ids, split)


def bounds(series: SeriesSet) -> np.ndarray:
    """Where each series starts in the concatenation of all (N + 1,: the last is the total rows)."""
    return series.bounds


def stacked_values(series: SeriesSet) -> np.ndarray:
    """Every series' values end to end, (rows, C) float64 in original units."""
    return series.stacked_values()


def stacked_times(series: SeriesSet) -> pd.Index:
    """Every series' timestamps end to end, one Index (of the series' own dtype and time zone)."""
    return series.stacked_times()


class WindowSet:
    """Windows over the concatenated scaled series: ``x`` (B, L, C), ``y`` (B, H, C), and the covariate
    inputs the model reads (the contract's keywords): past (B, L, P), future (B, L + H, F), static (B, S).

    ``values`` (rows, C + P + F) holds each row's C target values, then its P past covariates and its
    F known-future inputs (``model_arrays``), so one unfold cuts every block of a window alike.

    The windows are held as runs, not one by one: run r is ``counts[r]`` windows of series
    ``series_index[r]``, the first starting at row ``first_starts[r]`` of ``values`` with its first
    target at row ``first_origins[r]`` of the series, the next ``stride`` rows on. Window i is found
    from the runs' running counts when a batch asks for it, so memory grows with the series, not with
    the windows: a panel of long series has as many windows as rows, and fit samples them from the
    arrays (``training.epoch_batches``) without ever listing them.

    ``taught`` (``seqcast distill``): a teacher's forecast of every window (N, H, C), in the same scaled
    units, and the teacher's weight on each (N,): the targets a batch gives are then
    ``(1 - w) y + w teacher`` (w = 0: a window the teacher did not forecast keeps its real target). With
    the teacher's quantiles (N, H, C, Q) a batch gives a target per quantile, (B, H, C, Q), each so mixed.
    """

    def __init__(self, values: torch.Tensor, static: torch.Tensor | None, series_index: np.ndarray,
                 first_starts: np.ndarray, first_origins: np.ndarray, counts: np.ndarray, lookback: int,
                 horizon: int, targets: int | None = None, past: int = 0, stride: int = 1,
                 taught: tuple[torch.Tensor, torch.Tensor] | None = None):
        import torch

        self.lookback, self.horizon, self.stride = lookback, horizon, stride
        self.targets = values.shape[1] if targets is None else targets
        self.past = past
        kept = np.asarray(counts, dtype=np.int64) > 0
        self.runs = (np.asarray(series_index, dtype=np.int64)[kept], np.asarray(first_starts, dtype=np.int64)[kept],
                     np.asarray(first_origins, dtype=np.int64)[kept], np.asarray(counts, dtype=np.int64)[kept])
        self.values, self.static, self.taught = values, static, taught
        self._windows = values.unfold(0, lookback + horizon, 1)  # (rows - span + 1, C + P + F, L + H), a view
        ends = np.cumsum(self.runs[3])
        self._count = int(ends[-1]) if len(ends) else 0
        device = values.device
        self._ends = torch.as_tensor(ends, device=device)  # windows before the end of each run
        self._run_starts = torch.as_tensor(self.runs[1] - (ends - self.runs[3]) * stride, device=device)
        self._run_series = torch.as_tensor(self.runs[0], device=device) if static is not None else None

    def __len__(self) -> int:
        return self._count

    def _listed(self) -> tuple[np.ndarray, np.ndarray]:
        """Each window's run, and its place within the run."""
        counts = self.runs[3]
        run = np.repeat(np.arange(len(counts)), counts)
        return run, np.arange(self._count) - np.repeat(np.cumsum(counts) - counts, counts)

    @property
    def series_index(self) -> np.ndarray:
        """The series of every window (N,), listed: for scoring, not for training."""
        return np.repeat(self.runs[0], self.runs[3])

    @property
    def origins(self) -> np.ndarray:
        """The first target row (in the series' own rows) of every window, listed."""
        run, within = self._listed()
        return self.runs[2][run] + self.stride * within

    def to(self, device: torch.device) -> "WindowSet":
        static = self.static.to(device) if self.static is not None else None
        taught = tuple(t.to(device) for t in self.taught) if self.taught is not None else None
        return WindowSet(self.values.to(device), static, *self.runs, self.lookback, self.horizon, self.targets,
                         self.past, self.stride, taught)

    def teach(self, forecasts: torch.Tensor, weights: torch.Tensor) -> "WindowSet":
        """These windows with a teacher's forecasts (N, H, C) and weights (N,) mixed into their targets."""
        if forecasts.shape[:3] != (self._count, self.horizon, self.targets) or forecasts.dim() not in (3, 4) \
                or weights.shape != (self._count,):
            raise ValueError(f"{self._count} windows need forecasts ({self._count}, {self.horizon}, {self.targets}"
                             f"[, Q]) and weights ({self._count},), not {tuple(forecasts.shape)} and "
                             f"{tuple(weights.shape)}")
        return WindowSet(self.values, self.static, *self.runs, self.lookback, self.horizon, self.targets, self.past,
                         self.stride, (forecasts, weights))

    def subset(self, index: np.ndarray) -> "WindowSet":
        """The windows at ``index`` (a view of the same rows), each a run of one."""
        run, within = self._listed()
        run, within = run[index], within[index]
        series, starts, origins, _ = self.runs
        taught = tuple(t[np.asarray(index)] for t in self.taught) if self.taught is not None else None
        return WindowSet(self.values, self.static, series[run], starts[run] + self.stride * within,
                         origins[run] + self.stride * within, np.ones(len(run), dtype=np.int64), self.lookback,
                         self.horizon, self.targets, self.past, taught=taught)

    def batch(self, index: torch.Tensor | np.ndarray | slice
              ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """x (B, L, C), y (B, H, C) and the covariate inputs, by keyword (empty without covariates)."""
        import torch

        if isinstance(index, slice):
            index = torch.arange(*index.indices(self._count), device=self._ends.device)
        else:
            index = torch.as_tensor(index, dtype=torch.long, device=self._ends.device)
        run = torch.searchsorted(self._ends, index, right=True)
        window = self._windows[self._run_starts[run] + self.stride * index].transpose(1, 2)  # (B, L + H, C + P + F)
        L, C, P = self.lookback, self.targets, self.past
        inputs = {}
        if P:
            inputs["past"] = window[:, :L, C : C + P]
        if window.shape[-1] > C + P:
            inputs["future"] = window[:, :, C + P :]
        if self.static is not None:
            inputs["static"] = self.static[self._run_series[run]]
        if window.shape[-1] > C:
            window = window[..., :C]
        y = window[:, L:]
        if self.taught is not None:
            forecasts, weights = self.taught
            taught = forecasts[index]
            if taught.dim() == 4:  # a target per quantile
                y = y.unsqueeze(-1).expand_as(taught)
            y = torch.lerp(y, taught, weights[index].view(-1, *[1] * (taught.dim() - 1)))
        return window[:, :L], y, inputs


def scaled_arrays(series: SeriesSet, scaler: Scaler) -> list[np.ndarray]:
    """Each series' values scaled (T, C) float32, in one operation over all series."""
    mean, std = scaler.arrays(series)
    edges = bounds(series)
    rows = np.repeat(np.arange(len(series.series)), np.diff(edges))
    scaled = ((stacked_values(series) - mean[rows]) / std[rows]).astype(np.float32)
    return np.split(scaled, edges[1:-1])


def model_arrays(series: SeriesSet, scaler: Scaler, schema: "CovariateSchema"
                 ) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Each series' scaled values with its covariate inputs beside them, (T, C + P + F) float32
    (``covariates.step_values``), and the static inputs (N, S) or None."""
    from .covariates import static_inputs, step_values

    scaled = scaled_arrays(series, scaler)
    if any(schema.widths[:2]):
        scaled = [np.concatenate([v, step_values(series, schema, s)], axis=1) for v, s in zip(scaled, series.series)]
    return scaled, static_inputs(series, schema)


def build_windows(series: SeriesSet, scaled: list[np.ndarray], lookback: int, horizon: int,
                  targets: dict[str, tuple[int, int]], stride: int = 1, last: int | None = None,
                  pad_short: bool = False, static: np.ndarray | None = None, past: int = 0,
                  at_most: int = 0) -> WindowSet:
    """Windows whose targets lie in rows ``targets[id] = [first, end)`` of each series.

    ``scaled`` holds each series' rows (T, C) or, with covariates, (T, C + P + F) with ``past`` = P
    (``model_arrays``); ``static`` (N, S) the static inputs of each series.

    Origins (first target row) run from ``first`` to ``end - H`` in steps of ``stride``; with ``last``
    only the last ``last`` origins counted back from ``end - H`` (rolling-origin evaluation). With
    ``at_most``, when there would be more windows than that, every series keeps only every k-th of its
    origins, counted back from its last one, with the smallest k that brings the total to about
    ``at_most`` (each series keeps its last window, so a panel of more series keeps more).
    Inputs may reach back before ``first`` (the lookback overlap), never before row 0 unless
    ``pad_short``: then an input may start up to ``L - real_inputs`` rows before the series' first row,
    those rows repeating its first row (values and covariates), so short series keep their windows.
    Targets are always real rows: losses and scores never see a padded value.
    """
    import torch

    lengths = np.array([len(v) for v in scaled], dtype=np.int64)
    span = np.array([targets.get(sid, (0, 0)) for sid in series.ids], dtype=np.int64).reshape(-1, 2)
    first_input = real_inputs(lookback, horizon) if pad_short else lookback
    low = np.maximum(span[:, 0], first_input)  # the first origin allowed
    pads = np.maximum(lookback - low, 0) if pad_short else np.zeros_like(low)  # rows put before each series
    if pads.any():
        scaled = [np.concatenate([np.repeat(v[:1], p, axis=0), v]) for v, p in zip(scaled, pads)]
        span, low = span + pads[:, None], low + pads  # row numbers of the padded series
    lengths = lengths + pads
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    top = np.minimum(span[:, 1], lengths) - horizon  # the last origin allowed
    counts = np.where(top >= low, (top - low) // stride + 1, 0)
    if last is not None:  # the last ``last`` origins, counted back from the top
        counts = np.minimum(counts, last)
        low = top - stride * (counts - 1)
    if at_most and counts.sum() > at_most:  # thin: every k-th origin, from each series' last one back
        k = math.ceil(counts.sum() / at_most)
        counts = np.where(counts > 0, (counts - 1) // k + 1, 0)
        stride *= k
        low = top - stride * (counts - 1)
    values = torch.from_numpy(np.concatenate(scaled)) if scaled else torch.zeros(0, 1)
    return WindowSet(values, torch.from_numpy(static) if static is not None else None, np.arange(len(lengths)),
                     offsets + low - lookback, low - pads, counts, lookback, horizon, len(series.targets), past, stride)


def split_targets(splits: dict[str, "Split"], part: str) -> dict[str, tuple[int, int]]:
    """Target row ranges of one part ("train", "val" or "test") of each series."""
    out = {}
    for sid, sp in splits.items():
        bounds = {"train": (0, sp.train), "val": (sp.train, sp.train + sp.val),
                  "test": (sp.train + sp.val, sp.train + sp.val + sp.test)}
        out[sid] = bounds[part]
    return out


__all__ = ["Split", "WindowSet", "build_windows", "model_arrays", "default_split", "explicit_split",
           "default_horizon_lookback", "scaled_arrays", "split_targets", "bounds", "stacked_values", "stacked_times"]
