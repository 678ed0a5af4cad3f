"""The one training loop: defaults resolved per model, best weights kept, NaN refused."""

import numpy as np
import pandas as pd
import pytest
import torch

from seqcast.data import series_from_text
from seqcast.errors import TrainingError
from seqcast.fitting import ModelConfig, fit
from seqcast.budget import auto_batch_size, auto_epochs
from seqcast.budget import TrainConfig


def _series(n=300, noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    times = pd.date_range("2024-01-01", periods=n, freq="h")
    values = np.sin(np.arange(n) * 2 * np.pi / 24) + noise * rng.standard_normal(n)
    return series_from_text("t.csv", "timestamp,value\n" + "".join(f"{t},{v}\n" for t, v in zip(times, values)))


def test_auto_budget():
    assert auto_batch_size(8521) == 170 and auto_batch_size(100) == 32 and auto_batch_size(10**6) == 256
    assert auto_epochs(50) == 4 and auto_epochs(10) == 20


def test_model_default_learning_rate_is_used_and_recorded():
    series = _series()
    spec = dict(lookback=24, horizon=6)
    gru = fit(series, ModelConfig("gru", {"hidden_size": 4}, **spec), TrainConfig(epochs=1))
    transformer = fit(series, ModelConfig("transformer", {"d_model": 8, "nhead": 2, "dim_feedforward": 8}, **spec),
                      TrainConfig(epochs=1))
    assert gru.training.settings.lr == 3e-3 and transformer.training.settings.lr == 1e-3
    explicit = fit(series, ModelConfig("gru", {"hidden_size": 4}, **spec), TrainConfig(epochs=1, lr=0.01))
    assert explicit.training.settings.lr == 0.01


def test_model_default_window_norm_is_used_and_recorded():
    series = _series()
    spec = dict(lookback=24, horizon=6)
    gru = fit(series, ModelConfig("gru", {"hidden_size": 4}, **spec), TrainConfig(epochs=1))
    nlinear = fit(series, ModelConfig("nlinear", {}, **spec), TrainConfig(epochs=1))
    # the declared norm is the first candidate probed (the only one for nlinear: a season does not fit twice
    # in 24 hourly steps, and "last" is its own); the one kept is recorded
    norm = {c.setting: c for c in gru.choices}["window_norm"]
    assert norm.candidates == ("mean", "last") and gru.model.mode == gru.model_info.window_norm == norm.chosen
    assert "window_norm" not in {c.setting for c in nlinear.choices}
    assert (nlinear.model.mode, nlinear.model_info.window_norm) == ("last", "last")
    explicit = fit(series, ModelConfig("gru", {"hidden_size": 4}, window_norm="revin", **spec), TrainConfig(epochs=1))
    assert (explicit.model.mode, explicit.model_info.window_norm) == ("revin", "revin")


def test_a_declared_season_is_filled_from_the_frequency_unless_given():
    series = _series()  # hourly: a daily season of 24 steps
    filled = fit(series, ModelConfig("seasonal_naive", {}, 48, 6), TrainConfig(epochs=1))
    given = fit(series, ModelConfig("seasonal_naive", {"season": "12"}, 48, 6), TrainConfig(epochs=1))
    assert (filled.model_info.params["season"], given.model_info.params["season"]) == (24, 12)


def test_weights_never_worse_than_the_start_on_validation():
    """Pure noise: a zero-head model starts as the window's level; training cannot make validation worse."""
    rng = np.random.default_rng(1)
    times = pd.date_range("2024-01-01", periods=300, freq="h")
    series = series_from_text("t.csv", "timestamp,value\n" + "".join(f"{t},{v}\n" for t, v in zip(times, rng.standard_normal(300))))
    history = []
    model = ModelConfig("gru", {"hidden_size": 8}, 24, 6, window_norm="mean")  # the loop's rule, not the probes
    fitted = fit(series, model, TrainConfig(epochs=3, lr=0.05, loss="mse"), on_epoch=history.append)
    start = fit(series, model, TrainConfig(epochs=1, lr=1e-12, loss="mse"))
    assert fitted.training.val_mse_scaled <= start.training.val_mse_scaled + 1e-9
    assert history and all(fitted.training.val_mse_scaled <= h.val_loss for h in history)


def test_nan_loss_stops_with_a_clear_message(monkeypatch):
    from seqcast import training

    real = training.nn.functional.mse_loss
    monkeypatch.setattr(training.nn.functional, "mse_loss", lambda a, b: real(a, b) * float("nan"))
    with pytest.raises(TrainingError, match="training loss became nan in epoch 1; no checkpoint written"):
        fit(_series(), ModelConfig("gru", {"hidden_size": 4}, 24, 6), TrainConfig(epochs=2, loss="mse"))
