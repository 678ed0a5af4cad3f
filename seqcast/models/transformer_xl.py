"""Transformer-XL (Dai et al. 2019, "Transformer-XL: Attentive Language Models Beyond a Fixed-Length
Context") as a forecaster over very long windows.

The window (B, L, C) is cut into segments of ``segment_len`` steps (counted back from the end, so the
final segment is whole and the first may be shorter); one token per step, embedded linearly. Each
segment attends, in every layer, to its own tokens plus the cached layer inputs of the previous
``mem_len`` segments. The cache is detached (the paper's stop-gradient SG(.)), so no gradient reaches
earlier segments; their forward passes therefore run without building a graph at all, and compute
and memory grow linearly with L (never an L x L matrix). A zero-initialised linear head reads the
final segment's last-layer states, flattened, and outputs all H x C values at once.

Relative positions, as in the paper: score(i, j) = (q_i + u) . k_j + (q_i + v) . W_R R_{i-j}, with R
the sinusoidal embedding of the distance i - j, W_R a per-layer projection and u, v global (shared by
all layers) per-head bias vectors. There is no absolute position anywhere.

Where seqcast differs: attention within a segment is full, not causal (the window is all past, so a
step may read later steps of its segment; only the forecast is in the future), which makes distances
i - j negative too, so R covers -(S - 1) .. M + S - 1 and scores are gathered by distance instead of
the paper's relative-shift trick; ``mem_len`` counts segments, not tokens; the memory lives inside
one forward call (no state between calls: each window is one independent sequence); post-norm layers
with GELU. LayerNorm only (no BatchNorm), so a forecast never depends on the rest of its batch.

Window normalisation: each window is centred on its mean (declared ``window_norm="mean"``), so an
untrained model forecasts the window's mean. On the ETT validation split, mean was lower than last in
4 of 6 cells (it lost at H=24 on both datasets) and in summed validation MSE (docs/benchmarks.md,
"Defaults that win").
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..registry import register_model
from ..search import Choice, FloatRange, IntRange
from ._layers import COVARIATE_INPUTS, NO_COVARIATES, Covariates, StepCovariates, step_inputs, check_attention_args, feed_forward, sinusoidal_encoding, zero_head


class RelativeAttention(nn.Module):
    """Multi-head attention of a segment over [memory; segment] with relative positions."""

    def __init__(self, d_model: int, nhead: int, dropout: float):
        super().__init__()
        self.nhead, self.head_dim = nhead, d_model // nhead
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.r_proj = nn.Linear(d_model, d_model, bias=False)  # W_{k,R}
        self.out_proj = nn.Linear(d_model, d_model, bias=False)
        self.drop = nn.Dropout(dropout)

    def forward(
        self, h: torch.Tensor, memory: torch.Tensor, relative: torch.Tensor, distance: torch.Tensor,
        u: torch.Tensor, v: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """h (B, S, d), memory (B, M, d), relative (P, d) embeddings of distances -(S-1)..M+S-1,
        distance (S, M + S) index into them. Returns (B, S, d) and head-averaged weights (B, S, M+S)."""
        B, S, d = h.shape
        heads = lambda t: t.view(B, t.shape[1], self.nhead, self.head_dim).transpose(1, 2)  # (B, h, T, dh)
        q, k, val = self.qkv(torch.cat([memory, h], dim=1)).chunk(3, dim=-1)
        q, k, val = heads(q[:, -S:]), heads(k), heads(val)  # queries: the segment only
        r = self.r_proj(relative).view(-1, self.nhead, self.head_dim).transpose(0, 1)  # (h, P, dh)
        content = (q + u[:, None]) @ k.transpose(-2, -1)  # terms (a) + (c): (B, h, S, M+S)
        position = (q + v[:, None]) @ r.transpose(-2, -1)  # terms (b) + (d) per distance: (B, h, S, P)
        position = position.gather(-1, distance.expand(B, self.nhead, -1, -1))  # (B, h, S, M+S)
        weights = ((content + position) / math.sqrt(self.head_dim)).softmax(dim=-1)
        out = (self.drop(weights) @ val).transpose(1, 2).reshape(B, S, d)
        return self.out_proj(out), weights.mean(dim=1)


class XLLayer(nn.Module):
    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float):
        super().__init__()
        self.attention = RelativeAttention(d_model, nhead, dropout)
        self.feed_forward = feed_forward(d_model, dim_feedforward)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, h, memory, relative, distance, u, v):
        attended, weights = self.attention(h, memory, relative, distance, u, v)
        h = self.norm1(h + self.drop(attended))
        return self.norm2(h + self.drop(self.feed_forward(h))), weights


# attention trains unstably at the training loop's usual 3e-3; "mean": see the module docstring
@register_model("transformer_xl", lr=1e-3, window_norm="mean", explain="attention", covariates=COVARIATE_INPUTS,
                search={"d_model": Choice((32, 64, 128)), "num_layers": IntRange(1, 3),
                        "dim_feedforward": Choice((64, 128, 256)), "dropout": FloatRange(0.0, 0.3)})
class TransformerXL(nn.Module):
    """Transformer-XL: segment recurrence with detached memory and relative positions."""

    def __init__(
        self,
        lookback: int,
        horizon: int,
        n_features: int,
        *,
        d_model: int = 64,
        nhead: int = 4,
        num_layers: int = 2,
        dim_feedforward: int = 128,
        dropout: float = 0.1,
        segment_len: int = 24,
        mem_len: int = 2,
        covariates: Covariates = NO_COVARIATES,
    ):
        super().__init__()
        check_attention_args(d_model, nhead, dim_feedforward, dropout, num_layers=num_layers, segment_len=segment_len)
        if mem_len < 0:
            raise ValueError(f"mem_len (previous segments kept as memory) must be at least 0, not {mem_len}")
        self.lookback, self.horizon, self.n_features = lookback, horizon, n_features
        self.d_model, self.mem_len = d_model, mem_len
        self.segment_len = min(segment_len, lookback)  # the final segment is always this long
        self.value_embedding = nn.Linear(n_features + covariates.per_step, d_model)
        self.u = nn.Parameter(torch.randn(nhead, d_model // nhead) * 0.02)  # global content bias
        self.v = nn.Parameter(torch.randn(nhead, d_model // nhead) * 0.02)  # global position bias
        self.layers = nn.ModuleList(XLLayer(d_model, nhead, dim_feedforward, dropout) for _ in range(num_layers))
        self.drop = nn.Dropout(dropout)
        self.head = zero_head(nn.Linear(self.segment_len * d_model, horizon * n_features))
        self.step_covariates = StepCovariates(covariates, n_features) if StepCovariates.wanted(covariates) else None

    def _segments(self) -> list[tuple[int, int]]:
        ends = range(self.lookback, 0, -self.segment_len)
        return [(max(0, end - self.segment_len), end) for end in reversed(ends)]

    def _relative(self, memory_len: int, segment_len: int, cache: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings of distances -(S-1)..M+S-1, (P, d), and the (S, M+S) index of query i, key j."""
        if (memory_len, segment_len) not in cache:
            distances = torch.arange(-(segment_len - 1), memory_len + segment_len)
            query = torch.arange(segment_len)[:, None] + memory_len  # absolute index among M+S keys
            index = query - torch.arange(memory_len + segment_len)[None, :] + segment_len - 1
            cache[(memory_len, segment_len)] = (
                sinusoidal_encoding(distances, self.d_model).to(self.u), index.to(self.u.device)
            )
        return cache[(memory_len, segment_len)]

    def encode(self, x: torch.Tensor, maps: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Final segment's last-layer states (B, S, d). With ``maps`` (one (B, L, L) zero tensor per
        layer), each segment's attention rows are written onto the input steps they read."""
        memories: list[list[torch.Tensor]] = [[] for _ in self.layers]  # per layer: (B, S_k, d) inputs
        cache: dict = {}
        segments = self._segments()
        grad = torch.is_grad_enabled()
        for index, (start, end) in enumerate(segments):
            # memory is detached, so only the final segment can receive gradient: skip the graph elsewhere
            with torch.set_grad_enabled(grad and index == len(segments) - 1):
                h = self.drop(self.value_embedding(x[:, start:end]))  # (B, S, d)
                for n, layer in enumerate(self.layers):
                    memory = torch.cat(memories[n], dim=1) if memories[n] else h[:, :0]  # (B, M, d)
                    if self.mem_len:
                        memories[n] = (memories[n] + [h.detach()])[-self.mem_len :]
                    relative, distance = self._relative(memory.shape[1], end - start, cache)
                    h, weights = layer(h, memory, relative, distance, self.u, self.v)
                    if maps is not None:
                        maps[n][:, start:end, start - memory.shape[1] : end] = weights
        return h

    def forward(self, x: torch.Tensor, *, past: torch.Tensor | None = None, future: torch.Tensor | None = None,
                static: torch.Tensor | None = None) -> torch.Tensor:
        h = self.encode(step_inputs(x, past, future, static))  # (B, S, d)
        y = self.head(h.flatten(1)).view(-1, self.horizon, self.n_features)  # (B, H, C)
        if self.step_covariates is not None:
            y = y + self.step_covariates(self.horizon, future, static)
        return y

    def explain(self, x: torch.Tensor, *, past: torch.Tensor | None = None, future: torch.Tensor | None = None,
                static: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """{"{n}.self_attention": (B, L, L)}: Q = L, row t is step t's attention over its own segment and its
        memory (zero elsewhere; each row sums to 1), averaged over heads. Runs the forward pass's
        ``encode`` in eval mode without gradient. Memory O(L^2) for the maps themselves."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                maps = [x.new_zeros(x.shape[0], self.lookback, self.lookback) for _ in self.layers]
                self.encode(step_inputs(x, past, future, static), maps)
        finally:
            self.train(was_training)
        return {f"{n}.self_attention": m for n, m in enumerate(maps)}
