"""One head adapter that turns any registered model's point forecast into quantiles, and the pinball loss.

``QuantileHead(model, lookback, horizon, quantiles)`` keeps the model's own forecast as the 0.5
column (always among the quantiles) and adds a small network that reads the recent window and that
forecast and gives, per step and channel, the distance from each quantile to the next one out from
it (the model's own point loss, MSE or MAE, trains the forecast). Distances pass through softplus, so quantiles never cross; they are measured in units of the
window's own scale (the mean absolute step-to-step change), so one head serves calm and volatile
windows alike. The loss (``quantile_loss``) is the point model's MSE on the 0.5 column plus the
pinball loss of the others, and the distances never move the forecast: the model trains on the same
loss as without quantiles (its point accuracy is kept; pinball-0.5 training cost 2-3 % MSE on
ETTh1), and the head learns the quantiles around its forecast. Early stopping keeps the round with
the best combined validation loss, so the round kept can differ from the point model's.

Shapes: x (B, L, C) -> (B, H, C, Q), quantiles ascending.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .intervals import CONTEXT  # the head reads at most the window's last 96 steps, as interval scales do

MEDIAN = 0.5


def with_median(quantiles: tuple[float, ...]) -> tuple[float, ...]:
    """The quantiles a head is built for: those asked for, plus the median, ascending."""
    return tuple(sorted({*quantiles, MEDIAN}))


class QuantileHead(nn.Module):
    """Quantile outputs for any model: its forecast is the median, a shared head gives the spread."""

    def __init__(self, model: nn.Module, lookback: int, horizon: int, quantiles: tuple[float, ...], hidden: int = 32):
        super().__init__()
        self.model = model
        self.quantiles = with_median(quantiles)
        self.median = self.quantiles.index(MEDIAN)
        self.context = min(lookback, CONTEXT)
        steps = len(self.quantiles) - 1  # the gaps between neighbouring quantiles
        # Per channel: the recent window (<= 96 steps) and the forecast (H), in window-scale units ->
        # H x gaps distances. Small next to the models it serves, so quantiles cost little extra time.
        self.spread = nn.Sequential(nn.Linear(self.context + horizon, hidden), nn.ReLU(),
                                    nn.Linear(hidden, horizon * steps))
        # gaps (.., Q - 1) @ offsets (Q - 1, Q - 1) = each other quantile's distance from the median: minus
        # the gaps between it and the median below it, plus them above.
        offsets = torch.zeros(steps, steps)
        for j in range(steps):
            if j < self.median:
                offsets[j : self.median, j] = -1.0
            else:
                offsets[self.median : j + 1, j] = 1.0
        self.register_buffer("offsets", offsets, persistent=False)

    def forward(self, x: torch.Tensor, **covariates: torch.Tensor | None) -> torch.Tensor:
        point = self.model(x, **covariates)  # (B, H, C)
        batch, horizon, channels = point.shape
        recent = x[:, -self.context :]
        change = (recent[:, 1:] - recent[:, :-1]).abs().mean(dim=1, keepdim=True) if recent.shape[1] > 1 else x.abs()
        scale = change.detach() + 1e-3  # (B, 1, C)
        centre = point.detach()
        features = (torch.cat([recent, centre], dim=1) - x[:, -1:]) / scale  # (B, context + H, C), level-free
        gaps = nn.functional.softplus(self.spread(features.transpose(1, 2)))  # (B, C, H * gaps)
        gaps = gaps.view(batch, channels, horizon, -1).transpose(1, 2) * scale.unsqueeze(-1)  # (B, H, C, gaps)
        distances = (gaps.reshape(-1, gaps.shape[-1]) @ self.offsets).view(batch, horizon, channels, -1)  # one mm
        others = centre.unsqueeze(-1) + distances  # (B, H, C, Q - 1), ascending
        m = self.median
        return torch.cat([others[..., :m], point.unsqueeze(-1), others[..., m:]], dim=-1)  # (B, H, C, Q)


def pinball(quantiles: tuple[float, ...]):
    """The mean pinball (quantile) loss of (B, H, C, Q) forecasts against (B, H, C) actuals, or against
    (B, H, C, Q) targets, one per quantile (a distilled student's: ``distill.py``)."""
    levels = torch.tensor(quantiles, dtype=torch.float32)

    def loss(pred: torch.Tensor, actual: torch.Tensor) -> torch.Tensor:
        error = (actual if actual.dim() == pred.dim() else actual.unsqueeze(-1)) - pred  # > 0: quantile below
        # max(q e, (q - 1) e) written as q e + relu(-e): the same value, a cheaper backward
        return (levels.to(pred.device) * error + torch.relu(-error)).mean()
    return loss


def quantile_loss(quantiles: tuple[float, ...], point_loss=None):
    """What a quantile head trains on: the point loss (MSE unless given) of the 0.5 column (the model's
    forecast, as a point model trains) plus the pinball loss of the other quantiles (the head's distances)."""
    point_loss = point_loss or mse
    median = quantiles.index(MEDIAN)
    others = tuple(q for q in quantiles if q != MEDIAN)
    keep = [i for i in range(len(quantiles)) if i != median]
    spread = pinball(others)

    def loss(pred: torch.Tensor, actual: torch.Tensor) -> torch.Tensor:
        if actual.dim() == pred.dim():  # a target per quantile
            return point_loss(pred[..., median], actual[..., median]) + spread(pred[..., keep], actual[..., keep])
        return point_loss(pred[..., median], actual) + spread(pred[..., keep], actual)
    return loss


def mse(pred: torch.Tensor, actual: torch.Tensor) -> torch.Tensor:
    return nn.functional.mse_loss(pred, actual)


def mae(pred: torch.Tensor, actual: torch.Tensor) -> torch.Tensor:
    return nn.functional.l1_loss(pred, actual)


def point_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The point loss ``name`` (one of registry.POINT_LOSSES) as a function of (prediction, actual)."""
    return {"mse": mse, "mae": mae}[name]
