"""seqcast monitor and predict --adapt on replays of real series (issue 32).

    python benchmarks/monitor.py                      # every part below (about 15 minutes on one core)
    python benchmarks/monitor.py --parts ett,speed

Parts:
  ett    ETTh2 (OT, hourly), the ETT protocol's split: a model fit on the training and validation months
         (8,640 + 2,880 rows, `--level 80,95`), then a nightly replay over the test months: each night
         the history grows by 24 hours, `predict --record` forecasts the next 24 (static intervals, and in
         a second record `--adapt`), and `monitor` scores the record against the same file. Once as the
         data are ("real"), and once with a level shift injected into the actuals from day SHIFT_DAY on
         ("shifted": every value after it raised by SHIFT_STD standard deviations of the training
         rows), and once with a drift ("drifting": from day SHIFT_DAY the values climb SHIFT_STD standard
         deviations a day for RAMP_DAYS days, then stay there). Reports, per replay: the night monitor first flags drift (and what), against the nights
         the binomial test needs at the nominal level for a forecast that misses every point; and the
         80 % and 95 % coverage of the static and the adapted intervals over the nights after the shift.
  m4     M4 Weekly (359 series): a model fit on each series less its last 33 weeks, then 20 weekly runs
         (`predict --record`, `monitor` after each). Unshifted: the share of monitor checks that flag
         anything (the false-alarm rate) and the series flagged. Shifted: every tenth series raised by
         M4_SHIFT of its level from week M4_SHIFT_WEEK on: the week each is first flagged, and the
         unshifted series flagged.
  speed  `seqcast monitor` (the CLI, a new process each time) over a record of 10 runs x 1,000 series
         (10,000 recorded forecasts of 24 steps, two interval levels): median of 3 runs.

Results: benchmarks/results/monitor.json and monitor.md. Everything runs in temporary folders through
seqcast's library calls (runs.forecast.predict_file, runs.evaluate.monitor_file), the same calls the
commands make, except the timed part, which runs the command.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
ETT = ROOT.parent / "shared" / "data" / "ett" / "ETTh2.csv"
TRAIN, VAL, TEST = 8640, 2880, 2880
SHIFT_DAY = 30  # of the ETT replay
SHIFT_STD = 1.0
RAMP_DAYS = 10  # of the drifting ETT replay
M4_WEEKS, M4_SHIFT_WEEK, M4_SHIFT = 20, 8, 0.2
MODEL = ["--model", "nlinear"]


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "seqcast", *args], capture_output=True, text=True, env=env)
    if check and done.returncode not in (0, 3):
        raise SystemExit(f"seqcast {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done


def _predict(ckpt: Path, data: Path, record: Path, adapt: bool) -> None:
    from seqcast.runs import Quiet
    from seqcast.runs.forecast import PredictRequest, predict_file

    predict_file(PredictRequest(checkpoint=ckpt, data=str(data), record=record, adapt=adapt), Quiet())


def _monitor(record: Path, actuals: Path, **options) -> dict:
    from seqcast.runs import Quiet
    from seqcast.runs.evaluate import MonitorRequest, monitor_file

    return monitor_file(MonitorRequest(record=record, actuals=str(actuals), **options), Quiet())


def needed_forecasts(level: float, alpha: float = 0.01, tested: int = 1) -> int:
    """The fewest forecasts, each missing every point, the binomial test flags at ``level``."""
    return math.ceil(math.log(alpha / tested / 2) / math.log(1 - level / 100))


def _coverage(record: Path, actuals: pd.DataFrame, first_origin: pd.Timestamp | int) -> dict:
    """Coverage of every recorded band, over the points of runs whose origin is at or after ``first_origin``."""
    rows = pd.concat([pd.read_csv(p) for p in sorted((record / "forecasts").glob("*.csv"))])
    rows = rows[pd.to_datetime(rows["origin"]) >= first_origin]
    rows["timestamp"] = pd.to_datetime(rows["timestamp"])
    joined = rows.merge(actuals, on="timestamp")
    out = {"points": len(joined)}
    for level in ("80", "95"):
        out[f"coverage_{level}"] = float(((joined["actual"] >= joined[f"lo_{level}"]) &
                                          (joined["actual"] <= joined[f"hi_{level}"])).mean())
    return out


def ett_part(work: Path) -> dict:
    results = {}
    for dataset, names in (("ETTh2", ("real", "shifted", "drifting")), ("ETTh1", ("real",))):
        frame = pd.read_csv(ETT.with_name(f"{dataset}.csv"))[["date", "OT"]]
        fit_csv = work / "ett_fit.csv"
        frame.iloc[: TRAIN + VAL].to_csv(fit_csv, index=False)
        ckpt = work / f"{dataset}.ckpt"
        started = time.perf_counter()
        _cli("fit", str(fit_csv), *MODEL, "--level", "80,95", "--split", f"{TRAIN},{VAL}", "--seed", "0",
             "--output", str(ckpt), "--force", "-q")
        results[f"{dataset}_fit_seconds"] = time.perf_counter() - started
        std = float(frame["OT"].iloc[:TRAIN].std())
        days = TEST // 24
        for name in names:
            data = frame.copy()
            shift_at = TRAIN + VAL + 24 * SHIFT_DAY
            if name == "shifted":
                data.loc[shift_at:, "OT"] += SHIFT_STD * std
            if name == "drifting":  # climbing SHIFT_STD standard deviations a day for RAMP_DAYS days, then level
                hours = np.clip(np.arange(len(data)) - shift_at, 0, 24 * RAMP_DAYS)
                data["OT"] += SHIFT_STD * std * hours / 24
            static, adapted = work / f"{dataset}_{name}_static", work / f"{dataset}_{name}_adapt"
            flags, watched = [], []
            for day in range(days):
                history = work / f"ett_{name}_now.csv"
                data.iloc[: TRAIN + VAL + 24 * day].to_csv(history, index=False)
                _predict(ckpt, history, static, adapt=False)
                _predict(ckpt, history, adapted, adapt=True)
                report = _monitor(static, history)
                flags.append(report["drift"])
                watched.append(report["watch"])
            actuals = data.assign(timestamp=pd.to_datetime(data["date"]), actual=data["OT"])[["timestamp", "actual"]]
            start = SHIFT_DAY if name != "real" else 0
            origin = pd.Timestamp(data["date"].iloc[TRAIN + VAL + 24 * start - 1])
            flagged = [d for d, found in enumerate(flags) if found]
            first_after = next((d for d in flagged if d >= start), None)
            key = f"{dataset} {name}"
            results[key] = {
                "nights": days, "nights_flagged": len(flagged), "first_flag_night": flagged[0] if flagged else None,
                "first_flag_after_shift": None if first_after is None or name == "real" else first_after - start,
                "first_flag_lines": flags[first_after][:3] if first_after is not None else [],
                "nights_with_watch": sum(bool(w) for w in watched),
                "static": _coverage(static, actuals, origin), "adapted": _coverage(adapted, actuals, origin)}
            print(f"ett {key}: {json.dumps(results[key])}", flush=True)
    results["needed_nights"] = {level: needed_forecasts(level) for level in (80, 95)}
    return results


def m4_part(work: Path) -> dict:
    from m4 import load_panel, write_long

    train, test = load_panel()
    full = {sid: np.concatenate([train[sid], test[sid]]) for sid in train}
    ids = list(full)
    shifted_ids = set(ids[::10])
    results = {"series": len(ids), "shifted_series": len(shifted_ids)}

    def write(panel: dict[str, np.ndarray], cut: int, path: Path) -> None:  # each series less its last ``cut``
        write_long({sid: values[: len(values) - cut] for sid, values in panel.items()}, path)

    back = M4_WEEKS + 13
    fit_csv = work / "m4_fit.csv"
    write(full, back, fit_csv)
    ckpt = work / "m4.ckpt"
    started = time.perf_counter()
    _cli("fit", str(fit_csv), *MODEL, "--id-col", "unique_id", "--horizon", "13", "--level", "80,95", "--seed", "0",
         "--output", str(ckpt), "--force", "-q")
    results["fit_seconds"] = time.perf_counter() - started
    shifted = {}
    for sid, values in full.items():
        values = values.copy()
        if sid in shifted_ids:
            cut = len(values) - back + M4_SHIFT_WEEK
            values[cut:] += M4_SHIFT * float(np.mean(values[cut - 52 : cut]))
        shifted[sid] = values
    for name, panel in (("unshifted", full), ("shifted", shifted)):
        record = work / f"m4_{name}"
        checks = []
        for week in range(M4_WEEKS):
            history = work / f"m4_{name}_now.csv"
            write(panel, back - week, history)
            _predict(ckpt, history, record, adapt=False)
            report = _monitor(record, history)
            checks.append({"week": week, "drift": report["drift"], "watch": report["watch"]})
        flagged_checks = [c for c in checks if c["drift"]]
        first, kinds = {}, {}
        for check in checks:
            for tier in ("drift", "watch"):
                for line in check[tier]:
                    sid = line.split("'")[1] if line.startswith("series") else "overall"
                    first.setdefault(sid, check["week"])
                    kind = f"{tier} {line.split(': ')[1].split(' ')[0]}"  # coverage, error or stale
                    kinds[kind] = kinds.get(kind, 0) + 1
        entry = {"checks": len(checks), "checks_flagged": len(flagged_checks),
                 "checks_with_watch": sum(bool(c["watch"]) for c in checks), "findings_by_kind": kinds,
                 "false_alarm_rate": None if name == "shifted" else len(flagged_checks) / len(checks),
                 "series_flagged": sorted(s for s in first if s != "overall"), "overall_flagged": "overall" in first}
        if name == "shifted":
            caught = {sid: first[sid] - M4_SHIFT_WEEK for sid in shifted_ids if sid in first}
            entry.update({"shifted_caught": len(caught), "weeks_to_flag": sorted(caught.values()),
                          "median_weeks_to_flag": statistics.median(caught.values()) if caught else None,
                          "unshifted_flagged": sorted(s for s in first if s not in shifted_ids and s != "overall")})
        entry["example_lines"] = (flagged_checks[-1]["drift"][:3] if flagged_checks else []) + checks[-1]["watch"][:3]
        results[name] = entry
        print(f"m4 {name}: {json.dumps({k: v for k, v in entry.items() if k != 'series_flagged'})}", flush=True)
    results["needed_forecasts_80_bonferroni"] = needed_forecasts(80, tested=len(ids))
    return results


def speed_part(work: Path) -> dict:
    """A record of 10 runs x 1,000 series of 24 hourly steps, written as predict writes one, and the command
    timed over it."""
    rng = np.random.default_rng(0)
    series, runs, horizon, hours = 1000, 10, 24, 24 * 30
    times = pd.date_range("2025-01-01", periods=hours + runs * horizon, freq="h")
    level = rng.uniform(50, 150, series)
    values = level[:, None] + 10 * np.sin(np.arange(len(times)) * 2 * np.pi / 24)[None, :] + rng.normal(0, 2, (series, len(times)))
    ids = np.array([f"s{i:04d}" for i in range(series)])
    actuals = work / "speed_actuals.csv"
    pd.DataFrame({"id": np.repeat(ids, len(times)), "ds": np.tile(times.strftime("%Y-%m-%d %H:%M:%S"), series),
                  "y": values.ravel()}).to_csv(actuals, index=False)
    record = work / "speed_record"
    (record / "forecasts").mkdir(parents=True)
    reading = {"time_col": "ds", "target": ["y"], "id_col": "id", "freq": "h", "fill": "none", "decimal": ".",
               "dayfirst": None, "date_format": None, "past_cols": [], "future_cols": [], "static_cols": [],
               "calendar": "none", "min_length": 0, "wide": False}
    backtest = {"windows": 2000, "season": 24, "mase": 1.0, "smape": 3.0, "bias": 0.0, "coverage": [0.8, 0.95],
                "series_mase": {sid: 1.0 for sid in ids}}
    (record / "checkpoints").mkdir()
    (record / "checkpoints" / f"{'0' * 64}.json").write_text(json.dumps(
        {"checkpoint": "m.ckpt", "reading": reading, "backtest": backtest, "backtest_levels": [80.0, 95.0]}))
    lines = []
    for run in range(1, runs + 1):
        origin_at = hours + (run - 1) * horizon - 1
        steps = np.arange(1, horizon + 1)
        forecast = values[:, origin_at + steps] + rng.normal(0, 2, (series, horizon))
        frame = pd.DataFrame({
            "run": run, "series": np.repeat(ids, horizon),
            "origin": times[origin_at].strftime("%Y-%m-%d %H:%M:%S"),
            "timestamp": np.tile(times[origin_at + steps].strftime("%Y-%m-%d %H:%M:%S"), series),
            "step": np.tile(steps, series), "model": "nlinear", "target": "y", "forecast": forecast.ravel()})
        for level, width in (("80", 2.6), ("95", 4.0)):
            frame[f"lo_{level}"], frame[f"hi_{level}"] = frame["forecast"] - width, frame["forecast"] + width
        name = f"forecasts/{run:06d}.csv"
        frame.to_csv(record / name, index=False)
        lines.append(json.dumps({"run": run, "file": name, "time": "2025-02-01T00:00:00+00:00", "checkpoint": "m.ckpt",
                                 "sha256": "0" * 64, "parent": None, "model": "nlinear", "data": str(actuals),
                                 "series": series, "targets": ["y"], "horizon": horizon, "levels": [80.0, 95.0],
                                 "freq": "h", "integer_time": False, "season": 24, "adapt": None,
                                 "rows": len(frame), "first": str(times[origin_at + 1]), "last": str(times[origin_at + horizon])}))
    (record / "index.jsonl").write_text("\n".join(lines) + "\n")
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        done = _cli("monitor", str(record), str(actuals), "--json")
        seconds.append(time.perf_counter() - started)
    report = json.loads(done.stdout)
    result = {"series": series, "runs": runs, "forecasts": series * runs, "points": report["overall"]["points"],
              "seconds": seconds, "median_seconds": statistics.median(seconds), "exit": done.returncode}
    print(f"speed: {json.dumps(result)}", flush=True)
    return result


def write_markdown(results: dict, path: Path) -> None:
    lines = ["# seqcast monitor and predict --adapt (benchmarks/monitor.py)", ""]
    if "ett" in results:
        ett = results["ett"]
        lines += ["## ETT nightly replays (nlinear, H=24, fit on the protocol's training and validation months)", "",
                  "| replay | nights | nights flagged | first flag after the shift | static 80 / 95 | adapted 80 / 95 |",
                  "|---|---|---|---|---|---|"]
        for name, r in ett.items():
            if not isinstance(r, dict) or "nights" not in r:
                continue
            lines.append(f"| {name} | {r['nights']} | {r['nights_flagged']} | {r['first_flag_after_shift']} | "
                         f"{r['static']['coverage_80']:.3f} / {r['static']['coverage_95']:.3f} | "
                         f"{r['adapted']['coverage_80']:.3f} / {r['adapted']['coverage_95']:.3f} |")
        lines += ["", f"Nights the binomial test needs, each forecast missing every point: {ett['needed_nights']}.", ""]
    if "m4" in results:
        m4 = results["m4"]
        lines += ["## M4 Weekly replay (359 series, 20 weekly runs, nlinear H=13)", "",
                  f"- unshifted: {m4['unshifted']['checks_flagged']} of {m4['unshifted']['checks']} checks found drift "
                  f"(false-alarm rate {m4['unshifted']['false_alarm_rate']:.3f}); {m4['unshifted']['checks_with_watch']} "
                  f"had watch lines; series named: {len(m4['unshifted']['series_flagged'])}; "
                  f"findings {m4['unshifted']['findings_by_kind']}",
                  f"- shifted ({m4['shifted_series']} series +{M4_SHIFT:.0%} of their level from week {M4_SHIFT_WEEK}): "
                  f"{m4['shifted']['shifted_caught']} named (drift or watch), median {m4['shifted']['median_weeks_to_flag']} "
                  f"weeks after the shift; unshifted series named: {len(m4['shifted']['unshifted_flagged'])}; "
                  f"{m4['shifted']['checks_flagged']} checks found drift; findings {m4['shifted']['findings_by_kind']}", ""]
    if "speed" in results:
        s = results["speed"]
        lines += ["## Speed", "", f"`seqcast monitor` over {s['forecasts']:,} recorded forecasts of {s['series']:,} series "
                  f"({s['points']:,} points): median {s['median_seconds']:.2f} s of {', '.join(f'{x:.2f}' for x in s['seconds'])}", ""]
    path.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="ett,m4,speed")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "monitor"))
    parser.add_argument("--keep", help="Work in this folder and keep the records (default: a temporary one).")
    args = parser.parse_args()
    torch_threads = os.environ.setdefault("OMP_NUM_THREADS", "1")
    results = {"threads": torch_threads}
    parts = {"ett": ett_part, "m4": m4_part, "speed": speed_part}
    with (contextlib.nullcontext(args.keep) if args.keep else tempfile.TemporaryDirectory()) as folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for name in args.parts.split(","):
            started = time.perf_counter()
            results[name] = parts[name](Path(folder))
            results[name]["part_seconds"] = time.perf_counter() - started
    out = Path(args.out)
    previous = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").exists() else {}
    results = {**previous, **results}
    out.with_suffix(".json").write_text(json.dumps(results, indent=1, default=str))
    write_markdown(results, out.with_suffix(".md"))
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
