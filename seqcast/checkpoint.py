"""Checkpoints: one safetensors file, weights plus seqcast's JSON metadata, and nothing executable.

Layout: the standard safetensors file (8-byte little-endian header size, JSON header, raw tensor
bytes). The header's ``__metadata__`` holds one key, ``seqcast``, whose value is a JSON document
``{"format": N, "meta": {...}, "sha256": ...}``. ``meta`` is the ``Forecaster``'s dataclasses as they
are (forecaster.py; ``decode.encode``): every field but the model and where it was stored, under its
name. The digest covers the format number, the canonical metadata JSON and every tensor's name, dtype,
shape and bytes, so a flipped byte anywhere that matters is caught (it detects damage, not forgery).

Loading parses the header with ``json`` itself, checks sizes, upgrades an older format, decodes the
metadata strictly against the dataclasses (``decode.decode``) and checks its ranges
(``meta_schema.check``), builds the model it describes within the bytes of the listed tensors, and
only then hands the bytes to ``safetensors`` (which never unpickles), checks the digest, and the
shapes and finiteness of the weights, all before a single tensor is used.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import struct
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from . import meta_schema
from .decode import SchemaError, decode, encode
from .errors import CheckpointError, UsageError
from .build import build_network
from .data import seasons
from .files import atomic_write
from .forecaster import Forecaster, Stored

if TYPE_CHECKING:  # torch loads with the weights: from_meta serves the torch-free ONNX predict too (edge.py)
    import torch

    from .window_norm import WindowNorm

FORMAT_VERSION = 9
_MAX_HEADER = 100 * 1024 * 1024

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
FORMAT_8_SECTIONS = ("calibration", "choices", "covariates", "data", "metrics", "model", "notes", "scaler", "split",
                     "training", "transform", "tuning", "versions")
FORMAT_8_RECORD = ("epochs_run", "steps", "best_epoch", "init_from", "warnings", "steps_per_epoch", "round_steps",
                   "stopped", "window_flops", "world_size")  # format 8's training keys that are not TrainConfig's


def _digest(version: int, meta_json: str, tensors: dict[str, torch.Tensor]) -> str:
    """The digest of a checkpoint of format ``version``: from format 9 on, over the format number too."""
    import torch

    sha = hashlib.sha256(f"seqcast checkpoint format {version}\n".encode() if version >= 9 else b"")
    sha.update(meta_json.encode("utf-8"))
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        sha.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        sha.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return sha.hexdigest()


def _canonical(meta: dict) -> str:
    return json.dumps(meta, sort_keys=True, ensure_ascii=False, allow_nan=True, separators=(",", ":"))


def to_meta(forecaster: Forecaster) -> dict[str, Any]:
    """The stored metadata of ``forecaster``: its dataclasses as JSON values, each field under its name."""
    return encode(forecaster)


def from_meta(meta: Any, model: Any = None, stored: Stored | None = None, record: bool = True) -> Forecaster:
    """The forecaster that ``meta`` (of the current format) describes, around ``model``, decoded strictly
    against the dataclasses (``SchemaError`` naming the key path); the ranges are ``meta_schema.check``'s.
    With ``record`` False the training record is not read (``training`` None), which needs neither torch
    nor training.py: what forecasting with an exported model needs (edge.py)."""
    given = {"model": model, "stored": stored} if record else {"model": model, "stored": stored, "training": None}
    return decode(Forecaster, meta, "meta", **given)


def _tensors(model: WindowNorm) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}


def _encode(forecaster: Forecaster) -> tuple[bytes, str]:
    """The checkpoint's bytes and the digest they carry."""
    from safetensors.torch import save

    meta, tensors = to_meta(forecaster), _tensors(forecaster.model)
    digest = _digest(FORMAT_VERSION, _canonical(meta), tensors)
    document = {"format": FORMAT_VERSION, "meta": meta, "sha256": digest}
    return save(tensors, metadata={"seqcast": _canonical(document)}), digest


def to_bytes(forecaster: Forecaster) -> bytes:
    return _encode(forecaster)[0]


def save(path: str | Path, forecaster: Forecaster) -> Forecaster:
    """Write the checkpoint atomically (temporary file in the same folder, then rename); returns the
    forecaster as stored there. Metadata it could not load again is never written (over a good file,
    in a nightly warm start): that is seqcast's bug, exit 1, and the old file stays."""
    try:
        meta_schema.check(from_meta(json.loads(_canonical(to_meta(forecaster)))))
    except SchemaError as exc:
        raise RuntimeError(f"seqcast built a checkpoint it could not load again ({exc}); nothing was written") from None
    data, digest = _encode(forecaster)
    atomic_write(path, data)
    return replace(forecaster, stored=Stored(str(path), FORMAT_VERSION, digest))


def upgrade(format_version: int, meta: dict[str, Any]) -> dict[str, Any]:
    """Bring the metadata of an older format up to ``FORMAT_VERSION``, one format at a time."""
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


# What a model described by a checkpoint may allocate while it is built: parameters up to twice the
# bytes the file's tensors hold (an honest file holds exactly its model's; the margin lets a wrong
# shape be reported as one), buffers up to those bytes plus what buffers that are not stored
# (positional encodings, masks) take, a few MB for seqcast's models at the largest MAX_WINDOW.
_PARAMETER_SLACK = 64 * 1024
_BUFFER_SLACK = 64 * 1024 * 1024
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
_DTYPE_NAMES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
                "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


def _entries(name: str, header: dict[str, Any]) -> dict[str, tuple[str, tuple[int, ...], int, int]]:
    """Each tensor the header lists: (dtype, shape, start, end), its offsets consistent with its size."""
    damaged = CheckpointError(f"{name}: damaged checkpoint header; refit or restore it")
    entries = {}
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
            size = _DTYPE_BYTES[dtype] * math.prod(shape)
        except (KeyError, TypeError, ValueError):
            raise damaged from None
        if not all(isinstance(n, int) and n >= 0 for n in (*shape, begin, end)) or end - begin != size:
            raise damaged
        entries[key] = (dtype, shape, begin, end)
    return entries


def read_header(name: str, stream: BinaryIO, size_on_disk: int | None) -> tuple[int, dict[str, Any], dict, bytes]:
    """Read and check the safetensors header and seqcast's document from ``stream``, never more than the
    header says it holds; returns (format, document, tensor entries, the header's bytes)."""
    not_ours = f"{name}: not a seqcast checkpoint (expected a .ckpt file written by `seqcast fit`)"
    head = stream.read(8)
    if len(head) < 8:
        raise CheckpointError(not_ours)
    (size,) = struct.unpack("<Q", head)
    if size > _MAX_HEADER or size < 2:
        raise CheckpointError(not_ours)
    if size_on_disk is not None and 8 + size > size_on_disk:
        raise CheckpointError(f"{name}: checkpoint is truncated ({size_on_disk} bytes, header alone needs {8 + size})")
    raw = stream.read(size)
    if raw[:1] != b"{":
        raise CheckpointError(not_ours)
    if len(raw) < size:
        raise CheckpointError(f"{name}: checkpoint is truncated ({8 + len(raw)} bytes, header alone needs {8 + size})")
    try:
        header = json.loads(raw.decode("utf-8"))
        document = json.loads(header["__metadata__"]["seqcast"])
        version = document["format"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise CheckpointError(f"{name}: damaged checkpoint header, or {not_ours.split(': ', 1)[1]}") from None
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:  # "9", 9.0, 1.9, -7, true
        raise CheckpointError(f"{name}: damaged checkpoint header (format {_shown(version)}); refit or restore it")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{name}: checkpoint format {version} is newer than this seqcast supports ({FORMAT_VERSION}); upgrade seqcast"
        )
    entries = _entries(name, header)
    end = max((e[3] for e in entries.values()), default=0)
    if size_on_disk is not None and 8 + size + end != size_on_disk:
        raise CheckpointError(f"{name}: checkpoint is truncated or has extra bytes "
                              f"({size_on_disk} bytes, expected {8 + size + end}); refit or restore it")
    return version, document, entries, head + raw


def _cannot_build(name: str, reason: Exception) -> CheckpointError:
    return CheckpointError(f"{name}: checkpoint describes a model this seqcast cannot build ({reason})")


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 40 else text[:37] + "..."


def _described(name: str, meta: dict[str, Any]) -> Forecaster:
    """The forecaster (without its model) that ``meta`` of the current format describes: decoded strictly
    and within the ranges seqcast itself writes, or ``CheckpointError`` naming the key."""
    try:
        forecaster = from_meta(meta)
        meta_schema.check(forecaster)
    except SchemaError as exc:
        raise _cannot_build(name, exc) from None
    return forecaster


def _build(name: str, described: Forecaster, entries: dict) -> torch.nn.Module:
    """The model ``described`` needs, built only after its metadata passed the schema, and within the
    bytes the file's tensors hold: a crafted ``hidden_size`` fails in a millisecond, not after gigabytes."""
    from .models._layers import Covariates

    model_info, schema = described.model_info, described.schema
    stored_bytes = sum(e[3] - e[2] for e in entries.values())
    try:
        data_seasons = seasons(schema.freq) if model_info.window_norm in ("season", "deseason") else ()
        return build_network(model_info.name, schema.lookback, schema.horizon, len(schema.targets), model_info.params,
                             window_norm=model_info.window_norm, seasons=data_seasons, quantiles=model_info.quantiles,
                             covariates=Covariates(*described.covariates.widths), members=model_info.ensemble,
                             max_bytes=(2 * stored_bytes + _PARAMETER_SLACK, stored_bytes + _BUFFER_SLACK))
    except (UsageError, OverflowError, ValueError) as exc:  # a 400-digit number; a freq pandas cannot read
        raise _cannot_build(name, exc) from None


def _match(name: str, model_name: str, expected: dict[str, torch.Tensor], entries: dict) -> None:
    """The header's tensors are exactly the model's: names, shapes and dtypes (never cast silently:
    float16 weights are another model)."""
    if set(expected) != set(entries):
        missing, extra = sorted(set(expected) - set(entries)), sorted(set(entries) - set(expected))
        raise CheckpointError(f"{name}: weights do not match the recorded {model_name} model "
                              f"(missing {missing[:3]}, unexpected {extra[:3]})")
    for key, (dtype, shape, _, _) in entries.items():
        if shape != tuple(expected[key].shape):
            raise CheckpointError(f"{name}: weight {key} has shape {shape}, the recorded "
                                  f"{model_name} config needs {tuple(expected[key].shape)}")
        needed = str(expected[key].dtype).removeprefix("torch.")
        if _DTYPE_NAMES[dtype] != needed:
            raise CheckpointError(f"{name}: weight {key} is {_DTYPE_NAMES[dtype]}, the {model_name} model needs "
                                  f"{needed}; refit the model")


def _open(name: str, path: str | Path) -> tuple[BinaryIO, int | None]:
    """The checkpoint opened for reading, with its size when it is a regular file (None for a pipe)."""
    try:
        stream = open(path, "rb")  # noqa: SIM115  (closed by load)
    except FileNotFoundError:
        raise CheckpointError(f"{name}: no such checkpoint") from None
    except OSError as exc:
        raise CheckpointError(f"{name}: cannot read ({exc.strerror})") from None
    info = os.fstat(stream.fileno())
    if stat.S_ISDIR(info.st_mode):
        stream.close()
        raise CheckpointError(f"{name}: cannot read (Is a directory)")
    return stream, info.st_size if stat.S_ISREG(info.st_mode) else None


def load(path: str | Path) -> Forecaster:
    """Load and verify a checkpoint; raises ``CheckpointError`` (exit 2) for anything not intact.

    Reading is bounded by what the file says it holds, and what it says is checked before it is
    trusted: the header (at most 100 MB) first; then the metadata against the schema and the model it
    describes, built within the bytes of the tensors listed, against those tensors' names, shapes and
    dtypes; only then the tensor bytes, exactly as many as listed (a pipe that goes on is refused).
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load as load_tensors

    name = str(path)
    stream, size_on_disk = _open(name, path)
    with stream:
        try:
            version, document, entries, head = read_header(name, stream, size_on_disk)
            meta = document.get("meta")
            if not isinstance(meta, dict):
                raise CheckpointError(f"{name}: damaged checkpoint header; refit or restore it")
            try:
                current = upgrade(version, meta)
            except SchemaError as exc:
                raise _cannot_build(name, exc) from None
            except (KeyError, TypeError, AttributeError, ValueError):
                raise CheckpointError(f"{name}: checkpoint metadata is incomplete; refit the model") from None
            described = _described(name, current)
            model = _build(name, described, entries)
            expected = model.state_dict()
            _match(name, described.model_info.name, expected, entries)
            length = max((e[3] for e in entries.values()), default=0)
            body = stream.read(length)
            if len(body) < length or (size_on_disk is None and stream.read(1)):
                raise CheckpointError(f"{name}: checkpoint is truncated or has extra bytes "
                                      f"(expected {len(head) + length}); refit or restore it")
        except OSError as exc:
            raise CheckpointError(f"{name}: cannot read ({exc.strerror})") from None
    try:
        tensors = load_tensors(head + body)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{name}: damaged checkpoint ({exc})") from None
    if _digest(version, _canonical(meta), tensors) != document.get("sha256"):
        raise CheckpointError(f"{name}: checkpoint is damaged (its digest does not match); refit or restore it")
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{name}: weight {key} holds NaN or infinite values; refit the model")
    model.load_state_dict(tensors)
    model.eval()
    return replace(described, model=model, stored=Stored(name, version, document["sha256"]))
