"""The Transformer (Vaswani et al. 2017, "Attention Is All You Need") as a forecaster.

Encoder-decoder. The encoder reads the L input steps, each embedded as a linear map of its C values
plus a sinusoidal encoding of its position. The decoder holds H query tokens, one per horizon step:
a learned embedding of the step plus the sinusoidal encoding of its position L + h on the same
timeline. Decoder self-attention lets the horizon steps coordinate (left out when H = 1);
cross-attention reads the encoder. One shared, zero-initialised linear head maps each decoder
token to its C outputs.

Covariates: the past ones join the values in the encoder's value embedding; the known-future block
(calendar features, ``fit --calendar``, and future covariates) adds a linear map of the input steps'
values to the encoder tokens and of the forecast steps' values to the decoder queries; the static ones
add one linear map to every token. Calendar features are off by
default because they hurt where the window already shows the cycles: on ETTh1 (one year of hourly
training data, L = 96 covers four days) they raised test MSE at H=24 from 0.031 to 0.035, above
repeat-last-value, while validation loss did not tell the two apart (docs/benchmarks.md, "Defaults
that win"). Turn them on for short windows over long, regular calendars (``--calendar auto``).

Why encoder-decoder and not encoder + flattened head: the decoder's query tokens are where the
known-future calendar features enter (a flattened encoder head never sees them), and the parameter
count stays independent of L x H (a flatten head over L = 336 tokens of width 64 to 96 x 7 outputs
alone would hold 14 M weights).

Where seqcast differs from the paper: the decoder is not autoregressive. Its inputs are learned step
queries, not the previous outputs, so its self-attention is unmasked and all H steps come out of one
forward pass (no compounding errors, no teacher forcing). GELU in the feed-forward block instead of
ReLU; no embedding scaling by sqrt(d_model); defaults sized for a CPU.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register_model
from ..search import Choice, FloatRange, IntRange
from ._layers import (
    COVARIATE_INPUTS, NO_COVARIATES, Covariates, DecoderLayer, EncoderLayer, check_attention_args, recording, sinusoidal_encoding, zero_head,
)


# attention trains unstably at the training loop's usual 3e-3
@register_model("transformer", lr=1e-3, covariates=COVARIATE_INPUTS, explain="attention",
                search={"d_model": Choice((32, 64, 128)), "num_encoder_layers": IntRange(1, 3),
                        "dim_feedforward": Choice((64, 128, 256)), "dropout": FloatRange(0.0, 0.3)})
class Transformer(nn.Module):
    """Transformer encoder-decoder with one query token per horizon step (direct, one pass)."""

    def __init__(
        self,
        lookback: int,
        horizon: int,
        n_features: int,
        *,
        d_model: int = 64,
        nhead: int = 4,
        num_encoder_layers: int = 2,
        num_decoder_layers: int = 1,
        dim_feedforward: int = 128,
        dropout: float = 0.1,
        covariates: Covariates = NO_COVARIATES,
    ):
        super().__init__()
        check_attention_args(
            d_model, nhead, dim_feedforward, dropout,
            num_encoder_layers=num_encoder_layers, num_decoder_layers=num_decoder_layers,
        )
        self.lookback, self.horizon = lookback, horizon
        self.value_embedding = nn.Linear(n_features + covariates.past, d_model)  # values and past covariates
        # the known-future block (calendar features and future covariates), on encoder and decoder tokens
        self.time_embedding = nn.Linear(covariates.future, d_model, bias=False) if covariates.future else None
        self.static_embedding = nn.Linear(covariates.static, d_model, bias=False) if covariates.static else None
        self.step_queries = nn.Parameter(torch.randn(horizon, d_model) * 0.02)  # (H, d_model)
        # (L + H, d_model): positions 0..L-1 for the window, L..L+H-1 for the horizon
        position = sinusoidal_encoding(torch.arange(lookback + horizon), d_model)
        self.register_buffer("position", position, persistent=False)
        self.encoder = nn.ModuleList(
            EncoderLayer(d_model, nhead, dim_feedforward, dropout) for _ in range(num_encoder_layers)
        )
        self.decoder = nn.ModuleList(
            DecoderLayer(d_model, nhead, dim_feedforward, dropout, use_self_attention=horizon > 1)
            for _ in range(num_decoder_layers)
        )
        self.drop = nn.Dropout(dropout)
        self.head = zero_head(nn.Linear(d_model, n_features))

    def forward(self, x: torch.Tensor, *, past: torch.Tensor | None = None, future: torch.Tensor | None = None,
                static: torch.Tensor | None = None) -> torch.Tensor:
        L = self.lookback
        values = x if past is None else torch.cat([x, past], dim=-1)  # (B, L, C + P)
        source = self.value_embedding(values) + self.position[:L]  # (B, L, d_model)
        target = self.step_queries + self.position[L:]  # (H, d_model), broadcast over B below
        target = target.expand(x.shape[0], -1, -1)  # (B, H, d_model)
        if self.time_embedding is not None:
            # (B, L + H, F): the input steps' values to the encoder, the forecast steps' to the decoder
            known = self.time_embedding(future)
            source, target = source + known[:, :L], target + known[:, L:]
        if self.static_embedding is not None:
            constant = self.static_embedding(static)[:, None, :]  # (B, 1, d_model), on every token
            source, target = source + constant, target + constant
        memory = self.drop(source)
        for layer in self.encoder:
            memory = layer(memory)
        out = self.drop(target)
        for layer in self.decoder:
            out = layer(out, memory)
        return self.head(out)  # (B, H, C)

    def explain(self, x: torch.Tensor, *, past: torch.Tensor | None = None, future: torch.Tensor | None = None,
                static: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Head-averaged attention over the L input steps, recorded during one eval ``forward``.

        "{i}.self_attention": encoder layer i, (B, L, L) (Q = L, query i is input step i);
        "{i}.cross_attention": decoder layer i, (B, H, L) (Q = H, query h is horizon step h).
        Decoder self-attention (horizon over horizon) is not included: it never touches the input.
        """
        with recording(self):  # encoder tokens are the input steps themselves: no mapping needed
            self(x, past=past, future=future, static=static)
            maps = {f"{i}.self_attention": layer.attention.last_weights for i, layer in enumerate(self.encoder)}
            for i, layer in enumerate(self.decoder):
                maps[f"{i}.cross_attention"] = layer.cross_attention.last_weights
        return maps
