"""Season- and level-aware window normalisation ("deseason"), the choices fit makes on its validation
windows (choosing.py), checkpoint format 7, eslstm's smoothing, and panels with series too short to validate.

Contracts run over every registered model; the CLI runs through Typer's CliRunner on real and
synthetic files.
"""

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import assert_fixture_forecasts_as_recorded, format_fixtures, load_fixture, randomised
from seqcast import checkpoint, choosing
from seqcast.build import create_model
from seqcast.data import seasons
from seqcast.registry import get_spec, list_models
from seqcast.window_norm import WindowNorm

MODELS = list_models()
SAMPLES = Path(__file__).resolve().parents[1] / "sample_data"
FORMAT_6 = Path(__file__).parent / "fixtures" / "format6"


def _starts_at_level(name: str, model: torch.nn.Module) -> bool:
    return any(p.numel() for p in model.parameters()) and get_spec(name).capabilities.starts_at_level


def test_seasons_by_frequency():
    assert seasons("h") == (24, 168) and seasons("30min") == (48, 336) and seasons("D") == (7,)
    assert seasons("W-SUN") == (52,) and seasons("MS") == (12,) and seasons("QS-JAN") == (4,)
    assert seasons("YS") == () and seasons("1") == ()


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("trend", [0.0, 0.25])
def test_deseason_starts_at_the_seasonally_adjusted_last_value(name, trend):
    """A zero head under "deseason": the last seasonally adjusted value, re-seasoned step by step; on a
    window that is a season repeated (no trend), exactly seasonal naive. Two seasons (6 and 12: a
    hourly day and week, scaled down) are both taken out where the lookback holds them twice."""
    lookback, horizon = 36, 14
    model = create_model(name, lookback, horizon, 2)
    t = torch.arange(lookback + horizon, dtype=torch.float64)
    short = torch.tensor([1.0, -2.0, 0.5, 3.0, -1.5, -1.0], dtype=torch.float64)  # sums to 0
    weekly = torch.where(t % 12 < 6, 0.7, -0.7).double()
    series = torch.stack([5 + trend * t + short[(t % 6).long()] + weekly, -3 + short[(t % 6).long()] * 2], -1)
    x = series[None, :lookback].float()
    wrapped = WindowNorm(model, "deseason", (6, 12)).eval()
    with torch.no_grad():
        if _starts_at_level(name, model):
            adjusted_last = torch.tensor([5 + trend * (lookback - 1), -3.0], dtype=torch.float64)
            expected = torch.stack([adjusted_last[0] + short[(t[lookback:] % 6).long()] + weekly[lookback:],
                                    adjusted_last[1] + short[(t[lookback:] % 6).long()] * 2], -1)
            torch.testing.assert_close(wrapped(x)[0].double(), expected, atol=1e-4, rtol=0)
            if trend == 0:  # a season repeated: seasonal naive at the longest season
                torch.testing.assert_close(wrapped(x)[0].double(), series[lookback - 12 + torch.arange(horizon) % 12],
                                           atol=1e-4, rtol=0)
        # whatever the head, the forecast moves with a shift of the window
        trained = WindowNorm(randomised(name, lookback, horizon, 2), "deseason", (6, 12)).eval()
        torch.testing.assert_close(trained(x + 4.0), trained(x) + 4.0, rtol=1e-4, atol=1e-4)


def test_deseason_without_a_season_that_fits_twice_is_last():
    model = randomised("gru", 10, 3, 1)
    x = torch.randn(4, 10, 1)
    with torch.no_grad():
        torch.testing.assert_close(WindowNorm(model, "deseason", (7,)).eval()(x), WindowNorm(model, "last").eval()(x))


def _seasonal_panel(scale: float = 1.0, offset: float = 0.0, n: int = 160) -> str:
    rng = np.random.default_rng(4)
    times = pd.date_range("2000-01-01", periods=n, freq="MS")
    rows = ["unique_id,ds,y"]
    for k, sid in enumerate(("a", "b", "c")):
        season = np.sin(np.arange(n) * 2 * np.pi / 12 + k) * (2 + k)
        values = 50 + 10 * k + 0.05 * np.arange(n) + season + rng.normal(scale=0.3, size=n)
        rows += [f"{sid},{t:%Y-%m-%d},{float(scale * v + offset)!r}" for t, v in zip(times, values)]
    return "\n".join(rows) + "\n"


@pytest.mark.parametrize("name", MODELS)
def test_forecasts_scale_with_the_series(name, invoke, tmp_path):
    """Scaling a series (and shifting it) scales (and shifts) its forecast under "deseason": fit z-scores
    each series on its training rows, so every model sees the same numbers."""
    forecasts = []
    for scale, offset in ((1.0, 0.0), (1000.0, -7.0)):
        data = tmp_path / f"panel_{scale:g}.csv"
        data.write_text(_seasonal_panel(scale, offset), encoding="utf-8")
        ckpt = tmp_path / f"{name}_{scale:g}.ckpt"
        code, _, err = invoke("fit", data, "--model", name, "--id-col", "unique_id", "--max-steps", "3",
                              "--horizon", "6", "--lookback", "24", "--window-norm", "deseason", "--loss", "mse",
                              "--output", ckpt)
        assert code == 0, err
        code, out, err = invoke("predict", ckpt, data)
        assert code == 0, err
        forecasts.append(pd.read_csv(io.StringIO(out))["forecast"].to_numpy())
    np.testing.assert_allclose(forecasts[1], 1000.0 * forecasts[0] - 7.0, rtol=2e-4, atol=0.05)


def test_fit_chooses_on_validation_records_it_and_equals_the_forced_fit(invoke, tmp_path):
    data = SAMPLES / "nino12_monthly.csv"
    auto, forced = tmp_path / "auto.ckpt", tmp_path / "forced.ckpt"
    code, _, err = invoke("fit", data, "--model", "gru", "--max-steps", "40", "--output", auto)
    assert code == 0, err
    assert "chosen: window norm " in err and "; transform " in err and "probes of up to" in err
    loaded = checkpoint.load(auto)
    assert [c.setting for c in loaded.choices] == ["window_norm", "transform", "loss", "lookback"]
    norm, transform, loss, lookback = loaded.choices
    assert lookback.candidates == ("48", "96") and lookback.chosen == str(loaded.schema.lookback)  # monthly: 48, twice it
    assert transform.candidates == ("none", "log") and transform.chosen == loaded.transform.kind  # sea temperatures > 0
    assert norm.candidates == ("mean", "last", "deseason") and norm.chosen == loaded.model_info.window_norm
    assert loss.candidates == ("mse", "mae") and loss.chosen == loaded.training.settings.loss
    assert all(np.isfinite(c.scores).all() and c.probe_steps > 0 for c in loaded.choices)
    code, out, _ = invoke("info", auto)
    assert code == 0 and f"chosen      window norm {norm.chosen} (" in out and f"; transform {transform.chosen} (" in out
    code, out, _ = invoke("fit", data, "--model", "gru", "--max-steps", "40", "--output", tmp_path / "j.ckpt", "--json")
    summary = json.loads(out)
    assert [c["chosen"] for c in summary["choices"]] == [norm.chosen, transform.chosen, loss.chosen, lookback.chosen]
    assert summary["loss"] == loss.chosen and summary["transform"] == transform.chosen
    assert summary["lookback"] == int(lookback.chosen)

    # forcing what was chosen trains the same model: nothing probed, the same forecast to the bit
    code, _, err = invoke("fit", data, "--model", "gru", "--max-steps", "40", "--window-norm", norm.chosen,
                          "--loss", loss.chosen, "--transform", transform.chosen, "--lookback", lookback.chosen,
                          "--output", forced)
    assert code == 0, err and "chosen:" not in err
    assert checkpoint.load(forced).choices == ()
    code, out, _ = invoke("info", forced)
    assert "chosen      - (" in out
    outputs = [invoke("predict", path, data)[1] for path in (auto, forced)]
    assert outputs[0] == outputs[1]


def test_choose_keeps_the_declared_candidate_unless_another_is_clearly_better():
    scores = {"mean": 1.0, "last": 0.995, "deseason": 0.9}
    settings, made = choosing.choose([("window_norm", ["mean", "last"])], {"window_norm": "mean"},
                                     lambda s: (scores[s["window_norm"]], 10))
    assert settings["window_norm"] == "mean" and made[0].scores == (1.0, 0.995)  # 0.5 % better is noise
    settings, made = choosing.choose([("window_norm", ["mean", "last", "deseason"]), ("loss", ["mse", "mae"])],
                                     {"window_norm": "mean", "loss": "mse"},
                                     lambda s: (scores[s["window_norm"]] * (0.9 if s["loss"] == "mae" else 1), 10))
    assert settings == {"window_norm": "deseason", "loss": "mae"}
    assert made[1].candidates == ("mse", "mae") and made[1].scores == (0.9, 0.81)  # the winner's probe reused
    settings, made = choosing.choose([("loss", ["mse", "mae"])], {"loss": "mse"},
                                     lambda s: (float("inf") if s["loss"] == "mse" else 0.5, 3))
    assert settings["loss"] == "mae" and made[0].scores == (None, 0.5)  # a diverged probe loses
    assert choosing.norm_candidates("none", (12,), 48) == ["none"]
    assert choosing.norm_candidates("mean", (12,), 20) == ["mean", "last"]


@pytest.mark.parametrize("entry", format_fixtures(6))
def test_format_6_checkpoints_load_with_nothing_chosen_and_forecast_what_they_did(entry, invoke):
    assert load_fixture(6, entry).choices == ()
    assert_fixture_forecasts_as_recorded(invoke, 6, entry)


def test_a_crafted_choice_is_refused(tmp_path):
    from seqcast import meta_schema

    fitted = checkpoint.load(FORMAT_6 / "panel_nlinear.ckpt")
    meta = checkpoint.to_meta(fitted)
    assert fitted.training.settings.loss == "mae"  # a panel's nlinear: its declared loss
    good = {"setting": "loss", "chosen": "mae", "candidates": ["mae", "mse"], "scores": [0.5, None], "probe_steps": 3}
    meta["choices"] = [good]
    meta_schema.check(checkpoint.from_meta(meta))
    for bad in ({"chosen": "bogus", "candidates": ["bogus", "mae"]}, {"chosen": "mse"}, {"scores": [0.5]},
                {"candidates": ["mae"], "scores": [0.5]}, {"scores": [0.5, float("inf")]}, {"scores": [0.5, "x"]}):
        meta["choices"] = [{**good, **bad}]
        with pytest.raises(meta_schema.SchemaError, match="meta.choices"):
            meta_schema.check(checkpoint.from_meta(meta))


def test_eslstm_untrained_continues_a_repeated_season_and_learns_its_coefficients():
    model = create_model("eslstm", 24, 10, 1, {"season": 6}).eval()
    pattern = torch.tensor([1.0, -2.0, 0.5, 3.0, -1.5, -1.0])
    x = (4 + pattern[torch.arange(24) % 6]).view(1, 24, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(x).view(-1), 4 + pattern[torch.arange(10) % 6], atol=1e-5, rtol=0)
    model.train()
    model(torch.randn(3, 24, 1)).pow(2).mean().backward()
    assert model.level_logit.grad.abs().sum() > 0 and model.season_logit.grad.abs().sum() > 0
    assert create_model("eslstm", 10, 2, 1, {"season": 12}).season_logit is None  # longer than the lookback


def test_eslstm_explain_recomputes_each_dilated_layers_gates():
    from seqcast.models._layers import recompute_gates

    model = randomised("eslstm", 30, 5, 2, season=6, dilations=(1, 3)).eval()
    for layer in model.layers:
        x = torch.randn(3, 30, layer.lstm.input_size)
        _, outputs = recompute_gates(layer.lstm, "lstm", layer.fold(x))
        torch.testing.assert_close(layer.unfold(outputs, 30), layer(x).detach(), atol=1e-5, rtol=0)
    gates = model.explain(torch.randn(3, 30, 2))
    assert set(gates) == {f"{i}.{g}" for i in (0, 1) for g in ("forget", "input", "output")}
    assert all(v.shape == (3, 30) and ((v > 0) & (v < 1)).all() for v in gates.values())


def test_a_panel_with_series_too_short_to_validate_trains_them_on_all_their_rows(invoke, tmp_path):
    """Competition panels (M3) hold series shorter than lookback + horizon + validation: they train on
    all their rows while the others validate, instead of stopping the fit."""
    frame = pd.read_csv(io.StringIO(_seasonal_panel()))
    short = frame[frame.unique_id == "c"].head(30)
    data = tmp_path / "panel.csv"
    pd.concat([frame[frame.unique_id != "c"], short]).to_csv(data, index=False)
    ckpt = tmp_path / "m.ckpt"
    code, _, err = invoke("fit", data, "--model", "nlinear", "--id-col", "unique_id", "--horizon", "12",
                          "--lookback", "24", "--max-steps", "5", "--output", ckpt)
    assert code == 0, err
    assert "1 of 3 series are too short to hold validation rows" in err
    assert checkpoint.load(ckpt).training.split["c"] == {"train": 30, "val": 0, "test": 0}
    code, out, err = invoke("predict", ckpt, data)
    assert code == 0 and len(pd.read_csv(io.StringIO(out))) == 36


def _monthly_panel(tmp_path, lengths):
    from seqcast import load_series
    from seqcast.data import DataConfig

    rows = [(f"s{i}", t, 10 + i + np.sin(k / 1.9) + 0.01 * k)
            for i, n in enumerate(lengths) for k, t in enumerate(pd.date_range("1990-01-01", periods=n, freq="MS"))]
    path = tmp_path / "panel.csv"
    pd.DataFrame(rows, columns=["unique_id", "ds", "y"]).to_csv(path, index=False)
    return load_series(str(path), DataConfig(id_col="unique_id"))


@pytest.mark.parametrize("lengths, given, fixed, expected", [
    ([300, 300, 300, 300], 0, False, [96]),  # monthly: 48, and twice it where every series keeps its split
    ([100, 300, 300, 300], 0, False, [96]),  # the short series is padded at both, and validates at both
    ([300, 300, 300, 300], 48, False, []),  # --lookback given: used as given
    ([300, 300, 300, 300], 0, True, []),  # a warm start's or torchrun's lookback is fixed
    ([100, 100, 100, 100], 0, False, []),  # the default was shortened to fit the series: the longer one fits less
])
def test_fit_probes_twice_the_default_lookback_only_where_the_data_hold_it(tmp_path, lengths, given, fixed, expected):
    from seqcast.fitting import ModelConfig
    from seqcast.layout import longer_layouts, make_layout

    series = _monthly_panel(tmp_path, lengths)
    model_config = ModelConfig(name="gru", lookback=given)
    layout = make_layout(series, model_config, None, None)
    longer = longer_layouts(series, model_config, None, layout, fixed)
    assert [lay.lookback for lay in longer] == expected
    assert all(lay.splits == layout.splits and lay.horizon == layout.horizon for lay in longer)


def test_a_longer_lookback_chosen_is_trained_and_forecasts_from_its_windows(tmp_path, invoke, monkeypatch):
    """A panel whose series repeat every 70 months: only a lookback of 96 sees a whole period, and the probe
    says so; the model trains at it (its threads chosen for its windows, its notes those of its layout: the
    short series is padded at 96, not at 48), and its checkpoint forecasts from it."""
    from seqcast import fitting

    lengths = [420, 420, 420, 420, 420, 110]
    rows = [(f"s{i}", t, 50 + 10 * np.sign(np.sin(2 * np.pi * (k + 7 * i) / 70)) + i)
            for i, n in enumerate(lengths) for k, t in enumerate(pd.date_range("1980-01-01", periods=n, freq="MS"))]
    data = tmp_path / "long_period.csv"
    pd.DataFrame(rows, columns=["unique_id", "ds", "y"]).to_csv(data, index=False)
    counted = []  # the window FLOPs each choice of threads saw: 1 thread for the first, 2 for any later
    monkeypatch.setattr(fitting, "_auto_threads", lambda flops, *_: counted.append(flops) or len(counted[:2]))
    code, out, err = invoke("fit", data, "--id-col", "unique_id", "--model", "nlinear", "--max-steps", "300",
                            "--seed", "0", "--output", tmp_path / "m.ckpt", "--json")
    assert code == 0, err
    summary = json.loads(out)
    lookback = next(c for c in summary["choices"] if c["setting"] == "lookback")
    assert list(lookback["scores"]) == ["48", "96"] and lookback["chosen"] == "96", lookback
    loaded = checkpoint.load(tmp_path / "m.ckpt")
    assert summary["lookback"] == 96 and loaded.schema.lookback == 96 and loaded.schema.pad_short
    assert counted[-1] == loaded.training.window_flops > counted[0] and loaded.training.settings.threads == 2
    assert any(n.startswith("1 of 6 series are too short for lookback 96") for n in loaded.notes), loaded.notes
    monkeypatch.undo()
    code, out, err = invoke("predict", tmp_path / "m.ckpt", data)
    assert code == 0 and len(pd.read_csv(io.StringIO(out))) == 6 * 12, err


def test_six_probes_share_three_quarters_of_a_time_budget():
    stages = [("window_norm", ["mean", "last", "deseason"]), ("transform", ["none", "log"]), ("loss", ["mse", "mae"])]
    assert choosing.probe_time_share(stages) == choosing.PROBE_SHARE  # five probes at 0.15
    assert choosing.probe_time_share([*stages, ("lookback", ["104", "208"])]) == pytest.approx(0.75 / 6)
    assert choosing.probe_time_share([("loss", ["mse"])]) == choosing.PROBE_SHARE
