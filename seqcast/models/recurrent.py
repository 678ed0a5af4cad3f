"""The recurrent family: vanilla RNN, LSTM, GRU, bidirectional and stacked LSTM.

Elman (1990) RNN; Hochreiter & Schmidhuber (1997) LSTM; Cho et al. (2014) GRU; bidirectional
recurrence after Schuster & Paliwal (1997). All are direct multi-horizon forecasters: the encoder
reads the window, and one linear head maps the final hidden state(s) to all H x C outputs at once
(no autoregressive decoding, so errors do not compound and prediction is one forward pass).

Why the vanilla RNN forgets: its state is squashed through tanh at every step, so the gradient of
the loss with respect to inputs k steps back is a product of k Jacobians whose norm usually shrinks
geometrically; LSTM and GRU carry an additively updated cell state behind gates, which keeps that
product close to one for as long as the forget gate stays open.

Differences from the papers: the head is zero-initialised, so that with seqcast's per-window
normalisation an untrained model forecasts exactly the last value; `bidirectional` concatenates the
last layer's final forward state with its final backward state (the one that has read the whole
window), not the output at the last step.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register_model
from . import zero_head

_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


@register_model("rnn", cell="rnn")
@register_model("lstm", cell="lstm")
@register_model("gru", cell="gru")
@register_model("bilstm", cell="lstm", bidirectional=True)
@register_model("stacked_lstm", cell="lstm", num_layers=3)
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
    ):
        super().__init__()
        if cell not in _CELLS:
            raise ValueError(f"cell must be one of {', '.join(_CELLS)}, not {cell!r}")
        if hidden_size < 1 or num_layers < 1:
            raise ValueError("hidden_size and num_layers must be at least 1")
        self.horizon, self.n_features = horizon, n_features
        self.directions = 2 if bidirectional else 1
        self.encoder = _CELLS[cell](
            input_size=n_features,
            hidden_size=hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.head = zero_head(nn.Linear(hidden_size * self.directions, horizon * n_features))

    def forward(self, x: torch.Tensor, time_features: torch.Tensor | None = None) -> torch.Tensor:
        _, state = self.encoder(x)  # x: (B, L, C)
        h_n = state[0] if isinstance(state, tuple) else state  # (layers * dirs, B, hidden)
        last = h_n[-self.directions :].transpose(0, 1).reshape(x.shape[0], -1)  # (B, hidden * dirs)
        return self.head(last).view(-1, self.horizon, self.n_features)
