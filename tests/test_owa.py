"""Naive2 and OWA (the M4 protocol): the forecast itself, and compare/evaluate with one window per series."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seqcast.naive2 import naive2, owa, seasonal, seasonal_indices


def _seasonal_series(n: int = 120, season: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pattern = 1 + 0.3 * np.sin(2 * np.pi * np.arange(season) / season)
    level = 100 + np.cumsum(rng.normal(scale=0.2, size=n))
    return level * pattern[np.arange(n) % season]


def test_series_without_a_season_repeat_their_last_value():
    noise = 50 + np.random.default_rng(1).normal(size=200)
    assert not seasonal(noise, 12)
    np.testing.assert_array_equal(naive2(noise[:, None], 5, 12), np.full((5, 1), noise[-1]))


def test_a_seasonal_series_is_forecast_on_its_seasonal_pattern():
    x = _seasonal_series()
    assert seasonal(x, 12)
    indices = seasonal_indices(x, 12)
    true = 1 + 0.3 * np.sin(2 * np.pi * np.arange(12) / 12)
    np.testing.assert_allclose(indices, true / true.mean(), rtol=0.02)
    forecast = naive2(x[:, None], 12, 12)[:, 0]
    phases = np.arange(len(x), len(x) + 12) % 12
    expected = x[-1] / indices[(len(x) - 1) % 12] * indices[phases]
    np.testing.assert_allclose(forecast, expected)
    # The forecast follows the season (up and down), unlike repeat-last.
    assert np.corrcoef(forecast, true[phases])[0, 1] > 0.99


def test_short_or_non_positive_series_are_not_adjusted():
    x = _seasonal_series(n=30)  # fewer than 3 seasons
    assert not seasonal(x, 12)
    y = _seasonal_series() - 200  # negative values: no multiplicative index
    np.testing.assert_array_equal(naive2(y[:, None], 3, 12), np.full((3, 1), y[-1]))


def test_owa_is_the_mean_of_the_two_ratios():
    assert owa(9.0, 3.0, 10.0, 2.0) == pytest.approx(0.5 * (0.9 + 1.5))
    assert np.isnan(owa(1.0, 1.0, 0.0, 1.0))


def _panel(tmp_path, n_series: int = 4, n: int = 96):
    import pandas as pd

    rows = []
    for k in range(n_series):
        times = pd.date_range("2020-01-01", periods=n, freq="MS")
        for t, v in zip(times, _seasonal_series(n, 12, seed=k) * (k + 1)):
            rows.append(f"s{k},{t:%Y-%m-%d},{v:.4f}")
    path = tmp_path / "panel.csv"
    path.write_text("unique_id,ds,y\n" + "\n".join(rows) + "\n")
    return path


def test_compare_with_one_window_per_series_reports_owa_against_naive2(tmp_path, invoke):
    path = _panel(tmp_path)
    rc, out, err = invoke("compare", str(path), "--models", "naive,nlinear", "--windows", "1", "--horizon", "6",
                           "--lookback", "24", "--max-steps", "30", "--metric", "owa", "--json")
    assert rc == 0, err
    rows = {r["model"]: r for r in json.loads(out)}
    assert set(rows) == {"naive", "nlinear", "naive2", "seasonal_naive"}
    reference = rows["naive2"]
    assert reference["owa"] == pytest.approx(1.0)
    for row in rows.values():
        assert row["owa"] == pytest.approx(0.5 * (row["smape"] / reference["smape"] + row["mase"] / reference["mase"]))
        # Per-series scores of every model are in --json.
        assert len(row["series"]) == 4 and all("smape" in v[row["model"]] for v in row["series"].values())
    # These series are seasonal: Naive2 follows the season and beats repeat-last.
    assert rows["naive"]["owa"] > 1.0
    owas = [r["owa"] for r in json.loads(out)]
    assert owas == sorted(owas)  # ranked by --metric owa


def test_owa_needs_one_window_per_series(tmp_path, invoke):
    path = _panel(tmp_path)
    rc, _, err = invoke("compare", str(path), "--models", "naive", "--horizon", "6", "--metric", "owa")
    assert rc == 2 and "--windows 1" in err
    rc, out, err = invoke("compare", str(path), "--models", "naive", "--horizon", "6", "--lookback", "24",
                           "--windows", "2", "--json")
    assert rc == 0, err
    rows = json.loads(out)
    assert "naive2" not in {r["model"] for r in rows} and all("owa" not in r for r in rows)


def test_evaluate_with_one_window_shows_owa(tmp_path, invoke):
    path = _panel(tmp_path)
    ckpt = tmp_path / "m.ckpt"
    rc, _, err = invoke("fit", str(path), "--model", "nlinear", "--horizon", "6", "--lookback", "24",
                         "--max-steps", "20", "--output", str(ckpt))
    assert rc == 0, err
    rc, out, err = invoke("evaluate", str(ckpt), str(path), "--windows", "1", "--in-sample")
    assert rc == 0, err
    assert "owa" in out and "Naive2" in out and "naive2" in out
