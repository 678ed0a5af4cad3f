"""Metrics and rolling-origin backtests: a checkpoint's forecasts of test windows scored beside the
naive baselines (``compare``, which trains the models first, is in ``comparing.py``).

Two ways to choose test windows:
  * rolling origin (default): the last ``windows`` forecast origins of each series, ``stride`` apart;
    metrics in original units; MASE scaled by the in-sample seasonal naive error.
  * explicit split (``split=Split(train, val, test)``): every stride-1 window whose targets lie in the
    test rows, metrics on the z-scored values (the ETT protocol of the published tables).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from . import intervals
from .naive2 import naive2, owa
from .data import SeriesSet, season_length
from .errors import InputError, UsageError
from .forecaster import Backtest, Forecaster
from .forecasting import check_schema, run_model
from .build import create_model
from .scaling import by_length, moments, moments_rows
from .windows import (Split, bounds, build_windows, explicit_split, model_arrays, split_targets, stacked_times,
                      stacked_values)

METRICS = ("mse", "mae", "rmse", "mape", "smape", "mase")


def leaderboard_metric(metric: str, split: Split | None, windows: int = 20) -> str:
    """The metric ``compare`` ranks by: the one asked for, else MSE on an explicit split (the published
    tables' metric) and MASE otherwise (scale-free across series). OWA needs one window per series."""
    metric = metric or ("mse" if split else "mase")
    if metric not in (*METRICS, "owa"):
        raise UsageError(f"--metric {metric!r}: choose one of {', '.join(METRICS)} or owa")
    if metric == "owa" and (split or windows != 1):
        raise UsageError("--metric owa: OWA scores one horizon per series against Naive2, as M4 did; "
                         "pass --windows 1 (and no --split)")
    return metric


def rank(rows: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """Leaderboard rows best first by ``metric``; rows whose metric is not finite last."""
    return sorted(rows, key=lambda r: (not np.isfinite(r[metric]), r[metric]))


class _NoWindows(InputError):
    """No window of the data can be scored (as opposed to data that does not fit the request)."""
BASELINES = ("naive", "seasonal_naive")
NAIVE2 = "naive2"  # scored beside the baselines when every series has one test window (the M4 protocol)


@dataclass(frozen=True)
class EvalConfig:
    windows: int = 20
    stride: int = 0  # 0 = the horizon (windows do not overlap)
    split: Split | None = None
    in_sample: bool = False  # also score windows whose targets fit trained or validated on
    levels: tuple[float, ...] = ()  # interval levels to score, among those calibrated (default: all of them)

    def __post_init__(self) -> None:
        if not self.windows >= 1:
            raise UsageError(f"--windows {self.windows}: must be at least 1 (test windows per series)")
        if not self.stride >= 0:
            raise UsageError(f"--stride {self.stride}: must be at least 0 (0 = the horizon)")


def metrics(actual: np.ndarray, forecast: np.ndarray, scale: np.ndarray) -> dict[str, float]:
    """Errors over all windows (N), steps (H) and channels (C); ``scale`` (N, C) is MASE's denominator."""
    error = forecast - actual
    absolute = np.abs(error)
    nonzero = np.abs(actual) > 1e-12
    denominator = np.abs(actual) + np.abs(forecast)
    with np.errstate(divide="ignore", invalid="ignore"):
        mape = float(np.mean(absolute[nonzero] / np.abs(actual[nonzero]))) * 100 if nonzero.any() else float("nan")
        smape_terms = np.where(denominator > 0, 2 * absolute / np.where(denominator > 0, denominator, 1), 0.0)
        mase = float(np.mean(absolute / scale[:, None, :])) if len(scale) else float("nan")
    mse = float(np.mean(error**2))
    return {"mse": mse, "mae": float(np.mean(absolute)), "rmse": mse**0.5, "mape": mape,
            "smape": float(np.mean(smape_terms)) * 100, "mase": mase}


def metrics_by_group(actual: np.ndarray, forecast: np.ndarray, scale: np.ndarray, first: np.ndarray
                     ) -> dict[str, list[float]]:
    """``metrics`` of each group of consecutive windows, all groups at once: group g holds windows
    ``first[g]`` up to the next group's first (the windows of one series come together).

    Sums per window, then per group (``np.add.reduceat``); the values equal ``metrics`` of each group
    alone up to the rounding of the sums. Returns each metric's list of values, one per group.
    """
    n = len(actual)
    error = forecast - actual
    absolute = np.abs(error)
    nonzero = np.abs(actual) > 1e-12
    denominator = np.abs(actual) + np.abs(forecast)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(nonzero, absolute / np.where(nonzero, np.abs(actual), 1.0), 0.0)
        smape_terms = np.where(denominator > 0, 2 * absolute / np.where(denominator > 0, denominator, 1), 0.0)
        scaled_absolute = absolute / scale[:, None, :]

    def total(values: np.ndarray) -> np.ndarray:  # (n, H, C) -> one sum per group
        return np.add.reduceat(values.reshape(n, -1).sum(axis=1), first)

    size = np.diff(np.append(first, n)) * actual[0].size
    counted = total(nonzero.astype(np.float64))
    mse = total(error**2) / size
    with np.errstate(divide="ignore", invalid="ignore"):
        mape = np.where(counted > 0, total(ratio) / counted * 100, np.nan)
    values = {"mse": mse, "mae": total(absolute) / size, "rmse": mse**0.5, "mape": mape,
              "smape": total(smape_terms) / size * 100, "mase": total(scaled_absolute) / size}
    return {metric: values[metric].tolist() for metric in METRICS}


def _seasonal_scale(history: np.ndarray, season: int) -> np.ndarray:
    """Per series and channel (S, C) of histories (S, T, C): the mean absolute error of the in-sample
    seasonal naive forecast, where it can be measured and is not zero; else that of repeat-last; else 1."""
    scale = np.ones((history.shape[0], history.shape[2]))
    for lag in (1, season):  # the seasonal lag, applied last, wins where it is usable
        if history.shape[1] > lag:
            value = np.mean(np.abs(history[:, lag:] - history[:, :-lag]), axis=1)
            scale = np.where(value > 0, value, scale)
    return scale


def score(forecaster: Forecaster, series: SeriesSet, config: EvalConfig,
          first_rows: dict[str, int] | None = None, brief: bool = False) -> tuple[dict[str, Any], float]:
    """Forecast every test window with ``forecaster`` and the baselines; metrics per series, per target and
    overall. ``first_rows[id]`` is the first row of each series a test window may forecast (the rows
    before it were seen in training).

    Returns the report and the milliseconds the model took to forecast all windows; the report's
    ``"forecasts"`` holds every window's forecast of the model (a frame, see ``FORECAST_COLUMNS``).
    ``brief``: the model alone, no baselines, per series only its MASE, no frame (what fit's validation
    backtest keeps, a few numbers per series of a panel of a million).
    With several targets in original units, the overall MSE, MAE and RMSE are pooled over the scaled
    values, so that no target dominates by its units (MAPE, sMAPE and MASE have no units).
    """
    scaler, lookback, horizon, name = forecaster.scaler, forecaster.lookback, forecaster.horizon, forecaster.name
    transform = forecaster.transform
    lambdas = transform.lambdas_of(series)  # (S, C)
    shown = transform.apply(series)  # the targets as the model saw them (a copy only when transformed)
    arrays, static = model_arrays(shown, scaler, forecaster.covariates)
    covariates = {"static": static, "past": forecaster.covariates.widths[0]}
    first_rows = first_rows or {}
    if config.split:
        splits = explicit_split(series, config.split, lookback, horizon)
        targets = {sid: (max(first, first_rows.get(sid, 0)), end)
                   for sid, (first, end) in split_targets(splits, "test").items()}
        windows = build_windows(series, arrays, lookback, horizon, targets, pad_short=forecaster.schema.pad_short,
                                **covariates)
    else:
        stride = config.stride or horizon
        targets = {sid: (first_rows.get(sid, 0), total) for sid, total in zip(series.ids, series.lengths.tolist())}
        windows = build_windows(series, arrays, lookback, horizon, targets, stride=stride, last=config.windows,
                                pad_short=forecaster.schema.pad_short, **covariates)
    if len(windows) == 0:
        raise _NoWindows(f"{series.source}: no test windows: each series needs more than lookback {lookback} + "
                         f"horizon {horizon} rows")
    x, y, inputs = windows.batch(slice(None))
    x, y = x.numpy(), y.numpy()
    started = time.perf_counter()
    raw = run_model(forecaster.model, x, {k: v.numpy() for k, v in inputs.items()})  # (N, H, C), or (N, H, C, Q) with quantiles
    elapsed_ms = (time.perf_counter() - started) * 1000
    quantiles = forecaster.model_info.quantiles
    predictions = {name: intervals.point(raw, quantiles)}
    season = season_length(series.freq)
    for baseline in () if brief else BASELINES:
        kwargs = {"season": season} if baseline == "seasonal_naive" else {}
        predictions[baseline] = run_model(create_model(baseline, lookback, horizon, y.shape[2], kwargs), x, None)

    scaled_metrics = config.split is not None
    pooled_scaled = not scaled_metrics and len(series.targets) > 1
    # Windows come grouped by series, in series order: group g starts at window first[g].
    series_index, origins = windows.series_index, windows.origins
    first = np.flatnonzero(np.r_[True, series_index[1:] != series_index[:-1]])
    present = series_index[first]  # the series that have windows
    counts = np.diff(np.append(first, len(windows)))
    edges = bounds(series)
    stacked = stacked_values(series)
    original_history = [stacked[edges[i] : edges[i] + origins[g]] for g, i in zip(first.tolist(), present.tolist())]
    centre, spread = scaler.arrays(shown)  # (series, C), of the transformed targets
    mean, std = centre[series_index][:, None, :], spread[series_index][:, None, :]
    window_lambdas = lambdas[series_index]

    def to_units(values: np.ndarray) -> np.ndarray:  # model output (windows, H, C) -> the target's units
        return transform.restore(values.astype(np.float64) * std + mean, window_lambdas)
    # Scaled metrics (--split, and the pooled ones of several targets) z-score the target's units with the
    # checkpoint's statistics; a transformed model's statistics are of other units, so then the split's
    # training rows give them (with --split: what a model fit untransformed on that split has), else each
    # series' rows before its first test window.
    if transform.kind == "none":
        raw_centre, raw_spread = centre[series_index], spread[series_index]
    elif config.split:
        trained = moments_rows(stacked, edges[:-1],
                               np.array([splits[sid].train for sid in series.ids], dtype=np.int64))
        raw_centre, raw_spread = trained[0][series_index], trained[1][series_index]
    else:
        raw_centre, raw_spread = (np.repeat(m, counts, axis=0) for m in moments(original_history))
    raw_mean, raw_std = raw_centre[:, None, :], raw_spread[:, None, :]
    truth_units = stacked[(edges[series_index] + origins)[:, None] + np.arange(horizon)]

    def to_scaled(values: np.ndarray) -> np.ndarray:  # model output -> scaled metrics' units
        if transform.kind == "none":  # the model's own units, floored where the units are (bit for bit otherwise)
            floor = (-raw_mean / raw_std) if any(transform.floor) else None
            values = values.astype(np.float64)
            return values if floor is None else np.where(np.asarray(transform.floor), np.maximum(values, floor), values)
        return (to_units(values) - raw_mean) / raw_std
    scaled_truth = y.astype(np.float64) if transform.kind == "none" else (truth_units - raw_mean) / raw_std
    if scaled_metrics:
        history = [arrays[i][: origins[g]] for g, i in zip(first, present)] if transform.kind == "none" else \
            [(h - raw_centre[g0]) / raw_spread[g0] for h, g0 in zip(original_history, first)]
    else:
        history = original_history  # what each series showed before its first test window
    scale = by_length(history, lambda stack: _seasonal_scale(stack, season))  # (series with windows, C)
    scales = np.repeat(scale, counts, axis=0)  # (windows, C)
    truth, units = (scaled_truth, to_scaled) if scaled_metrics else (truth_units, to_units)
    forecast = {key: units(pred) for key, pred in predictions.items()}
    if not brief and not scaled_metrics and np.all(counts == 1):  # one horizon per series: M4's Naive2, and OWA
        forecast[NAIVE2] = np.stack([naive2(past, horizon, season) for past in history])
        predictions[NAIVE2] = forecast[NAIVE2]
    actual = {key: truth for key in predictions}
    by_series = {key: metrics_by_group(actual[key], forecast[key], scales, first) for key in predictions}
    levels = intervals.check_levels(config.levels, forecaster.calibration, forecaster.label)
    bands = {level: (units(lo), units(hi)) for level, (lo, hi) in
             intervals.bands(forecaster.calibration, raw, quantiles, levels,
                             intervals.window_scale(x, origins)).items()} if levels else {}
    probabilistic = {}  # per level coverage, width and MSIS, and the quantile loss: per series, then overall
    for level, (lo, hi) in bands.items():
        probabilistic.update(intervals.interval_scores(truth, lo, hi, level, scales, first))
        probabilistic.update({f"{k}@all": v for k, v in intervals.interval_scores(
            truth, lo, hi, level, scales, np.array([0])).items()})
    if quantiles:
        quantile_values = np.stack([units(raw[..., i]) for i in range(len(quantiles))], axis=-1)
        probabilistic["wql"] = intervals.quantile_loss(truth, quantile_values, quantiles, first)
        probabilistic["wql@all"] = intervals.quantile_loss(truth, quantile_values, quantiles, np.array([0]))
    ids = series.ids
    if brief:
        error = (forecast[name] - actual[name]).reshape(-1)
        overall = {name: metrics(actual[name], forecast[name], scales)}
        overall[name].update({k.removesuffix("@all"): float(v[0]) for k, v in probabilistic.items()
                              if k.endswith("@all")})
        return {"windows": len(windows), "season": season, "overall": overall, "error_sum": float(error.sum()),
                "error_abs": float(np.abs(error).sum()),
                "series_mase": dict(zip([ids[i] for i in present.tolist()], by_series[name]["mase"]))}, \
            elapsed_ms
    per_series = {}
    for g, i in enumerate(present.tolist()):
        per_series[ids[i]] = {"windows": int(counts[g]), **{
            key: {metric: values[g] for metric, values in table.items()} for key, table in by_series.items()}}
        per_series[ids[i]][name].update(
            {k: float(v[g]) for k, v in probabilistic.items() if not k.endswith("@all")})
    extra = {}
    for level, (lo, hi) in bands.items():
        extra[f"lo_{intervals.label(level)}"], extra[f"hi_{intervals.label(level)}"] = lo, hi
    forecasts = _forecast_frame(series, windows, actual[name], forecast[name], name, extra)
    overall = {key: metrics(actual[key], forecast[key], scales) for key in predictions}
    if NAIVE2 in overall:
        reference = overall[NAIVE2]
        for scores in overall.values():
            scores["owa"] = owa(scores["smape"], scores["mase"], reference["smape"], reference["mase"])
    overall[name].update({k.removesuffix("@all"): float(v[0]) for k, v in probabilistic.items() if k.endswith("@all")})
    if pooled_scaled:  # the windows' own order, as ``scales`` follows it
        for key, pred in predictions.items():
            scaled_pred = (forecast[key] - raw_mean) / raw_std if key == NAIVE2 else to_scaled(pred)
            pooled = metrics(scaled_truth, scaled_pred, scales)
            overall[key].update({m: pooled[m] for m in ("mse", "mae", "rmse")})
    by_target = {target: {key: metrics(actual[key][..., c : c + 1], forecast[key][..., c : c + 1],
                                       scales[:, c : c + 1]) for key in predictions}
                 for c, target in enumerate(series.targets)}
    report = {"windows": len(windows),
              "windows_requested": None if config.split else config.windows * len(series.series),
              "stride": 1 if config.split else (config.stride or horizon),
              "scaled": scaled_metrics, "pooled_scaled": pooled_scaled, "lookback": lookback, "horizon": horizon,
              "season": season, "overall": overall, "targets": by_target, "series": per_series,
              "forecasts": forecasts}
    return report, elapsed_ms


FORECAST_COLUMNS = ["model", "series", "origin", "step", "target", "actual", "forecast"]


def _forecast_frame(series: SeriesSet, windows, actual: np.ndarray, forecast: np.ndarray, name: str,
                    extra: dict[str, np.ndarray] | None = None):
    """One row per window, step and target: what ``--forecasts`` writes (scaled or original units),
    with the interval bounds in ``extra`` (lo_80, hi_80, ...: (N, H, C) each) after the forecast."""
    import pandas as pd

    # Windows come grouped by series in series order, as ``actual`` and ``forecast`` hold them.
    series_index, origins = windows.series_index, windows.origins
    n, horizon, channels = actual.shape
    ids = np.array(series.ids, dtype=object)[series_index]
    origin_times = np.asarray(stacked_times(series)[bounds(series)[series_index] + origins])
    repeat = horizon * channels
    return pd.DataFrame({
        "model": name,
        "series": np.repeat(ids, repeat),
        "origin": np.repeat(origin_times, repeat),
        "step": np.tile(np.repeat(np.arange(1, horizon + 1), channels), n),
        "target": np.tile(np.array(series.targets, dtype=object), n * horizon),
        "actual": actual.reshape(-1),
        "forecast": forecast.reshape(-1),
        **{key: values.reshape(-1) for key, values in (extra or {}).items()},
    })[FORECAST_COLUMNS + list(extra or {})]


def backtest(ckpt: Forecaster, series: SeriesSet, config: EvalConfig = EvalConfig()) -> dict[str, Any]:
    """Score a checkpoint on test windows of ``series`` without refitting: by default only windows
    after the data the checkpoint was trained and validated on (``config.in_sample`` scores all)."""
    check_schema(ckpt, series)
    name, seen = ckpt.name, ckpt.training.seen_until
    warnings = []
    if config.in_sample:
        warnings.append("--in-sample: scoring windows the model was trained or validated on; "
                        "their scores flatter it")
    elif seen is None:
        why = (f"checkpoint format {ckpt.stored.format} did not record it" if ckpt.stored and ckpt.stored.format < 2
               else "its training data had no time column, and row numbers restart in every file")
        warnings.append(f"{ckpt.label} cannot tell which rows of this file it was trained on ({why}): the scores "
                        "may include windows it was trained or validated on")
    first_rows = None if config.in_sample or seen is None else unseen_rows(series, seen)
    try:
        report, elapsed = score(ckpt, series, config, first_rows)
    except _NoWindows:
        if first_rows is None or not any(first_rows.values()):
            raise
        known = [sid for sid in series.ids if sid in seen]
        raise InputError(
            f"{series.source}: no windows to score after the data {ckpt.label} was trained and validated on "
            f"(series {known[0]!r} up to {seen[known[0]]}{' and others' if len(known) > 1 else ''}); evaluate on newer "
            "data, fit on fewer rows, or pass --in-sample to score those windows anyway (in-sample scores "
            "flatter the model); `seqcast compare` holds its test windows out of training by itself"
        ) from None
    return {"model": name, "checkpoint": ckpt.label, "predict_ms": elapsed, "warnings": warnings, **report}


def unseen_rows(series: SeriesSet, seen_until: dict[str, Any]) -> dict[str, int]:
    """Per series, the first row after the last timestamp fit used (0 for a series it never saw)."""
    import pandas as pd

    ids = series.ids
    known = [i for i, sid in enumerate(ids) if seen_until.get(sid) is not None]
    if not known:
        return dict.fromkeys(ids, 0)
    times, edges = stacked_times(series), bounds(series)
    lasts = [seen_until[ids[i]] for i in known]
    if series.integer_time:
        last, times = np.array(lasts, dtype=np.int64), times.to_numpy()
        never = np.iinfo(np.int64).min  # no timestamp is at or before it
    else:
        try:
            last = pd.DatetimeIndex(pd.to_datetime(lasts, format="ISO8601"))
        except (ValueError, TypeError):  # offsets that differ between series: one at a time
            last = pd.DatetimeIndex([pd.Timestamp(t) for t in lasts])
        if (last.tz is None) != (times.tz is None):
            raise InputError(f"{series.source}: series {ids[known[0]]!r}: timestamps differ in time "
                             f"zone from the training data (it ended at {lasts[0]})")
        # As UTC instants in numpy, which compares timestamps of different units correctly.
        last, times = (t.tz_convert(None).to_numpy() if t.tz is not None else t.to_numpy() for t in (last, times))
        never = np.datetime64("NaT")  # compares false with every timestamp
    until = np.full(len(ids), never, dtype=last.dtype)
    until[known] = last
    # Timestamps increase within a series, so the rows at or before its last seen one lead it.
    seen = times <= np.repeat(until, np.diff(edges))
    counts = np.add.reduceat(seen.astype(np.int64), edges[:-1])
    return dict(zip(ids, counts.tolist()))


def truncate(series: SeriesSet, rows: dict[str, int]) -> SeriesSet:
    """The first ``rows[id]`` rows of each series: what a model may train on before the test windows."""
    return replace(series.heads([rows[sid] for sid in series.ids]), ahead={})


def validation_backtest(forecaster: Forecaster, series: SeriesSet, splits: dict[str, Split]) -> Backtest | None:
    """The windows of each series' validation rows (``splits``: the fit's), stride the horizon, scored as
    ``evaluate`` scores test windows (original units, MASE against the in-sample seasonal naive): what
    fit records as the reference for ``seqcast monitor``. None without validation windows."""
    validating = {sid: sp for sid, sp in splits.items() if sp.val >= forecaster.horizon}
    if not validating:
        return None
    kept = series.subset([sid in validating for sid in series.ids])
    kept = replace(kept.heads([validating[sid].train + validating[sid].val for sid in kept.ids]), ahead={})
    first_rows = {sid: sp.train for sid, sp in validating.items()}
    windows = max(sp.val for sp in validating.values()) // forecaster.horizon + 1
    levels = forecaster.calibration.levels if forecaster.calibration else ()
    means = ["mase", "smape", *(f"coverage_{intervals.label(level)}" for level in levels)]
    reports = []
    for block in _blocks(kept, VALIDATION_BLOCK):  # memory bounded by a block of series, not by the panel
        try:
            reports.append(score(forecaster, block, EvalConfig(windows=windows), first_rows, brief=True)[0])
        except _NoWindows:
            continue
    if not reports:
        return None
    count = sum(r["windows"] for r in reports)  # every window weighs alike: H x C points each
    values = {key: float(reports[0]["overall"][forecaster.name][key]) if len(reports) == 1 else
              sum(float(r["overall"][forecaster.name][key]) * r["windows"] for r in reports) / count for key in means}
    error_sum, spread = sum(r["error_sum"] for r in reports), sum(r["error_abs"] for r in reports)
    series_mase = {sid: float(v) for r in reports for sid, v in r["series_mase"].items() if -np.inf < v < np.inf}
    season = reports[0]["season"]
    if not all(np.isfinite(v) for v in values.values()):
        return None
    return Backtest(windows=count, season=season, mase=values["mase"], smape=values["smape"],
                    bias=error_sum / spread if spread > 0 else 0.0, coverage=tuple(values[k] for k in means[2:]),
                    series_mase=series_mase)


VALIDATION_BLOCK = 1 << 17  # series scored at a time by fit's validation backtest


def _blocks(series: SeriesSet, size: int):
    """``series`` in blocks of at most ``size`` series, in order (itself when it is one block)."""
    if len(series.ids) <= size:
        yield series
        return
    position = np.arange(len(series.ids))
    for first in range(0, len(position), size):
        yield series.subset((position >= first) & (position < first + size))
