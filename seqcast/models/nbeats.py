"""N-BEATS (Oreshkin, Carpov, Chapados & Bengio 2020, "N-BEATS: Neural basis expansion analysis for
interpretable time series forecasting", ICLR).

Each block reads a window, runs it through fully connected ReLU layers, and predicts two coefficient
vectors theta_b and theta_f; a basis turns them into a backcast (L steps) and a forecast (H steps).
Blocks are stacked doubly residually: block k+1 reads block k's input minus block k's backcast (what
is not yet explained), and the model's forecast is the sum of every block's forecast.

- ``nbeats`` (generic): the basis is learned, so each block maps its hidden state straight to L + H
  values (a learned Linear basis after a Linear theta is itself one Linear, which is what we use).
- ``nbeats_interpretable``: a trend stack whose basis is the polynomials 1, t, ..., t^degree, then a
  seasonality stack whose basis is cos/sin harmonics; ``decompose`` returns the two stacks'
  forecasts, which add up to the model's output. As in the paper, blocks share weights within each
  interpretable stack.

Where seqcast differs:
- Defaults are CPU-sized: width 256 and 3 blocks of 4 layers (generic: 3 blocks in all; the paper's
  generic model used 30 blocks of width 512, and its seasonality stack width 2048).
- Channels are forecast independently with shared weights: (B, L, C) is folded to (B * C, L).
- Forecast coefficients are zero-initialised (``zero_head``), so an untrained model forecasts 0,
  i.e. the last value under seqcast's per-window normalisation; backcasts keep torch's default init.
- The final block (or the final stack's shared block, if applied once) has no backcast layer: its
  backcast would feed nothing, and a layer that never gets a gradient only wastes memory.
- Seasonality uses one time axis for backcast and forecast (steps measured in units of H, the
  window at negative times), so a harmonic has the same period on both sides of the forecast origin.
  The trend basis, as in the paper, runs t over [0, 1) separately on each side.

Covariates, as NBEATSx (Olivares et al. 2023) takes exogenous inputs: every covariate value of the
window (``flat_inputs``: past over L, known-future over L + H, static, divided by their number) joins
each block's input beside the residual it reads; backcasts still explain the residual values only.
Both stacks read them: the interpretable one's coefficients then depend on them, its bases stay
polynomials and harmonics. Each forecast step's own known-future and static values also reach it
through the step MLP every family shares (``StepCovariates``), added to the forecast: through the
divided inputs alone a target equal to twice a known-future covariate stayed at validation MSE 0.15
(generic) and 0.50 (interpretable) after 285 steps, against 0.002 with it.
"""


from __future__ import annotations

import math

import torch
from torch import nn

from ..registry import register_model
from ..search import IntRange
from ._layers import COVARIATE_INPUTS, NO_COVARIATES, Covariates, StepCovariates, flat_inputs, zero_head


def trend_basis(degree: int, steps: int) -> torch.Tensor:
    """Polynomial basis (degree + 1, steps): rows t^0 ... t^degree, t = 0, 1/steps, ..., 1 - 1/steps."""
    t = torch.arange(steps, dtype=torch.float32) / steps
    return torch.stack([t**p for p in range(degree + 1)])


def seasonality_basis(num_harmonics: int, t: torch.Tensor) -> torch.Tensor:
    """Fourier basis (1 + 2 * num_harmonics, len(t)): 1, cos(2 pi k t), sin(2 pi k t) for k = 1..K."""
    k = torch.arange(1, num_harmonics + 1, dtype=torch.float32)[:, None]  # (K, 1)
    angle = 2 * math.pi * k * t[None, :]  # (K, steps)
    return torch.cat([torch.ones(1, t.numel()), torch.cos(angle), torch.sin(angle)])


class Block(nn.Module):
    """FC stack -> theta -> (backcast (N, L) or None, forecast (N, H)) through fixed or learned bases."""

    def __init__(
        self,
        lookback: int,
        hidden_size: int,
        num_layers: int,
        backcast_basis: torch.Tensor | int | None,
        forecast_basis: torch.Tensor | int,
        extra: int = 0,
    ):
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(lookback + extra, hidden_size), nn.ReLU()]  # extra: covariate values
        for _ in range(num_layers - 1):
            layers += [nn.Linear(hidden_size, hidden_size), nn.ReLU()]
        self.fc = nn.Sequential(*layers)
        # an int basis means a learned (generic) basis of that many output steps
        self.backcast_theta = None
        if backcast_basis is None:
            self.register_buffer("backcast_basis", None)
        else:
            self.backcast_theta = self._theta(hidden_size, backcast_basis, "backcast_basis")
        self.forecast_theta = zero_head(self._theta(hidden_size, forecast_basis, "forecast_basis"))

    def _theta(self, hidden_size: int, basis: torch.Tensor | int, name: str) -> nn.Linear:
        if isinstance(basis, int):
            self.register_buffer(name, None)
            return nn.Linear(hidden_size, basis)
        self.register_buffer(name, basis, persistent=False)  # fixed; rebuilt by __init__ on load
        return nn.Linear(hidden_size, basis.shape[0])

    def forward(self, x: torch.Tensor, need_backcast: bool = True, extra: torch.Tensor | None = None):
        h = self.fc(x if extra is None else torch.cat([x, extra], dim=-1))  # (N, L [+ extra]) -> (N, hidden)
        forecast = self.forecast_theta(h)  # (N, p_f)
        if self.forecast_basis is not None:
            forecast = forecast @ self.forecast_basis  # (N, p_f) @ (p_f, H) -> (N, H)
        if not need_backcast or self.backcast_theta is None:
            return None, forecast
        backcast = self.backcast_theta(h)
        if self.backcast_basis is not None:
            backcast = backcast @ self.backcast_basis  # (N, p_b) @ (p_b, L) -> (N, L)
        return backcast, forecast


def _check(hidden_size: int, num_layers: int, num_blocks: int):
    for key, value in (("hidden_size", hidden_size), ("num_layers", num_layers), ("num_blocks", num_blocks)):
        if value < 1:
            raise ValueError(f"{key} must be at least 1, not {value}")


def _fold(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(1, 2).reshape(-1, x.shape[1])  # (B, L, C) -> (B, C, L) -> (B * C, L)


def _unfold(y: torch.Tensor, n_features: int) -> torch.Tensor:
    return y.view(-1, n_features, y.shape[-1]).transpose(1, 2)  # (B * C, H) -> (B, C, H) -> (B, H, C)


def _extra(past: torch.Tensor | None, future: torch.Tensor | None, static: torch.Tensor | None,
           n_features: int) -> torch.Tensor | None:
    """The window's covariate values (B, K), once for each of its folded channels: (B * C, K)."""
    flat = flat_inputs(past, future, static)
    # divided by their number, as the linear models' covariate term (models/linear.py): AdamW moves each of
    # the first layer's weights by about the learning rate, and over ETTh1's 2,016 load inputs undivided
    # sums leapt (no epoch beat the starting weights, validation MSE 0.070; divided 0.053, 0.052 without)
    return None if flat is None else (flat / flat.shape[1]).repeat_interleave(n_features, dim=0)


# What `seqcast tune` varies, for both stacks.
SEARCH = {"num_blocks": IntRange(1, 4), "num_layers": IntRange(2, 4), "hidden_size": IntRange(64, 512, log=True)}


# panel_loss: M4 Weekly validation OWA 0.751 with MAE, 0.845 with MSE
@register_model("nbeats", panel_loss="mae", search=SEARCH, covariates=COVARIATE_INPUTS)
class NBeats(nn.Module):
    """N-BEATS generic: doubly residual fully connected blocks with learned bases."""

    def __init__(
        self,
        lookback: int,
        horizon: int,
        n_features: int,
        *,
        num_blocks: int = 3,
        num_layers: int = 4,
        hidden_size: int = 256,
        covariates: Covariates = NO_COVARIATES,
    ):
        super().__init__()
        _check(hidden_size, num_layers, num_blocks)
        self.n_features = n_features
        extra = covariates.flat(lookback, horizon)
        self.blocks = nn.ModuleList(
            Block(lookback, hidden_size, num_layers, lookback if i < num_blocks - 1 else None, horizon, extra)
            for i in range(num_blocks)
        )
        self.horizon = horizon
        self.step_covariates = StepCovariates(covariates, n_features) if StepCovariates.wanted(covariates) else None

    def forward(self, x: torch.Tensor, *, past: torch.Tensor | None = None, future: torch.Tensor | None = None,
                static: torch.Tensor | None = None) -> torch.Tensor:
        residual, forecast = _fold(x), 0.0  # (B * C, L)
        extra = _extra(past, future, static, self.n_features)
        for block in self.blocks:
            backcast, block_forecast = block(residual, extra=extra)
            forecast = forecast + block_forecast  # (B * C, H)
            if backcast is not None:
                residual = residual - backcast  # pass on what this block did not explain
        y = _unfold(forecast, self.n_features)
        return y if self.step_covariates is None else y + self.step_covariates(self.horizon, future, static)


# panel_loss: M4 Weekly validation OWA 0.775 with MAE, 0.884 with MSE
@register_model("nbeats_interpretable", panel_loss="mae", search=SEARCH, covariates=COVARIATE_INPUTS)
class NBeatsInterpretable(nn.Module):
    """N-BEATS interpretable: a polynomial trend stack then a Fourier seasonality stack."""

    def __init__(
        self,
        lookback: int,
        horizon: int,
        n_features: int,
        *,
        num_blocks: int = 3,
        num_layers: int = 4,
        hidden_size: int = 256,
        degree: int = 3,
        num_harmonics: int = 0,
        covariates: Covariates = NO_COVARIATES,
    ):
        super().__init__()
        _check(hidden_size, num_layers, num_blocks)
        if degree < 0:
            raise ValueError(f"degree must be 0 or more, not {degree}")
        if num_harmonics < 0:
            raise ValueError(f"num_harmonics must be 0 (the paper's H/2 - 1) or more, not {num_harmonics}")
        self.n_features, self.num_blocks = n_features, num_blocks
        # the paper's floor(H/2 - 1) harmonics, at least one so short horizons still have a season
        harmonics = num_harmonics or max(1, horizon // 2 - 1)
        # one time axis in units of H: the window at t < 0, the horizon at t in [0, 1)
        past = (torch.arange(lookback, dtype=torch.float32) - lookback) / horizon
        future = torch.arange(horizon, dtype=torch.float32) / horizon
        extra = covariates.flat(lookback, horizon)
        self.trend = Block(
            lookback, hidden_size, num_layers, trend_basis(degree, lookback), trend_basis(degree, horizon), extra
        )
        # the last stack's shared block needs a backcast only if it is applied more than once
        self.seasonality = Block(
            lookback,
            hidden_size,
            num_layers,
            seasonality_basis(harmonics, past) if num_blocks > 1 else None,
            seasonality_basis(harmonics, future),
            extra,
        )
        self.horizon = horizon
        self.step_covariates = StepCovariates(covariates, n_features) if StepCovariates.wanted(covariates) else None

    def decompose(self, x: torch.Tensor, past: torch.Tensor | None = None, future: torch.Tensor | None = None,
                  static: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The trend and seasonality stacks' forecasts, each (B, H, C); forward returns their sum."""
        residual = _fold(x)  # (B * C, L)
        extra = _extra(past, future, static, self.n_features)
        parts = []
        for stack, last in ((self.trend, False), (self.seasonality, True)):
            total = 0.0
            for i in range(self.num_blocks):  # the same block, weights shared within the stack
                need_backcast = not (last and i == self.num_blocks - 1)
                backcast, forecast = stack(residual, need_backcast, extra)
                total = total + forecast
                if backcast is not None:
                    residual = residual - backcast
            parts.append(_unfold(total, self.n_features))
        return parts[0], parts[1]

    def forward(self, x: torch.Tensor, *, past: torch.Tensor | None = None, future: torch.Tensor | None = None,
                static: torch.Tensor | None = None) -> torch.Tensor:
        trend, seasonality = self.decompose(x, past, future, static)
        y = trend + seasonality
        return y if self.step_covariates is None else y + self.step_covariates(self.horizon, future, static)
