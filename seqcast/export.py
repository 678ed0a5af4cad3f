"""``seqcast export``: a checkpoint as one ONNX file that forecasts without torch (``edge.py`` reads it).

The graph is traced with the exporter the model declares (``Capabilities.onnx_exporter``: dynamo,
i.e. ``torch.export``, or the legacy TorchScript tracer for torch's recurrent layers, as measured in
docs/benchmarks.md, "Edge"), from a batch of ``EXPORT_BATCH`` windows with the batch axis dynamic.
What the exporters print goes nowhere (never to stdout), and is shown only when an export fails.
Node doc strings, names and metadata (dynamo's stack traces), intermediate shape records and long
value names are dropped or shortened: debugging aids that made up to a third of a small model's file.

Before anything is written the graph is run by onnxruntime on ``PARITY_BATCHES`` and compared with
torch on the same windows: an export whose largest difference passes ``FP32_TOLERANCE`` (or, for
``--int8``, ``INT8_TOLERANCE``) of the forecasts' scale is refused.

``int8``: onnxruntime's dynamic quantization (``onnxruntime.quantization.quantize_dynamic``: int8
weights, activations quantized per call), of the operators it has integer kernels for: MatMul and
Gemm (linear layers, attention projections), Conv and LSTM. GRU and the vanilla RNN have none: their
weight matrices are stored as int8 with a DequantizeLinear each (``_recurrent_int8``: a quarter of the
bytes, computed in fp32 once loaded). Written out step by step as matrix products, which would compute
in int8, the layers took more bytes in every case measured, whatever the width (about 23 operators a step
once quantized: at lookback 96 and 48 units 91 kB against 15 kB), so that form is not offered. The
result names what was quantized and what stayed fp32. Not ``torch.ao.quantization``, which is
deprecated for removal. A student trained aware of int8 weights (``fit``'s ``qat``, ``int8.py``) holds
weights the quantizer rounds to themselves.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from . import edge, int8
from .errors import CheckpointError, UsageError
from .forecaster import Forecaster

EXPORT_BATCH = 2  # traced from two windows: a batch of one lets an exporter fix the batch axis at 1
PARITY_BATCHES = (1, 5)
FP32_TOLERANCE = 1e-4  # largest |onnxruntime - torch| over the largest |forecast| (at least 1), scaled units
INT8_TOLERANCE = 0.1  # the same for --int8 (measured: docs/benchmarks.md, "Edge")
OPSET = 17  # the TorchScript exporter's; dynamo chooses its own (18 or later)
# Operators that hold weights, and what onnxruntime's dynamic quantization makes of them
QUANTIZED = {"MatMulInteger": "MatMul", "DynamicQuantizeMatMul": "MatMul", "ConvInteger": "Conv",
             "DynamicQuantizeLSTM": "LSTM", "QAttention": "Attention", "QGemm": "Gemm"}
WEIGHTED = ("MatMul", "Gemm", "Conv", "ConvTranspose", "LSTM", "GRU", "RNN", "Einsum", "Attention")
RECURRENT = ("LSTM", "GRU", "RNN")  # their inputs 1 and 2 are the weight matrices, 3 the biases


@dataclass(frozen=True)
class Exported:
    """An export, checked: the file's bytes and what it is."""

    data: bytes
    document: dict[str, Any]
    exporter: str
    seconds: float
    fp32_bytes: int  # the fp32 graph's size (the file's own with int8 False)
    quantized: tuple[str, ...] = ()  # operator types whose weights are int8
    kept_fp32: tuple[str, ...] = ()  # weight-holding operator types left in fp32 under --int8
    max_difference: float = 0.0  # against torch, over the forecasts' scale (at least 1)
    tolerance: float = FP32_TOLERANCE
    notes: tuple[str, ...] = field(default=())
    graph_bytes: int = 0  # the graph and its weights, without the seqcast metadata (which grows with the series)

    @property
    def int8(self) -> bool:
        return bool(self.quantized)


class _Graph(nn.Module):
    """What the ONNX graph computes: the forecaster's model on scaled windows and the covariate inputs
    ``names`` (positional here, by name in the graph); for an ensemble every member's forecast,
    (B, M, H, C[, Q]) (numpy takes their median: edge.py)."""

    def __init__(self, model: nn.Module, names: tuple[str, ...] = ()):
        super().__init__()
        self.model, self.names = model, names
        from .ensemble import Ensemble

        self.members = model.members if isinstance(model, Ensemble) else None  # a Blend sums its own members

    def forward(self, x: torch.Tensor, first: torch.Tensor | None = None, second: torch.Tensor | None = None,
                third: torch.Tensor | None = None) -> torch.Tensor:
        inputs = dict(zip(self.names, (first, second, third)))
        if self.members is not None:
            return torch.stack([member(x, **inputs) for member in self.members], dim=1)
        return self.model(x, **inputs)


def input_names(forecaster: Forecaster) -> list[str]:
    """The graph's inputs: x, then each covariate input the model reads."""
    return ["x"] + [name for name, width in zip(("past", "future", "static"), forecaster.covariates.widths) if width]


def require_exporter() -> None:
    """onnx, onnxruntime and onnxscript (the dynamo exporter's), or the exit-2 error saying how to install them."""
    for module in ("onnx", "onnxruntime", "onnxscript"):
        try:
            __import__(module)
        except ImportError:
            raise UsageError(f"seqcast export needs {module}, which is not installed: {edge.INSTALL}") from None


def exporter_of(forecaster: Forecaster) -> str:
    """How ``forecaster``'s model is traced: its model's declared exporter; for an auto ensemble TorchScript
    when any member declares it (it keeps their quantized LSTMs), else dynamo. A statistical model (or an
    ensemble holding one) has no ONNX form: ``UsageError`` naming it."""
    from .registry import get_spec

    members = [m.name for m in forecaster.model_info.members]
    for name in members or [forecaster.name]:
        if get_spec(name).capabilities.statistical:
            fix = "refit auto without it (--candidates lists the others)" if members else "export another model"
            raise UsageError(f"{forecaster.label}: {name} fits its statistical model on each window in Python "
                             f"(statsforecast) and has no ONNX form; {fix}")
    kinds = {get_spec(name).capabilities.onnx_exporter for name in members or [forecaster.name]}
    return "torchscript" if "torchscript" in kinds else "dynamo"


def exporter_name(model: str) -> str:
    """The exporter a registered model declares (``Capabilities.onnx_exporter``)."""
    from .registry import get_spec

    return get_spec(model).capabilities.onnx_exporter


def export(forecaster: Forecaster, int8: bool = False, source: dict[str, Any] | None = None) -> Exported:
    """The checked ONNX file of ``forecaster``'s model (nothing is written here); ``CheckpointError``
    when the exported graph does not forecast what the model does. ``source`` describes the checkpoint
    (its path, format and digest; default: ``forecaster.stored``)."""
    require_exporter()
    exporter = exporter_of(forecaster)
    names = input_names(forecaster)
    graph = _Graph(forecaster.model, tuple(names[1:])).eval()
    started = time.perf_counter()
    proto = _trace(graph, exporter, _inputs(forecaster, EXPORT_BATCH, seed=0), names, forecaster.label)
    _strip(proto)
    fp32 = proto.SerializeToString()
    seconds = time.perf_counter() - started
    weighted = tuple(sorted(_weighted(proto)))
    difference = _parity(graph, fp32, forecaster, FP32_TOLERANCE)
    document = _document(forecaster, exporter, source, difference, FP32_TOLERANCE)
    document["graph"]["fp32"] = list(weighted)
    fp32_file = _signed(proto, document)
    plain = Exported(fp32_file, document, exporter, seconds, len(fp32_file), (), (), difference, FP32_TOLERANCE,
                     graph_bytes=len(fp32))
    if not int8:
        return plain
    int8_proto, quantized, kept = quantize(fp32, forecaster.label)
    if not quantized:
        return replace(plain, notes=(f"--int8: {forecaster.name} has no weights onnxruntime can quantize "
                                     "(no linear, convolution or LSTM layer); the file is fp32",))
    difference = _parity(graph, int8_proto.SerializeToString(), forecaster, INT8_TOLERANCE)
    recurrent = sorted({"GRU", "RNN"} & set(quantized))
    notes = (f"--int8: {' and '.join(recurrent)} weights are stored as int8 and dequantized when the model loads "
             "(onnxruntime has no integer kernel for them: they compute in fp32)",) if recurrent else ()
    document = _document(forecaster, exporter, source, difference, INT8_TOLERANCE)
    document["graph"].update(int8=True, quantized=list(quantized), fp32=list(kept))
    data = _signed(int8_proto, document)
    stays = f"{', '.join(kept)} stay{'s' if len(kept) == 1 else ''} fp32 (onnxruntime has no integer kernel for " \
            f"{'it' if len(kept) == 1 else 'them'})" if kept else ""
    if len(data) >= len(fp32_file):
        return replace(plain, notes=(f"--int8: {stays or 'the weights are few'}, and quantizing "
                                     f"{', '.join(quantized)} saves nothing ({len(data) / 1000:.1f} kB against "
                                     f"{len(fp32_file) / 1000:.1f} kB); the file is fp32",))
    return Exported(data, document, exporter, seconds, len(fp32_file), quantized, kept, difference, INT8_TOLERANCE,
                    notes + ((f"--int8: {stays}",) if kept else ()), len(int8_proto.SerializeToString()))


def _document(forecaster: Forecaster, exporter: str, source: dict[str, Any] | None, difference: float,
              tolerance: float) -> dict[str, Any]:
    """The file's seqcast document (edge.py), unsigned: an fp32 graph's (the caller marks int8)."""
    import onnx
    import onnxruntime

    from .checkpoint import FORMAT_VERSION, to_meta

    stored = forecaster.stored
    return {
        "format": edge.FORMAT, "meta": to_meta(forecaster), "meta_format": FORMAT_VERSION,
        "checkpoint": source or {"path": stored.path if stored else None, "format": stored.format if stored else None,
                                 "sha256": stored.sha256 if stored else None},
        "graph": {"inputs": input_names(forecaster),
                  "members": forecaster.model_info.ensemble, "exporter": exporter, "int8": False, "quantized": [],
                  "fp32": []},
        "parity": {"batches": list(PARITY_BATCHES), "max_difference": difference, "tolerance": tolerance},
        "versions": {"seqcast": _version(), "torch": torch.__version__.split("+")[0], "onnx": onnx.__version__,
                     "onnxruntime": onnxruntime.__version__},
        "sha256": edge.UNSIGNED,
    }


def _signed(proto, document: dict[str, Any]) -> bytes:
    """The file's bytes: ``proto`` with the document as its ``seqcast`` metadata, signed (edge.py)."""
    entry = proto.metadata_props.add()
    entry.key, entry.value = edge.KEY, edge.encode(document)
    unsigned = proto.SerializeToString()
    del proto.metadata_props[-1]
    digest = edge.file_digest(unsigned)
    if digest is None:  # the placeholder also appears among the weights' bytes: vanishingly rare
        raise CheckpointError("cannot sign the exported file (its weights hold the digest's placeholder)")
    document["sha256"] = digest
    return edge.signed(unsigned, digest)


def _version() -> str:
    from . import __version__

    return __version__


def _inputs(forecaster: Forecaster, batch: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Windows for tracing and parity: scaled values (B, L, C) as a random walk around zero (what scaled
    series look like), and the covariate inputs the model reads, standard normal (they are z-scored)."""
    schema = forecaster.schema
    return _windows(schema.lookback, schema.horizon, len(schema.targets), forecaster.covariates.widths, batch, seed)


def _windows(lookback: int, horizon: int, channels: int, widths: tuple[int, int, int], batch: int,
             seed: int) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    x = (torch.randn(batch, lookback, channels, generator=generator) * 0.3).cumsum(dim=1)
    x = x - x.mean(dim=1, keepdim=True)
    past, future, static = widths
    shapes = [(batch, lookback, past), (batch, lookback + horizon, future), (batch, static)]
    return (x, *(torch.randn(shape, generator=generator) for shape in shapes if shape[-1]))


def int8_model_bytes(network: nn.Module, lookback: int, horizon: int, channels: int, widths: tuple[int, int, int],
                     exporter: str) -> int:
    """The bytes of the graph ``export --int8`` writes for ``network`` (a WindowNorm around a registered
    model; weights and operators, without the metadata): the same for any values of its weights, so an
    untrained network sizes a trained one (``distill --max-bytes``)."""
    require_exporter()
    names = ["x"] + [name for name, width in zip(("past", "future", "static"), widths) if width]
    inputs = _windows(lookback, horizon, channels, widths, EXPORT_BATCH, seed=0)
    proto = _trace(_Graph(network, tuple(names[1:])).eval(), exporter, inputs, names, "the student")
    _strip(proto)
    quantized, done, _ = quantize(proto.SerializeToString(), "the student")
    return len((quantized if done else proto).SerializeToString())


@contextlib.contextmanager
def _quiet() -> Iterator[io.StringIO]:
    """Exporter and quantizer output kept off both streams, at the file descriptors too (the exporters
    print progress on stdout, C++ warnings and logs on stderr); what they said is in the yielded buffer."""
    said = io.StringIO()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = []
    with tempfile.TemporaryFile() as sink:
        try:
            for fd in (1, 2):
                with contextlib.suppress(OSError):
                    saved.append((fd, os.dup(fd)))
                    os.dup2(sink.fileno(), fd)
            previous = logging.root.manager.disable
            logging.disable(logging.CRITICAL)
            try:
                with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    yield said
            finally:
                logging.disable(previous)
        finally:
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            said.write(sink.read().decode("utf-8", "replace"))


def _trace(graph: _Graph, exporter: str, inputs: tuple[torch.Tensor, ...], names: list[str], label: str):
    """The graph as an ONNX ModelProto, batch axis dynamic."""
    import onnx

    with _quiet() as said:
        try:
            if exporter == "torchscript":
                buffer = io.BytesIO()
                torch.onnx.export(graph, inputs, buffer, dynamo=False, input_names=names, output_names=["forecast"],
                                  dynamic_axes={n: {0: "batch"} for n in [*names, "forecast"]}, opset_version=OPSET)
                return onnx.load_from_string(buffer.getvalue())
            batch = torch.export.Dim("batch", min=1)
            program = torch.onnx.export(graph, inputs, dynamo=True, input_names=names, output_names=["forecast"],
                                        dynamic_shapes=tuple({0: batch} for _ in names), optimize=True)
            return program.model_proto
        except Exception as exc:
            reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}"
            error = exc
    last = [line for line in said.getvalue().splitlines() if line.strip()][-3:]
    raise CheckpointError(f"{label}: the {exporter} exporter could not export this model ({reason})"
                          + (f"; it said: {' | '.join(last)}" if last else "")) from error


def _strip(proto) -> None:
    """Drop what only debugging reads: node doc strings, names and metadata, intermediate shape records,
    and the exporter's long value names (``/model/encoder/LSTM_output_0``), which become short ids; the
    graph's inputs and output keep theirs. A graph with subgraphs (If, Loop) keeps its value names."""
    from onnx import AttributeProto

    graph = proto.graph
    for node in graph.node:
        node.doc_string = node.name = ""
        del node.metadata_props[:]
    del graph.value_info[:]
    graph.doc_string = ""
    if any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS) for node in graph.node for a in node.attribute):
        return
    kept, short = {"", "x", "past", "future", "static", "marks", "forecast"}, {}

    def rename(name: str) -> str:
        return name if name in kept else short.setdefault(name, format(len(short), "x"))
    for tensor in graph.initializer:
        tensor.name = rename(tensor.name)
    for node in graph.node:
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
    for value in [*graph.input, *graph.output]:
        value.name = rename(value.name)


def _weighted(proto) -> set[str]:
    """Operator types in ``proto`` that hold a float weight (an initializer input; of a recurrent operator its
    weight matrices, not its biases)."""
    floats = {i.name for i in proto.graph.initializer if i.data_type in (1, 10, 11, 16)}  # float, fp16, double, bf16
    return {node.op_type for node in proto.graph.node if node.op_type in WEIGHTED and
            floats & set(node.input[1:3] if node.op_type in RECURRENT else node.input)}


def _recurrent_int8(proto) -> list[str]:
    """Store the weight matrices (W, R) of ``proto``'s GRU and RNN operators, which onnxruntime has no
    integer kernel for, as int8 with a DequantizeLinear each: symmetric, one scale per direction (as
    ``int8.fake_int8`` rounds each of torch's weight tensors), computed in fp32 once dequantized. Returns
    the operator types so stored."""
    from onnx import helper, numpy_helper

    initializers = {tensor.name: tensor for tensor in proto.graph.initializer}
    done, dequantize = set(), []
    for node in proto.graph.node:
        if node.op_type not in ("GRU", "RNN"):
            continue
        for position in (1, 2):
            name = node.input[position]
            if name not in initializers:
                continue
            weight = numpy_helper.to_array(initializers[name]).astype(np.float64)  # (directions, gates x H, in)
            values, scale = int8.per_row(weight)
            proto.graph.initializer.remove(initializers.pop(name))
            proto.graph.initializer.extend([numpy_helper.from_array(values, f"{name}_q"),
                                            numpy_helper.from_array(scale.astype(np.float32), f"{name}_s"),
                                            numpy_helper.from_array(np.zeros(len(scale), np.int8), f"{name}_z")])
            dequantize.append(helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_z"], [name],
                                               axis=0))
            done.add(node.op_type)
    for i, node in enumerate(dequantize):  # before every other node: their inputs are all initializers
        proto.graph.node.insert(i, node)
    return sorted(done)


def quantize(fp32: bytes, label: str):
    """The fp32 graph ``fp32`` quantized as --int8 does: (int8 ModelProto, operator types quantized,
    weight-holding types kept fp32)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as folder, _quiet():
        target = os.path.join(folder, "int8.onnx")
        try:
            quantize_dynamic(onnx.load_from_string(fp32), target, weight_type=QuantType.QInt8)
            proto = onnx.load(target)
        except Exception as exc:
            raise CheckpointError(f"{label}: onnxruntime could not quantize the graph ({type(exc).__name__}: "
                                  f"{str(exc)[:200]}); export it without --int8") from None
    stored = _recurrent_int8(proto)
    _strip(proto)
    quantized = sorted({QUANTIZED[n.op_type] for n in proto.graph.node if n.op_type in QUANTIZED} | set(stored))
    return proto, tuple(quantized), tuple(sorted(_weighted(proto)))


def _parity(graph: _Graph, data: bytes, forecaster: Forecaster, tolerance: float) -> float:
    """The largest |onnxruntime - torch| over the forecasts' scale (at least 1) on ``PARITY_BATCHES``;
    ``CheckpointError`` past ``tolerance``."""
    run = edge.session(data, 1, forecaster.label)
    worst = 0.0
    for i, batch in enumerate(PARITY_BATCHES):
        inputs = _inputs(forecaster, batch, seed=1 + i)
        with torch.no_grad():
            expected = graph(*inputs).numpy()
        feed = dict(zip(input_names(forecaster), (t.numpy() for t in inputs)))
        try:
            (got,) = run.run(None, feed)
        except Exception as exc:
            raise CheckpointError(f"{forecaster.label}: the exported graph fails at batch {batch} "
                                  f"({str(exc).strip().splitlines()[0][:200]}); nothing was written") from None
        if got.shape != expected.shape:
            raise CheckpointError(f"{forecaster.label}: the exported graph gives shape {got.shape} at batch {batch}, "
                                  f"torch {expected.shape}; nothing was written")
        scale = max(1.0, float(np.abs(expected).max()))
        difference = float(np.abs(got.astype(np.float64) - expected).max()) / scale if got.size else 0.0
        if not np.isfinite(difference) or difference > tolerance:
            raise CheckpointError(f"{forecaster.label}: the exported graph does not forecast what the model does: "
                                  f"largest difference {difference:.3g} of the forecasts' scale at batch {batch}, "
                                  f"the limit is {tolerance:g}; nothing was written")
        worst = max(worst, difference)
    return worst
