"""What an exported model's graph may hold, checked with ``onnx`` before onnxruntime sees it.

A seqcast export (export.py) is one ONNX model with its weights inside. Its digest (edge.py) detects
damage, not forgery: anyone can recompute it, so the graph itself is checked, as a checkpoint's
metadata is. ``parse`` reads the model proto (never external data); ``check_operators`` refuses:

- a tensor whose data lives in another file (external data), and local functions, sparse or training
  graphs, none of which the exporter writes;
- control flow (``Loop``, ``If``, ``Scan``) and any attribute holding a subgraph: a graph that can run
  for ever, or hide operators from this check;
- any operator outside ``ALLOWED``: the operators seqcast's exporters write for the registered models
  under every window normalisation, fp32 and ``--int8`` (tests/test_onnx_graph.py exports them and fails
  when an exporter writes an operator that is not listed, or stops writing one that is, so the list
  stays true).

``shapes`` gives the graph's inputs and outputs as the proto declares them, which edge.py matches
against the metadata (names, ranks, the lookback, horizon, channel, quantile and member dimensions).
Every refusal is ``CheckpointError`` (exit 2) naming the file and what it holds.
"""

from __future__ import annotations

from typing import Any

from .errors import CheckpointError

INSTALL = "pip install 'seqcast[onnx]'"

CONTROL_FLOW = ("Loop", "If", "Scan")
MICROSOFT = "com.microsoft"
# The operators of the exported graphs, by domain ("" is the standard ONNX domain; com.microsoft holds
# onnxruntime's integer kernels for --int8).
ALLOWED = {
    "": frozenset((
        "Abs", "Add", "AveragePool", "Cast", "Clip", "Concat", "Constant", "ConstantOfShape", "Conv",
        "ConvInteger", "CumSum", "DequantizeLinear", "Div", "DynamicQuantizeLinear", "Elu", "Equal", "Erf",
        "Expand", "GRU",
        "Gather", "GatherElements", "GatherND", "Gelu", "Gemm", "Greater", "Identity", "LSTM",
        "LayerNormalization", "MatMul", "MatMulInteger", "MaxPool", "Mod", "Mul", "Neg", "Pad", "Pow", "RNN",
        "Range", "ReduceMax", "ReduceMean", "Relu", "Reshape", "ScatterElements", "Shape", "Sigmoid", "Slice",
        "Softmax", "Softplus", "Split", "Sqrt", "Squeeze", "Sub", "Tanh", "Tile", "TopK", "Transpose",
        "Unsqueeze", "Where",
    )),
    MICROSOFT: frozenset(("DynamicQuantizeLSTM",)),
}
DOMAINS = {"": "", "ai.onnx": "", MICROSOFT: MICROSOFT}
REEXPORT = "export the checkpoint again with `seqcast export CHECKPOINT`"


def protos():
    """onnx's protobuf classes (``onnx.onnx_ml_pb2``: ModelProto, AttributeProto, TensorProto), which is all
    reading a graph needs. Imported on their own when the ``onnx`` package is not imported yet: the package's
    own import (its reference evaluator, ml_dtypes) was most of a cold ``predict model.onnx``. Registered
    under their own name, so a later ``import onnx`` uses the same module. ``UsageError`` without onnx."""
    import importlib.util
    import sys

    from .errors import UsageError

    if sys.modules.get("onnx.onnx_ml_pb2") is not None:
        return sys.modules["onnx.onnx_ml_pb2"]
    if "onnx" in sys.modules:
        try:
            from onnx import onnx_ml_pb2
        except ImportError:
            raise UsageError(f"ONNX models need onnx, which is not installed: {INSTALL}") from None
        return onnx_ml_pb2
    try:
        package = importlib.util.find_spec("onnx")
    except (ImportError, ValueError):
        package = None
    if package is None or not package.submodule_search_locations:
        raise UsageError(f"ONNX models need onnx, which is not installed: {INSTALL}")
    from pathlib import Path

    location = Path(list(package.submodule_search_locations)[0]) / "onnx_ml_pb2.py"
    spec = importlib.util.spec_from_file_location("onnx.onnx_ml_pb2", location)
    if spec is None or spec.loader is None:
        import onnx  # an onnx laid out otherwise: its own import

        return onnx.onnx_ml_pb2
    module = importlib.util.module_from_spec(spec)
    sys.modules["onnx.onnx_ml_pb2"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["onnx.onnx_ml_pb2"]
        raise
    return module


def parse(data: bytes, name: str):
    """The ``onnx.ModelProto`` in ``data``, without loading external data; ``CheckpointError`` when the
    bytes are not one."""
    from google.protobuf.message import DecodeError

    proto = protos().ModelProto()
    try:
        proto.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError, RecursionError) as exc:
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{name}: not a seqcast ONNX model (onnx cannot read it: {reason}); {REEXPORT}") from None
    if not proto.HasField("graph") or not proto.graph.node:
        raise CheckpointError(f"{name}: not a seqcast ONNX model (it holds no graph); {REEXPORT}")
    return proto


def metadata(proto, key: str) -> str | None:
    """The value of the model's metadata property ``key``, or None; two entries under ``key`` are a
    crafted file (which one would a reader believe?)."""
    values = [entry.value for entry in proto.metadata_props if entry.key == key]
    return values[0] if len(values) == 1 else None


def check_operators(proto, name: str) -> None:
    """Refuse what seqcast's exporter never writes (see the module's docstring)."""
    AttributeProto = protos().AttributeProto

    graph = proto.graph
    if proto.functions or proto.training_info or graph.sparse_initializer:
        raise CheckpointError(f"{name}: the graph holds local functions, sparse tensors or training graphs, which "
                              f"seqcast's exporter never writes; {REEXPORT}")
    for domain in proto.opset_import:
        if domain.domain not in DOMAINS:
            raise CheckpointError(f"{name}: the graph imports the operator domain {domain.domain[:60]!r}, "
                                  f"which seqcast's exporter never uses; {REEXPORT}")
    if any(_external(tensor) for tensor in graph.initializer):
        raise CheckpointError(f"{name}: the graph's weights refer to external data (another file); a seqcast export "
                              f"holds its weights inside; {REEXPORT}")
    for node in graph.node:
        op = f"{node.domain + '.' if node.domain else ''}{node.op_type}"[:80]
        if node.op_type in CONTROL_FLOW or any(
                a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS) for a in node.attribute):
            raise CheckpointError(f"{name}: the graph holds control flow or a subgraph (operator {op!r}), which "
                                  f"seqcast's exporter never writes and could run for ever; {REEXPORT}")
        if node.op_type not in ALLOWED.get(DOMAINS.get(node.domain, None), ()):
            raise CheckpointError(f"{name}: the graph holds the operator {op!r}, which seqcast's exporter never "
                                  f"writes; {REEXPORT}")
        for attribute in node.attribute:
            if any(_external(t) for t in (*([attribute.t] if attribute.HasField("t") else []), *attribute.tensors)):
                raise CheckpointError(f"{name}: operator {op!r} refers to external data (another file); {REEXPORT}")
            if attribute.HasField("sparse_tensor") or attribute.sparse_tensors:
                raise CheckpointError(f"{name}: operator {op!r} holds a sparse tensor, which seqcast's exporter "
                                      f"never writes; {REEXPORT}")


def _external(tensor) -> bool:
    return tensor.data_location == protos().TensorProto.EXTERNAL or bool(tensor.external_data)


def shapes(proto) -> tuple[dict[str, list[Any]], list[tuple[str, list[Any]]]]:
    """The graph's inputs ({name: shape}, initializers listed as inputs by older exporters left out) and
    outputs ([(name, shape)]); a dimension is an int, the name of a free one, or None."""
    weights = {tensor.name for tensor in proto.graph.initializer}
    inputs = {value.name: _shape(value) for value in proto.graph.input if value.name not in weights}
    return inputs, [(value.name, _shape(value)) for value in proto.graph.output]


def _shape(value) -> list[Any]:
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type" or not value.type.tensor_type.HasField("shape"):
        return []  # no rank: matches nothing the metadata describes
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in value.type.tensor_type.shape.dim]
