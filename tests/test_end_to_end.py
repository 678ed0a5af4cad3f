"""The whole product through the CLI on the bundled real series: fit -> info -> predict -> evaluate -> compare."""

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from seqcast.cli import app

SAMPLES = Path(__file__).parents[1] / "sample_data"
FAST = ["--epochs", "2", "--param", "hidden_size=16"]
runner = CliRunner()


def run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_fit_with_no_flags_says_what_it_chose(tmp_path, monkeypatch):
    """No --model: auto, its candidates, the budget it chose, the table and the ensemble it kept."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run("fit", SAMPLES / "nino12_monthly.csv", "--epochs", "1")
    assert code == 0, err
    assert out == ""
    for chosen in ("time column month", "target sst", "frequency MS", "lookback 48", "horizon 12",
                   "auto: candidates naive, seasonal_naive", "time budget 120 s (the default for 600 training windows)",
                   "of a 120 s budget", "checkpoint: auto.ckpt"):
        assert chosen in err
    assert "  seasonal_naive  " in err and "  ensemble  " in err
    assert (tmp_path / "auto.ckpt").exists()


def test_fit_predict_evaluate_info_on_monthly_series(tmp_path):
    ckpt = tmp_path / "lstm.ckpt"
    lines = (SAMPLES / "nino12_monthly.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    older = tmp_path / "until_2006.csv"  # the last four years stay out of training, for evaluate
    older.write_text("".join(lines[:-48]), encoding="utf-8")
    code, _, err = run("fit", older, "--model", "lstm", "-o", ckpt, *FAST)
    assert code == 0, err
    code, out, _ = run("predict", ckpt, SAMPLES / "nino12_monthly.csv")
    assert code == 0
    forecast = pd.read_csv(io.StringIO(out))
    assert list(forecast.columns) == ["series", "timestamp", "step", "model", "target", "forecast"]
    assert forecast["timestamp"].tolist()[:2] == ["2011-01-01", "2011-02-01"]
    assert forecast["forecast"].between(15, 35).all()  # original units (degrees C), not z-scores
    code, out, _ = run("evaluate", ckpt, SAMPLES / "nino12_monthly.csv", "--windows", "4", "--json")
    report = json.loads(out)
    assert code == 0 and report["windows"] == 4
    assert set(report["overall"]) == {"lstm", "naive", "seasonal_naive"}
    assert set(report["overall"]["lstm"]) == {"mse", "mae", "rmse", "mape", "smape", "mase"}
    code, out, _ = run("info", ckpt)
    assert code == 0 and "lstm" in out and "lookback 48, horizon 12" in out


def test_many_series_in_long_format_one_global_model(tmp_path):
    ckpt = tmp_path / "gru.ckpt"
    code, _, err = run("fit", SAMPLES / "us_macro_quarterly.csv", "--model", "gru", "-o", ckpt, *FAST)
    assert code == 0, err
    assert "8 series" in err
    code, out, _ = run("predict", ckpt, SAMPLES / "us_macro_quarterly.csv")
    forecast = pd.read_csv(io.StringIO(out))
    assert forecast["series"].nunique() == 8 and len(forecast) == 8 * 8
    assert forecast["timestamp"].iloc[0] == "2009-10-01"
    gdp = forecast[forecast.series == "realgdp"]["forecast"]
    assert gdp.between(10_000, 16_000).all()  # per-series scaling brought back to GDP units


def test_compare_leaderboard_with_baselines_and_outputs(tmp_path):
    table = tmp_path / "board.csv"
    code, out, err = run("compare", SAMPLES / "nino12_monthly.csv", "--models", "rnn,gru,naive",
                         "--windows", "3", "-o", table, "--save-dir", tmp_path, "--json", *FAST)
    assert code == 0, err
    rows = json.loads(out)
    assert {r["model"] for r in rows} == {"rnn", "gru", "naive", "seasonal_naive"}
    assert [r["mase"] for r in rows] == sorted(r["mase"] for r in rows)
    assert all(r["windows"] == 3 for r in rows)
    assert pd.read_csv(table)["model"].tolist() == [r["model"] for r in rows]
    assert (tmp_path / "rnn.ckpt").exists() and (tmp_path / "gru.ckpt").exists()


def test_compare_explicit_split_scores_scaled_stride_one_windows(tmp_path):
    code, out, err = run("compare", SAMPLES / "nino12_monthly.csv", "--models", "naive", "--split", "500,100,132",
                         "--lookback", "24", "--horizon", "12", "--json")
    assert code == 0, err
    rows = {r["model"]: r for r in json.loads(out)}
    assert rows["naive"]["windows"] == 132 - 12 + 1
    assert rows["naive"]["mse"] == rows["naive"]["mse"] and rows["naive"]["mse"] < 5  # z-scored scale


def test_models_lists_every_registered_model_with_parameters():
    from seqcast.registry import list_models

    code, out, _ = run("models")
    assert code == 0
    for name in list_models():
        assert any(line.startswith(name + " ") for line in out.splitlines())


def test_calendar_features_opt_in_reach_fit_and_predict(tmp_path, hourly_csv):
    from seqcast.checkpoint import load

    ckpt = tmp_path / "transformer.ckpt"
    code, _, err = run("fit", hourly_csv, "--model", "transformer", "--calendar", "auto", "-p", "d_model=16",
                       "-p", "dim_feedforward=16", "--epochs", "1", "-L", "24", "-H", "6", "-o", ckpt)
    assert code == 0, err
    loaded = load(ckpt)
    # hourly data: all five features vary on its grid
    assert loaded.covariates.names("calendar") == ("hour", "dow", "dom", "doy", "month")
    assert loaded.covariates.widths == (0, 5, 0)
    code, out, err = run("predict", ckpt, hourly_csv)  # future calendar features built from real timestamps
    assert code == 0, err
    forecast = pd.read_csv(io.StringIO(out))
    assert len(forecast) == 6 and forecast["timestamp"].iloc[0] == "2024-01-17 16:00:00"
    assert forecast["forecast"].between(-3, 3).all()
    code, _, err = run("fit", hourly_csv, "--model", "transformer", "--calendar", "hour,week", "-o", tmp_path / "x.ckpt")
    assert code == 2 and "--calendar 'hour,week': choose auto, none, or features among hour, dow" in err


def test_window_norm_revin_round_trips_through_fit_info_predict(tmp_path, hourly_csv):
    ckpt = tmp_path / "gru.ckpt"
    code, _, err = run("fit", hourly_csv, "--model", "gru", "--window-norm", "revin", *FAST, "-L", "24", "-H", "6",
                       "-o", ckpt)
    assert code == 0, err
    code, out, _ = run("info", ckpt)
    assert code == 0 and "window norm revin" in out
    code, out, err = run("predict", ckpt, hourly_csv)
    assert code == 0, err
    assert len(pd.read_csv(io.StringIO(out))) == 6
    code, _, err = run("fit", hourly_csv, "--model", "gru", "--window-norm", "std", *FAST, "-o", tmp_path / "x.ckpt")
    assert code == 2 and "--window-norm 'std'" in err and "revin" in err


def test_window_norm_season_round_trips_and_starts_at_seasonal_naive(tmp_path, hourly_csv):
    """fit --window-norm season with no training steps forecasts the last day again (hourly: season 24);
    the checkpoint gives the season back from its frequency on loading."""
    ckpt = tmp_path / "gru.ckpt"  # gru starts at its reference (a zero head); nlinear does not
    code, _, err = run("fit", hourly_csv, "--model", "gru", "-p", "hidden_size=8", "--window-norm", "season",
                       "--max-steps", "1",
                       "--lr", "1e-9", "-L", "48", "-H", "30", "-o", ckpt)
    assert code == 0, err
    code, out, _ = run("info", ckpt)
    assert code == 0 and "window norm season" in out
    code, out, err = run("predict", ckpt, hourly_csv)
    assert code == 0, err
    forecast = pd.read_csv(io.StringIO(out))["forecast"].to_numpy()
    history = pd.read_csv(hourly_csv)["value"].to_numpy()
    expected = history[-24:][np.arange(30) % 24]
    np.testing.assert_allclose(forecast, expected, atol=1e-3)


def test_models_shows_each_default_window_norm():
    code, out, _ = run("models")
    lines = out.splitlines()
    assert code == 0

    def defaults_line(model: str) -> str:  # each model's second line lists its defaults
        return lines[lines.index(next(l for l in lines if l.startswith(model + " "))) + 1]

    every = "covariates past, future, static]"
    assert f"[window norm mean (on a panel last), panel loss mse, {every}" in defaults_line("rnn")
    assert f"[window norm mean, panel loss mae, {every}" in defaults_line("bilstm")
    assert f"[window norm mean, panel loss mse, {every}" in defaults_line("transformer_xl")
    assert "panel loss mae, covariates future, static]" in defaults_line("patchtst")
    assert "panel loss mse, covariates none]" in defaults_line("naive")
    assert f"[window norm last, panel loss mae, {every}" in defaults_line("nlinear")
