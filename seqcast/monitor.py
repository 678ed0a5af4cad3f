"""Scoring recorded forecasts once their actuals arrive, and telling drift from noise (``seqcast monitor``).

What is scored: the runs of the forecast record (record.py) made by the current model, its lineage: the
checkpoint of the latest run and those it was warm-started from (``fit --init-from``), so that a nightly
warm start keeps its history and a fresh fit starts a new one. Of those, the last ``window`` runs with
at least one point due (a forecast timestamp at or before the newest actual). Each point whose actual
has arrived is scored in the target's units: the absolute error scaled by the in-sample seasonal naive
error of the series' actuals up to the run's origin (MASE, as ``evaluate`` scales it), sMAPE, the signed
error (bias: sum of errors over sum of absolute errors, -1 to 1), and for each interval level whether
the actual fell inside the band issued.

Drift, each found thing a line of the report:
  * coverage: a level's coverage outside the two-sided binomial band of probability ``1 - alpha``
    around the nominal level. The points of one forecast share its errors, so a forecast counts as one
    trial (its share of points covered); per series the trials are its forecasts, at ``alpha`` divided by
    the number of series tested (Bonferroni: a panel of hundreds raises no alarm by chance), and overall
    the runs, each run's share of all its points covered;
  * error: MASE over the window above the fit's own validation MASE (the checkpoint's backtest) times
    ``1 + margin``: overall, and per series against the series' own backtest where it has one, among
    series with at least ``MIN_FORECASTS`` forecasts scored;
  * stale: a series whose actuals stopped: at least ``stale_steps`` of its forecast timestamps are due
    (the file's newest actual is later) but the series' own actuals end before them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .errors import UsageError
from .intervals import label
from .record import Record, actual_values, time_keys

MIN_FORECASTS = 3  # a series' error is judged on at least this many forecasts


@dataclass(frozen=True)
class MonitorConfig:
    window: int = 30  # runs with points due, newest first; 0 = every run of the current model
    margin: float = 0.5  # error drift: MASE above the backtest's times (1 + margin)
    alpha: float = 0.01  # coverage drift: outside the binomial band of probability 1 - alpha
    stale_steps: int = 1  # a series is stale when this many of its due timestamps have no actual

    def __post_init__(self) -> None:
        if self.window < 0:
            raise UsageError(f"--window {self.window}: give a number of runs, or 0 for all of them")
        if not self.margin >= 0:
            raise UsageError(f"--margin {self.margin:g}: give a share of the backtest's error, e.g. 0.5 (50 % more)")
        if not 0 < self.alpha < 1:
            raise UsageError(f"--alpha {self.alpha:g}: give a false-alarm probability in (0, 1), e.g. 0.01")
        if self.stale_steps < 1:
            raise UsageError(f"--stale-steps {self.stale_steps}: give at least 1")


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


def lineage(runs: tuple[dict, ...]) -> list[dict]:
    """The runs of the latest run's model: its checkpoint and the ones it was warm-started from."""
    parents = {run["sha256"]: run.get("parent") for run in runs}
    digest, family = runs[-1]["sha256"], set()
    while digest is not None and digest not in family:
        family.add(digest)
        digest = parents.get(digest)
    return [run for run in runs if run["sha256"] in family]


def _scales(actuals: pd.DataFrame, units: pd.DataFrame, season: int) -> np.ndarray:
    """MASE's denominator for each unit (series, target, origin_key): the mean absolute change at lag
    ``season`` of the series' actuals up to its origin where measurable and not 0, else at lag 1, else 1."""
    scale = np.ones(len(units))
    groups = actuals.groupby(["series", "target"], sort=False).indices
    values = actuals["actual"].to_numpy(dtype=np.float64)
    keys = actuals["key"].to_numpy()
    for (sid, target), at in units.groupby(["series", "target"], sort=False).indices.items():
        rows = groups.get((sid, target))
        if rows is None:
            continue
        series_keys, series_values = keys[rows], values[rows]
        count = np.searchsorted(series_keys, units["origin_key"].to_numpy()[at], side="right")  # rows up to origin
        result = np.ones(len(at))
        for lag in (1, season):  # the seasonal lag, applied last, wins where it is usable
            if len(series_values) <= lag:
                continue
            total = np.concatenate([[0.0], np.cumsum(np.abs(series_values[lag:] - series_values[:-lag]))])
            n = np.clip(count - lag, 0, len(total) - 1)
            with np.errstate(invalid="ignore", divide="ignore"):
                value = np.where(n > 0, total[n] / np.maximum(n, 1), 0.0)
            result = np.where(value > 0, value, result)
        scale[at] = result
    return scale


def _scored(rows: pd.DataFrame, levels: list[float]) -> pd.DataFrame:
    """Per scored point: scaled error, sMAPE term, signed error and, per level, whether it was inside."""
    actual, forecast = rows["actual"].to_numpy(), rows["forecast"].to_numpy(dtype=np.float64)
    error = forecast - actual
    denominator = np.abs(actual) + np.abs(forecast)
    with np.errstate(invalid="ignore", divide="ignore"):
        smape = np.where(denominator > 0, 200 * np.abs(error) / np.where(denominator > 0, denominator, 1), 0.0)
    out = rows.assign(error=error, absolute=np.abs(error), scaled=np.abs(error) / rows["scale"].to_numpy(), smape=smape)
    for level in levels:
        key = label(level)
        out[f"inside_{key}"] = ((actual >= rows[f"lo_{key}"].to_numpy()) &
                                (actual <= rows[f"hi_{key}"].to_numpy())).astype(np.float64)
    return out


def _summary(points: pd.DataFrame, levels: list[float]) -> dict[str, float]:
    spread = float(points["absolute"].sum())
    summary = {"points": len(points), "mase": float(points["scaled"].mean()), "smape": float(points["smape"].mean()),
               "bias": float(points["error"].sum() / spread) if spread > 0 else 0.0}
    for level in levels:
        summary[f"coverage_{label(level)}"] = float(points[f"inside_{label(level)}"].mean())
    return summary


def monitor(record: Record, actuals: Any, config: MonitorConfig = MonitorConfig()) -> dict[str, Any]:
    """The report on ``record``'s forecasts against ``actuals`` (a data.SeriesSet read with the record's
    reading options): what was scored, per series and overall, over time, and the drift found."""
    latest = record.runs[-1]
    integer_time, season = bool(latest["integer_time"]), int(latest.get("season") or 1)
    levels = [float(v) for v in latest["levels"]]
    known = actual_values(actuals).sort_values(["series", "target", "key"], kind="stable", ignore_index=True)
    newest = int(known["key"].max()) if len(known) else None
    family = lineage(record.runs)
    due = [run for run in family if newest is not None and time_keys([run["first"]], integer_time)[0] <= newest]
    window = due[-config.window:] if config.window else due
    report: dict[str, Any] = {
        "runs": len(record.runs), "model_runs": len(family), "window": [r["run"] for r in window],
        "checkpoint": {k: latest[k] for k in ("checkpoint", "sha256", "model")}, "levels": levels,
        "integer_time": integer_time, "actuals": actuals.source, "newest_actual": None if newest is None else _text(newest, integer_time),
        "backtest": latest.get("backtest"), "overall": None, "series": [], "timeline": [], "drift": []}
    if not window:
        return report
    rows = record.forecasts(window)
    rows = rows[[c for c in rows.columns if not c.startswith("level_")]]
    rows = rows.assign(key=time_keys(rows["timestamp"], integer_time), origin_key=time_keys(rows["origin"], integer_time))
    rows = rows.merge(known, on=["series", "target", "key"], how="left")
    last_actual = known.groupby("series")["key"].max()
    report["drift"] += _stale(rows, last_actual, newest, config, integer_time)
    scored = rows[rows["actual"].notna()]
    if scored.empty:
        return report
    units = scored[["series", "target", "origin_key"]].drop_duplicates(ignore_index=True)
    units["scale"] = _scales(known, units, season)
    points = _scored(scored.merge(units, on=["series", "target", "origin_key"]), levels)
    backtest = latest.get("backtest")
    report["overall"] = {**_summary(points, levels), "forecasts": int(points.groupby(["run", "series", "target"]).ngroups),
                         "runs": int(points["run"].nunique())}
    report["timeline"] = [{"run": int(run), "origin": str(group["origin"].iloc[0]), **_summary(group, levels)}
                          for run, group in points.groupby("run", sort=True)]
    report["series"] = _per_series(points, levels, backtest, config)
    report["drift"] += _overall_drift(report, levels, backtest, config)
    report["drift"] += [f"series {row['series']!r}{_target(row, latest)}: {flag}"
                        for row in report["series"] for flag in row["flags"]]
    return report


def _target(row: dict, latest: dict) -> str:
    return f" target {row['target']!r}" if len(latest["targets"]) > 1 else ""


def _text(key: int, integer_time: bool) -> str:
    return str(key) if integer_time else str(pd.Timestamp(key))


def _per_series(points: pd.DataFrame, levels: list[float], backtest: dict | None, config: MonitorConfig) -> list[dict]:
    """Each series (and target): its scores, its backtest MASE, and what drifted."""
    groups = points.groupby(["series", "target"], sort=True)
    tested = groups.ngroups
    table = []
    for (sid, target), group in groups:
        forecasts = group.groupby("run").ngroups
        row = {"series": sid, "target": target, "forecasts": forecasts, **_summary(group, levels), "flags": []}
        if backtest is not None:
            reference = backtest["series_mase"].get(sid, backtest["mase"])
            row["backtest_mase"], row["error_ratio"] = reference, row["mase"] / reference if reference > 0 else None
            if forecasts >= MIN_FORECASTS and row["error_ratio"] is not None and row["error_ratio"] > 1 + config.margin:
                row["flags"].append(f"error: MASE {row['mase']:.3g} over {forecasts} forecasts, {row['error_ratio']:.2f} "
                                    f"times its backtest's {reference:.3g} (more than 1 + --margin {config.margin:g})")
        for level in levels:
            key = label(level)
            share = group.groupby("run")[f"inside_{key}"].mean()  # each forecast: one trial
            low, high = binomial_band(len(share), level / 100, config.alpha / tested)
            row[f"band_{key}"] = [low, high]
            if not low <= row[f"coverage_{key}"] <= high:
                row["flags"].append(f"coverage {key} %: {row[f'coverage_{key}']:.3f} over {len(share)} forecasts, "
                                    f"outside {low:.3f}..{high:.3f}")
        table.append(row)
    return table


def _overall_drift(report: dict, levels: list[float], backtest: dict | None, config: MonitorConfig) -> list[str]:
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
        low, high = binomial_band(runs, level / 100, config.alpha)
        overall[f"band_{key}"] = [low, high]
        run_shares = [t[f"coverage_{key}"] for t in report["timeline"]]
        share = float(np.mean(run_shares))
        overall[f"coverage_runs_{key}"] = share
        if not low <= share <= high:
            found.append(f"overall: coverage {key} %: {share:.3f} over {runs} runs, outside {low:.3f}..{high:.3f}")
    return found


def _stale(rows: pd.DataFrame, last_actual: pd.Series, newest: int, config: MonitorConfig,
           integer_time: bool) -> list[str]:
    """A line per series whose actuals stopped: due timestamps after the end of its own actuals."""
    ends = rows["series"].map(last_actual)
    missing = rows[rows["actual"].isna() & (rows["key"] <= newest) & (ends.isna() | (rows["key"] > ends))]
    found = []
    for sid, group in missing.groupby("series", sort=True):
        count = group["key"].nunique()
        if count >= config.stale_steps:
            end = last_actual.get(sid)
            since = f"its actuals end at {_text(int(end), integer_time)}" if end is not None and not pd.isna(end) \
                else "it has no actuals in the file"
            found.append(f"series {sid!r}: stale: {count} forecast timestamp{'s' if count != 1 else ''} due up to "
                         f"{_text(newest, integer_time)} without an actual ({since})")
    return found
