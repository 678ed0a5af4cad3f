"""Scoring recorded forecasts once their actuals arrive, and telling drift from noise (``seqcast monitor``).

What is scored: the runs of the forecast record (record.py) made by the current model, its lineage: the
checkpoint of the latest run and those it was warm-started from (``fit --init-from``), so that a nightly
warm start keeps its history and a fresh fit starts a new one. Of those, the last ``window`` runs with
at least one point due (a forecast timestamp at or before the newest actual). Each point whose actual
has arrived is scored in the target's units: the absolute error scaled by the in-sample seasonal naive
error of the series' actuals up to the run's origin (MASE, as ``evaluate`` scales it), sMAPE, the signed
error (bias: sum of errors over sum of absolute errors, -1 to 1), and for each interval level whether
the actual fell inside the band issued.

Drift, each found thing a line of the report (``drift``, which a refit may cure; ``stale``, which it cannot):
  * coverage: a level's coverage outside the two-sided binomial band of probability ``1 - alpha``
    around the nominal level. The points of one forecast share its errors, so a horizon of target
    times counts as one trial (runs closer together than the horizon overlap, and count as fewer;
    ``Spacing``). Overall: the window's runs, each run's share of all its points covered. Per series: its
    latest target times, ``RECENT`` runs' worth, then twice, four times ... as many, and its whole
    window (``_spans``), each at ``alpha`` divided by the number of series tested and of spans
    (Bonferroni: a panel of hundreds raises no alarm by chance), and only where its target times before
    the span were inside the band: a drift is a change, and a series whose intervals never suited it
    (the calibration is pooled over the panel) is not one;
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
  * stale: a series whose actuals stopped: the latest runs forecast it from the same last actual although
    they ran at least ``stale_steps`` steps of its frequency apart by the clock (for integer time: that
    many runs after the first), so its data did not advance while predict kept running.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from .errors import UsageError
from .intervals import label
from .record import Record, actual_values, recorded_keys, time_keys

MIN_FORECASTS = 3  # a series' error is judged on at least this many forecasts
RECENT = 4  # a series is judged on its latest target times, this many runs' worth, against its earlier ones
EARLIER = 2  # a series' earlier target times are its reference once they span this many horizons
SHRINK = 4  # validation windows' weight of the panel's backtest MASE in a series' own (when it has few)


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
        "backtest": backtest, "overall": None, "series": [], "timeline": [], "drift": [], "watch": [],
        "stale": _stale(record, family, config, integer_time, latest["freq"])}
    if not window:
        return report
    rows = record.forecasts(window)
    rows = rows[[c for c in rows.columns if not c.startswith("level_")]]
    rows = rows.assign(key=recorded_keys(record, rows["timestamp"], integer_time),
                       origin_key=recorded_keys(record, rows["origin"], integer_time))
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
    spacing = _spacing(units, latest)
    report["independence"] = spacing.independence
    report["series"] = _per_series(points, levels, backtest, config, spacing)
    report["drift"] += _overall_drift(report, levels, backtest, config)
    report["drift"] += [f"series {row['series']!r}{_target(row, latest)}: {flag}"
                        for row in report["series"] for flag in row["flags"]]
    report["watch"] = [f"series {row['series']!r}{_target(row, latest)}: {note}"
                       for row in report["series"] for note in row["watch"]]
    return report


def _target(row: dict, latest: dict) -> str:
    return f" target {row['target']!r}" if len(latest["targets"]) > 1 else ""


def _text(key: int, integer_time: bool) -> str:
    return str(key) if integer_time else str(pd.Timestamp(key))


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


def _spacing(units: pd.DataFrame, latest: dict) -> Spacing:
    if latest["integer_time"]:
        step = int(latest["freq"]) if str(latest["freq"]).isdigit() else 1
    else:
        step = _step(latest["freq"], str(pd.Timestamp(int(units["origin_key"].iloc[0])))).value
    gaps = units.sort_values("origin_key").groupby(["series", "target"])["origin_key"].diff().dropna()
    stride = float(gaps.median()) / step if len(gaps) else float(latest["horizon"])
    return Spacing(step, max(stride, 1.0), int(latest["horizon"]))


def _per_series(points: pd.DataFrame, levels: list[float], backtest: dict | None, config: MonitorConfig,
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


def _stale(record: Record, runs: list[dict], config: MonitorConfig, integer_time: bool, freq: str) -> list[str]:
    """A line per series whose actuals stopped: the latest runs forecast it from the same last actual, though
    they ran at least ``stale_steps`` of its frequency apart (by the clock; with integer time, that many
    runs after the first), so its data did not advance while predict ran. A rerun by hand minutes after
    a run, or a daily job on weekly data, is not stale."""
    recent = runs[-max(config.window, 2):] if config.window else runs
    if len(recent) < 2:
        return []
    parts = []
    for run in recent:
        origins = record.forecasts([run], ("series", "origin")).drop_duplicates("series")
        parts.append(origins.assign(run=run["run"], time=pd.Timestamp(run["time"])))
    table = pd.concat(parts, ignore_index=True)
    table["key"] = recorded_keys(record, table["origin"], integer_time)
    latest = runs[-1]["run"]
    step = None if integer_time else _step(freq, table["origin"].iloc[-1])
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


def _step(freq: str, origin: str) -> pd.Timedelta:
    """How long one step of ``freq`` lasts after ``origin`` (a month, a quarter: as the calendar has it)."""
    at = pd.Timestamp(origin)
    return (at + pd.tseries.frequencies.to_offset(freq)) - at


def _hours(span: pd.Timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours / 24:.3g} days" if hours >= 48 else f"{hours:.3g} hours"
