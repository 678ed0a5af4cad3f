"""The model contract, checked for every registered model (DESIGN.md rules 1-3 and 12).

A new architecture file is covered here without editing this file.
"""

from dataclasses import replace

import pytest
import torch

from conftest import randomised
from seqcast.checkpoint import load, save
from seqcast.forecaster import ModelInfo
from seqcast.models import N_TIME_FEATURES, WindowNorm
from seqcast.registry import create_model, get_spec, list_models, resolve_params
from seqcast.errors import UsageError

MODELS = list_models()
SHAPES = [(32, 6, 1), (20, 3, 3)]  # (lookback, horizon, channels)


def _inputs(batch, lookback, horizon, channels, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, lookback, channels, generator=g)
    marks = torch.rand(batch, lookback + horizon, N_TIME_FEATURES, generator=g) - 0.5
    return x, marks


def test_registry_holds_the_recurrent_family_and_baselines():
    for name in ("rnn", "lstm", "gru", "bilstm", "stacked_lstm", "naive", "seasonal_naive"):
        assert name in MODELS


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("lookback,horizon,channels", SHAPES)
def test_shape_and_finite_output(name, lookback, horizon, channels):
    torch.manual_seed(0)
    model = create_model(name, lookback, horizon, channels).eval()
    x, marks = _inputs(4, lookback, horizon, channels)
    with torch.no_grad():
        y = model(x, time_features=marks)
        y_no_calendar = model(x)
    assert y.shape == (4, horizon, channels)
    assert y_no_calendar.shape == (4, horizon, channels)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", MODELS)
def test_every_parameter_receives_gradient(name):
    lookback, horizon, channels = 32, 6, 2
    torch.manual_seed(0)
    model = create_model(name, lookback, horizon, channels).train()
    params = dict(model.named_parameters())
    if not params:
        pytest.skip(f"{name} has no parameters")
    with torch.no_grad():  # zero-initialised heads would block gradient to everything before them
        for p in params.values():
            p.add_(0.1 * torch.randn_like(p))
    x, marks = _inputs(8, lookback, horizon, channels)
    model(x, time_features=marks).pow(2).mean().backward()
    silent = [n for n, p in params.items() if p.grad is None or not torch.any(p.grad != 0)]
    assert not silent, f"{name}: no gradient reaches {silent}"


@pytest.mark.parametrize("name", MODELS)
def test_save_load_gives_identical_forecast(name, tmp_path, tiny_ckpt):
    lookback, horizon, channels = 32, 6, 1
    torch.manual_seed(0)
    model = WindowNorm(create_model(name, lookback, horizon, channels), "last").eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    base = load(tiny_ckpt)  # a real forecaster's record, around this model
    save(tmp_path / "m.ckpt", replace(base, model=model, spec=ModelInfo(name, resolve_params(name), "last", 0),
                                      schema=replace(base.schema, lookback=lookback, horizon=horizon)))
    loaded = load(tmp_path / "m.ckpt")
    x, marks = _inputs(3, lookback, horizon, channels)
    with torch.no_grad():
        assert torch.equal(model(x, time_features=marks), loaded.model(x, time_features=marks))


@pytest.mark.parametrize("name", MODELS)
def test_hyperparameters_are_the_constructor_signature(name):
    spec = get_spec(name)
    defaults = resolve_params(name)
    assert defaults == spec.defaults()
    assert spec.summary, f"{name}: the class needs a one-line docstring summary"
    with pytest.raises(UsageError, match="accepted"):
        resolve_params(name, {"no_such_parameter": "1"})


def test_unknown_model_lists_valid_names():
    with pytest.raises(UsageError, match="gru"):
        create_model("grux", 10, 2, 1)


def test_param_values_are_converted_and_checked():
    assert resolve_params("gru", {"hidden_size": "16", "dropout": "0.5", "bidirectional": "true"})["hidden_size"] == 16
    with pytest.raises(UsageError, match="expects int"):
        resolve_params("gru", {"hidden_size": "big"})


def test_window_norm_last_with_zero_head_starts_as_repeat_last_value():
    model = WindowNorm(create_model("gru", 16, 4, 2), "last").eval()
    x = torch.randn(5, 16, 2)
    with torch.no_grad():
        assert torch.allclose(model(x), x[:, -1:, :].expand(-1, 4, -1))


def test_window_norm_mean_with_zero_head_starts_as_repeat_the_mean():
    model = WindowNorm(create_model("gru", 16, 4, 2), "mean").eval()
    x = torch.randn(5, 16, 2)
    with torch.no_grad():
        assert torch.allclose(model(x), x.mean(dim=1, keepdim=True).expand(-1, 4, -1), atol=1e-6)


@pytest.mark.parametrize("name", ["gru", "cnn", "dlinear"])
def test_window_norm_revin_makes_the_forecast_follow_shifts_and_scalings_of_the_window(name):
    model = WindowNorm(randomised(name, 16, 4, 2), "revin").eval()
    x = torch.randn(5, 16, 2)
    with torch.no_grad():
        assert torch.allclose(model(3.0 * x + 7.0), 3.0 * model(x) + 7.0, atol=1e-4)
        assert model(torch.zeros(1, 16, 2)).abs().max() < 1e-2  # a flat window: no division by zero


def test_seasonal_naive_repeats_the_last_season():
    model = create_model("seasonal_naive", 10, 5, 1, {"season": 3})
    x = torch.arange(10.0).view(1, 10, 1)
    assert model(x).flatten().tolist() == [7.0, 8.0, 9.0, 7.0, 8.0]
