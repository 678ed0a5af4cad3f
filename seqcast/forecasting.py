"""Forecasting from a checkpoint: the next H steps after each series' last timestamp, in original units.

Output columns (one row per series, step and target):
    series     the series id ("main" for a file with one series)
    timestamp  the future timestamp, on the grid of the recorded frequency
    step       1..H, steps after the last observed timestamp
    model      the registered model name
    target     the target column forecast
    forecast   the value, in the target's original units (the median of a quantile-trained model)
    lo_80, hi_80, ...  the bounds of each conformal interval level the checkpoint has (fit --level), or
               those asked for with --level, in original units; a wider level's band holds a narrower one's
    q10, q90, ...      each quantile a quantile-trained model forecasts besides the median (fit --quantiles)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import intervals
from .forecaster import Forecaster
from .transform import TargetTransform
from .covariates import horizon_values, static_inputs, step_values
from .data import DataConfig, SeriesSet, canonical_freq, future_grid
from .errors import InputError, UsageError, named
from .windows import bounds, real_inputs, stacked_times, stacked_values

COLUMNS = ["series", "timestamp", "step", "model", "target", "forecast"]


def data_config(ckpt: Forecaster, fill: str | None = None, freq: str | None = None, decimal: str | None = None,
                dayfirst: bool | None = None, date_format: str | None = None) -> DataConfig:
    """Read new history as fit read the training data: its columns and recorded policy (the frequency
    when fit was told it, the fill, decimal separator and date order); arguments given here win."""
    schema, policy, covariates = ckpt.schema, ckpt.policy, ckpt.covariates
    return DataConfig(
        time_col=schema.time_col, target=schema.targets, id_col=schema.id_col,
        past_cols=covariates.names("past"), future_cols=covariates.names("future"),
        static_cols=covariates.names("static"),
        freq=freq or (schema.freq if policy.freq_given else None),
        fill=fill or policy.fill,
        decimal=decimal or policy.decimal,
        dayfirst=policy.dayfirst if dayfirst is None else dayfirst,
        date_format=date_format or policy.date_format,
        wide=policy.wide,
    )


def check_schema(ckpt: Forecaster, series: SeriesSet) -> None:
    """New data must have the training data's targets, time kind and frequency."""
    schema = ckpt.schema
    if tuple(series.targets) != schema.targets:
        raise InputError(f"{series.source}: targets differ from training: expected {list(schema.targets)}, "
                         f"got {series.targets}")
    same = canonical_freq(series.freq) == canonical_freq(schema.freq) or (
        not series.integer_time and not schema.integer_time
        and pd.tseries.frequencies.to_offset(series.freq) == pd.tseries.frequencies.to_offset(schema.freq))
    if series.integer_time != schema.integer_time or not same:
        raise InputError(f"{series.source}: frequency differs from training: expected {schema.freq!r}, "
                         f"got {series.freq!r}")
    covariates = ckpt.covariates
    for kind, given in (("past", series.past_cols), ("future", series.future_cols), ("static", series.static_cols)):
        if tuple(given) != covariates.names(kind):
            raise InputError(f"{series.source}: {kind} covariates differ from training: expected "
                             f"{list(covariates.names(kind))}, got {list(given)}")


def unseen_series(ckpt: Forecaster, series: SeriesSet) -> list[str]:
    """The note to give when ``series`` holds series the model was not fit on ([] when none): each is
    scaled by its own history (and a Box-Cox lambda of its own), not by statistics fit on it."""
    known = set(ckpt.schema.series)
    new = [sid for sid in series.ids if sid not in known]
    if not new:
        return []
    return [f"{len(new)} series not seen at fit, scaled by their own history: "
            + named(new)]


def run_model(model, x: np.ndarray, covariates: dict[str, np.ndarray] | None = None,
              batch_size: int = 2048) -> np.ndarray:
    """Scaled inputs (N, L, C) and their covariate inputs (the contract's keywords: past (N, L, P),
    future (N, L + H, F), static (N, S)) -> scaled forecasts (N, H, C), in batches, on the CPU.

    ``model`` is a torch module, or a model that forecasts numpy arrays itself (``forward_numpy``, as
    ``edge.OnnxModel`` does through onnxruntime): then torch is never imported.
    """
    forward = getattr(model, "forward_numpy", None)
    if forward is None:
        import torch

        def forward(xb: np.ndarray, inputs: dict[str, np.ndarray]) -> np.ndarray:
            with torch.no_grad():
                return model(torch.from_numpy(xb), **{k: torch.from_numpy(v) for k, v in inputs.items()}).numpy()
    outputs = []
    for start in range(0, len(x), batch_size):
        xb = np.ascontiguousarray(x[start : start + batch_size], dtype=np.float32)
        inputs = {k: np.ascontiguousarray(v[start : start + batch_size], dtype=np.float32)
                  for k, v in (covariates or {}).items()}
        outputs.append(forward(xb, inputs))
    return np.concatenate(outputs) if outputs else np.zeros((0,) + x.shape[1:])


@dataclass(frozen=True)
class LastWindows:
    """One window per series (all series at once), ending ``offset`` rows before the series' end."""

    inputs: np.ndarray  # (N, L, C) scaled
    covariates: dict[str, np.ndarray]  # the model's covariate inputs by keyword ({} without covariates)
    rows: np.ndarray  # (N, L) the input rows in the concatenation of all series (``windows.bounds``)
    future: pd.Index  # (N * H) the H timestamps after each window, one series after another
    mean: np.ndarray  # (N, C) the scaler's statistics of each series (of the transformed targets)
    std: np.ndarray  # (N, C)
    transform: TargetTransform = TargetTransform()  # the checkpoint's, undone by ``to_units``
    lambdas: np.ndarray | None = None  # (N, C) each series' Box-Cox lambdas (transform.lambdas_of)

    def to_units(self, scaled: np.ndarray) -> np.ndarray:
        """(N, H, C) forecasts in scaled units -> the target's units: unscaled, the transform undone,
        floored at zero where the target never was negative."""
        values = scaled * self.std[:, None, :] + self.mean[:, None, :]
        lambdas = self.lambdas if self.lambdas is not None else np.zeros_like(self.mean)
        return self.transform.restore(values, lambdas)


def last_windows(ckpt: Forecaster, series: SeriesSet, offset: int = 0) -> LastWindows:
    """The model inputs of every series' window ending ``offset`` rows before its last row."""
    check_schema(ckpt, series)
    lookback, horizon, freq = ckpt.lookback, ckpt.horizon, ckpt.schema.freq
    # A model trained with padded windows reads a short history padded the same way.
    need = real_inputs(lookback, horizon) if ckpt.schema.pad_short else lookback
    short = [f"{sid!r} has {total}" for sid, total in zip(series.ids, series.lengths.tolist()) if total - offset < need]
    if short:
        back = f" ending {offset} steps before the end" if offset else ""
        what = (f"at least {need} rows (its lookback {lookback}, shorter histories padded)" if ckpt.schema.pad_short
                else f"the last {lookback} rows (its lookback)")
        raise InputError(f"{series.source}: history too short: the model reads {what}{back}; "
                         f"series {', '.join(short[:5])}")
    edges = bounds(series)
    rows = (edges[1:] - offset)[:, None] + np.arange(-lookback, 0)  # (N, L)
    rows = np.maximum(rows, edges[:-1, None])  # padding: rows before a series' first repeat that row
    lambdas = ckpt.transform.lambdas_of(series)
    transformed = ckpt.transform.apply(series)
    mean, std = ckpt.scaler.arrays(transformed)
    inputs = (stacked_values(transformed)[rows] - mean[:, None, :]) / std[:, None, :]
    times = stacked_times(series)
    future = future_grid(times[rows[:, -1]], freq, horizon)
    return LastWindows(inputs, _covariate_inputs(ckpt, series, rows, future), rows, future, mean, std,
                       ckpt.transform, lambdas)


def _covariate_inputs(ckpt: Forecaster, series: SeriesSet, rows: np.ndarray, future: pd.Index) -> dict[str, np.ndarray]:
    """The covariate inputs of the windows whose input rows are ``rows`` (N, L) and whose forecast steps
    are ``future``: past and known-future values of the input rows, known-future values of the steps
    (covariates.horizon_values: every step covered, or an error listing those that are not), static."""
    schema = ckpt.covariates
    P, F, _ = schema.widths
    out: dict[str, np.ndarray] = {}
    if P or F:
        steps = np.concatenate([step_values(series, schema, s) for s in series.series])[rows]  # (N, L, P + F)
        if P:
            out["past"] = steps[..., :P]
        if F:
            ends = rows[:, -1] - bounds(series)[:-1]  # each window's last input row within its series
            out["future"] = np.concatenate([steps[..., P:], horizon_values(series, schema, ends, future,
                                                                           ckpt.horizon)], axis=1)
    static = static_inputs(series, schema)
    if static is not None:
        out["static"] = static
    return out


def window_inputs(ckpt: Forecaster, series: SeriesSet, offset: int = 0
                  ) -> tuple[np.ndarray, dict[str, np.ndarray], list[pd.Index], list[pd.Index]]:
    """The model inputs of each series' window ending ``offset`` steps before its last row.

    Returns scaled inputs (N, L, C), the covariate inputs by keyword, and per series the L input
    timestamps (padded steps repeat the first) and the H timestamps that follow them.
    """
    windows = last_windows(ckpt, series, offset)
    times, horizon = stacked_times(series), ckpt.horizon
    pasts = [times[r] for r in windows.rows]  # a padded step shows its series' first timestamp
    futures = [windows.future[i * horizon : (i + 1) * horizon] for i in range(len(windows.rows))]
    return windows.inputs, windows.covariates, pasts, futures


def predict(ckpt: Forecaster, series: SeriesSet, horizon: int = 0, levels: tuple[float, ...] = ()) -> pd.DataFrame:
    """Forecast the next ``horizon`` steps (default and at most the trained H) of every series in
    ``series``; a frame with ``COLUMNS``, one series after another, each target's steps in order, then
    the interval bounds of ``levels`` (default: every level the checkpoint has) and any quantiles."""
    if not 0 <= horizon <= ckpt.horizon:
        raise UsageError(f"--horizon {horizon}: the model was trained to forecast {ckpt.horizon} steps; "
                         f"give 1 to {ckpt.horizon}, or fit a model with a longer --horizon")
    levels = intervals.check_levels(levels, ckpt.calibration, ckpt.label)
    horizon = horizon or ckpt.horizon
    windows = last_windows(ckpt, series)
    scaled = run_model(ckpt.model, windows.inputs, windows.covariates)[:, :horizon].astype(np.float64)  # (N, H, C[, Q])
    quantiles = ckpt.model_info.quantiles

    original = windows.to_units  # (N, H, C) scaled -> the target's units
    values = original(intervals.point(scaled, quantiles))
    extra = {}
    scale = intervals.window_scale(windows.inputs, np.diff(bounds(series))) if levels else None
    for level, (lo, hi) in intervals.bands(ckpt.calibration, scaled, quantiles, levels, scale).items() if levels else ():
        extra[f"lo_{intervals.label(level)}"], extra[f"hi_{intervals.label(level)}"] = original(lo), original(hi)
    for i, q in enumerate(quantiles):
        if q != 0.5:
            extra[intervals.quantile_label(q)] = original(scaled[..., i])
    _check_finite(np.stack([values, *extra.values()], axis=-1) if extra else values, windows.inputs, series, ckpt)
    n, channels = len(series.series), len(ckpt.schema.targets)
    kept = np.arange(n * ckpt.horizon).reshape(n, ckpt.horizon)[:, None, :horizon]  # the first steps of each
    timestamps = windows.future[np.repeat(kept, channels, axis=1).reshape(-1)]  # (N, C, H): again per target

    def column(values: np.ndarray) -> np.ndarray:  # (N, H, C) -> (N, C, H), one row per series, target, step
        return values.transpose(0, 2, 1).reshape(-1)
    return pd.DataFrame({
        "series": np.repeat(np.array(series.ids, dtype=object), channels * horizon),
        "timestamp": timestamps,
        "step": np.tile(np.arange(1, horizon + 1), n * channels),
        "model": ckpt.name,
        "target": np.tile(np.repeat(np.array(ckpt.schema.targets, dtype=object), horizon), n),
        "forecast": column(values),
        **{name: column(v) for name, v in extra.items()},
    }, copy=False)  # in COLUMNS' order already: selecting them again would copy millions of rows


def _check_finite(values: np.ndarray, inputs: np.ndarray, series: SeriesSet, ckpt: Forecaster) -> None:
    """A forecast is finite or it is an error naming the series (nothing is written): a blank
    forecast that replaces a good one is worse than none."""
    bad = ~np.isfinite(values).reshape(len(values), -1).all(axis=1)
    if not bad.any():
        return
    i = int(np.argmax(bad))
    sid = series.ids[i]
    why = ("its last window holds values too large for the model once scaled (check it for a glitch, "
           "e.g. a value of 1e39 in a series of hundreds)" if not np.isfinite(inputs[i]).all()
           or np.abs(inputs[i]).max() > 1e6 else
           f"the model {ckpt.label} gives non-finite values on it (refit, or check the checkpoint)")
    raise InputError(f"{series.source}: series {sid!r}: the forecast is not finite ({int(bad.sum())} of "
                     f"{len(bad)} series affected): {why}; nothing was written")


def summary(ckpt: Forecaster, series: SeriesSet, frame: pd.DataFrame, output: str | None) -> dict:
    """What ``predict --json`` prints: the forecast's shape and span, and the rows unless written to a file."""
    document = {"checkpoint": ckpt.label, "model": ckpt.name, "source": series.source,
                "series": len(series.series), "targets": list(ckpt.schema.targets),
                "horizon": int(frame["step"].max()) if len(frame) else 0, "rows": len(frame),
                "first_timestamp": str(frame["timestamp"].min()), "last_timestamp": str(frame["timestamp"].max()),
                "output": output}
    if output is None:
        document["forecast"] = frame.assign(timestamp=frame["timestamp"].astype(str)).to_dict(orient="records")
    return document
