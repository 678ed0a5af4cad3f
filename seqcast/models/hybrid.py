"""CNN -> LSTM -> Transformer hybrid: local patterns, then short-range dynamics, then long-range context.

The staged design follows the CNN-LSTM forecasters (e.g. Kim & Cho 2019, "Predicting residential
energy consumption using CNN-LSTM neural networks") with a Transformer encoder (Vaswani et al. 2017)
added on top, as in the CNN-LSTM-attention hybrids common in load and traffic forecasting:

1. Conv1d layers over the window (channels = series) extract local shapes: spikes, ramps, edges;
   max-pooling (``pool_size``, as in Kim & Cho's CNN-LSTM) then shortens the sequence, which is
   where the later stages spend their time (the LSTM is sequential in length, attention quadratic).
2. An LSTM reads the convolved sequence step by step and models short-range dynamics.
3. A Transformer encoder lets every step attend to every other, for dependencies the LSTM's state
   forgets over long windows.
4. A direct head maps the whole sequence to all H x C outputs (see ``cnn.TemporalHead``).

Where seqcast differs from a textbook Transformer: there is no positional encoding, because the
LSTM's outputs already depend on position (each is a summary of the steps before it), so the
attention stage receives order information without one. The head's last layer is zero-initialised,
so under per-window normalisation an untrained model forecasts the level it subtracted. It keeps the
default `last`: on the ETT validation split, `mean` won 4 of 6 cells at L=96 but only 1 of 6 at L=336,
where the model validates best, and summed over all 12 cells `last` is lower (docs/benchmarks.md,
"Defaults that win").
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register_model
from ..search import Choice, FloatRange, IntRange
from ._layers import COVARIATE_INPUTS, NO_COVARIATES, Covariates, StepCovariates, step_inputs
from .cnn import TemporalHead


# attention trains unstably at the training loop's usual 3e-3
@register_model("cnn_lstm_transformer", lr=1e-3, onnx_exporter="torchscript",  # keeps the quantized LSTM
                covariates=COVARIATE_INPUTS,
                search={"conv_channels": IntRange(16, 64, log=True), "hidden_size": IntRange(32, 128, log=True),
                        "d_model": Choice((32, 64, 128)), "dropout": FloatRange(0.0, 0.3)})
class CNNLSTMTransformer(nn.Module):
    """Convolutions, then an LSTM, then a Transformer encoder, with a direct multi-horizon head."""

    def __init__(
        self,
        lookback: int,
        horizon: int,
        n_features: int,
        *,
        conv_channels: int = 32,
        kernel_size: int = 3,
        num_conv_layers: int = 1,
        pool_size: int = 2,
        hidden_size: int = 64,
        num_layers: int = 1,
        d_model: int = 64,
        nhead: int = 4,
        num_encoder_layers: int = 1,
        dim_feedforward: int = 128,
        dropout: float = 0.1,
        covariates: Covariates = NO_COVARIATES,
    ):
        super().__init__()
        sizes = dict(
            conv_channels=conv_channels, kernel_size=kernel_size, num_conv_layers=num_conv_layers,
            pool_size=pool_size, hidden_size=hidden_size, num_layers=num_layers, d_model=d_model,
            nhead=nhead, num_encoder_layers=num_encoder_layers, dim_feedforward=dim_feedforward,
        )  # fmt: skip
        for key, value in sizes.items():
            if value < 1:
                raise ValueError(f"{key} must be at least 1, not {value}")
        if d_model % nhead:
            raise ValueError(f"d_model ({d_model}) must be divisible by nhead ({nhead})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), not {dropout}")

        convs: list[nn.Module] = []
        in_channels = n_features + covariates.per_step
        for _ in range(num_conv_layers):
            # padding="same" keeps length L so every later stage sees one vector per input step
            convs += [nn.Conv1d(in_channels, conv_channels, kernel_size, padding="same"), nn.ReLU()]
            in_channels = conv_channels
        # at least two steps must reach the LSTM, or its recurrent weights never act (h0 is zero);
        # ceil_mode keeps a partial last pool, so ceil(L / pool) steps remain
        pool = max(1, min(pool_size, lookback - 1))
        convs.append(nn.MaxPool1d(pool, ceil_mode=True))
        self.convs = nn.Sequential(*convs)
        steps = -(-lookback // pool)
        self.lstm = nn.LSTM(
            conv_channels,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.project = nn.Linear(hidden_size, d_model)  # LSTM width -> attention width
        layer = nn.TransformerEncoderLayer(
            d_model, nhead, dim_feedforward=dim_feedforward, dropout=dropout, batch_first=True
        )
        # nested tensors only help with padding masks, which fixed-length windows never have
        self.encoder = nn.TransformerEncoder(layer, num_encoder_layers, enable_nested_tensor=False)
        self.head = TemporalHead(steps, horizon, d_model, n_features)
        self.horizon = horizon
        self.step_covariates = StepCovariates(covariates, n_features) if StepCovariates.wanted(covariates) else None

    def forward(self, x: torch.Tensor, *, past: torch.Tensor | None = None, future: torch.Tensor | None = None,
                static: torch.Tensor | None = None) -> torch.Tensor:
        # (B, L, C) -> (B, C, L) for Conv1d -> (B, conv_channels, S) -> (B, S, conv_channels);
        # S = ceil(L / pool) steps after pooling
        h = self.convs(step_inputs(x, past, future, static).transpose(1, 2)).transpose(1, 2)
        h, _ = self.lstm(h)  # (B, S, hidden_size)
        h = self.encoder(self.project(h))  # (B, S, d_model)
        y = self.head(h)  # (B, H, C)
        if self.step_covariates is not None:
            y = y + self.step_covariates(self.horizon, future, static)
        return y
