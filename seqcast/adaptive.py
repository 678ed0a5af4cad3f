"""Adaptive intervals: adaptive conformal inference (Gibbs and Candès 2021) over the forecast record.

A calibrated band covers its level on data like the validation rows; when the data shift it covers less
(or more). ``predict --adapt`` keeps, for each series, target and level, a miscoverage rate alpha in the
record (adapt.csv), and draws the next band at it. Every recorded point whose actual has arrived since
updates it: alpha <- alpha + gamma (a - miss), with a = 1 - level / 100 the nominal rate and miss 1 when
the actual fell outside the band issued. Below nominal coverage alpha falls and the bands widen; above,
it rises and they narrow. The update is additive, so the points that arrived since the last run update
it at once: alpha += gamma (n a - misses). Gibbs and Candès show that the long-run miss rate then stays
within (max(alpha_1, 1 - alpha_1) + gamma) / (gamma T) of a after T points, whatever the data do.

The band at alpha is the calibrated band with each side's distance from the point forecast multiplied
by z(1 - alpha) / z(level), z the two-sided standard normal quantile: a family nested and monotone in
alpha, as the method needs. At alpha >= 1 the band is the point forecast; alpha is read as at least
0.001 (a 99.9 % band) where the method would give the whole real line. Several levels stay nested.
The state outlives checkpoints: a refit starts from the rates the last one left.
"""

from __future__ import annotations

from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd

from .errors import InputError
from .intervals import label
from .record import Record, time_keys

STATE = "adapt.csv"
COLUMNS = ["series", "target", "level", "alpha", "through", "points", "misses"]
RATE = 0.005  # gamma: Gibbs and Candès's choice in their experiments
HIGHEST = 99.9  # the widest band drawn, in percent


def load(folder: Path, integer_time: bool = False) -> pd.DataFrame:
    """The record's adaptive state (COLUMNS); empty before the first adapted run."""
    path = folder / STATE
    if not path.exists():
        return pd.DataFrame({c: pd.Series(dtype=str if c in ("series", "target", "through") else float)
                             for c in COLUMNS})
    try:
        state = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"series": str, "target": str,
                                                                                "through": str})
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: the adaptive state cannot be read ({exc}); remove it to start again from the "
                         "calibrated bands") from None
    if list(state.columns) != COLUMNS:
        raise InputError(f"{path}: expected the columns {', '.join(COLUMNS)}; remove it to start again from the "
                         "calibrated bands")
    try:
        for column in ("level", "alpha", "points", "misses"):
            state[column] = pd.to_numeric(state[column]).astype(np.float64)
        time_keys(state["through"].astype(str), integer_time)
        if state[["series", "target"]].isna().any().any() or not np.isfinite(state["alpha"]).all():
            raise ValueError("a row without its series, target or rate")
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path}: the adaptive state cannot be read ({exc}); remove it to start again from the "
                         "calibrated bands") from None
    return state


def save(folder: Path, state: pd.DataFrame) -> None:
    from .data import write_csv
    from .files import atomic_write

    atomic_write(folder / STATE, write_csv(state[COLUMNS]))


def runs_to_feed(record: Record, state: pd.DataFrame, integer_time: bool, latest: dict[str, int]) -> list[dict]:
    """The recorded runs that may hold points not yet fed of the series with new actuals (``latest``: each
    series' last actual, as a time key): every run whose last forecast timestamp is after the earliest
    point the state has fed any of them through (all runs when one has none yet). Series no longer
    forecast, or whose actuals stopped, do not hold it back, so a nightly run reads the last horizon's
    runs, not the years before."""
    state = state[state["series"].isin(latest)]
    if not set(latest) <= set(state["series"]):
        return list(record.runs)
    through = time_keys(state["through"].astype(str), integer_time)
    fresh = through < state["series"].map(latest).to_numpy()
    if not fresh.any():
        return []
    through = through[fresh].min()
    return [run for run in record.runs if time_keys([run["last"]], integer_time)[0] > through]


def update(state: pd.DataFrame, recorded: pd.DataFrame, actuals: pd.DataFrame, levels: tuple[float, ...],
           rate: float, integer_time: bool) -> pd.DataFrame:
    """The state after feeding the recorded points (``recorded``: runs' rows with lo_/hi_ of each level, and
    their ``key`` where the caller has it) whose actuals (``actuals``: series, target, key, actual) have
    arrived and that it has not fed yet."""
    if recorded.empty:
        return state
    rows = recorded if "key" in recorded else recorded.assign(key=time_keys(recorded["timestamp"], integer_time))
    rows = rows.merge(actuals, on=["series", "target", "key"], how="inner")
    known = state.assign(through_key=time_keys(state["through"].astype(str), integer_time) if not state.empty
                         else np.array([], dtype=np.int64))
    updated = []
    for level in levels:
        lo, hi = f"lo_{label(level)}", f"hi_{label(level)}"
        if lo not in rows:
            continue
        old = known[known["level"] == level][["series", "target", "alpha", "through_key", "points", "misses"]]
        fresh = rows.merge(old, on=["series", "target"], how="left")
        fresh = fresh[(fresh["through_key"].isna() | (fresh["key"] > fresh["through_key"]))
                      & fresh[lo].notna() & fresh[hi].notna()]  # a run that did not issue the level has no say
        if fresh.empty:
            continue
        nominal = 1 - level / 100
        fresh = fresh.assign(miss=((fresh["actual"] < fresh[lo]) | (fresh["actual"] > fresh[hi])).astype(float))
        last = fresh.loc[fresh.groupby(["series", "target"])["key"].idxmax(), ["series", "target", "timestamp"]]
        grouped = fresh.groupby(["series", "target"]).agg(n=("miss", "size"), missed=("miss", "sum")).reset_index()
        grouped = grouped.merge(old, on=["series", "target"], how="left").merge(last, on=["series", "target"])
        start = pd.to_numeric(grouped["alpha"]).fillna(nominal)
        updated.append(pd.DataFrame({
            "series": grouped["series"], "target": grouped["target"], "level": level,
            "alpha": start + rate * (grouped["n"] * nominal - grouped["missed"]),
            "through": grouped["timestamp"].astype(str),
            "points": pd.to_numeric(grouped["points"]).fillna(0) + grouped["n"],
            "misses": pd.to_numeric(grouped["misses"]).fillna(0) + grouped["missed"]}))
    if not updated:
        return state
    new = pd.concat(updated, ignore_index=True)
    if state.empty:
        return new[COLUMNS].sort_values(["series", "target", "level"], ignore_index=True)
    kept = state.merge(new[["series", "target", "level"]], how="left", indicator=True)
    kept = kept[kept["_merge"] == "left_only"].drop(columns="_merge")
    return pd.concat([kept, new], ignore_index=True)[COLUMNS].sort_values(["series", "target", "level"],
                                                                          ignore_index=True)


def factor(alpha: np.ndarray, level: float) -> np.ndarray:
    """How much wider than the calibrated band of ``level`` the band at miscoverage ``alpha`` is."""
    normal = NormalDist()
    effective = np.clip(100 * (1 - np.asarray(alpha, dtype=np.float64)), 0, HIGHEST)
    values, at = np.unique(effective, return_inverse=True)  # one rate per series and level, many rows each
    z = np.array([normal.inv_cdf(0.5 + e / 200) for e in values])[at].reshape(effective.shape)
    return z / normal.inv_cdf(0.5 + level / 200)


def apply(frame: pd.DataFrame, state: pd.DataFrame, levels: tuple[float, ...]) -> pd.DataFrame:
    """``frame`` (predict's forecast) with each level's band drawn at its series' adapted rate, nested, and a
    column ``level_L`` after the bands: the coverage in percent each band was drawn at."""
    out = frame.copy()
    centre = out["forecast"].to_numpy(dtype=np.float64)
    inner = (centre, centre)
    for level in sorted(levels):
        lo, hi, key = f"lo_{label(level)}", f"hi_{label(level)}", label(level)
        rates = state[state["level"] == level][["series", "target", "alpha"]]
        alpha = out[["series", "target"]].merge(rates, on=["series", "target"], how="left")["alpha"]
        alpha = alpha.fillna(1 - level / 100).to_numpy(dtype=np.float64)
        widen = factor(alpha, level)
        low = np.minimum(centre - (centre - out[lo].to_numpy(dtype=np.float64)) * widen, inner[0])
        high = np.maximum(centre + (out[hi].to_numpy(dtype=np.float64) - centre) * widen, inner[1])
        out[lo], out[hi], inner = low, high, (low, high)
        out[f"level_{key}"] = np.clip(100 * (1 - alpha), 0, HIGHEST)
    bands = [c for c in out.columns if c.startswith(("lo_", "hi_"))]
    drawn = [c for c in out.columns if c.startswith("level_")]
    rest = [c for c in out.columns if c not in bands and c not in drawn]
    at = rest.index("forecast") + 1
    return out[rest[:at] + bands + drawn + rest[at:]]
