"""LSTM encoder with attention over its hidden states ("LSTMa").

After Bahdanau, Cho & Bengio (2015, "Neural Machine Translation by Jointly Learning to Align and
Translate"), scored the multiplicative way of Luong, Pham & Manning (2015, "Effective Approaches to
Attention-based Neural Machine Translation", the "general" score q^T W_a h_t); it is the LSTMa
baseline of the Informer paper's tables (Zhou et al. 2021).

An LSTM reads the window; for each horizon step h a query q_h = W_s s_L + e_h is formed from the
encoder's final state s_L and a learned embedding e_h of that step. Its attention over the L hidden
states gives a context c_h; Luong's attentional state tanh(W_c [c_h; q_h]) goes through one shared
linear head to the C outputs of step h.

Where seqcast differs: the papers decode autoregressively, feeding each prediction back into a
decoder LSTM; here all H steps are decoded at once from their learned step queries (direct
multi-horizon: no compounding errors, one forward pass, and the per-step attention is still
separate). The head is zero-initialised so that with per-window normalisation an untrained model
forecasts the last value. Multiplicative rather than additive scoring keeps memory at (B, H, L)
instead of (B, H, L, hidden), which matters at lookback 336+ and horizon 96+.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..registry import register_model
from ..search import FloatRange, IntRange
from ._layers import COVARIATE_INPUTS, NO_COVARIATES, Covariates, StepCovariates, step_inputs, zero_head


# panel_loss: M4 Weekly validation OWA 0.829 with MAE, 0.940 with MSE
@register_model("lstm_attention", explain="attention", panel_loss="mae",
                onnx_exporter="torchscript", covariates=COVARIATE_INPUTS,  # torchscript keeps the quantized LSTM
                search={"hidden_size": IntRange(16, 128, log=True), "num_layers": IntRange(1, 2),
                        "dropout": FloatRange(0.0, 0.3)})
class LSTMAttention(nn.Module):
    """LSTM encoder with Luong attention from a learned query per horizon step (LSTMa)."""

    def __init__(
        self,
        lookback: int,
        horizon: int,
        n_features: int,
        *,
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.0,
        covariates: Covariates = NO_COVARIATES,
    ):
        super().__init__()
        if hidden_size < 1 or num_layers < 1:
            raise ValueError("hidden_size and num_layers must be at least 1")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), not {dropout}")
        self.encoder = nn.LSTM(
            n_features + covariates.per_step, hidden_size, num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0
        )
        self.step_queries = nn.Parameter(torch.randn(horizon, hidden_size) * 0.1)  # e_h, (H, hidden)
        self.state_to_query = nn.Linear(hidden_size, hidden_size)  # W_s
        self.score = nn.Linear(hidden_size, hidden_size, bias=False)  # W_a of the "general" score
        self.combine = nn.Linear(2 * hidden_size, hidden_size)  # W_c
        self.drop = nn.Dropout(dropout)
        self.head = zero_head(nn.Linear(hidden_size, n_features))
        self.step_covariates = StepCovariates(covariates, n_features) if StepCovariates.wanted(covariates) else None
        self.horizon = horizon
        self.record = False
        self._weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, *, past: torch.Tensor | None = None, future: torch.Tensor | None = None,
                static: torch.Tensor | None = None) -> torch.Tensor:
        states, (h_n, _) = self.encoder(step_inputs(x, past, future, static))  # (B, L, hidden), (layers, B, hidden)
        query = self.state_to_query(h_n[-1]).unsqueeze(1) + self.step_queries  # (B, H, hidden)
        scores = query @ self.score(states).transpose(1, 2) / math.sqrt(states.shape[-1])  # (B, H, L)
        weights = scores.softmax(dim=-1)
        if self.record:
            self._weights = weights.detach()
        context = weights @ states  # (B, H, hidden)
        attended = torch.tanh(self.combine(torch.cat([context, query], dim=-1)))  # (B, H, hidden)
        y = self.head(self.drop(attended))  # (B, H, C)
        if self.step_covariates is not None:
            y = y + self.step_covariates(self.horizon, future, static)
        return y

    def explain(self, x: torch.Tensor, *, past: torch.Tensor | None = None, future: torch.Tensor | None = None,
                static: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """{"0.attention": (B, H, L)}: row h is horizon step h's attention over the L input steps.

        Q = H (the queries are horizon steps). Runs ``forward`` in eval mode, without gradient,
        recording the weights it computes.
        """
        was_training = self.training
        self.eval()
        self.record = True
        try:
            with torch.no_grad():
                self(x, past=past, future=future, static=static)
            return {"0.attention": self._weights}
        finally:
            self.record, self._weights = False, None
            self.train(was_training)
