"""--model auto, the default of fit: a portfolio under one time budget, Caruana's greedy selection on the
shared validation windows, one checkpoint with its members, weights and validation table; and the
statistical members (ets, theta, mstl) as models of their own."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import FIXTURES, assert_fixture_forecasts_as_recorded, format_fixtures, load_fixture

from seqcast import auto, checkpoint
from seqcast.registry import get_spec, list_models

QUARTERLY = FIXTURES.parent.parent / "sample_data" / "us_macro_quarterly.csv"
PANEL = [QUARTERLY, "--id-col", "unique_id"]
QUICK = ["--max-steps", "20", "--seed", "0"]


def _has_statsforecast() -> bool:
    import importlib.util

    return importlib.util.find_spec("statsforecast") is not None


needs_stats = pytest.mark.skipif(not _has_statsforecast(), reason="the stats extra (statsforecast) is not installed")


@pytest.fixture(scope="module")
def auto_ckpt(tmp_path_factory):
    """An auto checkpoint of the quarterly panel: nlinear and nbeats beside the baselines, intervals at 80 %."""
    from conftest import cli_invoke

    path = tmp_path_factory.mktemp("auto") / "auto.ckpt"
    code, out, err = cli_invoke("fit", *PANEL, "--candidates", "nlinear,nbeats", *QUICK, "--level", "80",
                                "--output", path, "--json")
    assert code == 0, err
    return path, json.loads(out), err


# --- the selection --------------------------------------------------------------------------------------

def test_greedy_selection_never_scores_above_the_best_candidate_and_its_weights_sum_to_one():
    rng = np.random.default_rng(0)
    actual = rng.normal(size=(60, 4, 1))
    series = np.repeat(np.arange(6), 10)
    forecasts = {"a": actual + rng.normal(0, 1.0, actual.shape), "b": actual + rng.normal(0, 1.0, actual.shape),
                 "bad": actual + 50.0}
    weights, score = auto.greedy_selection(forecasts, actual, series)
    single = {n: np.abs(f - actual).mean() for n, f in forecasts.items()}
    assert score <= min(single.values()) + 1e-12
    assert abs(sum(weights.values()) - 1) < 1e-12 and all(w > 0 for w in weights.values())
    assert set(weights) == {"a", "b"}  # two independent errors average out; the biased one never helps
    assert score < min(single.values()) * 0.9


def test_a_candidate_that_is_right_takes_all_the_weight():
    actual = np.linspace(0, 1, 40).reshape(10, 4, 1)
    weights, score = auto.greedy_selection({"naive": actual + 1, "exact": actual.copy()}, actual, np.arange(10))
    assert weights == {"exact": 1.0} and score == 0.0


def test_the_portfolio_always_holds_naive_and_seasonal_naive_and_refuses_unknown_names():
    assert auto.portfolio(("nlinear",))[:2] == ["naive", "seasonal_naive"]
    assert set(auto.PORTFOLIO) <= set(list_models())
    with pytest.raises(Exception, match="--candidates 'nope'"):
        auto.portfolio(("nope",))


# --- through the CLI ------------------------------------------------------------------------------------

def test_fit_defaults_to_auto_and_stores_members_weights_and_the_validation_table(auto_ckpt, invoke):
    path, summary, err = auto_ckpt
    assert summary["model"] == "auto"
    members = {m["model"]: m["weight"] for m in summary["members"]}
    assert abs(sum(members.values()) - 1) < 1e-9
    table = {c["model"]: c for c in summary["candidates"]}
    assert {"naive", "seasonal_naive", "nlinear", "nbeats"} <= set(table)
    assert all(c["score"] is not None and c["seconds"] >= 0 for c in table.values() if c["status"] != "skipped")
    assert "auto: candidates naive, seasonal_naive" in err and "score" in err
    best = min(c["score"] for c in table.values() if c["score"] is not None)
    loaded = checkpoint.load(path)
    assert loaded.portfolio.score <= best + 1e-12  # never worse than any candidate on validation
    assert [m.name for m in loaded.model_info.members] == list(members)
    code, out, err = invoke("info", path)
    assert code == 0, err
    assert "model       auto (a weighted ensemble" in out and "portfolio" in out
    for name in members:
        assert f"member      {name} weight" in out


def test_the_forecast_is_the_weighted_sum_of_the_members(auto_ckpt):
    loaded = checkpoint.load(auto_ckpt[0])
    x = torch.randn(5, loaded.lookback, 1)
    with torch.no_grad():
        whole = loaded.model(x)
        parts = sum(w * m(x) for m, w in zip(loaded.model.members, loaded.model.weights))
    torch.testing.assert_close(whole, parts)


def test_predict_evaluate_and_intervals_work_on_an_auto_checkpoint(auto_ckpt, invoke):
    path = auto_ckpt[0]
    code, out, err = invoke("predict", path, QUARTERLY)
    assert code == 0, err
    frame = pd.read_csv(pd.io.common.StringIO(out))
    assert set(frame["model"]) == {"auto"} and {"lo_80", "hi_80"} <= set(frame.columns)
    assert (frame["lo_80"] <= frame["forecast"]).all() and (frame["forecast"] <= frame["hi_80"]).all()
    code, out, err = invoke("evaluate", path, QUARTERLY, "--in-sample")
    assert code == 0 and "auto" in out, err


def test_compare_takes_auto_beside_single_models(invoke):
    code, out, err = invoke("compare", *PANEL, "--models", "auto,nlinear", *QUICK, "--windows", "1", "--json")
    assert code == 0, err
    rows = {row["model"] for row in json.loads(out)}
    assert {"auto", "nlinear", "naive"} <= rows


def test_explain_maps_each_member_that_explains_and_refuses_an_ensemble_with_none(auto_ckpt, invoke):
    from dataclasses import replace

    from seqcast import explain
    from seqcast.build import build_network
    from seqcast.data import load_series
    from seqcast.ensemble import Blend
    from seqcast.forecasting import data_config

    path = auto_ckpt[0]
    code, out, err = invoke("explain", path, QUARTERLY)
    assert code == 2 and "none of its members (nlinear, nbeats) has attention or gates to explain" in err, err
    loaded = checkpoint.load(path)  # the same ensemble with a gru in its first member's place
    gru = build_network("gru", loaded.lookback, loaded.horizon, 1, {"hidden_size": 8}, window_norm="mean", seasons=())
    members = (replace(loaded.model_info.members[0], name="gru", params={"hidden_size": 8}),
               *loaded.model_info.members[1:])
    blend = Blend([gru, *loaded.model.members[1:]], loaded.model.weights, loaded.model.reads)
    swapped = replace(loaded, model=blend, model_info=replace(loaded.model_info, members=members))
    maps = explain.explain(swapped, load_series(str(QUARTERLY), data_config(swapped)))
    assert maps and {m.layer.split(":")[0] for m in maps} == {"gru"}


def test_a_warm_start_continues_the_members_and_chooses_the_weights_again(auto_ckpt, invoke, tmp_path):
    path = auto_ckpt[0]
    code, out, err = invoke("fit", QUARTERLY, "--init-from", path, *QUICK, "--output", tmp_path / "again.ckpt")
    assert code == 0, err
    again = checkpoint.load(tmp_path / "again.ckpt")
    before = checkpoint.load(path)
    assert {c.name for c in again.portfolio.candidates} == {m.name for m in before.model_info.members}
    code, _, err = invoke("fit", QUARTERLY, "--init-from", path, "--model", "gru", "--output", tmp_path / "x.ckpt")
    assert code == 2 and "continues the auto ensemble" in err


@pytest.mark.parametrize(("flags", "message"), [(["--param", "hidden_size=8"], "drop --param"),
                                                (["--ensemble", "2"], "drop --ensemble"),
                                                (["--candidates", "nope"], "--candidates 'nope'")])
def test_auto_refuses_what_it_chooses_itself(flags, message, invoke, tmp_path):
    code, out, err = invoke("fit", *PANEL, *flags, *QUICK, "--output", tmp_path / "a.ckpt")
    assert code == 2 and message in err, err


def test_with_an_explicit_split_the_candidates_are_chosen_on_its_validation_rows(invoke, hourly_csv, tmp_path):
    """--split 300,60 of 400 rows: the selection scores the 55 windows ending in rows 300-359 (H = 6), not
    the default split's last 10 % (35 windows), which would reach rows the split leaves out."""
    path = tmp_path / "a.ckpt"
    code, out, err = invoke("fit", hourly_csv, "--split", "300,60", "-L", "24", "-H", "6", "--candidates", "nlinear",
                            *QUICK, "--output", path)
    assert code == 0, err
    assert checkpoint.load(path).portfolio.windows == 60 - 6 + 1


def test_a_candidate_that_does_not_read_the_covariates_is_skipped_with_a_note(invoke, tmp_path):
    bikes = FIXTURES.parent.parent / "sample_data" / "bikeshare_dc_hourly.csv"
    code, out, err = invoke("fit", bikes, "--past-cols", "observed_temp_c", "--candidates", "nlinear,patchtst",
                            "--lookback", "48", *QUICK, "--output", tmp_path / "a.ckpt", "--json")
    assert code == 0, err
    table = {c["model"]: c for c in json.loads(out)["candidates"]}
    assert table["patchtst"]["status"] == "skipped" and "past covariates" in table["patchtst"]["note"]
    assert table["nlinear"]["status"] in ("member", "not chosen")


def test_export_of_an_auto_checkpoint_exports_its_members_or_names_the_one_that_cannot(auto_ckpt, invoke, tmp_path,
                                                                                        onnx_extra):
    from dataclasses import replace

    from seqcast.errors import UsageError
    from seqcast.forecaster import Member

    path = auto_ckpt[0]
    code, out, err = invoke("export", path, "--output", tmp_path / "auto.onnx")
    assert code == 0, err
    code, out, err = invoke("predict", tmp_path / "auto.onnx", QUARTERLY)
    assert code == 0 and "auto" in out, err
    loaded = checkpoint.load(path)  # the same ensemble, told that one member is statistical
    members = (*loaded.model_info.members[:-1], Member("theta", {"season": 4}, "none", 0, 0.5, "mse"))
    with pytest.raises(UsageError, match="theta fits its statistical model on each window .* refit auto without it"):
        onnx_extra.export(replace(loaded, model_info=replace(loaded.model_info, members=members)))


def test_the_readme_line_with_a_budget_and_candidates_tries_exactly_those(invoke, tmp_path, monkeypatch):
    """README: `seqcast fit DATA.csv --time-budget 600 --candidates nlinear,patchtst,ets` (steps capped here)."""
    monkeypatch.chdir(tmp_path)
    code, out, err = invoke("fit", *PANEL, "--time-budget", "600", "--candidates", "nlinear,patchtst,ets", *QUICK,
                            "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert [c["model"] for c in summary["candidates"]] == ["naive", "seasonal_naive", "ets", "nlinear", "patchtst"]
    assert "time budget 600 s (--time-budget)" in err and summary["checkpoint"].endswith("auto.ckpt")
    ets = next(c for c in summary["candidates"] if c["model"] == "ets")
    assert ets["status"] in ("member", "not chosen") if _has_statsforecast() else ets["status"] == "skipped"


# --- the statistical models -----------------------------------------------------------------------------

STATISTICAL = [n for n in list_models() if get_spec(n).capabilities.statistical]


def test_the_statistical_models_are_registered_with_what_they_cannot_do():
    assert set(STATISTICAL) == {"ets", "theta", "mstl"}
    for name in STATISTICAL:
        caps = get_spec(name).capabilities
        assert caps.extra == "stats" and not caps.quantiles and caps.window_norm == "none" and caps.season


@needs_stats
@pytest.mark.parametrize("name", STATISTICAL)
def test_a_statistical_model_fits_forecasts_and_refuses_export_naming_itself(name, invoke, tmp_path):
    code, out, err = invoke("fit", *PANEL, "--model", name, "--output", tmp_path / "m.ckpt")
    assert code == 0, err
    code, out, err = invoke("predict", tmp_path / "m.ckpt", QUARTERLY)
    assert code == 0, err
    forecast = pd.read_csv(pd.io.common.StringIO(out))["forecast"]
    assert np.isfinite(forecast).all() and forecast.nunique() > 8  # not one repeated value
    code, out, err = invoke("export", tmp_path / "m.ckpt", "--output", tmp_path / "m.onnx")
    assert code == 2 and name in err and "ONNX" in err, err


@needs_stats
def test_theta_on_a_seasonal_window_follows_its_season():
    from seqcast.build import create_model

    model = create_model("theta", 48, 12, 1, {"season": 12})
    t = torch.arange(48, dtype=torch.float32)
    x = torch.sin(2 * torch.pi * t / 12).reshape(1, 48, 1)
    y = model(x)[0, :, 0]
    expected = torch.sin(2 * torch.pi * torch.arange(48, 60) / 12)
    assert float((y - expected).abs().max()) < 0.2


@needs_stats
def test_a_statistical_candidate_too_slow_for_the_budget_is_skipped_and_its_time_kept_from_the_networks(
        monkeypatch, invoke, tmp_path):
    from seqcast import fitting

    budgets, real_fit = [], fitting.fit
    monkeypatch.setattr(auto, "_scoring_seconds", lambda name, val, series: {"ets": 1000.0, "theta": 5.0}[name])

    def spy(series, model_config, config, *args, **kwargs):  # the time budget each network is given
        budgets.append(config.time_budget)
        return real_fit(series, model_config, config, *args, **kwargs)

    monkeypatch.setattr(fitting, "fit", spy)
    code, out, err = invoke("fit", *PANEL, "--time-budget", "60", "--candidates", "ets,theta,nlinear", *QUICK,
                            "--output", tmp_path / "a.ckpt", "--json")
    assert code == 0, err
    table = {c["model"]: c for c in json.loads(out)["candidates"]}
    assert table["ets"]["status"] == "skipped" and "about 1000 s of the 60 s budget" in table["ets"]["note"]
    assert table["theta"]["status"] in ("member", "not chosen")
    assert budgets and max(budgets) <= 60 - 5  # theta's scoring time is kept out of the network's


def test_models_lists_the_extra_each_statistical_model_needs_and_what_auto_ensembles(invoke):
    code, out, err = invoke("models")
    assert code == 0, err
    lines = out.splitlines()
    for name in STATISTICAL:
        described = lines[next(i for i, line in enumerate(lines) if line.startswith(f"{name} ")) + 1]
        assert "needs seqcast[stats]" in described
    assert f"--model auto, ensembles {', '.join(auto.PORTFOLIO)}" in err


def test_without_the_extra_a_statistical_model_says_what_to_install(monkeypatch, invoke, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "statsforecast" else real(name, *a))
    code, out, err = invoke("fit", *PANEL, "--model", "ets", "--output", tmp_path / "m.ckpt")
    assert code == 2 and "pip install 'seqcast[stats]'" in err, err
    code, out, err = invoke("fit", *PANEL, "--candidates", "ets,nlinear", *QUICK, "--output", tmp_path / "a.ckpt",
                            "--json")
    assert code == 0, err
    table = {c["model"]: c for c in json.loads(out)["candidates"]}
    assert table["ets"]["status"] == "skipped" and "seqcast[stats]" in table["ets"]["note"]


# --- the format ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("entry", format_fixtures(9))
def test_format_9_checkpoints_load_as_one_model_and_forecast_what_they_did(entry, invoke):
    loaded = load_fixture(9, entry)
    assert loaded.name == entry["model"] and loaded.model_info.members == () and loaded.portfolio is None
    assert_fixture_forecasts_as_recorded(invoke, 9, entry)


def test_a_warm_start_on_a_longer_history_keeps_the_shortened_lookback_of_its_members(invoke, tmp_path):
    """Fitted on a short history, auto shortens the lookback (and says so); continued nightly on the
    grown history, its members and its selection windows keep that lookback, none probing another."""
    table = pd.read_csv(QUARTERLY)
    short = tmp_path / "short.csv"
    table.groupby("unique_id").head(50).to_csv(short, index=False)
    first, again = tmp_path / "first.ckpt", tmp_path / "again.ckpt"
    code, out, err = invoke("fit", short, "--id-col", "unique_id", "--candidates", "nlinear", *QUICK,
                            "--output", first, "--json")
    assert code == 0, err
    assert json.loads(out)["lookback"] == 18 and "lookback 18 (shortened from 32" in err
    code, out, err = invoke("fit", QUARTERLY, "--init-from", first, *QUICK, "--output", again, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["lookback"] == 18 and "failed" not in err
    assert all(c.setting != "lookback" for m in checkpoint.load(again).model_info.members for c in m.choices)
