"""Temporal Convolutional Network (Bai, Kolter & Koltun 2018, "An Empirical Evaluation of Generic
Convolutional and Recurrent Networks for Sequence Modeling").

A stack of residual blocks; block i holds two dilated causal convolutions with dilation 2^i, each
weight-normalised and followed by ReLU and spatial dropout (whole channels, as the paper describes),
and adds the block's input back (through a 1x1 convolution when the channel counts differ) before a
final ReLU. Causal means output step t reads only inputs at steps <= t: each convolution is padded
on the left only, by (kernel_size - 1) * dilation steps.

Receptive field. One convolution with kernel k and dilation d widens the field by (k - 1) * d; two
per block and dilations 1, 2, ..., 2^(n-1) give

    receptive_field(k, n) = 1 + 2 * (k - 1) * (2^n - 1)

``num_levels=0`` (the default) picks the smallest n with receptive_field(k, n) >= lookback, so the
last step sees the whole window. A user-chosen ``num_levels`` that leaves the first steps of the
window unseen is allowed but warned about (UserWarning, shown by the CLI on stderr).

Where seqcast differs: the head is a zero-initialised Linear on the last time step's features only
(the output that has read the whole receptive field; no linear over time), mapping them to all H x C
outputs at once (direct multi-horizon instead of the paper's sequence-to-sequence outputs).
Weights use torch's default initialisation instead of the paper's N(0, 0.01): under weight
normalisation the direction's scale is absorbed by the magnitude g, so that init changed little.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

from ..registry import register_model
from ..search import Choice, FloatRange, IntRange
from ._layers import COVARIATE_INPUTS, NO_COVARIATES, Covariates, StepCovariates, step_inputs, zero_head


def receptive_field(kernel_size: int, num_levels: int) -> int:
    """Steps one output sees through ``num_levels`` blocks of two causal convolutions (dilation 2^i)."""
    return 1 + 2 * (kernel_size - 1) * (2**num_levels - 1)


def levels_for(lookback: int, kernel_size: int) -> int:
    """The smallest number of levels whose receptive field covers ``lookback`` steps."""
    levels = 1
    while receptive_field(kernel_size, levels) < lookback:
        levels += 1
    return levels


class CausalConv1d(nn.Module):
    """Weight-normalised Conv1d padded on the left only: (B, in, L) -> (B, out, L), step t sees <= t."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int):
        super().__init__()
        self.left_pad = (kernel_size - 1) * dilation
        self.conv = weight_norm(nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(h, (self.left_pad, 0)))


class TemporalBlock(nn.Module):
    """Two causal convolutions with ReLU and dropout plus a residual: (B, in, L) -> (B, out, L)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            CausalConv1d(in_channels, out_channels, kernel_size, dilation),
            nn.ReLU(),
            nn.Dropout1d(dropout),  # the paper's spatial dropout: whole channels, (B, out, L)
            CausalConv1d(out_channels, out_channels, kernel_size, dilation),
            nn.ReLU(),
            nn.Dropout1d(dropout),
        )
        # a 1x1 convolution matches channel counts so the residual can be added
        self.downsample = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        residual = h if self.downsample is None else self.downsample(h)
        return torch.relu(self.net(h) + residual)


# panel_loss: M4 Weekly validation OWA 0.796 with MAE, 0.867 with MSE
@register_model("tcn", panel_loss="mae", covariates=COVARIATE_INPUTS,
                search={"out_channels": IntRange(16, 128, log=True), "kernel_size": Choice((2, 3, 5)),
                        "dropout": FloatRange(0.0, 0.3)})
class TCN(nn.Module):
    """Temporal convolutional network: dilated causal residual blocks, head on the last step."""

    def __init__(
        self,
        lookback: int,
        horizon: int,
        n_features: int,
        *,
        out_channels: int = 32,
        kernel_size: int = 3,
        num_levels: int = 0,
        dropout: float = 0.1,
        covariates: Covariates = NO_COVARIATES,
    ):
        super().__init__()
        if out_channels < 1:
            raise ValueError(f"out_channels must be at least 1, not {out_channels}")
        if kernel_size < 2:
            raise ValueError(f"kernel_size must be at least 2 (1 never widens the view), not {kernel_size}")
        if num_levels < 0:
            raise ValueError(f"num_levels must be 0 (choose from the lookback) or positive, not {num_levels}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), not {dropout}")
        self.horizon, self.n_features = horizon, n_features
        self.num_levels = num_levels or levels_for(lookback, kernel_size)
        self.receptive_field = receptive_field(kernel_size, self.num_levels)
        if self.receptive_field < lookback:
            unseen = lookback - self.receptive_field
            warnings.warn(
                f"tcn: num_levels={self.num_levels} with kernel_size={kernel_size} gives a receptive field "
                f"of {self.receptive_field} steps, so the first {unseen} of {lookback} lookback steps are "
                f"unseen; use num_levels={levels_for(lookback, kernel_size)} (or 0) to cover the window",
                UserWarning,
                stacklevel=2,
            )
        self.blocks = nn.ModuleList(
            TemporalBlock(n_features + covariates.per_step if i == 0 else out_channels, out_channels, kernel_size, 2**i, dropout)
            for i in range(self.num_levels)
        )
        self.head = zero_head(nn.Linear(out_channels, horizon * n_features))
        self.step_covariates = StepCovariates(covariates, n_features) if StepCovariates.wanted(covariates) else None

    def forward(self, x: torch.Tensor, *, past: torch.Tensor | None = None, future: torch.Tensor | None = None,
                static: torch.Tensor | None = None) -> torch.Tensor:
        h = step_inputs(x, past, future, static).transpose(1, 2)  # (B, L, C + P + F + S) -> (B, C + P + F + S, L)
        for block in self.blocks:
            h = block(h)  # (B, channels, L)
        # the last step is the only output whose receptive field ends at the forecast origin
        y = self.head(h[:, :, -1]).view(-1, self.horizon, self.n_features)
        if self.step_covariates is not None:
            y = y + self.step_covariates(self.horizon, future, static)
        return y
