"""ES-LSTM: exponential smoothing of level and season in front of a dilated LSTM.

After Smyl (2020), "A hybrid method of exponential smoothing and recurrent neural networks for time
series forecasting" (IJF 36(1)), the ES-RNN that won the M4 competition. There, each series has its
own Holt-Winters coefficients (level and seasonality smoothing, learned by gradient descent with the
network), the smoothed level and seasonal indices normalise the input window and de-seasonalise the
horizon, and a global stack of dilated LSTMs with residual connections forecasts the normalised
horizon, which the last level and the continued seasonal indices turn back into values.

seqcast's version, and where it differs:

- The smoothing runs over each window, not over a whole series: ``l_t = a (y_t - s_t) + (1 - a) l_{t-1}``
  and ``s_{t+m} = g (y_t - l_t) + (1 - g) s_t``, started from the window's own seasonal indices (as
  window normalisation "deseason" estimates them, from all its whole cycles; a window of less than
  two seasons: its first season's deviations from their mean) and the mean of its first season less them. The coefficients ``a`` and ``g`` are learned with the
  network, one pair per target channel: a global model sees windows, not series identities, so the
  panel's series share them (Smyl learned a pair per series). Each window's level and indices are
  still its own.
- Additive, in seqcast's per-series z-scored units (Smyl: multiplicative, in logs). Over a window of
  a few seasons the level barely moves, where dividing and subtracting agree; additive smoothing also
  serves series that cross zero.
- One season, the frequency's (``season``; hourly data: the day). A season longer than the lookback
  is dropped (level smoothing only), and fit says so.
- The LSTM reads ``y_t - s_t - l_L`` (the window less its seasonal part and its last level), with any
  covariates beside it; its layers are dilated (``dilations``: layer i sees every d_i-th step, by
  folding the steps into the batch) with residual connections between layers, as Smyl's stacks.
- The head is zero-initialised: untrained, the model forecasts the last level plus the continued
  indices, Holt-Winters without trend. No level-wiggliness penalty, no per-series ensembles;
  seqcast's ``--ensemble`` gives the latter.

The model normalises its own windows, so it declares ``window_norm="none"`` and ``fit`` does not probe
others for it. Export traces it whole (smoothing included) with TorchScript, as the recurrent family.
``explain`` shows each LSTM layer's gates, as the recurrent family's, recomputed from the layer's own
weights (a dilated layer's subsequences put back in window order).
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register_model
from ..search import FloatRange, IntRange
from ..seasonal import seasonal_indices, seasonal_part
from ._layers import COVARIATE_INPUTS, NO_COVARIATES, Covariates, StepCovariates, recompute_gates, step_inputs, zero_head

SEARCH = {"hidden_size": IntRange(16, 128, log=True), "dropout": FloatRange(0.0, 0.3)}


class DilatedLSTM(nn.Module):
    """One LSTM layer that reads every ``dilation``-th step: (B, L, in) -> (B, L, hidden)."""

    def __init__(self, input_size: int, hidden_size: int, dilation: int):
        super().__init__()
        self.dilation = dilation
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)

    def fold(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, w) -> (B * d, ceil(L / d), w): subsequence j holds steps j, j + d, ... of the window,
        left-padded with its first step so that the last step ends a subsequence."""
        d, (batch, steps, width) = self.dilation, x.shape
        pad = (-steps) % d
        if pad:
            x = torch.cat([x[:, :1].expand(-1, pad, -1), x], dim=1)
        return x.reshape(batch, -1, d, width).transpose(1, 2).reshape(batch * d, -1, width)

    def unfold(self, y: torch.Tensor, steps: int) -> torch.Tensor:
        """``fold``'s inverse for an output (B * d, ceil(L / d), w) -> (B, L, w)."""
        d = self.dilation
        y = y.reshape(-1, d, y.shape[1], y.shape[2]).transpose(1, 2).reshape(-1, d * y.shape[1], y.shape[2])
        return y[:, y.shape[1] - steps:]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dilation == 1:
            return self.lstm(x)[0]
        return self.unfold(self.lstm(self.fold(x))[0], x.shape[1])

    def gates(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """{gate: (B, L, hidden)} of the forget, input and output gates at every step (``recompute_gates``)."""
        gates, _ = recompute_gates(self.lstm, "lstm", self.fold(x) if self.dilation > 1 else x)
        return {name.split(".")[1]: (self.unfold(v, x.shape[1]) if self.dilation > 1 else v)
                for name, v in gates.items()}


@register_model("eslstm", window_norm="none", season=True, starts_at_level=False, search=SEARCH, onnx_exporter="torchscript",
                covariates=COVARIATE_INPUTS, explain="gates")
class ESLSTM(nn.Module):
    """ES-RNN hybrid (Smyl 2020): learned level and season smoothing, then a dilated LSTM stack."""

    def __init__(
        self,
        lookback: int,
        horizon: int,
        n_features: int,
        *,
        season: int = 0,
        hidden_size: int = 32,
        dilations: tuple[int, ...] = (1, 2),
        dropout: float = 0.0,
        covariates: Covariates = NO_COVARIATES,
    ):
        super().__init__()
        dilations = tuple(int(d) for d in dilations)
        if hidden_size < 1 or not dilations or min(dilations) < 1:
            raise ValueError("hidden_size and every dilation must be at least 1")
        self.horizon, self.n_features = horizon, n_features
        self.season = int(season) if 1 < int(season or 0) <= lookback else 1
        # smoothing coefficients through a sigmoid; start at a = 0.5 (level) and g = 0.12 (season)
        self.level_logit = nn.Parameter(torch.zeros(n_features))
        self.season_logit = nn.Parameter(torch.full((n_features,), -2.0)) if self.season > 1 else None
        inputs = n_features + covariates.per_step
        # a dilation of at most half the lookback, so that every layer's recurrence runs over two steps or more
        self.layers = nn.ModuleList(DilatedLSTM(inputs if i == 0 else hidden_size, hidden_size,
                                                min(d, max(1, lookback // 2)))
                                    for i, d in enumerate(dilations))
        self.dropout = nn.Dropout(dropout)
        self.head = zero_head(nn.Linear(hidden_size, horizon * n_features))
        self.step_covariates = StepCovariates(covariates, n_features) if StepCovariates.wanted(covariates) else None

    def smooth(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, L, C) -> the seasonal index of every input step (B, L, C), the last level (B, 1, C), and
        the indices of the H steps after the window (B, H, C)."""
        batch, steps, channels = x.shape
        m = self.season
        alpha = torch.sigmoid(self.level_logit)  # (C,)
        seasonal = self.season_logit is not None
        if not seasonal:  # level smoothing only
            indices, level = [x.new_zeros(batch, channels)] * steps, x[:, 0]
        else:
            gamma = torch.sigmoid(self.season_logit)
            start = seasonal_indices(x, (m,))
            if start:  # the window's own indices, at the first cycle's steps (phases -L .. -L + m - 1)
                first = seasonal_part(start, torch.arange(-steps, -steps + m, device=x.device))
            else:  # a window of less than two seasons: the first season's deviations from its mean
                first = x[:, :m] - x[:, :m].mean(dim=1, keepdim=True)
            indices = list(first.unbind(dim=1))
            level = (x[:, :m] - first).mean(dim=1)  # (B, C): the first cycle, adjusted
        used = []
        for t in range(steps):
            s = indices[t]
            used.append(s)
            level = alpha * (x[:, t] - s) + (1 - alpha) * level
            if seasonal:
                indices.append(gamma * (x[:, t] - level) + (1 - gamma) * s)  # s_{t+m}
        past = torch.stack(used, dim=1)  # (B, L, C)
        if not seasonal:
            return past, level[:, None], x.new_zeros(batch, self.horizon, channels)
        last = torch.stack(indices[-m:], dim=1)  # (B, m, C): the indices of steps L .. L + m - 1
        return past, level[:, None], last[:, torch.arange(self.horizon, device=x.device) % m]

    def forward(self, x: torch.Tensor, *, past: torch.Tensor | None = None, future: torch.Tensor | None = None,
                static: torch.Tensor | None = None) -> torch.Tensor:
        seasonal, level, ahead = self.smooth(x)
        h = step_inputs(x - seasonal - level, past, future, static)  # (B, L, C + P + F + S)
        for i, layer in enumerate(self.layers):
            out = self.dropout(layer(h))
            h = out if i == 0 else out + h  # residual connections between layers, as Smyl's stacks
        y = self.head(h[:, -1]).view(-1, self.horizon, self.n_features)
        if self.step_covariates is not None:
            y = y + self.step_covariates(self.horizon, future, static)
        return y + level + ahead

    @torch.no_grad()
    def explain(self, x: torch.Tensor, *, past: torch.Tensor | None = None, future: torch.Tensor | None = None,
                static: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """{"{i}.{gate}": (B, L)}: each LSTM layer's forget, input and output gates, the mean over hidden
        units at every input step (a dilated layer's steps back in window order), on the smoothed input."""
        seasonal, level, _ = self.smooth(x)
        h, shown = step_inputs(x - seasonal - level, past, future, static), {}
        for i, layer in enumerate(self.layers):
            shown |= {f"{i}.{name}": values.mean(dim=-1) for name, values in layer.gates(h).items()}
            out = layer(h)
            h = out if i == 0 else out + h
        return shown
