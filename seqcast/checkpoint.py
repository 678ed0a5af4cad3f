"""Checkpoints: one safetensors file, weights plus seqcast's JSON metadata, and nothing executable.

Layout: the standard safetensors file (8-byte little-endian header size, JSON header, raw tensor
bytes). The header's ``__metadata__`` holds one key, ``seqcast``, whose value is a JSON document
``{"format": N, "meta": {...}, "sha256": ...}``. ``meta`` is the ``Forecaster``'s dataclasses as they
are (forecaster.py; ``decode.encode``): every field but the model and where it was stored, under its
name, less the tables that grow with the series (``SERIES_TABLES``: scaler statistics, series names,
splits, ...), which are typed tensors beside the weights (``series_columns``, format 14; format 13 held
them as one JSON tensor): a panel of a million series would pass safetensors' 100 MB header, and its
tables read as a few arrays, not millions of JSON values. The digest covers the format
number, the canonical metadata JSON and every tensor's name, dtype, shape and bytes (the tables'
tensor too), so a flipped byte anywhere that matters is caught (it detects damage, not forgery).

Loading parses the header with ``json`` itself, checks sizes, reads exactly the bytes the header
lists, puts the tables back, upgrades an older format, decodes the metadata strictly against the
dataclasses (``decode.decode``) and checks its ranges (``meta_schema.check``), builds the model it
describes within the bytes of the listed tensors, and only then hands the bytes to ``safetensors``
(which never unpickles), checks the digest, and the shapes and finiteness of the weights, all
before a single tensor is used.
"""
from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from . import meta_schema, series_columns
from .decode import SchemaError, decode, encode
from .errors import CheckpointError, UsageError
from .build import build_blend, build_network
from .data import seasons
from .files import atomic_write
from .forecaster import Forecaster, Stored
from .formats import FORMAT_VERSION, upgrade
from .model_files import open_model_file, parse_json, read_arriving

if TYPE_CHECKING:  # torch loads with the weights: from_meta serves the torch-free ONNX predict too (edge.py)
    import torch

    from .window_norm import WindowNorm

_MAX_HEADER = 100 * 1024 * 1024

# The metadata that grows with the series: stored beside the weights (format 13: as one UTF-8 JSON
# tensor; 14: as columns, series_columns), not in the header, which safetensors caps at 100 MB (a
# million series' scaler alone is 60 MB of JSON). The header's metadata holds everything else;
# loading puts these back where they were.
SERIES_TENSOR = series_columns.INDEX
SERIES_TABLES = (("scaler", "mean"), ("scaler", "std"), ("schema", "series"), ("training", "split"),
                 ("training", "seen_until"), ("transform", "lambdas"), ("backtest", "series_mase"))

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


_canonical = series_columns.canonical


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


def _without_tables(meta: dict) -> tuple[dict, dict]:
    """``meta`` less its per-series tables (``SERIES_TABLES``; its sections copied where one is taken),
    and the tables by dotted path."""
    head, tables = dict(meta), {}
    for section, key in SERIES_TABLES:
        if isinstance(head.get(section), dict) and key in head[section]:
            head[section] = dict(head[section])
            tables[f"{section}.{key}"] = head[section].pop(key)
    return head, tables


def _with_tables(name: str, meta: dict, tables: Any) -> dict:
    """``meta`` with its per-series tables put back; a table the format does not know, or whose section
    is not there, is damage."""
    known = {f"{section}.{key}": (section, key) for section, key in SERIES_TABLES}
    if not isinstance(tables, dict) or set(tables) - set(known):
        raise CheckpointError(f"{name}: damaged checkpoint (its per-series tables); refit or restore it")
    full = dict(meta)
    for path, value in tables.items():
        section, key = known[path]
        if not isinstance(full.get(section), dict) or key in full[section]:
            raise CheckpointError(f"{name}: damaged checkpoint (table {path} has no place); refit or restore it")
        full[section] = {**full[section], key: value}
    return full


def _encode(forecaster: Forecaster) -> tuple[bytes, str]:
    """The checkpoint's bytes and the digest they carry."""
    return pack(to_meta(forecaster), _tensors(forecaster.model))


def pack(meta: dict, weights: dict[str, torch.Tensor]) -> tuple[bytes, str]:
    """The bytes of a current-format checkpoint of ``meta`` (``to_meta``'s, whole) and the model's
    ``weights`` (the tables' tensors among them are replaced), and the digest they carry."""
    head, tables = _without_tables(meta)
    return _packed(head, series_columns.to_columns(tables), weights)


def _packed(head: dict, columns: dict[str, np.ndarray], weights: dict[str, torch.Tensor]) -> tuple[bytes, str]:
    """The checkpoint of the header metadata ``head``, the tables' ``columns`` and the ``weights``."""
    import torch
    from safetensors.torch import save

    tensors = {k: v for k, v in weights.items() if not series_columns.is_column(k)}
    tensors.update({k: torch.from_numpy(v) for k, v in columns.items()})
    digest = _digest(FORMAT_VERSION, _canonical(head), tensors)
    document = {"format": FORMAT_VERSION, "meta": head, "sha256": digest}
    return save(tensors, metadata={"seqcast": _canonical(document)}), digest


def to_bytes(forecaster: Forecaster) -> bytes:
    return _encode(forecaster)[0]


def save(path: str | Path, forecaster: Forecaster) -> Forecaster:
    """Write the checkpoint atomically (temporary file in the same folder, then rename); returns the
    forecaster as stored there. Metadata it could not load again is never written (over a good file,
    in a nightly warm start): that is seqcast's bug, exit 1, and the old file stays."""
    head, tables = _without_tables(to_meta(forecaster))
    try:  # decoded and checked as load does: the header read back through JSON, with the tables
        meta_schema.check(from_meta(_with_tables(str(path), json.loads(_canonical(head)), tables)))
    except (SchemaError, CheckpointError) as exc:
        raise RuntimeError(f"seqcast built a checkpoint it could not load again ({exc}); nothing was written") from None
    data, digest = _packed(head, series_columns.to_columns(tables), _tensors(forecaster.model))
    atomic_write(path, data)
    return replace(forecaster, stored=Stored(str(path), FORMAT_VERSION, digest))


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
        header = parse_json(raw.decode("utf-8"))
        document = parse_json(header["__metadata__"]["seqcast"])
        version = document["format"]
    except (UnicodeDecodeError, KeyError, TypeError, ValueError):  # malformed or too deeply nested JSON too
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
        norms = [m.window_norm for m in model_info.members] or [model_info.window_norm]
        data_seasons = seasons(schema.freq) if {"season", "deseason"} & set(norms) else ()
        bounds = (2 * stored_bytes + _PARAMETER_SLACK, stored_bytes + _BUFFER_SLACK)
        if model_info.members:
            return build_blend([(m.name, m.params, m.window_norm) for m in model_info.members],
                               [m.weight for m in model_info.members], schema.lookback, schema.horizon,
                               len(schema.targets), seasons=data_seasons, quantiles=model_info.quantiles,
                               covariates=Covariates(*described.covariates.widths), max_bytes=bounds)
        return build_network(model_info.name, schema.lookback, schema.horizon, len(schema.targets), model_info.params,
                             window_norm=model_info.window_norm, seasons=data_seasons, quantiles=model_info.quantiles,
                             covariates=Covariates(*described.covariates.widths), members=model_info.ensemble,
                             max_bytes=bounds)
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


def _series_tables(name: str, version: int, columns: dict[str, tuple], body: bytes) -> Any:
    """The per-series tables: format 13 held them as the JSON of one ``SERIES_TENSOR`` (1-D uint8), format
    14 as columns (``series_columns``) with that tensor their index; every column must be one the index reads."""
    index = columns.get(SERIES_TENSOR)
    if index is None or index[0] != "U8" or len(index[1]) != 1:
        raise CheckpointError(f"{name}: damaged checkpoint (no per-series tables); refit or restore it")
    read_names = {SERIES_TENSOR}

    def read(tensor: str, dtype: str, dims: int) -> np.ndarray:
        entry = columns.get(tensor)
        if entry is None or entry[0] != dtype or len(entry[1]) != dims:
            raise series_columns.Damaged(tensor)
        read_names.add(tensor)
        return np.frombuffer(body, dtype=_DTYPE_NAMES[dtype], count=math.prod(entry[1]),
                             offset=entry[2]).reshape(entry[1])

    try:
        document = parse_json(body[index[2] : index[3]].decode("utf-8"))
        tables = document if version < 14 else series_columns.from_columns(document, read)
    except (UnicodeDecodeError, ValueError, TypeError):  # series_columns.Damaged too
        tables = None
    if tables is None or read_names != set(columns):
        raise CheckpointError(f"{name}: damaged checkpoint (its per-series tables); refit or restore it")
    return tables


def load(path: str | Path) -> Forecaster:
    """Load and verify a checkpoint; raises ``CheckpointError`` (exit 2) for anything not intact.

    Reading is bounded by what the file says it holds, and what it says is checked before it is
    trusted: the header (at most 100 MB) first, then exactly the bytes it lists (a pipe that goes on is
    refused); then the metadata against the schema and the model it describes, built within the bytes
    of the tensors listed, against those tensors' names, shapes and dtypes; only then are the bytes
    handed to safetensors.
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load as load_tensors

    name = str(path)
    stream, size_on_disk = open_model_file(path, name, "checkpoint", streams=True)  # a pipe: bounded by its header
    with stream:
        try:
            version, document, entries, head = read_header(name, stream, size_on_disk)
            meta = document.get("meta")
            if not isinstance(meta, dict):
                raise CheckpointError(f"{name}: damaged checkpoint header; refit or restore it")
            length = max((e[3] for e in entries.values()), default=0)
            body = stream.read(length) if size_on_disk is not None else read_arriving(stream, length)
            if len(body) < length or (size_on_disk is None and stream.read(1)):
                raise CheckpointError(f"{name}: checkpoint is truncated or has extra bytes "
                                      f"(expected {len(head) + length}); refit or restore it")
        except OSError as exc:
            raise CheckpointError(f"{name}: cannot read ({exc.strerror})") from None
    columns = {key: entries.pop(key) for key in list(entries) if series_columns.is_column(key)}
    full = _with_tables(name, meta, _series_tables(name, version, columns, body)) if version >= 13 else meta
    try:
        current = upgrade(version, full)
    except SchemaError as exc:
        raise _cannot_build(name, exc) from None
    except (KeyError, TypeError, AttributeError, ValueError, OverflowError, RecursionError):
        raise CheckpointError(f"{name}: checkpoint metadata is incomplete; refit the model") from None
    described = _described(name, current)
    model = _build(name, described, entries)
    expected = model.state_dict()
    _match(name, described.model_info.name, expected, entries)
    try:
        tensors = load_tensors(head + body)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{name}: damaged checkpoint ({exc})") from None
    if _digest(version, _canonical(meta), tensors) != document.get("sha256"):
        raise CheckpointError(f"{name}: checkpoint is damaged (its digest does not match); refit or restore it")
    for key in columns:
        tensors.pop(key)
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{name}: weight {key} holds NaN or infinite values; refit the model")
    model.load_state_dict(tensors)
    model.eval()
    return replace(described, model=model, stored=Stored(name, version, document["sha256"]))
