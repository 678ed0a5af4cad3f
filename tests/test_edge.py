"""The edge path (issue 17): `seqcast export` to ONNX and `seqcast predict model.onnx` without torch.

Contracts:
- every registered model exports, and onnxruntime forecasts what torch does (fp32: within 1e-4 of
  the forecasts' scale), through the exporter the model declares; there is no refusal today, and a
  model that stopped exporting would fail here by name;
- ``--int8`` quantizes the families onnxruntime has integer kernels for (linear, attention,
  convolution and LSTM layers) within ``export.INT8_TOLERANCE`` (0.1 of the forecasts' scale), says
  which layers stay fp32 (GRU, vanilla RNN) and keeps fp32 when quantizing saves nothing;
- ``seqcast predict model.onnx`` never imports torch (checked in a subprocess through sys.modules) and
  writes the checkpoint's forecast CSV: the same rows and columns, values within 1e-4;
- bad files exit 2 with the reason (not seqcast's, damaged, newer, broken metadata), a missing
  ``seqcast[onnx]`` says how to install it, and an export that does not match torch is not written.

Tests need onnxruntime, onnx and onnxscript (the extra ``seqcast[onnx]``) and skip without them,
except the ones that check the message given when they are missing.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import TINY_FIT, randomised, subprocess_env
from seqcast import edge
from seqcast.checkpoint import load
from seqcast.forecaster import ModelInfo
from seqcast.data import season_length
from seqcast.forecaster import Covariate, CovariateSchema
from seqcast.models._layers import Covariates
from seqcast.registry import get_spec, list_models, resolve_params
from seqcast.window_norm import WindowNorm

MODELS = list_models()
LOOKBACK, HORIZON = 32, 6
INT8_MODELS = ["lstm", "gru", "transformer", "nlinear", "cnn", "patchtst"]  # one per kind of quantized layer


@pytest.fixture(scope="module")
def base(tiny_ckpt):
    return load(tiny_ckpt)


# a past covariate, two calendar features, a future covariate and a static category of three
COVARIATES = CovariateSchema((Covariate("load", "past", (0.0,), (1.0,)), Covariate("hour", "calendar", (0.0,), (1.0,)),
                              Covariate("dow", "calendar", (0.0,), (1.0,)), Covariate("promo", "future", (0.0,), (1.0,)),
                              Covariate("store", "static", (0.3, 0.3, 0.4), (0.5, 0.5, 0.5), ("a", "b", "c"))))


def forecaster_for(base, name, channels=1, quantiles=(), covariates=False, ensemble=1):
    """A real forecaster's record around a randomised ``name`` model (every parameter non-zero); with
    ``covariates`` reading COVARIATES."""
    spec = get_spec(name)
    mode = spec.capabilities.window_norm
    season = season_length(base.schema.freq) if mode == "season" else 1
    schema = COVARIATES if covariates else CovariateSchema()
    members = []
    for member in range(ensemble):
        torch.manual_seed(member)
        inner = randomised(name, LOOKBACK, HORIZON, channels, scale=0.05, covariates=Covariates(*schema.widths))
        if quantiles:
            from seqcast.quantile_head import QuantileHead

            inner = QuantileHead(inner, LOOKBACK, HORIZON, quantiles)
        members.append(WindowNorm(inner, mode, season).eval())
    if ensemble > 1:
        from seqcast.ensemble import Ensemble

        model = Ensemble(members).eval()
    else:
        model = members[0]
    targets = tuple(f"y{i}" for i in range(channels)) if channels > 1 else base.schema.targets
    return replace(base, model=model,
                   model_info=ModelInfo(name, resolve_params(name), mode, 0, tuple(quantiles), ensemble),
                   schema=replace(base.schema, lookback=LOOKBACK, horizon=HORIZON, targets=targets),
                   covariates=schema, transform=replace(base.transform, floor=base.transform.floor[:1] * channels),
                   scaler=replace(base.scaler, mean={k: [0.0] * channels for k in base.scaler.mean},
                                  std={k: [1.0] * channels for k in base.scaler.std}))


def windows(batch, channels, seed=7, widths=(0, 0, 0)):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, LOOKBACK, channels, generator=g)
    shapes = {"past": (batch, LOOKBACK, widths[0]), "future": (batch, LOOKBACK + HORIZON, widths[1]),
              "static": (batch, widths[2])}
    return x, {k: torch.randn(shape, generator=g) for k, shape in shapes.items() if shape[-1]}


def loaded(result, tmp_path):
    """An export's result and the file it writes, read back."""
    path = tmp_path / ("m.int8.onnx" if result.document["graph"].get("int8") else "m.onnx")
    path.write_bytes(result.data)
    return result, edge.load(path)


_EXPORTS: dict = {}


def export_of(onnx_extra, base, name, int8=False, **kwargs):
    """The export of ``forecaster_for(base, name, **kwargs)``, made once per run: that forecaster is the
    same model each time (seeded), so its export is the same file (shared with test_onnx_graph.py)."""
    key = (name, int8, tuple(sorted(kwargs.items())))
    if key not in _EXPORTS:
        _EXPORTS[key] = onnx_extra.export(forecaster_for(base, name, **kwargs), int8=int8)
    return _EXPORTS[key]


def assert_matches(forecaster, loaded, channels=1, tolerance=1e-4):
    x, covariates = windows(3, channels, widths=forecaster.covariates.widths)
    with torch.no_grad():
        expected = forecaster.model(x, **covariates).numpy()
    got = loaded.model.forward_numpy(x.numpy(), {k: v.numpy() for k, v in covariates.items()})
    assert got.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    assert np.abs(got - expected).max() <= tolerance * scale


# --- every registered model ------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_every_model_exports_and_onnxruntime_forecasts_what_torch_does(name, onnx_extra, base, tmp_path):
    if get_spec(name).capabilities.statistical:
        pytest.skip(f"{name} is statistical: it fits each window in Python and has no graph (its refusal is "
                    "tested in test_auto.py)")
    forecaster = forecaster_for(base, name)
    result, back = loaded(export_of(onnx_extra, base, name), tmp_path)
    assert result.exporter == get_spec(name).capabilities.onnx_exporter == result.document["graph"]["exporter"]
    assert result.max_difference <= onnx_extra.FP32_TOLERANCE
    assert_matches(forecaster, back)
    assert back.training is None and back.name == name and back.lookback == LOOKBACK


@pytest.mark.parametrize("variant", ["quantiles", "covariates", "recurrent covariates", "ensemble", "channels"])
def test_quantile_heads_covariates_ensembles_and_channels_export_too(variant, onnx_extra, base, tmp_path):
    name, kwargs = {"quantiles": ("nlinear", {"quantiles": (0.1, 0.5, 0.9)}),
                    "covariates": ("transformer", {"covariates": True}),
                    "recurrent covariates": ("lstm", {"covariates": True}),
                    "ensemble": ("gru", {"ensemble": 3}),
                    "channels": ("tcn", {"channels": 2})}[variant]
    forecaster = forecaster_for(base, name, **kwargs)
    result, back = loaded(export_of(onnx_extra, base, name, **kwargs), tmp_path)
    assert result.document["graph"]["inputs"] == (["x", "past", "future", "static"] if "covariates" in variant
                                                  else ["x"])
    assert result.document["graph"]["members"] == kwargs.get("ensemble", 1)
    assert_matches(forecaster, back, channels=kwargs.get("channels", 1))


@pytest.mark.parametrize("name", INT8_MODELS)
def test_int8_quantizes_within_its_tolerance(name, onnx_extra, base, tmp_path):
    forecaster = forecaster_for(base, name)
    result, back = loaded(export_of(onnx_extra, base, name, int8=True), tmp_path)
    fp32 = export_of(onnx_extra, base, name)
    if result.int8:  # a tiny model can gain nothing from int8; then the file says it is fp32 and why
        assert result.quantized and result.document["graph"]["int8"]
        assert len(result.data) < len(fp32.data)
        assert_matches(forecaster, back, tolerance=onnx_extra.INT8_TOLERANCE)
    else:
        assert "saves nothing" in result.notes[0] and result.data == fp32.data


def test_int8_stores_gru_weights_in_int8_and_a_model_without_weights_is_written_fp32(onnx_extra, base):
    """onnxruntime has no integer GRU kernel: the GRU operator stays, its weight matrices int8 behind a
    DequantizeLinear (one scale per direction), and the export says it computes in fp32."""
    import onnx
    from onnx import numpy_helper

    gru = onnx_extra.export(replace(forecaster_for(base, "gru")), int8=True)
    assert "GRU weights are stored as int8" in gru.notes[0] and "compute in fp32" in gru.notes[0]
    assert "GRU" in gru.quantized and not gru.kept_fp32
    graph = onnx.load_from_string(gru.data).graph
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    node = next(n for n in graph.node if n.op_type == "GRU")
    producers = {out: n for n in graph.node for out in n.output}
    for position in (1, 2):  # W and R, each from its int8 values
        dequantize = producers[node.input[position]]
        assert dequantize.op_type == "DequantizeLinear" and weights[dequantize.input[0]].dtype == np.int8
    naive = onnx_extra.export(forecaster_for(base, "naive"), int8=True)
    assert not naive.int8 and "no weights" in naive.notes[0]


# --- the CLI: export, then predict without torch ------------------------------------------------------


PROBE = ("import json, sys\nsys.argv = ['seqcast', *sys.argv[1:]]\nfrom seqcast.cli import main\n"
         "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
         "sys.stderr.write(json.dumps({'code': code, 'torch': 'torch' in sys.modules}) + '\\n')\n")


def run_probe(*args):
    """The CLI in a fresh interpreter; returns (exit code, whether torch was imported, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-c", PROBE, *map(str, args)], capture_output=True, env=subprocess_env(),
                          timeout=120)
    *said, last = proc.stderr.decode().strip().splitlines()
    report = json.loads(last)
    return report["code"], report["torch"], proc.stdout.decode(), "\n".join(said)


@pytest.fixture(scope="module")
def interval_ckpt(tmp_path_factory, hourly_csv, invoke):
    """A tiny GRU with conformal intervals and quantiles: every column predict can write."""
    path = tmp_path_factory.mktemp("edge") / "q.ckpt"
    code, _, err = invoke("fit", hourly_csv, *TINY_FIT, "--level", "80", "--quantiles", "0.1,0.9", "--output", path)
    assert code == 0, err
    return path


def test_predict_on_the_onnx_model_never_imports_torch_and_writes_the_checkpoints_csv(
        onnx_extra, invoke, interval_ckpt, hourly_csv, tmp_path):
    model = tmp_path / "q.onnx"
    code, out, err = invoke("export", interval_ckpt, "--output", model)
    assert code == 0, err
    assert out == "" and "onnx model:" in err  # nothing from the exporter, on either stream
    code, torch_loaded, onnx_csv, err = run_probe("predict", model, hourly_csv)
    assert code in (0, None) and not torch_loaded, err
    code, ckpt_csv, err = invoke("predict", interval_ckpt, hourly_csv)
    assert code == 0, err
    a, b = pd.read_csv(io.StringIO(ckpt_csv)), pd.read_csv(io.StringIO(onnx_csv))
    assert list(a.columns) == list(b.columns) and {"lo_80", "hi_80", "q10", "q90"} <= set(a.columns)
    values = ["forecast", "lo_80", "hi_80", "q10", "q90"]
    assert a.drop(columns=values).equals(b.drop(columns=values))
    scale = max(1.0, float(a[values].abs().max().max()))
    assert float((a[values] - b[values]).abs().max().max()) <= 1e-4 * scale


def test_predict_by_content_info_and_json_on_an_onnx_model(onnx_extra, invoke, tiny_ckpt, hourly_csv, tmp_path):
    model = tmp_path / "m.onnx"
    code, out, err = invoke("export", tiny_ckpt, "-o", model, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["graph"]["exporter"] == "torchscript" and summary["bytes"] == model.stat().st_size
    renamed = tmp_path / "model.bin"  # no .onnx suffix: recognised by its first bytes
    renamed.write_bytes(model.read_bytes())
    code, out, err = invoke("predict", renamed, hourly_csv, "--json", "--horizon", "3")
    assert code == 0, err
    assert json.loads(out)["rows"] == 3
    code, out, err = invoke("info", model)
    assert code == 0, err
    assert "exported    torchscript exporter, fp32" in out and "windows     lookback 24, horizon 6" in out
    code, out, err = invoke("info", model, "--json")
    assert code == 0 and json.loads(out)["export"]["checkpoint"]["sha256"] == load(tiny_ckpt).stored.sha256


def test_export_refuses_to_overwrite_and_to_write_to_stdout(onnx_extra, invoke, tiny_ckpt, tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"keep")
    code, _, err = invoke("export", tiny_ckpt, "-o", model)
    assert code == 2 and "--force" in err and model.read_bytes() == b"keep"
    code, _, err = invoke("export", tiny_ckpt, "-o", "-")
    assert code == 2 and "binary file" in err


def test_an_export_that_does_not_match_torch_is_refused_and_not_written(onnx_extra, invoke, tiny_ckpt, tmp_path,
                                                                        monkeypatch):
    from onnx import numpy_helper

    strip = onnx_extra._strip

    def damaging(proto):  # as if the exporter had got a weight wrong
        strip(proto)
        weight = max(proto.graph.initializer, key=lambda t: len(t.raw_data))
        weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 3 + 1, weight.name))

    monkeypatch.setattr(onnx_extra, "_strip", damaging)
    model = tmp_path / "m.onnx"
    code, out, err = invoke("export", tiny_ckpt, "-o", model)
    assert code == 2 and "does not forecast what the model does" in err and "nothing was written" in err
    assert not model.exists() and out == ""


# --- bad files and a missing extra -------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(onnx_extra, tiny_ckpt, tmp_path_factory):
    path = tmp_path_factory.mktemp("exported") / "m.onnx"
    path.write_bytes(onnx_extra.export(load(tiny_ckpt)).data)
    return path


def resigned(source, tmp_path, change):
    """``source`` with its seqcast document changed by ``change`` and signed again, as a crafted file would be."""
    import onnx

    proto = onnx.load(str(source))
    entry = next(e for e in proto.metadata_props if e.key == edge.KEY)
    document = json.loads(entry.value)
    change(document)
    document["sha256"] = edge.UNSIGNED
    entry.value = edge.encode(document)
    unsigned = proto.SerializeToString()
    path = tmp_path / "crafted.onnx"
    path.write_bytes(edge.signed(unsigned, edge.file_digest(unsigned)))
    return path


def test_files_that_are_not_intact_seqcast_models_exit_2_naming_why(onnx_extra, invoke, exported, tiny_ckpt,
                                                                    hourly_csv, tmp_path):
    import onnx

    bare = onnx.load(str(exported))
    del bare.metadata_props[:]
    cases = {"not seqcast's": (bare.SerializeToString(), "not a seqcast ONNX model (it has no seqcast metadata)"),
             "garbage": (b"\x08\x07 not protobuf at all", "not a seqcast ONNX model (onnx cannot read it"),
             "a checkpoint": (tiny_ckpt.read_bytes(), "not a seqcast ONNX model")}
    data = bytearray(exported.read_bytes())
    weight = max(bare.graph.initializer, key=lambda t: len(t.raw_data)).raw_data
    at = bytes(data).index(weight) + len(weight) // 2
    data[at] ^= 0x40  # one bit of one weight
    cases["one weight bit flipped"] = (bytes(data), "damaged (its digest does not match)")
    for label, (content, message) in cases.items():
        path = tmp_path / f"{label.replace(' ', '_')}.onnx"
        path.write_bytes(content)
        code, out, err = invoke("predict", path, hourly_csv)
        assert code == 2 and message in err and out == "", (label, err)
    newer = resigned(exported, tmp_path, lambda d: d.update(format=edge.FORMAT + 1))
    code, _, err = invoke("predict", newer, hourly_csv)
    assert code == 2 and "is newer than this seqcast supports" in err
    broken = resigned(exported, tmp_path, lambda d: d["meta"]["schema"].update(lookback="24"))
    code, _, err = invoke("predict", broken, hourly_csv)
    assert code == 2 and "meta.schema.lookback: '24' is not an integer" in err
    wrong = resigned(exported, tmp_path, lambda d: d["meta"]["schema"].update(lookback=25))
    code, _, err = invoke("predict", wrong, hourly_csv)
    assert code == 2 and "the graph does not match its seqcast metadata" in err


def test_without_the_onnx_extra_predict_and_export_say_how_to_install_it(invoke, tiny_ckpt, hourly_csv, tmp_path,
                                                                         monkeypatch):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"\x08\x07")  # never read: the missing runtime is reported first
    for module in ("onnxruntime", "onnx", "onnxscript"):
        monkeypatch.setitem(sys.modules, module, None)  # import -> ImportError, as if not installed
    code, out, err = invoke("predict", model, hourly_csv)
    assert code == 2 and "pip install 'seqcast[onnx]'" in err and out == ""
    code, out, err = invoke("export", tiny_ckpt, "-o", tmp_path / "new.onnx")
    assert code == 2 and "pip install 'seqcast[onnx]'" in err and not (tmp_path / "new.onnx").exists()


def test_an_int8_graph_forecasts_each_window_as_if_it_were_alone(onnx_extra, base, tmp_path):
    """onnxruntime quantizes a call's inputs with one range: an int8 graph runs one window per call, so a
    wide window in the same batch changes nothing in the others' forecasts (fp32 graphs run batched)."""
    _, back = loaded(export_of(onnx_extra, base, "nlinear", int8=True), tmp_path)
    assert back.model.one_by_one
    x, _ = windows(2, 1)
    wide = np.concatenate([x.numpy(), x.numpy()[:1] * 1000])
    alone = back.model.forward_numpy(x.numpy()[:1])
    together = back.model.forward_numpy(wide)
    assert np.array_equal(together[:1], alone) and together.shape[0] == 3
    _, fp32 = loaded(export_of(onnx_extra, base, "nlinear"), tmp_path)
    assert not fp32.model.one_by_one
