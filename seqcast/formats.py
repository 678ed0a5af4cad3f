"""The checkpoint format's history: what each format added, and the upgrade of an older one to the current.

An older file's metadata is first checked against the schema of its own format (``check_own_format``:
the sections that format has, the keys of the sections the upgrade moves, and the kind of each value
the upgrade reads), so that crafted values end in ``SchemaError`` naming the key path and the format
(exit 2), never in a ``TypeError`` halfway through an upgrade; ``upgrade`` then brings it to
``FORMAT_VERSION`` one format at a time, and the result is decoded strictly and range-checked as a
current file is (checkpoint.py). What a format-N file is taken to have meant is said below, format by format.
"""

from __future__ import annotations

from typing import Any

from .decode import SchemaError

FORMAT_VERSION = 15

# What format 2 added, and what a format-1 file is taken to have meant:
#   data.policy      how fit read its data, so later commands read new history the same way. Format 1
#                    recorded only the resolved frequency (re-inferred on every read, except an integer
#                    step, kept so that a `year` column stays integers as 0.1.0 read it) and no fill.
#   data.seen_until  per series, the last timestamp fit trained or validated on (None: not recorded).
#   training.best_epoch  the epoch whose weights were kept, 0 = the starting weights (None: not recorded).
#   training.init_from   the checkpoint a warm start continued from (path and digest), else None.
#   training.warnings    what fit warned about (a constant target, weights never beaten), else [].
FORMAT_1_POLICY = {"freq_given": False, "fill": "none", "decimal": None, "dayfirst": None, "date_format": None}
#   training.schedule    the loop's rules (Schedule); 0.1.0 had no minimum patience and no warm start.
FORMAT_1_SCHEDULE = {"warmup_divisor": 20, "lr_floor": 0.55, "min_epochs": 4, "min_steps": 200, "batch_divisor": 50,
                     "min_batch": 32, "max_batch": 256, "improvement": 1e-7, "patience_share": 0.0,
                     "warm_start_divisor": 4}

# What format 3 added, and what a format-2 (or older) file is taken to have meant. A format-2 reader
# builds TrainConfig from every stored setting, so these new keys needed a new format: an older
# seqcast now says "format 3 is newer; upgrade seqcast" instead of calling the file incomplete.
#   training.time_budget         --time-budget seconds, 0 = none (older files had no time budget).
#   training.threads             the torch intra-op threads training ran with; 0 = not recorded.
#   training.schedule.max_auto_steps   the automatic budget's cap; 0 = no cap (as older code trained).
#   training.steps_per_epoch, training.round_steps   steps of an epoch and between validations
#                                (None: not recorded; the rounds were epochs).
#   training.stopped             why training ended (a key of training.STOPPED); None: not recorded.
#   training.window_flops        FLOPs of one window's forward, for choosing forecast threads without
#                                counting again; None: not recorded (counted when needed).
FORMAT_2_TRAINING = {"time_budget": 0.0, "threads": 0, "steps_per_epoch": None, "round_steps": None,
                     "stopped": None, "window_flops": None}
# What format 4 added, and what a format-3 (or older) file is taken to have meant:
#   model.quantiles   the quantiles a quantile head was trained on; [] = a point model (all before it).
#   calibration       conformal intervals (fit --level); null = none.
#   data.pad_short    windows of short series start before their first row (padded); false before it.
#   training.loss     the point loss (mse or mae); mse before it.
#   model.ensemble    members trained from consecutive seeds, median forecast; 1 before it.
# What format 5 added, and what a format-4 (or older) file is taken to have meant:
#   tuning            the Optuna study a tuned model came from (seqcast tune); null = not tuned.
#   training.world_size   processes that trained the model together (torchrun); 1 before it.
# What format 6 changed, and what a format-5 (or older) file is taken to have meant:
#   covariates        what the model reads besides the targets (forecaster.CovariateSchema), with their
#                     training statistics; [] = nothing. Format 5 knew only calendar features, as a switch
#                     of the models reading them (informer and transformer: model.params.calendar, every
#                     feature of FORMAT_5_CALENDAR, fed as they are: mean 0, std 1); that switch and
#                     data.calendar are gone, and the features are covariates of kind "calendar".
FORMAT_5_CALENDAR = ("hour", "dow", "dom", "doy", "month")
# What format 7 added, and what a format-6 (or older) file is taken to have meant:
#   choices           what fit chose on its validation windows (forecaster.Decision: the window normalisation
#                     and the loss, with each candidate's probe score); [] = nothing chosen, the model's
#                     declared or the user's settings (all before it).
#   model.window_norm may be "deseason" (older files never are).
#   training.schedule.max_auto_flops   the automatic budget's compute cap; 0 = no cap (as older code trained).
# What format 8 added, and what a format-7 (or older) file is taken to have meant:
#   transform         the targets' transform before scaling (transform.TargetTransform: none, log or boxcox
#                     with its lambdas) and, per target, whether forecasts are floored at zero;
#                     none and no floor before it (older files forecast exactly what they did).
#   data.policy.wide  the file was wide (fit --wide: a row per series, a column per time); false before it.
#   covariates[].span (lowest, highest) training value of a numeric covariate, for predict's note on
#                     values outside it; [] = not recorded (all before it).
FORMAT_7_TRANSFORM = {"kind": "none", "lambdas": {}, "floor": []}
# What format 9 changed (nothing was added, and a format-8 file means what it meant):
#   the shape     the metadata is the Forecaster's dataclasses as they are, each field under its name:
#                 model_info, schema, policy, scaler, training (TrainingRecord: settings, the TrainConfig with
#                 its schedule, then the record with split, seen_until and val_mse_scaled), versions,
#                 notes, calibration, tuning, covariates ({"columns": [...]}), choices and transform. Format
#                 8 named them model, data (with policy and seen_until), scaler, split, training (settings
#                 and record side by side), metrics, versions, notes, calibration, tuning, covariates (a
#                 list), choices and transform; ``_format_9`` moves them. Reading is one strict decoder
#                 (decode.py) instead of code per key, so a new field is its dataclass field.
#   the digest    covers the format number too: a format-9 file whose "format" is changed is damaged
#                 (formats 1 to 8 keep their digest, over the metadata and the tensors).
# What format 10 added, and what a format-9 file is taken to have meant:
#   model_info.members  the models of a weighted ensemble of different models (--model auto): none, one model
#   portfolio           the candidates --model auto tried: none
# What format 11 added, and what a format-10 file is taken to have meant:
#   backtest            the fit's validation windows scored in the targets' units (MASE, sMAPE, bias,
#                       coverage; what seqcast monitor compares production forecasts with): not recorded
# What format 12 added, and what a format-11 (or older) file is taken to have meant:
#   choices[].setting may be "lookback": fit probed twice the frequency's lookback beside it (its candidates
#                       are whole numbers of steps, as strings); older files never chose a lookback
# What format 13 changed: where the tables that grow with the series are stored (scaler.mean, scaler.std,
#   schema.series, training.split, training.seen_until, transform.lambdas, backtest.series_mase): in one
#   JSON tensor beside the weights (checkpoint.SERIES_TENSOR), not in the header. Once read, the
#   metadata is format 12's: nothing to upgrade.
# What format 14 changed: how those tables are stored: as typed columns beside the weights (series_columns:
#   the names once, then per table the positions of its series and an array of its values), the JSON
#   tensor now their index. Once read, the metadata is format 12's: nothing to upgrade.
# What format 15 added, and what a format-14 (or older) file is taken to have meant:
#   distillation          the teacher a model was distilled from (seqcast distill: its path, digest, weight and
#                         the gap between them on validation); null = fit alone (all before it).
#   training.settings.qat the weights were trained aware of int8 rounding; false before it.
FORMAT_9_SECTIONS = ("model_info", "schema", "policy", "scaler", "training", "versions", "notes", "calibration",
                     "tuning", "covariates", "choices", "transform")
FORMAT_9_MODEL_INFO = ("name", "params", "window_norm", "n_parameters", "quantiles", "ensemble")
FORMAT_8_SECTIONS = ("calibration", "choices", "covariates", "data", "metrics", "model", "notes", "scaler", "split",
                     "training", "transform", "tuning", "versions")
FORMAT_8_RECORD = ("epochs_run", "steps", "best_epoch", "init_from", "warnings", "steps_per_epoch", "round_steps",
                   "stopped", "window_flops", "world_size")  # format 8's training keys that are not TrainConfig's


# The sections of an older format, and the keys of the sections the upgrade moves (data, model, training),
# each with the format that added it (and, for data.calendar, the last format that had it).
SECTIONS = {"data": 1, "metrics": 1, "model": 1, "notes": 1, "scaler": 1, "split": 1, "training": 1, "versions": 1,
            "calibration": 4, "tuning": 5, "covariates": 6, "choices": 7, "transform": 8}
KEYS = {
    "data": {"freq": 1, "horizon": 1, "id_col": 1, "integer_time": 1, "lookback": 1, "series": 1, "source": 1,
             "targets": 1, "time_col": 1, "policy": 2, "seen_until": 2, "pad_short": 4},
    "model": {"n_parameters": 1, "name": 1, "params": 1, "window_norm": 1, "ensemble": 4, "quantiles": 4},
    "training": {"batch_size": 1, "clip": 1, "device": 1, "epochs": 1, "epochs_run": 1, "lr": 1, "max_steps": 1,
                 "patience": 1, "seed": 1, "steps": 1, "weight_decay": 1, "best_epoch": 2, "init_from": 2,
                 "schedule": 2, "warnings": 2, "round_steps": 3, "steps_per_epoch": 3, "stopped": 3, "threads": 3,
                 "time_budget": 3, "window_flops": 3, "loss": 4, "world_size": 5},
}
CALENDAR_UNTIL = 5  # data.calendar: formats 1 to 5
OBJECTS = ("metrics", "scaler", "data.policy", "model.params", "training.schedule")  # where the format has them


def check_own_format(version: int, meta: Any) -> None:
    """``SchemaError`` naming the key path unless ``meta`` has the shape of format ``version`` (below 13):
    exactly its sections, exactly the keys of the sections the upgrade changes, and objects and lists
    where the upgrade reads them. The values themselves are checked once upgraded, by the strict decoder."""
    at = f"meta (format {version})"
    if not isinstance(meta, dict):
        raise SchemaError(f"{at}: expected an object")
    if version >= 9:  # the dataclasses' shape; format 10 added an ensemble's members and portfolio, 11 the backtest
        _keys(at, meta, set(FORMAT_9_SECTIONS) | ({"portfolio"} if version >= 10 else set())
              | ({"backtest"} if version >= 11 else set()))
        if not isinstance(meta["training"], dict) or not isinstance(meta["training"].get("settings"), dict):
            raise SchemaError(f"{at}.training.settings: expected an object")
        if not isinstance(meta["model_info"], dict):
            raise SchemaError(f"{at}.model_info: expected an object")
        _keys(f"{at}.model_info", meta["model_info"], set(FORMAT_9_MODEL_INFO) | ({"members"} if version >= 10 else set()))
        if version < 12:
            _no_lookback_choice(at, meta["choices"])
            for i, member in enumerate(meta["model_info"].get("members") or []):
                _no_lookback_choice(f"{at}.model_info.members[{i}]",
                                    member.get("choices") if isinstance(member, dict) else [])
        return
    _keys(at, meta, {k for k, since in SECTIONS.items() if since <= version})
    for section, keys in KEYS.items():
        if not isinstance(meta[section], dict):
            raise SchemaError(f"{at}.{section}: expected an object")
        wanted = {k for k, since in keys.items() if since <= version}
        _keys(f"{at}.{section}", meta[section], wanted | ({"calendar"} if section == "data" and version <= CALENDAR_UNTIL else set()))
    for path in OBJECTS:
        section, _, key = path.partition(".")
        if key and key not in meta[section]:
            continue
        if not isinstance(meta[section][key] if key else meta[section], dict):
            raise SchemaError(f"{at}.{path}: expected an object")
    if "val_mse_scaled" not in meta["metrics"] or len(meta["metrics"]) != 1:
        raise SchemaError(f"{at}.metrics: expected val_mse_scaled alone")
    for name in ("notes", "covariates", "choices"):
        if name in meta and not isinstance(meta[name], list):
            raise SchemaError(f"{at}.{name}: expected a list")
    for i, column in enumerate(meta.get("covariates", [])):
        if not isinstance(column, dict):
            raise SchemaError(f"{at}.covariates[{i}]: expected an object")


def _no_lookback_choice(at: str, choices: Any) -> None:
    """Before format 12 fit never chose a lookback: a file of such a format that holds one was not written so."""
    if not isinstance(choices, list):
        raise SchemaError(f"{at}.choices: expected a list")
    if any(isinstance(c, dict) and c.get("setting") == "lookback" for c in choices):
        raise SchemaError(f"{at}.choices: a lookback choice, which only format 12 and later record")


def _keys(at: str, section: dict, wanted: set[str]) -> None:
    missing, unknown = sorted(wanted - set(section)), sorted(str(k)[:40] for k in set(section) - wanted)
    if missing or unknown:
        raise SchemaError(f"{at}: " + "; ".join(part for part in (
            f"missing {', '.join(missing)}" if missing else "", f"unknown {', '.join(unknown)}" if unknown else "")
            if part))


def upgrade(format_version: int, meta: dict[str, Any]) -> dict[str, Any]:
    """Bring the metadata of an older format up to ``FORMAT_VERSION``, one format at a time, after checking
    it against the schema of its own format (``check_own_format``)."""
    if format_version < FORMAT_VERSION:
        check_own_format(format_version, meta)
    if format_version < 2:
        meta = {**meta,
                "data": {**meta["data"], "seen_until": None,
                         "policy": {**FORMAT_1_POLICY, "freq_given": bool(meta["data"]["integer_time"])}},
                "training": {**meta["training"], "best_epoch": None, "init_from": None, "warnings": [],
                             "schedule": FORMAT_1_SCHEDULE}}
    if format_version < 3:
        training = meta["training"]
        meta = {**meta, "training": {**training, **FORMAT_2_TRAINING,
                                     "schedule": {**training["schedule"], "max_auto_steps": 0}}}
    if format_version < 4:
        meta = {**meta, "model": {**meta["model"], "quantiles": [], "ensemble": 1}, "calibration": None,
                "data": {**meta["data"], "pad_short": False}, "training": {**meta["training"], "loss": "mse"}}
    if format_version < 5:
        meta = {**meta, "tuning": None, "training": {**meta["training"], "world_size": 1}}
    if format_version < 6:
        data = {k: v for k, v in meta["data"].items() if k != "calendar"}
        params = dict(meta["model"]["params"])
        calendar = bool(params.pop("calendar", False)) and bool(meta["data"].get("calendar"))
        meta = {**meta, "data": data, "model": {**meta["model"], "params": params},
                "covariates": [{"name": n, "kind": "calendar", "mean": [0.0], "std": [1.0], "categories": []}
                               for n in FORMAT_5_CALENDAR] if calendar else []}
    if format_version < 7:
        training = meta["training"]
        meta = {**meta, "choices": [], "training": {**training, "schedule": {**training["schedule"], "max_auto_flops": 0.0}}}
    if format_version < 8:
        meta = {**meta, "transform": {**FORMAT_7_TRANSFORM, "lambdas": {}, "floor": []}, "covariates": [{**c, "span": []} for c in meta["covariates"]],
                "data": {**meta["data"], "policy": {**meta["data"]["policy"], "wide": False}}}
    if format_version < 9:
        meta = _format_9(meta)
    if format_version < 10:
        meta = {**meta, "model_info": {**meta["model_info"], "members": []}, "portfolio": None}
    if format_version < 11:
        meta = {**meta, "backtest": None}
    if format_version < 15:  # format 12 added a kind of choice, which older files do not hold; 13 and 14 moved tables
        training = meta["training"]
        meta = {**meta, "distillation": None,
                "training": {**training, "settings": {**training["settings"], "qat": False}}}
    return meta


def _format_9(meta: dict[str, Any]) -> dict[str, Any]:
    """Format 8's sections in the shape of the dataclasses (format 9): what FORMAT_8_SECTIONS says."""
    if set(meta) != set(FORMAT_8_SECTIONS) or set(meta["metrics"]) != {"val_mse_scaled"}:
        found = sorted(map(str, meta)) + sorted(f"metrics.{k}" for k in meta["metrics"])
        raise SchemaError(f"meta: expected the sections {', '.join(FORMAT_8_SECTIONS)} and metrics.val_mse_scaled "
                          f"of format 8, found {', '.join(found)}")
    data, settings = dict(meta["data"]), dict(meta["training"])
    record = {key: settings.pop(key) for key in FORMAT_8_RECORD}
    return {"model_info": meta["model"], "schema": data, "policy": data.pop("policy"), "scaler": meta["scaler"],
            "training": {"settings": settings, **record, "split": meta["split"], "seen_until": data.pop("seen_until"),
                         "val_mse_scaled": meta["metrics"]["val_mse_scaled"]},
            "versions": meta["versions"], "notes": meta["notes"], "calibration": meta["calibration"],
            "tuning": meta["tuning"], "covariates": {"columns": meta["covariates"]}, "choices": meta["choices"],
            "transform": meta["transform"]}
