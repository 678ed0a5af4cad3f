"""The trained model seqcast passes around: ``training.fit`` builds one, ``checkpoint.load`` reads one.

A ``Forecaster`` is the network plus everything needed to forecast with it and to say what it is,
in small frozen dataclasses. These dataclasses are the checkpoint's schema: a checkpoint stores them
as they are (each field under its name; ``decode.py``), so a field's annotation is its stored type.
Only ``checkpoint.py`` turns them into stored metadata and back (and upgrades older formats); every
other module reads these attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .budget import TrainConfig
from .decode import NOT_STORED
from .scaling import Scaler
from .transform import TargetTransform

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class Member:
    """One model of a weighted ensemble of different models (``--model auto``): what was built, its weight
    in the forecast, and what fit chose for it on the validation windows."""

    name: str
    params: dict[str, Any]
    window_norm: str
    n_parameters: int
    weight: float  # its share of the forecast: the members' weights are positive and sum to 1
    loss: str  # the point loss it trained on (as TrainConfig.loss; its own, since members choose their own)
    choices: tuple[Decision, ...] = ()


@dataclass(frozen=True)
class ModelInfo:
    """What was built: the registered model, its resolved hyperparameters and window normalisation."""

    name: str
    params: dict[str, Any]
    window_norm: str
    n_parameters: int
    quantiles: tuple[float, ...] = ()  # trained on these (the median among them) under a quantile head; () = point
    ensemble: int = 1  # members trained from seeds seed .. seed + N - 1; the forecast is their median
    # name "auto": the models whose weighted forecasts are summed (then name's own params, window_norm "none",
    # quantiles and ensemble 1 describe the whole); () = one registered model
    members: tuple[Member, ...] = ()


@dataclass(frozen=True)
class DataSchema:
    """The data the model was trained on: columns, frequency, window sizes and series."""

    source: str
    time_col: str | None
    targets: tuple[str, ...]
    id_col: str | None
    freq: str
    integer_time: bool
    lookback: int
    horizon: int
    series: tuple[str, ...]
    pad_short: bool = False  # windows may start before a series' first row, repeating its first value


@dataclass(frozen=True)
class Covariate:
    """One covariate the model reads (covariates.py), with the statistics of its training rows."""

    name: str  # its column (a calendar feature's name, covariates.CALENDAR_FEATURES, for kind calendar)
    kind: str  # "past", "future", "calendar" or "static"
    mean: tuple[float, ...]  # per model input: one for a number, one per category (its share of the series)
    std: tuple[float, ...]
    categories: tuple[str, ...] = ()  # a static category column's training vocabulary, one input each
    span: tuple[float, ...] = ()  # (lowest, highest) value of a numeric past, future or static column in
    # the rows fit read, for predict's note on values outside it; () for calendar features and categories


COVARIATE_KINDS = ("past", "calendar", "future", "static")  # the order of the stored columns


@dataclass(frozen=True)
class CovariateSchema:
    """The covariates a model reads, in input order: past (B, L, P); the known-future block (B, L + H, F),
    calendar features then future covariates; static (B, S)."""

    columns: tuple[Covariate, ...] = ()

    def of(self, kind: str) -> tuple[Covariate, ...]:
        return tuple(c for c in self.columns if c.kind == kind)

    def names(self, kind: str) -> tuple[str, ...]:
        return tuple(c.name for c in self.of(kind))

    @property
    def widths(self) -> tuple[int, int, int]:
        """(P, F, S): the model's covariate inputs (models/_layers.Covariates)."""
        width = lambda kinds: sum(len(c.mean) for c in self.columns if c.kind in kinds)  # noqa: E731
        return width(("past",)), width(("calendar", "future")), width(("static",))


@dataclass(frozen=True)
class ReadingPolicy:
    """How fit read its CSV, so that later commands read new history the same way."""

    freq_given: bool = False  # True: the frequency is imposed again; False: inferred again
    fill: str = "none"
    decimal: str | None = None
    dayfirst: bool | None = None
    date_format: str | None = None
    wide: bool = False  # one row per series, one column per time (fit --wide): read so again


@dataclass(frozen=True)
class InitFrom:
    """The checkpoint a warm start continued from."""

    path: str
    sha256: str


@dataclass(frozen=True)
class TrainingRecord:
    """How the model was trained, and what training found."""

    settings: "TrainConfig"  # as run: the batch size, learning rate and threads resolved (threads 0: not recorded)
    epochs_run: int  # validation rounds run: epochs, unless round_steps < steps_per_epoch
    steps: int
    best_epoch: int | None  # the round whose weights were kept; 0 = the starting weights; None: not recorded
    init_from: InitFrom | None
    split: dict[str, Any]  # per series {train, val, test} row counts, or one explicit split for all
    seen_until: dict[str, Any] | None  # per series the last timestamp fit used; None: not recorded
    val_mse_scaled: float
    warnings: tuple[str, ...] = ()
    steps_per_epoch: int | None = None  # None: not recorded (checkpoints before format 3)
    round_steps: int | None = None  # steps between validations; None: not recorded (one epoch)
    stopped: str | None = None  # why training ended, a key of training.STOPPED; None: not recorded
    window_flops: float | None = None  # FLOPs of the model's forward on one window; None: not recorded
    world_size: int = 1  # processes that trained it together (torchrun: data parallel); 1 = one

    @property
    def rounds_are_epochs(self) -> bool:
        """Whether each validation round was an epoch (else a round of ``round_steps`` steps)."""
        return self.round_steps is None or self.round_steps == self.steps_per_epoch


@dataclass(frozen=True)
class Calibration:
    """Split-conformal intervals (``intervals.calibrate``), from the windows of the validation rows."""

    levels: tuple[float, ...]  # coverage levels in percent, ascending
    methods: tuple[str, ...]  # per level: "residual" (around the point forecast) or "cqr" (around its quantiles)
    radius: tuple[tuple[tuple[float, ...], ...], ...]  # per level, (H, C) in units of each window's scale
    # (intervals.window_scale of its inputs): a band's half-width is radius x that scale
    windows: int  # validation windows the radii come from, all series together


@dataclass(frozen=True)
class Backtest:
    """How the model forecast the windows of its own validation rows when it was fit, in the targets'
    units, as ``evaluate`` scores test windows (``evaluation.validation_backtest``): the reference
    ``seqcast monitor`` holds production forecasts to."""

    windows: int  # validation windows scored (stride: the horizon), all series together
    season: int  # MASE's seasonal lag
    mase: float
    smape: float
    bias: float  # sum(forecast - actual) / sum(|forecast - actual|): -1 every error under, +1 every one over
    coverage: tuple[float, ...]  # per calibrated level (calibration.levels): the share of actuals inside the band
    series_mase: dict[str, float]  # MASE of each series that had validation windows


@dataclass(frozen=True)
class Tuning:
    """The Optuna study a tuned model's configuration was chosen from (``seqcast tune``)."""

    study: str
    storage: str | None  # the journal file or database URL (its password hidden); None = in memory
    trials: int  # every trial of the study: complete, pruned, failed or running
    complete: int
    pruned: int
    failed: int
    best_trial: int  # the trial whose values this model was fit with
    best_val_mse_scaled: float  # its validation MSE (scaled values), what the search minimised
    default_val_mse_scaled: float | None  # trial 0's, the model's defaults; None: not run by this study
    best_params: dict[str, Any]
    space: dict[str, str]  # each dimension as searched, e.g. "hidden_size": "16..128 (log)"
    search_seconds: float


@dataclass(frozen=True)
class Distillation:
    """The teacher a distilled model learned from (``seqcast distill``), and how close it came."""

    teacher: str  # the teacher checkpoint's path, as given
    sha256: str  # its digest
    model: str  # its model (auto, nbeats, ...)
    weight: float  # the teacher's share of each taught window's target
    taught: int  # training windows the teacher forecast (every one, unless its time ran short)
    windows: int  # training windows in all
    labelling_seconds: float  # the teacher's time forecasting them
    teacher_mase: float | None  # the teacher on the student's validation windows (the student's: backtest)
    teacher_smape: float | None

    def gap(self, backtest: "Backtest | None") -> float | None:
        """The student's validation MASE over the teacher's, less one (0.03: 3 % worse); None: not scored."""
        if backtest is None or not self.teacher_mase:
            return None
        return backtest.mase / self.teacher_mase - 1


@dataclass(frozen=True)
class Decision:
    """A setting ``fit`` chose on its own validation windows (``choosing.py``): the candidates in the order
    probed (the declared one first), each one's score after a short probe (mean absolute error of the
    point forecast in scaled units, each series weighted alike; lower is better; None: the probe's
    training diverged), and the candidate kept."""

    setting: str  # "transform", "window_norm" or "loss"
    chosen: str
    candidates: tuple[str, ...]
    scores: tuple[float | None, ...]  # one per candidate
    probe_steps: int  # optimisation steps of each probe (the most of them: early stopping may end one sooner)


@dataclass(frozen=True)
class Candidate:
    """One model ``--model auto`` tried, and what became of it (``auto.py``)."""

    name: str
    status: str  # "member" (in the ensemble), "not chosen", "skipped" (the budget or the data), "failed"
    score: float | None  # validation score (Decision's: scaled mean absolute error per series); None: not scored
    seconds: float  # fitting it, probes included
    weight: float = 0.0  # its share of the forecast; 0 unless a member
    note: str = ""  # why it was skipped or failed


@dataclass(frozen=True)
class Portfolio:
    """What ``--model auto`` did: every candidate it tried, in order, and the ensemble it chose from their
    validation forecasts by greedy selection with replacement (Caruana et al. 2004)."""

    candidates: tuple[Candidate, ...]
    score: float  # the ensemble's validation score (never above the best candidate's)
    windows: int  # the validation windows the candidates were scored on, all series together
    time_budget: float  # seconds the portfolio was given
    seconds: float  # seconds it took


@dataclass(frozen=True)
class Versions:
    seqcast: str
    torch: str
    python: str


@dataclass(frozen=True)
class Stored:
    """Where a loaded forecaster came from."""

    path: str
    format: int  # the format on disk; older formats are upgraded in memory
    sha256: str


@dataclass(frozen=True)
class Forecaster:
    """A trained model and everything it needs to forecast new history. A checkpoint stores every field
    but ``model`` (its weights are the tensors) and ``stored`` (where it was read from)."""

    # a WindowNorm around the registered model, in eval mode on the CPU; for an exported model (seqcast
    # export) an edge.OnnxModel, which forecasts numpy arrays through onnxruntime
    model: "nn.Module" = field(metadata=NOT_STORED)
    model_info: ModelInfo
    schema: DataSchema
    policy: ReadingPolicy
    scaler: "Scaler"
    training: TrainingRecord | None  # None: an exported model read for forecasting only (edge.load), without torch
    versions: Versions
    notes: tuple[str, ...] = ()
    calibration: Calibration | None = None  # conformal intervals (fit --level); None: point forecasts only
    tuning: Tuning | None = None  # the study the configuration came from (seqcast tune); None: not tuned
    covariates: CovariateSchema = CovariateSchema()  # what it reads besides the targets; () = nothing
    choices: tuple[Decision, ...] = ()  # what fit chose on its validation windows; () = nothing (forced or not probed)
    transform: TargetTransform = TargetTransform()  # the targets' transform before scaling, and their floor at 0
    portfolio: Portfolio | None = None  # what --model auto tried and chose (model_info.members); None: one model
    backtest: Backtest | None = None  # its validation windows scored at fit; None: none to score, or not recorded
    distillation: Distillation | None = None  # the teacher it was distilled from (seqcast distill); None: fit alone
    stored: Stored | None = field(default=None, compare=False, metadata=NOT_STORED)  # None until saved or loaded

    @property
    def name(self) -> str:
        return self.model_info.name

    @property
    def lookback(self) -> int:
        return self.schema.lookback

    @property
    def horizon(self) -> int:
        return self.schema.horizon

    @property
    def label(self) -> str:
        """How messages name it: its path, or the model name before it is saved."""
        return self.stored.path if self.stored else self.model_info.name

    def summary(self) -> dict[str, Any]:
        """What ``fit --json`` prints: the model, its windows and how training went."""
        record = self.training
        return {"checkpoint": self.stored.path if self.stored else None, "model": self.name,
                "source": self.schema.source, "series": len(self.schema.series), "targets": list(self.schema.targets),
                "freq": self.schema.freq, "lookback": self.lookback, "horizon": self.horizon,
                "parameters": self.model_info.n_parameters, "window_norm": self.model_info.window_norm,
                "epochs": record.epochs_run, "steps": record.steps, "best_epoch": record.best_epoch,
                "round_steps": record.round_steps, "stopped": record.stopped,
                "threads": record.settings.threads or None,
                "val_mse_scaled": record.val_mse_scaled,
                "init_from": {"path": record.init_from.path, "sha256": record.init_from.sha256}
                if record.init_from else None,
                "quantiles": list(self.model_info.quantiles),
                "covariates": {kind: list(self.covariates.names(kind)) for kind in COVARIATE_KINDS},
                "levels": list(self.calibration.levels) if self.calibration else [],
                "calibration_windows": self.calibration.windows if self.calibration else None,
                "choices": [{"setting": c.setting, "chosen": c.chosen, "scores": dict(zip(c.candidates, c.scores)),
                             "probe_steps": c.probe_steps} for c in self.choices],
                "loss": record.settings.loss,
                "transform": self.transform.kind, "floored_at_zero": list(self.transform.floor),
                "backtest": None if self.backtest is None else {
                    "windows": self.backtest.windows, "mase": self.backtest.mase, "smape": self.backtest.smape,
                    "bias": self.backtest.bias, "coverage": dict(zip((f"{v:.10g}" for v in self.calibration.levels) if self.calibration
                                                                     else (), self.backtest.coverage))},
                "distillation": None if self.distillation is None else {
                    **{k: getattr(self.distillation, k) for k in ("teacher", "sha256", "model", "weight", "taught",
                                                                  "windows", "teacher_mase", "teacher_smape")},
                    "gap": self.distillation.gap(self.backtest)},
                "qat": record.settings.qat,
                "notes": list(self.notes), "warnings": list(record.warnings),
                "members": [{"model": m.name, "weight": m.weight, "window_norm": m.window_norm, "loss": m.loss,
                             "params": m.params} for m in self.model_info.members],
                "candidates": [{"model": c.name, "status": c.status, "score": c.score, "weight": c.weight,
                                "seconds": c.seconds, "note": c.note} for c in self.portfolio.candidates]
                if self.portfolio else []}
