"""PatchTST (Nie et al. 2023, "A Time Series is Worth 64 Words: Long-term Forecasting with
Transformers", ICLR).

Each channel's window is cut into overlapping patches (``patch_len`` steps every ``stride`` steps,
after repeating the last value ``stride`` times at the end, as the paper's "end" padding) and each
patch is one token: N = (L + stride - patch_len) // stride + 1 tokens instead of L. Channels are
independent: they are folded into the batch, share every weight and never attend to each other.
Instance normalisation (RevIN, Kim et al. 2022) happens inside the model: each channel of each
window is standardised, with a learnable per-channel affine, and the forecast is de-standardised.
Tokens = linear patch embedding + learned positional embedding; a Transformer encoder; a "flatten
head" maps the N x d_model outputs of a channel to its H forecasts.

Where seqcast differs: LayerNorm instead of the paper's BatchNorm in the encoder (a forecast must not
depend on the other windows in its batch, and save -> load -> forecast must be exact); post-norm
layers with GELU; defaults sized for a CPU (d_model 64, 4 heads, 2 layers; the paper: 128, 16, 3).
For a lookback shorter than ``patch_len`` the patch shrinks to the lookback (and the stride to the
patch), so any L >= 2 works. The head is zero-initialised, so an untrained model forecasts each
window's mean (RevIN) whatever seqcast's window normalisation; with ``revin=False``, the window's level.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register_model
from ..search import Choice, FloatRange, IntRange
from ._layers import NO_COVARIATES, Covariates, EncoderLayer, StepCovariates, check_attention_args, patch_cover, recording, to_steps, zero_head


# with its own RevIN (the default) an untrained model forecasts the window's mean, whatever the window norm
# panel_loss: M4 Weekly's validation holdout gave OWA 0.760 with MAE, 0.830 with MSE
# covariates: future and static only, through a term per forecast step (StepCovariates): the patch encoder is
# channel-independent, so past covariates as channels would never reach the target's forecast
@register_model("patchtst", explain="attention", starts_at_level=False, panel_loss="mae", covariates=("future", "static"),
                search={"patch_len": Choice((8, 16, 24)), "d_model": Choice((32, 64, 128)),
                        "num_layers": IntRange(1, 3), "dropout": FloatRange(0.0, 0.3)})
class PatchTST(nn.Module):
    """PatchTST: channel-independent Transformer over patches, with instance normalisation."""

    def __init__(
        self,
        lookback: int,
        horizon: int,
        n_features: int,
        *,
        patch_len: int = 16,
        stride: int = 8,
        d_model: int = 64,
        nhead: int = 4,
        num_layers: int = 2,
        dim_feedforward: int = 128,
        dropout: float = 0.1,
        revin: bool = True,
        covariates: Covariates = NO_COVARIATES,
    ):
        super().__init__()
        check_attention_args(d_model, nhead, dim_feedforward, dropout, num_layers=num_layers)
        if patch_len < 1 or stride < 1:
            raise ValueError(f"patch_len and stride must be at least 1, not {patch_len} and {stride}")
        if stride > patch_len:
            raise ValueError(f"stride ({stride}) must not exceed patch_len ({patch_len}): steps would be skipped")
        self.lookback, self.horizon, self.n_features = lookback, horizon, n_features
        self.patch_len = min(patch_len, lookback)
        self.stride = min(stride, self.patch_len)
        self.n_patches = (lookback + self.stride - self.patch_len) // self.stride + 1
        self.revin = revin
        if revin:  # RevIN's learnable affine, one pair per channel
            self.revin_weight = nn.Parameter(torch.ones(n_features))
            self.revin_bias = nn.Parameter(torch.zeros(n_features))
        self.patch_embedding = nn.Linear(self.patch_len, d_model)
        self.position = nn.Parameter(torch.empty(self.n_patches, d_model).uniform_(-0.02, 0.02))  # (N, d)
        self.encoder = nn.ModuleList(
            EncoderLayer(d_model, nhead, dim_feedforward, dropout) for _ in range(num_layers)
        )
        self.drop = nn.Dropout(dropout)
        self.head = zero_head(nn.Linear(self.n_patches * d_model, horizon))
        self.step_covariates = StepCovariates(covariates, n_features) if StepCovariates.wanted(covariates) else None

    def forward(self, x: torch.Tensor, *, past: torch.Tensor | None = None, future: torch.Tensor | None = None,
                static: torch.Tensor | None = None) -> torch.Tensor:
        B, L, C = x.shape
        if self.revin:  # statistics per window and channel, (B, 1, C); gradient flows through them
            mean = x.mean(dim=1, keepdim=True)
            std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + 1e-5)
            x = (x - mean) / std * self.revin_weight + self.revin_bias
        series = x.transpose(1, 2).reshape(B * C, L)  # channel independence: (B * C, L)
        series = torch.cat([series, series[:, -1:].expand(-1, self.stride)], dim=1)  # end padding
        patches = series.unfold(1, self.patch_len, self.stride)  # (B * C, N, patch_len)
        h = self.drop(self.patch_embedding(patches) + self.position)  # (B * C, N, d)
        for layer in self.encoder:
            h = layer(h)
        y = self.head(self.drop(h.flatten(1)))  # (B * C, H)
        y = y.view(B, C, self.horizon).transpose(1, 2)  # (B, H, C)
        if self.revin:
            y = (y - self.revin_bias) / (self.revin_weight + 1e-10) * std + mean
        if self.step_covariates is not None:  # in the window's units, not RevIN's: a covariate's effect has one size
            y = y + self.step_covariates(self.horizon, future, static)
        return y

    def explain(self, x: torch.Tensor, *, past: torch.Tensor | None = None, future: torch.Tensor | None = None,
                static: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """{"{i}.self_attention": (B, L, L)}: Q = L. Patch-over-patch attention, averaged over heads and over
        channels, with each patch's weight spread evenly over the steps it covers (end padding counts
        toward the last step); a step's row averages the rows of the patches covering it, weighted by
        overlap. Recorded during one eval ``forward`` without gradient."""
        cover = patch_cover(self.lookback, self.patch_len, self.stride, self.n_patches)  # (N, L)
        with recording(self):
            self(x, past=past, future=future, static=static)
            maps = {}
            for i, layer in enumerate(self.encoder):
                weights = layer.attention.last_weights  # (B * C, N, N)
                weights = weights.view(x.shape[0], self.n_features, self.n_patches, self.n_patches).mean(1)
                maps[f"{i}.self_attention"] = to_steps(weights, cover, cover)
        return maps
