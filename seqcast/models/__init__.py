"""Every architecture seqcast knows, one family per file; importing this package registers them all.

The model contract (DESIGN.md rule 2), with the shape letters used across seqcast:

    B  batch of windows        L  lookback (input steps)
    H  horizon (output steps)  C  channels (target series forecast together)
    F  calendar features (``N_TIME_FEATURES``), known for the past and the future

    Model(lookback, horizon, n_features, *, <hyperparameters with defaults>)
    model(x, time_features=None) -> y
        x: (B, L, C) scaled values; time_features: (B, L + H, F) or None; y: (B, H, C).

A model that uses calendar features sets ``uses_time_features = True`` and must still work when
they are None (integer-step data has no calendar). Models keep no state between calls and never
import pandas, data, training or cli.
"""

from __future__ import annotations

import importlib
import pkgutil

import torch
from torch import nn

N_TIME_FEATURES = 5  # hour of day, day of week, day of month, day of year, month; each in [-0.5, 0.5]

WINDOW_NORMS = ("none", "last", "mean", "revin")


def default_window_norm(model: nn.Module) -> str:
    """The per-window normalisation a model class trains best with (``default_window_norm``), else "last"."""
    return getattr(model, "default_window_norm", "last")


class WindowNorm(nn.Module):
    """Wraps any model with per-window normalisation (NLinear's last value, the mean, or RevIN).

    The window's reference level is subtracted from the input and added back to the forecast, so the
    model learns the change from the window's level; with a zero-initialised head a model starts out
    as repeat-last-value ("last") or repeat-the-mean ("mean" and "revin"). "revin" also divides the
    input by the window's standard deviation and multiplies the forecast by it.
    """

    def __init__(self, model: nn.Module, mode: str = "none"):
        super().__init__()
        if mode not in WINDOW_NORMS:
            raise ValueError(f"window_norm must be one of {', '.join(WINDOW_NORMS)}, not {mode!r}")
        self.model = model
        self.mode = mode

    def level(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, C) -> (B, 1, C): the window's reference level, one per window and channel."""
        if self.mode == "none":
            return x.new_zeros(x.shape[0], 1, x.shape[2])
        level = x[:, -1:, :] if self.mode == "last" else x.mean(dim=1, keepdim=True)
        return level.detach()

    def spread(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, C) -> (B, 1, C): the window's standard deviation, the scale "revin" divides by."""
        return (x.var(dim=1, keepdim=True, unbiased=False) + 1e-5).sqrt().detach()

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, C) -> (B, L, C): the input the inner model sees (for ``seqcast explain``)."""
        if self.mode == "none":
            return x
        centred = x - self.level(x)
        return centred / self.spread(x) if self.mode == "revin" else centred

    def forward(self, x: torch.Tensor, time_features: torch.Tensor | None = None) -> torch.Tensor:
        if self.mode == "none":
            return self.model(x, time_features=time_features)
        level = self.level(x)  # broadcast over time
        if self.mode != "revin":
            return self.model(x - level, time_features=time_features) + level
        spread = self.spread(x)
        return self.model((x - level) / spread, time_features=time_features) * spread + level


def zero_head(layer: nn.Linear) -> nn.Linear:
    """Zero a forecast head so that, under window normalisation, training starts from the baseline."""
    nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
