"""What a checkpoint's metadata may hold beyond its types: ranges and rules across fields.

The digest of a checkpoint detects damage, not a crafted file: anyone can write metadata that says
``num_layers=20000`` and recompute the digest. The types are the decoder's (``decode.decode``: no key
missing, none unknown, each value of its annotated type); here, after decoding and before anything is
built, each value is checked to lie inside the range seqcast itself could have written (positive
sizes, quantiles in (0, 1), finite statistics), lengths that must agree to agree, and names to be ones
seqcast knows. What the model's hyperparameters cost is bounded separately, when the model is built
(``registry.create_model``'s ``max_bytes``). Every rule raises ``SchemaError`` naming the key path.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .decode import SchemaError
from .forecaster import COVARIATE_KINDS

if TYPE_CHECKING:
    from .forecaster import (Backtest, Calibration, CovariateSchema, Decision, Distillation, Forecaster,
                             TrainingRecord, Tuning)
    from .transform import TargetTransform

__all__ = ["SchemaError", "check", "MAX_WINDOW", "MAX_TARGETS", "MAX_QUANTILES", "MAX_ENSEMBLE", "MAX_COVARIATES"]

# The longest window a checkpoint may describe (lookback + horizon steps), and the most targets. Far
# above anything seqcast trains on one machine, low enough that buffers sized by them stay small.
MAX_WINDOW = 100_000
MAX_TARGETS = 10_000
MAX_QUANTILES = 99
MAX_ENSEMBLE = 64
MAX_MEMBERS = 64  # models in an auto ensemble, and candidates in its portfolio
CANDIDATE_STATUSES = ("member", "not chosen", "skipped", "failed")
MAX_COVARIATES = 10_000  # columns, and categories of one static column
HYPERPARAMETER_TYPES = (bool, int, float, str, list, tuple, type(None))  # a tuple before JSON has made it a list
SEARCHED_TYPES = (bool, int, float, str, type(None))  # a tuned hyperparameter's value
MAX_HYPERPARAMETER = 2**53  # the largest integer a float holds exactly; torch overflows at 2**63, and the
# model's size is bounded when it is built (a hidden_size of 2**20 is refused there, without allocating)


def check(forecaster: Forecaster, where: str = "meta") -> None:
    """Raise ``SchemaError`` naming the first value of the decoded ``forecaster`` outside its range. Without
    a training record (an exported model read for forecasting, torch-free) the rules on the record, and
    those naming window normalisations and losses (torch modules hold their names), are left out: the
    graph carries those."""
    model_info, schema = forecaster.model_info, forecaster.schema
    _within(f"{where}.model_info.n_parameters", model_info.n_parameters, 0, math.inf)
    _within(f"{where}.model_info.ensemble", model_info.ensemble, 1, MAX_ENSEMBLE)
    quantiles = model_info.quantiles
    if len(quantiles) > MAX_QUANTILES or not all(0 < q < 1 for q in quantiles) or list(quantiles) != sorted(
            set(quantiles)) or (quantiles and (0.5 not in quantiles or len(quantiles) < 2)):
        raise SchemaError(f"{where}.model_info.quantiles: {list(quantiles)!r} is not an ascending list of quantiles "
                          "in (0, 1) with 0.5 and others")
    _hyperparameters(f"{where}.model_info.params", model_info.params, HYPERPARAMETER_TYPES, at_least=0)  # sizes, rates, flags

    _within(f"{where}.schema.lookback", schema.lookback, 1, MAX_WINDOW)
    _within(f"{where}.schema.horizon", schema.horizon, 1, MAX_WINDOW - schema.lookback)
    _within(f"{where}.schema.targets", len(schema.targets), 1, MAX_TARGETS)
    _check_freq(f"{where}.schema.freq", schema.freq, schema.integer_time)
    series, targets = set(schema.series), len(schema.targets)
    if not series or len(series) != len(schema.series):
        raise SchemaError(f"{where}.schema.series: expected one or more distinct series names")

    scaler = forecaster.scaler
    _per_series(f"{where}.scaler.mean", scaler.mean, series, targets, positive=False)
    _per_series(f"{where}.scaler.std", scaler.std, series, targets, positive=True)
    if forecaster.calibration is not None:
        _check_calibration(f"{where}.calibration", forecaster.calibration, schema.horizon, targets)
    _check_covariates(f"{where}.covariates", forecaster.covariates)
    _check_transform(f"{where}.transform", forecaster.transform, series, targets)
    if forecaster.tuning is not None:
        _check_tuning(f"{where}.tuning", forecaster.tuning)
    if forecaster.backtest is not None:
        _check_backtest(f"{where}.backtest", forecaster.backtest, forecaster.calibration, series)
    if forecaster.distillation is not None:
        _check_distillation(f"{where}.distillation", forecaster.distillation)
    if forecaster.training is not None:
        from .registry import WINDOW_NORMS

        if model_info.window_norm not in WINDOW_NORMS:
            raise SchemaError(f"{where}.model_info.window_norm: {model_info.window_norm!r} is not one of {', '.join(WINDOW_NORMS)}")
        _check_params(f"{where}.model_info.params", model_info.name, model_info.params)
        if model_info.members or forecaster.portfolio is not None:
            _check_blend(where, forecaster)
        _check_training(f"{where}.training", forecaster.training, series)
        used = {"window_norm": model_info.window_norm, "loss": forecaster.training.settings.loss,
                "transform": forecaster.transform.kind, "lookback": str(forecaster.schema.lookback)}
        # an auto ensemble chooses nothing itself: its members' choices are theirs (_check_blend)
        _check_choices(f"{where}.choices", forecaster.choices, {} if model_info.members else used)


def _check_blend(where: str, forecaster: Forecaster) -> None:
    """An auto ensemble: named auto, one model each of its members (registered, with their own kinds of
    hyperparameters and choices), positive weights summing to 1, and the portfolio it was chosen from."""
    from .registry import POINT_LOSSES, WINDOW_NORMS

    info, portfolio = forecaster.model_info, forecaster.portfolio
    if info.name != "auto" or not info.members or portfolio is None or info.params or info.ensemble != 1:
        raise SchemaError(f"{where}.model_info: members and a portfolio go together, under the name auto with no "
                          "params of its own and ensemble 1")
    _within(f"{where}.model_info.members", len(info.members), 1, MAX_MEMBERS)
    for i, member in enumerate(info.members):
        at = f"{where}.model_info.members[{i}]"
        if member.window_norm not in WINDOW_NORMS or member.loss not in POINT_LOSSES or member.name == "auto":
            raise SchemaError(f"{at}: window_norm, loss or name is not one seqcast knows")
        _within(f"{at}.weight", member.weight, 1e-9, 1)
        _within(f"{at}.n_parameters", member.n_parameters, 0, math.inf)
        _hyperparameters(f"{at}.params", member.params, HYPERPARAMETER_TYPES, at_least=0)
        _check_params(f"{at}.params", member.name, member.params)
        _check_choices(f"{at}.choices", member.choices, {"window_norm": member.window_norm, "loss": member.loss,
                                                         "transform": forecaster.transform.kind})
    if abs(sum(m.weight for m in info.members) - 1) > 1e-6:
        raise SchemaError(f"{where}.model_info.members: the weights must sum to 1")
    _within(f"{where}.portfolio.candidates", len(portfolio.candidates), len(info.members), MAX_MEMBERS)
    for i, candidate in enumerate(portfolio.candidates):
        at = f"{where}.portfolio.candidates[{i}]"
        if candidate.status not in CANDIDATE_STATUSES:
            raise SchemaError(f"{at}.status: {candidate.status[:40]!r} is not one of {', '.join(CANDIDATE_STATUSES)}")
        _within(f"{at}.weight", candidate.weight, 0, 1)
        _within(f"{at}.seconds", candidate.seconds, 0, math.inf)
        if candidate.score is not None:
            _within(f"{at}.score", candidate.score, 0, math.inf)
    for key in ("windows", "time_budget", "seconds", "score"):
        _within(f"{where}.portfolio.{key}", getattr(portfolio, key), 0, math.inf)


def _within(where: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:  # NaN fails too
        raise SchemaError(f"{where}: {value!r} is outside {low:g}..{high:g}")


def _hyperparameters(where: str, params: dict[str, Any], kinds: tuple[type, ...],
                     at_least: float | None = None) -> None:
    for key, value in params.items():
        if not isinstance(value, kinds):
            raise SchemaError(f"{where}.{key}: {value!r} is not a hyperparameter value")
        if at_least is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            _within(f"{where}.{key}", value, at_least, MAX_HYPERPARAMETER)


def _check_freq(where: str, freq: str, integer_time: bool) -> None:
    """A whole positive step for integer times, else a frequency pandas reads with a positive step."""
    if integer_time:
        if not (freq.isascii() and freq.isdigit() and len(freq) <= 18 and int(freq) >= 1):
            raise SchemaError(f"{where}: {freq[:40]!r} is not a whole positive step")
        return
    import warnings

    import pandas as pd

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            offset = pd.tseries.frequencies.to_offset(freq)
    except (ValueError, TypeError, OverflowError):
        offset = None
    if offset is None or offset.n < 1:
        raise SchemaError(f"{where}: {freq[:40]!r} is not a frequency (a pandas alias such as h, D, W or MS)")


def _check_params(where: str, model: str, params: dict[str, Any]) -> None:
    """Each stored hyperparameter of a registered model has the kind of the constructor's default (a flag is
    true or false, a size an integer, a rate a number, a list a list); an unknown model or parameter is
    refused when the model is built, naming it."""
    from .registry import list_models, get_spec

    if model not in list_models():
        return
    defaults = get_spec(model).defaults()
    for key, value in params.items():
        default = defaults.get(key)
        kinds = {bool: (bool,), int: (int,), float: (int, float), str: (str,), tuple: (list, tuple)}.get(type(default))
        if kinds and (not isinstance(value, kinds) or (isinstance(value, bool) and not isinstance(default, bool))):
            raise SchemaError(f"{where}.{key}: {value!r} is not {_kind_name(default)}, as {model} takes")


def _kind_name(default: Any) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(type(default), "a list")


def _per_series(where: str, table: dict[str, list[float]], ids: set[str], width: int, positive: bool) -> None:
    if set(table) != ids:
        raise SchemaError(f"{where}: expected one entry per recorded series")
    bad = _first_outside(table, width, (lambda a: np.isfinite(a) & (a > 0)) if positive else np.isfinite)
    if bad is not None:
        need = "positive" if positive else "finite"
        raise SchemaError(f"{where}[{bad!r}]: expected {width} {need} numbers, one per target")


def _first_outside(table: dict[str, Any], width: int | None, ok: Callable[[np.ndarray], np.ndarray]) -> str | None:
    """The first key of ``table`` whose value is not a list of ``width`` numbers (``width`` None: not one
    number) each passing ``ok`` (elementwise on an array), or None: one array for the whole table, not a
    check per series (a million series' scaler is checked in milliseconds)."""
    values = list(table.values())
    try:
        array = np.array(values, dtype=np.float64)
    except (ValueError, TypeError):  # lists of different lengths, or values that are no numbers
        array = None
    if array is not None and array.shape == ((len(values),) if width is None else (len(values), width)):
        good = ok(array) if width is None else ok(array).all(axis=1)
        return None if good.all() else list(table)[int(np.argmin(good))]
    for key, value in table.items():  # the shape is wrong somewhere: find where
        try:
            row = np.array(value, dtype=np.float64)
        except (ValueError, TypeError):
            return key
        if row.shape != (() if width is None else (width,)) or not ok(row).all():
            return key
    return None


def _check_training(where: str, record: TrainingRecord, series: set[str]) -> None:
    """The record's counts; the settings' ranges are TrainConfig's own, checked as it is decoded."""
    for key, value in vars(record.settings.schedule).items():
        _within(f"{where}.settings.schedule.{key}", value, 0, math.inf)
    for key in ("epochs_run", "steps", "best_epoch", "steps_per_epoch", "round_steps", "window_flops"):
        if getattr(record, key) is not None:
            _within(f"{where}.{key}", getattr(record, key), 0, math.inf)
    _within(f"{where}.world_size", record.world_size, 1, math.inf)
    if record.seen_until is not None and not set(record.seen_until) <= series:
        raise SchemaError(f"{where}.seen_until: expected null or an entry per recorded series")


def _check_tuning(where: str, tuning: Tuning) -> None:
    for key in ("trials", "complete", "pruned", "failed", "best_trial", "search_seconds"):
        _within(f"{where}.{key}", getattr(tuning, key), 0, math.inf)
    _hyperparameters(f"{where}.best_params", tuning.best_params, SEARCHED_TYPES)


def _check_distillation(where: str, taught: Distillation) -> None:
    _within(f"{where}.weight", taught.weight, 0, 1)
    if taught.weight == 0:
        raise SchemaError(f"{where}.weight: expected a share above 0")
    _within(f"{where}.windows", taught.windows, 0, math.inf)
    _within(f"{where}.taught", taught.taught, 0, math.inf)
    _within(f"{where}.labelling_seconds", taught.labelling_seconds, 0, math.inf)
    for key in ("teacher_mase", "teacher_smape"):
        if getattr(taught, key) is not None:
            _within(f"{where}.{key}", getattr(taught, key), 0, math.inf)


def _check_choices(where: str, choices: tuple[Decision, ...], used: dict[str, str]) -> None:
    """What fit chose: at most one entry per setting (of those ``used`` names: an auto ensemble's members
    share its lookback), two or more distinct candidates of that setting with a finite score or null each,
    and the one chosen among them and the one the model was trained with."""
    from .registry import POINT_LOSSES, WINDOW_NORMS
    from .transform import TRANSFORMS

    allowed = {"transform": TRANSFORMS, "window_norm": WINDOW_NORMS, "loss": POINT_LOSSES, "lookback": ()}
    allowed = {k: v for k, v in allowed.items() if k in used}
    if len(choices) > len(allowed):
        raise SchemaError(f"{where}: expected a list of at most {len(allowed)} entries")
    settings = set()
    for i, entry in enumerate(choices):
        at = f"{where}[{i}]"
        values, candidates, scores = allowed.get(entry.setting), entry.candidates, entry.scores
        if values is None or entry.setting in settings:
            raise SchemaError(f"{at}.setting: {entry.setting!r} is not one of {', '.join(allowed)}, once each")
        settings.add(entry.setting)
        if entry.setting == "lookback":  # whole numbers of steps, up to the limit every lookback has
            values = tuple(c for c in candidates if re.fullmatch(r"[1-9][0-9]{0,5}", c) and int(c) < MAX_WINDOW)
        if (len(candidates) < 2 or len(set(candidates)) != len(candidates) or not set(candidates) <= set(values)
                or entry.chosen not in candidates or entry.chosen != used[entry.setting]):
            kinds = "whole numbers of steps" if entry.setting == "lookback" else ", ".join(values)
            raise SchemaError(f"{at}: two or more of {kinds}, the one chosen among them and the one "
                              f"trained with ({used[entry.setting]})")
        if len(scores) != len(candidates) or not all(v is None or math.isfinite(v) for v in scores):
            raise SchemaError(f"{at}.scores: one finite number or null per candidate")
        _within(f"{at}.probe_steps", entry.probe_steps, 0, math.inf)


def _check_transform(where: str, transform: TargetTransform, series: set[str], targets: int) -> None:
    """The targets' transform: one of TRANSFORMS; Box-Cox lambdas (in the range fit searches) for known
    series only, one per target, and none for the other transforms; a floor flag per target, or none."""
    from .transform import LAMBDA_RANGE, TRANSFORMS

    if transform.kind not in TRANSFORMS:
        raise SchemaError(f"{where}.kind: {transform.kind!r} is not one of {', '.join(TRANSFORMS)}")
    if len(transform.floor) not in (0, targets):
        raise SchemaError(f"{where}.floor: expected one flag per target ({targets}) or none")
    lambdas = transform.lambdas
    if (transform.kind == "boxcox") != bool(lambdas) or not set(lambdas) <= series:
        raise SchemaError(f"{where}.lambdas: expected lambdas of known series for boxcox, and none otherwise")
    low, high = LAMBDA_RANGE
    bad = _first_outside(lambdas, targets, lambda a: (a >= low) & (a <= high))
    if bad is not None:
        raise SchemaError(f"{where}.lambdas[{bad!r}]: expected {targets} numbers in [{low}, {high}]")


def _check_covariates(where: str, schema: CovariateSchema) -> None:
    """Each stored covariate: its kind, a calendar feature's name, finite statistics (std > 0), one input
    per category, no column twice, and the stored order (past, calendar, future, static), so that
    ``CovariateSchema.widths`` gives the model inputs (P, F, S) the weights were trained for."""
    from .data import CALENDAR_FEATURES

    columns = schema.columns
    if len(columns) > MAX_COVARIATES:
        raise SchemaError(f"{where}.columns: expected at most {MAX_COVARIATES} columns")
    seen, order = set(), []
    for i, column in enumerate(columns):
        at = f"{where}.columns[{i}]"
        if column.kind not in COVARIATE_KINDS:
            raise SchemaError(f"{at}.kind: {column.kind!r} is not one of {', '.join(COVARIATE_KINDS)}")
        if column.kind == "calendar" and column.name not in CALENDAR_FEATURES:
            raise SchemaError(f"{at}.name: {column.name!r} is not a calendar feature")
        categories = column.categories
        if categories and (column.kind != "static" or len(set(categories)) != len(categories)
                           or len(categories) > MAX_COVARIATES):
            raise SchemaError(f"{at}.categories: only a static column has categories, each once")
        inputs = max(1, len(categories))
        if len(column.mean) != inputs or len(column.std) != inputs or not all(
                math.isfinite(v) for v in column.mean) or not all(math.isfinite(v) and v > 0 for v in column.std):
            raise SchemaError(f"{at}: expected {inputs} finite mean and positive std values")
        span = column.span
        if span and (len(span) != 2 or categories or column.kind == "calendar"
                     or not all(math.isfinite(v) for v in span) or span[0] > span[1]):
            raise SchemaError(f"{at}.span: expected [] or the lowest and highest value of a numeric column")
        if (column.kind, column.name) in seen:
            raise SchemaError(f"{at}: {column.name!r} appears twice")
        seen.add((column.kind, column.name))
        order.append(COVARIATE_KINDS.index(column.kind))
    if order != sorted(order):
        raise SchemaError(f"{where}.columns: expected past, calendar, future, then static columns")


def _check_backtest(where: str, backtest: Backtest, calibration: Calibration | None, series: set[str]) -> None:
    _within(f"{where}.windows", backtest.windows, 1, math.inf)
    _within(f"{where}.season", backtest.season, 1, math.inf)
    _within(f"{where}.mase", backtest.mase, 0, math.inf)
    _within(f"{where}.smape", backtest.smape, 0, 200)
    _within(f"{where}.bias", backtest.bias, -1, 1)
    levels = calibration.levels if calibration else ()
    if len(backtest.coverage) != len(levels) or not all(0 <= v <= 1 for v in backtest.coverage):
        raise SchemaError(f"{where}.coverage: expected a share in [0, 1] for each calibrated level ({len(levels)})")
    unknown = set(backtest.series_mase) - series
    if unknown:
        raise SchemaError(f"{where}.series_mase: series {sorted(unknown)[0][:40]!r} is not one the model was fit on")
    bad = _first_outside(backtest.series_mase, None, lambda a: a >= 0)
    if bad is not None:
        _within(f"{where}.series_mase[{bad[:40]!r}]", backtest.series_mase[bad], 0, math.inf)


def _check_calibration(where: str, calibration: Calibration, horizon: int, targets: int) -> None:
    levels = calibration.levels
    if not levels or not all(0 < v < 100 for v in levels) or list(levels) != sorted(set(levels)):
        raise SchemaError(f"{where}.levels: {list(levels)!r} is not an ascending list of levels in (0, 100)")
    if len(calibration.methods) != len(levels) or not set(calibration.methods) <= {"residual", "cqr"}:
        raise SchemaError(f"{where}.methods: expected residual or cqr for each level")
    radius = calibration.radius
    if len(radius) != len(levels) or any(len(r) != horizon or any(
            len(row) != targets or not all(math.isfinite(v) for v in row) for row in r) for r in radius):
        raise SchemaError(f"{where}.radius: expected per level {horizon} x {targets} finite numbers")
    _within(f"{where}.windows", calibration.windows, 1, math.inf)
