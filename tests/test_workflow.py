"""A nightly workflow on real-shaped files (tests/workflow/): what fit remembers for predict and
evaluate, held-out backtests, warnings for models that did not train, warm starts and summaries.

    nile.csv                  yearly Nile flow 1871-1970 (100 rows): short enough that early stopping
                              used to end training during warm-up
    station_summer.csv        a weather station's summer: temperature, and a snow gauge reading 0 throughout
    sensor_30min.csv          a 30-minute power sensor; sensor_30min_dropped.csv is a later stretch of it
                              in which every other reading went missing
    macro_wide.csv            US real GDP (billions) and CPI (an index) side by side, quarterly
"""

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from seqcast import checkpoint as ckpt_module
from seqcast.forecasting import data_config
from seqcast.budget import auto_epochs

FILES = Path(__file__).parent / "workflow"
SAMPLES = Path(__file__).parents[1] / "sample_data"
QUICK = ["--model", "gru", "--param", "hidden_size=8", "--seed", "0"]  # a test naming another model names it after


def head(path: Path, rows: int, tmp_path: Path) -> Path:
    """The header and the first ``rows`` data rows of ``path``: the history as it stood earlier."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    out = tmp_path / f"{path.stem}_first_{rows}.csv"
    out.write_text("".join(lines[: rows + 1]), encoding="utf-8")
    return out


def fit_ok(invoke, *args):
    code, out, err = invoke("fit", *args)
    assert code == 0, err
    return out, err


# item 3: evaluate scores only what the model has not seen

def test_evaluate_on_the_training_file_refuses_and_in_sample_warns(invoke, tmp_path):
    ckpt = tmp_path / "m.ckpt"
    fit_ok(invoke, SAMPLES / "nino12_monthly.csv", "--max-steps", "20", *QUICK, "-o", ckpt)
    seen = ckpt_module.load(ckpt).training.seen_until
    assert seen == {"main": "2010-12-01 00:00:00"}
    code, out, err = invoke("evaluate", ckpt, SAMPLES / "nino12_monthly.csv")
    assert code == 2 and out == ""
    assert "no windows to score after the data" in err and "up to 2010-12-01" in err and "--in-sample" in err
    code, out, err = invoke("evaluate", ckpt, SAMPLES / "nino12_monthly.csv", "--windows", "3", "--in-sample", "--json")
    assert code == 0, err
    assert "warning: --in-sample: scoring windows the model was trained or validated on" in err
    report = json.loads(out)
    assert report["windows"] == 3 and report["warnings"]


def test_evaluate_scores_only_windows_after_training_and_says_how_many(invoke, tmp_path):
    ckpt = tmp_path / "m.ckpt"
    fit_ok(invoke, head(SAMPLES / "nino12_monthly.csv", 732 - 36, tmp_path), "--max-steps", "20", *QUICK, "-o", ckpt)
    code, out, err = invoke("evaluate", ckpt, SAMPLES / "nino12_monthly.csv", "--json", "--forecasts", tmp_path / "f.csv")
    assert code == 0, err
    report = json.loads(out)
    assert report["windows"] == 3 and report["windows_requested"] == 20  # 36 new months, horizon 12
    origins = pd.read_csv(tmp_path / "f.csv")["origin"].unique()
    assert list(origins) == ["2008-01-01", "2009-01-01", "2010-01-01"]  # none before 2008: fit saw those
    code, out, err = invoke("evaluate", ckpt, SAMPLES / "nino12_monthly.csv")
    assert code == 0, err
    assert "3 windows scored (20 asked for)" in out


def test_compare_table_says_how_many_windows_it_scored(invoke, tmp_path):
    data = FILES / "nile.csv"
    code, out, err = invoke("compare", data, "--models", "naive", "--windows", "3", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert {r["windows"] for r in rows} == {3} and {r["windows_requested"] for r in rows} == {3}


# item 4: a model that never beat its starting weights says so

def test_short_yearly_series_trains_past_warm_up_and_says_when_it_kept_the_start(invoke, tmp_path):
    """Nile: 100 yearly rows, 3 steps an epoch. Early stopping used to fire in epoch 2, while the
    learning rate was still warming up, and save the starting weights (repeat the window's mean) as if
    trained. Now patience spans a tenth of the ~200-step budget (7 epochs here); on this series no
    epoch beats the mean on validation even then, and fit, the checkpoint and info say so."""
    ckpt = tmp_path / "nile.ckpt"
    _, err = fit_ok(invoke, FILES / "nile.csv", "--model", "gru", "-o", ckpt)
    training = ckpt_module.load(ckpt).training
    assert training.epochs_run >= 7
    assert training.best_epoch == 0
    assert "warning: no epoch beat the starting weights on validation, so the checkpoint keeps them" in err
    code, out, _ = invoke("info", ckpt)
    assert code == 0 and "kept the starting weights (no epoch beat them on validation)" in out


def test_a_model_that_trains_records_its_best_epoch(invoke, tmp_path):
    ckpt = tmp_path / "nino.ckpt"
    _, err = fit_ok(invoke, SAMPLES / "nino12_monthly.csv", "--max-steps", "60", *QUICK, "-o", ckpt)
    assert ckpt_module.load(ckpt).training.best_epoch >= 1
    assert "warning" not in err


# item 5: a constant target

def test_constant_target_warns(invoke, tmp_path):
    _, err = fit_ok(invoke, FILES / "station_summer.csv", "--target", "snow_cm", "--max-steps", "5", *QUICK,
                    "-o", tmp_path / "snow.ckpt")
    assert "warning: target 'snow_cm' is constant over the training rows" in err


def test_default_target_prefers_a_column_that_varies(invoke, tmp_path):
    _, err = fit_ok(invoke, FILES / "station_summer.csv", "--max-steps", "5", *QUICK, "-o", tmp_path / "t.ckpt")
    assert ckpt_module.load(tmp_path / "t.ckpt").schema.targets == ("temp_c",)
    assert "snow_cm" in err and "constant" in err  # the note says why the last column was passed over


# item 6: the data policy travels with the checkpoint

def test_fill_given_at_fit_is_used_by_predict_and_evaluate(invoke, tmp_path):
    """CO2 weekly has 59 missing weeks; fit was told --fill interpolate, and later commands remember."""
    ckpt = tmp_path / "co2.ckpt"
    fit_ok(invoke, head(SAMPLES / "co2_weekly.csv", 2000, tmp_path), "--fill", "interpolate", "--max-steps", "10",
           *QUICK, "-o", ckpt)
    code, out, err = invoke("predict", ckpt, SAMPLES / "co2_weekly.csv")
    assert code == 0, err
    assert len(pd.read_csv(io.StringIO(out))) == 13
    code, _, err = invoke("evaluate", ckpt, SAMPLES / "co2_weekly.csv", "--windows", "2")
    assert code == 0, err
    code, _, err = invoke("evaluate", ckpt, SAMPLES / "co2_weekly.csv", "--fill", "none")
    assert code == 2 and "missing values" in err  # an option given now still wins (predict reads only the
    # last rows it needs, where this file has no holes)


def test_freq_given_at_fit_is_used_by_predict(invoke, tmp_path):
    """A later stretch of the sensor lost every other reading: re-inferred, it is no longer a 30-minute
    series; read on the recorded 30-minute grid and filled as at fit, it forecasts."""
    ckpt = tmp_path / "kw.ckpt"
    fit_ok(invoke, FILES / "sensor_30min.csv", "--freq", "30min", "--fill", "interpolate", "--max-steps", "10",
           "--lookback", "48", "--horizon", "12", *QUICK, "-o", ckpt)
    loaded = ckpt_module.load(ckpt)
    assert data_config(loaded).freq == "30min" and data_config(loaded).fill == "interpolate"
    code, out, err = invoke("predict", ckpt, FILES / "sensor_30min_dropped.csv")
    assert code == 0, err
    forecast = pd.read_csv(io.StringIO(out))
    assert forecast["timestamp"].iloc[0] == "2024-03-12 03:30:00" and len(forecast) == 12
    code, out, _ = invoke("info", ckpt)
    assert "frequency 30min (given), fill interpolate" in out


def test_inferred_freq_is_inferred_again(invoke, tiny_ckpt, tmp_path):
    assert data_config(ckpt_module.load(tiny_ckpt)).freq is None  # so other-frequency data is named, not misread


# item 9: warm start, a shorter forecast, JSON summaries

def test_warm_start_continues_from_a_checkpoint_at_a_fraction_of_the_budget(invoke, tmp_path):
    first = tmp_path / "monday.ckpt"
    fit_ok(invoke, head(SAMPLES / "nino12_monthly.csv", 700, tmp_path), *QUICK, "--model", "lstm", "-o", first)
    fresh = ckpt_module.load(first)
    second = tmp_path / "tuesday.ckpt"
    out, err = fit_ok(invoke, SAMPLES / "nino12_monthly.csv", "--init-from", first, "-o", second, "--json")
    warm = ckpt_module.load(second)
    assert warm.model_info == fresh.model_info
    assert (warm.training.init_from.path, warm.training.init_from.sha256) == (str(first), fresh.stored.sha256)
    # The default budget of a warm start is a quarter of a fresh fit's on the same data.
    per_epoch = -(-(warm.training.split["main"]["train"] - 48 - 12 + 1) // warm.training.settings.batch_size)
    assert warm.training.steps <= per_epoch * auto_epochs(per_epoch) // 4 < fresh.training.steps
    summary = json.loads(out)
    assert summary["model"] == "lstm" and summary["init_from"]["path"] == str(first)
    assert summary["steps"] == warm.training.steps and summary["checkpoint"] == str(second)
    code, out, _ = invoke("info", second)
    assert f"continued from {first}" in out


def test_warm_start_starts_from_the_checkpoints_weights(invoke, tmp_path):
    first = tmp_path / "first.ckpt"
    fit_ok(invoke, head(SAMPLES / "nino12_monthly.csv", 700, tmp_path), "--max-steps", "30", *QUICK, "-o", first)
    second = tmp_path / "second.ckpt"  # one step at a vanishing learning rate: the weights barely move
    fit_ok(invoke, SAMPLES / "nino12_monthly.csv", "--init-from", first, "--max-steps", "1", "--lr", "1e-12",
           "-o", second)
    before, after = ckpt_module.load(first).model.state_dict(), ckpt_module.load(second).model.state_dict()
    assert all(torch.allclose(before[k], after[k], atol=1e-6) for k in before)


def test_warm_start_reads_as_the_checkpoint_says_unless_told_and_refuses_another_frequency(invoke, tmp_path):
    ckpt = tmp_path / "co2.ckpt"
    fit_ok(invoke, head(SAMPLES / "co2_weekly.csv", 2000, tmp_path), "--fill", "interpolate", "--max-steps", "5",
           *QUICK, "-o", ckpt)
    fit_ok(invoke, SAMPLES / "co2_weekly.csv", "--init-from", ckpt, "--max-steps", "2", "-o", tmp_path / "a.ckpt")
    code, _, err = invoke("fit", SAMPLES / "co2_weekly.csv", "--init-from", ckpt, "--fill", "none",
                          "-o", tmp_path / "b.ckpt")
    assert code == 2 and "missing values" in err  # --fill none given now wins over the record
    monthly = tmp_path / "monthly.csv"  # the same columns, monthly
    monthly.write_text("date,co2\n" + "".join(f"{1960 + i // 12}-{i % 12 + 1:02d}-01,{300 + i / 10}\n"
                                              for i in range(240)), encoding="utf-8")
    code, _, err = invoke("fit", monthly, "--init-from", ckpt, "-o", tmp_path / "c.ckpt")
    assert code == 2 and "frequency differs from training" in err and not (tmp_path / "c.ckpt").exists()
    code, _, err = invoke("fit", SAMPLES / "co2_weekly.csv", "--init-from", ckpt, "--param", "individual=true",
                          "-o", tmp_path / "d.ckpt")
    assert code == 2 and "--param (the hyperparameters come from the checkpoint)" in err


def test_compare_save_dir_checkpoints_remember_how_the_data_was_read(invoke, tmp_path):
    code, _, err = invoke("compare", SAMPLES / "co2_weekly.csv", "--models", "nlinear", "--fill", "interpolate",
                          "--max-steps", "5", "--windows", "2", "--save-dir", tmp_path)
    assert code == 0, err
    saved = ckpt_module.load(tmp_path / "nlinear.ckpt")
    assert saved.policy.fill == "interpolate"
    code, _, err = invoke("predict", tmp_path / "nlinear.ckpt", SAMPLES / "co2_weekly.csv")
    assert code == 0, err


def test_no_time_column_cannot_tell_what_is_new_and_says_so(invoke, tmp_path):
    rows = [line.split(",")[1] for line in (FILES / "nile.csv").read_text().splitlines()[1:]]
    plain = tmp_path / "flow.csv"
    plain.write_text("flow\n" + "\n".join(rows) + "\n", encoding="utf-8")
    ckpt = tmp_path / "flow.ckpt"
    fit_ok(invoke, plain, "--max-steps", "5", *QUICK, "-o", ckpt)
    assert ckpt_module.load(ckpt).training.seen_until is None
    code, _, err = invoke("evaluate", ckpt, plain, "--windows", "2")
    assert code == 0, err
    assert "cannot tell which rows of this file it was trained on (its training data had no time column" in err


def test_evaluate_names_a_split_that_does_not_fit_instead_of_blaming_training(invoke, tmp_path):
    ckpt = tmp_path / "m.ckpt"
    fit_ok(invoke, SAMPLES / "nino12_monthly.csv", "--max-steps", "5", *QUICK, "-o", ckpt)
    code, _, err = invoke("evaluate", ckpt, SAMPLES / "nino12_monthly.csv", "--split", "1000,100,100")
    assert code == 2 and "--split needs 1200" in err and "no windows to score after" not in err


def test_a_decimal_separator_no_number_decided_is_not_imposed_later(invoke, tmp_path):
    ckpt = tmp_path / "nile.ckpt"
    fit_ok(invoke, FILES / "nile.csv", "--max-steps", "5", *QUICK, "-o", ckpt)  # whole numbers only
    assert ckpt_module.load(ckpt).policy.decimal is None
    later = tmp_path / "later.csv"
    later.write_text("year;flow\n" + "".join(f"{1871 + i};{v},5\n" for i, v in
                                               enumerate(range(800, 900))), encoding="utf-8")
    code, out, err = invoke("predict", ckpt, later)
    assert code == 0, err
    assert pd.read_csv(io.StringIO(out))["timestamp"].iloc[0] == "1971-01-01"


def test_warm_start_refuses_another_model_or_shape(invoke, tiny_ckpt, hourly_csv, tmp_path):
    for clash, fragment in ((["--model", "lstm"], "--model lstm (the checkpoint has gru)"),
                            (["--horizon", "12"], "--horizon 12 (the checkpoint has 6)"),
                            (["--param", "hidden_size=16"], "--param")):
        code, _, err = invoke("fit", hourly_csv, "--init-from", tiny_ckpt, *clash, "-o", tmp_path / "x.ckpt")
        assert code == 2 and fragment in err, err
        assert not (tmp_path / "x.ckpt").exists()


def test_predict_a_shorter_horizon_and_a_json_summary(invoke, tiny_ckpt, hourly_csv, tmp_path):
    code, out, err = invoke("predict", tiny_ckpt, hourly_csv, "--horizon", "2")
    assert code == 0, err
    short = pd.read_csv(io.StringIO(out))
    code, out, _ = invoke("predict", tiny_ckpt, hourly_csv)
    full = pd.read_csv(io.StringIO(out))
    assert short.equals(full[full["step"] <= 2])
    code, _, err = invoke("predict", tiny_ckpt, hourly_csv, "--horizon", "7")
    assert code == 2 and "trained to forecast 6 steps" in err
    code, out, err = invoke("predict", tiny_ckpt, hourly_csv, "--json")
    document = json.loads(out)
    assert document["rows"] == 6 and document["horizon"] == 6 and len(document["forecast"]) == 6
    assert document["forecast"][0]["timestamp"] == full["timestamp"][0]
    code, out, err = invoke("predict", tiny_ckpt, hourly_csv, "--json", "--output", tmp_path / "f.csv")
    document = json.loads(out)
    assert "forecast" not in document and document["output"] == str(tmp_path / "f.csv")
    assert pd.read_csv(tmp_path / "f.csv").equals(full)


# item 10: tests do not depend on the working folder

def test_tests_run_in_an_empty_folder_of_their_own():
    here = Path.cwd()
    assert not any(here.iterdir()) and here != Path(__file__).parents[1]


# item 11: several targets: per target in their units, pooled on scaled values

def test_several_targets_are_scored_per_target_and_pooled_on_scaled_values(invoke, tmp_path):
    ckpt = tmp_path / "macro.ckpt"
    fit_ok(invoke, head(FILES / "macro_wide.csv", 203 - 16, tmp_path), "--target", "realgdp", "--target", "cpi",
           "--horizon", "4", "--lookback", "16", "--max-steps", "20", *QUICK, "--transform", "none", "-o", ckpt)
    code, out, err = invoke("evaluate", ckpt, FILES / "macro_wide.csv", "--json", "--forecasts", tmp_path / "f.csv")
    assert code == 0, err
    report = json.loads(out)
    assert report["pooled_scaled"] and set(report["targets"]) == {"realgdp", "cpi"}
    assert report["windows"] == 4
    rows = pd.read_csv(tmp_path / "f.csv")
    std = ckpt_module.load(ckpt).scaler.std["main"]
    scaled_error = (rows["forecast"] - rows["actual"]) / rows["target"].map({"realgdp": std[0], "cpi": std[1]})
    assert report["overall"]["gru"]["mse"] == pytest.approx(float(np.mean(scaled_error**2)), rel=1e-4)
    gdp = rows[rows.target == "realgdp"]
    assert report["targets"]["realgdp"]["gru"]["mse"] == pytest.approx(
        float(np.mean((gdp["forecast"] - gdp["actual"]) ** 2)), rel=1e-9)
    code, out, _ = invoke("evaluate", ckpt, FILES / "macro_wide.csv")
    assert "per target" in out and "pooled on scaled values" in out
    # a model fit on log values is scored in the targets' units, scaled by each series' history before its
    # first test window (its checkpoint's statistics are of log values)
    logged = tmp_path / "logged.ckpt"
    fit_ok(invoke, head(FILES / "macro_wide.csv", 203 - 16, tmp_path), "--target", "realgdp", "--target", "cpi",
           "--horizon", "4", "--lookback", "16", "--max-steps", "20", *QUICK, "--transform", "log", "-o", logged)
    code, out, err = invoke("evaluate", logged, FILES / "macro_wide.csv", "--json", "--forecasts", tmp_path / "g.csv")
    assert code == 0, err
    rows = pd.read_csv(tmp_path / "g.csv")
    history = pd.read_csv(FILES / "macro_wide.csv")[["realgdp", "cpi"]].iloc[: 203 - 16]
    spread = rows["target"].map(history.std(ddof=0))
    assert json.loads(out)["overall"]["gru"]["mse"] == pytest.approx(
        float(np.mean(((rows["forecast"] - rows["actual"]) / spread) ** 2)), rel=1e-4)


# issue 12: compare routes --param like fit checks it

def test_compare_refuses_a_parameter_no_model_has_and_routes_model_dot_key(invoke, hourly_csv):
    code, out, err = invoke("compare", hourly_csv, "--models", "gru,nlinear", "-p", "hiden_size=8")
    assert code == 2 and out == ""
    assert "--param hiden_size: none of gru, nlinear has a parameter 'hiden_size'" in err
    code, _, err = invoke("compare", hourly_csv, "--models", "gru", "-p", "lstm.hidden_size=8")
    assert code == 2 and "'lstm' is not among the models compared" in err
    from seqcast.cli.options import route_params

    assert route_params(["gru", "nlinear"], {"gru.hidden_size": "8", "dropout": "0.1"}) == \
        {"gru": {"hidden_size": "8", "dropout": "0.1"}}


# issue 29: compare's default windows fit a short file

def test_compare_fits_its_default_windows_to_a_short_file_and_says_so(invoke):
    nile = Path(__file__).parent / "real_files" / "nile_yearly.csv"
    code, out, err = invoke("compare", nile, "--models", "naive,nlinear", "--max-steps", "5", "--json")
    assert code == 0, err
    assert "note: --windows 3 per series (not 20): series 'main' has 30 rows and keeps 15 of them to train on" in err
    assert {row["windows"] for row in json.loads(out)} == {3}
    code, _, err = invoke("compare", nile, "--models", "naive", "--windows", "20")  # asked for: as asked, or why not
    assert code == 2 and "too short for 20 test windows" in err


def test_a_series_the_model_never_saw_gets_a_note_at_predict(invoke, tmp_path):
    frame = pd.DataFrame({"store": np.repeat([1, 2], 80), "date": np.tile(pd.date_range("2024-01-01", periods=80), 2),
                          "sales": np.random.default_rng(0).normal(10, 1, 160)})
    frame.to_csv(tmp_path / "stores.csv", index=False)
    ckpt = tmp_path / "s.ckpt"
    code, _, err = invoke("fit", tmp_path / "stores.csv", "--id-col", "store", "--model", "nlinear", "--max-steps", "3",
                          "-o", ckpt)
    assert code == 0, err
    frame.assign(store=frame["store"].replace(2, 9)).to_csv(tmp_path / "new.csv", index=False)
    code, _, err = invoke("predict", ckpt, tmp_path / "new.csv")
    assert code == 0 and "note: 1 series not seen at fit, scaled by their own history: '9'" in err, err


def test_how_the_data_was_read_is_kept_in_the_checkpoint_info_and_json_even_with_q(invoke, tmp_path):
    """A BOM, semicolons, day-first dates and numbers like 135.450 that no value settles: the decision is
    not only a stderr note (which -q hides) but in the checkpoint's notes, `info` and `fit --json`."""
    times = pd.date_range("2020-01-01", periods=120, freq="D")
    rng = np.random.default_rng(1)
    text = "datum;wert\n" + "".join(f"{t:%d.%m.%Y};{rng.integers(100, 999)}.{rng.integers(100, 999)}\n" for t in times)
    data = tmp_path / "amb.csv"
    data.write_bytes(text.encode("utf-8-sig"))
    ckpt = tmp_path / "a.ckpt"
    code, out, err = invoke("-q", "fit", data, "--model", "nlinear", "--max-steps", "2", "-o", ckpt, "--json")
    assert code == 0 and err == "", err
    decided = "column 'wert': no number in the file shows its decimal separator"
    assert any(n.startswith(decided) for n in json.loads(out)["notes"])
    assert any(n.startswith(decided) for n in ckpt_module.load(ckpt).notes)
    code, out, _ = invoke("info", ckpt)
    assert f"note        {decided}" in out and "decimal ., day first" in out


def test_sparse_series_are_listed_at_once_and_can_be_left_out(invoke, tmp_path):
    """A panel where every third series has a handful of rows: the error counts them and names the first
    ten; --drop-sparse (fit) and --min-length (fit, predict) leave them out, with a note naming them."""
    rows = [(f"s{k}", t, float(np.sin(i / 3) + k)) for k in range(36)
            for i, t in enumerate(pd.date_range("2024-01-01", periods=3 + k % 7 if k % 3 == 0 else 120, freq="D"))]
    data = tmp_path / "sparse.csv"
    pd.DataFrame(rows, columns=["id", "date", "y"]).to_csv(data, index=False)
    args = ("fit", data, "--id-col", "id", "--model", "nlinear", "--max-steps", "3")
    code, _, err = invoke(*args, "-o", tmp_path / "x.ckpt")
    short = [f"'s{k}'" for k in range(0, 36, 3)]  # 3 to 9 rows: too short even for a padded window
    assert code == 2 and f"series too short ({len(short)} of 36)" in err and "--drop-sparse" in err
    assert all(f"{sid} has" in err for sid in short[:10]) and f"and {len(short) - 10} more" in err
    code, _, err = invoke(*args, "--drop-sparse", "-o", tmp_path / "d.ckpt")
    assert code == 0 and f"--drop-sparse: left out {len(short)} series too short" in err, err
    assert len(ckpt_module.load(tmp_path / "d.ckpt").schema.series) == 36 - len(short)
    code, _, err = invoke(*args, "--min-length", "60", "-o", tmp_path / "m.ckpt")
    assert code == 0 and "--min-length 60: left out 12 of 36 series with fewer rows: 's0', 's3'" in err, err
    code, out, err = invoke("predict", tmp_path / "m.ckpt", data, "--min-length", "60")
    assert code == 0 and "not seen at fit" not in err and len(set(pd.read_csv(io.StringIO(out))["series"])) == 24


def test_compare_treats_a_short_series_of_a_panel_as_fit_does(invoke, tmp_path):
    """Monthly stores, one opened 14 months ago: fit trains the whole file (the new store's windows are
    padded), and compare, which trains every model on the rows before its test windows, neither lets
    that store cut everyone's test windows to one nor fails without naming every short store and the way
    out; with --drop-sparse it leaves the store out with a note, as fit leaves out what it cannot use."""
    rng = np.random.default_rng(4)
    rows = [(store, t, 100 + 10 * np.sin(i * np.pi / 6) + rng.normal())
            for store, n in (("north", 120), ("south", 120), ("east", 120), ("new", 14))
            for i, t in enumerate(pd.date_range("2014-01-01", periods=n, freq="MS"))]
    data = tmp_path / "stores.csv"
    pd.DataFrame(rows, columns=["store", "month", "sales"]).to_csv(data, index=False)
    code, _, err = invoke("fit", data, "--id-col", "store", "--model", "nlinear", "--max-steps", "3", "-o",
                          tmp_path / "m.ckpt")
    assert code == 0, err
    args = ("compare", data, "--id-col", "store", "--models", "nlinear", "--max-steps", "3")
    code, _, err = invoke(*args)
    assert code == 2 and "1 of 4 series are too short for 1 test window of horizon 12" in err, err
    assert "'new'; use fewer --windows, or --drop-sparse to leave them out" in err
    code, out, err = invoke(*args, "--drop-sparse", "--json")
    assert code == 0, err
    assert "note: --windows 5 per series (not 20): series 'north' has 120 rows" in err
    assert "--drop-sparse: left out 1 of 4 series too short for 5 test windows of horizon 12" in err and "'new'" in err
    rows = json.loads(out)
    assert {row["windows"] for row in rows} == {15} and all(set(row["series"]) == {"north", "south", "east"}
                                                          for row in rows)


def test_a_wide_file_of_countries_by_year_is_refused_without_wide_and_read_as_a_panel_with_it(invoke, tmp_path):
    """One row per country and one column per year (how statistics offices publish): without --wide
    seqcast would model the rows as time; it refuses, naming the option. With it, each row is a series,
    and the checkpoint remembers to read such files so."""
    years = [str(y) for y in range(1960, 2011)]
    rng = np.random.default_rng(2)
    frame = pd.DataFrame([[name, name[:3].upper(), *(100 * 1.02 ** np.arange(len(years)) + rng.normal(0, 1, len(years)))]
                          for name in ("Aland", "Borduria", "Carpania")], columns=["Country Name", "Country Code", *years])
    data = tmp_path / "gdp.csv"
    frame.to_csv(data, index=False)
    code, out, err = invoke("fit", data, "--model", "nlinear", "--max-steps", "3", "-o", tmp_path / "x.ckpt")
    assert code == 2 and "the column headers 1960, 1961, ... 2010 are times" in err and "pass --wide" in err
    ckpt = tmp_path / "w.ckpt"
    code, _, err = invoke("fit", data, "--wide", "--model", "nlinear", "--max-steps", "3", "-o", ckpt)
    assert code == 0, err
    assert "--wide: read 3 rows as series (id 'Country Name') over 51 columns of times (1960 to 2010); columns not " \
           "used: Country Code" in err
    loaded = ckpt_module.load(ckpt)
    assert loaded.schema.series == ("Aland", "Borduria", "Carpania") and loaded.policy.wide
    code, out, err = invoke("predict", ckpt, data)  # read wide again, by itself
    forecast = pd.read_csv(io.StringIO(out))
    assert code == 0 and list(forecast["timestamp"][:2]) == ["2011-01-01", "2012-01-01"], err
    assert "wide (a row per series, a column per time)" in invoke("info", ckpt)[1]
    code, _, err = invoke("fit", SAMPLES / "nino12_monthly.csv", "--wide", "-o", tmp_path / "n.ckpt")
    assert code == 2 and "read as a wide file (fit --wide, or a model fit so) but no column header is a time" in err
    sensors = tmp_path / "sensors.csv"  # value columns numbered like years, beside a time column: a long file
    pd.DataFrame({"date": pd.date_range("2024-01-01", periods=60).strftime("%Y-%m-%d"),
                  **{str(n): rng.normal(size=60) for n in (1001, 1002, 1003)}}).to_csv(sensors, index=False)
    code, _, err = invoke("fit", sensors, "--target", "1002", "--model", "nlinear", "--max-steps", "2",
                          "-o", tmp_path / "s.ckpt")
    assert code == 0, err


def test_a_numeric_store_column_is_suggested_when_timestamps_repeat(invoke, tmp_path):
    frame = pd.DataFrame({"date": np.tile(pd.date_range("2024-01-01", periods=60).strftime("%Y-%m-%d"), 3),
                          "store": np.repeat([1, 2, 3], 60), "sales": np.arange(180.0)})
    frame.to_csv(tmp_path / "stores.csv", index=False)
    code, _, err = invoke("fit", tmp_path / "stores.csv", "--max-steps", "2")
    assert code == 2 and "column 'store' would make the timestamps unique: pass --id-col store" in err, err
