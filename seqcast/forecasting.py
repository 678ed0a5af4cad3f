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

from .checkpoint import Checkpoint
from .data import DataConfig, SeriesSet, future_times, time_features
from .errors import InputError, UsageError
from .windows import Scaler

COLUMNS = ["series", "timestamp", "step", "model", "target", "forecast"]


def data_config(ckpt: Checkpoint, fill: str | None = None, freq: str | None = None, decimal: str | None = None,
                dayfirst: bool | None = None, date_format: str | None = None) -> DataConfig:
    """Read new history as fit read the training data: its columns and recorded policy (the frequency
    when fit was told it, the fill, decimal separator and date order); arguments given here win."""
    info = ckpt.meta["data"]
    policy = info["policy"]
    return DataConfig(
        time_col=info["time_col"], target=tuple(info["targets"]), id_col=info["id_col"],
        freq=freq or (info["freq"] if policy["freq_given"] else None),
        fill=fill or policy["fill"],
        decimal=decimal or policy["decimal"],
        dayfirst=policy["dayfirst"] if dayfirst is None else dayfirst,
        date_format=date_format or policy["date_format"],
    )


def check_schema(ckpt: Checkpoint, series: SeriesSet) -> None:
    """New data must have the training data's targets, time kind and frequency."""
    info = ckpt.meta["data"]
    if series.targets != info["targets"]:
        raise InputError(f"{series.source}: targets differ from training: expected {info['targets']}, got {series.targets}")
    same = series.freq == info["freq"] or (
        not series.integer_time and not info["integer_time"]
        and pd.tseries.frequencies.to_offset(series.freq) == pd.tseries.frequencies.to_offset(info["freq"]))
    if series.integer_time != info["integer_time"] or not same:
        raise InputError(f"{series.source}: frequency differs from training: expected {info['freq']!r}, "
                         f"got {series.freq!r}")


def scaler_of(ckpt: Checkpoint) -> Scaler:
    return Scaler(ckpt.meta["scaler"]["mean"], ckpt.meta["scaler"]["std"])


@torch.no_grad()
def run_model(model: torch.nn.Module, x: np.ndarray, marks: np.ndarray | None, batch_size: int = 2048) -> np.ndarray:
    """Scaled inputs (N, L, C) -> scaled forecasts (N, H, C), in batches, on the CPU."""
    outputs = []
    for start in range(0, len(x), batch_size):
        xb = torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size], dtype=np.float32))
        mb = torch.from_numpy(marks[start : start + batch_size]) if marks is not None else None
        outputs.append(model(xb, time_features=mb).numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0,) + x.shape[1:])


def window_inputs(ckpt: Checkpoint, series: SeriesSet, offset: int = 0
                  ) -> tuple[np.ndarray, np.ndarray | None, list[pd.Index], list[pd.Index]]:
    """The model inputs of each series' window ending ``offset`` steps before its last row.

    Returns scaled inputs (N, L, C), calendar features (N, L + H, F) or None, and per series the
    L input timestamps and the H timestamps that follow them.
    """
    check_schema(ckpt, series)
    lookback, horizon, freq = ckpt.lookback, ckpt.horizon, ckpt.meta["data"]["freq"]
    short = [f"{s.id!r} has {len(s.times)}" for s in series.series if len(s.times) - offset < lookback]
    if short:
        back = f" ending {offset} steps before the end" if offset else ""
        raise InputError(f"{series.source}: history too short: the model reads the last {lookback} rows "
                         f"(its lookback){back}; series {', '.join(short[:5])}")
    scaler = scaler_of(ckpt)
    inputs, marks, pasts, futures = [], [], [], []
    for s in series.series:
        end = len(s.times) - offset
        inputs.append(scaler.transform(s.id, s.values[end - lookback : end], reference=s.values))
        past = s.times[end - lookback : end]
        future = future_times(past[-1], freq, horizon)
        pasts.append(past)
        futures.append(future)
        if ckpt.meta["data"]["calendar"]:
            marks.append(time_features(past.append(future)))
    return np.stack(inputs), np.stack(marks) if marks else None, pasts, futures


def predict(ckpt: Checkpoint, series: SeriesSet, horizon: int = 0) -> pd.DataFrame:
    """Forecast the next ``horizon`` steps (default and at most the trained H) of every series in
    ``series``; a frame with ``COLUMNS``."""
    if not 0 <= horizon <= ckpt.horizon:
        raise UsageError(f"--horizon {horizon}: the model was trained to forecast {ckpt.horizon} steps; "
                         f"give 1 to {ckpt.horizon}, or fit a model with a longer --horizon")
    horizon, scaler = horizon or ckpt.horizon, scaler_of(ckpt)
    inputs, marks, _, futures = window_inputs(ckpt, series)
    scaled = run_model(ckpt.model, inputs, marks)[:, :horizon]
    frames = []
    name, targets = ckpt.meta["model"]["name"], ckpt.meta["data"]["targets"]
    for s, future, out in zip(series.series, [f[:horizon] for f in futures], scaled):
        values = scaler.inverse(s.id, out.astype(np.float64), reference=s.values)  # (H, C)
        for c, target in enumerate(targets):
            frames.append(pd.DataFrame({"series": s.id, "timestamp": future, "step": np.arange(1, horizon + 1),
                                        "model": name, "target": target, "forecast": values[:, c]}))
    return pd.concat(frames, ignore_index=True)[COLUMNS]


def summary(ckpt: Checkpoint, series: SeriesSet, frame: pd.DataFrame, output: str | None) -> dict:
    """What ``predict --json`` prints: the forecast's shape and span, and the rows unless written to a file."""
    document = {"checkpoint": ckpt.path, "model": ckpt.meta["model"]["name"], "source": series.source,
                "series": len(series.series), "targets": ckpt.meta["data"]["targets"],
                "horizon": int(frame["step"].max()) if len(frame) else 0, "rows": len(frame),
                "first_timestamp": str(frame["timestamp"].min()), "last_timestamp": str(frame["timestamp"].max()),
                "output": output}
    if output is None:
        document["forecast"] = frame.assign(timestamp=frame["timestamp"].astype(str)).to_dict(orient="records")
    return document
