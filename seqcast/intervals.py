"""Prediction intervals: split-conformal calibration at fit, bands at predict, and their scores.

Calibration (``calibrate``) scores every stride-1 window of the validation rows, pooled over series.
Each score is measured in units of its window's own scale (``window_scale``: the mean absolute
step-to-step change over the window's last 96 steps), so a band is as wide as the recent past is
volatile: one volatile series does not widen everyone's band, and a calm week gets a narrow one
(normalised, or locally weighted, split conformal; the scale depends only on the input, so the
guarantee stands). For each level, horizon step and target, the radius is the finite-sample
conformal quantile of the scores: the ceil((n + 1) (1 - a))-th smallest of n. The score is the
absolute error of the point forecast, or, when the model was trained on the quantile pair
(a / 2, 1 - a / 2), the conformalised quantile regression score max(lo - y, y - hi), so the band is
the model's own quantiles widened (or narrowed) until they cover on validation.

Measured against scaling by each series' training standard deviation (docs/benchmarks.md,
"Intervals"): on M4 Weekly, 95 % coverage 0.947 and MSIS 23.8 for the naive forecast instead of
0.893 and 47.4; on ETTh1, 0.77 / 0.95 at 80 / 95 % instead of 0.90 / 0.99.

Scores of a band (``interval_scores``): coverage, mean width (data units) and MSIS, M4's mean scaled
interval score, scaled like MASE by the in-sample seasonal naive error; ``quantile_loss`` gives the
weighted quantile loss (the mean over quantiles of 2 * sum(pinball) / sum(|y|)), the usual discrete
approximation of the scaled CRPS.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import UsageError
from .forecaster import Calibration

CONTEXT = 96  # the recent steps a window's scale (and the quantile head) reads
SCALE_FLOOR = 0.01  # in z-scored units: a flat window still gets a band


def _numbers(text: str | None, option: str, high: float, example: str) -> list[float]:
    """The comma-separated numbers of ``option``, each inside (0, ``high``); UsageError naming the bad one."""
    values = []
    for part in (text or "").replace(";", ",").split(","):
        if not part.strip():
            continue
        try:
            value = float(part)
        except ValueError:
            raise UsageError(f"{option} {text}: {part.strip()!r} is not a number; give e.g. {example}") from None
        if not 0 < value < high:
            raise UsageError(f"{option} {text}: {part.strip()} is outside (0, {high:g}); give e.g. {example}")
        values.append(value)
    return values


def parse_levels(text: str | None) -> tuple[float, ...]:
    """``"80,95"`` -> ``(80.0, 95.0)``: coverage levels in percent, each inside (0, 100)."""
    levels = _numbers(text, "--level", 100, "80,95 (percent)")
    if len({label(v) for v in levels}) != len(set(levels)):
        raise UsageError(f"--level {text}: levels closer than 10 significant digits name the same columns; "
                         "give distinct levels such as 80,95")
    return tuple(sorted(set(levels)))


def parse_quantiles(text: str | None) -> tuple[float, ...]:
    """``"0.1,0.5,0.9"`` -> ``(0.1, 0.5, 0.9)``: quantiles inside (0, 1), given in ascending order."""
    values = _numbers(text, "--quantiles", 1, "0.1,0.5,0.9")
    if any(b <= a for a, b in zip(values, values[1:])):
        raise UsageError(f"--quantiles {text}: give each quantile once, in ascending order (e.g. 0.1,0.5,0.9)")
    if values and all(q == 0.5 for q in values):
        raise UsageError(f"--quantiles {text}: 0.5 is the forecast itself; give the others, e.g. 0.1,0.9")
    return tuple(values)


def label(level: float) -> str:
    """How a level names its columns and keys: 80 -> "80", 97.5 -> "97.5" (10 significant digits, so
    two levels never share a column)."""
    return f"{level:.10g}"


def quantile_label(q: float) -> str:
    """The column of a quantile: 0.1 -> "q10", 0.025 -> "q2.5"."""
    return f"q{q * 100:.10g}"


def _pair(level: float, quantiles: tuple[float, ...]) -> tuple[int, int] | None:
    """The indices of the quantiles (a / 2, 1 - a / 2) of ``level``, when the model has both."""
    alpha = 1 - level / 100
    index = {round(q, 9): i for i, q in enumerate(quantiles)}
    lo, hi = index.get(round(alpha / 2, 9)), index.get(round(1 - alpha / 2, 9))
    return (lo, hi) if lo is not None and hi is not None else None


def point(pred: np.ndarray, quantiles: tuple[float, ...]) -> np.ndarray:
    """(N, H, C) point forecasts of a model's output: itself, or its median under a quantile head."""
    return pred if pred.ndim == 3 else pred[..., quantiles.index(0.5)]


def _rank(level: float, n: int) -> int:
    """The finite-sample conformal rank of ``level`` among ``n`` scores: ceil((n + 1) (1 - a))."""
    return math.ceil(round((n + 1) * level / 100, 9))


def require_windows(levels: tuple[float, ...], n: int) -> None:
    """UsageError unless ``n`` calibration windows give every level a finite radius (checked before training)."""
    for level in levels:
        if _rank(level, n) > n:
            need = max(n + 1, math.floor(level / (100 - level)) - 1)  # (m + 1)(1 - a) <= m near a closed form
            while _rank(level, need) > need:
                need += 1
            raise UsageError(f"--level {label(level)}: a {label(level)} % interval needs at least {need} validation "
                             f"windows, the validation rows give {n}; use a lower --level, a longer history, or a "
                             "shorter --horizon")


def window_scale(inputs: np.ndarray, real: np.ndarray | None = None) -> np.ndarray:
    """(N, L, C) scaled windows -> (N, 1, C): the mean absolute step-to-step change of the last
    ``CONTEXT`` steps, at least ``SCALE_FLOOR``: the unit every interval score and radius is in.

    ``real`` (N,) counts the real rows each window holds (the rest pad it with the first value, whose
    changes are zero): only the changes between real rows are averaged, so a padded short series gets
    the scale of its own data, not a fraction of it."""
    recent = np.asarray(inputs, dtype=np.float64)[:, -CONTEXT:]
    steps = recent.shape[1] - 1
    if steps < 1:
        return np.full((len(recent), 1, recent.shape[2]), SCALE_FLOOR)
    changes = np.abs(np.diff(recent, axis=1))  # (N, steps, C)
    counted = np.full(len(recent), steps) if real is None else np.clip(np.asarray(real) - 1, 0, steps)
    kept = np.arange(steps)[None, :] >= (steps - counted)[:, None]  # the last ``counted`` changes
    total = (changes * kept[:, :, None]).sum(axis=1, keepdims=True)
    change = total / np.maximum(counted, 1)[:, None, None]
    return np.maximum(np.nan_to_num(change, nan=SCALE_FLOOR), SCALE_FLOOR)


def calibrate(pred: np.ndarray, actual: np.ndarray, levels: tuple[float, ...], quantiles: tuple[float, ...],
              scale: np.ndarray) -> Calibration:
    """The conformal radii of ``levels`` from validation forecasts ``pred`` (N, H, C) or (N, H, C, Q) and
    ``actual`` (N, H, C), all scaled, in units of each window's ``scale`` (N, 1, C). UsageError when
    there are too few windows for a level."""
    n = len(actual)
    require_windows(levels, n)
    methods, radii = [], []
    for level in levels:
        rank = _rank(level, n)
        pair = _pair(level, quantiles) if pred.ndim == 4 else None
        if pair:
            scores = np.maximum(pred[..., pair[0]] - actual, actual - pred[..., pair[1]])
        else:
            scores = np.abs(actual - point(pred, quantiles))
        radii.append(np.sort(scores / scale, axis=0)[rank - 1])  # (H, C), in window-scale units
        methods.append("cqr" if pair else "residual")
    return Calibration(levels=tuple(levels), methods=tuple(methods),
                       radius=tuple(tuple(tuple(float(v) for v in row) for row in r) for r in radii), windows=n)


def bands(calibration: Calibration, pred: np.ndarray, quantiles: tuple[float, ...], levels: tuple[float, ...],
          scale: np.ndarray) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Per level, (lo, hi) of shape (N, H, C) in scaled units around ``pred`` (N, H', C[, Q]), H' <= H, for
    windows of ``scale`` (N, 1, C) (``window_scale`` of their inputs).

    Each band holds the point forecast, and a wider level's band holds a narrower one's."""
    centre = point(pred, quantiles)
    horizon = centre.shape[1]
    out, inner = {}, (centre, centre)
    for level in calibration.levels:  # nested over every calibrated level, whichever are reported
        i = calibration.levels.index(level)
        radius = np.asarray(calibration.radius[i])[None, :horizon, :] * scale
        pair = _pair(level, quantiles) if pred.ndim == 4 and calibration.methods[i] == "cqr" else None
        lo, hi = (pred[..., pair[0]], pred[..., pair[1]]) if pair else (centre, centre)
        lo, hi = np.minimum(lo - radius, inner[0]), np.maximum(hi + radius, inner[1])
        out[level] = inner = (lo, hi)
    return {level: out[level] for level in sorted(levels)}


def check_levels(asked: tuple[float, ...], calibration: Calibration | None, label_: str) -> tuple[float, ...]:
    """The levels a command reports: those asked for (each calibrated at fit), else all calibrated."""
    have = calibration.levels if calibration else ()
    missing = [level for level in asked if level not in have]
    if missing:
        has = (f"has intervals for {', '.join(map(label, have))} %" if have else "has no intervals")
        raise UsageError(f"--level {','.join(map(label, asked))}: {label_} {has}; refit it with "
                         f"`seqcast fit ... --level {','.join(map(label, sorted({*asked, *have})))}`")
    return asked or have


def _grouped(values: np.ndarray, first: np.ndarray) -> np.ndarray:
    """(N, ...) -> per group of consecutive windows starting at ``first``, the mean over its entries."""
    n = len(values)
    sums = np.add.reduceat(values.reshape(n, -1).sum(axis=1), first)
    return sums / (np.diff(np.append(first, n)) * values[0].size)


def interval_scores(actual: np.ndarray, lo: np.ndarray, hi: np.ndarray, level: float, scale: np.ndarray,
                    first: np.ndarray) -> dict[str, np.ndarray]:
    """Coverage, mean width and MSIS of one level's band, per group of windows (``first``, as in
    ``evaluation.metrics_by_group``); ``scale`` (N, C) is MASE's denominator for each window."""
    alpha = 1 - level / 100
    key = label(level)
    inside = ((actual >= lo) & (actual <= hi)).astype(np.float64)
    width = hi - lo
    penalty = width + 2 / alpha * (np.maximum(lo - actual, 0) + np.maximum(actual - hi, 0))
    return {f"coverage_{key}": _grouped(inside, first), f"width_{key}": _grouped(width, first),
            f"msis_{key}": _grouped(penalty / scale[:, None, :], first)}


def quantile_loss(actual: np.ndarray, pred: np.ndarray, quantiles: tuple[float, ...], first: np.ndarray
                  ) -> np.ndarray:
    """The weighted quantile loss per group of windows: mean over quantiles of 2 * sum(pinball) / sum(|y|)."""
    q = np.asarray(quantiles)
    error = actual[..., None] - pred
    loss = np.maximum(q * error, (q - 1) * error).mean(axis=-1)  # (N, H, C), mean over quantiles
    totals, scale = _grouped(loss, first), _grouped(np.abs(actual), first)  # means over one count: as sums
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(scale > 0, 2 * totals / scale, np.nan)
