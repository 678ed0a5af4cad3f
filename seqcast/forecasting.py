"""Forecasting from a checkpoint: the next H steps after each series' last timestamp, in original units.

Output columns (one row per series, step and target):
    series     the series id ("main" for a file with one series)
    timestamp  the future timestamp, on the grid of the recorded frequency
    step       1..H, steps after the last observed timestamp
    model      the registered model name
    target     the target column forecast
    forecast   the value, in the target's original units
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .forecaster import Forecaster
from .data import DataConfig, SeriesSet, future_times, time_features
from .errors import InputError, UsageError

COLUMNS = ["series", "timestamp", "step", "model", "target", "forecast"]


def data_config(ckpt: Forecaster, fill: str | None = None, freq: str | None = None, decimal: str | None = None,
                dayfirst: bool | None = None, date_format: str | None = None) -> DataConfig:
    """Read new history as fit read the training data: its columns and recorded policy (the frequency
    when fit was told it, the fill, decimal separator and date order); arguments given here win."""
    schema, policy = ckpt.schema, ckpt.policy
    return DataConfig(
        time_col=schema.time_col, target=schema.targets, id_col=schema.id_col,
        freq=freq or (schema.freq if policy.freq_given else None),
        fill=fill or policy.fill,
        decimal=decimal or policy.decimal,
        dayfirst=policy.dayfirst if dayfirst is None else dayfirst,
        date_format=date_format or policy.date_format,
    )


def check_schema(ckpt: Forecaster, series: SeriesSet) -> None:
    """New data must have the training data's targets, time kind and frequency."""
    schema = ckpt.schema
    if tuple(series.targets) != schema.targets:
        raise InputError(f"{series.source}: targets differ from training: expected {list(schema.targets)}, "
                         f"got {series.targets}")
    same = series.freq == schema.freq or (
        not series.integer_time and not schema.integer_time
        and pd.tseries.frequencies.to_offset(series.freq) == pd.tseries.frequencies.to_offset(schema.freq))
    if series.integer_time != schema.integer_time or not same:
        raise InputError(f"{series.source}: frequency differs from training: expected {schema.freq!r}, "
                         f"got {series.freq!r}")


@torch.no_grad()
def run_model(model: torch.nn.Module, x: np.ndarray, marks: np.ndarray | None, batch_size: int = 2048) -> np.ndarray:
    """Scaled inputs (N, L, C) -> scaled forecasts (N, H, C), in batches, on the CPU."""
    outputs = []
    for start in range(0, len(x), batch_size):
        xb = torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size], dtype=np.float32))
        mb = torch.from_numpy(marks[start : start + batch_size]) if marks is not None else None
        outputs.append(model(xb, time_features=mb).numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0,) + x.shape[1:])


def window_inputs(ckpt: Forecaster, series: SeriesSet, offset: int = 0
                  ) -> tuple[np.ndarray, np.ndarray | None, list[pd.Index], list[pd.Index]]:
    """The model inputs of each series' window ending ``offset`` steps before its last row.

    Returns scaled inputs (N, L, C), calendar features (N, L + H, F) or None, and per series the
    L input timestamps and the H timestamps that follow them.
    """
    check_schema(ckpt, series)
    lookback, horizon, freq = ckpt.lookback, ckpt.horizon, ckpt.schema.freq
    short = [f"{s.id!r} has {len(s.times)}" for s in series.series if len(s.times) - offset < lookback]
    if short:
        back = f" ending {offset} steps before the end" if offset else ""
        raise InputError(f"{series.source}: history too short: the model reads the last {lookback} rows "
                         f"(its lookback){back}; series {', '.join(short[:5])}")
    scaler = ckpt.scaler
    inputs, marks, pasts, futures = [], [], [], []
    for s in series.series:
        end = len(s.times) - offset
        inputs.append(scaler.transform(s.id, s.values[end - lookback : end], reference=s.values))
        past = s.times[end - lookback : end]
        future = future_times(past[-1], freq, horizon)
        pasts.append(past)
        futures.append(future)
        if ckpt.schema.calendar:
            marks.append(time_features(past.append(future)))
    return np.stack(inputs), np.stack(marks) if marks else None, pasts, futures


def predict(ckpt: Forecaster, series: SeriesSet, horizon: int = 0) -> pd.DataFrame:
    """Forecast the next ``horizon`` steps (default and at most the trained H) of every series in
    ``series``; a frame with ``COLUMNS``."""
    if not 0 <= horizon <= ckpt.horizon:
        raise UsageError(f"--horizon {horizon}: the model was trained to forecast {ckpt.horizon} steps; "
                         f"give 1 to {ckpt.horizon}, or fit a model with a longer --horizon")
    horizon, scaler = horizon or ckpt.horizon, ckpt.scaler
    inputs, marks, _, futures = window_inputs(ckpt, series)
    scaled = run_model(ckpt.model, inputs, marks)[:, :horizon]
    frames = []
    name, targets = ckpt.name, ckpt.schema.targets
    for s, future, out in zip(series.series, [f[:horizon] for f in futures], scaled):
        values = scaler.inverse(s.id, out.astype(np.float64), reference=s.values)  # (H, C)
        for c, target in enumerate(targets):
            frames.append(pd.DataFrame({"series": s.id, "timestamp": future, "step": np.arange(1, horizon + 1),
                                        "model": name, "target": target, "forecast": values[:, c]}))
    return pd.concat(frames, ignore_index=True)[COLUMNS]


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
