"""Statistical models through statsforecast: ETS, Theta and MSTL, fitted on each window as it forecasts.

The classics every forecasting comparison includes, and the members ``--model auto`` adds beside the
networks: Hyndman et al.'s ETS (the state-space exponential smoothing chosen by AICc among error,
trend and season forms, "AutoETS"), the Theta method (Assimakopoulos and Nikolopoulos 2000; the M3
competition's best, chosen among its standard, optimised and dynamic forms, "AutoTheta"), and MSTL
(Bandara et al. 2021: seasons removed one after another by STL, the rest forecast by a non-seasonal
ETS). statsforecast (Nixtla) fits them; it is the optional extra ``stats`` (pip install
'seqcast[stats]'), imported only when one of them forecasts.

Where seqcast differs from using statsforecast directly: the model is fitted on each window (the
lookback's values, as every seqcast model reads them), not on a series' whole history, and in
seqcast's per-series z-scored units. A window's forecast then comes from that window alone, the same
at fit, predict and evaluate, and the models sit in the model contract like any other (one forecast
per window, any panel, one checkpoint). Being z-scored, windows cross zero, so the forms are
additive (ETS and Theta would try multiplicative ones on positive raw values). A window that is
constant, or that the library cannot fit, is forecast by its last value. They have no parameters
to train, no ONNX form (export refuses them, naming them) and no quantile head (``fit --level``
still gives them conformal intervals).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ..registry import register_model

WEEKLY = {24: 168, 48: 336}  # a daily season of hourly and half-hourly data, and the week that holds it


class Statistical(nn.Module):
    """A statsforecast model fitted on each window: (B, L, C) -> (B, H, C)."""

    def __init__(self, lookback: int, horizon: int, n_features: int, *, season: int = 0):
        super().__init__()
        if season < 0:
            raise ValueError("season must be 0 (the frequency's) or more")
        self.lookback, self.horizon, self.season = lookback, horizon, season or 1

    def statsforecast_model(self):  # the fitted model's factory, per family
        raise NotImplementedError

    def forward(self, x: torch.Tensor, *, past: torch.Tensor | None = None, future: torch.Tensor | None = None,
                static: torch.Tensor | None = None) -> torch.Tensor:
        windows = x.detach().to("cpu", torch.float64)
        out = windows[:, -1:, :].repeat(1, self.horizon, 1)  # the last value: where a fit is not possible
        if windows.shape[0] == 0:
            return out.to(x.dtype)
        model = self.statsforecast_model()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the library's notes on short or flat windows; the fallback covers them
            for b in range(windows.shape[0]):
                for c in range(windows.shape[2]):
                    y = windows[b, :, c]
                    if float(y.max() - y.min()) <= 1e-9 * max(1.0, float(y.abs().max())):
                        continue
                    try:
                        mean = torch.as_tensor(model.forecast(y=y.numpy(), h=self.horizon)["mean"], dtype=torch.float64)
                    except Exception:  # noqa: BLE001 - the library's own failure on one window: its last value
                        continue
                    if mean.shape == (self.horizon,) and torch.isfinite(mean).all():
                        out[b, :, c] = mean
        return out.to(x.dtype)


CAPABILITIES = dict(statistical=True, extra="stats", season=True, window_norm="none", starts_at_level=False,
                    quantiles=False)


@register_model("ets", **CAPABILITIES)
class ETS(Statistical):
    """ETS (AutoETS): exponential smoothing, its error, trend and season forms chosen by AICc on each window."""

    def statsforecast_model(self):
        from statsforecast.models import AutoETS

        return AutoETS(season_length=self.season if 2 * self.season <= self.lookback else 1)


@register_model("theta", **CAPABILITIES)
class Theta(Statistical):
    """Theta (AutoTheta): the M3 winner, its standard, optimised and dynamic forms chosen on each window."""

    def statsforecast_model(self):
        from statsforecast.models import AutoTheta

        return AutoTheta(season_length=self.season if 2 * self.season <= self.lookback else 1)


@register_model("mstl", **CAPABILITIES)
class MSTL(Statistical):
    """MSTL: each season removed by STL (hourly data: the day and the week), the rest forecast by ETS."""

    def statsforecast_model(self):
        from statsforecast.models import MSTL as Model, AutoETS

        seasons = [s for s in (self.season, WEEKLY.get(self.season, 0)) if s > 1 and 2 * s <= self.lookback]
        if not seasons:  # no season fits the window twice: the trend forecaster alone
            return AutoETS(season_length=1, model="ZZN")
        return Model(season_length=seasons, trend_forecaster=AutoETS(model="ZZN"))
