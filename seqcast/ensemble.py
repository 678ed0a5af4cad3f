"""An ensemble of one model trained from several seeds: the median of their forecasts (fit --ensemble N).

N-BEATS forecasts with the median of many members; seqcast trains ``N`` members of the same model,
windows and normalisation from seeds ``seed .. seed + N - 1`` and forecasts their element-wise median
(for quantile outputs quantile by quantile, which keeps them ascending: the median of ascending
vectors is ascending). ``explain`` looks at the first member.
"""

from __future__ import annotations

import torch
from torch import nn


class Ensemble(nn.Module):
    """Members (WindowNorm-wrapped models of one architecture) -> the median of their forecasts."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    @property
    def network(self) -> nn.Module:
        """The registered model of the first member (what ``explain`` reads)."""
        return self.members[0].network

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return self.members[0].normalise(x)

    def forward(self, x: torch.Tensor, **covariates: torch.Tensor | None) -> torch.Tensor:
        outputs = torch.stack([member(x, **covariates) for member in self.members])
        return outputs.median(dim=0).values  # the lower of the two middle members when N is even


class Blend(nn.Module):
    """Members of different models (each inside its own window normalisation) -> the weighted sum of their
    forecasts (``--model auto``; the weights are positive and sum to 1, so a blend of forecasts in
    per-series z-scored units is the same blend in the data's units). Each member reads the covariate
    inputs only when ``reads`` says it was built for them (naive and the statistical models read none)."""

    def __init__(self, members: list[nn.Module], weights: list[float], reads: list[bool]):
        super().__init__()
        if not (len(members) == len(weights) == len(reads)) or not members:
            raise ValueError("a blend needs one weight and one reads flag per member")
        self.members = nn.ModuleList(members)
        self.weights, self.reads = [float(w) for w in weights], list(reads)

    def forward(self, x: torch.Tensor, **covariates: torch.Tensor | None) -> torch.Tensor:
        total = None
        for member, weight, reads in zip(self.members, self.weights, self.reads):
            out = weight * member(x, **covariates) if reads else weight * member(x)
            total = out if total is None else total + out
        return total
