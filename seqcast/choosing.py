"""Choices that depend on the data, made on fit's own validation windows by short probes.

The target's transform, window normalisation, the point loss and the lookback suit some data and not
other (a recurrent model on a monthly panel wants its seasons taken out; on hourly ETT the window mean
serves it better; counts may want their logarithm; gru on M4 Weekly forecasts better from four years
of history than from two), so ``fit`` does not take one declared answer: each
candidate trains a probe, one model on 15 % of the budget, and is scored on the validation windows;
the best is then trained on the whole budget, exactly as if it had been asked for. The settings are
chosen one after another (the window normalisation, then the transform with it, then the loss with
both, then twice the lookback with all three where the data hold it: ``layout.longer_layouts``), each
later stage reusing the probe of the last stage's winner: four probes (five with a transform to try,
six with a longer lookback) cost about 0.6 (0.75, and 0.75 + 0.3 for a recurrent model, whose steps
cost twice as much at twice the lookback) of one fit. At a fifth of the budget each and before the
transform stage, a default gru fit on M4 Weekly cost 1.98 times the fit without probes. A forced
option is not probed; a warm start keeps its checkpoint's choices. ``run_probes`` trains the probes
of the candidates ``fitting.fit`` hands it, and ``choose`` settles the stages on their scores.

The score is the mean absolute error of the point forecast in seqcast's per-series z-scored units
(for the transform stage, the targets' own units scaled by the untransformed statistics, so that
the candidates share them), averaged per series and then over series, so that a panel's long series
do not outvote the rest and no candidate's own training loss is favoured. The declared candidate
(the first) is kept unless the best of the others scores more than ``MARGIN`` lower.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Callable

import numpy as np
from torch import nn

from .errors import TrainingError
from .forecaster import Decision
from .forecasting import run_model
from .intervals import point
from .budget import TrainConfig
from .training import EpochReport, objective, train
from .windows import WindowSet

if TYPE_CHECKING:
    from .fitting import Candidates, Prepared

PROBE_SHARE = 0.15  # each probe's share of the fit's budget
PROBES_TIME = 0.75  # of a --time-budget, the most all probes take together (five at PROBE_SHARE; six share it)
# Another candidate replaces the declared one only when its score is lower by more than this share: probes
# of a few tenths of the budget differ by noise (ETTh1 nlinear H=24: MAE probed 0.17 % better than the declared
# MSE, and trained to a 3 % worse test MSE), and the declared settings were validated.
MARGIN = 0.01


def norm_candidates(declared: str, seasons: tuple[int, ...], lookback: int) -> list[str]:
    """The window normalisations worth probing: the declared one, the last value, and the window's
    level and seasons where one of the frequency's seasons fits the lookback twice. A model that
    declares "none" normalises its windows itself (eslstm's smoothing): only that."""
    if declared == "none":
        return [declared]
    candidates = [declared, "last"]
    if any(2 * s <= lookback for s in seasons):
        candidates.append("deseason")
    return list(dict.fromkeys(candidates))


def validation_score(model: nn.Module, windows: WindowSet, quantiles: tuple[float, ...],
                     common: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> float:
    """Mean absolute error of ``model``'s point forecast on ``windows`` (scaled units), per series, then
    the mean over series. ``common`` maps scaled values (and each window's series) to the units that
    probes of different target transforms share: the targets' own, scaled as untransformed."""
    model.eval()
    x, y, covariates = windows.batch(slice(None))
    pred = point(run_model(model, x.numpy(), {k: v.numpy() for k, v in covariates.items()}), quantiles)
    actual = y.numpy()
    if common is not None:
        pred, actual = common(pred.astype(np.float64), windows.series_index), common(
            actual.astype(np.float64), windows.series_index)
    return forecast_score(pred, actual, windows.series_index)


def forecast_score(pred: np.ndarray, actual: np.ndarray, series_index: np.ndarray) -> float:
    """Mean absolute error of point forecasts (N, H, C) against ``actual``, per series (``series_index``:
    each window's), then the mean over series: the score every choice on validation windows compares."""
    errors = np.abs(pred - actual).mean(axis=(1, 2))  # (N,): one per window
    counts = np.bincount(series_index)
    sums = np.bincount(series_index, weights=errors)
    return float(np.mean(sums[counts > 0] / counts[counts > 0]))


def choose(stages: list[tuple[str, list[str]]], start: dict[str, str],
           probe: Callable[[dict[str, str]], tuple[float, int]]) -> tuple[dict[str, str], tuple[Decision, ...]]:
    """Settle each ``(setting, candidates)`` stage in turn, from the settings ``start``: ``probe(settings)``
    trains one probe and returns (its validation score, inf when its training diverged; its steps).
    Returns the settings chosen and a ``Decision`` for every stage with more than one candidate."""
    settings, made, seen = dict(start), [], {}
    for setting, candidates in stages:
        if len(candidates) < 2:
            settings[setting] = candidates[0] if candidates else settings[setting]
            continue
        keys = [tuple(sorted({**settings, setting: c}.items())) for c in candidates]
        for key in keys:
            if key not in seen:  # the last stage's winner is this stage's declared candidate: probed already
                seen[key] = probe(dict(key))
        scores = [seen[key] for key in keys]
        best = min(range(len(candidates)), key=lambda i: scores[i][0])  # the first on a tie
        settings[setting] = candidates[best if scores[best][0] < scores[0][0] * (1 - MARGIN) else 0]
        made.append(Decision(setting, settings[setting], tuple(candidates),
                             tuple(round(v, 6) if math.isfinite(v) else None for v, _ in scores),
                             max(steps for _, steps in scores)))
    return settings, tuple(made)


def describe(choices: tuple[Decision, ...]) -> str:
    """What was chosen, against what, at what cost: one line for fit's notes and ``info``."""
    parts = [f"{c.setting.replace('_', ' ')} {c.chosen} (" + ", ".join(
        f"{k} {'diverged' if v is None else format(v, '.4f')}" for k, v in zip(c.candidates, c.scores)) + ")"
        for c in choices]
    probes = sum(len(c.candidates) for c in choices) - max(0, len(choices) - 1)  # each later stage reuses one probe
    return (f"{'; '.join(parts)} on the validation windows (per-series MAE, scaled); {probes} probes of up to "
            f"{max(c.probe_steps for c in choices)} steps")


def probe_time_share(stages: list[tuple[str, list[str]]]) -> float:
    """Each probe's share of a --time-budget: ``PROBE_SHARE``, less where more probes than five would
    together take more than ``PROBES_TIME`` of it (each later stage reuses one probe of the last)."""
    settled = [c for _, c in stages if len(c) > 1]
    probes = sum(len(c) for c in settled) - max(0, len(settled) - 1)
    return min(PROBE_SHARE, PROBES_TIME / max(1, probes))


def run_probes(candidates: Candidates, stages: list[tuple[str, list[str]]], start: dict[str, str],
               config: TrainConfig, on_epoch: Callable[[EpochReport], None] | None,
               on_step: Callable[[int, int], None] | None) -> tuple[dict[str, str], tuple[Decision, ...], TrainConfig]:
    """Each stage's candidates trained as short probes and scored on the validation windows
    (``choose``). Returns the settings chosen, the decisions, and the settings the final
    training runs on (a --time-budget less the time the probes took)."""
    transforms, lookbacks, quantiles = dict(stages)["transform"], dict(stages)["lookback"], candidates.quantiles

    def probe(settings: dict[str, str]) -> tuple[float, int]:
        at = candidates.at(int(settings["lookback"]))
        candidate = at.build(settings["window_norm"], 1)
        data = at.prepare(settings["transform"])
        label = (f"transform {settings['transform']}, " if len(transforms) > 1 else "") + \
            f"window norm {settings['window_norm']}, loss {settings['loss']}" + \
            (f", lookback {settings['lookback']}" if len(lookbacks) > 1 else "")
        report = (lambda r: on_epoch(replace(r, probe=label))) if on_epoch else None
        try:
            done = train(candidate, data.train, data.val, probing, report, on_step, share=PROBE_SHARE,
                         loss=objective(quantiles, settings["loss"]),
                         window_flops=at.window_flops(start["window_norm"], transforms[0]))
        except TrainingError:  # this candidate diverged: it loses, and the others decide
            return math.inf, 0
        candidate.to("cpu")
        common = _common_units(data, at.prepare("none")) if len(transforms) > 1 else None
        return validation_score(candidate, data.val, quantiles, common), done.steps

    probing = replace(config, time_budget=config.time_budget * probe_time_share(stages))
    probes_started = time.perf_counter()
    chosen, choices = choose(stages, start, probe)
    training = config
    if config.time_budget:  # the probes spent part of the user's time budget
        left = config.time_budget - (time.perf_counter() - probes_started)
        training = replace(config, time_budget=max(config.time_budget * PROBE_SHARE, left))
    return chosen, choices, training


def _common_units(data: Prepared, raw: Prepared) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """(windows, H, C) values in ``data``'s scaled units and each window's series -> the targets' units
    scaled by ``raw``'s (untransformed) statistics: where probes of different transforms are compared."""
    mean = np.array(list(data.scaler.mean.values()), dtype=np.float64)
    std = np.array(list(data.scaler.std.values()), dtype=np.float64)
    raw_mean = np.array(list(raw.scaler.mean.values()), dtype=np.float64)
    raw_std = np.array(list(raw.scaler.std.values()), dtype=np.float64)

    def common(values: np.ndarray, series_index: np.ndarray) -> np.ndarray:
        units = data.transform.restore(values * std[series_index][:, None, :] + mean[series_index][:, None, :],
                                       data.lambdas[series_index])
        return (units - raw_mean[series_index][:, None, :]) / raw_std[series_index][:, None, :]
    return common
