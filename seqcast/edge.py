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

FORMAT = 1
KEY = "seqcast"  # the ONNX metadata property that holds the document
DOCUMENT_KEYS = ("format", "meta", "meta_format", "checkpoint", "graph", "parity", "versions", "sha256")
UNSIGNED = "0" * 64  # the digest's place while the digest is taken
INSTALL = "pip install 'seqcast[onnx]'"


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
    takes (past (B, L, P), future (B, L + H, F), static (B, S)), -> scaled forecasts (B, H, C), or (B, H, C, Q)."""

    def __init__(self, session, members: int = 1):
        self.session = session
        self.members = members  # > 1: the graph gives every member's forecast, (B, M, H, C[, Q])
        self.inputs = [i.name for i in session.get_inputs()]

    def forward_numpy(self, x: np.ndarray, covariates: dict[str, np.ndarray] | None = None) -> np.ndarray:
        feed = {"x": np.ascontiguousarray(x, dtype=np.float32)}
        for name in self.inputs:
            if name != "x":  # "marks": a format-5 file's name for the known-future block
                feed[name] = np.ascontiguousarray((covariates or {})["future" if name == "marks" else name],
                                                  dtype=np.float32)
        (out,) = self.session.run(None, feed)
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
    options.log_severity_level = 3  # errors only: nothing on stderr for a model that loads
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


def open_model(path: str | Path, threads: int = 0) -> Opened:
    """Read ``path``, check it is an intact seqcast ONNX model and return it; ``CheckpointError`` (exit
    2) for anything else, ``UsageError`` when onnxruntime is missing."""
    from .checkpoint import FORMAT_VERSION, upgrade
    from .decode import SchemaError

    name = str(path)
    require_onnxruntime()
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{name}: no such model") from None
    except OSError as exc:
        raise CheckpointError(f"{name}: cannot read ({exc.strerror})") from None
    run = session(data, threads, name)
    text = run.get_modelmeta().custom_metadata_map.get(KEY)
    if text is None:
        raise CheckpointError(f"{name}: not a seqcast ONNX model (it has no seqcast metadata); export one with "
                              "`seqcast export CHECKPOINT`")
    try:
        document = json.loads(text)
        version = int(document["format"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
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
        meta = upgrade(meta_format, document["meta"])
    except SchemaError as exc:
        raise CheckpointError(f"{name}: seqcast metadata describes a model this seqcast cannot use ({exc})") from None
    except (KeyError, TypeError, ValueError, AttributeError):
        raise CheckpointError(f"{name}: seqcast metadata is incomplete; export the model again") from None
    return Opened(document, meta, run, digest)


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
    members = graph.get("members") if isinstance(graph, dict) else None
    _match_graph(name, opened.session, described, members)
    return replace(described, model=OnnxModel(opened.session, members),
                   stored=Stored(name, FORMAT_VERSION, opened.sha256))


def _match_graph(name: str, run, described, members: Any) -> None:
    """The graph's inputs and output have the shapes the metadata describes (batch axis free)."""
    schema, model_info = described.schema, described.model_info
    lookback, horizon, channels = schema.lookback, schema.horizon, len(schema.targets)
    past, future, static = described.covariates.widths
    wanted = {"x": [lookback, channels], "past": [lookback, past], "future": [lookback + horizon, future],
              "static": [static]}
    wanted = {k: v for k, v in wanted.items() if v[-1]}
    if "future" in wanted and "marks" in [i.name for i in run.get_inputs()]:
        wanted["marks"] = wanted.pop("future")
    out = ([members] if members != 1 else []) + [horizon, channels] + ([len(model_info.quantiles)] if model_info.quantiles else [])
    inputs = {i.name: i.shape for i in run.get_inputs()}
    outputs = [o.shape for o in run.get_outputs()]
    problem = None
    if not isinstance(members, int) or isinstance(members, bool) or members != model_info.ensemble:
        problem = f"{members!r} ensemble members in the graph, {model_info.ensemble} in the metadata"
    elif set(inputs) != set(wanted):
        problem = f"inputs {sorted(inputs)}, expected {sorted(wanted)}"
    elif len(outputs) != 1 or not _fits(outputs[0], out):
        problem = f"output shape {outputs[0] if outputs else None}, expected (batch, {', '.join(map(str, out))})"
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
