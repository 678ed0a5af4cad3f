"""The Transformer (Vaswani et al. 2017, "Attention Is All You Need") as a forecaster.

Encoder-decoder. The encoder reads the L input steps, each embedded as a linear map of its C values
plus a sinusoidal encoding of its position. The decoder holds H query tokens, one per horizon step:
a learned embedding of the step plus the sinusoidal encoding of its position L + h on the same
timeline. Decoder self-attention lets the horizon steps coordinate (left out when H = 1);
cross-attention reads the encoder. One shared, zero-initialised linear head maps each decoder
token to its C outputs.

Calendar features (``calendar=True``, off by default) add a linear map of the past steps' calendar
to the encoder tokens and of the future steps' calendar to the decoder queries. They are off by
default because they hurt where the window already shows the cycles: on ETTh1 (one year of hourly
training data, L = 96 covers four days) they raised test MSE at H=24 from 0.031 to 0.035, above
repeat-last-value, while validation loss did not tell the two apart (docs/benchmarks.md, "Defaults
that win"). Turn them on for short windows over long, regular calendars (``-p calendar=true``).

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
    N_TIME_FEATURES, DecoderLayer, EncoderLayer, check_attention_args, recording, sinusoidal_encoding, zero_head,
)


# attention trains unstably at the training loop's usual 3e-3
@register_model("transformer", lr=1e-3, calendar=True, explain="attention",
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
        calendar: bool = False,
    ):
        super().__init__()
        check_attention_args(
            d_model, nhead, dim_feedforward, dropout,
            num_encoder_layers=num_encoder_layers, num_decoder_layers=num_decoder_layers,
        )
        self.lookback, self.horizon = lookback, horizon
        self.value_embedding = nn.Linear(n_features, d_model)
        self.time_embedding = nn.Linear(N_TIME_FEATURES, d_model, bias=False) if calendar else None
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

    def forward(self, x: torch.Tensor, time_features: torch.Tensor | None = None) -> torch.Tensor:
        L = self.lookback
        source = self.value_embedding(x) + self.position[:L]  # (B, L, d_model)
        target = self.step_queries + self.position[L:]  # (H, d_model), broadcast over B below
        target = target.expand(x.shape[0], -1, -1)  # (B, H, d_model)
        if self.time_embedding is not None and time_features is not None:
            # (B, L + H, F): past calendar to the encoder, future to the decoder
            calendar = self.time_embedding(time_features)
            source, target = source + calendar[:, :L], target + calendar[:, L:]
        memory = self.drop(source)
        for layer in self.encoder:
            memory = layer(memory)
        out = self.drop(target)
        for layer in self.decoder:
            out = layer(out, memory)
        return self.head(out)  # (B, H, C)

    def explain(self, x: torch.Tensor, time_features: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Head-averaged attention over the L input steps, recorded during one eval ``forward``.

        "{i}.self_attention": encoder layer i, (B, L, L) (Q = L, query i is input step i);
        "{i}.cross_attention": decoder layer i, (B, H, L) (Q = H, query h is horizon step h).
        Decoder self-attention (horizon over horizon) is not included: it never touches the input.
        """
        with recording(self):  # encoder tokens are the input steps themselves: no mapping needed
            self(x, time_features)
            maps = {f"{i}.self_attention": layer.attention.last_weights for i, layer in enumerate(self.encoder)}
            for i, layer in enumerate(self.decoder):
                maps[f"{i}.cross_attention"] = layer.cross_attention.last_weights
        return maps
