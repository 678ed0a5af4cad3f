"""M3 (3,003 series) with seqcast's own CLI, scored as M3/M4 score it: one command per frequency set.

For each frequency in --freq (yearly, quarterly, monthly, other; horizons 6/8/18/8, seasons 1/4/12/1),
reads ../shared/data/m3/<freq>-train.csv (long format unique_id,ds,y,category; see its README),
writes unique_id,ds,y (ds as given: dates, or integer steps for `other`; category dropped so it is
not a covariate) and runs, per model, `seqcast fit` (one global model over the frequency's series)
and `seqcast predict`, then scores the forecasts against <freq>-test.csv:

  sMAPE  mean over series and steps of 200|y - f| / (|y| + |f|)
  MASE   mean |y - f| over the horizon / each series' in-sample seasonal-naive error at lag m (M4)
  OWA    (sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2) / 2

Naive2 (seasonally adjusted repeat-last, M4's definition) is computed here from the training values
with the checkout's own seqcast.naive2, and scored beside repeat-last-value as rows that need no
seqcast; the Naive2 line printed first is the self-check. seqcast's `naive` must equal repeat-last.
Writes --out .csv and .md (default benchmarks/results/m3_<freqs>[_val]), one table per frequency,
with the published M3 sMAPE anchors (Theta, ForecastPro, N-BEATS) beside ours.

    python benchmarks/m3.py                                      # monthly,quarterly; naive,seasonal_naive,nlinear,gru
    python benchmarks/m3.py --freq yearly,quarterly,monthly,other --models nlinear,nbeats
    python benchmarks/m3.py --validation --freq quarterly --models nlinear --fit-args "--max-steps 100"
    python OTHER/benchmarks/m3.py --data ../shared/data/m3 --out OTHER_RESULTS   # a copy placed in another checkout

`--validation` never reads the test file: each series' last H training values are held out and
scored instead (the model trains on the rest), with Naive2 and OWA on that holdout. This is where
defaults are chosen; the test run only reports what the choice did.

Children run exactly as benchmarks/m4.py runs them (its seqcast(), in this script's checkout, with
OMP_NUM_THREADS=1, `--threads 1`, `--seed N`); the CSV, checkpoints and forecasts go to
--work/<freq>[_val]/ (default benchmarks/results/tmp/m3_work, ignored by git). A model whose fit or
predict fails is reported and marked failed; the others still run, and the command exits 1 at the end.
"""

import argparse
import datetime
import json
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]  # m4.py beside this file; seqcast.naive2 of this checkout
import m4  # noqa: E402
from m4 import commit, failed, fmt, seqcast  # noqa: E402
from seqcast.naive2 import naive2, owa  # noqa: E402

if m4.ROOT != ROOT:
    raise SystemExit(f"imported {m4.__file__}, not the m4.py beside this script")
DATA = ROOT.parent / "shared" / "data" / "m3"  # another checkout (a baseline run) passes --data
FREQS = {"yearly": (6, 1), "quarterly": (8, 4), "monthly": (18, 12), "other": (8, 1)}  # horizon, season
MODELS = "naive,seasonal_naive,nlinear,gru"
PUBLISHED = [  # README, M3 sMAPE on the test values
    ("Theta (M3 winner)", {"yearly": 16.90, "quarterly": 8.96, "monthly": 13.85, "other": 4.41}),
    ("ForecastPro", {"yearly": 17.14, "quarterly": 9.77, "monthly": 13.86, "other": 4.60}),
    ("N-BEATS (Oreshkin et al. 2020, ensemble)", {"yearly": 15.93, "quarterly": 8.84, "monthly": 13.11, "other": 4.24}),
]


# ---------------------------------------------------------------- data and scoring

def load(data: Path, freq: str, validation: bool) -> tuple[pd.DataFrame, dict, dict]:
    """-> (training rows unique_id,ds,y; {series: training values}; {series: the H values scored})."""
    horizon = FREQS[freq][0]
    read = lambda name: pd.read_csv(data / f"{freq}-{name}.csv", dtype={"unique_id": str, "ds": str},
                                    usecols=["unique_id", "ds", "y"])
    train = read("train")
    steps = pd.to_numeric(train["ds"]) if freq == "other" else pd.to_datetime(train["ds"])
    if not steps.groupby(train["unique_id"]).is_monotonic_increasing.all():
        raise SystemExit(f"{freq}-train.csv: a series is not in time order")
    if validation:  # the last H training values of each series stand in for the test values
        held = train.groupby("unique_id").cumcount(ascending=False) < horizon
        train, test = train[~held], train[held]
    else:
        test = read("test")
    values = lambda frame: {sid: g.to_numpy(dtype=float) for sid, g in frame.groupby("unique_id", sort=False)["y"]}
    history, holdout = values(train), values(test)
    if set(history) != set(holdout) or any(len(v) != horizon for v in holdout.values()):
        raise SystemExit(f"{freq}: train and test do not hold the same series, each with {horizon} test values")
    lengths = [len(v) for v in history.values()]
    print(f"\nM3 {freq}: {len(history)} series, {sum(lengths):,} training values ({min(lengths)} to {max(lengths)} "
          f"per series), horizon {horizon}, season {FREQS[freq][1]}"
          + (" -- VALIDATION: last horizon of each training series scored" if validation else ""), flush=True)
    return train, history, holdout


def score(test: dict, scale: dict, forecast: dict) -> dict:
    ids = list(test)
    y, f = np.stack([test[s] for s in ids]), np.stack([forecast[s] for s in ids])
    with np.errstate(divide="ignore", invalid="ignore"):
        smape = float(np.mean(200 * np.abs(y - f) / (np.abs(y) + np.abs(f))))
    mase = float(np.mean(np.mean(np.abs(y - f), axis=1) / np.array([scale[s] for s in ids])))
    return {"smape": smape, "mase": mase}


def read_forecast(path: Path, ids: list, horizon: int) -> dict[str, np.ndarray]:
    """seqcast predict's CSV -> {series: (H,) forecast}; checks every series has H finite steps."""
    groups = dict(tuple(pd.read_csv(path, dtype={"series": str}).sort_values(["series", "step"]).groupby("series")))
    missing = [s for s in ids if s not in groups]
    if missing:
        raise ValueError(f"{path}: no forecast for {len(missing)} series, e.g. {missing[:3]}")
    forecast = {s: groups[s]["forecast"].to_numpy(dtype=float) for s in ids}
    bad = [s for s, f in forecast.items() if len(f) != horizon or not np.isfinite(f).all()]
    if bad:
        raise ValueError(f"{path}: series without {horizon} finite steps, e.g. {bad[:3]}")
    return forecast


# ---------------------------------------------------------------- running seqcast

def run_model(model: str, train_csv: Path, horizon: int, fit_args: list[str], seed: int,
              test: dict, scale: dict) -> tuple[dict, dict | None]:
    row = {"model": model, "status": "ok", "fit_args": shlex.join(fit_args), "seed": seed}
    checkpoint, forecast_csv = train_csv.with_name(f"{model}.ckpt"), train_csv.with_name(f"{model}.forecast.csv")
    done, row["fit_s"], command = seqcast(
        "fit", str(train_csv), "--model", model, "--horizon", str(horizon), "--id-col", "unique_id",
        "--time-col", "ds", "--target", "y", "--output", str(checkpoint), "--force", "--threads", "1",
        "--seed", str(seed), "--json", *fit_args)
    if done.returncode:
        return row | {"status": failed(model, "fit", done, command)}, None
    notes = [line.strip() for line in done.stderr.splitlines() if line.strip().lower().startswith(("note", "warn"))]
    try:
        summary = json.loads(done.stdout)
        row |= {k: summary.get(k) for k in ("lookback", "steps", "val_mse_scaled")}
        row["seqcast_freq"] = summary.get("freq")  # "freq" names the M3 frequency here
    except json.JSONDecodeError:
        notes.append("fit --json printed no JSON document")
    forecast_csv.unlink(missing_ok=True)
    done, row["predict_s"], command = seqcast("predict", str(checkpoint), str(train_csv), "--output",
                                              str(forecast_csv), "--threads", "1")
    notes += [line.strip() for line in done.stderr.splitlines() if line.strip().lower().startswith(("note", "warn"))]
    row["notes"] = " | ".join(dict.fromkeys(notes))
    if row["notes"]:
        print(f"  {model}: seqcast said: {row['notes']}", flush=True)
    if done.returncode:
        return row | {"status": failed(model, "predict", done, command)}, None
    try:
        forecast = read_forecast(forecast_csv, list(test), horizon)
    except ValueError as error:
        print(f"\nFAILED: {model}: {error}", file=sys.stderr, flush=True)
        return row | {"status": f"failed: forecast file ({error})"}, None
    return row | score(test, scale, forecast), forecast


def run_frequency(freq: str, args: argparse.Namespace, models: list[str], fit_args: list[str], save) -> list[dict]:
    """Scores the script's references and each model on one frequency; ``save(rows)`` after each model."""
    horizon, season = FREQS[freq]
    train, history, test = load(Path(args.data), freq, args.validation)
    scale = {s: float(np.mean(np.abs(v[season:] - v[:-season]))) for s, v in history.items()}  # M4's MASE scale
    if min(scale.values()) <= 0:
        raise SystemExit(f"{freq}: a training series without seasonal change: the MASE scale is zero")
    last = {s: np.full(horizon, v[-1]) for s, v in history.items()}
    reference = score(test, scale, {s: naive2(v[:, None], horizon, season)[:, 0] for s, v in history.items()})
    print(f"self-check: Naive2 (script, seqcast.naive2, m={season}) on the {'holdout' if args.validation else 'test'}"
          f" values: sMAPE {reference['smape']:.3f} MASE {reference['mase']:.3f}", flush=True)
    with_owa = lambda row: row | ({"owa": owa(row["smape"], row["mase"], reference["smape"], reference["mase"])}
                                  if "smape" in row else {})
    tag = {"freq": freq, "validation": args.validation}
    rows = [tag | with_owa({"model": "Naive2 (script)", "status": "reference"} | reference),
            tag | with_owa({"model": "repeat-last (script)", "status": "reference"} | score(test, scale, last))]

    work = Path(args.work).resolve() / (freq + ("_val" if args.validation else ""))
    work.mkdir(parents=True, exist_ok=True)
    train_csv = work / f"{freq}-train.csv"
    train.to_csv(train_csv, index=False)
    for model in models:
        row, forecast = run_model(model, train_csv, horizon, fit_args, args.seed, test, scale)
        row = with_owa(row)
        if model == "naive" and forecast is not None:  # seqcast's naive must be the script's repeat-last
            diff = max(float(np.max(np.abs(forecast[s] - last[s]))) for s in test)
            row["vs_repeat_last"] = diff
            if diff > 1e-6 * max(1.0, max(float(np.max(np.abs(v))) for v in last.values())):
                row["status"] = "MISMATCH vs repeat-last"
            print(f"check: seqcast naive vs repeat-last: largest forecast difference {diff:.3g} {row['status']}")
        rows.append(tag | row)
        save(rows)
        print(f"{model:<22} " + (f"sMAPE {row['smape']:.3f} MASE {row['mase']:.3f} OWA {row['owa']:.3f} "
                                 f"fit {row['fit_s']:.1f}s predict {row['predict_s']:.1f}s lookback "
                                 f"{row.get('lookback')} steps {row.get('steps')} " if "smape" in row else "")
              + row["status"], flush=True)
    return rows


# ---------------------------------------------------------------- tables

def write(rows: list[dict], out: Path, command_line: str, started: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    frame.to_csv(out.with_name(out.name + ".csv"), index=False)
    validation = bool(frame["validation"].any())
    lines = ["# M3: seqcast vs Naive2 and the published M3 results (sMAPE, MASE at lag m, OWA vs Naive2)", "",
             f"Command: `{command_line}`  ", f"Date: {started}; commit {commit()}; OMP_NUM_THREADS=1, --threads 1.", ""]
    if validation:
        lines += ["VALIDATION: each series' last horizon of training values scored (the test file is not read); "
                  "Naive2 and OWA on that holdout; the published rows are test figures, not comparable.", ""]
    for freq, group in frame.groupby("freq", sort=False):
        horizon, season = FREQS[freq]
        lines += [f"## {freq} (horizon {horizon}, m = {season})", "",
                  "| model | sMAPE | MASE | OWA | fit s | predict s | lookback | steps | fit args | status |",
                  "|---" * 10 + "|"]
        for r in group.sort_values("owa", na_position="last").to_dict("records"):
            status = r["status"] + (f" (max diff vs repeat-last {r['vs_repeat_last']:.3g})"
                                    if not pd.isna(r.get("vs_repeat_last", float("nan"))) else "")
            cells = [fmt(r.get("smape")), fmt(r.get("mase")), fmt(r.get("owa")), fmt(r.get("fit_s"), 1),
                     fmt(r.get("predict_s"), 1)]
            cells += ["" if pd.isna(r.get(k, float("nan"))) else str(int(r[k])) for k in ("lookback", "steps")]
            cells += [f"`{r['fit_args']}`" if isinstance(r.get("fit_args"), str) and r["fit_args"] else "", status]
            lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
        lines += [f"| *published: {name}* | {values[freq]:.2f} | | | | | | | | test sMAPE |"
                  for name, values in PUBLISHED]
        notes = [f"- {r['model']}: {r['notes']}" for r in group.to_dict("records")
                 if isinstance(r.get("notes"), str) and r["notes"]]
        lines += ["", "seqcast's notes:", "", *notes] if notes else []
        lines.append("")
    lines += ["## Published M3 sMAPE (test)", "", "| method | " + " | ".join(FREQS) + " |", "|---" * 5 + "|"]
    lines += [f"| {name} | " + " | ".join(f"{values[f]:.2f}" for f in FREQS) + " |" for name, values in PUBLISHED]
    out.with_name(out.name + ".md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(l for l in __doc__.splitlines() if l.startswith("    ")))
    parser.add_argument("--freq", default="monthly,quarterly", help=f"comma-separated among {', '.join(FREQS)}")
    parser.add_argument("--models", default=MODELS, help=f"comma-separated seqcast models (default {MODELS})")
    parser.add_argument("--fit-args", default="", help='more `seqcast fit` flags, e.g. "--max-steps 100"')
    parser.add_argument("--seed", type=int, default=0, help="passed to seqcast fit (default 0)")
    parser.add_argument("--validation", action="store_true",
                        help="score each series' last H training values instead of the test file")
    parser.add_argument("--data", default=str(DATA), help=f"the M3 folder (default {DATA})")
    parser.add_argument("--work", default=str(ROOT / "benchmarks" / "results" / "tmp" / "m3_work"),
                        help="folder for the CSVs, checkpoints and forecasts (a subfolder per frequency)")
    parser.add_argument("--out", default="", help="PREFIX: writes PREFIX.csv and PREFIX.md "
                                                  "(default benchmarks/results/m3_<freqs>[_val])")
    args = parser.parse_args()
    freqs = [f.strip() for f in args.freq.split(",") if f.strip()]
    unknown = [f for f in freqs if f not in FREQS]
    if unknown or not freqs:
        parser.error(f"--freq: unknown {unknown}; choose among {', '.join(FREQS)}")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    out = Path(args.out or ROOT / "benchmarks" / "results" /
               ("m3_" + "_".join(freqs) + ("_val" if args.validation else ""))).resolve()
    command_line = shlex.join(["python", *sys.argv])
    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")

    rows = []
    for freq in freqs:
        done = list(rows)  # a stopped run keeps the tables written so far
        rows += run_frequency(freq, args, models, shlex.split(args.fit_args),
                              lambda current: write(done + current, out, command_line, started))
        write(rows, out, command_line, started)
    print(f"\nwrote {out}.csv and {out}.md")
    bad = [f"{r['freq']}/{r['model']}" for r in rows if r["status"] not in ("ok", "reference")]
    if bad:
        raise SystemExit(f"not ok: {', '.join(bad)} (see above)")


if __name__ == "__main__":
    main()
