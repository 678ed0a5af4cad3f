"""M4 Weekly with seqcast's own CLI, scored as the M4 competition scored it: one command.

Builds a long-format panel from ../shared/data/m4/Weekly-train.csv (359 series, 80 to 2,597 weeks
each), then for each model runs `seqcast fit` (horizon 13, one global model over all series) and
`seqcast predict`, and scores the 13 forecasts of each series against Weekly-test.csv with the
official measures of ../shared/data/m4/README.md: sMAPE, MASE (m = 1: the in-sample one-step naive
error as scale) and OWA against Naive2 (sMAPE 9.161, MASE 2.777). When predict writes intervals
(lo_95/hi_95, ... from `fit --level`), also per level: coverage, ACD = |coverage - level/100|, mean
width and MSIS (same m = 1 scale). Writes benchmarks/results/m4.csv and m4.md, with the published
M4 rows beside ours. The first step is the self-check: repeat-last-value, built here from the
training values without seqcast, must give sMAPE 9.161 / MASE 2.777 to 3 decimals, or the run stops;
seqcast's `naive` is then checked against it when it is among the models.

    python benchmarks/m4.py --quick                  # naive,seasonal_naive,nlinear,dlinear,gru,nbeats,patchtst
    python benchmarks/m4.py                          # every registered model (`seqcast models --json`)
    python benchmarks/m4.py --models naive,seasonal_naive
    python benchmarks/m4.py --models gru --fit-args "--level 80,95"
    python benchmarks/m4.py --models gru,nbeats --fit-args "--quantiles 0.025,0.975 --level 95" \\
        --out benchmarks/results/m4_intervals
    python benchmarks/m4.py --validation --models nbeats --fit-args "--loss mae"   # choose on validation

`--validation` never reads the test file: each series' last 13 training values are held out and
scored instead (the model trains on the rest), with OWA against repeat-last-value on that holdout.
This is where defaults are chosen; the test run only reports what the choice did.

Dates: M4 gives no timestamps, only values (which is what is scored). Every series here STARTS on
the same Sunday, 1950-01-01, and runs weekly (W-SUN) from there, so the longest (2,597 weeks) ends
in 1999 and no date comes near pandas' limits; series therefore end on different dates.

Each child runs with OMP_NUM_THREADS=1 and `--threads 1` (fit and predict) so timings compare;
`--seed N` is passed to fit. The long CSV, checkpoints and forecasts go to --work (default
benchmarks/results/tmp/m4_work/, ignored by git). A model whose fit or predict exits non-zero is
reported with its stderr and marked failed in the table; the others still run, and the command
exits 1 at the end.
"""

import argparse
import datetime
import json
import math
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "m4"
START = "1950-01-01"  # a Sunday: the first date of every series (W-SUN)
HORIZON = 13
NAIVE2 = {"smape": 9.161, "mase": 2.777}  # README: repeat-last-value = Naive2 for Weekly
VALIDATION = [False]  # set by --validation: OWA is then relative to repeat-last on the holdout
QUICK_MODELS = "naive,seasonal_naive,nlinear,dlinear,gru,nbeats,patchtst"

PUBLISHED = [  # README, M4 "Evaluation and Ranks.xlsx", Weekly: (method, sMAPE, MASE, OWA)
    ("Naive / sNaive / Naive2", 9.161, 2.777, 1.000),
    ("SES", 9.012, 2.685, 0.975),
    ("Theta", 9.093, 2.637, 0.971),
    ("Smyl (ES-RNN, competition winner overall)", 7.817, 2.356, 0.851),
    ("Doornik, Hendry & Castle", 6.728, 2.302, 0.782),
    ("Pawlikowski, Chorowska & Yanchuk", 6.919, 2.158, 0.766),
    ("Petropoulos & Svetunkov", 6.726, 2.133, 0.751),
    ("Darin & Stellwagen (best Weekly OWA)", 6.582, 2.107, 0.739),
]
PUBLISHED_MSIS_95 = [  # README, 95 % intervals, Weekly: (method, MSIS, ACD or None when not given)
    ("Naive", 26.358, None),
    ("Petropoulos & Svetunkov (best)", 16.200, 0.012),
    ("Doornik et al.", 16.469, None),
    ("Smyl", 22.034, None),
]


# ---------------------------------------------------------------- data

def read_wide(path: Path) -> dict[str, np.ndarray]:
    """The M4 wide CSV: series id, then its values in time order; ragged rows end in empty cells."""
    frame = pd.read_csv(path, index_col=0, dtype={0: str})
    return {str(sid): row.dropna().to_numpy(dtype=float) for sid, row in frame.iterrows()}


def load_panel() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    train, test = read_wide(DATA / "Weekly-train.csv"), read_wide(DATA / "Weekly-test.csv")
    if list(train) != list(test):
        raise SystemExit("Weekly-train.csv and Weekly-test.csv do not list the same series in the same order")
    short = [sid for sid, values in test.items() if len(values) != HORIZON]
    if short:
        raise SystemExit(f"test series without {HORIZON} values: {short[:5]}")
    lengths = [len(v) for v in train.values()]
    print(f"M4 Weekly: {len(train)} series, {sum(lengths):,} training values ({min(lengths)} to "
          f"{max(lengths)} per series), horizon {HORIZON}", flush=True)
    return train, test


def write_long(train: dict[str, np.ndarray], path: Path) -> None:
    """unique_id,ds,y with weekly (W-SUN) dates, every series starting on START."""
    longest = max(len(v) for v in train.values())
    dates = pd.date_range(START, periods=longest, freq="W-SUN").strftime("%Y-%m-%d").to_numpy()
    frame = pd.DataFrame({"unique_id": np.repeat(list(train), [len(v) for v in train.values()]),
                          "ds": np.concatenate([dates[:len(v)] for v in train.values()]),
                          "y": np.concatenate(list(train.values()))})
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, float_format="%.10g")
    back = pd.read_csv(path)  # the file must hold the values exactly as scored
    if not np.allclose(back["y"].to_numpy(), frame["y"].to_numpy(), rtol=1e-9, atol=0):
        raise SystemExit(f"{path}: the values written do not read back")


def write_test(test: dict[str, np.ndarray], train: dict[str, np.ndarray], path: Path) -> None:
    """The 13 test values per series, long format, dated after each series' last training week."""
    rows = []
    for sid, values in test.items():
        dates = pd.date_range(START, periods=len(train[sid]) + HORIZON, freq="W-SUN")[-HORIZON:]
        rows += [(sid, d.strftime("%Y-%m-%d"), step + 1, y) for step, (d, y) in enumerate(zip(dates, values))]
    pd.DataFrame(rows, columns=["unique_id", "ds", "step", "y"]).to_csv(path, index=False, float_format="%.10g")


# ---------------------------------------------------------------- scoring

def scales(train: dict[str, np.ndarray]) -> dict[str, float]:
    """MASE/MSIS denominator, m = 1: mean absolute in-sample one-step naive error of each series."""
    return {sid: float(np.mean(np.abs(np.diff(v)))) for sid, v in train.items()}


def score(test: dict[str, np.ndarray], scale: dict[str, float], forecast: dict[str, np.ndarray],
          intervals: dict[str, tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] | None = None) -> dict:
    """The official measures over all series: sMAPE, MASE, OWA; per interval level coverage, ACD,
    width and MSIS. ``intervals`` maps a level label ("95") to (lower, upper), each {series: (13,)}."""
    ids = list(test)
    y = np.stack([test[s] for s in ids])
    f = np.stack([forecast[s] for s in ids])
    d = np.array([scale[s] for s in ids])
    with np.errstate(divide="ignore", invalid="ignore"):
        smape = float(np.mean(200 * np.abs(y - f) / (np.abs(y) + np.abs(f))))
        mase = float(np.mean(np.mean(np.abs(y - f), axis=1) / d))
    result = {"smape": smape, "mase": mase,
              "owa": (smape / NAIVE2["smape"] + mase / NAIVE2["mase"]) / 2}
    for label, (lower, upper) in (intervals or {}).items():
        lo = np.stack([lower[s] for s in ids])
        hi = np.stack([upper[s] for s in ids])
        a = 1 - float(label) / 100
        coverage = float(np.mean((y >= lo) & (y <= hi)))
        penalty = (hi - lo) + (2 / a) * (lo - y) * (y < lo) + (2 / a) * (y - hi) * (y > hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            msis = float(np.mean(np.mean(penalty, axis=1) / d))
        result |= {f"coverage_{label}": coverage, f"acd_{label}": abs(coverage - float(label) / 100),
                   f"width_{label}": float(np.mean(hi - lo)), f"msis_{label}": msis}
    return result


def repeat_last(train: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {sid: np.full(HORIZON, v[-1]) for sid, v in train.items()}


def self_check(train: dict[str, np.ndarray], test: dict[str, np.ndarray], scale: dict[str, float]) -> dict:
    """Repeat-last-value, built here from the training values, must reproduce Naive2 to 3 decimals."""
    result = score(test, scale, repeat_last(train))
    ok = all(round(result[k], 3) == NAIVE2[k] for k in NAIVE2)
    print(f"self-check: repeat-last-value sMAPE {result['smape']:.4f} MASE {result['mase']:.4f} "
          f"(published Naive2 {NAIVE2['smape']:.3f} / {NAIVE2['mase']:.3f}) {'ok' if ok else 'MISMATCH'}", flush=True)
    if not ok:
        raise SystemExit("the official M4 Weekly scoring is not reproduced; stopping")
    return result


def read_forecast(path: Path, test: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """seqcast predict's CSV -> ({series: (13,) forecast}, {level: (lower, upper)}); checks the shape."""
    frame = pd.read_csv(path, dtype={"series": str})
    frame = frame.sort_values(["series", "step"])
    missing = sorted(set(test) - set(frame["series"]))
    if missing:
        raise ValueError(f"{path}: no forecast for {len(missing)} series, e.g. {missing[:3]}")
    counts = frame.groupby("series")["step"].count()
    if (counts != HORIZON).any():
        raise ValueError(f"{path}: series without {HORIZON} steps: {list(counts[counts != HORIZON].index[:3])}")
    if frame[["forecast"]].isna().any().any():
        raise ValueError(f"{path}: empty forecast cells")
    groups = {sid: g for sid, g in frame.groupby("series")}
    forecast = {sid: groups[sid]["forecast"].to_numpy(dtype=float) for sid in test}
    labels = [c[3:] for c in frame.columns if c.startswith("lo_") and f"hi_{c[3:]}" in frame.columns]
    intervals = {label: ({sid: groups[sid][f"lo_{label}"].to_numpy(dtype=float) for sid in test},
                         {sid: groups[sid][f"hi_{label}"].to_numpy(dtype=float) for sid in test})
                 for label in sorted(labels, key=float)}
    return forecast, intervals


# ---------------------------------------------------------------- running seqcast

def seqcast(*arguments: str) -> tuple[subprocess.CompletedProcess, float, list[str]]:
    command = [sys.executable, "-m", "seqcast", *arguments]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=ROOT)
    return done, time.perf_counter() - started, command


def registered_models() -> list[str]:
    done, _, command = seqcast("models", "--json")
    if done.returncode:
        raise SystemExit(f"{shlex.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return [entry["model"] for entry in json.loads(done.stdout)]


def failed(model: str, stage: str, done: subprocess.CompletedProcess, command: list[str]) -> str:
    print(f"\nFAILED: {model}: seqcast {stage} exited {done.returncode}\n  {shlex.join(command)}\n"
          f"--- stderr ---\n{done.stderr.rstrip()[-4000:]}\n--------------", file=sys.stderr, flush=True)
    return f"failed: {stage} exit {done.returncode}"


def run_model(model: str, train_csv: Path, work: Path, fit_args: list[str], seed: int,
              test: dict, scale: dict, naive: dict) -> dict:
    row = {"model": model, "status": "ok", "fit_args": shlex.join(fit_args), "seed": seed}
    checkpoint, forecast_csv = work / f"{model}.ckpt", work / f"{model}.forecast.csv"
    done, row["fit_s"], command = seqcast(
        "fit", str(train_csv), "--model", model, "--horizon", str(HORIZON), "--id-col", "unique_id",
        "--output", str(checkpoint), "--force", "--threads", "1", "--seed", str(seed), "--json", *fit_args)
    if done.returncode:
        return row | {"status": failed(model, "fit", done, command)}
    try:
        summary = json.loads(done.stdout)
        row |= {k: summary.get(k) for k in ("lookback", "parameters", "steps", "epochs", "stopped", "freq", "val_mse_scaled")}
        row["train_s"] = summary.get("seconds")
    except json.JSONDecodeError:
        print(f"note: {model}: fit --json printed no JSON document; fit details left empty", flush=True)
    forecast_csv.unlink(missing_ok=True)
    done, row["predict_s"], command = seqcast("predict", str(checkpoint), str(train_csv), "--output",
                                              str(forecast_csv), "--threads", "1")
    if done.returncode:
        return row | {"status": failed(model, "predict", done, command)}
    try:
        forecast, intervals = read_forecast(forecast_csv, test)
    except ValueError as error:
        print(f"\nFAILED: {model}: {error}", file=sys.stderr, flush=True)
        return row | {"status": f"failed: forecast file ({error})"}
    row |= score(test, scale, forecast, intervals)
    if model == "naive":  # seqcast's naive must be the repeat-last-value of the self-check
        diff = max(float(np.max(np.abs(forecast[s] - naive["forecast"][s]))) for s in forecast)
        row["vs_repeat_last"] = diff
        same = diff <= 1e-6 * max(1.0, max(float(np.max(np.abs(v))) for v in naive["forecast"].values()))
        row["status"] = "ok" if same else "MISMATCH vs repeat-last-value"
        print(f"check: seqcast naive vs repeat-last-value: largest forecast difference {diff:.3g}, sMAPE "
              f"{row['smape'] - naive['smape']:+.2g}, MASE {row['mase'] - naive['mase']:+.2g} "
              f"{'ok' if same else 'MISMATCH'}", flush=True)
    return row


# ---------------------------------------------------------------- tables

def fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def write(rows: list[dict], out: Path, command_line: str, started: str, self_checked: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    frame.to_csv(out.with_name(out.name + ".csv"), index=False)
    labels = sorted({c.split("_", 1)[1] for c in frame.columns if c.startswith("msis_")}, key=float)
    lines = ["# M4 Weekly: seqcast vs published (sMAPE, MASE m=1, OWA vs Naive2; horizon 13, 359 series)", "",
             f"Command: `{command_line}`  ", f"Date: {started}; commit {commit()}; every series dated weekly "
             f"(W-SUN) from {START}; OMP_NUM_THREADS=1, --threads 1.", "",
             (f"VALIDATION: each series' last 13 training values scored (the test file is not read); OWA relative "
              f"to repeat-last-value on them (sMAPE {self_checked['smape']:.4f}, MASE {self_checked['mase']:.4f}); "
              "the published rows below are test figures, not comparable." if VALIDATION[0] else
              f"Self-check (repeat-last-value computed in the script, no seqcast): sMAPE {self_checked['smape']:.4f}, "
              f"MASE {self_checked['mase']:.4f} (published Naive2 {NAIVE2['smape']:.3f} / {NAIVE2['mase']:.3f})."), "",
             "## seqcast", "",
             "| model | sMAPE | MASE | OWA | " + "".join(f"cov {l} | ACD {l} | width {l} | MSIS {l} | " for l in labels)
             + "fit s | predict s | steps | fit args | status |",
             "|---" * (9 + 4 * len(labels)) + "|"]
    order = frame.sort_values("owa", na_position="last") if "owa" in frame else frame
    for r in order.to_dict("records"):
        status = r["status"] + (f" (naive vs repeat-last: max diff {r['vs_repeat_last']:.3g})"
                                if not pd.isna(r.get("vs_repeat_last", float("nan"))) else "")
        cells = [fmt(r.get("smape")), fmt(r.get("mase")), fmt(r.get("owa"))]
        for l in labels:
            cells += [fmt(r.get(f"coverage_{l}")), fmt(r.get(f"acd_{l}")), fmt(r.get(f"width_{l}"), 1),
                      fmt(r.get(f"msis_{l}"))]
        steps = r.get("steps")
        cells += [fmt(r.get("fit_s"), 1), fmt(r.get("predict_s"), 1),
                  "" if steps is None or pd.isna(steps) else str(int(steps)),
                  f"`{r['fit_args']}`" if r["fit_args"] else "", status]
        lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
    lines += ["", "## Published (M4 \"Evaluation and Ranks.xlsx\", Weekly)", "", "| method | sMAPE | MASE | OWA |",
              "|---|---|---|---|"]
    lines += [f"| {m} | {s:.3f} | {a:.3f} | {o:.3f} |" for m, s, a, o in PUBLISHED]
    lines += ["", "95 % prediction intervals, Weekly (MSIS, lower is better; ACD = |coverage - 0.95|):", "",
              "| method | MSIS 95 | ACD 95 |", "|---|---|---|"]
    lines += [f"| {m} | {v:.3f} | {'' if a is None else f'{a:.3f}'} |" for m, v, a in PUBLISHED_MSIS_95]
    if "95" in labels:
        for r in frame.dropna(subset=["msis_95"]).sort_values("msis_95").to_dict("records"):
            lines.append(f"| *seqcast {r['model']}* | {r['msis_95']:.3f} | {r['acd_95']:.3f} |")
    lines.append("")
    out.with_name(out.name + ".md").write_text("\n".join(lines))


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "seqcast"], cwd=ROOT, capture_output=True, text=True)
    return (done.stdout.strip() or "unknown") + (" (seqcast/ has uncommitted changes)" if dirty.stdout.strip() else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(l for l in __doc__.splitlines() if l.startswith("    ")))
    parser.add_argument("--quick", action="store_true", help=f"models {QUICK_MODELS}")
    parser.add_argument("--models", default="", help="comma-separated; default every registered model")
    parser.add_argument("--fit-args", default="", help='more `seqcast fit` flags, e.g. "--level 95"')
    parser.add_argument("--seed", type=int, default=0, help="passed to seqcast fit (default 0)")
    parser.add_argument("--validation", action="store_true",
                        help="score each series' last 13 training values instead of the test file")
    parser.add_argument("--work", default=str(ROOT / "benchmarks" / "results" / "tmp" / "m4_work"),
                        help="folder for the long CSV, checkpoints and forecasts")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "m4"),
                        help="PREFIX: writes PREFIX.csv and PREFIX.md")
    args = parser.parse_args()
    command_line = shlex.join(["python", *sys.argv])
    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")

    train, test = load_panel()
    if args.validation:  # the last horizon of each training series stands in for the test values
        train, test = {k: v[:-HORIZON] for k, v in train.items()}, {k: v[-HORIZON:] for k, v in train.items()}
    scale = scales(train)
    if min(scale.values()) <= 0:
        raise SystemExit("a constant training series: the MASE scale is zero")
    if args.validation:
        VALIDATION[0] = True
        reference = score(test, scale, repeat_last(train))
        NAIVE2.update({k: reference[k] for k in NAIVE2})  # OWA relative to repeat-last on the holdout
        print(f"validation: the last {HORIZON} training values of each series; repeat-last sMAPE "
              f"{reference['smape']:.3f} MASE {reference['mase']:.3f} (OWA 1 on this holdout)", flush=True)
        naive = reference
    else:
        naive = self_check(train, test, scale)
    naive["forecast"] = repeat_last(train)

    work, out = Path(args.work).resolve(), Path(args.out).resolve()
    train_csv = work / "Weekly-train-long.csv"
    write_long(train, train_csv)
    write_test(test, train, work / "Weekly-test-long.csv")
    print(f"wrote {train_csv} and {work / 'Weekly-test-long.csv'}", flush=True)

    models = (QUICK_MODELS if args.quick else args.models).split(",") if (args.quick or args.models) \
        else registered_models()
    fit_args = shlex.split(args.fit_args)
    rows = []
    for model in models:
        row = run_model(model, train_csv, work, fit_args, args.seed, test, scale, naive)
        rows.append(row)
        if "smape" in row:
            extra = "".join(f" cov{l} {row[f'coverage_{l}']:.3f} MSIS{l} {row[f'msis_{l}']:.3f}"
                            for l in sorted({k[9:] for k in row if k.startswith("coverage_")}, key=float))
            print(f"{model:<22} sMAPE {row['smape']:.3f} MASE {row['mase']:.3f} OWA {row['owa']:.3f}{extra} "
                  f"fit {row['fit_s']:.1f}s predict {row['predict_s']:.1f}s {row['status']}", flush=True)
        else:
            print(f"{model:<22} {row['status']}", flush=True)
        write(rows, out, command_line, started, naive)  # after every model: a stopped run keeps its rows
    print(f"wrote {out}.csv and {out}.md")
    bad = [r["model"] for r in rows if r["status"] != "ok"]
    if bad:
        raise SystemExit(f"not ok: {', '.join(bad)} (see above)")


if __name__ == "__main__":
    main()
