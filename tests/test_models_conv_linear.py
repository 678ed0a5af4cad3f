"""Mechanism tests for the convolutional, hybrid and linear families (the generic contract is elsewhere)."""

from __future__ import annotations

import warnings

import pytest
import torch

from seqcast.models.cnn import CNN
from seqcast.models.hybrid import CNNLSTMTransformer
from seqcast.models.linear import DLinear, NLinear, SeriesDecomposition, series_decomposition
from seqcast.models.nbeats import NBeats, NBeatsInterpretable
from seqcast.models.tcn import TCN, levels_for, receptive_field
from seqcast.window_norm import WindowNorm


def randomise(model: torch.nn.Module, scale: float = 0.3) -> torch.nn.Module:
    """Add noise to every parameter, so zero-initialised heads no longer hide what is behind them."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * scale)
    return model


def quiet_tcn(lookback: int, **kwargs) -> TCN:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return TCN(lookback, 3, 2, dropout=0.0, **kwargs)


# ---- TCN -------------------------------------------------------------------------------------------


def test_tcn_every_block_is_causal():
    torch.manual_seed(0)
    model = randomise(TCN(40, 3, 2, kernel_size=3, dropout=0.0)).eval()
    x = torch.randn(2, 40, 2)
    for t in (0, 7, 20, 39):
        changed = x.clone()
        changed[:, t, :] += 3.0
        h, h_changed = x.transpose(1, 2), changed.transpose(1, 2)  # (B, C, L)
        for i, block in enumerate(model.blocks):
            h, h_changed = block(h), block(h_changed)
            assert torch.equal(h[:, :, :t], h_changed[:, :, :t]), f"block {i} leaks step {t} into the past"
            assert not torch.equal(h[:, :, t:], h_changed[:, :, t:]), f"block {i} ignores step {t}"


@pytest.mark.parametrize("kernel_size, num_levels", [(2, 2), (3, 2), (3, 3), (5, 1)])
def test_tcn_receptive_field_matches_formula(kernel_size, num_levels):
    torch.manual_seed(1)
    lookback = 64
    model = randomise(quiet_tcn(lookback, kernel_size=kernel_size, num_levels=num_levels)).eval()
    field = receptive_field(kernel_size, num_levels)
    assert field == 1 + 2 * (kernel_size - 1) * (2**num_levels - 1) == model.receptive_field
    x = torch.randn(3, lookback, 2, requires_grad=True)
    h = x.transpose(1, 2)
    for block in model.blocks:
        h = block(h)
    h[:, :, -1].sum().backward()  # how the last step's features depend on each input step
    seen = (x.grad.abs().sum(dim=(0, 2)) > 0).nonzero().flatten()
    assert seen.min().item() == lookback - field and seen.max().item() == lookback - 1


def test_tcn_last_output_sees_step_zero_iff_field_covers_window():
    torch.manual_seed(2)
    lookback = 16  # kernel 2: fields 7, 15, 31 for 2, 3, 4 levels
    x = torch.randn(2, lookback, 2)
    changed = x.clone()
    changed[:, 0, :] += 5.0
    for num_levels in (2, 3, 4):
        model = randomise(quiet_tcn(lookback, kernel_size=2, num_levels=num_levels)).eval()
        with torch.no_grad():
            moved = not torch.allclose(model(x), model(changed))
        assert moved == (model.receptive_field >= lookback), num_levels


def test_tcn_warns_when_window_is_partly_unseen():
    with pytest.warns(UserWarning, match="first 9 of 16 lookback steps are unseen"):
        TCN(16, 3, 1, kernel_size=2, num_levels=2)  # field 7
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = TCN(16, 3, 1, kernel_size=2)  # automatic levels: no warning
        TCN(15, 3, 1, kernel_size=2, num_levels=3)  # field 15 == lookback: exactly covered
    assert model.num_levels == levels_for(16, 2) == 4
    assert receptive_field(2, 3) < 16 <= receptive_field(2, 4)


# ---- linear family ---------------------------------------------------------------------------------


@pytest.mark.parametrize("lookback", [2, 24, 96])
def test_dlinear_decomposition_adds_back_to_input(lookback):
    x = torch.randn(4, lookback, 3)
    trend, remainder = series_decomposition(x, 25)
    assert trend.shape == remainder.shape == x.shape
    torch.testing.assert_close(trend + remainder, x)
    trend2, remainder2 = SeriesDecomposition(25)(x)
    assert torch.equal(trend, trend2) and torch.equal(remainder, remainder2)


def test_dlinear_trend_is_replicate_padded_moving_average():
    x = torch.randn(1, 40, 1)
    trend, _ = series_decomposition(x, 5)
    torch.testing.assert_close(trend[0, 10, 0], x[0, 8:13, 0].mean())  # interior: centred mean
    edge = torch.cat([x[0, :1, 0].repeat(2), x[0, :3, 0]]).mean()  # first value repeated twice
    torch.testing.assert_close(trend[0, 0, 0], edge)
    flat = torch.full((2, 30, 2), 3.5)
    torch.testing.assert_close(series_decomposition(flat)[0], flat)  # a constant is all trend


def test_decomposition_rejects_even_kernel():
    with pytest.raises(ValueError, match="odd"):
        DLinear(96, 24, 1, kernel_size=4)


@pytest.mark.parametrize("individual", [False, True])
def test_nlinear_shifts_with_a_constant(individual):
    torch.manual_seed(3)
    model = NLinear(48, 12, 3, individual=individual)
    x = torch.randn(5, 48, 3)
    shift = torch.tensor([2.0, -7.0, 100.0])  # one constant per channel
    with torch.no_grad():
        torch.testing.assert_close(model(x + shift), model(x) + shift, atol=1e-4, rtol=1e-5)
        wrapped = WindowNorm(model, "last")  # the double subtraction is harmless
        torch.testing.assert_close(wrapped(x), model(x), atol=1e-5, rtol=1e-5)


def test_linear_individual_gives_channels_their_own_weights():
    torch.manual_seed(4)
    model = DLinear(20, 5, 2, individual=True)
    x = torch.randn(1, 20, 1).repeat(1, 1, 2)  # identical channels
    y = model(x)
    assert not torch.allclose(y[..., 0], y[..., 1])
    shared = DLinear(20, 5, 2)(x)
    torch.testing.assert_close(shared[..., 0], shared[..., 1])


# ---- N-BEATS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_blocks", [1, 3])
def test_nbeats_interpretable_output_is_trend_plus_seasonality(num_blocks):
    torch.manual_seed(5)
    model = randomise(NBeatsInterpretable(48, 12, 2, num_blocks=num_blocks, hidden_size=32), 0.05)
    x = torch.randn(3, 48, 2)
    with torch.no_grad():
        trend, seasonality = model.decompose(x)
        output = model(x)
    assert trend.shape == seasonality.shape == (3, 12, 2)
    torch.testing.assert_close(output, trend + seasonality)
    assert trend.abs().sum() > 0 and seasonality.abs().sum() > 0


def test_nbeats_interpretable_parts_lie_in_their_bases():
    torch.manual_seed(6)
    model = randomise(NBeatsInterpretable(30, 10, 1, degree=2, hidden_size=16), 0.05)
    with torch.no_grad():
        trend, _ = model.decompose(torch.randn(2, 30, 1))
    t = torch.arange(10.0) / 10
    basis = torch.stack([torch.ones(10), t, t**2], dim=1)  # (H, degree + 1)
    coef = torch.linalg.lstsq(basis, trend[:, :, 0].T).solution
    torch.testing.assert_close(basis @ coef, trend[:, :, 0].T, atol=1e-4, rtol=1e-4)


def test_nbeats_channels_are_forecast_independently():
    torch.manual_seed(7)
    model = randomise(NBeats(24, 6, 3, hidden_size=32), 0.05)
    x = torch.randn(2, 24, 3)
    with torch.no_grad():
        alone = model(x[:, :, 1:2].repeat(1, 1, 3))[:, :, 0]
        torch.testing.assert_close(model(x)[:, :, 1], alone)


# ---- hybrid ----------------------------------------------------------------------------------------


def test_hybrid_runs_every_stage():
    torch.manual_seed(8)
    model = randomise(CNNLSTMTransformer(40, 8, 2, num_conv_layers=2, num_layers=2, num_encoder_layers=2))
    model.train()
    model(torch.randn(4, 40, 2)).pow(2).mean().backward()
    for stage in ("convs", "lstm", "project", "encoder", "head"):
        for name, p in getattr(model, stage).named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{stage}.{name} got no gradient"


def test_hybrid_pooling_shortens_the_sequence():
    model = CNNLSTMTransformer(7, 3, 1, pool_size=2)
    assert model.head.time.in_features == 4  # ceil(7 / 2)
    assert CNNLSTMTransformer(7, 3, 1, pool_size=1).head.time.in_features == 7


def test_hybrid_rejects_bad_heads():
    with pytest.raises(ValueError, match="divisible"):
        CNNLSTMTransformer(96, 24, 1, d_model=30, nhead=4)


# ---- hyperparameter checks (edges, gradients, the zero head and warnings: test_model_contract.py) -----


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (CNN, {"kernel_size": 0}),
        (CNN, {"dropout": 1.0}),
        (TCN, {"kernel_size": 1}),
        (TCN, {"num_levels": -1}),
        (CNNLSTMTransformer, {"pool_size": 0}),
        (NBeats, {"num_blocks": 0}),
        (NBeatsInterpretable, {"degree": -1}),
    ],
)
def test_bad_hyperparameters_raise_value_error(cls, kwargs):
    with pytest.raises(ValueError):
        cls(96, 24, 1, **kwargs)
