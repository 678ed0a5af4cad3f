"""Quantization-aware training: the student learns with the int8 weights ``export --int8`` will give it.

onnxruntime's dynamic quantization (``export.quantize``) stores each weight matrix as int8, symmetric
and per tensor: ``q = round(w / s)`` clamped to [-127, 127], ``s = max|w| / 127``; activations are
quantized on each call. ``fake_int8`` rounds a weight that way in the forward pass and lets the
gradient through unchanged (the straight-through estimator, Bengio et al. 2013; Jacob et al. 2018),
so training settles where the rounded weights forecast well. ``forward`` runs a model with every
weight matrix (2-D and up: linear, convolution and recurrent weights) so rounded, and its biases,
norms and scalars as they are (they stay fp32 in the exported file); the weights the optimiser holds stay fp32.
A weight-normalised layer (tcn's convolutions) is left as it is: its weight is computed from a
direction and a magnitude, and the export rounds that product, once.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

LEVELS = 127  # symmetric int8: -127 .. 127


def fake_int8(weight: torch.Tensor) -> torch.Tensor:
    """``weight`` rounded to symmetric per-tensor int8 and back; its gradient passes straight through."""
    scale = weight.detach().abs().max().clamp_min(1e-12) / LEVELS
    rounded = torch.clamp(torch.round(weight / scale), -LEVELS, LEVELS) * scale
    return weight + (rounded - weight).detach()


def rounded(name: str, weight: torch.Tensor) -> bool:
    """Whether the parameter ``name`` is a weight matrix int8 rounds (not a weight-normalised layer's parts)."""
    return weight.ndim >= 2 and "parametrizations." not in name


def forward(model: nn.Module, x: torch.Tensor, **covariates: torch.Tensor) -> torch.Tensor:
    """``model(x, **covariates)`` with its weight matrices rounded to int8 (``fake_int8``)."""
    weights = {name: fake_int8(p) if rounded(name, p) else p for name, p in model.named_parameters()}
    return functional_call(model, weights, (x,), covariates)


def per_row(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``weight`` (rows, ...) as int8 values and one scale per row, rounded as ``fake_int8`` rounds a tensor:
    what export stores for the layers onnxruntime does not quantize (a GRU's weights, one row a direction)."""
    scale = np.abs(weight).reshape(len(weight), -1).max(axis=1) / LEVELS
    scale = np.where(scale > 0, scale, 1.0)
    shaped = scale.reshape(-1, *[1] * (weight.ndim - 1))
    return np.clip(np.round(weight / shaped), -LEVELS, LEVELS).astype(np.int8), scale


@torch.no_grad()
def snap(model: nn.Module) -> None:
    """Set every weight matrix of ``model`` to its int8 rounding (what ``forward`` trained and validated)."""
    for name, p in model.named_parameters():
        if rounded(name, p):
            p.copy_(fake_int8(p))
