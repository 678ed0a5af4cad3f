"""Per-series scaling: z-scores with the mean and population std of each series' training rows.

Statistics are computed on series of equal length stacked into one (S, T, C) array, which numpy
reduces exactly as it would each series alone, so the numbers do not depend on how many series share
the file (numpy only: an exported model's forecast scales without torch or pandas).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:
    from .data import SeriesSet


@dataclass
class Scaler:
    """Per series and channel z-scoring: mean and population std of the training rows."""

    mean: dict[str, list[float]]
    std: dict[str, list[float]]

    @classmethod
    def fit(cls, series: SeriesSet, train_rows: dict[str, int]) -> "Scaler":
        ids = series.ids
        rows = np.array([train_rows[sid] for sid in ids], dtype=np.int64)
        mean, std = moments_rows(series.stacked_values(), series.bounds[:-1], rows)
        return cls(dict(zip(ids, mean.tolist())), dict(zip(ids, std.tolist())))

    def stats(self, sid: str, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stored statistics for a known series; a series not seen in training is scaled by its own history."""
        if sid in self.mean:
            return np.asarray(self.mean[sid]), np.asarray(self.std[sid])
        mean, std = moments([values])
        return mean[0], std[0]

    def arrays(self, series: SeriesSet) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std (N, C) of every series of ``series``, as ``stats`` gives them (a series not seen
        in training by its whole history)."""
        placeholder = [0.0] * len(series.targets)
        ids = series.ids
        if ids and list(self.mean) == ids and list(self.std) == ids:  # the series fit read, in its order
            mean = np.array(list(self.mean.values()), dtype=np.float64).reshape(len(ids), -1)
            std = np.array(list(self.std.values()), dtype=np.float64).reshape(len(ids), -1)
            return mean, std
        mean = np.array([self.mean.get(sid, placeholder) for sid in ids], dtype=np.float64)
        std = np.array([self.std.get(sid, placeholder) for sid in ids], dtype=np.float64)
        unknown = np.array([i for i, sid in enumerate(ids) if sid not in self.mean], dtype=np.int64)
        if len(unknown):
            edges = series.bounds
            mean[unknown], std[unknown] = moments_rows(series.stacked_values(), edges[unknown],
                                                       edges[unknown + 1] - edges[unknown])
        return mean, std

    def transform(self, sid: str, values: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        mean, std = self.stats(sid, values if reference is None else reference)
        return (values - mean) / std

    def inverse(self, sid: str, scaled: np.ndarray, reference: np.ndarray) -> np.ndarray:
        mean, std = self.stats(sid, reference)
        return scaled * std + mean


def by_length(arrays: list[np.ndarray], statistic: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``statistic`` (S, T, C) -> (S, C) of every array (T_i, C) in ``arrays``, as (N, C) (``by_length_rows``)."""
    if not len(arrays):
        return np.zeros((0, 1))
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return by_length_rows(np.concatenate(arrays), starts, lengths, statistic)


# Series gathered into one (S, T, C) array at a time: at most this many, and at most this many rows
# (a panel of long series is reduced a few series at a time, not copied whole).
_GATHERED, _GATHERED_ROWS = 1 << 16, 1 << 22


def by_length_rows(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                   statistic: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``statistic`` (S, T, C) -> (S, C) of the rows ``starts[i] : starts[i] + lengths[i]`` of ``values``
    (rows, C), for every i, as (N, C): a panel's series where it holds them end to end, no array per series.

    Series of one length are gathered and reduced in one call; numpy reduces a stacked axis exactly as
    it reduces each series alone, so the result is the same to the bit as a loop over the series.
    """
    out = None
    for length in np.unique(lengths):
        members = np.flatnonzero(lengths == length)
        step = max(1, min(_GATHERED, _GATHERED_ROWS // max(int(length), 1)))
        for first in range(0, len(members), step):
            part = members[first : first + step]
            value = statistic(values[starts[part, None] + np.arange(length)])
            if out is None:
                out = np.empty((len(lengths), value.shape[1]), dtype=value.dtype)
            out[part] = value
    return out if out is not None else np.zeros((0, 1))


def moments(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std (N, C) of each array (T, C): the scaler's statistics."""
    return _halves(by_length(arrays, _both))


def moments_rows(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``moments`` of the rows ``starts[i] : starts[i] + lengths[i]`` of ``values`` (``by_length_rows``)."""
    return _halves(by_length_rows(values, starts, lengths, _both))


def _both(stack: np.ndarray) -> np.ndarray:
    return np.concatenate(_moments(stack), axis=1)


def _halves(both: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    channels = both.shape[1] // 2
    return both[:, :channels], both[:, channels:]


def _moments(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(S, T, C) -> mean and std (S, C) over T."""
    # Divide by the largest magnitude first, so that values near the float64 limit do not overflow.
    magnitude = np.maximum(np.abs(values).max(axis=1), 1e-300)
    unit = values / magnitude[:, None]
    mean = unit.mean(axis=1) * magnitude
    std = unit.std(axis=1) * magnitude
    std = np.where((std > 1e-12 * magnitude) & np.isfinite(std), std, np.maximum(magnitude, 1.0))
    std = np.where(magnitude > 1e-300, std, 1.0)
    return mean, std
