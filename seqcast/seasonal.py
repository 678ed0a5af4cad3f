"""Seasonal indices estimated from a window itself: what window normalisation "deseason" takes out of
every window and what ``eslstm``'s smoothing starts from (torch only, no state)."""

from __future__ import annotations

import torch


def seasonal_indices(x: torch.Tensor, seasons: tuple[int, ...]) -> list[torch.Tensor]:
    """(B, L, C) -> for every season of ``seasons`` the lookback holds twice, shortest first, its additive
    indices (B, m, C), phase 0 being the step after the window: each phase's mean deviation from its
    cycle's mean over the whole cycles at the window's end, less the ramp a linear trend puts into those
    deviations, and shrunk towards zero where the window shows little of that season; each season is
    estimated from the window less the seasons before it. [] when none fits."""
    lookback, found, rest = x.shape[1], [], x
    fitting = [s for s in seasons if 2 * s <= lookback]
    if not fitting:
        return found
    # the trend per step, between the first and the last whole cycle of the longest season (whose cycle
    # means every shorter season that divides it leaves untouched)
    longest = max(fitting)
    cycles = lookback // longest
    first = x[:, lookback - cycles * longest:][:, :longest].mean(dim=1, keepdim=True)
    slope = (x[:, -longest:].mean(dim=1, keepdim=True) - first) / ((cycles - 1) * longest)  # (B, 1, C)
    for season in fitting:
        cycles = lookback // season
        tail = rest[:, lookback - cycles * season:, :].reshape(x.shape[0], cycles, season, x.shape[2])  # (B, k, m, C)
        phase = torch.arange(season, device=x.device, dtype=x.dtype) - (season - 1) / 2
        deviations = tail - tail.mean(dim=2, keepdim=True) - slope[:, None] * phase.view(1, 1, season, 1)
        indices = deviations.mean(dim=1)  # (B, m, C)
        # shrunk by the season's strength in this window, 1 - var(remainder) / var(deviations) (Wang, Smith
        # and Hyndman 2006): about 1 / k for noise without a season, 1 for a season repeated exactly
        remainder = (deviations - indices[:, None]).pow(2).mean(dim=(1, 2))
        strength = (1 - remainder / (deviations.pow(2).mean(dim=(1, 2)) + 1e-12)).clamp(0, 1)  # (B, C)
        found.append(indices * strength[:, None])
        rest = rest - seasonal_part(found[-1:], torch.arange(-lookback, 0, device=x.device))
    return found


def seasonal_part(indices: list[torch.Tensor], offsets: torch.Tensor) -> torch.Tensor:
    """The summed seasonal value (B, len(offsets), C) of ``indices`` at ``offsets`` steps from the first
    step after the window (negative: inside it)."""
    return sum(ix[:, offsets % ix.shape[1], :] for ix in indices)
