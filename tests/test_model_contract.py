"""The model contract, checked for every registered model (DESIGN.md rules 1-3 and 12).

A new architecture file is covered here without editing this file: every test runs over
``list_models()``, and where a model is exempt the reason comes from what it declares when it
registers (``registry.Capabilities``) or from what it is (no parameters), never from a list of names.
"""

import importlib.util
import warnings
from dataclasses import replace

import pytest
import torch
from torch import nn

from conftest import TINY_FIT, randomised
from seqcast import registry
from seqcast.checkpoint import load, save
from seqcast.errors import UsageError
from seqcast.forecaster import ModelInfo
from seqcast.models._layers import Covariates
from seqcast.build import create_model
from seqcast.registry import get_spec, list_models, register_model, resolve_params
from seqcast.window_norm import WindowNorm

MODELS = list_models()
SHAPES = [(32, 6, 1), (20, 3, 3), (2, 1, 1)]  # (lookback, horizon, channels); L=2, H=1 is the smallest window
WIDTHS = {"past": 2, "future": 3, "static": 2}  # covariate inputs P, F, S of the variants that read them


def declared(name: str) -> Covariates:
    """Covariate widths for every kind ``name`` declares it reads."""
    return Covariates(**{kind: WIDTHS[kind] for kind in get_spec(name).capabilities.covariates})


# every model at its defaults, plus each model built for every covariate kind it declares
COVARIATE_MODELS = [name for name in MODELS if get_spec(name).capabilities.covariates]
VARIANTS = [(name, None) for name in MODELS] + [(name, declared(name)) for name in COVARIATE_MODELS]
EXPLAINABLE = [name for name in MODELS if get_spec(name).capabilities.explain]


def _inputs(batch, lookback, horizon, channels, seed=0, covariates=None):
    """x (B, L, C) and the covariate inputs of ``covariates`` widths, by keyword."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, lookback, channels, generator=g)
    widths = covariates or Covariates()
    shapes = {"past": (batch, lookback, widths.past), "future": (batch, lookback + horizon, widths.future),
              "static": (batch, widths.static)}
    return x, {k: torch.randn(shape, generator=g) for k, shape in shapes.items() if shape[-1]}


def _variant_id(variant):
    name, covariates = variant
    return name + ("".join(f"-{k}" for k in covariates.kinds) if covariates else "")


def typed(value) -> str:
    """A default as a user types it after ``--param key=``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def test_registry_holds_the_recurrent_family_and_baselines():
    for name in ("rnn", "lstm", "gru", "bilstm", "stacked_lstm", "naive", "seasonal_naive"):
        assert name in MODELS


# --- what every model does -------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("lookback,horizon,channels", SHAPES)
def test_shape_finite_output_and_no_warnings_at_defaults(name, lookback, horizon, channels):
    torch.manual_seed(0)
    covariates = declared(name)
    x, inputs = _inputs(4, lookback, horizon, channels, covariates=covariates)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # default settings must not warn, at any window size
        model = create_model(name, lookback, horizon, channels).eval()
        with torch.no_grad():
            y = model(x)
        if covariates.kinds:  # built for covariates, it forecasts the same shape
            with torch.no_grad():
                y_covariates = create_model(name, lookback, horizon, channels, covariates=covariates).eval()(
                    x, **inputs)
            assert y_covariates.shape == y.shape and torch.isfinite(y_covariates).all()
    assert y.shape == (4, horizon, channels)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
@pytest.mark.parametrize("lookback,horizon,channels", [(32, 6, 2), (2, 1, 1)])
def test_every_parameter_receives_gradient(variant, lookback, horizon, channels):
    name, covariates = variant
    # randomised: zero-initialised heads would block gradient to everything before them
    model = randomised(name, lookback, horizon, channels, covariates=covariates).train()
    named = dict(model.named_parameters())
    if not named:
        pytest.skip(f"{name} has no parameters: nothing to learn")
    x, inputs = _inputs(8, lookback, horizon, channels, covariates=covariates)
    model(x, **inputs).pow(2).mean().backward()
    silent = [n for n, p in named.items() if p.grad is None or not torch.any(p.grad != 0)]
    assert not silent, f"{name}: no gradient reaches {silent}"


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("mode", ["last", "mean", "revin"])
@pytest.mark.parametrize("lookback,horizon,channels", [(16, 4, 2), (2, 1, 1)])
def test_an_untrained_model_forecasts_the_window_level(name, mode, lookback, horizon, channels):
    """A zero-initialised head: under window normalisation, training starts from the baseline."""
    model = create_model(name, lookback, horizon, channels)
    if not any(p.numel() for p in model.parameters()):
        pytest.skip(f"{name} has no parameters to initialise: its forecast is its rule")
    if not get_spec(name).capabilities.starts_at_level:
        pytest.skip(f"{name} declares starts_at_level=False (see its registration)")
    wrapped = WindowNorm(model, mode).eval()
    x = torch.randn(5, lookback, channels)
    with torch.no_grad():
        assert torch.allclose(wrapped(x), wrapped.level(x).expand(-1, horizon, -1), atol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
def test_forecast_does_not_depend_on_the_rest_of_the_batch(variant):
    name, covariates = variant
    model = randomised(name, 40, 6, 3, covariates=covariates).eval()
    x, inputs = _inputs(5, 40, 6, 3, covariates=covariates)
    with torch.no_grad():
        together = model(x, **inputs)
        tolerance = 1e-5 * max(1.0, float(together.abs().max()))  # float32 rounding of the batched matmuls
        for i in range(5):
            one = {k: v[i : i + 1] for k, v in inputs.items()}
            assert torch.allclose(model(x[i : i + 1], **one)[0], together[i], atol=tolerance), (name, i)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("lookback,horizon,season", [(16, 6, 4), (8, 12, 5), (6, 3, 24)])
def test_window_norm_season_starts_at_seasonal_naive(name, lookback, horizon, season):
    """A zero-initialised head under "season": the forecast repeats the window's last season (all of
    the window when the season is longer than the lookback), step by step."""
    model = create_model(name, lookback, horizon, 2)
    if any(p.numel() for p in model.parameters()) and not get_spec(name).capabilities.starts_at_level:
        pytest.skip(f"{name} declares starts_at_level=False (see its registration)")
    x = torch.randn(3, lookback, 2)
    period = min(season, lookback)
    expected = x[:, lookback - period + torch.arange(horizon) % period, :]
    with torch.no_grad():
        if any(p.numel() for p in model.parameters()):
            torch.testing.assert_close(WindowNorm(model, "season", season).eval()(x), expected, atol=1e-5, rtol=0)
        # Whatever the head, the forecast moves with a shift of the window as seasonal naive does.
        trained = WindowNorm(randomised(name, lookback, horizon, 2), "season", season).eval()
        torch.testing.assert_close(trained(x + 4.0), trained(x) + 4.0, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", MODELS)
def test_window_norm_revin_makes_the_forecast_follow_shifts_and_scalings_of_the_window(name):
    model = WindowNorm(randomised(name, 16, 4, 2), "revin").eval()
    x = torch.randn(5, 16, 2)
    with torch.no_grad():
        typical = model(x)
        torch.testing.assert_close(model(3.0 * x + 7.0), 3.0 * typical + 7.0, rtol=1e-4, atol=1e-4)
        flat = model(torch.full((1, 16, 2), 5.0))  # no division by zero: the level, give or take sqrt(eps)
        assert torch.isfinite(flat).all() and (flat - 5.0).abs().max() < 1e-2 * typical.abs().max()


@pytest.mark.parametrize("name", MODELS)
def test_save_load_gives_identical_forecast(name, tmp_path, tiny_ckpt):
    lookback, horizon, channels = 32, 6, 1
    model = WindowNorm(randomised(name, lookback, horizon, channels, scale=0.05), "last").eval()
    base = load(tiny_ckpt)  # a real forecaster's record, around this model
    save(tmp_path / "m.ckpt", replace(base, model=model, model_info=ModelInfo(name, resolve_params(name), "last", 0),
                                      schema=replace(base.schema, lookback=lookback, horizon=horizon)))
    loaded = load(tmp_path / "m.ckpt")
    x, _ = _inputs(3, lookback, horizon, channels)
    with torch.no_grad():
        assert torch.equal(model(x), loaded.model(x))


def test_window_sizes_below_one_are_refused_once_for_every_model():
    for name in MODELS:
        for sizes in ((0, 1, 1), (2, 0, 1), (2, 1, 0)):
            with pytest.raises(UsageError, match=f"^{name}: lookback, horizon and n_features must be at least 1$"):
                create_model(name, *sizes)


# --- what a model declares -------------------------------------------------------------------------


@pytest.mark.parametrize("name", COVARIATE_MODELS)
def test_every_declared_covariate_input_moves_the_forecast(name):
    """Nothing accepted and then ignored: changing any one covariate input the model is built for
    changes its forecast, and in the forecast steps' part of the known-future block too."""
    covariates = declared(name)
    model = randomised(name, 24, 6, 2, covariates=covariates).eval()
    x, inputs = _inputs(3, 24, 6, 2, covariates=covariates)
    with torch.no_grad():
        base = model(x, **inputs)
        for kind in covariates.kinds:
            changed = dict(inputs, **{kind: inputs[kind] + 1.0})
            assert not torch.allclose(model(x, **changed), base), f"{name} ignores its {kind} covariates"
        if "future" in inputs:
            ahead = inputs["future"].clone()
            ahead[:, 24:] += 1.0  # only the forecast steps' known-future values
            assert not torch.allclose(model(x, **dict(inputs, future=ahead)), base), name


@pytest.mark.parametrize("name", [n for n in MODELS if set(get_spec(n).capabilities.covariates) != set(WIDTHS)])
def test_a_covariate_kind_a_model_does_not_declare_is_refused_naming_the_models_that_read_it(name):
    missing = [k for k in WIDTHS if k not in get_spec(name).capabilities.covariates]
    with pytest.raises(UsageError, match=rf"^{name} cannot use {missing[0]}.* covariates \(.*\); models that use"):
        create_model(name, 24, 6, 1, covariates=Covariates(**{k: 1 for k in missing}))


@pytest.mark.parametrize("name", EXPLAINABLE)
@pytest.mark.parametrize("lookback,horizon,channels", [(30, 7, 3), (12, 12, 1), (2, 1, 1)])
def test_explain_returns_the_declared_maps(name, lookback, horizon, channels):
    kind = get_spec(name).capabilities.explain
    model = randomised(name, lookback, horizon, channels).train()
    x, inputs = _inputs(2, lookback, horizon, channels)
    maps = model.explain(x, **inputs)
    assert maps and model.training  # the mode is restored
    for key, values in maps.items():
        layer, what = key.split(".")
        assert layer and not values.requires_grad, key
        if kind == "gates":
            assert values.shape == (2, lookback) and ((values > 0) & (values < 1)).all(), key
            continue
        assert what in ("self_attention", "cross_attention", "attention"), key
        queries = lookback if what == "self_attention" else horizon  # input steps, or horizon steps
        assert values.shape == (2, queries, lookback) and (values >= 0).all(), key
        assert torch.allclose(values.sum(-1), torch.ones(2, queries), atol=1e-5), key


@pytest.mark.parametrize("name", MODELS)
def test_every_default_round_trips_through_param_strings(name):
    spec = get_spec(name)
    defaults = spec.defaults()
    as_typed = {key: typed(value) for key, value in defaults.items()}
    resolved = resolve_params(name, as_typed)
    for key, value in defaults.items():
        assert type(resolved[key]) is type(value) and resolved[key] == value, (
            f"{name}: --param {key}={as_typed[key]} gives {resolved[key]!r}, not the default {value!r}")
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


def test_a_preset_is_fixed_and_the_error_names_the_model_to_pick(invoke, hourly_csv, tmp_path):
    path = tmp_path / "m.ckpt"
    code, out, err = invoke("fit", hourly_csv, *TINY_FIT, "--param", "cell=lstm", "--output", path)
    assert code == 2 and out == "" and not path.exists()
    assert "--param cell=lstm: gru fixes cell=gru; use --model lstm instead" in err
    assert resolve_params("gru", {"cell": "gru"})["cell"] == "gru"  # repeating it is fine: checkpoints do
    with pytest.raises(UsageError, match="stacked_lstm fixes num_layers=3; use --model lstm --param num_layers=2"):
        resolve_params("stacked_lstm", {"num_layers": "2"})


def test_seasonal_naive_repeats_the_last_season():
    model = create_model("seasonal_naive", 10, 5, 1, {"season": 3})
    x = torch.arange(10.0).view(1, 10, 1)
    assert model(x).flatten().tolist() == [7.0, 8.0, 9.0, 7.0, 8.0]


# --- declarations checked at registration, on throwaway models ---------------------------------------


class Tiny(nn.Module):
    """A throwaway model for registration tests."""

    def __init__(self, lookback, horizon, n_features, *, width: int = 4, sizes: tuple = (16, 8),
                 rate: float = 1e-4, tied: bool = True):
        super().__init__()


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations in this test go to a copy of the registry, thrown away afterwards."""
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))


def test_tuple_float_and_bool_defaults_round_trip(scratch_registry):
    register_model("throwaway")(Tiny)
    defaults = get_spec("throwaway").defaults()
    resolved = resolve_params("throwaway", {key: typed(value) for key, value in defaults.items()})
    assert [(type(v), v) for v in resolved.values()] == [(type(v), v) for v in defaults.values()]


@pytest.mark.parametrize(("declared", "problem"), [
    ({"lrr": 1e-3}, "unknown capability 'lrr'"),
    ({"width": 8}, "to fix the hyperparameter, pass preset={'width': ...}"),
    ({"lr": 0.0}, "lr=0.0: a learning rate must be a number in (0, 1]"),
    ({"lr": 3}, "lr=3"),
    ({"window_norm": "median"}, "window_norm='median': choose one of none, last, mean, revin, season"),
    ({"explain": "saliency"}, "explain='saliency'"),
    ({"explain": "attention"}, "declares explain='attention' but defines no explain"),
    ({"season": True}, "declares season=True but has no `season` keyword"),
    ({"covariates": ("past",)}, "declares covariates=('past',) but has no `covariates` keyword"),
    ({"covariates": ("weather",)}, "covariates=('weather',): declare a tuple of past, future, static"),
    ({"covariates": "past"}, "covariates='past': declare a tuple"),
    ({"preset": {"widht": 8}}, "preset widht not a keyword of __init__"),
])
def test_a_wrong_declaration_fails_naming_the_model(declared, problem, scratch_registry):
    with pytest.raises(ValueError) as error:
        register_model("throwaway", **declared)(Tiny)
    assert str(error.value).startswith("model 'throwaway' (") and problem in str(error.value)
    assert "throwaway" not in registry._MODELS


def test_a_wrong_declaration_fails_when_its_module_is_imported(tmp_path, scratch_registry):
    source = tmp_path / "throwaway_model.py"
    source.write_text("from torch import nn\nfrom seqcast.registry import register_model\n\n\n"
                      "@register_model('throwaway', window_norm='lats')\nclass Throwaway(nn.Module):\n"
                      "    def __init__(self, lookback, horizon, n_features):\n        super().__init__()\n")
    module = importlib.util.spec_from_file_location("throwaway_model", source)
    with pytest.raises(ValueError, match=r"model 'throwaway' \(throwaway_model.Throwaway\): window_norm='lats'"):
        module.loader.exec_module(importlib.util.module_from_spec(module))


# --- quantiles: one head adapter for every model that declares them ---------------------------------

QUANTILE_MODELS = [name for name in MODELS if get_spec(name).capabilities.quantiles]


@pytest.mark.parametrize("name", QUANTILE_MODELS)
def test_quantile_outputs_never_cross_and_the_median_is_the_point_forecast(name):
    """(B, H, C, Q) under every window normalisation, ascending along Q even for wild inputs, and the
    median is exactly the model's own forecast."""
    from seqcast.quantile_head import QuantileHead

    quantiles = (0.05, 0.25, 0.5, 0.75, 0.95)
    for mode in ("none", "last", "revin"):
        head = create_model(name, 24, 6, 2, quantiles=quantiles)
        assert isinstance(head, QuantileHead) and head.quantiles == quantiles
        model = WindowNorm(head, mode).eval()
        x, _ = _inputs(8, 24, 6, 2)
        x = x * torch.logspace(-3, 3, 8).view(8, 1, 1)  # calm to violent windows
        with torch.no_grad():
            y = model(x)
            point = WindowNorm(head.model, mode).eval()(x)
        assert y.shape == (8, 6, 2, 5) and torch.isfinite(y).all()
        assert (y.diff(dim=-1) >= 0).all(), name
        assert torch.allclose(y[..., 2], point, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", QUANTILE_MODELS)
def test_the_quantile_loss_reaches_every_parameter_of_model_and_head(name):
    from seqcast.quantile_head import quantile_loss

    torch.manual_seed(0)
    quantiles = (0.1, 0.5, 0.9)
    model = WindowNorm(create_model(name, 24, 6, 1, quantiles=quantiles), "last")
    with torch.no_grad():
        for p in model.parameters():  # like a trained model: zero-initialised heads pass gradients on
            p.add_(torch.randn_like(p) * 0.05)
    x, _ = _inputs(4, 24, 6, 1)
    quantile_loss(quantiles)(model(x), torch.randn(4, 6, 1)).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum())]
    assert not missing, missing


@pytest.mark.parametrize("name", QUANTILE_MODELS)
def test_a_quantile_model_saves_and_loads_to_identical_quantiles(name, tmp_path, tiny_ckpt):
    lookback, horizon, quantiles = 32, 6, (0.1, 0.5, 0.9)
    model = WindowNorm(create_model(name, lookback, horizon, 1, quantiles=quantiles), "last").eval()
    base = load(tiny_ckpt)
    spec = ModelInfo(name, resolve_params(name), "last", 0, quantiles)
    save(tmp_path / "q.ckpt", replace(base, model=model, model_info=spec,
                                      schema=replace(base.schema, lookback=lookback, horizon=horizon)))
    loaded = load(tmp_path / "q.ckpt")
    assert loaded.model_info.quantiles == quantiles
    x, _ = _inputs(3, lookback, horizon, 1)
    with torch.no_grad():
        assert torch.equal(model(x), loaded.model(x))


def test_a_model_that_declares_no_quantiles_is_refused_them():
    class Plain(nn.Module):
        """A model that cannot take the quantile head."""

        def __init__(self, lookback, horizon, n_features):
            super().__init__()
            self.horizon = horizon

        def forward(self, x, *, past=None, future=None, static=None):
            return x[:, -1:].repeat(1, self.horizon, 1)

    register_model("plain_for_test", quantiles=False)(Plain)
    try:
        with pytest.raises(UsageError, match="plain_for_test does not declare quantile outputs"):
            create_model("plain_for_test", 4, 2, 1, quantiles=(0.1, 0.5, 0.9))
    finally:
        registry._MODELS.pop("plain_for_test")
