"""An exported model meets the checkpoint's standard of trust (issue 30, section 1): a read bounded by the
file's size, and a graph checked with onnx before onnxruntime sees it (seqcast/onnx_graph.py).

Every crafted file here carries valid seqcast metadata and a recomputed digest, as anyone can write one:
the digest detects damage, not forgery, so what the file holds is checked, for ``predict`` and ``info``.
The operator allow-list is derived here, from every registered model exported fp32 and ``--int8``: the
test fails when an exporter starts writing an operator the list does not hold, or stops writing one it
does, so the list stays the exporter's.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
import subprocess
import sys

import pytest

from conftest import TINY_FIT
from seqcast import edge, onnx_graph
from seqcast.checkpoint import load
from seqcast.registry import WINDOW_NORMS, get_spec, list_models


@pytest.fixture(scope="module")
def exported(onnx_extra, tiny_ckpt, tmp_path_factory):
    path = tmp_path_factory.mktemp("graph") / "m.onnx"
    path.write_bytes(onnx_extra.export(load(tiny_ckpt)).data)
    return path


def crafted(source, tmp_path, graph=None, document=None, name="crafted.onnx"):
    """``source`` with its proto changed by ``graph(proto)`` and its seqcast document by ``document(doc)``,
    signed again as a crafted file would be."""
    import onnx

    proto = onnx.load_from_string(source.read_bytes())
    entry = next(e for e in proto.metadata_props if e.key == edge.KEY)
    doc = json.loads(entry.value)
    if graph:
        graph(proto)
    if document:
        document(doc)
    doc["sha256"] = edge.UNSIGNED
    entry.value = edge.encode(doc)
    unsigned = proto.SerializeToString()
    path = tmp_path / name
    path.write_bytes(edge.signed(unsigned, edge.file_digest(unsigned)))
    return path


def refused(invoke, path, data, *messages):
    """``predict`` and ``info`` both exit 2 naming the file and each of ``messages``, writing nothing."""
    for args in (("predict", path, data), ("info", path)):
        code, out, err = invoke(*args)
        assert code == 2 and out == "", (args[0], err)
        assert str(path) in err, err
        for message in messages:
            assert message in err, (args[0], err)


def endless_loop(proto):
    """The issue's case: the graph's forecast passed through a Loop of 2^63 - 1 iterations."""
    from onnx import TensorProto, helper

    graph = proto.graph
    for node in graph.node:
        node.output[:] = ["before_loop" if o == "forecast" else o for o in node.output]
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["v_in"], ["v_out"])],
        "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                 helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("v_in", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, None)])
    graph.initializer.extend([helper.make_tensor("trips", TensorProto.INT64, [], [2**63 - 1]),
                              helper.make_tensor("go", TensorProto.BOOL, [], [True])])
    graph.node.append(helper.make_node("Loop", ["trips", "go", "before_loop"], ["forecast"], body=body))


def renamed_op(op_type, domain=""):
    def change(proto):
        proto.graph.node[0].op_type, proto.graph.node[0].domain = op_type, domain
        if domain:
            proto.opset_import.add(domain=domain, version=1)
    return change


def subgraph_attribute(proto):
    from onnx import helper

    body = helper.make_graph([], "hidden", [], [])
    proto.graph.node[0].attribute.append(helper.make_attribute("then_branch", body))


def external_weight(proto):
    from onnx import TensorProto

    weight = max(proto.graph.initializer, key=lambda t: len(t.raw_data))
    weight.data_location = TensorProto.EXTERNAL
    weight.external_data.add(key="location", value="/etc/passwd")


def output_renamed(proto):
    for node in proto.graph.node:
        node.output[:] = ["y" if o == "forecast" else o for o in node.output]
    proto.graph.output[0].name = "y"


def input_rank(proto):
    proto.graph.input[0].type.tensor_type.shape.dim.add(dim_value=1)


@pytest.mark.parametrize("change, messages", [
    (endless_loop, ["control flow", "'Loop'"]),
    (renamed_op("Loop"), ["control flow", "'Loop'"]),
    (renamed_op("Scan"), ["control flow", "'Scan'"]),
    (subgraph_attribute, ["control flow or a subgraph"]),
    (renamed_op("RandomNormal"), ["operator 'RandomNormal'", "never writes"]),
    (renamed_op("Exec", "com.example"), ["'com.example'"]),
    (external_weight, ["external data"]),
    (output_renamed, ["does not match its seqcast metadata", "'y'"]),
    (input_rank, ["does not match its seqcast metadata", "input x"]),
], ids=["loop 2^63", "Loop", "Scan", "subgraph", "RandomNormal", "custom domain", "external data", "output name",
        "input rank"])
def test_a_crafted_graph_is_refused_before_onnxruntime_sees_it(onnx_extra, invoke, exported, hourly_csv, tmp_path,
                                                               monkeypatch, change, messages):
    path = crafted(exported, tmp_path, graph=change)
    seen = []
    monkeypatch.setattr(edge, "session", lambda *a, **k: seen.append(a) or pytest.fail("onnxruntime saw it"))
    refused(invoke, path, hourly_csv, *messages)
    assert not seen


def test_the_untouched_export_still_loads_predicts_and_shows_info(onnx_extra, invoke, exported, hourly_csv):
    code, out, err = invoke("predict", exported, hourly_csv)
    assert code == 0 and out.startswith("series,timestamp"), err
    code, out, err = invoke("info", exported)
    assert code == 0, err


@pytest.mark.parametrize("what", ["dev/zero link", "fifo", "sparse 3 GiB", "folder"])
def test_a_model_file_that_is_not_a_bounded_regular_file_is_refused_before_it_is_read(
        onnx_extra, invoke, hourly_csv, tmp_path, what):
    """A link to /dev/zero, a pipe (with a writer that never stops, or none), a sparse file larger than
    any export can be: refused from what stat says, for predict and info, in a moment."""
    path = tmp_path / "z.onnx"
    writer = None
    if what == "dev/zero link":
        if not os.path.exists("/dev/zero"):
            pytest.skip("no /dev/zero")
        path.symlink_to("/dev/zero")
        message = "is a device"
    elif what == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("needs named pipes")
        os.mkfifo(path)
        writer = subprocess.Popen([sys.executable, "-c", "import sys\nwith open(sys.argv[1], 'wb') as out:\n"
                                   "    while True: out.write(bytes(65536))", str(path)], stderr=subprocess.DEVNULL)
        message = "is a pipe"
    elif what == "sparse 3 GiB":
        with open(path, "wb") as out:
            out.truncate(3 << 30)
        message = f"more than the {edge.MAX_BYTES:,}"
    else:
        path.mkdir()
        message = "Is a directory"
    try:
        refused(invoke, path, hourly_csv, message)
    finally:
        if writer:
            writer.kill()
            writer.wait()


def test_a_file_that_grows_while_it_is_read_is_refused(tmp_path):
    from seqcast.errors import CheckpointError
    from seqcast.model_files import open_model_file, read_whole

    path = tmp_path / "m.onnx"
    path.write_bytes(b"\x08" * 100)
    stream, size = open_model_file(path, str(path), "exported model", streams=False)
    with stream:
        with open(path, "ab") as more:
            more.write(b"\0" * 10)
        with pytest.raises(CheckpointError, match="changed while it was read"):
            read_whole(stream, size, str(path), "exported model")


def test_deeply_nested_metadata_is_a_damaged_file(onnx_extra, invoke, exported, hourly_csv, tmp_path):
    import onnx

    proto = onnx.load_from_string(exported.read_bytes())
    entry = next(e for e in proto.metadata_props if e.key == edge.KEY)
    entry.value = "[" * 100_000 + "]" * 100_000
    path = tmp_path / "deep.onnx"
    path.write_bytes(proto.SerializeToString())
    refused(invoke, path, hourly_csv, "damaged seqcast metadata")


# --- the allow-list is what the exporters write -------------------------------------------------------

GRAPHED = [name for name in list_models() if not get_spec(name).capabilities.statistical]  # statistical: no graph
VARIANTS = [(name, {}) for name in GRAPHED] + [("nlinear", {"quantiles": (0.1, 0.5, 0.9)}),
                                              ("transformer", {"covariates": True}),
                                              ("lstm", {"covariates": True}), ("gru", {"ensemble": 3})]
# Every window normalisation around a model of each exporter (dynamo: dlinear, TorchScript: gru), with a
# season that fits the lookback twice, so that "season" and "deseason" export what they compute.
NORMED = [(name, mode) for name in ("dlinear", "gru") for mode in WINDOW_NORMS]


def normed(forecaster, mode):
    from seqcast.window_norm import WindowNorm

    return replace(forecaster, model=WindowNorm(forecaster.model.model, mode, (4,)).eval(),
                   model_info=replace(forecaster.model_info, window_norm=mode))


def test_the_allow_list_is_exactly_the_operators_every_model_exports_fp32_and_int8(onnx_extra, tiny_ckpt, tmp_path):
    """Every registered model (and the quantile head, covariates, an ensemble), exported through the
    exporter it declares, fp32 and quantized as --int8 quantizes it, and every window normalisation
    around a model of each exporter: each graph passes the check, each file loads, and the operators all
    of them write together are the allow-list, no more, no fewer. (The fp32 exports are test_edge.py's,
    made once per run; --int8 is the same export followed by export.quantize.)"""
    import onnx

    from test_edge import export_of, forecaster_for

    base, written = load(tiny_ckpt), set()
    results = [(name, export_of(onnx_extra, base, name, **kwargs)) for name, kwargs in VARIANTS]
    results += [(name, onnx_extra.export(normed(forecaster_for(base, name), mode))) for name, mode in NORMED]
    for i, (name, result) in enumerate(results):
        path = tmp_path / f"{i}.onnx"
        path.write_bytes(result.data)
        assert edge.load(path).name == name
        for proto in (onnx.load_from_string(result.data), onnx_extra.quantize(result.data, name)[0]):
            written.update((onnx_graph.DOMAINS.get(node.domain, node.domain), node.op_type) for node in proto.graph.node)
            onnx_graph.check_operators(proto, "export")
    allowed = {(domain, op) for domain, ops in onnx_graph.ALLOWED.items() for op in ops}
    assert written - allowed == set(), "the exporter writes operators the allow-list lacks"
    assert allowed - written == set(), "the allow-list holds operators no export writes"


def test_an_exported_ensemble_and_quantile_model_still_predicts_through_the_cli(onnx_extra, invoke, hourly_csv,
                                                                                tmp_path):
    ckpt = tmp_path / "q.ckpt"
    code, _, err = invoke("fit", hourly_csv, *TINY_FIT, "--quantiles", "0.1,0.9", "--ensemble", "2", "-o", ckpt)
    assert code == 0, err
    model = tmp_path / "q.onnx"
    code, _, err = invoke("export", ckpt, "-o", model)
    assert code == 0, err
    code, out, err = invoke("predict", model, hourly_csv)
    assert code == 0 and "q10" in out.splitlines()[0], err
