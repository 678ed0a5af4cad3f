"""What a checkpoint's metadata may hold: every key, its type and its range, checked before anything is built.

The digest of a checkpoint detects damage, not a crafted file: anyone can write metadata that says
``num_layers=20000`` and recompute the digest. So the metadata (upgraded to the current format) is
checked here against the dataclasses it becomes, key by key: no key missing, none unknown, each value
of the annotated type (an ``int`` is not a ``bool``, a ``float`` is finite unless the field allows
otherwise) and inside the range seqcast itself could have written. What the model's hyperparameters
cost is bounded separately, when the model is built (``registry.create_model``'s ``max_bytes``).
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import fields
from typing import Any

from .errors import UsageError
from .forecaster import (COVARIATE_KINDS, RECORD_KEYS, Calibration, Covariate, Decision, DataSchema, InitFrom, ModelInfo,
                         ReadingPolicy, TrainingRecord, Tuning, Versions)

# The longest window a checkpoint may describe (lookback + horizon steps), and the most targets. Far
# above anything seqcast trains on one machine, low enough that buffers sized by them stay small.
MAX_WINDOW = 100_000
MAX_TARGETS = 10_000
MAX_QUANTILES = 99
MAX_ENSEMBLE = 64
MAX_COVARIATES = 10_000  # columns, and categories of one static column


class SchemaError(ValueError):
    """The metadata breaks the schema; the message starts with the key's path, e.g. ``data.lookback``."""


def _conforms(value: Any, hint: Any) -> bool:
    """Whether the JSON value ``value`` is of the annotated type ``hint``."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, option) for option in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:  # JSON writes 2.0 as 2.0, but an integer-valued float may come back as an int
        if isinstance(value, int) and not isinstance(value, bool):
            return abs(value) <= 1e308  # a 400-digit integer is no float
        return isinstance(value, float)
    if hint is str:
        return isinstance(value, str)
    if hint is dict:
        return isinstance(value, dict)
    if origin is tuple:  # stored as a JSON list
        (item, _) = typing.get_args(hint)
        return isinstance(value, list) and all(_conforms(v, item) for v in value)
    if origin is dict:
        key, item = typing.get_args(hint)
        return isinstance(value, dict) and all(_conforms(k, key) and _conforms(v, item) for k, v in value.items())
    raise TypeError(f"meta_schema cannot check {hint!r}")  # a new annotation needs a rule here


def _section(where: str, values: Any, cls: type, skip: tuple[str, ...] = (), hints: dict | None = None) -> dict:
    """Check ``values`` holds exactly the fields of dataclass ``cls`` (less ``skip``), each of its type."""
    if not isinstance(values, dict):
        raise SchemaError(f"{where}: expected an object, found {type(values).__name__}")
    hints = hints or typing.get_type_hints(cls)
    names = [f.name for f in fields(cls) if f.name not in skip]
    missing, unknown = [n for n in names if n not in values], [k for k in values if k not in names and k not in skip]
    if missing or unknown:
        raise SchemaError(f"{where}: " + "; ".join(
            part for part in (f"missing {', '.join(missing)}" if missing else "",
                              f"unknown {', '.join(map(str, unknown))}" if unknown else "") if part))
    for name in names:
        if not _conforms(values[name], hints[name]):
            raise SchemaError(f"{where}.{name}: {values[name]!r} is not {_shown(hints[name])}")
    return values


def _shown(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _within(where: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:  # NaN fails too
        raise SchemaError(f"{where}: {value!r} is outside {low:g}..{high:g}")


def _finite_numbers(where: str, table: Any, ids: set[str], width: int, positive: bool) -> None:
    if not isinstance(table, dict) or set(table) != ids:
        raise SchemaError(f"{where}: expected one entry per recorded series")
    for sid, row in table.items():
        if (not isinstance(row, list) or len(row) != width
                or not all(_conforms(v, float) and math.isfinite(v) and (v > 0 or not positive) for v in row)):
            need = "positive" if positive else "finite"
            raise SchemaError(f"{where}[{sid!r}]: expected {width} {need} numbers, one per target")


def check(meta: Any) -> None:
    """Raise ``SchemaError`` naming the first key of ``meta`` (current format) that breaks the schema."""
    from .budget import Schedule
    from .training import TrainConfig
    from .registry import WINDOW_NORMS

    if not isinstance(meta, dict):
        raise SchemaError("meta: expected an object")
    expected = {"model", "data", "scaler", "split", "training", "metrics", "versions", "notes", "calibration",
                "tuning", "covariates", "choices", "transform"}
    if set(meta) != expected:
        raise SchemaError(f"meta: expected the sections {', '.join(sorted(expected))}, found {', '.join(sorted(meta))}")

    model = _section("model", meta["model"], ModelInfo)
    if model["window_norm"] not in WINDOW_NORMS:
        raise SchemaError(f"model.window_norm: {model['window_norm']!r} is not one of {', '.join(WINDOW_NORMS)}")
    _within("model.n_parameters", model["n_parameters"], 0, math.inf)
    _within("model.ensemble", model["ensemble"], 1, MAX_ENSEMBLE)
    quantiles = model["quantiles"]
    if len(quantiles) > MAX_QUANTILES or not all(0 < q < 1 for q in quantiles) or list(quantiles) != sorted(
            set(quantiles)) or (quantiles and (0.5 not in quantiles or len(quantiles) < 2)):
        raise SchemaError(f"model.quantiles: {quantiles!r} is not an ascending list of quantiles in (0, 1) with 0.5 and others")
    for key, value in model["params"].items():
        if not isinstance(value, (bool, int, float, str, list, tuple, type(None))):  # a tuple before JSON has made it a list
            raise SchemaError(f"model.params.{key}: {value!r} is not a hyperparameter value")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            _within(f"model.params.{key}", value, 0, math.inf)

    data = _section("data", meta["data"], DataSchema, skip=("policy", "seen_until"))
    _section("data.policy", data.get("policy"), ReadingPolicy)
    _within("data.lookback", data["lookback"], 1, MAX_WINDOW)
    _within("data.horizon", data["horizon"], 1, MAX_WINDOW - data["lookback"])
    _within("data.targets", len(data["targets"]), 1, MAX_TARGETS)
    series = set(data["series"])
    if not series or len(series) != len(data["series"]):
        raise SchemaError("data.series: expected one or more distinct series names")
    seen = data.get("seen_until")
    if seen is not None and not (isinstance(seen, dict) and set(seen) <= series):
        raise SchemaError("data.seen_until: expected null or an entry per recorded series")

    scaler = meta["scaler"]
    if not isinstance(scaler, dict) or set(scaler) != {"mean", "std"}:
        raise SchemaError("scaler: expected mean and std")
    _finite_numbers("scaler.mean", scaler["mean"], series, len(data["targets"]), positive=False)
    _finite_numbers("scaler.std", scaler["std"], series, len(data["targets"]), positive=True)

    record_hints = typing.get_type_hints(TrainingRecord, localns={"TrainConfig": TrainConfig})
    training = meta["training"]
    settings = {k: v for k, v in training.items() if k not in RECORD_KEYS} if isinstance(training, dict) else training
    _section("training", settings, TrainConfig, hints={**typing.get_type_hints(TrainConfig), "schedule": dict})
    schedule = _section("training.schedule", settings["schedule"], Schedule)
    for key, value in schedule.items():
        _within(f"training.schedule.{key}", value, 0, math.inf)
    try:  # TrainConfig checks its own ranges, as it does for fit's options
        TrainConfig(**{**settings, "schedule": Schedule(**schedule)})
    except UsageError as exc:
        raise SchemaError(f"training: {exc}") from None
    record = {k: training[k] for k in RECORD_KEYS if k in training}
    _section("training", record, TrainingRecord, hints={**record_hints, "init_from": dict | None},
             skip=("settings", "split", "seen_until", "val_mse_scaled"))
    if record["init_from"] is not None:
        _section("training.init_from", record["init_from"], InitFrom)
    for key in ("epochs_run", "steps", "best_epoch", "steps_per_epoch", "round_steps", "window_flops"):
        if record[key] is not None:
            _within(f"training.{key}", record[key], 0, math.inf)
    _within("training.world_size", record["world_size"], 1, math.inf)

    if not isinstance(meta["split"], dict):
        raise SchemaError("split: expected an object")
    metrics = meta["metrics"]
    if not isinstance(metrics, dict) or set(metrics) != {"val_mse_scaled"} or not _conforms(
            metrics["val_mse_scaled"], float):
        raise SchemaError("metrics: expected val_mse_scaled, a number")
    _section("versions", meta["versions"], Versions)
    if meta["calibration"] is not None:
        _check_calibration(meta["calibration"], data["horizon"], len(data["targets"]))
    if not _conforms(meta["notes"], tuple[str, ...]):
        raise SchemaError("notes: expected a list of strings")
    covariate_widths(meta["covariates"])
    check_transform(meta["transform"], series, len(data["targets"]))
    _check_choices(meta["choices"], {"window_norm": model["window_norm"], "loss": settings["loss"],
                                     "transform": meta["transform"]["kind"]})
    if meta["tuning"] is not None:
        tuning = _section("tuning", meta["tuning"], Tuning)
        for key in ("trials", "complete", "pruned", "failed", "best_trial", "search_seconds"):
            _within(f"tuning.{key}", tuning[key], 0, math.inf)
        for key, value in tuning["best_params"].items():
            if not isinstance(value, (bool, int, float, str, type(None))):
                raise SchemaError(f"tuning.best_params.{key}: {value!r} is not a hyperparameter value")


def _check_choices(choices: Any, used: dict[str, str]) -> None:
    """What fit chose: at most one entry per setting, two or more distinct candidates of that setting with a
    finite score or null each, and the one chosen among them and the one the model was trained with."""
    from .registry import POINT_LOSSES
    from .transform import TRANSFORMS
    from .registry import WINDOW_NORMS

    allowed = {"transform": TRANSFORMS, "window_norm": WINDOW_NORMS, "loss": POINT_LOSSES}
    if not isinstance(choices, list) or len(choices) > len(allowed):
        raise SchemaError(f"choices: expected a list of at most {len(allowed)} entries")
    settings = set()
    for i, choice in enumerate(choices):
        where = f"choices[{i}]"
        entry = _section(where, choice, Decision)
        values, candidates, scores = allowed.get(entry["setting"]), entry["candidates"], entry["scores"]
        if values is None or entry["setting"] in settings:
            raise SchemaError(f"{where}.setting: {entry['setting']!r} is not one of {', '.join(allowed)}, once each")
        settings.add(entry["setting"])
        if (len(candidates) < 2 or len(set(candidates)) != len(candidates) or not set(candidates) <= set(values)
                or entry["chosen"] not in candidates or entry["chosen"] != used[entry["setting"]]):
            raise SchemaError(f"{where}: two or more of {', '.join(values)}, the one chosen among them and the one "
                              f"trained with ({used[entry['setting']]})")
        if len(scores) != len(candidates) or not all(v is None or math.isfinite(v) for v in scores):
            raise SchemaError(f"{where}.scores: one finite number or null per candidate")
        _within(f"{where}.probe_steps", entry["probe_steps"], 0, math.inf)


def check_transform(transform: Any, series: set[str], targets: int) -> None:
    """The targets' transform: one of TRANSFORMS; Box-Cox lambdas (in the range fit searches) for known
    series only, one per target, and none for the other transforms; a floor flag per target, or none."""
    from .transform import LAMBDA_RANGE, TRANSFORMS, TargetTransform

    entry = _section("transform", transform, TargetTransform, hints={"kind": str, "lambdas": dict, "floor": tuple[bool, ...]})
    if entry["kind"] not in TRANSFORMS:
        raise SchemaError(f"transform.kind: {entry['kind']!r} is not one of {', '.join(TRANSFORMS)}")
    if len(entry["floor"]) not in (0, targets):
        raise SchemaError(f"transform.floor: expected one flag per target ({targets}) or none")
    lambdas = entry["lambdas"]
    if (entry["kind"] == "boxcox") != bool(lambdas) or not set(lambdas) <= series:
        raise SchemaError("transform.lambdas: expected lambdas of known series for boxcox, and none otherwise")
    low, high = LAMBDA_RANGE
    for sid, values in lambdas.items():
        if not _conforms(values, tuple[float, ...]) or len(values) != targets or not all(low <= v <= high for v in values):
            raise SchemaError(f"transform.lambdas[{sid!r}]: expected {targets} numbers in [{low}, {high}]")


def covariate_widths(columns: Any) -> tuple[int, int, int]:
    """The model inputs (P, F, S) the stored covariates describe (forecaster.CovariateSchema.widths),
    each column checked: its kind, a calendar feature's name, finite statistics (std > 0), one input
    per category, no column twice, and the stored order (past, calendar, future, static)."""
    from .covariates import CALENDAR_FEATURES

    if not isinstance(columns, list) or len(columns) > MAX_COVARIATES:
        raise SchemaError(f"covariates: expected a list of at most {MAX_COVARIATES} columns")
    seen, order = set(), []
    for i, values in enumerate(columns):
        where = f"covariates[{i}]"
        column = _section(where, values, Covariate)
        if column["kind"] not in COVARIATE_KINDS:
            raise SchemaError(f"{where}.kind: {column['kind']!r} is not one of {', '.join(COVARIATE_KINDS)}")
        if column["kind"] == "calendar" and column["name"] not in CALENDAR_FEATURES:
            raise SchemaError(f"{where}.name: {column['name']!r} is not a calendar feature")
        if column["categories"] and (column["kind"] != "static" or len(set(column["categories"])) != len(
                column["categories"]) or len(column["categories"]) > MAX_COVARIATES):
            raise SchemaError(f"{where}.categories: only a static column has categories, each once")
        inputs = max(1, len(column["categories"]))
        if len(column["mean"]) != inputs or len(column["std"]) != inputs or not all(
                math.isfinite(v) for v in column["mean"]) or not all(math.isfinite(v) and v > 0 for v in column["std"]):
            raise SchemaError(f"{where}: expected {inputs} finite mean and positive std values")
        span = column["span"]
        if span and (len(span) != 2 or column["categories"] or column["kind"] == "calendar"
                     or not all(math.isfinite(v) for v in span) or span[0] > span[1]):
            raise SchemaError(f"{where}.span: expected [] or the lowest and highest value of a numeric column")
        if (column["kind"], column["name"]) in seen:
            raise SchemaError(f"{where}: {column['name']!r} appears twice")
        seen.add((column["kind"], column["name"]))
        order.append(COVARIATE_KINDS.index(column["kind"]))
    if order != sorted(order):
        raise SchemaError("covariates: expected past, calendar, future, then static columns")
    widths = {kind: sum(max(1, len(c["categories"])) for c in columns if c["kind"] == kind) for kind in COVARIATE_KINDS}
    return widths["past"], widths["calendar"] + widths["future"], widths["static"]


def _check_calibration(values: Any, horizon: int, targets: int) -> None:
    calibration = _section("calibration", values, Calibration)
    levels = calibration["levels"]
    if not levels or not all(0 < v < 100 for v in levels) or list(levels) != sorted(set(levels)):
        raise SchemaError(f"calibration.levels: {levels!r} is not an ascending list of levels in (0, 100)")
    if len(calibration["methods"]) != len(levels) or not set(calibration["methods"]) <= {"residual", "cqr"}:
        raise SchemaError("calibration.methods: expected residual or cqr for each level")
    radius = calibration["radius"]
    if len(radius) != len(levels) or any(len(r) != horizon or any(
            len(row) != targets or not all(math.isfinite(v) for v in row) for row in r) for r in radius):
        raise SchemaError(f"calibration.radius: expected per level {horizon} x {targets} finite numbers")
    _within("calibration.windows", calibration["windows"], 1, math.inf)
