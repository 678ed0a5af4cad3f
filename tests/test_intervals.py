"""Probabilistic forecasts through the CLI and the library: conformal intervals (fit --level), quantile
training (fit --quantiles), their columns in predict, their scores in evaluate and compare, checkpoints
of the previous format, and every way of asking for them wrongly (exit 2 saying what to do)."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pandas as pd
import pytest

from conftest import TINY_FIT, assert_fixture_forecasts_as_recorded, format_fixtures, hourly_text, load_fixture, long_text
from seqcast import checkpoint, intervals
from seqcast.errors import UsageError

FAST = ["--epochs", "2", "--lookback", "24", "--horizon", "6"]


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory, hourly_csv):
    """A point GRU and a quantile GRU, both with 80 and 95 % intervals, fit on the first 340 rows."""
    folder = tmp_path_factory.mktemp("intervals")
    train = folder / "train.csv"
    train.write_text(hourly_text(340), encoding="utf-8")
    paths = {}
    for name, extra in (("point", []), ("quantile", ["--quantiles", "0.025,0.1,0.9,0.975"])):
        paths[name] = folder / f"{name}.ckpt"
        code, _, err = _invoke("fit", train, *TINY_FIT, "--level", "80,95", *extra, "--output", paths[name])
        assert code == 0, err
        assert "intervals 80, 95 %: calibrated on 29 validation windows" in err, err
    return paths


def _invoke(*args):
    from conftest import cli_invoke

    return cli_invoke(*args)


def _frame(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text))


def test_predict_writes_nested_bands_around_the_forecast(invoke, calibrated, hourly_csv):
    code, out, err = invoke("predict", calibrated["point"], hourly_csv)
    assert code == 0, err
    frame = _frame(out)
    assert list(frame.columns) == ["series", "timestamp", "step", "model", "target", "forecast",
                                   "lo_80", "hi_80", "lo_95", "hi_95"]
    assert (frame["lo_95"] <= frame["lo_80"]).all() and (frame["lo_80"] <= frame["forecast"]).all()
    assert (frame["forecast"] <= frame["hi_80"]).all() and (frame["hi_80"] <= frame["hi_95"]).all()
    assert (frame["hi_95"] - frame["lo_95"] > frame["hi_80"] - frame["lo_80"]).all()
    code, out, err = invoke("predict", calibrated["point"], hourly_csv, "--level", "80")
    assert code == 0 and list(_frame(out).columns)[-2:] == ["lo_80", "hi_80"], err


def test_a_quantile_model_writes_its_quantiles_and_conformalised_bands(invoke, calibrated, hourly_csv):
    loaded = checkpoint.load(calibrated["quantile"])
    assert loaded.model_info.quantiles == (0.025, 0.1, 0.5, 0.9, 0.975)
    assert loaded.calibration.methods == ("cqr", "cqr")  # both levels have their quantile pair
    code, out, err = invoke("predict", calibrated["quantile"], hourly_csv)
    assert code == 0, err
    frame = _frame(out)
    assert list(frame.columns)[6:] == ["lo_80", "hi_80", "lo_95", "hi_95", "q2.5", "q10", "q90", "q97.5"]
    quantiles = frame[["q2.5", "q10", "forecast", "q90", "q97.5"]].to_numpy()
    assert (np.diff(quantiles, axis=1) >= 0).all()  # never cross; the median is the forecast
    assert (frame["lo_80"] <= frame["forecast"]).all() and (frame["forecast"] <= frame["hi_80"]).all()


def test_evaluate_scores_coverage_width_msis_and_quantile_loss(invoke, calibrated, hourly_csv, tmp_path):
    code, out, err = invoke("evaluate", calibrated["quantile"], hourly_csv, "--windows", "8", "--stride", "1",
                            "--json", "--forecasts", tmp_path / "f.csv")
    assert code == 0, err
    report = json.loads(out)
    scores = report["overall"]["gru"]
    for key in ("coverage_80", "width_80", "msis_80", "coverage_95", "width_95", "msis_95", "wql"):
        assert math.isfinite(scores[key]), key
    assert 0 <= scores["coverage_80"] <= scores["coverage_95"] <= 1
    assert scores["width_80"] < scores["width_95"] and scores["msis_95"] > 0
    assert set(report["series"]["main"]["gru"]) >= {"coverage_80", "msis_95", "wql"}  # per series too
    # The definitions, recomputed from the forecasts written beside the report.
    frame = pd.read_csv(tmp_path / "f.csv")
    inside = (frame["actual"] >= frame["lo_95"]) & (frame["actual"] <= frame["hi_95"])
    assert scores["coverage_95"] == pytest.approx(inside.mean())
    assert scores["width_80"] == pytest.approx((frame["hi_80"] - frame["lo_80"]).mean())
    # Only the levels asked for, and only those the checkpoint has.
    code, out, err = invoke("evaluate", calibrated["quantile"], hourly_csv, "--windows", "2", "--level", "95",
                            "--json")
    assert code == 0 and "coverage_80" not in json.loads(out)["overall"]["gru"], err


def test_compare_trains_every_model_with_intervals_and_reports_them(invoke, long_csv, tmp_path):
    code, out, err = invoke("compare", long_csv, "--models", "gru,nlinear", *FAST, "--windows", "2",
                            "--level", "80", "--quantiles", "0.1,0.9", "--json")
    assert code == 0, err
    rows = {row["model"]: row for row in json.loads(out)}
    for name in ("gru", "nlinear"):
        assert 0 <= rows[name]["coverage_80"] <= 1 and rows[name]["msis_80"] > 0 and rows[name]["wql"] > 0
        assert all("coverage_80" in scores[name] for scores in rows[name]["series"].values())
    assert "coverage_80" not in rows["naive"]  # baselines are scored without intervals
    code, out, err = invoke("compare", long_csv, "--models", "nlinear", *FAST, "--windows", "2", "--level", "80")
    assert code == 0 and "coverage_80" in out and "msis_80" in out, err


def test_a_warm_start_keeps_the_quantiles_and_recalibrates(invoke, calibrated, hourly_csv, tmp_path):
    code, _, err = invoke("fit", hourly_csv, "--init-from", calibrated["quantile"], "--epochs", "1",
                          "--output", tmp_path / "again.ckpt")
    assert code == 0, err
    again = checkpoint.load(tmp_path / "again.ckpt")
    assert again.model_info.quantiles == (0.025, 0.1, 0.5, 0.9, 0.975) and again.calibration.levels == (80.0, 95.0)


@pytest.mark.parametrize("args, message", [
    (["--level", "0"], "--level 0: 0 is outside (0, 100)"),
    (["--level", "100"], "outside (0, 100)"),
    (["--level", "80,abc"], "'abc' is not a number"),
    (["--quantiles", "0.1,1.5"], "1.5 is outside (0, 1)"),
    (["--quantiles", "0.9,0.1"], "in ascending order"),
    (["--quantiles", "0.1,0.1"], "in ascending order"),
    (["--level", "99.9"], "a 99.9 % interval needs at least 999 validation windows, the validation rows give 35"),
])
def test_bad_levels_and_quantiles_are_exit_2_saying_what_to_do(invoke, hourly_csv, tmp_path, args, message):
    code, out, err = invoke("fit", hourly_csv, *TINY_FIT, *args, "--output", tmp_path / "m.ckpt")
    assert code == 2 and message in err, err
    assert "epoch" not in err  # refused before training
    assert not (tmp_path / "m.ckpt").exists()


def test_intervals_asked_of_a_checkpoint_without_them_are_exit_2(invoke, tiny_ckpt, calibrated, hourly_csv):
    code, out, err = invoke("predict", tiny_ckpt, hourly_csv, "--level", "80")
    assert code == 2 and out == "" and "has no intervals; refit it with `seqcast fit ... --level 80`" in err, err
    code, out, err = invoke("evaluate", calibrated["point"], hourly_csv, "--level", "90")
    assert code == 2 and "has intervals for 80, 95 %; refit it with `seqcast fit ... --level 80,90,95`" in err, err


@pytest.mark.parametrize("entry", format_fixtures(3))
def test_format_3_checkpoints_load_as_point_models_and_forecast_what_they_did(entry, invoke):
    loaded = load_fixture(3, entry)
    assert loaded.model_info.quantiles == () and loaded.calibration is None
    assert_fixture_forecasts_as_recorded(invoke, 3, entry)


# --- the library: calibration, bands and scores by their definitions --------------------------------


def test_the_radius_is_the_finite_sample_conformal_rank():
    """n = 19 scores 1..19: the 80 % radius is the ceil(20 * 0.8) = 16th smallest, 95 % the 19th."""
    actual = np.zeros((19, 1, 1))
    pred = np.arange(1, 20, dtype=float).reshape(19, 1, 1)[np.random.default_rng(0).permutation(19)]
    calibration = intervals.calibrate(pred, actual, (80.0, 95.0), (), np.ones((19, 1, 1)))
    assert calibration.radius == (((16.0,),), ((19.0,),)) and calibration.windows == 19
    with pytest.raises(UsageError, match="needs at least 39 validation windows, the validation rows give 19"):
        intervals.calibrate(pred, actual, (97.5,), (), np.ones((19, 1, 1)))


def test_split_conformal_covers_at_least_its_level_on_exchangeable_data():
    """Averaged over many draws, coverage of a new point is at least 1 - a (the guarantee), and not far above."""
    rng = np.random.default_rng(1)
    hits = []
    for _ in range(400):
        errors = rng.standard_t(3, size=(41, 2, 1))  # heavy tails: no normal assumption
        scale = rng.uniform(0.5, 2, size=(41, 1, 1))  # each window's own scale, errors in proportion
        errors *= scale
        calibration = intervals.calibrate(errors[:40], np.zeros((40, 2, 1)), (90.0,), (), scale[:40])
        (lo, hi), = intervals.bands(calibration, np.zeros((1, 2, 1)), (), (90.0,), scale[40:]).values()
        hits.append(((-errors[40:] >= lo) & (-errors[40:] <= hi)).mean())
    assert 0.895 <= np.mean(hits) <= 0.95


def test_msis_and_quantile_loss_follow_their_definitions():
    actual = np.array([[[10.0]], [[20.0]]])  # two windows of one step
    lo, hi = np.array([[[8.0]], [[21.0]]]), np.array([[[12.0]], [[25.0]]])
    scale = np.array([[2.0], [2.0]])
    scores = intervals.interval_scores(actual, lo, hi, 95.0, scale, np.array([0]))
    # window 1: inside, width 4; window 2: below by 1, width 4, penalty 2 / 0.05 * 1 = 40
    assert scores["coverage_95"][0] == 0.5 and scores["width_95"][0] == 4.0
    assert scores["msis_95"][0] == pytest.approx(((4 + 0) / 2 + (4 + 40) / 2) / 2)
    pred = np.stack([actual - 1, actual, actual + 1], axis=-1)  # quantiles 0.1, 0.5, 0.9
    wql = intervals.quantile_loss(actual, pred, (0.1, 0.5, 0.9), np.array([0]))
    # pinball of q=0.1 one below: 0.1; q=0.9 one above: 0.1; median exact: 0 -> mean 0.0667 per point
    assert wql[0] == pytest.approx(2 * (2 * (0.2 / 3)) / 30)


def test_long_panel_series_are_scaled_on_their_own(tmp_path, invoke):
    """A series 1000 times more volatile than the other does not widen the calm one's band."""
    text = long_text(("calm", "wild"), n=240)
    lines = text.splitlines()
    wild = [",".join([p[0], p[1], str(float(p[2]) * 1000)]) for p in (line.split(",") for line in lines[1:])
            if p[0] == "wild"]
    data = tmp_path / "panel.csv"
    data.write_text("\n".join([lines[0], *[line for line in lines[1:] if line.startswith("calm")], *wild]) + "\n",
                    encoding="utf-8")
    code, _, err = invoke("fit", data, *TINY_FIT, "--level", "80", "--output", tmp_path / "p.ckpt")
    assert code == 0, err
    code, out, err = invoke("predict", tmp_path / "p.ckpt", data)
    frame = _frame(out)
    width = (frame["hi_80"] - frame["lo_80"]).groupby(frame["series"]).mean()
    assert width["calm"] < 5 and width["wild"] > 100 * width["calm"], width


# --- pictures ---------------------------------------------------------------------------------------


def test_predict_and_evaluate_draw_their_bands(invoke, calibrated, hourly_csv, tmp_path):
    pytest.importorskip("matplotlib")
    code, out, err = invoke("predict", calibrated["quantile"], hourly_csv, "--plot", tmp_path / "p.png",
                            "--series", "main", "--output", tmp_path / "f.csv")
    assert code == 0 and f"plot: {tmp_path / 'p.png'}" in err, err
    assert (tmp_path / "p.png").read_bytes().startswith(b"\x89PNG") and (tmp_path / "f.csv").exists()
    code, out, err = invoke("evaluate", calibrated["point"], hourly_csv, "--windows", "3", "--plot",
                            tmp_path / "e.png")
    assert code == 0 and (tmp_path / "e.png").read_bytes().startswith(b"\x89PNG"), err
    code, out, err = invoke("predict", calibrated["point"], hourly_csv, "--plot", tmp_path / "x.png",
                            "--series", "elsewhere")
    assert code == 2 and "'elsewhere'" in err and not (tmp_path / "x.png").exists(), err


def test_plot_without_matplotlib_is_exit_2_before_any_work(invoke, calibrated, hourly_csv, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the extra were not installed
    code, out, err = invoke("predict", calibrated["point"], hourly_csv, "--plot", tmp_path / "p.png")
    assert code == 2 and out == "" and "pip install 'seqcast[plot]'" in err, err
    assert not (tmp_path / "p.png").exists()


def test_info_says_what_a_checkpoint_forecasts_besides_the_point(invoke, calibrated, tiny_ckpt):
    code, out, err = invoke("info", calibrated["quantile"])
    assert code == 0, err
    assert "quantiles   0.025, 0.1, 0.5, 0.9, 0.975 (pinball loss; 0.5 is the forecast)" in out
    assert ("intervals   80 % (conformalised quantiles), 95 % (conformalised quantiles); calibrated on 29 "
            "validation windows") in out
    code, out, err = invoke("info", tiny_ckpt)
    assert "quantiles   -" in out and "intervals   - (fit --level 80,95 adds them)" in out


# --- found in review ---------------------------------------------------------------------------------


def test_a_band_does_not_depend_on_which_other_levels_are_reported():
    calibration = intervals.calibrate(np.zeros((40, 1, 1, 3)) + np.array([-0.5, 0, 3]), np.zeros((40, 1, 1)),
                                      (80.0, 95.0), (0.1, 0.5, 0.9), np.ones((40, 1, 1)))
    pred = np.array([-0.5, 0, 3]).reshape(1, 1, 1, 3)
    both = intervals.bands(calibration, pred, (0.1, 0.5, 0.9), (80.0, 95.0), np.ones((1, 1, 1)))
    alone = intervals.bands(calibration, pred, (0.1, 0.5, 0.9), (95.0,), np.ones((1, 1, 1)))
    assert list(alone) == [95.0] and np.array_equal(both[95.0][0], alone[95.0][0])
    assert np.array_equal(both[95.0][1], alone[95.0][1])


def test_the_scale_of_a_padded_window_counts_its_real_changes_only():
    real = np.array([[0.0], [1.0], [0.0], [1.0]])  # |change| 1 at every step
    padded = np.concatenate([np.zeros((20, 1)), real])[None]  # 20 rows repeating the first value
    assert intervals.window_scale(padded, np.array([4]))[0, 0, 0] == pytest.approx(1.0)
    assert intervals.window_scale(padded)[0, 0, 0] == pytest.approx(3 / 23)  # unpadded reading: diluted


@pytest.mark.parametrize("text, message", [("0.5", "0.5 is the forecast itself"),
                                           ("80,80.0000000001", "name the same columns")])
def test_quantiles_of_the_forecast_alone_and_levels_that_share_columns_are_refused(text, message):
    with pytest.raises(UsageError, match=message):
        (intervals.parse_quantiles if text == "0.5" else intervals.parse_levels)(text)


def test_a_level_needing_millions_of_windows_says_how_many():
    with pytest.raises(UsageError, match="needs at least 99999999 validation windows"):
        intervals.require_windows((99.999999,), 100)


# --- ensembles ----------------------------------------------------------------------------------------


def test_an_ensemble_forecasts_the_median_of_its_members_and_loads_identically(invoke, hourly_csv, tmp_path):
    import torch

    code, _, err = invoke("fit", hourly_csv, *TINY_FIT, "--ensemble", "3", "--quantiles", "0.1,0.9",
                          "--output", tmp_path / "e.ckpt")
    assert code == 0 and "ensemble of 3 members (seeds 0..2), median forecast" in err, err
    loaded = checkpoint.load(tmp_path / "e.ckpt")
    assert loaded.model_info.ensemble == 3 and len(loaded.model.members) == 3
    x = torch.randn(5, 24, 1)
    with torch.no_grad():
        members = torch.stack([m(x) for m in loaded.model.members])
        out = loaded.model(x)
    assert torch.equal(out, members.median(dim=0).values) and (out.diff(dim=-1) >= 0).all()
    assert not torch.equal(members[0], members[1])  # members start from different seeds
    code, out, err = invoke("info", tmp_path / "e.ckpt")
    assert "ensemble    3 members (seeds 0..2), median forecast" in out
    code, out, err = invoke("explain", tmp_path / "e.ckpt", hourly_csv)  # the first member's gates
    assert code == 0, err
    code, _, err = invoke("fit", hourly_csv, *TINY_FIT, "--ensemble", "0", "--output", tmp_path / "x.ckpt")
    assert code == 2 and "--ensemble 0: give 1 (no ensemble) to 64 members" in err, err
