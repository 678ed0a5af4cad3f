"""Covariates end to end: naming them on the CLI, reading them, rows to forecast at the end of the
history or in --future FILE, the exact coverage check, static categories, what the checkpoint keeps,
explain --covariates, format-5 checkpoints, and the contract that every model reading known-future
covariates uses them."""

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import assert_fixture_forecasts_as_recorded, format_fixtures, load_fixture
from seqcast import checkpoint
from seqcast.data import DataConfig, series_from_text
from seqcast.registry import get_spec, list_models
from seqcast.fitting import ModelConfig, fit
from seqcast.budget import TrainConfig

FUTURE_MODELS = [n for n in list_models() if "future" in get_spec(n).capabilities.covariates]
LOOKBACK, HORIZON = 12, 3
FAST = ["--lookback", str(LOOKBACK), "--horizon", str(HORIZON), "--seed", "0", "--device", "cpu"]
STORES = ("north", "south", "east")


def panel(n: int = 240, ahead: int = 0, seed: int = 0, stores=STORES) -> pd.DataFrame:
    """Three hourly series whose target is exactly 2 x promo (a known-future covariate) plus a level per
    series; noise is a past covariate the target ignores, store a static category, size a static number.
    The last ``ahead`` rows of each series have an empty target: the steps to forecast."""
    rng = np.random.default_rng(seed)
    frames = []
    for k, store in enumerate(stores):
        promo = rng.normal(size=n).round(6)
        y = (2 * promo + 10 * k).astype(object)
        if ahead:
            y[-ahead:] = ""
        frames.append(pd.DataFrame({
            "unique_id": f"s{k}", "ds": pd.date_range("2024-01-01", periods=n, freq="h").strftime("%Y-%m-%dT%H:%M:%S"),
            "promo": promo, "noise": rng.normal(size=n).round(6), "store": store, "size": 100.0 + k, "y": y}))
    return pd.concat(frames, ignore_index=True)


def write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


# --- the contract: a known-future covariate that determines the target is used -------------------------


@pytest.fixture(scope="module")
def synthetic():
    text = panel().drop(columns=["noise", "store", "size"]).to_csv(index=False)
    return {kinds: series_from_text("synthetic.csv", text, DataConfig(future_cols=kinds)) for kinds in ((), ("promo",))}


def _fit(series, name):
    return fit(series, ModelConfig(name, {}, LOOKBACK, HORIZON),
               TrainConfig(epochs=15, batch_size=32, patience=100, seed=0, device="cpu", threads=1))


@pytest.mark.parametrize("name", FUTURE_MODELS)
def test_every_model_reading_known_future_covariates_forecasts_a_target_they_determine(name, synthetic):
    """The target is 2 x promo: independent of its own past, so no forecast without promo can do better
    than its variance (1, scaled); with promo given for the horizon a model must be near exact."""
    fitted = _fit(synthetic[("promo",)], name)
    assert fitted.covariates.names("future") == ("promo",)
    assert fitted.training.val_mse_scaled < 0.1, f"{name}: validation MSE {fitted.training.val_mse_scaled}"


def test_without_the_covariate_the_same_target_cannot_be_forecast(synthetic):
    for name in ("gru", "nlinear"):
        assert _fit(synthetic[()], name).training.val_mse_scaled > 0.8, name


@pytest.mark.parametrize(("model", "option", "kind"), [("naive", "--future-cols", "future"),
                                                       ("seasonal_naive", "--static-cols", "static"),
                                                       ("patchtst", "--past-cols", "past")])
def test_a_model_that_cannot_read_a_kind_is_refused_at_fit_naming_the_models_that_can(model, option, kind, invoke,
                                                                                     tmp_path):
    data = write(panel(), tmp_path / "p.csv")
    column = {"future": "promo", "static": "store", "past": "noise"}[kind]
    code, _, err = invoke("fit", data, "--model", model, option, column, *FAST, "-o", tmp_path / "m.ckpt")
    assert code == 2 and f"{model} cannot use {kind} covariates" in err, err
    assert "models that use" in err and "gru" in err and not (tmp_path / "m.ckpt").exists()
    code, _, err = invoke("compare", data, "--models", f"gru,{model}", option, column, *FAST)
    assert code == 2 and f"{model} cannot use {kind} covariates" in err, err


# --- through the CLI -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An nlinear checkpoint on the panel with every kind of covariate, and the panel it was fit on."""
    from conftest import cli_invoke

    folder = tmp_path_factory.mktemp("covariates")
    data = write(panel(ahead=HORIZON), folder / "panel.csv")
    ckpt = folder / "nlinear.ckpt"
    code, _, err = cli_invoke("fit", data, "--model", "nlinear", "--future-cols", "promo", "--past-cols", "noise",
                              "--static-cols", "store,size", "--calendar", "hour", *FAST, "--epochs", "20",
                              "--loss", "mae", "-o", ckpt)  # the panel loss, not probed: these tests are of the covariates
    assert code == 0, err
    return data, ckpt, err


def test_the_checkpoint_records_each_covariate_with_its_training_statistics(trained, invoke):
    _, ckpt, fit_err = trained
    loaded = checkpoint.load(ckpt)
    covariates = loaded.covariates
    assert [(c.name, c.kind) for c in covariates.columns] == [
        ("noise", "past"), ("hour", "calendar"), ("promo", "future"), ("store", "static"), ("size", "static")]
    store = covariates.of("static")[0]
    assert store.categories == ("east", "north", "south") and len(store.mean) == 3
    assert covariates.widths == (1, 2, 4)  # noise; hour and promo; three store inputs and size
    assert "3 series" in fit_err and "rows after the last observation" not in fit_err
    code, out, _ = invoke("info", ckpt)
    assert code == 0 and "covariates  past noise; calendar hour; future promo; static store (3 categories), size" in out


def test_predict_forecasts_the_rows_left_empty_at_the_end_of_the_history(trained, invoke):
    data, ckpt, _ = trained
    code, out, err = invoke("predict", ckpt, data)
    assert code == 0, err
    forecast = pd.read_csv(io.StringIO(out))
    frame = pd.read_csv(data)
    ahead = frame[frame["y"].isna()]
    assert list(forecast["timestamp"]) == [t.replace("T", " ") for t in ahead["ds"]]
    expected = 2 * ahead["promo"].to_numpy() + 10 * np.repeat(np.arange(3), HORIZON)
    assert np.abs(forecast["forecast"].to_numpy() - expected).max() < 0.5  # promo drives it: about exact


def test_future_file_and_the_exact_coverage_check(trained, invoke, tmp_path):
    data, ckpt, _ = trained
    frame = pd.read_csv(data)
    history, ahead = frame[frame["y"].notna()], frame[frame["y"].isna()]
    history_csv = write(history, tmp_path / "history.csv")
    code, _, err = invoke("predict", ckpt, history_csv)  # no known-future rows at all
    assert code == 2 and "known-future covariates promo are missing for 9 of the 9 forecast steps" in err, err
    assert "('s0', 2024-01-10 21:00:00)" in err and "predict --future FILE" in err
    future = write(ahead[["unique_id", "ds", "promo"]], tmp_path / "future.csv")
    code, out, err = invoke("predict", ckpt, history_csv, "--future", future)
    assert code == 0, err
    code, same, _ = invoke("predict", ckpt, data)
    assert out == same  # the file and the rows at the end of the history are one and the same input
    gaps = write(ahead[["unique_id", "ds", "promo"]].drop(index=ahead.index[[1, 7]]), tmp_path / "gaps.csv")
    code, _, err = invoke("predict", ckpt, history_csv, "--future", gaps)
    assert code == 2 and "missing for 2 of the 9 forecast steps" in err, err
    assert "('s0', 2024-01-10 22:00:00)" in err and "('s2', 2024-01-10 22:00:00)" in err
    empty = ahead[["unique_id", "ds", "promo"]].astype(object)
    empty.loc[empty.index[0], "promo"] = ""
    code, _, err = invoke("predict", ckpt, history_csv, "--future", write(empty, tmp_path / "empty.csv"))
    assert code == 2 and "missing for 1 of the 9" in err and "1 of them have a row with an empty promo" in err, err


def test_static_categories_unseen_in_training_read_as_the_training_average(trained, invoke, tmp_path):
    data, ckpt, _ = trained
    frame = pd.read_csv(data)
    frame.loc[frame["unique_id"] == "s1", "store"] = "west"
    code, out, err = invoke("predict", ckpt, write(frame, tmp_path / "west.csv"))
    assert code == 0, err
    assert "static categories not seen in training, read as the training average: 's1' (store=west)" in err
    assert len(pd.read_csv(io.StringIO(out))) == 9


def test_a_static_column_must_hold_one_value_per_series(invoke, tmp_path):
    frame = panel()
    frame.loc[5, "store"] = "elsewhere"
    code, _, err = invoke("fit", write(frame, tmp_path / "p.csv"), "--static-cols", "store", *FAST)
    assert code == 2, err
    assert "static column 'store' is not constant for series 's0': 'north' (line 2) and 'elsewhere' (line 7)" in err


def test_columns_not_named_are_reported_and_covariates_must_be_numbers(invoke, tmp_path):
    data = write(panel(), tmp_path / "p.csv")
    code, _, err = invoke("fit", data, "--future-cols", "promo", *FAST, "--epochs", "1", "-o", tmp_path / "m.ckpt")
    assert code == 0, err
    assert "columns not used: noise, store, size; name them with --past-cols, --future-cols or --static-cols" in err
    frame = panel().astype({"noise": object})
    frame.loc[3, "noise"] = "n/a?"
    code, _, err = invoke("fit", write(frame, tmp_path / "bad.csv"), "--past-cols", "noise", *FAST)
    assert code == 2 and "line 5" in err and "'noise'" in err, err
    code, _, err = invoke("fit", data, "--past-cols", "promo", "--future-cols", "promo", *FAST)
    assert code == 2 and "column 'promo' is named both as a past covariate and as a future covariate" in err
    code, _, err = invoke("fit", data, "--past-cols", "weather", *FAST)
    assert code == 2 and "no column 'weather' (the past covariate)" in err


def test_a_warm_start_takes_the_covariates_from_its_checkpoint(trained, invoke, tmp_path):
    data, ckpt, _ = trained
    code, _, err = invoke("fit", data, "--init-from", ckpt, "--future-cols", "promo", "-o", tmp_path / "w.ckpt")
    assert code == 2 and "covariate columns come from the checkpoint" in err
    code, _, err = invoke("fit", data, "--init-from", ckpt, "--epochs", "1", "-o", tmp_path / "w.ckpt")
    assert code == 0, err
    assert checkpoint.load(tmp_path / "w.ckpt").covariates == checkpoint.load(ckpt).covariates


def test_tune_searches_a_model_with_covariates(invoke, tmp_path):
    pytest.importorskip("optuna", reason="seqcast[tune] (optuna) is not installed")
    data = write(panel(), tmp_path / "p.csv")
    code, out, err = invoke("tune", data, "--model", "nlinear", "--future-cols", "promo", "--trials", "2", *FAST,
                            "--epochs", "2", "-o", tmp_path / "t.ckpt", "--json")
    assert code == 0, err
    assert checkpoint.load(tmp_path / "t.ckpt").covariates.names("future") == ("promo",)
    code, _, err = invoke("tune", data, "--model", "patchtst", "--past-cols", "noise", "--trials", "2", *FAST)
    assert code == 2 and "patchtst cannot use past covariates" in err, err


def test_evaluate_backtests_with_the_covariates_of_the_history(trained, invoke):
    data, ckpt, _ = trained
    code, out, err = invoke("evaluate", ckpt, data, "--windows", "3", "--in-sample", "--json")
    assert code == 0, err
    overall = json.loads(out)
    assert overall["overall"]["nlinear"]["mae"] < 0.2 * overall["overall"]["naive"]["mae"]


def test_explain_covariates_shows_which_covariate_moves_the_forecast(trained, invoke):
    data, ckpt, _ = trained
    code, out, err = invoke("explain", ckpt, data, "--covariates")
    assert code == 0, err
    effects = pd.read_csv(io.StringIO(out))
    assert set(effects["covariate"]) == {"noise", "hour", "promo", "store", "size"} and len(effects) == 15
    by = effects.groupby("covariate")["mean_abs_change"].mean()
    assert by["promo"] > 0.5 and by["promo"] > 5 * by.drop("promo").max(), by
    plain = write(panel(), Path("plain.csv"))  # without covariates, rows with an empty target are missing values
    code, _, err = invoke("fit", plain, "--model", "nlinear", *FAST, "--epochs", "1", "-o", "plain.ckpt")
    assert code == 0, err
    code, _, err = invoke("explain", "plain.ckpt", plain, "--covariates")
    assert code == 2 and "the model reads no covariates" in err


def test_a_checkpoint_whose_covariates_break_the_schema_is_refused(trained, tmp_path):
    from seqcast import meta_schema

    _, ckpt, _ = trained
    meta = checkpoint.to_meta(checkpoint.load(ckpt))
    for change, message in (
            (lambda c: c[0].update(std=[0.0]), "meta.covariates.columns[0]: expected 1 finite mean and positive std"),
            (lambda c: c[1].update(name="minute"), "meta.covariates.columns[1].name: 'minute' is not a calendar"),
            (lambda c: c.reverse(), "meta.covariates.columns: expected past, calendar, future, then static"),
            (lambda c: c[3].update(categories=["a"]), "meta.covariates.columns[3]: expected 1 finite mean"),
            (lambda c: c[0].update(mean=[True]), "meta.covariates.columns[0].mean[0]: True is not a number")):
        columns = json.loads(json.dumps(meta["covariates"]["columns"]))
        change(columns)
        with pytest.raises(meta_schema.SchemaError, match=message.replace("[", r"\[").replace("]", r"\]")):
            meta_schema.check(checkpoint.from_meta({**meta, "covariates": {"columns": columns}}))


def test_an_exported_covariate_model_forecasts_what_the_checkpoint_does(trained, invoke, tmp_path):
    pytest.importorskip("onnxruntime", reason="seqcast[onnx] (onnxruntime) is not installed")
    pytest.importorskip("onnxscript", reason="seqcast[onnx] (onnxscript) is not installed")
    data, ckpt, _ = trained
    onnx = tmp_path / "m.onnx"
    code, _, err = invoke("export", ckpt, "-o", onnx)
    assert code == 0, err
    code, torch_out, _ = invoke("predict", ckpt, data)
    code, onnx_out, err = invoke("predict", onnx, data)
    assert code == 0, err
    now, then = pd.read_csv(io.StringIO(onnx_out)), pd.read_csv(io.StringIO(torch_out))
    assert np.allclose(now["forecast"], then["forecast"], atol=1e-4 * max(1.0, then["forecast"].abs().max()))


# --- checkpoint format 5 -------------------------------------------------------------------------------



@pytest.mark.parametrize("entry", format_fixtures(5))
def test_format_5_checkpoints_load_with_their_calendar_as_covariates_and_forecast_what_they_did(entry, invoke):
    loaded = load_fixture(5, entry)
    assert "calendar" not in loaded.model_info.params
    calendar = ("hour", "dow", "dom", "doy", "month") if entry["model"] == "informer" else ()
    assert loaded.covariates.names("calendar") == calendar
    assert all(c.mean == (0.0,) and c.std == (1.0,) for c in loaded.covariates.columns)  # fed as they were
    assert_fixture_forecasts_as_recorded(invoke, 5, entry)


# --- covariates that carry no information, values the model never saw, the target named as one -----------


def test_a_covariate_constant_over_training_is_warned_about_and_not_fed(invoke, tmp_path):
    frame = panel(ahead=HORIZON).drop(columns=["store", "size"]).assign(holiday=0.0)  # a flag that never fires
    data = write(frame, tmp_path / "holidays.csv")
    ckpt = tmp_path / "m.ckpt"
    code, out, err = invoke("fit", data, "--model", "nlinear", "--future-cols", "promo,holiday", "--past-cols", "noise",
                            *FAST, "--max-steps", "20", "-o", ckpt, "--json")
    assert code == 0, err
    assert "warning: covariates constant over the training rows, not fed to the model: holiday (future, always 0)" in err
    assert json.loads(out)["covariates"]["future"] == ["promo"] and "holiday" in json.loads(out)["warnings"][0]
    loaded = checkpoint.load(ckpt)
    assert [c.name for c in loaded.covariates.columns] == ["noise", "promo"]
    assert loaded.covariates.of("future")[0].span == (frame["promo"].min(), frame["promo"].max())  # rows read
    code, _, err = invoke("predict", ckpt, data)
    assert code == 0 and "outside the range" not in err, err


def test_a_covariate_value_outside_its_training_range_is_noted_at_predict(trained, invoke, tmp_path):
    data, ckpt, _ = trained
    frame = pd.read_csv(data)
    last = frame.index[(frame["unique_id"] == "s1") & frame["y"].notna()][-1]
    frame.loc[last, "noise"] = 40.0
    code, _, err = invoke("predict", ckpt, write(frame, tmp_path / "hot.csv"))
    assert code == 0, err
    assert "note: covariate values outside the range of the data the model was fit on (it extrapolates there): 's1' noise=40" in err


def test_the_column_seqcast_would_forecast_named_as_a_covariate_is_refused(invoke, tmp_path):
    data = write(panel().drop(columns=["store", "size"]), tmp_path / "p.csv")
    code, _, err = invoke("fit", data, "--model", "nlinear", "--past-cols", "y,noise", *FAST)
    assert code == 2 and "--past-cols y: 'y' is the column seqcast would forecast; give --target" in err
    alone = write(panel()[["unique_id", "ds", "y"]], tmp_path / "alone.csv")  # its only numeric column, too
    code, _, err = invoke("fit", alone, "--model", "nlinear", "--past-cols", "y", *FAST)
    assert code == 2 and "--past-cols y: 'y' is the column seqcast would forecast" in err, err
    code, _, err = invoke("fit", data, "--model", "nlinear", "--past-cols", "y", "--target", "promo", *FAST,
                          "--max-steps", "5", "-o", tmp_path / "promo.ckpt")
    assert code == 0, err


def test_predict_future_for_a_model_whose_future_covariates_were_all_dropped_is_a_note(invoke, tmp_path):
    frame = panel(ahead=HORIZON).drop(columns=["store", "size", "promo"]).assign(holiday=0.0)
    data = write(frame, tmp_path / "h.csv")
    ckpt = tmp_path / "m.ckpt"
    code, _, err = invoke("fit", data, "--model", "nlinear", "--future-cols", "holiday", *FAST, "--max-steps", "5",
                          "-o", ckpt)
    assert code == 0 and "not fed to the model: holiday" in err, err
    ahead = frame["y"].astype(str) == ""
    future = write(frame[ahead][["unique_id", "ds", "holiday"]], tmp_path / "next.csv")
    code, out, err = invoke("predict", ckpt, write(frame[~ahead], tmp_path / "hist.csv"), "--future", future)
    assert code == 0 and "--future" in err and "ignored: fit left out the future covariates" in err, err
