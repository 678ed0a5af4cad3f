"""Telling drift from noise in recorded forecasts (``seqcast monitor``; the scoring is monitor.py's).

Drift, each found thing a line of the report (``drift``, which a refit may cure; ``stale``, which it cannot):
  * coverage: a level's coverage outside the two-sided binomial band of probability ``1 - alpha``
    around the nominal level. The points of one forecast share its errors, so a horizon of target
    times counts as one trial (runs closer together than the horizon overlap, and count as fewer;
    ``Spacing``). Overall: the window's runs, each run's share of all its points covered. Per series: its
    latest target times, ``RECENT`` runs' worth, then twice, four times ... as many while as long a
    stretch lies before them (``_spans``), each at ``alpha`` divided by the number of series tested and
    of spans (Bonferroni: a panel of hundreds raises no alarm by chance), and only where the stretch
    before was inside the band: a drift is a change, and a series whose intervals never suited it (the
    calibration is pooled over the panel) is not one;
  * error: overall, the window's MASE above the fit's own validation MASE (the checkpoint's backtest)
    times ``1 + margin``; per series, the MASE of its latest target times (from at least
    ``MIN_FORECASTS`` runs) above ``1 + series_margin`` times that of its earlier ones at the same leads,
    once those span ``EARLIER`` horizons, and above them beyond what its own swings explain (``_rose``,
    at ``alpha`` over the series tested). Judged by target time, not by run, a change shows at once in
    every run that forecast past it. Before a series has that history, its error is held to its
    backtest MASE shrunk toward the panel's (it had a window or two of validation), untested: a line
    in ``watch``, which does not make the report unhealthy. One series' error over a few forecasts
    swings far more than a panel's: on the M4 Weekly replay (benchmarks/monitor.py), latest forecasts
    against earlier ones at a margin of 0.5, untested, named 151 of 323 unshifted series;
  * stale (monitor.py): a series whose actuals stopped: the latest runs forecast it from the same last
    actual although they ran at least ``stale_steps`` steps of its frequency apart by the clock (for
    integer time: that many runs after the first), so its data did not advance while predict ran.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .intervals import label

if TYPE_CHECKING:
    from .monitor import MonitorConfig

MIN_FORECASTS = 3  # a series' error is judged on at least this many forecasts
RECENT = 4  # a series is judged on its latest target times, this many runs' worth, against its earlier ones
EARLIER = 2  # a series' earlier target times are its reference once they span this many horizons
SHRINK = 4  # validation windows' weight of the panel's backtest MASE in a series' own (when it has few)


def binomial_band(n: int, p: float, alpha: float) -> tuple[float, float]:
    """The shares (k_lo / n, k_hi / n) between which the share of successes of ``n`` trials of probability
    ``p`` falls with probability at least ``1 - alpha`` (each tail at most alpha / 2)."""
    if n == 0:
        return 0.0, 1.0
    k = np.arange(n + 1)
    ratio = np.log(np.maximum(n - k[:-1], 1)) - np.log(k[:-1] + 1) + math.log(p) - math.log1p(-p)
    log_pmf = np.concatenate([[n * math.log1p(-p)], n * math.log1p(-p) + np.cumsum(ratio)])
    pmf = np.exp(log_pmf - log_pmf.max())
    pmf /= pmf.sum()
    below, above = np.cumsum(pmf), np.cumsum(pmf[::-1])[::-1]  # P(X <= k), P(X >= k)
    low = int(np.argmax(below > alpha / 2))  # the fewest successes not in the lower tail
    high = int(n - np.argmax(above[::-1] > alpha / 2))  # the most not in the upper tail
    return low / n, high / n

@dataclass(frozen=True)
class Spacing:
    """How the record's forecasts lie in time: one step of the frequency (in time keys), the steps between
    a series' consecutive runs (the median), and the horizon."""

    step: int
    stride: float
    horizon: int

    @property
    def independence(self) -> float:
        """The share of a forecast that is evidence of its own, at most 1: nightly forecasts of the next 24
        hours share no point (1); weekly runs of 13-week forecasts share 12 of 13 (1/13)."""
        return min(1.0, self.stride / self.horizon)

    def trials(self, target_steps: int) -> int:
        """How many independent trials the points of ``target_steps`` distinct target times make: a
        forecast's points share its errors, so a horizon of them is one trial (at least one)."""
        return max(1, int(round(target_steps / self.horizon)))


def spacing_of(units: pd.DataFrame, latest: dict) -> Spacing:
    if latest["integer_time"]:
        step = int(latest["freq"]) if str(latest["freq"]).isdigit() else 1
    else:
        step = step_of(latest["freq"], str(pd.Timestamp(int(units["origin_key"].iloc[0])))).value
    gaps = units.sort_values("origin_key").groupby(["series", "target"])["origin_key"].diff().dropna()
    stride = float(gaps.median()) / step if len(gaps) else float(latest["horizon"])
    return Spacing(step, max(stride, 1.0), int(latest["horizon"]))


def per_series(points: pd.DataFrame, levels: list[float], backtest: dict | None, config: MonitorConfig,
                spacing: Spacing) -> list[dict]:
    """Each series (and target): its scores over the window and over its latest target times (``RECENT``
    runs' worth), the error those are held to, and what drifted (a change: see the module's docstring)."""
    keys = [f"inside_{label(level)}" for level in levels]
    points = points.sort_values(["series", "target", "key"], kind="stable", ignore_index=True)
    tested = points.groupby(["series", "target"]).ngroups
    per_series_windows = backtest["windows"] / max(len(backtest["series_mase"]), 1) if backtest else 0
    span = RECENT * spacing.stride * spacing.step  # the latest target times judged, in time keys
    scaled, smape, error = (points[c].to_numpy(dtype=np.float64) for c in ("scaled", "smape", "error"))
    # Errors grow with the lead, and a series' latest target times are forecast at other leads than its
    # earlier ones (early in a record, only at short leads): compared as shares of the panel's error at
    # their step.
    by_step = points.groupby("step")["scaled"].mean()
    relative = scaled / np.maximum(points["step"].map(by_step).to_numpy(dtype=np.float64), 1e-12)
    target_keys, runs = points["key"].to_numpy(), points["run"].to_numpy()
    inside = {key: points[key].to_numpy() for key in keys}
    table = []
    for (sid, target), at in points.groupby(["series", "target"], sort=True).indices.items():
        spread = np.abs(error[at]).sum()
        row = {"series": sid, "target": target, "forecasts": len(np.unique(runs[at])), "points": len(at),
               "mase": float(scaled[at].mean()), "smape": float(smape[at].mean()),
               "bias": float(error[at].sum() / spread) if spread > 0 else 0.0,
               **{f"coverage_{key[7:]}": _share(inside[key][at]) for key in keys}, "flags": []}
        times = target_keys[at]
        is_recent = times > times[-1] - span
        recent, earlier = at[is_recent], at[~is_recent]
        recent_steps, earlier_steps = len(np.unique(times[is_recent])), len(np.unique(times[~is_recent]))
        row["recent_mase"] = float(scaled[recent].mean())
        significant = True
        if earlier_steps >= max(recent_steps, EARLIER * spacing.horizon):  # its earlier error, at the latest's leads
            reference = row["recent_mase"] * float(relative[earlier].mean() / max(relative[recent].mean(), 1e-12))
            against = "its earlier target times (at the same leads)"
            significant = _rose(relative[recent], times[is_recent], relative[earlier], times[~is_recent], spacing,
                                config.alpha / tested)
        elif backtest is not None:  # its own validation windows, shrunk toward the panel's as they are few
            own = backtest["series_mase"].get(sid, backtest["mase"])
            reference = (per_series_windows * own + SHRINK * backtest["mase"]) / (per_series_windows + SHRINK)
            against = "its backtest"
        else:
            reference, against = None, ""
        row["reference_mase"] = reference
        enough = len(np.unique(runs[recent])) >= MIN_FORECASTS
        row["watch"] = []
        if reference and enough and significant and row["recent_mase"] > (1 + config.series_margin) * reference:
            # against its own earlier errors, a tested change: drift; against its backtest (a window or two at
            # fit, untested): a note to watch, which does not make the run unhealthy
            (row["flags"] if against != "its backtest" else row["watch"]).append(
                f"error: MASE {row['recent_mase']:.3g} over its latest {recent_steps} target times, "
                f"{row['recent_mase'] / reference:.2f} times the {reference:.3g} of {against} "
                f"(more than 1 + --series-margin {config.series_margin:g})")
        spans = _spans(times, span)
        for level, key in zip(levels, keys):
            issued = ~np.isnan(inside[key][at])  # the points whose run issued this level
            row[f"recent_coverage_{label(level)}"] = _share(inside[key][recent])
            for latest_times in spans:  # the latest 4, 8, 16, ... runs' worth: the shortest that shows a change
                late = (times > times[-1] - latest_times) & issued
                early = ~(times > times[-1] - latest_times) & issued
                late_steps, early_steps = len(np.unique(times[late])), len(np.unique(times[early]))
                if not late_steps or early_steps < late_steps:  # a change needs as long a stretch before it
                    continue
                trials, alpha = spacing.trials(late_steps), config.alpha / tested / len(spans)
                low, high = binomial_band(trials, level / 100, alpha)
                share = float(inside[key][at[late]].mean())
                steady = _inside(float(inside[key][at[early]].mean()), spacing.trials(early_steps), level, alpha)
                if steady and not low <= share <= high:
                    row["flags"].append(f"coverage {label(level)} %: {share:.3f} over its latest {late_steps} target "
                                        f"times ({trials} forecast{'s' if trials != 1 else ''}' worth), outside "
                                        f"{low:.3f}..{high:.3f}")
                    break
        table.append(row)
    return table


def _spans(times: np.ndarray, shortest: float) -> list[float]:
    """The spans of latest target times a series' coverage is judged over: ``shortest`` (``RECENT`` runs'
    worth), doubled while at least as long a stretch lies before it: a change that misses every point
    shows in the shortest, a milder one that lasts over a longer span (each at its share of alpha)."""
    spans, length = [], shortest
    while 2 * length <= times[-1] - times[0] + 1 or not spans:
        spans.append(length)
        length *= 2
    return spans


def _share(values: np.ndarray) -> float | None:
    """The mean of the points that were scored for a level (None when none was)."""
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else None


def _rose(recent: np.ndarray, recent_times: np.ndarray, earlier: np.ndarray, earlier_times: np.ndarray,
          spacing: Spacing, alpha: float) -> bool:
    """Whether a series' latest errors are above its earlier ones beyond what its own swings explain: the
    difference of the mean errors per target time, over the spread of the earlier ones with a horizon of
    target times as one observation, above the one-sided normal quantile of ``alpha``."""
    late, early = _by_time(recent, recent_times), _by_time(earlier, earlier_times)
    if len(early) < 2:
        return True
    spread = float(early.std(ddof=1)) * math.sqrt(1 / spacing.trials(len(late)) + 1 / spacing.trials(len(early)))
    return float(late.mean() - early.mean()) > NormalDist().inv_cdf(1 - alpha) * max(spread, 1e-12)


def _by_time(values: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The mean of ``values`` at each distinct time."""
    _, at = np.unique(times, return_inverse=True)
    return np.bincount(at, weights=values) / np.bincount(at)


def _inside(share: float, n: int, level: float, alpha: float) -> bool:
    low, high = binomial_band(n, level / 100, alpha)
    return low <= share <= high

def overall_drift(report: dict, levels: list[float], backtest: dict | None, config: MonitorConfig) -> list[str]:
    overall, runs = report["overall"], report["overall"]["runs"]
    found = []
    if backtest is not None and backtest["mase"] > 0:
        overall["backtest_mase"] = backtest["mase"]
        overall["error_ratio"] = overall["mase"] / backtest["mase"]
        if overall["error_ratio"] > 1 + config.margin:
            found.append(f"overall: error: MASE {overall['mase']:.3g} over {runs} runs, {overall['error_ratio']:.2f} times "
                         f"the backtest's {backtest['mase']:.3g} (more than 1 + --margin {config.margin:g})")
    for level in levels:
        key = label(level)
        run_shares = [t[f"coverage_{key}"] for t in report["timeline"] if t[f"coverage_{key}"] is not None]
        if not run_shares:  # no scored run issued this level
            continue
        issued = len(run_shares)
        low, high = binomial_band(max(1, int(round(issued * report["independence"]))), level / 100, config.alpha)
        share = float(np.mean(run_shares))
        overall[f"band_{key}"], overall[f"coverage_runs_{key}"] = [low, high], share
        if not low <= share <= high:
            found.append(f"overall: coverage {key} %: {share:.3f} over {issued} runs, outside {low:.3f}..{high:.3f}")
    return found

def step_of(freq: str, origin: str) -> pd.Timedelta:
    """How long one step of ``freq`` lasts after ``origin`` (a month, a quarter: as the calendar has it)."""
    at = pd.Timestamp(origin)
    return (at + pd.tseries.frequencies.to_offset(freq)) - at
