"""Per-window normalisation: pipeline policy wrapped around any registered model, not part of a model.

Training chooses the mode (the user's ``--window-norm``, else the model's declared ``window_norm``
capability), the checkpoint records it, and predict, evaluate and explain run the same wrapper.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import WINDOW_NORMS
from .seasonal import seasonal_indices, seasonal_part


class WindowNorm(nn.Module):
    """Wraps any model with per-window normalisation (NLinear's last value, the mean, RevIN, the last
    season, or the window's own level and seasonal indices).

    The window's reference level is subtracted from the input and added back to the forecast, so the
    model learns the change from the window's level; with a zero-initialised head a model starts out
    as repeat-last-value ("last") or repeat-the-mean ("mean" and "revin"). "revin" also divides the
    input by the window's standard deviation and multiplies the forecast by it. "season" centres the
    input on its last value like "last", but adds back the window's last ``season`` steps repeated
    (the seasonal naive forecast): the model learns the change from seasonal naive, and with a zero
    head starts out as seasonal naive.

    "deseason" (level and seasonality, the normalisation ES-RNN put in front of its LSTM): for each
    of ``seasons`` that the lookback holds twice, shortest first, seasonal indices are estimated from
    the window itself (the mean deviation of each phase from its cycle's mean, less the ramp a linear
    trend puts into those deviations, shrunk by the season's strength in the window:
    ``seasonal.seasonal_indices``); the input is the window less its seasonal parts and less its
    level (the last deseasonalised value), and the forecast adds back the level and the indices of
    the forecast steps' phases. With a zero head the model starts out in Naive2's shape (repeat the
    last seasonally adjusted value, then re-season; Naive2 itself is multiplicative, estimated on the
    whole series, and tests for a season first), exactly seasonal naive on a window that is a season
    repeated. In a padded window (a panel's short series) the repeated first value takes part in
    the estimate and weakens it. The decomposition is additive: in seqcast's per-series z-scored
    units a window of a few seasons has a nearly constant level, where dividing and subtracting
    agree. A window without a season that fits twice is normalised as "last".

    ``seasons`` is the data frequency's (``seqcast.data.seasons``; "season" uses the first, capped by the
    lookback); the checkpoint's frequency gives them again on loading.
    """

    def __init__(self, model: nn.Module, mode: str = "none", seasons: int | tuple[int, ...] = ()):
        super().__init__()
        if mode not in WINDOW_NORMS:
            raise ValueError(f"window_norm must be one of {', '.join(WINDOW_NORMS)}, not {mode!r}")
        self.model = model
        self.mode = mode
        self.seasons = tuple(int(s) for s in ((seasons,) if isinstance(seasons, int) else seasons) if int(s) > 1)

    @property
    def season(self) -> int:
        """The season "season" repeats: the frequency's first (1: none)."""
        return self.seasons[0] if self.seasons else 1

    def level(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, C) -> (B, 1, C): the window's reference level, one per window and channel."""
        if self.mode == "none":
            return x.new_zeros(x.shape[0], 1, x.shape[2])
        level = x[:, -1:, :] if self.mode in ("last", "season") else x.mean(dim=1, keepdim=True)
        return level.detach()

    def seasonal_naive(self, x: torch.Tensor, horizon: int) -> torch.Tensor:
        """(B, L, C) -> (B, H, C): each step repeats the value one season (at most the lookback) earlier."""
        season = min(self.season, x.shape[1])
        steps = x.shape[1] - season + torch.arange(horizon, device=x.device) % season
        return x[:, steps, :].detach()

    def deseasonalise(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, L, C) -> the window less its seasonal parts, and the seasonal indices ("deseason")."""
        indices = seasonal_indices(x.detach(), self.seasons)
        if not indices:
            return x, indices
        return x - seasonal_part(indices, torch.arange(-x.shape[1], 0, device=x.device)), indices

    def spread(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, C) -> (B, 1, C): the window's standard deviation, the scale "revin" divides by."""
        return (x.var(dim=1, keepdim=True, unbiased=False) + 1e-5).sqrt().detach()

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, C) -> (B, L, C): the input the inner model sees (for ``seqcast explain``)."""
        if self.mode == "none":
            return x
        if self.mode == "deseason":
            adjusted = self.deseasonalise(x)[0]
            return adjusted - adjusted[:, -1:, :].detach()
        centred = x - self.level(x)
        return centred / self.spread(x) if self.mode == "revin" else centred

    @property
    def network(self) -> nn.Module:
        """The registered model inside (under a quantile head, when there is one)."""
        from .quantile_head import QuantileHead

        return self.model.model if isinstance(self.model, QuantileHead) else self.model

    def forward(self, x: torch.Tensor, **covariates: torch.Tensor | None) -> torch.Tensor:
        """(B, L, C) -> (B, H, C), or (B, H, C, Q) under a quantile head: each quantile shifted alike."""
        if self.mode == "none":
            return self.model(x, **covariates)
        if self.mode == "deseason":
            adjusted, indices = self.deseasonalise(x)
            level = adjusted[:, -1:, :].detach()  # (B, 1, C): the last seasonally adjusted value
            out = self.model(adjusted - level, **covariates)
            reference = level
            if indices:
                reference = level + seasonal_part(indices, torch.arange(out.shape[1], device=x.device))
            return out + (reference.unsqueeze(-1) if out.ndim == 4 else reference)
        level = self.level(x)  # broadcast over time
        if self.mode == "season":
            out = self.model(x - level, **covariates)
            reference = self.seasonal_naive(x, out.shape[1])
            return out + (reference.unsqueeze(-1) if out.ndim == 4 else reference)
        if self.mode != "revin":
            out = self.model(x - level, **covariates)
            return out + (level.unsqueeze(-1) if out.ndim == 4 else level)
        spread = self.spread(x)
        out = self.model((x - level) / spread, **covariates)
        if out.ndim == 4:
            spread, level = spread.unsqueeze(-1), level.unsqueeze(-1)
        return out * spread + level
