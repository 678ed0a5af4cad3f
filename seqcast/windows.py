"""Chronological splits, per-series scaling fit on training rows only, and sliding windows.

Windows are views over one tensor: every series' scaled values are concatenated into a (rows, C)
tensor, ``unfold`` turns it into a (n, C, L + H) view, and a window is just a start index into it.
A batch copies only the windows it takes; nothing per sample runs in Python during training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .data import SeriesSet, season_length, time_features
from .errors import InputError

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


def default_split(series: SeriesSet, lookback: int, horizon: int, val_fraction: float = 0.1) -> dict[str, Split]:
    """Per series: validation is the last max(H, 10 %) rows, the rest trains; too short is an error."""
    splits, short = {}, []
    for s in series.series:
        total = len(s.times)
        val = max(horizon, int(round(val_fraction * total)))
        if total < lookback + horizon + val:
            short.append(f"{s.id!r} has {total} rows, needs {lookback + horizon + val} "
                         f"(lookback {lookback} + horizon {horizon} + validation {val})")
        splits[s.id] = Split(total - val, val, 0)
    if short:
        raise InputError(f"{series.source}: series too short: {'; '.join(short[:5])}"
                         + (f"; and {len(short) - 5} more" if len(short) > 5 else "")
                         + ". Use a shorter --lookback or --horizon, or more history")
    return splits


def explicit_split(series: SeriesSet, split: Split, lookback: int, horizon: int) -> dict[str, Split]:
    """The same row-count split for every series; each must be long enough for it."""
    need = split.train + split.val + split.test
    for s in series.series:
        if len(s.times) < need:
            raise InputError(f"{series.source}: series {s.id!r} has {len(s.times)} rows; --split needs {need}")
    if split.train < lookback + horizon or (split.val and split.val < horizon) or (split.test and split.test < horizon):
        raise InputError(f"--split {split.train},{split.val},{split.test}: each part needs at least the horizon "
                         f"({horizon}) rows and training needs lookback + horizon ({lookback + horizon})")
    return {s.id: split for s in series.series}


@dataclass
class Scaler:
    """Per series and channel z-scoring: mean and population std of the training rows."""

    mean: dict[str, list[float]]
    std: dict[str, list[float]]

    @classmethod
    def fit(cls, series: SeriesSet, train_rows: dict[str, int]) -> "Scaler":
        mean, std = {}, {}
        for s in series.series:
            mean[s.id], std[s.id] = _moments(s.values[: train_rows[s.id]])
        return cls(mean, std)

    def stats(self, sid: str, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stored statistics for a known series; a series not seen in training is scaled by its own history."""
        if sid in self.mean:
            return np.asarray(self.mean[sid]), np.asarray(self.std[sid])
        mean, std = _moments(values)
        return np.asarray(mean), np.asarray(std)

    def transform(self, sid: str, values: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        mean, std = self.stats(sid, values if reference is None else reference)
        return (values - mean) / std

    def inverse(self, sid: str, scaled: np.ndarray, reference: np.ndarray) -> np.ndarray:
        mean, std = self.stats(sid, reference)
        return scaled * std + mean


def _moments(values: np.ndarray) -> tuple[list[float], list[float]]:
    # Divide by the largest magnitude first, so that values near the float64 limit do not overflow.
    magnitude = np.maximum(np.abs(values).max(axis=0), 1e-300)
    unit = values / magnitude
    mean = unit.mean(axis=0) * magnitude
    std = unit.std(axis=0) * magnitude
    std = np.where((std > 1e-12 * magnitude) & np.isfinite(std), std, np.maximum(magnitude, 1.0))
    std = np.where(magnitude > 1e-300, std, 1.0)
    return mean.tolist(), std.tolist()


class WindowSet:
    """Windows over the concatenated scaled series: ``x`` (B, L, C), ``y`` (B, H, C), calendar (B, L+H, F)."""

    def __init__(self, values: torch.Tensor, marks: torch.Tensor | None, starts: np.ndarray,
                 series_index: np.ndarray, origins: np.ndarray, lookback: int, horizon: int):
        self.lookback, self.horizon = lookback, horizon
        span = lookback + horizon
        self.values, self.marks = values, marks
        self._windows = values.unfold(0, span, 1)  # (rows - span + 1, C, L + H), a view
        self._marks = marks.unfold(0, span, 1) if marks is not None else None
        self.starts = torch.as_tensor(starts, dtype=torch.long)
        self.series_index, self.origins = series_index, origins

    def __len__(self) -> int:
        return len(self.starts)

    def to(self, device: torch.device) -> "WindowSet":
        marks = self.marks.to(device) if self.marks is not None else None
        moved = WindowSet(self.values.to(device), marks, np.empty(0, dtype=np.int64), self.series_index,
                          self.origins, self.lookback, self.horizon)
        moved.starts = self.starts.to(device)
        return moved

    def batch(self, index: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        starts = self.starts[index]
        window = self._windows[starts].transpose(1, 2)  # (B, C, L+H) -> (B, L+H, C)
        marks = self._marks[starts].transpose(1, 2) if self._marks is not None else None
        return window[:, : self.lookback], window[:, self.lookback :], marks


def scaled_arrays(series: SeriesSet, scaler: Scaler) -> list[np.ndarray]:
    return [scaler.transform(s.id, s.values).astype(np.float32) for s in series.series]


def build_windows(series: SeriesSet, scaled: list[np.ndarray], lookback: int, horizon: int,
                  targets: dict[str, tuple[int, int]], stride: int = 1, last: int | None = None,
                  calendar: bool = False) -> WindowSet:
    """Windows whose targets lie in rows ``targets[id] = [first, end)`` of each series.

    Origins (first target row) run from ``first`` to ``end - H`` in steps of ``stride``; with ``last``
    only the last ``last`` origins counted back from ``end - H`` (rolling-origin evaluation).
    Inputs may reach back before ``first`` (the lookback overlap), never before row 0.
    """
    starts, series_index, origins, offset = [], [], [], 0
    for i, (s, values) in enumerate(zip(series.series, scaled)):
        first, end = targets.get(s.id, (0, 0))
        top = min(end, len(values)) - horizon
        if last is not None:
            origin = np.arange(top, top - stride * last, -stride)[::-1]
            origin = origin[origin >= max(first, lookback)]
        else:
            origin = np.arange(max(first, lookback), top + 1, stride)
        starts.append(offset + origin - lookback)
        series_index.append(np.full(len(origin), i))
        origins.append(origin)
        offset += len(values)
    values = torch.from_numpy(np.concatenate(scaled)) if scaled else torch.zeros(0, 1)
    marks = None
    if calendar and not series.integer_time:
        marks = torch.from_numpy(np.concatenate([time_features(s.times) for s in series.series]))
    return WindowSet(values, marks, np.concatenate(starts).astype(np.int64), np.concatenate(series_index),
                     np.concatenate(origins), lookback, horizon)


def split_targets(splits: dict[str, "Split"], part: str) -> dict[str, tuple[int, int]]:
    """Target row ranges of one part ("train", "val" or "test") of each series."""
    out = {}
    for sid, sp in splits.items():
        bounds = {"train": (0, sp.train), "val": (sp.train, sp.train + sp.val),
                  "test": (sp.train + sp.val, sp.train + sp.val + sp.test)}
        out[sid] = bounds[part]
    return out


__all__ = ["Split", "Scaler", "WindowSet", "build_windows", "default_split", "explicit_split",
           "default_horizon_lookback", "scaled_arrays", "split_targets", "season_length"]
