"""Pictures of forecasts: what ``predict`` forecast after the history, and what a backtest forecast
against the actuals, one panel per (series, target), written to a PNG.

matplotlib is an optional extra (``seqcast[plot]``): every entry point checks for it before any work,
so a missing extra never costs a run, and draws with the Agg backend, which needs no display.
Interval columns ``lo_<level>``/``hi_<level>`` (``lo_80``, ``hi_97.5``) are shaded as bands, the
wider level lighter; quantile columns ``q<percent>`` (``q10``) are thin dashed lines.
"""

from __future__ import annotations

import io
import re
import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .errors import InputError, UsageError
from .files import atomic_write

if TYPE_CHECKING:
    from .data import SeriesSet

_QUANTILE = re.compile(r"q(\d+(?:\.\d+)?)")
_FORECAST_COLOUR, _ACTUAL_COLOUR = "C1", "C0"


def require_matplotlib() -> None:
    """Fail early, before any work, when the optional plotting extra is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'seqcast[plot]'") from None


def _pyplot():
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")  # no display needed, and no window ever opens
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path) -> None:
    """Render ``fig`` to PNG bytes, close it, and write the bytes atomically to ``path``."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=100)
    finally:
        plt.close(fig)  # figures live in pyplot's registry until closed
    atomic_write(path, buffer.getvalue())


def _levels(columns) -> list[str]:
    """Interval levels with both bounds present, narrowest first: ["80", "95"]."""
    names = set(columns)
    levels = [c[3:] for c in columns if c.startswith("lo_") and f"hi_{c[3:]}" in names]
    return sorted(levels, key=float)


def _quantiles(columns) -> list[str]:
    return sorted((c for c in columns if _QUANTILE.fullmatch(c)), key=lambda c: float(c[1:]))


def _panels(frame: pd.DataFrame, series: list[str] | None, max_panels: int) -> tuple[list[tuple[str, str]], str]:
    """The (series, target) panels to draw, in frame order, and a note when some were left out."""
    if frame.empty:
        raise InputError("there are no forecasts to plot; check that the forecast frame has rows")
    keys = list(dict.fromkeys(zip(frame["series"].astype(str), frame["target"].astype(str))))
    if series:  # the user's choice, all of it; an empty list means no choice
        ids = list(dict.fromkeys(k[0] for k in keys))
        for sid in series:
            if str(sid) not in ids:
                shown = ", ".join(repr(i) for i in ids[:5]) + (", ..." if len(ids) > 5 else "")
                raise InputError(f"--series {sid!r}: no such series in the forecasts; "
                                 f"give one of {shown} ({len(ids)} in all)")
        wanted = [str(s) for s in series]
        return [k for k in keys if k[0] in wanted], ""
    chosen = keys[:max_panels]
    if len(chosen) == len(keys):
        return chosen, ""
    what = "series" if frame["target"].nunique() == 1 else "series-target panels"
    return chosen, f"first {len(chosen)} of {len(keys)} {what}; --series picks others"


def _rows(frame: pd.DataFrame, key: tuple[str, str]) -> pd.DataFrame:
    return frame[(frame["series"].astype(str) == key[0]) & (frame["target"].astype(str) == key[1])]


def _draw_spread(ax, x, rows: pd.DataFrame, levels: list[str], quantiles: list[str], label: bool) -> None:
    """Bands per interval level (widest drawn first, lightest) and dashed quantile lines."""
    for rank, level in enumerate(reversed(levels)):  # narrower bands sit on wider ones, so read darker
        alpha = 0.12 + 0.18 * rank / max(len(levels) - 1, 1)
        ax.fill_between(x, rows[f"lo_{level}"].to_numpy(float), rows[f"hi_{level}"].to_numpy(float),
                        color=_FORECAST_COLOUR, alpha=alpha, linewidth=0,
                        label=f"{level} % interval" if label else None)
    for q in quantiles:
        ax.plot(x, rows[q].to_numpy(float), color=_FORECAST_COLOUR, linestyle="--", linewidth=0.7,
                label=f"{q[1:]} % quantile" if label else None)


def _finish(fig, axes, integer_time: bool, note: str, path) -> None:
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.legend(fontsize=8, loc="best")
        ax.grid(alpha=0.3)
        if integer_time:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        else:
            for tick in ax.get_xticklabels():
                tick.set_rotation(20)
                tick.set_horizontalalignment("right")
    if note:
        fig.text(0.5, 0.01, note, ha="center", va="bottom", fontsize=8, color="0.4")
    fig.tight_layout(rect=(0, 0.04 if note else 0, 1, 1))
    save_png(fig, path)


def _times(values, integer_time: bool):
    return np.asarray(values, dtype=np.int64) if integer_time else pd.DatetimeIndex(pd.to_datetime(values))


def forecast_plot(history: SeriesSet, frame: pd.DataFrame, path, series: list[str] | None = None,
                  max_panels: int = 4) -> list[tuple[str, str]]:
    """The end of each series' history and ``predict``'s forecast after it, with its intervals and
    quantiles, to a PNG at ``path``. Returns the (series, target) panels drawn."""
    plt = _pyplot()
    panels, note = _panels(frame, series, max_panels)
    levels, quantiles = _levels(frame.columns), _quantiles(frame.columns)
    by_id = {str(s.id): s for s in history.series}
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 0.6 + 3.0 * len(panels)), squeeze=False)
    for ax, key in zip(axes[:, 0], panels):
        rows = _rows(frame, key).sort_values("step")
        x = _times(rows["timestamp"], history.integer_time)
        past = by_id.get(key[0])
        if past is not None and key[1] in history.targets:
            tail = min(max(4 * len(rows), 48), len(past.times))
            past_x = np.asarray(past.times[-tail:])
            past_y = past.values[-tail:, history.targets.index(key[1])]
            ax.plot(past_x, past_y, color=_ACTUAL_COLOUR, linewidth=1.2, label="history")
            # the forecast line starts at the last observed point, so it reads as a continuation
            ax.plot([past_x[-1], np.asarray(x)[0]], [past_y[-1], rows["forecast"].iloc[0]],
                    color=_FORECAST_COLOUR, linewidth=1.2)
        _draw_spread(ax, x, rows, levels, quantiles, label=True)
        ax.plot(x, rows["forecast"].to_numpy(float), color=_FORECAST_COLOUR, linewidth=1.5, label="forecast")
        models = ", ".join(dict.fromkeys(rows["model"].astype(str)))
        ax.set_title(f"{models}: series {key[0]}, {key[1]}", fontsize=10)
    _finish(fig, axes[:, 0], history.integer_time, note, path)
    return panels


def _advance(times, k: int, freq: str, integer_time: bool):
    """``times`` moved on by ``k`` steps of ``freq`` (a pandas offset alias, or the integer step)."""
    if integer_time:
        return np.asarray(times, dtype=np.int64) + k * int(freq)
    times = pd.DatetimeIndex(times)
    if k == 0:  # zero anchored offsets (MonthBegin(0)) roll forward instead of staying put
        return times
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)  # offsets pandas cannot vectorise
        return times + k * pd.tseries.frequencies.to_offset(freq)


def _step_times(rows: pd.DataFrame, freq: str, integer_time: bool) -> pd.Series:
    """Each row's timestamp: its window's origin plus (step - 1) steps of ``freq``."""
    steps = rows["step"].to_numpy(np.int64) - 1
    origins = rows["origin"].to_numpy(np.int64) if integer_time else pd.DatetimeIndex(pd.to_datetime(rows["origin"]))
    times = pd.Series(origins, index=rows.index)
    for k in np.unique(steps):
        at = steps == k
        times[at] = _advance(origins[at], int(k), freq, integer_time)
    return times


def backtest_plot(forecasts: pd.DataFrame, freq: str, integer_time: bool, path, series: list[str] | None = None,
                  max_panels: int = 4) -> list[tuple[str, str]]:
    """The actuals over every backtest window and each window's forecast (with its intervals), to a
    PNG at ``path``; ``forecasts`` is what ``evaluate --forecasts`` writes. Returns the panels drawn."""
    plt = _pyplot()
    panels, note = _panels(forecasts, series, max_panels)
    levels, quantiles = _levels(forecasts.columns), _quantiles(forecasts.columns)
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 0.6 + 3.0 * len(panels)), squeeze=False)
    for ax, key in zip(axes[:, 0], panels):
        rows = _rows(forecasts, key).sort_values(["origin", "step"]).reset_index(drop=True)
        rows["time"] = _step_times(rows, freq, integer_time)
        # overlapping windows repeat actuals: one line through the timestamps, broken where windows leave a gap
        actual = rows.drop_duplicates("time").sort_values("time").reset_index(drop=True)
        following = _advance(actual["time"].iloc[:-1], 1, freq, integer_time)
        starts = [0, *(np.flatnonzero(np.asarray(following) != actual["time"].iloc[1:].to_numpy()) + 1), len(actual)]
        for n, (a, b) in enumerate(zip(starts[:-1], starts[1:])):
            run = actual.iloc[a:b]
            ax.plot(run["time"], run["actual"].to_numpy(float), color=_ACTUAL_COLOUR, linewidth=1.2, marker=".",
                    markersize=3, label="actual" if n == 0 else None)
        for n, (_, window) in enumerate(rows.groupby("origin", sort=True)):
            _draw_spread(ax, window["time"], window, levels, quantiles, label=n == 0)
            ax.plot(window["time"], window["forecast"].to_numpy(float), color=_FORECAST_COLOUR, linewidth=1.3,
                    label="forecast (one line per window)" if n == 0 else None)
        models = ", ".join(dict.fromkeys(rows["model"].astype(str)))
        count = rows["origin"].nunique()
        ax.set_title(f"{models}: series {key[0]}, {key[1]} ({count} backtest windows)", fontsize=10)
    _finish(fig, axes[:, 0], integer_time, note, path)
    return panels


def monitor_plot(report: dict, path) -> None:
    """``seqcast monitor``'s timeline to a PNG at ``path``: each run's MASE beside the fit's backtest MASE,
    and each level's coverage beside its nominal level, by the run's forecast origin."""
    plt = _pyplot()
    timeline = report["timeline"]
    if not timeline:
        raise InputError("--plot: no recorded forecast has its actuals yet; there is nothing to draw")
    x = _times([t["origin"] for t in timeline], report["integer_time"])
    fig, axes = plt.subplots(2, 1, figsize=(10, 6.6), sharex=True)
    axes[0].plot(x, [t["mase"] for t in timeline], color=_FORECAST_COLOUR, marker=".", label="MASE of the run")
    if report["backtest"]:
        axes[0].axhline(report["backtest"]["mase"], color=_ACTUAL_COLOUR, linestyle="--", linewidth=1,
                        label="backtest at fit")
    axes[0].set_title(f"{report['checkpoint']['model']}: error of each recorded forecast run", fontsize=10)
    for i, level in enumerate(report["levels"]):
        key = f"{level:.10g}"
        colour = f"C{i + 2}"
        shares = [np.nan if t[f"coverage_{key}"] is None else t[f"coverage_{key}"] for t in timeline]
        axes[1].plot(x, shares, color=colour, marker=".", label=f"{key} % coverage")
        axes[1].axhline(level / 100, color=colour, linestyle="--", linewidth=1)
    axes[1].set_ylim(-0.02, 1.02)
    axes[1].set_title("coverage of each run's intervals (dashed: nominal)", fontsize=10)
    flagged = len(report["drift"])
    _finish(fig, axes, report["integer_time"], f"{flagged} drift finding{'s' if flagged != 1 else ''}" if flagged
            else "", path)
