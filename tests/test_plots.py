"""Forecast and backtest pictures (seqcast/plots.py): what is drawn, which panels, and the errors.

Frames and series sets are built by hand (synthetic values), so no model is trained here.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from seqcast.data import Series, SeriesSet
from seqcast import plots
from seqcast.errors import InputError, UsageError
from seqcast.plots import backtest_plot, forecast_plot

PNG = b"\x89PNG\r\n\x1a\n"
HORIZON = 6


def history(ids=("a", "b"), n=100, integer_time=False, targets=("value",)) -> SeriesSet:
    times = pd.RangeIndex(0, 5 * n, 5) if integer_time else pd.date_range("2024-01-01", periods=n, freq="h")
    rng = np.random.default_rng(0)
    series = [Series(sid, pd.Index(times), rng.normal(size=(n, len(targets)))) for sid in ids]
    return SeriesSet(source="hand.csv", time_col="timestamp", targets=list(targets), id_col="id",
                     freq="5" if integer_time else "h", series=series)


def predicted(past: SeriesSet, levels=(), quantiles=()) -> pd.DataFrame:
    """A frame shaped like ``predict``'s output after ``past``, with optional interval and quantile columns."""
    rows = []
    for s in past.series:
        step = 5 if past.integer_time else pd.Timedelta("1h")
        for target in past.targets:
            for k in range(1, HORIZON + 1):
                rows.append({"series": s.id, "timestamp": s.times[-1] + k * step, "step": k, "model": "gru",
                             "target": target, "forecast": float(k)})
    frame = pd.DataFrame(rows)
    for level in levels:
        width = float(level) / 20
        frame[f"lo_{level}"], frame[f"hi_{level}"] = frame["forecast"] - width, frame["forecast"] + width
    for q in quantiles:
        frame[q] = frame["forecast"] + (float(q[1:]) - 50) / 50
    return frame


def backtested(ids=("a", "b"), windows=3, stride=HORIZON, integer_time=False, freq="h", levels=(),
               start="2024-03-04") -> pd.DataFrame:
    """A frame shaped like ``evaluate --forecasts``: ``windows`` windows per series, ``stride`` steps apart."""
    start = 0 if integer_time else pd.Timestamp(start)
    step = int(freq) if integer_time else pd.tseries.frequencies.to_offset(freq)
    rows = []
    for sid in ids:
        for w in range(windows):
            origin = start + w * stride * step
            for k in range(1, HORIZON + 1):
                rows.append({"model": "gru", "series": sid, "origin": origin, "step": k, "target": "value",
                             "actual": np.sin(w * stride + k), "forecast": np.sin(w * stride + k) + 0.1})
    frame = pd.DataFrame(rows)
    for level in levels:
        frame[f"lo_{level}"], frame[f"hi_{level}"] = frame["forecast"] - 0.5, frame["forecast"] + 0.5
    return frame


@pytest.fixture
def mpl():
    return pytest.importorskip("matplotlib")


@pytest.fixture
def figures(mpl, monkeypatch) -> list:
    """The figures the plots save, kept for a look at what was drawn (the PNG is still written)."""
    saved = []

    def keep(fig, path):
        saved.append(fig)
        save(fig, path)

    save = plots.save_png
    monkeypatch.setattr(plots, "save_png", keep)
    return saved


def legend_labels(ax) -> list[str]:
    return [text.get_text() for text in ax.get_legend().get_texts()]


def test_forecast_plot_writes_a_png_with_bands_and_quantiles(figures, tmp_path):
    import matplotlib.pyplot as plt

    past = history()
    frame = predicted(past, levels=("80", "97.5"), quantiles=("q10", "q90"))
    target = tmp_path / "forecast.png"
    assert forecast_plot(past, frame, target) == [("a", "value"), ("b", "value")]
    assert target.read_bytes()[:8] == PNG
    assert plt.get_fignums() == []  # the figure was closed
    (fig,) = figures
    ax = fig.axes[0]
    assert ax.get_title() == "gru: series a, value"
    assert len(ax.collections) == 2  # one band per level
    assert [line.get_linestyle() for line in ax.lines].count("--") == 2  # one line per quantile
    assert legend_labels(ax) == ["history", "97.5 % interval", "80 % interval", "10 % quantile", "90 % quantile",
                                 "forecast"]
    assert [t.get_text() for t in fig.texts] == []  # every panel drawn: no note


def test_backtest_plot_draws_each_window_and_its_bands(figures, tmp_path):
    backtest_plot(backtested(ids=("a",), windows=3, levels=("80", "95")), "h", False, tmp_path / "b.png")
    (ax,) = figures[0].axes
    assert ax.get_title() == "gru: series a, value (3 backtest windows)"
    assert len(ax.collections) == 3 * 2  # each window, each level
    forecasts = [line for line in ax.lines if line.get_color() == "C1"]
    assert len(forecasts) == 3 and all(len(line.get_xdata()) == HORIZON for line in forecasts)
    assert legend_labels(ax) == ["actual", "95 % interval", "80 % interval", "forecast (one line per window)"]


def test_forecast_plot_draws_the_requested_series_only(mpl, tmp_path):
    past = history(ids=("a", "b", "c"), targets=("load", "price"))
    drawn = forecast_plot(past, predicted(past), tmp_path / "f.png", series=["c"])
    assert drawn == [("c", "load"), ("c", "price")]


def test_forecast_plot_draws_the_first_panels_and_notes_the_rest(figures, tmp_path):
    past = history(ids=tuple("abcdefg"), n=30)  # shorter than 4 x horizon: the whole history is drawn
    drawn = forecast_plot(past, predicted(past), tmp_path / "f.png", max_panels=4)
    assert drawn == [(sid, "value") for sid in "abcd"]
    assert (tmp_path / "f.png").read_bytes()[:8] == PNG
    (fig,) = figures
    assert [t.get_text() for t in fig.texts] == ["first 4 of 7 series; --series picks others"]
    assert len(fig.axes[0].lines[0].get_xdata()) == 30


def test_forecast_plot_shows_four_horizons_of_history(figures, tmp_path):
    past = history(ids=("a",), n=100)
    forecast_plot(past, predicted(past), tmp_path / "f.png")
    assert len(figures[0].axes[0].lines[0].get_xdata()) == 48  # max(4 x 6, 48)


def test_forecast_plot_with_integer_time(mpl, tmp_path):
    past = history(integer_time=True)
    assert forecast_plot(past, predicted(past, levels=("95",)), tmp_path / "f.png") == [("a", "value"), ("b", "value")]
    assert (tmp_path / "f.png").read_bytes()[:8] == PNG


@pytest.mark.parametrize("plot", ["forecast", "backtest"])
def test_an_unknown_series_is_an_input_error_naming_it(mpl, tmp_path, plot):
    target = tmp_path / "f.png"
    with pytest.raises(InputError, match=r"'zürich'.*'a', 'b'"):
        if plot == "forecast":
            forecast_plot(history(), predicted(history()), target, series=["zürich"])
        else:
            backtest_plot(backtested(), "h", False, target, series=["zürich"])
    assert not target.exists()


@pytest.mark.parametrize(("freq", "stride"), [("h", HORIZON), ("MS", 2), ("W-SUN", HORIZON + 3), ("B", 1)])
def test_backtest_plot_with_calendar_frequencies(mpl, tmp_path, freq, stride):
    start = {"W-SUN": "2024-03-03", "MS": "2024-03-01"}.get(freq, "2024-03-04")  # on the frequency's grid
    frame = backtested(freq=freq, stride=stride, levels=("80", "95"), start=start)
    target = tmp_path / "backtest.png"
    assert backtest_plot(frame, freq, False, target) == [("a", "value"), ("b", "value")]
    assert target.read_bytes()[:8] == PNG


def test_backtest_plot_with_integer_time_and_series_choice(mpl, tmp_path):
    frame = backtested(ids=tuple("abcdef"), integer_time=True, freq="5", stride=3)  # overlapping windows
    drawn = backtest_plot(frame, "5", True, tmp_path / "b.png", series=["e", "b"])
    assert sorted(drawn) == [("b", "value"), ("e", "value")]
    assert backtest_plot(frame, "5", True, tmp_path / "b.png") == [(sid, "value") for sid in "abcd"]
    assert (tmp_path / "b.png").read_bytes()[:8] == PNG


@pytest.mark.parametrize("plot", ["forecast", "backtest"])
def test_without_matplotlib_says_how_to_install_before_writing(tmp_path, monkeypatch, plot):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    target = tmp_path / "f.png"
    with pytest.raises(UsageError, match=r"pip install 'seqcast\[plot\]'"):
        if plot == "forecast":
            forecast_plot(history(), predicted(history()), target)
        else:
            backtest_plot(backtested(), "h", False, target)
    assert not target.exists()


@pytest.mark.parametrize(("stride", "runs"), [(HORIZON, 1), (3, 1), (HORIZON + 3, 3)])
def test_backtest_actuals_are_one_line_broken_only_at_gaps(figures, tmp_path, stride, runs):
    backtest_plot(backtested(ids=("a",), stride=stride), "h", False, tmp_path / "b.png")
    actuals = [line for line in figures[0].axes[0].lines if line.get_color() == "C0"]
    assert len(actuals) == runs


def test_backtest_steps_follow_the_calendar(figures, tmp_path):
    backtest_plot(backtested(ids=("a",), windows=1, freq="MS", start="2024-11-01"), "MS", False, tmp_path / "b.png")
    (actual,) = [line for line in figures[0].axes[0].lines if line.get_color() == "C0"]
    assert list(pd.DatetimeIndex(actual.get_xdata())) == list(pd.date_range("2024-11-01", periods=HORIZON, freq="MS"))
