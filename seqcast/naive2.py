"""Naive2 and OWA, as the M4 competition defined them, for ``compare`` on a panel.

Naive2 is repeat-last-value on seasonally adjusted data: a series whose autocorrelation at its season
``m`` passes the M4 test (90 % one-sided, |r_m| > 1.645 sqrt((1 + 2 sum_{k<m} r_k^2) / n), with at
least 3m values) is divided by the seasonal indices of a classical multiplicative decomposition
(a centred moving average of order m as the trend, the mean ratio to it at each phase, normalised to
average 1), its last adjusted value is repeated, and the horizon is multiplied back by the indices of
its phases. Other series, and series with a value <= 0 (a multiplicative index needs positive data),
get plain repeat-last-value. OWA = (sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2) / 2.

``m`` is the data's season (``seqcast.data.season_length``). M4 itself used m = 1 for weekly and daily
data, so that on those its Naive2 is plain repeat-last; here a weekly series that is seasonal at lag
52 is adjusted.
"""

from __future__ import annotations

import numpy as np


def seasonal(values: np.ndarray, season: int) -> bool:
    """Whether one series (T,) passes M4's seasonality test at lag ``season``."""
    n = len(values)
    if season <= 1 or n < 3 * season:
        return False
    centred = values - values.mean()
    denominator = float(centred @ centred)
    if denominator == 0:
        return False
    acf = np.array([float(centred[k:] @ centred[: n - k]) for k in range(1, season + 1)]) / denominator
    limit = 1.645 * np.sqrt((1 + 2 * np.sum(acf[:-1] ** 2)) / n)
    return bool(abs(acf[-1]) > limit)


def seasonal_indices(values: np.ndarray, season: int) -> np.ndarray:
    """(T,) -> (season,): the multiplicative index of each phase, phase 0 being the first value's."""
    if season % 2 == 0:  # a 2 x m moving average keeps the trend centred on a step
        weights = np.r_[0.5, np.ones(season - 1), 0.5] / season
    else:
        weights = np.ones(season) / season
    trend = np.convolve(values, weights, mode="valid")
    start = (len(weights) - 1) // 2  # the step the first trend value is centred on
    ratios = values[start : start + len(trend)] / trend
    phases = (np.arange(len(trend)) + start) % season
    indices = np.bincount(phases, weights=ratios, minlength=season) / np.bincount(phases, minlength=season)
    return indices / indices.mean()


def naive2(values: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """(T, C) history -> (horizon, C) Naive2 forecast, each channel on its own."""
    out = np.empty((horizon, values.shape[1]))
    for c in range(values.shape[1]):
        x = values[:, c].astype(np.float64)
        if np.all(x > 0) and seasonal(x, season):
            indices = seasonal_indices(x, season)
            phase = np.arange(len(x), len(x) + horizon) % season
            out[:, c] = x[-1] / indices[(len(x) - 1) % season] * indices[phase]
        else:
            out[:, c] = x[-1]
    return out


def owa(smape: float, mase: float, smape_naive2: float, mase_naive2: float) -> float:
    """M4's overall weighted average: each measure relative to Naive2's on the same windows."""
    if not (smape_naive2 > 0 and mase_naive2 > 0):
        return float("nan")
    return 0.5 * (smape / smape_naive2 + mase / mase_naive2)
