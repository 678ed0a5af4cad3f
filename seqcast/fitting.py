"""``fit``: from loaded series to a trained, described model.

The steps: split each series chronologically (with the notes on what the split did to short
series), describe the network and prepare its windows under each target transform, probe the
choices fit makes on its own validation windows (``choosing.py``), train the chosen settings with
the one training loop (``training.train``; each member of an ensemble from its own seed), and
record what was done (``fit_record.py``). Training runs on the torch intra-op threads ``threads.py``
chooses for the work (or the user's count), restoring the setting after. Library code never
prints: progress goes to the callbacks the caller passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

import numpy as np
import torch
from torch import nn

from . import choosing, fit_record, intervals, quantile_head
from .budget import VALIDATION_WINDOWS, auto_batch_size
from .build import DEFAULT_MAX_PARAMETERS, build_network, members_of
from .covariates import fit_schema, without_constant
from .data import SeriesSet, season_length, seasons
from .distributed import Distributed
from .errors import UsageError
from .forecaster import CovariateSchema, Decision, Forecaster
from .forecasting import check_schema
from .evaluation import validation_backtest
from .layout import Layout, longer_layouts, make_layout
from .models._layers import Covariates
from .registry import POINT_LOSSES, WINDOW_NORMS, check_covariates, get_spec, resolve_params
from .threads import TRAINING_STEP, forward_flops, pick_threads, using_threads
from .budget import TrainConfig
from .training import EpochReport, objective, train
from .transform import TargetTransform
from .scaling import Scaler
from .windows import Split, WindowSet, build_windows, model_arrays, split_targets

if TYPE_CHECKING:  # distill.py calls fit(); fit reaches the teacher only through the objects it passes
    from .distill import Labels, Teaching


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
    max_parameters: int = DEFAULT_MAX_PARAMETERS  # each network's budget, refused as it is built (build.create_model)
    lookback_probe: bool = True  # without --lookback, probe twice the default (layout.longer_layouts); auto's members share one


class Prepared(NamedTuple):
    """The targets under one transform: what fit trains and validates on."""

    transform: TargetTransform
    scaler: Scaler
    lambdas: np.ndarray  # (S, C) each series' Box-Cox lambdas (zeros for the other transforms)
    train: WindowSet
    val: WindowSet


def transform_candidates(model_config: ModelConfig, series: SeriesSet, init: Forecaster | None) -> list[str]:
    """The transforms fit probes, the declared one ("none") first: a warm start keeps its checkpoint's, a
    given --transform is used as given, and auto tries "log" beside "none" for targets never negative."""
    if init is not None:
        return [init.transform.kind]
    if model_config.transform != "auto":
        return [model_config.transform]
    nonnegative = bool((series.stacked_values() >= 0).all())
    return ["none", "log"] if nonnegative and not model_config.allow_negative else ["none"]


def warm_start_config(init: Forecaster, asked: ModelConfig) -> ModelConfig:
    """The model a warm start trains: the checkpoint's, which the options given must not contradict."""
    clashes = [f"{flag} {mine} (the checkpoint has {theirs})"
               for flag, mine, theirs in (("--model", asked.name, init.model_info.name),
                                          ("--lookback", asked.lookback, init.lookback),
                                          ("--horizon", asked.horizon, init.horizon),
                                          ("--window-norm", asked.window_norm, init.model_info.window_norm),
                                          ("--transform", asked.transform, init.transform.kind))
               if mine not in (None, 0, "auto", theirs)]
    if asked.params:
        clashes.append("--param (the hyperparameters come from the checkpoint)")
    if asked.ensemble not in (1, init.model_info.ensemble):
        clashes.append(f"--ensemble {asked.ensemble} (the checkpoint has {init.model_info.ensemble})")
    if asked.quantiles and tuple(asked.quantiles) != tuple(q for q in init.model_info.quantiles if q in asked.quantiles):
        clashes.append(f"--quantiles (the checkpoint has {list(init.model_info.quantiles) or 'none'})")
    levels = asked.levels or (init.calibration.levels if init.calibration else ())
    if asked.allow_negative and any(init.transform.floor):
        clashes.append("--allow-negative (the checkpoint floors its forecasts at 0)")
    if clashes:
        raise UsageError(f"--init-from {init.label}: continues the same model; drop {'; '.join(clashes)}, "
                         "or fit a fresh model without --init-from")
    return ModelConfig(init.model_info.name, dict(init.model_info.params), init.lookback, init.horizon, init.model_info.window_norm,
                       init.model_info.quantiles, levels, init.model_info.ensemble, init.transform.kind,
                       drop_sparse=asked.drop_sparse, max_parameters=asked.max_parameters)


def requested_model(asked: ModelConfig, init: Forecaster | None = None) -> ModelConfig:
    """The model fit trains: the one asked for (auto, the validated ensemble, when none is named), or for
    a warm start the checkpoint's, which the options given must not contradict."""
    if init is not None and init.model_info.members:  # an auto ensemble continues as one (auto.fit_auto)
        if asked.name not in (None, "auto"):
            raise UsageError(f"--init-from {init.label}: continues the auto ensemble it holds; drop --model "
                             f"{asked.name}, or fit a fresh model without --init-from")
        return replace(asked, name="auto")
    if init is not None:
        return warm_start_config(init, asked)
    model_config = replace(asked, name=asked.name or "auto")
    if model_config.name != "auto":
        resolve_params(model_config.name, model_config.params)
    return model_config




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




def fit(series: SeriesSet, model_config: ModelConfig, config: TrainConfig = TrainConfig(), split: Split | None = None,
        on_epoch: Callable[[EpochReport], None] | None = None,
        on_step: Callable[[int, int], None] | None = None,
        init: Forecaster | None = None, dist: Distributed | None = None, backtest: bool = True,
        teaching: "Teaching | None" = None) -> Forecaster:
    """Train ``model_config`` on ``series``: split chronologically, scale on training rows, train, describe,
    and (``backtest``) score the validation windows in the targets' units (``Forecaster.backtest``).

    ``init`` is a checkpoint of the same model to continue from (a warm start: its weights, a shorter
    automatic budget); the data must fit its schema. How ``series`` was read is recorded, so that
    later commands read new data alike. ``dist``: this process's rank in a torchrun run (``train``).
    ``teaching``: the teacher whose forecasts are mixed into the training targets (``distill.py``).
    """
    if not 1 <= model_config.ensemble <= 64:
        raise UsageError(f"--ensemble {model_config.ensemble}: give 1 (no ensemble) to 64 members")
    if model_config.window_norm not in ("auto", *WINDOW_NORMS):
        raise UsageError(f"--window-norm {model_config.window_norm!r}: choose auto or one of {', '.join(WINDOW_NORMS)}")
    read_notes = list(series.notes)  # how the data was read (a decimal separator decided, say): kept too
    notes: list[str] = []  # what fit did and chose; the notes of the layout trained on go before them
    check_covariates(model_config.name, series.covariate_inputs)  # before anything is built: nothing accepted and ignored
    layout = make_layout(series, model_config, split, init)
    series = layout.series
    params, resolved = _hyperparameters(model_config, series)
    quantiles = quantile_head.with_median(model_config.quantiles) if model_config.quantiles else ()
    window_norm = auto_window_norm(series, model_config.name) if model_config.window_norm == "auto" else model_config.window_norm
    train_rows = {sid: sp.train for sid, sp in layout.splits.items()}
    dropped: list[str] = []
    if init is None:
        series, dropped = without_constant(series, train_rows)
        layout = layout._replace(series=series)
    covariates = init.covariates if init is not None else fit_schema(series, train_rows)
    layouts = [layout, *longer_layouts(series, model_config, split, layout, init is not None or dist is not None)]
    labels = teaching.labels(series, layout.splits) if teaching is not None else None
    candidates = Candidates(layouts, model_config, params, quantiles, covariates, config.seed, init, labels)
    model = candidates.build(window_norm)
    if init is not None:
        check_schema(init, series)
        model.load_state_dict(init.model.state_dict())
    transforms = transform_candidates(model_config, series, init)
    data = candidates.prepare(transforms[0])
    _check_windows(data, model_config, layout)
    window_flops = candidates.window_flops(window_norm, transforms[0], model)
    # Attention models train better at a lower peak learning rate; a model declares its own (lr).
    asked_loss, asked_threads = config.loss, config.threads
    config = replace(config, lr=config.lr or get_spec(model_config.name).capabilities.lr,
                     threads=config.threads or _auto_threads(window_flops, data.train, config),
                     loss=config.loss if config.loss != "auto" else
                     init.training.settings.loss if init is not None else auto_loss(series, model_config.name))
    stages = _stages(model_config, layouts, window_norm, transforms, config.loss, asked_loss)
    probed = any(len(options) > 1 for _, options in stages)
    unprobed = ("a warm start keeps its checkpoint's" if init is not None else
                "torchrun does not probe" if dist is not None else
                "there are no validation windows to probe on" if not len(data.val) else
                "" if any(p.requires_grad for p in model.parameters()) else "there is nothing to train")
    if probed and unprobed and init is None:
        notes.append(f"transform {transforms[0]}, window norm {window_norm} and loss {config.loss}"
                     + (f" and lookback {layout.lookback}" if len(layouts) > 1 else "") + f", the declared ones: {unprobed}")
    choices: tuple[Decision, ...] = ()
    training = config  # what the final training runs on (less the probes' time of a --time-budget)
    if probed and not unprobed:
        with using_threads(config.threads):
            chosen, choices, training = choosing.run_probes(
                candidates, stages, {"transform": transforms[0], "window_norm": window_norm, "loss": config.loss,
                                     "lookback": str(layout.lookback)}, config, on_epoch, on_step)
        # built again, seeded as a fit forced to the chosen settings builds them: the same model, to the bit
        candidates = candidates.at(int(chosen["lookback"]))
        layout, window_flops = candidates.layout, candidates.window_flops(window_norm, transforms[0])
        window_norm, model = chosen["window_norm"], candidates.build(chosen["window_norm"])
        data = candidates.prepare(chosen["transform"])
        settings = {"loss": chosen["loss"], "threads": asked_threads or _auto_threads(window_flops, data.train, config)}
        config, training = replace(config, **settings), replace(training, **settings)
        notes.append(f"chosen: {choosing.describe(choices)}; force with --transform, --window-norm, --loss and "
                     "--lookback")
    notes[:0] = [*read_notes, *layout.notes, *_season_note(model_config, resolved, layout.lookback)]
    with using_threads(config.threads):
        loss = objective(quantiles, config.loss)
        members = members_of(model)
        results = _train_members(members, data, config, training, loss, init is not None, dist, window_flops,
                                 on_epoch, on_step)
        model.to("cpu")
        calibration, val_mse = fit_record.calibrate(model, data.val, model_config.levels, quantiles, results[0].val_loss,
                                                    exact=loss is None and len(members) == 1)
    if labels is not None:
        notes.append(labels.note(data.train))
    fitted = fit_record.describe(
        model, model_config, layout, data, explicit=split, resolved=resolved, window_norm=window_norm, quantiles=quantiles,
        covariates=covariates, config=config, results=results, init=init, dist=dist, window_flops=window_flops,
        notes=notes, dropped=dropped, calibration=calibration, val_mse=val_mse, choices=choices)
    if backtest:
        with using_threads(config.threads):
            fitted = replace(fitted, backtest=validation_backtest(fitted, layout.series, layout.splits))
    if labels is not None:
        with using_threads(config.threads):
            fitted = replace(fitted, distillation=labels.record(fitted, layout.series, layout.splits, data.train))
    return fitted


def validation_data(series: SeriesSet, model_config: ModelConfig, split: Split | None = None) -> Prepared:
    """The scaler and windows a fresh fit of ``model_config`` trains and validates on, under its transform
    (given, not "auto"): what ``--model auto`` scores its candidates on, the same for each of them."""
    layout = make_layout(series, model_config, split, None)
    train_rows = {sid: sp.train for sid, sp in layout.splits.items()}
    series, _ = without_constant(layout.series, train_rows)
    layout = layout._replace(series=series)
    return Candidates([layout], model_config, {}, (), fit_schema(series, train_rows), 0, None).prepare(
        model_config.transform)


def _hyperparameters(model_config: ModelConfig, series: SeriesSet) -> tuple[dict[str, Any], dict[str, Any]]:
    """The hyperparameters given (with the frequency's season, for a model that takes one) and all of
    them resolved against the model's constructor."""
    params = dict(model_config.params)
    if get_spec(model_config.name).capabilities.season and "season" not in params:
        params["season"] = season_length(series.freq)
    return params, resolve_params(model_config.name, params)


def _season_note(model_config: ModelConfig, resolved: dict[str, Any], lookback: int) -> list[str]:
    """A note when the model's season is longer than the lookback it trained at."""
    if get_spec(model_config.name).capabilities.season and int(resolved["season"] or 1) > lookback:
        return [f"{model_config.name}: its season of {resolved['season']} steps is longer than the lookback {lookback}, "
                f"so it cannot use it; give --lookback {resolved['season']} or more"]
    return []


class Candidates:
    """What fit may train: the network under any window normalisation (seeded, so that a network built
    again is the same to the bit), and the scaled windows under any target transform (made once each),
    at the first of ``layouts``; ``at(lookback)`` is the same at another layout's lookback."""

    def __init__(self, layouts: list[Layout], model_config: ModelConfig, params: dict[str, Any],
                 quantiles: tuple[float, ...], covariates: CovariateSchema, seed: int, init: Forecaster | None,
                 labels: "Labels | None" = None) -> None:
        self.layout, self.layouts, self.model_config, self.params = layouts[0], layouts, model_config, params
        self.quantiles, self.covariates, self.widths = quantiles, covariates, Covariates(*covariates.widths)
        self.seed, self.init, self.labels = seed, init, labels
        self.prepared: dict[str, Prepared] = {}
        self.others: dict[int, Candidates] = {self.layout.lookback: self}
        self.flops: float | None = None

    def at(self, lookback: int) -> "Candidates":
        """The candidates at the layout of ``lookback`` (the lookback of one of ``layouts``), made once."""
        if lookback not in self.others:
            layout = next(lay for lay in self.layouts if lay.lookback == lookback)
            other = Candidates([layout], self.model_config, self.params, self.quantiles, self.covariates, self.seed,
                               self.init, self.labels)
            self.others[lookback] = other
        return self.others[lookback]

    def window_flops(self, norm: str, kind: str, model: nn.Module | None = None) -> float:
        """FLOPs of the network's forward (under ``norm``; ``model``: that network, when the caller built it
        already) on one training window (under the transform ``kind``): what the automatic budget and the
        threads are chosen from, counted once per lookback."""
        if self.flops is None:
            self.flops = _window_flops(model if model is not None else self.build(norm), self.prepare(kind).train)
        return self.flops

    def build(self, norm: str, count: int = 0):
        """The network (``count`` members, default the ensemble's), member i seeded with seed + i."""
        series = self.layout.series
        return build_network(self.model_config.name, self.layout.lookback, self.layout.horizon, len(series.targets),
                             self.params, window_norm=norm, seasons=seasons(series.freq), quantiles=self.quantiles,
                             covariates=self.widths, members=count or self.model_config.ensemble, seed=self.seed,
                             max_parameters=self.model_config.max_parameters)

    def prepare(self, kind: str) -> Prepared:
        """The scaler and windows of the targets under the transform ``kind``."""
        if kind not in self.prepared:
            series, init, (lookback, horizon, pad_short, splits) = self.layout.series, self.init, self.layout[1:5]
            train_rows = {sid: sp.train for sid, sp in splits.items()}
            transform = init.transform.refit(series, train_rows) if init is not None else \
                TargetTransform.fit(kind, series, train_rows, allow_negative=self.model_config.allow_negative)
            shown = transform.apply(series)
            scaler = Scaler.fit(shown, train_rows)
            arrays, static = model_arrays(shown, scaler, self.covariates)
            train = build_windows(shown, arrays, lookback, horizon, split_targets(splits, "train"), pad_short=pad_short,
                                  static=static, past=self.widths.past)
            if self.labels is not None:  # the teacher's forecasts mixed into the targets (distill.py)
                train = self.labels.teach(train, series, shown, transform, scaler, self.quantiles)
            self.prepared[kind] = Prepared(
                transform, scaler, transform.lambdas_of(series), train,
                build_windows(shown, arrays, lookback, horizon, split_targets(splits, "val"), pad_short=pad_short,
                              static=static, past=self.widths.past, at_most=VALIDATION_WINDOWS))
        return self.prepared[kind]


def _check_windows(data: Prepared, model_config: ModelConfig, layout: Layout) -> None:
    """Refuse a split with no training windows, or intervals without the validation windows to calibrate on."""
    if len(data.train) == 0:
        raise UsageError(f"no training windows: lookback {layout.lookback} + horizon {layout.horizon} exceed the "
                         "training rows")
    if model_config.levels:
        if len(data.val) == 0:
            raise UsageError("--level: intervals are calibrated on the validation windows, and this split has "
                             "none; give --split with a validation part")
        intervals.require_windows(model_config.levels, len(data.val))


def _stages(model_config: ModelConfig, layouts: list[Layout], window_norm: str, transforms: list[str], loss: str,
            asked_loss: str) -> list[tuple[str, list[str]]]:
    """The candidates of each setting fit may probe, the declared one first; a forced setting has one.

    The window normalisation first (its candidates differ most), then the transform with the winner (a
    transform chosen beside a poor normalisation did not carry over: M3 Quarterly's gru chose log with the
    window mean, and its OWA went from 0.954 to 1.012 with deseason), then the loss with both, and last
    the longer lookback with all three (its probe costs the most: a longer window)."""
    layout = layouts[0]
    return [("window_norm", [window_norm] if model_config.window_norm != "auto" else
             choosing.norm_candidates(window_norm, seasons(layout.series.freq), layout.lookback)),
            ("transform", transforms),
            ("loss", [loss] if asked_loss != "auto" else list(dict.fromkeys([loss, *POINT_LOSSES]))),
            ("lookback", [str(lay.lookback) for lay in layouts])]


def _train_members(members: list[nn.Module], data: Prepared, config: TrainConfig, training: TrainConfig,
                   loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None, warm_start: bool,
                   dist: Distributed | None, window_flops: float, on_epoch: Callable[[EpochReport], None] | None,
                   on_step: Callable[[int, int], None] | None) -> list:
    """The final training: every member on ``training``'s settings, member i from seed + i."""
    return [train(member, data.train, data.val, replace(training, seed=(config.seed + i) % 2**32), on_epoch,
                  on_step, warm_start=warm_start, loss=loss, dist=dist, window_flops=window_flops)
            for i, member in enumerate(members)]


def _window_flops(model: nn.Module, train_set: WindowSet) -> float:
    """FLOPs of ``model``'s forward on one training window (recorded, so forecasts need not count)."""
    x, _, covariates = train_set.batch(slice(0, 1))
    return forward_flops(model, x, covariates)


def _auto_threads(window_flops: float, train_set: WindowSet, config: TrainConfig) -> int:
    """The intra-op threads for training steps at the batch size train() will use."""
    batch = config.batch_size or auto_batch_size(len(train_set), config.schedule,
                                                 0.0 if config.epochs or config.max_steps else window_flops)
    return pick_threads(window_flops * batch * TRAINING_STEP)
