"""``seqcast explain``: attention rows sum to one over the input steps, gates are the real ones (the
recomputed hidden states match torch's LSTM/GRU), and the CLI contract (columns, streams, errors)."""

from __future__ import annotations

import io
from dataclasses import replace
import json
import sys

import pandas as pd
import pytest
import torch

from seqcast import checkpoint
from seqcast.data import DataConfig, load_series
from seqcast.explain import COLUMNS, explain
from seqcast.registry import get_spec, list_models, resolve_params
from seqcast.window_norm import WindowNorm

from conftest import randomised

SMALL = {"hidden_size": 8, "d_model": 8, "nhead": 2, "dim_feedforward": 16}  # whichever a model has: fast
# every model that declares what it explains, small
ATTENTION = {name: {k: v for k, v in SMALL.items() if k in get_spec(name).defaults()}
             for name in list_models() if get_spec(name).capabilities.explain == "attention"}
GATED = [name for name in list_models() if get_spec(name).capabilities.explain == "gates"]
LOOKBACK, HORIZON = 24, 6  # the tiny checkpoint's


@pytest.fixture(scope="module")
def make_ckpt(tiny_ckpt, tmp_path_factory):
    """make_ckpt(name, params) -> path of a checkpoint of that model, with the tiny GRU's data schema."""
    base = checkpoint.load(tiny_ckpt)
    folder = tmp_path_factory.mktemp("explain")

    def make(name: str, params: dict | None = None):
        params = params or {}
        model = randomised(name, LOOKBACK, HORIZON, 1, scale=0.3, **params)
        path = folder / f"{name}.ckpt"
        checkpoint.save(path, replace(
            base, model=WindowNorm(model, base.model_info.window_norm),
            model_info=replace(base.model_info, name=name, params=params)))
        return path

    return make


@pytest.fixture(scope="module")
def hourly(hourly_csv):
    return load_series(str(hourly_csv), DataConfig(target=("value",)))


@pytest.mark.parametrize("name", list(ATTENTION))
def test_attention_rows_sum_to_one_over_input_steps(name, make_ckpt, hourly):
    ckpt = checkpoint.load(make_ckpt(name, ATTENTION[name]))
    for per_layer in (False, True):
        maps = explain(ckpt, hourly, per_layer=per_layer)
        assert maps and all(m.series == "main" for m in maps)
        for m in maps:
            queries = HORIZON if m.query_axis == "horizon" else LOOKBACK
            assert m.weights.shape == (queries, LOOKBACK)
            assert (m.weights >= 0).all()
            assert torch.allclose(torch.from_numpy(m.weights).sum(-1), torch.ones(queries, dtype=torch.float64),
                                  atol=1e-5)
        if not per_layer:
            assert all(m.layer == "mean" for m in maps)
    if name in ("transformer", "informer"):
        assert {m.kinds[0] for m in maps} == {"self_attention", "cross_attention"}
    if name == "lstm_attention":
        assert [(m.kinds[0], m.query_axis) for m in maps] == [("attention", "horizon")]


@pytest.mark.parametrize("name", [name for name in GATED if get_spec(name).family == "recurrent"])
def test_recomputed_gates_reproduce_torch_hidden_states(name):  # eslstm's layers: tests/test_choices.py
    model = randomised(name, LOOKBACK, HORIZON, 2, scale=0.3, hidden_size=6).eval()
    x = torch.randn(3, 17, 2)
    gates, outputs = model.recompute(x)
    with torch.no_grad():
        expected = model.encoder(x)[0]  # (B, L, hidden * dirs) of the last layer
    assert torch.allclose(outputs, expected, atol=1e-5)
    activations = model.explain(x)
    shown = {"forget", "input", "output"} if model.cell == "lstm" else {"update", "reset"}
    assert {k.split(".")[1] for k in activations} == shown
    assert len(activations) == len(shown) * model.encoder.num_layers * model.directions
    for values in list(activations.values()) + list(gates.values()):
        assert ((values > 0) & (values < 1)).all()
    assert all(v.shape == (3, 17) for v in activations.values())


def test_explain_feeds_the_window_normalised_input(make_ckpt, hourly):
    ckpt = checkpoint.load(make_ckpt("lstm", {"hidden_size": 4}))
    [m] = explain(ckpt, hourly, window=5)
    s = hourly.series[0]
    assert list(m.input_times) == list(s.times[-5 - LOOKBACK : -5])
    scaled = torch.tensor((s.values[-5 - LOOKBACK : -5] - ckpt.scaler.mean["main"])
                          / ckpt.scaler.std["main"], dtype=torch.float32)[None]
    level = {"last": scaled[:, -1:], "mean": scaled.mean(dim=1, keepdim=True)}[ckpt.model_info.window_norm]
    expected = ckpt.model.model.explain(scaled - level)
    assert m.kinds == ["forget_gate", "input_gate", "output_gate"]
    assert torch.allclose(torch.from_numpy(m.weights).float(), torch.stack(list(expected.values()), 1)[0], atol=1e-6)


def test_cli_writes_long_csv_on_stdout(invoke, tiny_ckpt, hourly_csv):
    code, out, err = invoke("explain", tiny_ckpt, hourly_csv)
    assert code == 0, err
    frame = pd.read_csv(io.StringIO(out))
    assert list(frame.columns) == COLUMNS
    assert set(frame["kind"]) == {"update_gate", "reset_gate"} and set(frame["layer"]) == {"mean"}
    assert len(frame) == 2 * LOOKBACK and frame["query_step"].isna().all()
    assert ((frame["weight"] > 0) & (frame["weight"] < 1)).all()
    assert frame["input_timestamp"].iloc[LOOKBACK - 1] == "2024-01-17 15:00:00"  # the last of 400 rows
    assert "series" not in err


def test_cli_attention_per_layer_json_and_output_file(invoke, make_ckpt, hourly_csv, tmp_path):
    path = make_ckpt("transformer", ATTENTION["transformer"])
    code, out, err = invoke("explain", path, hourly_csv, "--per-layer", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert (document["model"], document["lookback"], document["horizon"]) == ("transformer", LOOKBACK, HORIZON)
    assert {(m["kind"], m["query_axis"], len(m["weights"])) for m in document["maps"]} == {
        ("self_attention", "input", LOOKBACK), ("cross_attention", "horizon", HORIZON)}
    target = tmp_path / "maps.csv"
    code, out, err = invoke("explain", path, hourly_csv, "--output", target)
    assert code == 0 and out == ""
    frame = pd.read_csv(target)
    sums = frame.groupby(["layer", "kind", "query_step"])["weight"].sum()
    assert sums.sub(1).abs().max() < 1e-5


@pytest.mark.parametrize(("name", "message"), [("rnn", "rnn has no attention or gates to explain"),
                                               ("naive", "naive has no attention or gates to explain")])
def test_models_with_nothing_to_explain_exit_2(name, message, invoke, make_ckpt, hourly_csv):
    code, out, err = invoke("explain", make_ckpt(name, {"hidden_size": 4} if name == "rnn" else {}), hourly_csv)
    assert code == 2 and out == ""
    assert message in err and "lstm_attention" in err and "gru" in err


def test_window_past_the_history_exits_2(invoke, tiny_ckpt, hourly_csv):
    code, out, err = invoke("explain", tiny_ckpt, hourly_csv, "--window", "390")
    assert code == 2 and out == "" and "history too short" in err


def test_plot_without_matplotlib_says_how_to_install(invoke, tiny_ckpt, hourly_csv, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    code, out, err = invoke("explain", tiny_ckpt, hourly_csv, "--plot", tmp_path / "maps.png")
    assert code == 2 and out == ""
    assert "pip install 'seqcast[plot]'" in err
    assert not (tmp_path / "maps.png").exists()


def test_plot_writes_a_png(invoke, make_ckpt, hourly_csv, tmp_path):
    pytest.importorskip("matplotlib")
    target = tmp_path / "maps.png"
    code, out, err = invoke("explain", make_ckpt("informer", ATTENTION["informer"]), hourly_csv, "--plot", target)
    assert code == 0, err
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pd.read_csv(io.StringIO(out)).shape[1] == len(COLUMNS)
