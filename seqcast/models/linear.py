"""DLinear and NLinear (Zeng, Chen, Zhang & Xu 2023, "Are Transformers Effective for Time Series
Forecasting?", AAAI): one linear map from the L window steps to the H horizon steps, per channel.

- DLinear splits the window into a trend (moving average, kernel 25, the series padded at both ends
  by repeating its first and last values so the trend keeps length L) and a remainder (window minus
  trend), maps each with its own Linear(L -> H), and sums the two forecasts.
- NLinear subtracts the window's last value, maps with Linear(L -> H), and adds the value back, so
  a shift of the whole window shifts the forecast by the same amount (a cheap guard against
  distribution shift). seqcast's WindowNorm("last") may already have subtracted the last value;
  then NLinear's own subtraction is a no-op (the last value is already 0), so it is correct both ways.

``individual=True`` gives each channel its own weights, as in the paper; the default shares one map
across channels (channel independence).

Initialisation: as in the paper's code, the linear layers keep torch's default nn.Linear
initialisation (uniform in +-1/sqrt(L)), not seqcast's usual zero head; the authors' optional
1/L "average the window" initialisation is commented out in their code, and seqcast leaves it out
too. The moving-average kernel must be odd so the trend is centred and keeps length L; the default
25 works for any lookback because of the replicate padding.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..registry import register_model
from ..search import Choice
from ._layers import COVARIATE_INPUTS, NO_COVARIATES, Covariates, StepCovariates, flat_inputs, zero_head


def series_decomposition(x: torch.Tensor, kernel_size: int = 25) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``x`` (B, L, C) into (trend, remainder), each (B, L, C), with trend + remainder == x.

    The trend is a centred moving average; both ends are padded by repeating the first and last
    values (kernel_size - 1) / 2 times, so every trend step averages exactly kernel_size values.
    """
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd number, not {kernel_size}")
    half = (kernel_size - 1) // 2
    series = x.transpose(1, 2)  # (B, L, C) -> (B, C, L): pad and pool along time
    padded = F.pad(series, (half, half), mode="replicate") if half else series  # (B, C, L + 2 * half)
    trend = F.avg_pool1d(padded, kernel_size, stride=1).transpose(1, 2)  # (B, L, C)
    return trend, x - trend


class SeriesDecomposition(nn.Module):
    """Module form of ``series_decomposition``: (B, L, C) -> (trend, remainder)."""

    def __init__(self, kernel_size: int = 25):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd number, not {kernel_size}")
        self.kernel_size = kernel_size

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return series_decomposition(x, self.kernel_size)


class TimeLinear(nn.Module):
    """Linear map over time, (B, L, C) -> (B, H, C); shared by all channels or one per channel."""

    def __init__(self, lookback: int, horizon: int, n_features: int, individual: bool):
        super().__init__()
        channels = n_features if individual else 1
        # (channels, H, L) like nn.Linear's (out, in); channels == 1 broadcasts across C
        self.weight = nn.Parameter(torch.empty(channels, horizon, lookback))
        self.bias = nn.Parameter(torch.empty(channels, horizon))
        bound = 1.0 / math.sqrt(lookback)  # nn.Linear's default: uniform in +-1/sqrt(fan_in)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (C, B, L) @ (C, L, H) -> (C, B, H) -> (B, H, C): the batched product einsum("blc,chl->bhc") runs,
        # to the bit, written as a MatMul so that an exported graph's weight quantizes (seqcast export --int8)
        weight = self.weight.transpose(1, 2).expand(x.shape[2], -1, -1)
        out = torch.matmul(x.permute(2, 0, 1), weight).permute(1, 2, 0)
        return out + self.bias.transpose(0, 1)  # bias (channels, H) -> (H, channels), broadcast over B


class CovariateTerm(nn.Module):
    """The linear models' covariate term, added to the forecast: one linear map from every covariate
    value of the window (``flat_inputs``: past over L, known-future over L + H, static) to the H x C
    forecast, its output divided by the number of inputs: AdamW moves every weight by about the
    learning rate whatever its gradient, so over the 2,016 inputs of ETTh1's six loads at L = 336 an
    unscaled map leapt, and validation MSE went from 0.134 at the start to 0.214 after one epoch (H=24;
    0.051 with the division, as without covariates). Plus, for the forecast steps' own known-future
    and static values, the step MLP every family shares (``StepCovariates``), which learns one strong
    effect (a target equal to twice a known-future covariate) within the automatic budget: validation
    MSE 0.03 in 285 steps. Both start at zero, so an
    untrained model forecasts as its univariate self."""

    def __init__(self, lookback: int, horizon: int, n_features: int, covariates: Covariates):
        super().__init__()
        self.horizon, self.n_features = horizon, n_features
        width = covariates.flat(lookback, horizon)
        self.linear = zero_head(nn.Linear(width, horizon * n_features))
        self.gain = 1.0 / width
        self.steps = StepCovariates(covariates, n_features) if StepCovariates.wanted(covariates) else None

    @staticmethod
    def wanted(covariates: Covariates) -> bool:
        return bool(covariates.kinds)

    def forward(self, past: torch.Tensor | None, future: torch.Tensor | None,
                static: torch.Tensor | None) -> torch.Tensor:
        term = (self.gain * self.linear(flat_inputs(past, future, static))).view(-1, self.horizon, self.n_features)
        return term if self.steps is None else term + self.steps(self.horizon, future, static)


# the paper's initialisation, not a zero head: an untrained model does not start at the level
# panel_loss: M4 Weekly validation OWA 0.858 with MAE, 0.898 with MSE
@register_model("dlinear", starts_at_level=False, panel_loss="mae", covariates=COVARIATE_INPUTS,
                search={"kernel_size": Choice((13, 25, 49)), "individual": Choice((False, True))})
class DLinear(nn.Module):
    """DLinear: moving-average trend + remainder, one linear map over time for each, summed."""

    def __init__(
        self,
        lookback: int,
        horizon: int,
        n_features: int,
        *,
        kernel_size: int = 25,
        individual: bool = False,
        covariates: Covariates = NO_COVARIATES,
    ):
        super().__init__()
        self.decomposition = SeriesDecomposition(kernel_size)
        self.trend = TimeLinear(lookback, horizon, n_features, individual)
        self.remainder = TimeLinear(lookback, horizon, n_features, individual)
        self.covariate_term = CovariateTerm(lookback, horizon, n_features, covariates) \
            if CovariateTerm.wanted(covariates) else None

    def forward(self, x: torch.Tensor, *, past: torch.Tensor | None = None, future: torch.Tensor | None = None,
                static: torch.Tensor | None = None) -> torch.Tensor:
        trend, remainder = self.decomposition(x)  # each (B, L, C)
        y = self.trend(trend) + self.remainder(remainder)  # (B, H, C)
        return y if self.covariate_term is None else y + self.covariate_term(past, future, static)


# as dlinear; panel_loss: M4 Weekly validation OWA 0.856 with MAE, 0.906 with MSE
@register_model("nlinear", starts_at_level=False, panel_loss="mae", search={"individual": Choice((False, True))},
                covariates=COVARIATE_INPUTS)
class NLinear(nn.Module):
    """NLinear: subtract the window's last value, one linear map over time, add it back."""

    def __init__(self, lookback: int, horizon: int, n_features: int, *, individual: bool = False,
                 covariates: Covariates = NO_COVARIATES):
        super().__init__()
        self.linear = TimeLinear(lookback, horizon, n_features, individual)
        self.covariate_term = CovariateTerm(lookback, horizon, n_features, covariates) \
            if CovariateTerm.wanted(covariates) else None

    def forward(self, x: torch.Tensor, *, past: torch.Tensor | None = None, future: torch.Tensor | None = None,
                static: torch.Tensor | None = None) -> torch.Tensor:
        last = x[:, -1:, :].detach()  # (B, 1, C); detached as in the paper (it is an offset, not a feature)
        y = self.linear(x - last) + last
        return y if self.covariate_term is None else y + self.covariate_term(past, future, static)
