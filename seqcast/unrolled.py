"""GRU and vanilla RNN layers as one matrix product per step, for ``export --int8``.

onnxruntime's dynamic quantization has an integer kernel for LSTM but none for the GRU and RNN
operators, so in an exported graph those layers stay fp32. Written out step by step they are
MatMul and Gemm nodes, which it does quantize: the input projection of every step at once
(``x W_ih^T + b_ih``), then per step ``h W_hh^T + b_hh`` and the cell's gates, with PyTorch's
equations (GRU gates in its order r, z, n: ``n = tanh(i_n + r * (h W_hn^T + b_hn))``,
``h' = (1 - z) n + z h``). The step weights are one initializer the steps share, so the file holds
each matrix once; it gains nodes in proportion to the lookback instead. ``export`` keeps this form
only when its int8 file is smaller than the other's and passes the same parity check.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

CELLS = (nn.GRU, nn.RNN)


class Unrolled(nn.Module):
    """``layer`` (a batch-first torch GRU or RNN, in eval mode) written out step by step: the same
    weights, the same ``(output, h_n)``."""

    def __init__(self, layer: nn.RNNBase):
        super().__init__()
        if not layer.batch_first:
            raise ValueError("only batch-first recurrent layers are unrolled")
        self.layer = layer

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        layer, finals = self.layer, []
        directions = 2 if layer.bidirectional else 1
        for depth in range(layer.num_layers):
            outputs = []
            for direction in range(directions):
                suffix = f"_l{depth}" + ("_reverse" if direction else "")
                weight = lambda kind: getattr(layer, f"{kind}{suffix}", None)  # noqa: E731
                # every step's input projection at once, time first: one Split gives the steps
                projected = F.linear(x, weight("weight_ih"), weight("bias_ih")).transpose(0, 1).unbind(0)
                steps = range(x.shape[1] - 1, -1, -1) if direction else range(x.shape[1])
                h = None
                states: list[torch.Tensor] = [projected[0]] * x.shape[1]
                for t in steps:
                    h = self._cell(projected[t], h, weight("weight_hh"), weight("bias_hh"))
                    states[t] = h
                outputs.append(torch.stack(states, dim=1))
                finals.append(h)
            x = torch.cat(outputs, dim=-1) if directions == 2 else outputs[0]
        return x, torch.stack(finals, dim=0)

    def _cell(self, projected: torch.Tensor, h: torch.Tensor | None, weight: torch.Tensor,
              bias: torch.Tensor | None) -> torch.Tensor:
        """One step from the state ``h`` (None: the zero state of the first step, whose recurrent product
        is the bias alone: no product is written for it)."""
        if h is None:
            recurrent = bias if bias is not None else torch.zeros_like(projected)
        else:
            recurrent = F.linear(h, weight, bias)
        if self.layer.mode == "GRU":
            size = self.layer.hidden_size
            i_r, i_z, i_n = projected.split(size, dim=-1)
            h_r, h_z, h_n = recurrent.split(size, dim=-1)
            r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
            n = torch.tanh(i_n + r * h_n)
            return n + z * (h - n) if h is not None else n - z * n
        total = projected + recurrent
        return torch.tanh(total) if self.layer.mode == "RNN_TANH" else torch.relu(total)


def has_cells(model: nn.Module) -> list[str]:
    """The kinds of GRU and RNN layers in ``model`` ("GRU", "RNN"), the layers ``unrolled`` rewrites."""
    return sorted({"GRU" if isinstance(m, nn.GRU) else "RNN" for m in model.modules() if isinstance(m, CELLS)})


def unrolled(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with each of its GRU and RNN layers ``Unrolled`` (the original is untouched)."""
    copied = copy.deepcopy(model).eval()
    for name, module in list(copied.named_modules()):
        for child, layer in list(module.named_children()):
            if isinstance(layer, CELLS):
                setattr(module, child, Unrolled(layer))
    return copied
