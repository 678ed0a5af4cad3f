"""The recurrent family: vanilla RNN, LSTM, GRU, bidirectional and stacked LSTM.

Elman (1990) RNN; Hochreiter & Schmidhuber (1997) LSTM; Cho et al. (2014) GRU; bidirectional
recurrence after Schuster & Paliwal (1997). All are direct multi-horizon forecasters: the encoder
reads the window, and one linear head maps the final hidden state(s) to all H x C outputs at once
(no autoregressive decoding, so errors do not compound and prediction is one forward pass).

Why the vanilla RNN forgets: its state is squashed through tanh at every step, so the gradient of
the loss with respect to inputs k steps back is a product of k Jacobians whose norm usually shrinks
geometrically; LSTM and GRU carry an additively updated cell state behind gates, which keeps that
product close to one for as long as the forget gate stays open.

Window normalisation: these models subtract the window's mean, not its last value
(declared ``window_norm="mean"``). Under "last" every input is an offset from the final step, so the
oldest steps, the ones a recurrent state carries furthest, are also the largest inputs, and the last
input is always zero. Centred on the mean, validation MSE was lower for rnn, lstm, gru and
stacked_lstm in most ETT cells tried (docs/benchmarks.md, "Defaults that win"); the vanilla RNN gained
most (ETTh1 H=96 test MSE 0.0718 -> 0.0566, where repeat-last scores 0.0693).

Differences from the papers: the head is zero-initialised, so that with seqcast's per-window
normalisation an untrained model forecasts exactly the window's level (its mean, by default);
`bidirectional` concatenates the last layer's final forward state with its final backward state
(the one that has read the whole window), not the output at the last step.

``explain`` (behind ``seqcast explain``; declared for the gated cells, not the vanilla RNN) re-runs
the cell equations from the encoder's own weights, step by step, and returns the mean gate values;
``recompute`` also returns the hidden states, which the tests check against torch's LSTM/GRU
output, so the gates shown are the real ones.

Covariates: the encoder reads the past covariates, the known-future ones of the input steps and the
static ones as extra input channels beside the values; each forecast step's own known-future and
static values reach it through a small MLP added to the head's forecast (``StepCovariates``), the
decoder side a direct head has.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register_model
from ..search import FloatRange, IntRange
from ._layers import (COVARIATE_INPUTS, NO_COVARIATES, Covariates, StepCovariates, recompute_gates, step_inputs,
                      zero_head)

_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


# What `seqcast tune` varies: the width, and the depth where the preset leaves it open.
SEARCH = {"hidden_size": IntRange(16, 128, log=True), "dropout": FloatRange(0.0, 0.3)}
DEEPER = {**SEARCH, "num_layers": IntRange(1, 3)}


# window_norm="mean": see the module docstring; the vanilla RNN has no gates to explain. ONNX export through
# TorchScript: 0.02-0.1 s, where dynamo took 2-10 s and unrolled the vanilla RNN over its 96 steps
# (docs/benchmarks.md, "Edge")
# On a panel (M4 Weekly's validation holdout, OWA): rnn 0.870 with window norm last against 1.034 with mean;
# MAE for bilstm (0.839 against 0.863) and stacked_lstm (0.900 against 0.907); MSE for lstm (0.841 against
# 0.884) and gru (0.882 against 0.899).
@register_model("rnn", preset={"cell": "rnn"}, window_norm="mean", panel_window_norm="last", search=DEEPER,
                onnx_exporter="torchscript", covariates=COVARIATE_INPUTS)
@register_model("lstm", preset={"cell": "lstm"}, window_norm="mean", explain="gates", search=DEEPER,
                onnx_exporter="torchscript", covariates=COVARIATE_INPUTS)
@register_model("gru", preset={"cell": "gru"}, window_norm="mean", explain="gates", search=DEEPER,
                onnx_exporter="torchscript", covariates=COVARIATE_INPUTS)
@register_model("bilstm", preset={"cell": "lstm", "bidirectional": True}, window_norm="mean", explain="gates",
                panel_loss="mae", search=DEEPER, onnx_exporter="torchscript", covariates=COVARIATE_INPUTS)
@register_model("stacked_lstm", preset={"cell": "lstm", "num_layers": 3}, window_norm="mean", explain="gates",
                panel_loss="mae", search=SEARCH, onnx_exporter="torchscript", covariates=COVARIATE_INPUTS)
class Recurrent(nn.Module):
    """Recurrent encoder (RNN, LSTM or GRU) with a direct multi-horizon linear head."""

    def __init__(
        self,
        lookback: int,
        horizon: int,
        n_features: int,
        *,
        cell: str = "lstm",
        hidden_size: int = 32,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        covariates: Covariates = NO_COVARIATES,
    ):
        super().__init__()
        if cell not in _CELLS:
            raise ValueError(f"cell must be one of {', '.join(_CELLS)}, not {cell!r}")
        if hidden_size < 1 or num_layers < 1:
            raise ValueError("hidden_size and num_layers must be at least 1")
        self.horizon, self.n_features, self.cell = horizon, n_features, cell
        self.directions = 2 if bidirectional else 1
        self.encoder = _CELLS[cell](
            input_size=n_features + covariates.per_step,
            hidden_size=hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.head = zero_head(nn.Linear(hidden_size * self.directions, horizon * n_features))
        self.step_covariates = StepCovariates(covariates, n_features) if StepCovariates.wanted(covariates) else None

    def forward(self, x: torch.Tensor, *, past: torch.Tensor | None = None, future: torch.Tensor | None = None,
                static: torch.Tensor | None = None) -> torch.Tensor:
        _, state = self.encoder(step_inputs(x, past, future, static))  # (B, L, C + P + F + S)
        h_n = state[0] if isinstance(state, tuple) else state  # (layers * dirs, B, hidden)
        last = h_n[-self.directions :].transpose(0, 1).reshape(x.shape[0], -1)  # (B, hidden * dirs)
        y = self.head(last).view(-1, self.horizon, self.n_features)
        if self.step_covariates is not None:
            y = y + self.step_covariates(self.horizon, future, static)
        return y

    def recompute(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """``recompute_gates`` of the encoder on its input x (B, L, C + P + F + S: ``step_inputs``)."""
        return recompute_gates(self.encoder, self.cell, x)

    def explain(self, x: torch.Tensor, *, past: torch.Tensor | None = None, future: torch.Tensor | None = None,
                static: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """{"{i}[_reverse].{gate}": (B, L)}: each gate's mean over hidden units at every input step.

        LSTM: forget, input, output; GRU: update (z, the share of the old state kept), reset.
        """
        gates, _ = self.recompute(step_inputs(x, past, future, static))
        return {name: values.mean(dim=-1) for name, values in gates.items()}
