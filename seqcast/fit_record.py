"""What ``fit`` records of a training run: the conformal calibration on the validation windows, the
notes and warnings on how the budget ran, the ``TrainingRecord``, and the ``Forecaster`` that holds it all.
"""

from __future__ import annotations

import platform
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import __version__, intervals
from .data import SeriesSet
from .distributed import Distributed
from .forecaster import (CovariateSchema, DataSchema, Decision, Forecaster, InitFrom, ModelInfo, ReadingPolicy,
                         TrainingRecord, Versions)
from .forecasting import run_model
from .budget import TrainConfig
from .training import TrainResult
from .scaling import by_length_rows
from .windows import Split, WindowSet

if TYPE_CHECKING:
    from .fitting import Layout, ModelConfig, Prepared


def calibrate(model: nn.Module, val_set: WindowSet, levels: tuple[float, ...], quantiles: tuple[float, ...],
              val_loss: float, exact: bool, pred: np.ndarray | None = None) -> tuple[Any, float]:
    """The conformal calibration of ``levels`` on the validation windows (None without levels), and the
    point forecast's validation MSE (``val_loss`` itself when ``exact``: the model trained on the MSE alone).
    ``pred``: the model's output on those windows, when the caller has it already."""
    if not levels and exact:
        return None, val_loss
    if len(val_set) == 0:  # (fit has refused --level without validation windows)
        return None, val_loss if exact else float("nan")  # no validation MSE to report
    x, y, covariates = val_set.batch(slice(None))
    x, y = x.numpy(), y.numpy()
    if pred is None:
        pred = run_model(model, x, {k: v.numpy() for k, v in covariates.items()}).astype(np.float64)
    actual = y.astype(np.float64)
    point = intervals.point(pred, quantiles)
    scale = intervals.window_scale(x, val_set.origins)  # origins: the real rows before each window's targets
    calibration = intervals.calibrate(pred, actual, levels, quantiles, scale) if levels else None
    return calibration, float(np.mean((point - actual) ** 2))


def describe(model: nn.Module, model_config: ModelConfig, layout: Layout, data: Prepared, *, explicit: Split | None,
             resolved: dict[str, Any], window_norm: str, quantiles: tuple[float, ...], covariates: CovariateSchema,
             config: TrainConfig, results: list[TrainResult], init: Forecaster | None, dist: Distributed | None,
             window_flops: float, notes: list[str], dropped: list[str], calibration: Any, val_mse: float,
             choices: tuple[Decision, ...]) -> Forecaster:
    """The trained ``model`` as a Forecaster: what it is, the data it was fit on (split as ``layout``
    says, or as ``explicit``), and the record of its training (``results``: one per ensemble member,
    the first described)."""
    series, splits, result = layout.series, layout.splits, results[0]
    if len(results) > 1:
        notes.append(f"ensemble of {len(results)} members (seeds {config.seed}..{config.seed + len(results) - 1}), "
                     f"median forecast; steps per member {', '.join(str(r.steps) for r in results)}")
    notes += budget_notes(result, config)  # the user's --time-budget, of which the probes took their share
    warnings = dropped + constant_targets(series, splits)
    trainable = any(p.requires_grad for p in model.parameters())
    if trainable and result.best_epoch == 0 and len(data.val):
        warnings.append(
            f"no {result.history[-1].unit if result.history else 'epoch'} beat the "
            f"{'--init-from' if init is not None else 'starting'} weights on validation, so the checkpoint keeps them"
            + ("" if init is not None else " (an untrained model)")
            + "; try more --epochs or --max-steps, another --lr, or a longer history")
    record = TrainingRecord(
        settings=replace(config, batch_size=result.batch_size or config.batch_size),
        epochs_run=result.epochs, steps=result.steps, best_epoch=result.best_epoch if trainable else None,
        steps_per_epoch=result.steps_per_epoch, round_steps=result.round_steps, stopped=result.stopped,
        window_flops=window_flops,
        init_from=InitFrom(init.stored.path, init.stored.sha256) if init is not None else None,
        split={sid: {"train": sp.train, "val": sp.val, "test": sp.test} for sid, sp in splits.items()}
        if explicit is None else asdict(explicit),
        seen_until=seen_until(series, {sid: sp.train + sp.val for sid, sp in splits.items()})
        if series.time_col else None,  # row numbers restart in every file: they cannot say what is new
        val_mse_scaled=val_mse, warnings=tuple(warnings), world_size=dist.world_size if dist else 1)
    return Forecaster(
        model=model,
        model_info=ModelInfo(model_config.name, resolved, window_norm, sum(p.numel() for p in model.parameters()), quantiles,
                       model_config.ensemble),
        schema=DataSchema(series.source, series.time_col, tuple(series.targets), series.id_col, series.freq,
                          series.integer_time, layout.lookback, layout.horizon, tuple(series.ids),
                          layout.pad_short),
        policy=ReadingPolicy(series.freq_given, series.fill, series.decimal, series.dayfirst, series.date_format,
                             series.wide),
        scaler=data.scaler, training=record,
        versions=Versions(__version__, torch.__version__.split("+")[0], platform.python_version()),
        notes=tuple(notes), calibration=calibration, covariates=covariates, choices=choices, transform=data.transform)


def seen_until(series: SeriesSet, rows: dict[str, int]) -> dict[str, Any]:
    """Per series, the last timestamp training or validation used (ISO text, or the integer step)."""
    ids = series.ids
    last = series.stacked_times()[series.bounds[:-1] + np.array([rows[sid] for sid in ids], dtype=np.int64) - 1]
    if series.integer_time:
        stamps = np.asarray(last).tolist()
    else:  # each distinct time written once (a panel's series mostly end together): str() of a Timestamp
        codes, distinct = pd.factorize(last)
        stamps = np.array([str(t) for t in distinct], dtype=object)[codes].tolist()
    return dict(zip(ids, stamps))


def constant_targets(series: SeriesSet, splits: dict[str, Split]) -> list[str]:
    """A warning for each target that does not change over the training rows of some series."""
    warnings = []
    ids = series.ids
    train = np.array([splits[sid].train for sid in ids], dtype=np.int64)
    spread = by_length_rows(series.stacked_values(), series.bounds[:-1], train, lambda stack: np.ptp(stack, axis=1))
    for c, target in enumerate(series.targets):
        flat = [sid for sid, still in zip(ids, (spread[:, c] == 0).tolist()) if still]
        if flat:
            where = "" if len(series.series) == 1 else f" of {len(flat)} of {len(series.series)} series (first {flat[0]!r})"
            warnings.append(f"target {target!r} is constant over the training rows{where}: the model can only "
                            "learn to repeat it; check that --target names the column to forecast")
    return warnings


def budget_notes(result: TrainResult, config: TrainConfig) -> list[str]:
    """What the user should know about how the budget ran: a capped automatic budget, a time budget."""
    notes = []
    if result.round_steps and result.round_steps < result.steps_per_epoch:
        notes.append(f"automatic budget: {result.steps} steps of batch {result.batch_size} (about "
                     f"{result.steps / result.steps_per_epoch:.2g} epochs of {result.steps_per_epoch} steps), "
                     f"validated every {result.round_steps} steps; --epochs N trains N full passes")
    if result.stopped == "time_budget":
        kept = (f"{result.history[-1].unit} {result.best_epoch}" if result.best_epoch
                else "the starting weights")
        notes.append(f"training stopped at the --time-budget of {config.time_budget:g} s after {result.steps} steps; "
                     f"the checkpoint keeps the best weights on validation ({kept})")
    return notes
