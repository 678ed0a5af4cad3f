"""The one training loop every model uses, and ``fit``: from loaded series to a trained, described model.

AdamW, MSE or MAE on scaled values (``--loss``; plus the pinball loss of a quantile head's other
quantiles), gradient clipping, warm-up then cosine learning-rate decay, early
stopping on the validation windows (the best weights are kept), seeding, CPU or CUDA (bf16 autocast
on CUDA). How many steps, and when validation comes, is ``budget.py``'s; an optional time budget
ends training early (the best weights are still kept). ``fit`` runs the loop on the torch intra-op
threads ``threads.py`` chooses for the work (or the user's count), restoring the setting after.
Library code never prints: progress goes to the callbacks the caller passes.
"""

from __future__ import annotations

import math
import platform
from contextlib import nullcontext
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, NamedTuple

import numpy as np
import torch
from torch import nn

from . import __version__, choosing, intervals, quantile_head
from .budget import VALIDATION_WINDOWS, Schedule, auto_batch_size, auto_epochs, plan_budget  # noqa: F401 (auto_epochs: kept importable here)
from .data import SeriesSet, season_length, seasons
from .distributed import Distributed
from .errors import TrainingError, UsageError
from .forecasting import check_schema, run_model
from .forecaster import DataSchema, Decision, Forecaster, InitFrom, ModelInfo, ReadingPolicy, TrainingRecord, Versions
from .covariates import fit_schema, without_constant
from .models._layers import Covariates
from .registry import check_covariates, create_model, get_spec, resolve_params
from .transform import TargetTransform
from .threads import TRAINING_STEP, forward_flops, pick_threads, using_threads
from .ensemble import Ensemble
from .window_norm import WINDOW_NORMS, WindowNorm
from .windows import (Scaler, Split, WindowSet, build_windows, default_horizon_lookback, default_split,
                      explicit_split, model_arrays, needs_padding, real_inputs, short_series, split_targets)


@dataclass(frozen=True)
class TrainConfig:
    """How to optimise: budget, batch, learning rate, early stopping, seed, device and threads."""

    epochs: int = 0  # 0 = the automatic budget (auto_budget): about 200 steps, at least 4 epochs, at most 2,000 steps
    max_steps: int = 0  # 0 = no cap beyond epochs
    time_budget: float = 0.0  # seconds of training; when spent, validate once more and stop (0 = none)
    batch_size: int = 0  # 0 = auto_batch_size(number of training windows)
    lr: float = 0.0  # 0 = the model's declared learning rate
    weight_decay: float = 1e-4  # on weight matrices only, never on biases or norms
    patience: int = 2
    clip: float = 1.0
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # torch intra-op threads; 0 = chosen by threads.pick_threads (as run: the count used)
    loss: str = "auto"  # the point loss on scaled values: mse, mae, or auto (as run: the one used; see auto_loss)
    schedule: Schedule = Schedule()

    def __post_init__(self) -> None:
        # Each rule is written as "inside the range", so NaN, which compares false, fails as well.
        rules = {"epochs": (self.epochs >= 0, "at least 0 (0 = the automatic budget)"),
                 "max_steps": (self.max_steps >= 0, "at least 0 (0 = no cap)"),
                 "batch_size": (self.batch_size >= 0, "at least 0 (0 = auto)"),
                 "patience": (self.patience >= 1, "at least 1"),
                 "lr": (0 <= self.lr <= 1, "in [0, 1] (0 = the model's default)"),
                 "weight_decay": (0 <= self.weight_decay < 1, "in [0, 1)"),
                 "clip": (self.clip > 0, "above 0"),
                 "time_budget": (0 <= self.time_budget < math.inf, "a number of seconds above 0, or 0 for none"),
                 "threads": (self.threads >= 0, "a number of threads, or 0 to choose them for the work"),
                 "seed": (0 <= self.seed < 2**32, "a whole number from 0 to 4294967295")}
        bad = [(name, need) for name, (ok, need) in rules.items() if not ok]
        if bad:
            name, need = bad[0]
            value = getattr(self, name)
            shown = f"{value:g}" if isinstance(value, float) else value  # as typed: -1, not -1.0
            raise UsageError(f"--{name.replace('_', '-')} {shown}: must be {need}")
        if self.loss not in ("auto", *quantile_head.POINT_LOSSES):
            raise UsageError(f"--loss {self.loss}: choose auto or one of {', '.join(quantile_head.POINT_LOSSES)}")


@dataclass(frozen=True)
class EpochReport:
    """One validation round: an epoch, or ``round_steps`` steps when an epoch is longer than the
    automatic budget's round (``unit`` says which)."""

    epoch: int
    epochs: int
    steps: int
    train_loss: float
    val_loss: float
    best: bool
    seconds: float
    unit: str = "epoch"  # "epoch", or "round" when validation comes every round_steps steps within epochs
    probe: str = ""  # the settings a probe trains (choosing.py), e.g. "window norm last, loss mae"; "" = the fit


# Why training ended (TrainResult.stopped, recorded in the checkpoint).
STOPPED = {"budget": "step budget spent", "early_stopping": "early stopping (no validation improvement)",
           "time_budget": "time budget spent", "nothing_to_train": "nothing to train"}


@dataclass
class TrainResult:
    val_loss: float
    epochs: int  # validation rounds run (epochs unless round_steps < steps_per_epoch)
    steps: int
    seconds: float
    batch_size: int = 0
    history: list[EpochReport] = field(default_factory=list)
    best_epoch: int = 0  # the round whose weights were kept; 0 = the starting weights
    steps_per_epoch: int = 0
    round_steps: int = 0  # steps between validations
    stopped: str = "nothing_to_train"  # a key of STOPPED


def _parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on weight matrices (2-D and up) only: decaying biases, norm gains or scalars
    towards zero regularises nothing and pulls a norm layer's scale off one."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available here; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise UsageError(f"--device {name!r}: choose auto, cpu or cuda")
    return torch.device(name)


def _autocast(device: torch.device):
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the weights, to restore the best epoch's after training."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _forward(model: nn.Module, windows: WindowSet, index) -> tuple[torch.Tensor, torch.Tensor]:
    x, y, covariates = windows.batch(index)
    return model(x, **covariates), y


@torch.no_grad()
def evaluate_loss(model: nn.Module, windows: WindowSet, batch_size: int = 1024,
                  loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                  dist: Distributed | None = None) -> float:
    """The training objective over all windows: mean squared error (mean over windows x steps x
    channels), or the mean of ``loss`` (the MAE, or a quantile head's loss). With ``dist`` each rank
    scores its shard and the sums are added over the ranks: every rank gets the same number."""
    if len(windows) == 0:
        return float("nan")
    model.eval()
    device = windows.values.device
    first, end = dist.shard(len(windows)) if dist else (0, len(windows))
    total, count = 0.0, 0
    for start in range(first, end, batch_size):
        with _autocast(device):
            pred, y = _forward(model, windows, slice(start, min(start + batch_size, end)))
        total += float(((pred.float() - y) ** 2).sum()) if loss is None else float(loss(pred.float(), y)) * y.numel()
        count += y.numel()
    if dist:
        total, count = dist.all_sum([total, count], device)
    return total / count


def train(model: nn.Module, train_set: WindowSet, val_set: WindowSet, config: TrainConfig,
          on_epoch: Callable[[EpochReport], None] | None = None,
          on_step: Callable[[int, int], None] | None = None, warm_start: bool = False,
          loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
          dist: Distributed | None = None, share: float = 1.0, window_flops: float = 0.0) -> TrainResult:
    """Optimise ``model`` on ``train_set``; keep the weights with the lowest validation loss.

    The budget: ``config.epochs`` passes, or the automatic budget (``auto_budget``), cut to
    ``config.max_steps``; a warm start (weights already trained) takes ``1 / schedule.warm_start_divisor``
    of the automatic budget. Validation comes after every epoch, or every round of steps when the
    automatic budget is shorter than its epochs would be; early stopping counts those rounds. With
    ``config.time_budget``, training validates once more and stops when that many seconds have passed.
    ``loss`` replaces the mean squared error (``quantile_head.quantile_loss`` for a quantile head).

    With ``dist`` (torchrun) the model trains as DistributedDataParallel: the budget and the batch
    are the whole run's, each rank takes its 1/world_size of every batch from the same permutation
    (so the steps, and the windows seen, are those of one process), and validation is summed over
    the ranks' shards, so that every rank makes the same decisions. ``share`` < 1 trains a probe on that
    share of the budget (``budget.plan_budget``).
    """
    objective = loss or quantile_head.mse
    device = resolve_device(config.device)
    model.to(device)
    train_set, val_set = train_set.to(device), val_set.to(device)
    started = time.perf_counter()
    params = [p for p in model.parameters() if p.requires_grad]
    if not params or len(train_set) == 0:
        return TrainResult(evaluate_loss(model, val_set, loss=loss), 0, 0, time.perf_counter() - started)

    generator = torch.Generator().manual_seed(config.seed)
    rules = config.schedule
    budget = plan_budget(len(train_set), rules, epochs=config.epochs, max_steps=config.max_steps,
                         batch_size=config.batch_size, patience=config.patience, warm_start=warm_start,
                         share=share, window_flops=window_flops)
    batch_size, per_epoch, total, round_steps = budget.batch_size, budget.steps_per_epoch, budget.total, budget.round_steps
    world = dist.world_size if dist else 1
    if world > min(len(train_set), batch_size):
        raise UsageError(f"{world} processes share each batch of {min(len(train_set), batch_size)} windows "
                         f"({len(train_set)} training windows), and each needs one at least: start at most "
                         f"{min(len(train_set), batch_size)} processes, or give a larger --batch-size")
    local_batch = batch_size // world  # each rank's share of a batch
    if dist:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    else:
        net = model
    rounds, unit, warmup, patience = budget.rounds, budget.unit, budget.warmup, budget.patience
    optimizer = torch.optim.AdamW(_parameter_groups(model, config.weight_decay), lr=config.lr)
    floor = rules.lr_floor

    def lr_factor(s: int) -> float:  # warm-up, then cosine from 1 down to the floor at the last step
        return min(1.0, (s + 1) / warmup) * (floor + (1 - floor) * math.cos(math.pi * min(s, total) / total))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    # Training starts from the untrained weights' validation loss (for zero-head models under window
    # normalisation that is repeating the window's level), so the weights kept are never worse on validation.
    best_loss = evaluate_loss(model, val_set, loss=loss, dist=dist) if len(val_set) else math.inf
    best_state = _snapshot(model) if len(val_set) else None
    result = TrainResult(math.nan, 0, 0, 0.0, batch_size, steps_per_epoch=per_epoch, round_steps=round_steps)
    stale, step, done, stopped = 0, 0, 0, None
    running, batches = torch.zeros((), device=device), 0
    model.train()
    while stopped is None:  # one pass over a fresh permutation of all training windows per epoch
        order = torch.randperm(len(train_set), generator=generator)
        if dist:  # rank r takes positions r, r + world, ... of the permutation (an equal share on every rank)
            order = order[: len(order) - len(order) % world][dist.rank :: world]
        order = order.to(device)
        for start in range(0, len(order), local_batch):
            with _autocast(device):
                pred, y = _forward(net, train_set, order[start : start + local_batch])
                step_loss = objective(pred.float(), y)
            optimizer.zero_grad(set_to_none=True)
            step_loss.backward()
            nn.utils.clip_grad_norm_(params, config.clip)
            optimizer.step()
            schedule.step()
            running += step_loss.detach()
            batches += 1
            step += 1
            if on_step:
                on_step(step, total)
            late = bool(config.time_budget) and time.perf_counter() - started >= config.time_budget
            if dist and config.time_budget:  # every rank stops at the same step
                late = not dist.all_agree(not late)
            if step % round_steps and step < total and not late:
                continue
            done += 1  # a validation round ends here
            train_loss = float(running) / max(batches, 1)
            if dist:
                train_loss = dist.all_sum([train_loss], device)[0] / world
            if not math.isfinite(train_loss):
                raise TrainingError(
                    f"training loss became {train_loss} in {unit} {done}; no checkpoint written. "
                    "Try a lower --lr, or check the data for extreme values"
                )
            val_loss = evaluate_loss(model, val_set, loss=loss, dist=dist) if len(val_set) else train_loss
            improved = val_loss < best_loss - rules.improvement
            if improved:
                best_loss, stale, result.best_epoch = val_loss, 0, done
                best_state = _snapshot(model)
            else:
                stale += 1
            report = EpochReport(done, rounds, step, train_loss, val_loss, improved, time.perf_counter() - started, unit)
            result.history.append(report)
            if on_epoch:
                on_epoch(report)
            if late:
                stopped = "time_budget"
            elif step >= total:
                stopped = "budget"
            elif stale >= patience and step >= warmup:  # never stop while still warming up
                stopped = "early_stopping"
            if stopped:
                break
            running, batches = torch.zeros((), device=device), 0
            model.train()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result.val_loss, result.epochs, result.steps, result.stopped = best_loss, done, step, stopped
    result.seconds = time.perf_counter() - started
    return result


@dataclass(frozen=True)
class ModelConfig:
    """What to build: the registered model, its hyperparameters, window sizes and normalisation."""

    name: str = "gru"
    params: dict[str, Any] = field(default_factory=dict)
    lookback: int = 0  # 0 = from the frequency
    horizon: int = 0  # 0 = from the frequency
    window_norm: str = "auto"  # auto = probed on validation, from the declared one (choosing.py)
    quantiles: tuple[float, ...] = ()  # train a quantile head on these (and the median) with the pinball loss
    levels: tuple[float, ...] = ()  # conformal intervals to calibrate on the validation windows, in percent
    ensemble: int = 1  # members trained from consecutive seeds; the forecast is their median
    transform: str = "auto"  # the targets' transform (transform.py): auto = probed where the target is never negative
    allow_negative: bool = False  # with transform "none": forecasts of a never-negative target may go below zero
    drop_sparse: bool = False  # leave out (with a note) the series too short to train on, instead of refusing


class Prepared(NamedTuple):
    """The targets under one transform: what fit trains and validates on."""

    transform: TargetTransform
    scaler: Scaler
    lambdas: np.ndarray  # (S, C) each series' Box-Cox lambdas (zeros for the other transforms)
    train: WindowSet
    val: WindowSet


def transform_candidates(spec: ModelConfig, series: SeriesSet, init: Forecaster | None) -> list[str]:
    """The transforms fit probes, the declared one ("none") first: a warm start keeps its checkpoint's, a
    given --transform is used as given, and auto tries "log" beside "none" for targets never negative."""
    if init is not None:
        return [init.transform.kind]
    if spec.transform != "auto":
        return [spec.transform]
    nonnegative = all(len(s.values) == 0 or s.values.min() >= 0 for s in series.series)
    return ["none", "log"] if nonnegative and not spec.allow_negative else ["none"]


def resolve_windows(series: SeriesSet, spec: ModelConfig, split: Split | None, notes: list[str]) -> tuple[int, int]:
    """Lookback and horizon: the user's, or defaults by frequency, shrunk to fit a typical series.

    The default lookback is cut to what the (lower) median series can hold (half its training rows),
    so a panel with a few short series keeps the frequency's lookback, and those series are padded
    (``windows.needs_padding``); with one series (or an explicit split) the median is that length.
    """
    horizon_default, lookback_default = default_horizon_lookback(series.freq)
    horizon = spec.horizon or horizon_default
    lookback = spec.lookback
    if not lookback:
        lengths = sorted(len(s.times) for s in series.series)
        typical = lengths[(len(lengths) - 1) // 2]  # the lower median: fewer than half are shorter, and padded
        usable = (split.train if split else int(typical * 0.9)) - horizon
        lookback = max(2, min(lookback_default, usable // 2))
        if lookback < lookback_default:
            notes.append(f"lookback {lookback} (shortened from {lookback_default} to fit the "
                         f"{'series' if len(series.series) == 1 else 'median series'})")
    return lookback, horizon


def warm_start_config(init: Forecaster, asked: ModelConfig) -> ModelConfig:
    """The model a warm start trains: the checkpoint's, which the options given must not contradict."""
    clashes = [f"{flag} {mine} (the checkpoint has {theirs})"
               for flag, mine, theirs in (("--model", asked.name, init.spec.name),
                                          ("--lookback", asked.lookback, init.lookback),
                                          ("--horizon", asked.horizon, init.horizon),
                                          ("--window-norm", asked.window_norm, init.spec.window_norm),
                                          ("--transform", asked.transform, init.transform.kind))
               if mine not in (None, 0, "auto", theirs)]
    if asked.params:
        clashes.append("--param (the hyperparameters come from the checkpoint)")
    if asked.ensemble not in (1, init.spec.ensemble):
        clashes.append(f"--ensemble {asked.ensemble} (the checkpoint has {init.spec.ensemble})")
    if asked.quantiles and tuple(asked.quantiles) != tuple(q for q in init.spec.quantiles if q in asked.quantiles):
        clashes.append(f"--quantiles (the checkpoint has {list(init.spec.quantiles) or 'none'})")
    levels = asked.levels or (init.calibration.levels if init.calibration else ())
    if asked.allow_negative and any(init.transform.floor):
        clashes.append("--allow-negative (the checkpoint floors its forecasts at 0)")
    if clashes:
        raise UsageError(f"--init-from {init.label}: continues the same model; drop {'; '.join(clashes)}, "
                         "or fit a fresh model without --init-from")
    return ModelConfig(init.spec.name, dict(init.spec.params), init.lookback, init.horizon, init.spec.window_norm,
                       init.spec.quantiles, levels, init.spec.ensemble, init.transform.kind,
                       drop_sparse=asked.drop_sparse)


def requested_model(asked: ModelConfig, init: Forecaster | None = None) -> ModelConfig:
    """The model fit trains: the one asked for (gru when none is named), or for a warm start the
    checkpoint's, which the options given must not contradict."""
    if init is not None:
        return warm_start_config(init, asked)
    spec = replace(asked, name=asked.name or "gru")
    resolve_params(spec.name, spec.params)
    return spec


def _seen_until(series: SeriesSet, rows: dict[str, int]) -> dict[str, Any]:
    """Per series, the last timestamp training or validation used (ISO text, or the integer step)."""
    return {s.id: (str(s.times[rows[s.id] - 1]) if not series.integer_time else int(s.times[rows[s.id] - 1]))
            for s in series.series}


def _constant_targets(series: SeriesSet, splits: dict[str, Split]) -> list[str]:
    """A warning for each target that does not change over the training rows of some series."""
    warnings = []
    for c, target in enumerate(series.targets):
        flat = [s.id for s in series.series if np.ptp(s.values[: splits[s.id].train, c]) == 0]
        if flat:
            where = "" if len(series.series) == 1 else f" of {len(flat)} of {len(series.series)} series (first {flat[0]!r})"
            warnings.append(f"target {target!r} is constant over the training rows{where}: the model can only "
                            "learn to repeat it; check that --target names the column to forecast")
    return warnings


def _window_flops(model: nn.Module, train_set: WindowSet) -> float:
    """FLOPs of ``model``'s forward on one training window (recorded, so forecasts need not count)."""
    x, _, covariates = train_set.batch(slice(0, 1))
    return forward_flops(model, x, covariates)


def _auto_threads(window_flops: float, train_set: WindowSet, config: TrainConfig) -> int:
    """The intra-op threads for training steps at the batch size train() will use."""
    batch = config.batch_size or auto_batch_size(len(train_set), config.schedule,
                                                 0.0 if config.epochs or config.max_steps else window_flops)
    return pick_threads(window_flops * batch * TRAINING_STEP)


def _budget_notes(result: TrainResult, config: TrainConfig) -> list[str]:
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


def auto_loss(series: SeriesSet, name: str) -> str:
    """The declared loss ``--loss auto`` starts its probes from (``choosing.py``): for a panel, the loss
    model ``name`` declares (``Capabilities.panel_loss``), for one series MSE.

    Declared from M4 Weekly's validation holdout (each series' last 13 training values; docs/benchmarks.md,
    "M4 Weekly"): MAE for nbeats (OWA 0.751 against 0.845 with MSE), nbeats_interpretable (0.775 against
    0.884), patchtst (0.760 against 0.830), nlinear (0.856 against 0.906), dlinear (0.858 against
    0.898), tcn (0.796 against 0.867), cnn (0.817 against 0.865), lstm_attention (0.829 against
    0.940), bilstm (0.839 against 0.863) and stacked_lstm (0.900 against 0.907); MSE for lstm (0.841
    against 0.884), gru (0.882 against 0.899), rnn (with its panel window norm last: 0.870) and every
    model not yet validated (transformer, informer, transformer_xl, cnn_lstm_transformer)."""
    return get_spec(name).capabilities.panel_loss if len(series.series) > 1 else "mse"


def auto_window_norm(series: SeriesSet, name: str) -> str:
    """The declared window normalisation ``--window-norm auto`` starts its probes from (``choosing.py``):
    the model's (validated on ETT, one long series), or on a panel its ``panel_window_norm`` where it declares one (validated on M4 Weekly's
    holdout: rnn with last, OWA 0.870 against 1.034 with mean; docs/benchmarks.md, "M4 Weekly")."""
    caps = get_spec(name).capabilities
    return caps.panel_window_norm if len(series.series) > 1 and caps.panel_window_norm else caps.window_norm


def _objective(quantiles: tuple[float, ...], point_loss: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None:
    """The training objective: the point loss (None: the loop's MSE), under a quantile head with the pinball loss."""
    point = quantile_head.POINT_LOSSES[point_loss]
    return quantile_head.quantile_loss(quantiles, point) if quantiles else (None if point_loss == "mse" else point)


def _calibrate(model: nn.Module, val_set: WindowSet, levels: tuple[float, ...], quantiles: tuple[float, ...],
               val_loss: float, exact: bool) -> tuple[Any, float]:
    """The conformal calibration of ``levels`` on the validation windows (None without levels), and the
    point forecast's validation MSE (``val_loss`` itself when ``exact``: the model trained on the MSE alone)."""
    if not levels and exact:
        return None, val_loss
    if len(val_set) == 0:  # (fit has refused --level without validation windows)
        return None, val_loss if exact else float("nan")  # no validation MSE to report
    x, y, covariates = val_set.batch(slice(None))
    x, y = x.numpy(), y.numpy()
    pred = run_model(model, x, {k: v.numpy() for k, v in covariates.items()}).astype(np.float64)
    actual = y.astype(np.float64)
    point = intervals.point(pred, quantiles)
    scale = intervals.window_scale(x, val_set.origins)  # origins: the real rows before each window's targets
    calibration = intervals.calibrate(pred, actual, levels, quantiles, scale) if levels else None
    return calibration, float(np.mean((point - actual) ** 2))


def fit(series: SeriesSet, spec: ModelConfig, config: TrainConfig = TrainConfig(), split: Split | None = None,
        on_epoch: Callable[[EpochReport], None] | None = None,
        on_step: Callable[[int, int], None] | None = None,
        init: Forecaster | None = None, dist: Distributed | None = None) -> Forecaster:
    """Train ``spec`` on ``series``: split chronologically, scale on training rows, train, describe.

    ``init`` is a checkpoint of the same model to continue from (a warm start: its weights, a shorter
    automatic budget); the data must fit its schema. How ``series`` was read is recorded, so that
    later commands read new data alike. ``dist``: this process's rank in a torchrun run (``train``).
    """
    if not 1 <= spec.ensemble <= 64:
        raise UsageError(f"--ensemble {spec.ensemble}: give 1 (no ensemble) to 64 members")
    if spec.window_norm not in ("auto", *WINDOW_NORMS):
        raise UsageError(f"--window-norm {spec.window_norm!r}: choose auto or one of {', '.join(WINDOW_NORMS)}")
    notes: list[str] = list(series.notes)  # how the data was read (a decimal separator decided, say): kept too
    check_covariates(spec.name, series.covariate_inputs)  # before anything is built: nothing accepted and ignored
    lookback, horizon = resolve_windows(series, spec, split, notes)
    pad_short = split is None and (init.schema.pad_short if init is not None else
                                   needs_padding(series, lookback, horizon))
    splits = explicit_split(series, split, lookback, horizon) if split else \
        default_split(series, lookback, horizon, pad_short=pad_short, drop_short=spec.drop_sparse)
    left_out = [s.id for s in series.series if s.id not in splits]
    if left_out:  # --drop-sparse: the series too short to train or validate on are left out, by name
        series = replace(series, series=[s for s in series.series if s.id in splits])
        notes.append(f"--drop-sparse: left out {len(left_out)} series too short for lookback {lookback} and "
                     f"horizon {horizon}: {', '.join(repr(sid) for sid in left_out[:10])}"
                     + (f" and {len(left_out) - 10} more" if len(left_out) > 10 else ""))
    if pad_short and init is None:
        notes.append(f"{short_series(series, lookback, horizon)} of {len(series.series)} series are too short for "
                     f"lookback {lookback}: windows reach up to {lookback - real_inputs(lookback, horizon)} rows "
                     "before the first row of each series, repeating its first value, so that they keep their "
                     "windows; losses and scores use real rows only")
    unvalidated = [sp.train for sp in splits.values() if sp.val == 0] if split is None else []
    if unvalidated:
        context = real_inputs(lookback, horizon) if pad_short else lookback
        untrained = sum(rows < context + horizon for rows in unvalidated)
        notes.append(f"{len(unvalidated)} of {len(splits)} series are too short to hold validation rows after a "
                     "training window: they train on all their rows, and the other series validate"
                     + (f"; {untrained} of them are too short for a training window too (fewer than {context + horizon} "
                        "rows) and are only forecast" if untrained else ""))
    params = dict(spec.params)
    if get_spec(spec.name).capabilities.season and "season" not in params:
        params["season"] = season_length(series.freq)
    resolved = resolve_params(spec.name, params)
    if get_spec(spec.name).capabilities.season and int(resolved["season"] or 1) > lookback:
        notes.append(f"{spec.name}: its season of {resolved['season']} steps is longer than the lookback {lookback}, "
                     f"so it cannot use it; give --lookback {resolved['season']} or more")
    quantiles = quantile_head.with_median(spec.quantiles) if spec.quantiles else ()
    window_norm = auto_window_norm(series, spec.name) if spec.window_norm == "auto" else spec.window_norm
    train_rows = {sid: sp.train for sid, sp in splits.items()}
    dropped: list[str] = []
    if init is None:
        series, dropped = without_constant(series, train_rows)
    covariates = init.covariates if init is not None else fit_schema(series, train_rows)
    widths = Covariates(*covariates.widths)

    def build(norm: str, count: int = spec.ensemble) -> list[WindowNorm]:
        members = []
        for i in range(count):  # member i starts from seed + i
            torch.manual_seed(config.seed + i)
            np.random.seed((config.seed + i) % 2**32)
            members.append(WindowNorm(create_model(spec.name, lookback, horizon, len(series.targets), params,
                                                   quantiles=quantiles, covariates=widths),
                                      norm, seasons(series.freq)))
        return members

    members = build(window_norm)
    model = members[0] if len(members) == 1 else Ensemble(members)
    if init is not None:
        check_schema(init, series)
        model.load_state_dict(init.model.state_dict())
    prepared: dict[str, Prepared] = {}

    def prepare(kind: str) -> Prepared:  # the scaler and windows of the targets under one transform
        if kind not in prepared:
            transform = init.transform.refit(series, train_rows) if init is not None else \
                TargetTransform.fit(kind, series, train_rows, allow_negative=spec.allow_negative)
            shown = transform.apply(series)
            scaler = Scaler.fit(shown, train_rows)
            arrays, static = model_arrays(shown, scaler, covariates)
            prepared[kind] = Prepared(
                transform, scaler, transform.lambdas_of(series),
                build_windows(shown, arrays, lookback, horizon, split_targets(splits, "train"), pad_short=pad_short,
                              static=static, past=widths.past),
                build_windows(shown, arrays, lookback, horizon, split_targets(splits, "val"), pad_short=pad_short,
                              static=static, past=widths.past, at_most=VALIDATION_WINDOWS))
        return prepared[kind]

    transforms = transform_candidates(spec, series, init)
    transform, scaler, _, train_set, val_set = prepare(transforms[0])
    if len(train_set) == 0:
        raise UsageError(f"no training windows: lookback {lookback} + horizon {horizon} exceed the training rows")
    if spec.levels:
        if len(val_set) == 0:
            raise UsageError("--level: intervals are calibrated on the validation windows, and this split has "
                             "none; give --split with a validation part")
        intervals.require_windows(spec.levels, len(val_set))
    window_flops = _window_flops(model, train_set)
    # Attention models train better at a lower peak learning rate; a model declares its own (lr).
    asked_loss = config.loss
    config = replace(config, lr=config.lr or get_spec(spec.name).capabilities.lr,
                     threads=config.threads or _auto_threads(window_flops, train_set, config),
                     loss=config.loss if config.loss != "auto" else
                     init.training.settings.loss if init is not None else auto_loss(series, spec.name))
    # the window normalisation first (its candidates differ most), then the transform with the winner (a
    # transform chosen beside a poor normalisation did not carry over: M3 Quarterly's gru chose log with the
    # window mean, and its OWA went from 0.954 to 1.012 with deseason), then the loss with both
    stages = [("window_norm", [window_norm] if spec.window_norm != "auto" else
               choosing.norm_candidates(window_norm, seasons(series.freq), lookback)),
              ("transform", transforms),
              ("loss", [config.loss] if asked_loss != "auto" else
               list(dict.fromkeys([config.loss, *quantile_head.POINT_LOSSES])))]
    probed = any(len(candidates) > 1 for _, candidates in stages)
    unprobed = ("a warm start keeps its checkpoint's" if init is not None else
                "torchrun does not probe" if dist is not None else
                "there are no validation windows to probe on" if not len(val_set) else
                "" if any(p.requires_grad for p in model.parameters()) else "there is nothing to train")
    if probed and unprobed and init is None:
        notes.append(f"transform {transforms[0]}, window norm {window_norm} and loss {config.loss}, the declared "
                     f"ones: {unprobed}")
    with using_threads(config.threads):
        choices: tuple[Decision, ...] = ()
        training = config  # what the final training runs on (less the probes' time of a --time-budget)
        if probed and not unprobed:

            def probe(settings: dict[str, str]) -> tuple[float, int]:
                candidate = build(settings["window_norm"], 1)[0]
                data = prepare(settings["transform"])
                label = (f"transform {settings['transform']}, " if len(transforms) > 1 else "") + \
                    f"window norm {settings['window_norm']}, loss {settings['loss']}"
                report = (lambda r: on_epoch(replace(r, probe=label))) if on_epoch else None
                try:
                    done = train(candidate, data.train, data.val, probing, report, on_step, share=choosing.PROBE_SHARE,
                                 loss=_objective(quantiles, settings["loss"]), window_flops=window_flops)
                except TrainingError:  # this candidate diverged: it loses, and the others decide
                    return math.inf, 0
                candidate.to("cpu")
                common = _common_units(data, prepare("none")) if len(transforms) > 1 else None
                return choosing.validation_score(candidate, data.val, quantiles, common), done.steps

            probing = replace(config, time_budget=config.time_budget * choosing.PROBE_SHARE)
            probes_started = time.perf_counter()
            chosen, choices = choosing.choose(
                stages, {"transform": transforms[0], "window_norm": window_norm, "loss": config.loss}, probe)
            if config.time_budget:  # the probes spent part of the user's time budget
                left = config.time_budget - (time.perf_counter() - probes_started)
                training = replace(config, time_budget=max(config.time_budget * choosing.PROBE_SHARE, left))
            # built again, seeded as a fit forced to the chosen settings builds them: the same model, to the bit
            window_norm, members = chosen["window_norm"], build(chosen["window_norm"])
            model = members[0] if len(members) == 1 else Ensemble(members)
            config, training = replace(config, loss=chosen["loss"]), replace(training, loss=chosen["loss"])
            transform, scaler, _, train_set, val_set = prepare(chosen["transform"])
            notes.append(f"chosen: {choosing.describe(choices)}; force with --transform, --window-norm and --loss")
        loss = _objective(quantiles, config.loss)
        results = [train(member, train_set, val_set, replace(training, seed=(config.seed + i) % 2**32), on_epoch,
                         on_step, warm_start=init is not None, loss=loss, dist=dist, window_flops=window_flops)
                   for i, member in enumerate(members)]
        result = results[0]  # the record describes the first member; the notes say what the others did
        model.to("cpu")
        calibration, val_mse = _calibrate(model, val_set, spec.levels, quantiles, result.val_loss,
                                          exact=loss is None and len(members) == 1)
    if len(members) > 1:
        notes.append(f"ensemble of {len(members)} members (seeds {config.seed}..{config.seed + len(members) - 1}), "
                     f"median forecast; steps per member {', '.join(str(r.steps) for r in results)}")
    notes += _budget_notes(result, config)  # the user's --time-budget, of which the probes took their share
    warnings = dropped + _constant_targets(series, splits)
    trainable = any(p.requires_grad for p in model.parameters())
    if trainable and result.best_epoch == 0 and len(val_set):
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
        split={sid: asdict(sp) for sid, sp in splits.items()} if split is None else asdict(split),
        seen_until=_seen_until(series, {sid: sp.train + sp.val for sid, sp in splits.items()})
        if series.time_col else None,  # row numbers restart in every file: they cannot say what is new
        val_mse_scaled=val_mse, warnings=tuple(warnings), world_size=dist.world_size if dist else 1)
    return Forecaster(
        model=model,
        spec=ModelInfo(spec.name, resolved, window_norm, sum(p.numel() for p in model.parameters()), quantiles,
                       spec.ensemble),
        schema=DataSchema(series.source, series.time_col, tuple(series.targets), series.id_col, series.freq,
                          series.integer_time, lookback, horizon, tuple(s.id for s in series.series), pad_short),
        policy=ReadingPolicy(series.freq_given, series.fill, series.decimal, series.dayfirst, series.date_format,
                             series.wide),
        scaler=scaler, training=record,
        versions=Versions(__version__, torch.__version__.split("+")[0], platform.python_version()),
        notes=tuple(notes), calibration=calibration, covariates=covariates, choices=choices, transform=transform)

