"""Shared blocks for seqcast's model families (private: not itself a model family).

What lives here, and why it is shared:

- ``zero_head``, the forecast-head initialisation most families use;
- ``Covariates``, the widths of the contract's covariate inputs a model is built for, and the three
  ways a family takes them: ``step_inputs`` (extra channels at every input step), ``flat_inputs`` (one
  vector per window, for the fully connected families) and ``StepCovariates`` (each forecast step's
  known-future and static values, added to that step's forecast);
- ``full_attention`` and ``prob_sparse_attention`` (Zhou et al. 2021, Informer) as pure functions on
  (B, heads, T, d) tensors, so the mechanisms can be tested on their own;
- ``MultiHeadAttention``, which can record its head-averaged weights (the ``record`` flag) so each
  model's ``explain`` runs the very code of ``forward`` instead of a reimplementation;
- post-norm ``EncoderLayer`` / ``DecoderLayer`` after Vaswani et al. (2017), used by the transformer,
  Informer and PatchTST (GELU in the feed-forward block, as Informer and PatchTST use);
- ``sinusoidal_encoding`` (also used for Transformer-XL's relative distances);
- ``interval_cover`` / ``patch_cover`` / ``to_steps``: spread attention over token positions (patches,
  distilled positions) back onto the L input steps, so every map row sums to 1 over the window.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import COVARIATE_INPUTS  # noqa: F401  (the contract's covariate inputs, for the families)


def zero_head(layer: nn.Linear) -> nn.Linear:
    """Zero a forecast head so that, under window normalisation, training starts from the baseline."""
    nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


# torch's row order of the stacked gate weights (weight_ih_l0 is (len(gates) * hidden, input)), and the
# gates ``explain`` shows
GATES = {"lstm": ("input", "forget", "cell", "output"), "gru": ("reset", "update", "new")}
SHOWN_GATES = {"lstm": ("forget", "input", "output"), "gru": ("update", "reset")}


@torch.no_grad()
def recompute_gates(encoder: nn.RNNBase, cell: str, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Re-run the cell equations of torch's LSTM or GRU ``encoder`` (``cell``) on its input x (B, L, in),
    in eval mode (no dropout between layers).

    Returns ({"{i}[_reverse].{gate}": (B, L, hidden)} sigmoid gate values, each aligned with
    the input step it was computed at; last layer's output (B, L, hidden * dirs), which equals
    ``encoder(x)[0]``). Only for the gated cells (lstm, gru).
    """
    if cell not in GATES:
        raise ValueError(f"the {cell} cell has no gates")
    names, hidden = GATES[cell], encoder.hidden_size
    directions = 2 if encoder.bidirectional else 1
    gates: dict[str, torch.Tensor] = {}
    layer_input = x
    for layer in range(encoder.num_layers):
        outputs = []
        for direction in range(directions):
            suffix = f"l{layer}" + ("_reverse" if direction else "")
            w_ih, w_hh = getattr(encoder, f"weight_ih_{suffix}"), getattr(encoder, f"weight_hh_{suffix}")
            b_ih, b_hh = getattr(encoder, f"bias_ih_{suffix}"), getattr(encoder, f"bias_hh_{suffix}")
            projected = layer_input @ w_ih.T + b_ih  # (B, L, gates * hidden): the input part, all steps
            h = c = x.new_zeros(x.shape[0], hidden)
            steps = range(x.shape[1] - 1, -1, -1) if direction else range(x.shape[1])
            states, values = [None] * x.shape[1], {n: [None] * x.shape[1] for n in names}
            for t in steps:
                recurrent = h @ w_hh.T + b_hh  # (B, gates * hidden)
                if cell == "lstm":
                    i, f, g, o = (projected[:, t] + recurrent).chunk(4, dim=-1)
                    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
                    c = f * c + i * g
                    h = o * c.tanh()
                    step = {"input": i, "forget": f, "cell": g, "output": o}
                else:  # torch's GRU: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h = (1 - z) n + z h
                    xr, xz, xn = projected[:, t].chunk(3, dim=-1)
                    hr, hz, hn = recurrent.chunk(3, dim=-1)
                    r, z = (xr + hr).sigmoid(), (xz + hz).sigmoid()
                    n = (xn + r * hn).tanh()
                    h = (1 - z) * n + z * h
                    step = {"reset": r, "update": z, "new": n}
                states[t] = h
                for name in names:
                    values[name][t] = step[name]
            outputs.append(torch.stack(states, dim=1))  # (B, L, hidden)
            label = f"{layer}" + ("_reverse" if direction else "")
            for name in SHOWN_GATES[cell]:
                gates[f"{label}.{name}"] = torch.stack(values[name], dim=1)
        layer_input = torch.cat(outputs, dim=-1)  # (B, L, hidden * dirs): the next layer's input
    return gates, layer_input


@dataclass(frozen=True)
class Covariates:
    """How many covariate inputs a model is built for: the widths P, F and S of the contract's
    ``past`` (B, L, P), ``future`` (B, L + H, F) and ``static`` (B, S); 0 = that input is None."""

    past: int = 0
    future: int = 0
    static: int = 0

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(kind for kind in COVARIATE_INPUTS if getattr(self, kind))

    @property
    def per_step(self) -> int:
        """Channels ``step_inputs`` puts beside the C values of each input step."""
        return self.past + self.future + self.static

    def flat(self, lookback: int, horizon: int) -> int:
        """The width of ``flat_inputs``."""
        return lookback * self.past + (lookback + horizon) * self.future + self.static


NO_COVARIATES = Covariates()


def step_inputs(x: torch.Tensor, past: torch.Tensor | None, future: torch.Tensor | None,
                static: torch.Tensor | None) -> torch.Tensor:
    """x (B, L, C) with what is known at each input step beside it: (B, L, C + P + F + S), the past
    covariates, the known-future ones of the input steps, and the static values repeated over L."""
    parts = [x]
    if past is not None:
        parts.append(past)
    if future is not None:
        parts.append(future[:, : x.shape[1]])
    if static is not None:
        parts.append(static[:, None, :].expand(-1, x.shape[1], -1))
    return torch.cat(parts, dim=-1) if len(parts) > 1 else x


def flat_inputs(past: torch.Tensor | None, future: torch.Tensor | None,
                static: torch.Tensor | None) -> torch.Tensor | None:
    """Every covariate value of a window as one vector (B, L * P + (L + H) * F + S), None without any."""
    parts = [block.flatten(1) for block in (past, future, static) if block is not None]
    return torch.cat(parts, dim=-1) if parts else None


class StepCovariates(nn.Module):
    """Each forecast step's known-future values and the static ones, (B, H, F + S), through a small
    MLP shared by the steps, to a term (B, H, C) added to that step's forecast. Its output layer
    starts at zero, so an untrained model still forecasts the window's reference level."""

    def __init__(self, covariates: Covariates, n_features: int, hidden_size: int = 32):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(covariates.future + covariates.static, hidden_size), nn.GELU(),
                                 zero_head(nn.Linear(hidden_size, n_features)))

    @staticmethod
    def wanted(covariates: Covariates) -> bool:
        return bool(covariates.future or covariates.static)

    def forward(self, horizon: int, future: torch.Tensor | None, static: torch.Tensor | None) -> torch.Tensor:
        parts = []
        if future is not None:
            parts.append(future[:, -horizon:])  # (B, H, F): the forecast steps' own values
        if static is not None:
            parts.append(static[:, None, :].expand(-1, horizon, -1))
        return self.mlp(torch.cat(parts, dim=-1))


def check_attention_args(d_model: int, nhead: int, dim_feedforward: int, dropout: float, **layers: int) -> None:
    """Raise ValueError for hyperparameters no attention model can be built with."""
    if d_model < 1 or nhead < 1 or dim_feedforward < 1:
        raise ValueError("d_model, nhead and dim_feedforward must be at least 1")
    if d_model % nhead:
        raise ValueError(f"d_model ({d_model}) must be divisible by nhead ({nhead})")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), not {dropout}")
    for name, value in layers.items():
        if value < 1:
            raise ValueError(f"{name} must be at least 1, not {value}")


def sinusoidal_encoding(positions: torch.Tensor, d_model: int) -> torch.Tensor:
    """(P,) positions (any sign, for relative distances) -> (P, d_model) sines then cosines."""
    half = (d_model + 1) // 2
    frequencies = torch.exp(torch.arange(half, dtype=torch.float32) * (-2.0 * math.log(10000.0) / d_model))
    angles = positions.to(torch.float32)[:, None] * frequencies[None, :]  # (P, half)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)[:, :d_model]


def _causal_mask(n_queries: int, n_keys: int, device: torch.device) -> torch.Tensor:
    """(Tq, Tk) True where key j lies after query i (j > i): those scores are masked out."""
    return torch.ones(n_queries, n_keys, dtype=torch.bool, device=device).triu(1)


def full_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention. q (B, h, Tq, d), k/v (B, h, Tk, d) -> out (B, h, Tq, d), weights."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, h, Tq, Tk)
    if causal:
        scores = scores.masked_fill(_causal_mask(q.shape[-2], k.shape[-2], q.device), float("-inf"))
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


def n_top(length: int, factor: int) -> int:
    """Informer's u = c * ceil(ln T), at least 1 and at most T (also the number of sampled keys)."""
    return min(length, max(1, factor * math.ceil(math.log(length))))


def prob_sparse_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    factor: int = 5,
    causal: bool = False,
    random_sample: bool = False,
    need_weights: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """ProbSparse self-attention: full attention for the u most "active" queries only.

    q (B, h, Tq, d), k/v (B, h, Tk, d). Each query's sparsity measure M(q, K) = max - mean of its
    scores on U = n_top(Tk) sampled keys; the u = n_top(Tq) queries with the largest M attend to all
    keys, the others ("lazy" queries, near-uniform attention) output the mean of V, or for causal
    self-attention the running mean of V up to their own position. With u >= Tq every query is
    selected and the result is exactly ``full_attention``.

    Sampling: one set of U keys per call, shared by all queries (the paper draws per query); random
    in training, evenly spaced when ``random_sample`` is False so that eval forecasts are repeatable.
    Returns (out (B, h, Tq, d), weights (B, h, Tq, Tk) or None, selected query indices (B, h, u)).
    """
    batch, heads, n_queries, dim = q.shape
    n_keys = k.shape[-2]
    u, n_sample = n_top(n_queries, factor), n_top(n_keys, factor)
    if random_sample:
        sample = torch.randperm(n_keys, device=q.device)[:n_sample]
    else:
        sample = torch.linspace(0, n_keys - 1, n_sample, device=q.device).round().long()
    sampled_scores = q @ k[:, :, sample].transpose(-2, -1)  # (B, h, Tq, U)
    sparsity = sampled_scores.amax(dim=-1) - sampled_scores.mean(dim=-1)  # (B, h, Tq)
    top = sparsity.topk(u, dim=-1).indices  # (B, h, u)

    q_top = q.gather(2, top.unsqueeze(-1).expand(-1, -1, -1, dim))  # (B, h, u, d)
    scores = q_top @ k.transpose(-2, -1) / math.sqrt(dim)  # (B, h, u, Tk)
    if causal:
        future = torch.arange(n_keys, device=q.device) > top.unsqueeze(-1)  # (B, h, u, Tk)
        scores = scores.masked_fill(future, float("-inf"))
    attn = scores.softmax(dim=-1)
    out_top = attn @ v  # (B, h, u, d)

    if causal:  # lazy query i: mean of v[0..i]  (the official code uses the raw cumsum)
        counts = torch.arange(1, n_keys + 1, device=v.device, dtype=v.dtype).unsqueeze(-1)
        lazy = v.cumsum(dim=-2) / counts  # (B, h, Tq = Tk, d)
    else:
        lazy = v.mean(dim=-2, keepdim=True).expand(-1, -1, n_queries, -1)  # (B, h, Tq, d)
    out = lazy.scatter(2, top.unsqueeze(-1).expand(-1, -1, -1, dim), out_top)

    weights = None
    if need_weights:  # the attention each query effectively used: uniform rows for lazy queries
        uniform = torch.ones(n_queries, n_keys, device=q.device, dtype=q.dtype)
        if causal:
            uniform = uniform.masked_fill(_causal_mask(n_queries, n_keys, q.device), 0.0)
        uniform = (uniform / uniform.sum(-1, keepdim=True)).expand(batch, heads, -1, -1)
        weights = uniform.scatter(2, top.unsqueeze(-1).expand(-1, -1, -1, n_keys), attn)
    return out, weights, top


class MultiHeadAttention(nn.Module):
    """Multi-head attention, full or ProbSparse; with ``record`` set it keeps its weights.

    ``last_weights`` is (B, Tq, Tk), averaged over heads, detached; set only while recording.
    No dropout on the attention weights (the layers drop the residual branches instead): on CPU a
    dropout mask over (B, heads, T, T) costs as much as the attention itself and forces torch's
    slow unfused attention path.
    """

    def __init__(self, d_model: int, nhead: int, *, sparse: bool = False, factor: int = 5, causal: bool = False):
        super().__init__()
        self.nhead, self.sparse, self.factor, self.causal = nhead, sparse, factor, causal
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d_model, d_model) for _ in range(4))
        self.record = False
        self.last_weights: torch.Tensor | None = None

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        # (B, T, d_model) -> (B, h, T, d_model / h)
        return x.view(x.shape[0], x.shape[1], self.nhead, -1).transpose(1, 2)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(self.q_proj(query)), self._heads(self.k_proj(key)), self._heads(self.v_proj(value))
        weights = None
        if self.sparse:
            out, weights, _ = prob_sparse_attention(
                q, k, v, self.factor, self.causal, random_sample=self.training, need_weights=self.record
            )
        elif self.record:  # explicit weights, the same arithmetic as the fused kernel below
            out, weights = full_attention(q, k, v, self.causal)
        else:  # the fused kernel when nobody needs the weights
            out = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        if self.record:
            self.last_weights = weights.mean(dim=1).detach()
        out = out.transpose(1, 2).reshape(query.shape[0], query.shape[1], -1)  # (B, Tq, d_model)
        return self.out_proj(out)


def feed_forward(d_model: int, dim_feedforward: int) -> nn.Sequential:
    """(B, T, d) -> (B, T, d). Dropout as in Vaswani et al.: on sub-layer outputs and embeddings
    only, not inside this block (each dropout mask is a noticeable cost on CPU)."""
    return nn.Sequential(nn.Linear(d_model, dim_feedforward), nn.GELU(), nn.Linear(dim_feedforward, d_model))


class EncoderLayer(nn.Module):
    """Post-norm self-attention + feed-forward block (Vaswani et al. 2017). (B, T, d) -> (B, T, d)."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float, **attention):
        super().__init__()
        self.attention = MultiHeadAttention(d_model, nhead, **attention)
        self.feed_forward = feed_forward(d_model, dim_feedforward)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.drop(self.attention(x, x, x)))
        return self.norm2(x + self.drop(self.feed_forward(x)))


class DecoderLayer(nn.Module):
    """Post-norm self-attention, cross-attention to the encoder output, feed-forward. (B, T, d)."""

    def __init__(
        self, d_model: int, nhead: int, dim_feedforward: int, dropout: float, *, use_self_attention: bool = True,
        **self_attention,
    ):
        super().__init__()
        # a single decoder token would attend only to itself (query/key weights without gradient)
        self.self_attention = (
            MultiHeadAttention(d_model, nhead, **self_attention) if use_self_attention else None
        )
        self.cross_attention = MultiHeadAttention(d_model, nhead)
        self.feed_forward = feed_forward(d_model, dim_feedforward)
        self.norm1 = nn.LayerNorm(d_model) if use_self_attention else None
        self.norm2, self.norm3 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        if self.self_attention is not None:
            x = self.norm1(x + self.drop(self.self_attention(x, x, x)))
        x = self.norm2(x + self.drop(self.cross_attention(x, memory, memory)))
        return self.norm3(x + self.drop(self.feed_forward(x)))


@contextmanager
def recording(model: nn.Module) -> Iterator[None]:
    """Run ``model`` in eval mode without gradient, its attention modules keeping their weights."""
    modules = [m for m in model.modules() if isinstance(m, MultiHeadAttention)]
    was_training = model.training
    model.eval()
    for module in modules:
        module.record = True
    try:
        with torch.no_grad():
            yield
    finally:
        for module in modules:
            module.record, module.last_weights = False, None
        model.train(was_training)


def interval_cover(n_positions: int, n_steps: int) -> torch.Tensor:
    """(P, L): position p of a sequence shortened from L to P steps covers an equal share of steps.

    Row p spreads 1 uniformly over steps [floor(p L / P), floor((p + 1) L / P)) (at least one step),
    so rows sum to 1 and every step belongs to some position.
    """
    cover = torch.zeros(n_positions, n_steps)
    for p in range(n_positions):
        start = p * n_steps // n_positions
        end = max(start + 1, (p + 1) * n_steps // n_positions)
        cover[p, start:end] = 1.0 / (end - start)
    return cover


def patch_cover(n_steps: int, patch_len: int, stride: int, n_patches: int) -> torch.Tensor:
    """(N, L): patch n covers padded steps [n stride, n stride + patch_len); padding past the end
    repeats the last step, so those shares go to step L - 1. Rows sum to 1."""
    cover = torch.zeros(n_patches, n_steps)
    for n in range(n_patches):
        for t in range(n * stride, n * stride + patch_len):
            cover[n, min(t, n_steps - 1)] += 1.0 / patch_len
    return cover


def to_steps(
    weights: torch.Tensor, key_cover: torch.Tensor, query_cover: torch.Tensor | None = None
) -> torch.Tensor:
    """Map (B, Tq, Tk) attention onto input steps: keys -> (B, Tq, L); with ``query_cover`` (Tq, L),
    query rows too -> (B, L, L), step t's row averaging the rows of the positions covering it
    (weighted by their overlap with t). Rows still sum to 1."""
    out = weights @ key_cover.to(weights)  # (B, Tq, L)
    if query_cover is not None:
        share = query_cover.to(weights).T  # (L, Tq)
        out = (share / share.sum(dim=-1, keepdim=True)) @ out  # (B, L, L)
    return out
