"""Scoring recorded forecasts once their actuals arrive, and telling drift from noise (``seqcast monitor``).

What is scored: the runs of the forecast record (record.py) made by the current model (``record.root``:
a fresh fit starts a model, its warm starts continue it, so that a nightly warm start keeps its
history). Of those, the last ``window`` runs with
at least one point due (a forecast timestamp at or before the newest actual). Each point whose actual
has arrived is scored in the target's units: the absolute error scaled by the in-sample seasonal naive
error of the series' actuals up to the run's origin (MASE, as ``evaluate`` scales it), sMAPE, the signed
error (bias: sum of errors over sum of absolute errors, -1 to 1), and for each interval level whether
the actual fell inside the band issued.

What is drift, and how it is told from noise: drift.py. Stale series, whose actuals stopped arriving,
are found here (``_stale``), as is the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .drift import overall_drift, per_series, spacing_of, step_of
from .errors import UsageError
from .intervals import label
from .record import Record, actual_values, recorded_keys, time_keys


@dataclass(frozen=True)
class MonitorConfig:
    window: int = 30  # runs with points due, newest first; 0 = every run of the current model
    margin: float = 0.5  # overall error drift: the window's MASE above the backtest's times (1 + margin)
    series_margin: float = 2.0  # a series' error drift: its latest forecasts' MASE above the reference's times (1 + this)
    alpha: float = 0.01  # coverage drift: outside the binomial band of probability 1 - alpha
    stale_steps: int = 1  # stale: runs this many steps of the frequency apart forecast from one last actual

    def __post_init__(self) -> None:
        if self.window < 0:
            raise UsageError(f"--window {self.window}: give a number of runs, or 0 for all of them")
        for option, value in (("--margin", self.margin), ("--series-margin", self.series_margin)):
            if not value >= 0:
                raise UsageError(f"{option} {value:g}: give a share of the error it is held to, e.g. 0.5 (50 % more)")
        if not 0 < self.alpha < 1:
            raise UsageError(f"--alpha {self.alpha:g}: give a false-alarm probability in (0, 1), e.g. 0.01")
        if self.stale_steps < 1:
            raise UsageError(f"--stale-steps {self.stale_steps}: give at least 1")


def lineage(runs: tuple[dict, ...]) -> list[dict]:
    """The runs of the latest run's model: those of the same ``root`` (record.root: a fresh fit starts a
    model, its warm starts continue it)."""
    model = runs[-1].get("root", runs[-1]["sha256"])
    return [run for run in runs if run.get("root", run["sha256"]) == model]


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
    for level in levels:  # NaN where a run did not issue the level (the levels changed between runs)
        key = label(level)
        if f"lo_{key}" not in rows or f"hi_{key}" not in rows:
            out[f"inside_{key}"] = np.nan
            continue
        lo, hi = rows[f"lo_{key}"].to_numpy(dtype=np.float64), rows[f"hi_{key}"].to_numpy(dtype=np.float64)
        out[f"inside_{key}"] = np.where(np.isnan(lo) | np.isnan(hi), np.nan, ((actual >= lo) & (actual <= hi)))
    return out


def _summary(points: pd.DataFrame, levels: list[float]) -> dict[str, float]:
    spread = float(points["absolute"].sum())
    summary = {"points": len(points), "mase": float(points["scaled"].mean()), "smape": float(points["smape"].mean()),
               "bias": float(points["error"].sum() / spread) if spread > 0 else 0.0}
    for level in levels:
        share = points[f"inside_{label(level)}"].mean()  # over the points whose run issued the level
        summary[f"coverage_{label(level)}"] = None if pd.isna(share) else float(share)
    return summary


def monitor(record: Record, actuals: Any, config: MonitorConfig = MonitorConfig()) -> dict[str, Any]:
    """The report on ``record``'s forecasts against ``actuals`` (a data.SeriesSet read with the record's
    reading options): what was scored, per series and overall, over time, and the drift found."""
    latest = record.runs[-1]
    backtest = record.described(latest)["backtest"]
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
        "integer_time": integer_time, "actuals": actuals.source,
        "newest_actual": None if newest is None else _text(newest, integer_time),
        "backtest": backtest, "overall": None, "series": [], "timeline": [], "drift": [], "watch": [], "stale": []}
    recent = family[-max(config.window, 2):] if config.window else family  # what the stale rule reads
    wanted = sorted({run["run"]: run for run in [*window, *recent]}.values(), key=lambda run: run["run"])
    if not wanted:
        return report
    read = record.forecasts(wanted)  # each run's file once, for both the scores and the stale rule
    read = read.assign(origin_key=recorded_keys(record, read["origin"], integer_time))
    report["stale"] = _stale(read[read["run"].isin([run["run"] for run in recent])], recent, config, integer_time,
                             latest["freq"])
    if not window:
        return report
    rows = read[read["run"].isin([run["run"] for run in window])]
    rows = rows[[c for c in rows.columns if not c.startswith("level_")]]
    rows = rows.assign(key=recorded_keys(record, rows["timestamp"], integer_time))
    rows = rows.merge(known, on=["series", "target", "key"], how="left")
    scored = rows[rows["actual"].notna()]
    if scored.empty:
        return report
    units = scored[["series", "target", "origin_key"]].drop_duplicates(ignore_index=True)
    units["scale"] = _scales(known, units, season)
    points = _scored(scored.merge(units, on=["series", "target", "origin_key"]), levels)
    report["overall"] = {**_summary(points, levels), "forecasts": int(points.groupby(["run", "series", "target"]).ngroups),
                         "runs": int(points["run"].nunique())}
    report["timeline"] = [{"run": int(run), "origin": str(group["origin"].iloc[0]), **_summary(group, levels)}
                          for run, group in points.groupby("run", sort=True)]
    spacing = spacing_of(units, latest)
    report["independence"] = spacing.independence
    report["series"] = per_series(points, levels, backtest, config, spacing)
    report["drift"] += overall_drift(report, levels, backtest, config)
    report["drift"] += [f"series {row['series']!r}{_target(row, latest)}: {flag}"
                        for row in report["series"] for flag in row["flags"]]
    report["watch"] = [f"series {row['series']!r}{_target(row, latest)}: {note}"
                       for row in report["series"] for note in row["watch"]]
    return report


def _target(row: dict, latest: dict) -> str:
    return f" target {row['target']!r}" if len(latest["targets"]) > 1 else ""


def _text(key: int, integer_time: bool) -> str:
    return str(key) if integer_time else str(pd.Timestamp(key))


def _stale(rows: pd.DataFrame, runs: list[dict], config: MonitorConfig, integer_time: bool, freq: str) -> list[str]:
    """A line per series whose actuals stopped: the latest ``runs`` (their recorded ``rows``, with each origin's
    key) forecast it from the same last actual, though they ran at least ``stale_steps`` of its frequency
    apart (by the clock; with integer time, that many runs after the first), so its data did not advance
    while predict ran. A rerun by hand minutes after a run, or a daily job on weekly data, is not stale."""
    if len(runs) < 2:
        return []
    times = {run["run"]: pd.Timestamp(run["time"]) for run in runs}
    table = rows[["run", "series", "origin", "origin_key"]].drop_duplicates(["run", "series"])
    table = table.assign(key=table["origin_key"], time=table["run"].map(times))
    latest = runs[-1]["run"]
    step = None if integer_time else step_of(freq, table["origin"].iloc[-1])
    found = []
    for sid, group in table.groupby("series", sort=True):
        group = group.sort_values("run")
        if group["run"].iloc[-1] != latest:
            continue  # not forecast by the latest run
        keys = group["key"].to_numpy()
        changed = np.flatnonzero(keys != keys[-1])
        same = group.iloc[changed[-1] + 1:] if len(changed) else group  # the latest runs at its last origin
        if len(same) < 2:
            continue
        span = same["time"].iloc[-1] - same["time"].iloc[0]
        # half a step short still counts: a run stamps its time after reading and forecasting, so runs a day
        # apart may be a second less, and a month's step measured from the origin may be a longer month
        stopped = len(same) - 1 >= config.stale_steps if step is None else span >= (config.stale_steps - 0.5) * step
        if stopped:
            found.append(f"series {sid!r}: stale: its actuals end at {same['origin'].iloc[-1]}, the origin of the last "
                         f"{len(same)} runs ({_hours(span)} apart): no new actual arrived while predict ran")
    return found


def _hours(span: pd.Timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours / 24:.3g} days" if hours >= 48 else f"{hours:.3g} hours"
