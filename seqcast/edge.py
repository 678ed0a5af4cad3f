"""Forecasting with an exported model (``seqcast export``): onnxruntime and numpy, and never torch.

The file is one ONNX model with its weights inside (no external data). Its metadata property
``seqcast`` holds one JSON document (``DOCUMENT_KEYS``):

    format      this layout's version (``FORMAT``)
    meta        the checkpoint's metadata, as ``checkpoint.to_meta`` writes it (the forecaster's dataclasses:
                model, data schema, reading policy, scaler statistics, training record, calibration, ...),
                read by the checkpoint's decoder (``checkpoint.from_meta``) and range rules (``meta_schema``)
    meta_format the checkpoint format of ``meta``; an older one is upgraded on reading, as checkpoints are
    checkpoint  the checkpoint it was exported from: its path, format and digest (``sha256``)
    graph       the graph's inputs ("x", then "past", "future", "static" for the covariate inputs the model
                reads; "future" was named "marks" in files of checkpoint format 5), ensemble members, the exporter,
                whether it is int8 and which weight-holding operators were quantized or kept in fp32
    parity      the batch sizes checked against torch at export, the largest difference and its limit
    versions    seqcast, torch, onnx and onnxruntime at export
    sha256      the digest of the file's bytes, taken with this value written as 64 zeros: a changed byte
                anywhere (weights included) is caught before anything is forecast

Reading one (``open_model``) meets the checkpoint's standard of trust, each step before the next
is trusted: a bounded read (a regular file of at most ``MAX_BYTES``, never a pipe or device), the
proto parsed by onnx without external data, the document and its digest, the metadata of its own
format upgraded, decoded and range-checked, then the graph (``onnx_graph``: operators on the
exporter's allow-list, no control flow or subgraph, inputs and output as the metadata describes);
only then does onnxruntime see the bytes. The digest detects damage, not forgery.

What runs where. The graph: the registered model, its per-window normalisation (``WindowNorm``: the
window's level, spread or season subtracted and added back), the quantile head when there is one,
and, for an ensemble, every member (its output is (B, M, H, C[, Q])). The numpy side is
``forecasting.py``, the code the torch path runs: reading the CSV, scaling each series by its stored
statistics (a series not seen in training by its own history), calendar features, the ensemble's
median (ONNX has no median operator; numpy takes the lower middle member, as ``torch.median`` does),
conformal intervals and the output frame. So only the forward differs.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CheckpointError, UsageError
from .onnx_graph import INSTALL

FORMAT = 1
KEY = "seqcast"  # the ONNX metadata property that holds the document
DOCUMENT_KEYS = ("format", "meta", "meta_format", "checkpoint", "graph", "parity", "versions", "sha256")
UNSIGNED = "0" * 64  # the digest's place while the digest is taken


def require_onnxruntime():
    """onnxruntime, or the exit-2 error that says how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise UsageError(f"ONNX models need onnxruntime, which is not installed: {INSTALL}") from None
    return onnxruntime


def is_onnx(path: str | Path) -> bool:
    """Whether ``path`` names an ONNX model rather than a checkpoint: by its ``.onnx`` suffix, else by
    its first bytes (a checkpoint is safetensors: 8 bytes of header size, then ``{``; an ONNX model is
    a protobuf whose first field is its IR version, byte 0x08)."""
    if str(path).lower().endswith(".onnx"):
        return True
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a pipe's first bytes, once read, are gone for the loader
            return False
        with open(path, "rb") as stream:
            head = stream.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[0] == 0x08 and head[8:9] != b"{"


def signed(data: bytes, digest: str) -> bytes:
    """The file's bytes with the digest written in the place the unsigned document kept for it."""
    return data.replace(_field(UNSIGNED), _field(digest), 1)


def file_digest(data: bytes, digest: str = UNSIGNED) -> str | None:
    """The digest of a file whose document says ``digest``: its bytes hashed with that value zeroed; None
    when the value is not in the bytes exactly once (the document and the bytes disagree)."""
    field = _field(digest)
    if data.count(field) != 1:
        return None
    return hashlib.sha256(data.replace(field, _field(UNSIGNED)) if digest != UNSIGNED else data).hexdigest()


def _field(digest: str) -> bytes:
    return f'"sha256":"{digest}"'.encode("ascii")  # the checkpoint's own digest, under the same key, differs


def encode(document: dict[str, Any]) -> str:
    """The document as stored: canonical JSON, keys sorted."""
    return json.dumps(document, sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class OnnxModel:
    """An exported graph run by onnxruntime: scaled windows (B, L, C), with the covariate inputs the graph
    takes (past (B, L, P), future (B, L + H, F), static (B, S)), -> scaled forecasts (B, H, C), or (B, H, C, Q).

    An int8 graph (``one_by_one``) forecasts one window per call: onnxruntime quantizes each call's inputs
    with one range for the whole batch, so in a batch the widest series coarsens every other one (a
    distilled nlinear on M4 Weekly: OWA 0.7791 in batches of 359, 0.7675 one by one, its checkpoint
    0.7678; docs/benchmarks.md, "Distillation"). A call costs tens of microseconds."""

    def __init__(self, session, members: int = 1, shape: list[int] | None = None, name: str = "model",
                 one_by_one: bool = False):
        self.session = session
        self.members = members  # > 1: the graph gives every member's forecast, (B, M, H, C[, Q])
        self.shape = shape  # the output's shape after the batch axis, as the metadata describes it
        self.name = name
        self.one_by_one = one_by_one
        self.inputs = [i.name for i in session.get_inputs()]

    def forward_numpy(self, x: np.ndarray, covariates: dict[str, np.ndarray] | None = None) -> np.ndarray:
        if self.one_by_one and len(x) > 1:
            return np.concatenate([self.forward_numpy(x[i : i + 1], {k: v[i : i + 1] for k, v in
                                                                     (covariates or {}).items()})
                                   for i in range(len(x))])
        feed = {"x": np.ascontiguousarray(x, dtype=np.float32)}
        for name in self.inputs:
            if name != "x":  # "marks": a format-5 file's name for the known-future block
                feed[name] = np.ascontiguousarray((covariates or {})["future" if name == "marks" else name],
                                                  dtype=np.float32)
        try:
            (out,) = self.session.run(None, feed)
        except Exception as exc:  # onnxruntime's own error classes are not public
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"{self.name}: the exported graph fails on these windows ({reason}); export the "
                                  "checkpoint again, or predict with the checkpoint") from None
        if self.shape is not None and list(out.shape) != [len(x), *self.shape]:
            raise CheckpointError(f"{self.name}: the graph's forecast has shape {tuple(out.shape)}, its seqcast "
                                  f"metadata describes {(len(x), *self.shape)}; export the checkpoint again")
        if self.members > 1:  # the median member, the lower of the two middle ones when M is even (torch.median)
            out = np.sort(out, axis=1)[:, (self.members - 1) // 2]
        return out


def session(data: bytes, threads: int = 0, name: str = "model"):
    """An onnxruntime session over the model's bytes, on ``threads`` intra-op threads (0: one; seqcast's
    models are small, and one thread also keeps results the same from machine to machine)."""
    ort = require_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 4  # fatal only: a model that does not load is reported by seqcast, once
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own error classes (InvalidProtobuf, Fail, ...) are not public
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{name}: not a seqcast ONNX model (onnxruntime cannot read it: {reason}); "
                              "export one with `seqcast export CHECKPOINT`") from None


@dataclass(frozen=True)
class Opened:
    """An exported model's file, read and verified: its document and an onnxruntime session over it."""

    document: dict[str, Any]
    meta: dict[str, Any]  # upgraded to the current checkpoint format
    session: Any
    sha256: str


# The largest file an export can be: one protobuf message with its weights inside, which protobuf caps at
# 2 GiB (seqcast never writes external data). A larger file is not one seqcast wrote.
MAX_BYTES = 2**31 - 1


def read_model(path: str | Path) -> bytes:
    """The bytes of the exported model at ``path``, read as ``model_files`` reads a model file: a regular
    file only (never a pipe or device, which could go on for ever), at most ``MAX_BYTES``, exactly as many
    bytes as its size says; ``CheckpointError`` naming the file otherwise."""
    from .model_files import open_model_file, read_whole

    name = str(path)
    stream, size = open_model_file(path, name, "exported model", streams=False, limit=MAX_BYTES,
                                   advice="predict with the checkpoint it came from, or export it again")
    with stream:
        return read_whole(stream, size, name, "exported model")


def open_model(path: str | Path, threads: int = 0) -> Opened:
    """Read ``path``, check it is an intact seqcast ONNX model and return it; ``CheckpointError`` (exit
    2) for anything else, ``UsageError`` when onnxruntime is missing. In this order, each before the
    next is trusted: a bounded read (``read_model``), the proto parsed by onnx, the seqcast document and
    its digest, the metadata of its own format upgraded, decoded and range-checked, the graph's operators
    (``onnx_graph``) and its inputs and output against the metadata; only then onnxruntime's session."""
    from . import meta_schema, onnx_graph
    from .checkpoint import from_meta

    name = str(path)
    require_onnxruntime()
    require_onnx()
    data = read_model(path)
    proto = onnx_graph.parse(data, name)
    document, meta = _document(name, data, onnx_graph.metadata(proto, KEY))
    onnx_graph.check_operators(proto, name)
    try:
        described = from_meta(meta, record=False)
        meta_schema.check(described)
    except meta_schema.SchemaError as exc:
        raise CheckpointError(f"{name}: seqcast metadata describes a model this seqcast cannot use ({exc})") from None
    graph = document["graph"]
    _match_graph(name, *onnx_graph.shapes(proto), described, graph.get("members") if isinstance(graph, dict) else None)
    del proto
    return Opened(document, meta, session(data, threads, name), document["sha256"])


def require_onnx():
    """onnx's protobuf classes (which read the graph before onnxruntime runs it: ``onnx_graph.protos``), or
    the exit-2 error that says how to install onnx."""
    from . import onnx_graph

    return onnx_graph.protos()


def _document(name: str, data: bytes, text: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The file's seqcast document, its digest checked, and its metadata upgraded to the current format."""
    from .checkpoint import FORMAT_VERSION, upgrade
    from .decode import SchemaError
    from .model_files import parse_json

    if text is None:
        raise CheckpointError(f"{name}: not a seqcast ONNX model (it has no seqcast metadata); export one with "
                              "`seqcast export CHECKPOINT`")
    try:
        document = parse_json(text)
        version = document["format"]
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{name}: damaged seqcast metadata; export the model again") from None
    if version > FORMAT:
        raise CheckpointError(f"{name}: exported model format {version} is newer than this seqcast supports "
                              f"({FORMAT}); upgrade seqcast")
    digest = document.get("sha256")
    if not isinstance(digest, str) or file_digest(data, digest) != digest:
        raise CheckpointError(f"{name}: the model is damaged (its digest does not match); export it again")
    try:
        if set(document) != set(DOCUMENT_KEYS) or not isinstance(document["meta"], dict):
            raise KeyError
        meta_format = document["meta_format"]
        if not isinstance(meta_format, int) or isinstance(meta_format, bool) or meta_format < 1:
            raise ValueError
        if meta_format > FORMAT_VERSION:
            raise CheckpointError(f"{name}: its checkpoint format {meta_format} is newer than this seqcast "
                                  f"supports ({FORMAT_VERSION}); upgrade seqcast")
        _check_sections(document)
        return document, upgrade(meta_format, document["meta"])
    except SchemaError as exc:
        raise CheckpointError(f"{name}: seqcast metadata describes a model this seqcast cannot use ({exc})") from None
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError):
        raise CheckpointError(f"{name}: seqcast metadata is incomplete; export the model again") from None


# What the document's other sections must hold, by key: the kinds info and predict read (more keys may follow).
_TEXTS, _NUMBER = ("list", str), (int, float)
SECTIONS = {
    "graph": {"inputs": _TEXTS, "members": int, "exporter": str, "int8": bool, "quantized": _TEXTS, "fp32": _TEXTS},
    "parity": {"batches": ("list", int), "max_difference": _NUMBER, "tolerance": _NUMBER},
    "checkpoint": {"path": (str, type(None)), "sha256": (str, type(None))},
    "versions": {"torch": str, "onnx": str, "onnxruntime": str},
}


def _check_sections(document: dict[str, Any]) -> None:
    """``SchemaError`` naming the key unless each section of ``SECTIONS`` holds its keys, of their kinds."""
    from .decode import SchemaError

    for section, keys in SECTIONS.items():
        value = document[section]
        if not isinstance(value, dict):
            raise SchemaError(f"{section}: expected an object")
        for key, kind in keys.items():
            item = value.get(key, ...)
            if isinstance(kind, tuple) and kind[0] == "list":
                good = isinstance(item, list) and all(isinstance(v, kind[1]) and not isinstance(v, bool) for v in item)
            else:
                good = isinstance(item, kind) and (kind is bool or not isinstance(item, bool))
            if not good:
                raise SchemaError(f"{section}.{key}: {str(item)[:40] if item is not ... else 'missing'}, not what "
                                  "seqcast's exporter writes")


def load(path: str | Path, threads: int = 0, record: bool = False):
    """The ``Forecaster`` of an exported model, whose ``model`` is an ``OnnxModel``: ``forecasting.predict``
    takes it as it takes a checkpoint's. Without ``record`` (forecasting) torch is never imported and
    ``training`` is None; with it, the metadata is checked in full and the training record built (torch
    loads with training.py), for ``info`` and for evaluating the exported model."""
    return forecaster(open_model(path, threads), str(path), record)


def forecaster(opened: Opened, name: str, record: bool = False):
    """The ``Forecaster`` of an opened model (``load``): its metadata decoded and checked as a checkpoint's
    is (without ``record``, the training record is not read, and torch never imported)."""
    from dataclasses import replace

    from . import meta_schema
    from .checkpoint import FORMAT_VERSION, from_meta
    from .forecaster import Stored

    try:
        described = from_meta(opened.meta, record=record)
        meta_schema.check(described)
    except meta_schema.SchemaError as exc:
        raise CheckpointError(f"{name}: seqcast metadata describes a model this seqcast cannot use ({exc})") from None
    graph = opened.document["graph"]
    return replace(described, model=OnnxModel(opened.session, graph["members"],
                                              _output_shape(described, graph["members"]), name,
                                              one_by_one=bool(graph["int8"])),
                   stored=Stored(name, FORMAT_VERSION, opened.sha256))


def _output_shape(described, members: int) -> list[int]:
    """The graph's output shape after the batch axis: (M,) H, C (, Q)."""
    quantiles = described.model_info.quantiles
    return ([members] if members != 1 else []) + [described.schema.horizon, len(described.schema.targets)] + (
        [len(quantiles)] if quantiles else [])


def _match_graph(name: str, inputs: dict[str, list], outputs: list[tuple[str, list]], described, members: Any) -> None:
    """The graph's inputs and output, as the proto declares them (``onnx_graph.shapes``), have the names,
    ranks and dimensions the metadata describes (batch axis free; a dimension the exporter left unnamed
    or symbolic is checked on every run, ``OnnxModel``)."""
    schema, model_info = described.schema, described.model_info
    lookback, horizon, channels = schema.lookback, schema.horizon, len(schema.targets)
    past, future, static = described.covariates.widths
    wanted = {"x": [lookback, channels], "past": [lookback, past], "future": [lookback + horizon, future],
              "static": [static]}
    wanted = {k: v for k, v in wanted.items() if v[-1]}
    if "future" in wanted and "marks" in inputs:
        wanted["marks"] = wanted.pop("future")
    problem, out = None, _output_shape(described, members)
    if not isinstance(members, int) or isinstance(members, bool) or members != model_info.ensemble:
        problem = f"{members!r} ensemble members in the graph, {model_info.ensemble} in the metadata"
    elif set(inputs) != set(wanted):
        problem = f"inputs {[n[:40] for n in sorted(inputs)][:5]}, expected {sorted(wanted)}"
    elif len(outputs) != 1 or outputs[0][0] != "forecast" or not _fits(outputs[0][1], out):
        problem = f"outputs {[(n[:40], s[:6]) for n, s in outputs][:3]}, expected forecast (batch, {', '.join(map(str, out))})"
    else:
        bad = [key for key, shape in wanted.items() if not _fits(inputs[key], shape)]
        problem = f"input {bad[0]} has shape {inputs[bad[0]]}, expected (batch, {wanted[bad[0]]})" if bad else None
    if problem:
        raise CheckpointError(f"{name}: the graph does not match its seqcast metadata ({problem}); export it again")


def _fits(shape: list, wanted: list) -> bool:
    """A graph shape (batch first; a dimension onnxruntime cannot name is a str or None) against ``wanted``."""
    if len(shape) != len(wanted) + 1:
        return False
    return all(w is None or not isinstance(s, int) or s == w for s, w in zip(shape[1:], wanted))
