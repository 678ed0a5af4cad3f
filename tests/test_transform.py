"""The target's transform (--transform none|log|boxcox|auto) and the floor at zero of a target that is
never negative: the transforms undo themselves, the floor holds through predict, evaluate and ONNX,
what cannot be transformed is refused naming the value, and format-7 checkpoints forecast as before."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import assert_fixture_forecasts_as_recorded, format_fixtures, load_fixture
from hypothesis import given, settings
from hypothesis import strategies as st

from seqcast import checkpoint, meta_schema
from seqcast.transform import box_cox_lambda, forward, inverse

SAMPLES = Path(__file__).parents[1] / "sample_data"
FORMAT_7 = Path(__file__).parent / "fixtures" / "format7"
FAST = ["--max-steps", "30", "--window-norm", "mean", "--loss", "mse"]


def counts_csv(path: Path, n: int = 600, negative_at: int | None = None) -> Path:
    """Hourly counts: busy days, empty nights (many zeros), the kind of series a model forecasts below 0."""
    rng = np.random.default_rng(3)
    hours = np.arange(n) % 24
    level = np.where((hours >= 7) & (hours <= 21), 40 + 30 * np.sin((hours - 7) / 14 * np.pi), 0.0)
    values = rng.poisson(level).astype(float)
    if negative_at is not None:
        values[negative_at] = -2.0
    times = pd.date_range("2024-01-01", periods=n, freq="h")
    pd.DataFrame({"timestamp": times, "count": values}).to_csv(path, index=False)
    return path


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=20), st.sampled_from([0.0, 0.05, 0.5, 1.0, 1.5]))
def test_log_and_boxcox_undo_themselves(values, lam):
    y = np.array(values)[:, None]
    for kind in ("log", "boxcox"):
        back = inverse(kind, forward(kind, y, np.array([lam])), np.array([lam]))
        np.testing.assert_allclose(back, y, rtol=1e-9, atol=1e-9)


def test_box_cox_lambda_finds_the_power_that_made_the_data():
    rng = np.random.default_rng(0)
    z = rng.normal(10, 3, size=(4000, 1)).clip(1, None)
    for lam in (0.0, 0.5, 1.0):
        y = (np.exp(z / 3) if lam == 0 else (lam * z + 1) ** (1 / lam)) - 1  # 1 + y is normal after the power lam
        assert abs(box_cox_lambda(y)[0] - lam) <= 0.15, lam
    assert box_cox_lambda(np.full((30, 2), 7.0)).tolist() == [1.0, 1.0]  # a constant column: unchanged


def test_a_never_negative_target_is_never_forecast_below_zero(invoke, tmp_path):
    data = counts_csv(tmp_path / "counts.csv")
    outcomes = {}
    for kind in ("none", "log", "boxcox"):
        ckpt = tmp_path / f"{kind}.ckpt"
        code, out, err = invoke("fit", data, "--model", "gru", *FAST, "--transform", kind, "--level", "90",
                                "--output", ckpt, "--json")
        assert code == 0, err
        assert json.loads(out)["transform"] == kind and json.loads(out)["floored_at_zero"] == [True]
        code, out, err = invoke("predict", ckpt, data)
        assert code == 0, err
        frame = pd.read_csv(pd.io.common.StringIO(out))
        assert (frame[["forecast", "lo_90", "hi_90"]] >= 0).all().all(), kind
        outcomes[kind] = frame["forecast"].to_numpy()
        code, out, err = invoke("evaluate", ckpt, data, "--windows", "3", "--in-sample", "--level", "90",
                                "--forecasts", tmp_path / f"{kind}.evaluated.csv")
        assert code == 0, err
        scored = pd.read_csv(tmp_path / f"{kind}.evaluated.csv")
        assert (scored[["forecast", "lo_90", "hi_90"]] >= 0).all().all(), kind
        code, out, _ = invoke("info", ckpt)
        assert f"transform   {kind}" in out and "forecasts floored at 0" in out
    assert not np.allclose(outcomes["none"], outcomes["log"])  # the transform changes the model, not only the floor
    loaded = checkpoint.load(tmp_path / "boxcox.ckpt")
    assert loaded.transform.kind == "boxcox" and 0 <= loaded.transform.lambdas["main"][0] <= 1.5


def test_allow_negative_turns_the_floor_off_with_no_transform_only(invoke, tmp_path):
    data = counts_csv(tmp_path / "counts.csv")
    code, out, err = invoke("fit", data, "--model", "gru", *FAST, "--transform", "none", "--allow-negative",
                            "--output", tmp_path / "raw.ckpt", "--json")
    assert code == 0 and json.loads(out)["floored_at_zero"] == [False], err
    assert "forecasts may be negative" in invoke("info", tmp_path / "raw.ckpt")[1]
    code, _, err = invoke("fit", data, "--model", "gru", *FAST, "--transform", "log", "--allow-negative")
    assert code == 2 and "--allow-negative with --transform log" in err


def test_a_negative_value_is_refused_by_log_and_boxcox_and_auto_does_not_try_them(invoke, tmp_path):
    data = counts_csv(tmp_path / "counts.csv", negative_at=100)
    for kind in ("log", "boxcox"):
        code, _, err = invoke("fit", data, "--model", "gru", *FAST, "--transform", kind)
        assert code == 2 and "series 'main', target 'count': value -2 at 2024-01-05 04:00:00 is negative" in err, err
    code, out, err = invoke("fit", data, "--model", "gru", "--max-steps", "30", "--output", tmp_path / "a.ckpt", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["transform"] == "none" and summary["floored_at_zero"] == [False], err
    assert "transform" not in [c["setting"] for c in summary["choices"]]
    # new history with a negative value, forecast by a model fit with log: exit 2, naming it
    clean = counts_csv(tmp_path / "clean.csv")
    assert invoke("fit", clean, "--model", "gru", *FAST, "--transform", "log", "--output", tmp_path / "log.ckpt")[0] == 0
    late = counts_csv(tmp_path / "late.csv", negative_at=595)  # inside the window predict reads
    code, _, err = invoke("predict", tmp_path / "log.ckpt", late)
    assert code == 2 and "is negative, and --transform log needs values of at least 0" in err


def test_a_warm_start_keeps_the_checkpoints_transform(invoke, tmp_path):
    data = counts_csv(tmp_path / "counts.csv")
    ckpt = tmp_path / "m.ckpt"
    assert invoke("fit", data, "--model", "gru", *FAST, "--transform", "log", "--output", ckpt)[0] == 0
    code, _, err = invoke("fit", data, "--init-from", ckpt, "--output", ckpt, "--force", "--max-steps", "5")
    assert code == 0 and checkpoint.load(ckpt).transform.kind == "log", err
    code, _, err = invoke("fit", data, "--init-from", ckpt, "--transform", "none", "--output", tmp_path / "x.ckpt")
    assert code == 2 and "--transform none (the checkpoint has log)" in err


def test_the_onnx_export_forecasts_through_the_transform_and_the_floor(invoke, tmp_path):
    pytest.importorskip("onnxruntime")
    data = counts_csv(tmp_path / "counts.csv")
    ckpt, onnx = tmp_path / "m.ckpt", tmp_path / "m.onnx"
    assert invoke("fit", data, "--model", "gru", *FAST, "--transform", "boxcox", "--output", ckpt)[0] == 0
    assert invoke("export", ckpt, "--output", onnx)[0] == 0
    torch_out, onnx_out = (pd.read_csv(pd.io.common.StringIO(invoke("predict", p, data)[1])) for p in (ckpt, onnx))
    np.testing.assert_allclose(onnx_out["forecast"], torch_out["forecast"], rtol=1e-4, atol=1e-3)
    assert (onnx_out["forecast"] >= 0).all()


def test_a_crafted_transform_is_refused():
    meta = checkpoint.to_meta(checkpoint.load(FORMAT_7 / "panel_nlinear.ckpt"))
    meta_schema.check(checkpoint.from_meta(meta))
    series = meta["schema"]["series"]
    for bad in ({"kind": "sqrt"}, {"floor": [True, False, True]}, {"kind": "boxcox"},
                {"kind": "boxcox", "lambdas": {series[0]: [9.0]}}, {"lambdas": {"unknown": [0.5]}},
                {"lambdas": {series[0]: "0.5"}}, {"floor": [1]}):
        meta["transform"] = {"kind": "none", "lambdas": {}, "floor": [], **bad}
        with pytest.raises(meta_schema.SchemaError, match="meta.transform"):
            meta_schema.check(checkpoint.from_meta(meta))


@pytest.mark.parametrize("entry", format_fixtures(7))
def test_format_7_checkpoints_load_untransformed_and_forecast_what_they_did(entry, invoke):
    loaded = load_fixture(7, entry)
    assert loaded.transform.kind == "none" and loaded.transform.floor == ()
    assert_fixture_forecasts_as_recorded(invoke, 7, entry)
    assert "no floor at 0" in invoke("info", FORMAT_7 / entry["checkpoint"])[1]


def test_a_box_cox_warm_start_keeps_known_lambdas_and_fits_a_new_series_its_own(invoke, tmp_path):
    """Nightly data where one series ends and another begins: the warm-started checkpoint holds a lambda
    for exactly the series it was trained on (the ones it knew, kept) and loads again."""
    rng = np.random.default_rng(5)

    def panel(ids):
        times = pd.date_range("2024-01-01", periods=300, freq="h")
        return pd.concat([pd.DataFrame({"id": sid, "ts": times, "y": rng.poisson(20 + 10 * k, 300).astype(float)})
                          for k, sid in enumerate(ids)])
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    panel(["north", "south"]).to_csv(first, index=False)
    panel(["north", "east"]).to_csv(second, index=False)
    ckpt = tmp_path / "m.ckpt"
    assert invoke("fit", first, "--id-col", "id", "--model", "nlinear", *FAST, "--transform", "boxcox", "-o", ckpt)[0] == 0
    before = checkpoint.load(ckpt).transform.lambdas
    code, _, err = invoke("fit", second, "--init-from", ckpt, "--output", ckpt, "--force", "--max-steps", "3")
    assert code == 0, err
    after = checkpoint.load(ckpt).transform.lambdas
    assert set(after) == {"north", "east"} and after["north"] == before["north"]


def test_compare_takes_the_transform_and_allow_negative_as_fit_does(invoke, tmp_path):
    data = counts_csv(tmp_path / "counts.csv")
    code, out, err = invoke("compare", data, "--models", "nlinear", "--transform", "log", "--max-steps", "5",
                            "--windows", "2", "--forecasts", tmp_path / "f.csv", "--save-dir", tmp_path, "--json")
    assert code == 0, err
    assert checkpoint.load(tmp_path / "nlinear.ckpt").transform.kind == "log"
    assert (pd.read_csv(tmp_path / "f.csv")["forecast"] >= 0).all()
    code, _, err = invoke("compare", data, "--models", "nlinear", "--transform", "none", "--allow-negative",
                          "--max-steps", "5", "--windows", "2", "--save-dir", tmp_path, "--force")
    assert code == 0 and checkpoint.load(tmp_path / "nlinear.ckpt").transform.floor == (False,), err
