"""The simple baselines every honest comparison needs: repeat the last value, repeat the last season.

They have no parameters and need no training; they are registered like any model so that `compare`
always shows them beside the learned ones.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register_model


@register_model("naive")
class Naive(nn.Module):
    """Repeat-last-value: every horizon step is the window's last observation."""

    def __init__(self, lookback: int, horizon: int, n_features: int):
        super().__init__()
        self.horizon = horizon

    def forward(self, x: torch.Tensor, *, past: torch.Tensor | None = None, future: torch.Tensor | None = None,
                static: torch.Tensor | None = None) -> torch.Tensor:
        return x[:, -1:, :].expand(-1, self.horizon, -1).contiguous()  # (B, 1, C) -> (B, H, C)


@register_model("seasonal_naive", season=True)  # season 0 = from the data frequency
class SeasonalNaive(nn.Module):
    """Seasonal naive: each horizon step repeats the value one season earlier (season 0 = from the frequency)."""

    def __init__(self, lookback: int, horizon: int, n_features: int, *, season: int = 0):
        super().__init__()
        if season < 0:
            raise ValueError("season must be positive")
        self.season = min(season or 1, lookback)
        self.horizon = horizon

    def forward(self, x: torch.Tensor, *, past: torch.Tensor | None = None, future: torch.Tensor | None = None,
                static: torch.Tensor | None = None) -> torch.Tensor:
        last_season = x[:, -self.season :, :]  # (B, S, C)
        repeats = -(-self.horizon // self.season)
        return last_season.repeat(1, repeats, 1)[:, : self.horizon, :]
