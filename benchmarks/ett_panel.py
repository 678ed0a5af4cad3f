"""An hourly panel cut from ETT, scored on a holdout the fit never sees: one command.

The seasonal high-frequency panels seqcast is meant for (hundreds of hourly series of a few weeks each, a
daily and a weekly season, forecast two days ahead) have no public copy among the development data; this
builds the closest one from ETT. Each of the 14 columns of ETTh1 and ETTh2 (../shared/data/ett) is cut into
``--chunks`` stretches of ``--rows`` hours taken from its first 12 months only (the ETT protocol's training
months: the validation and test months of the ETT tables are never read), 56 series of 1,008 hours at the
defaults. For each model (and each ``--fit-args`` variant), `seqcast fit` trains one global model on every
series but its last ``--horizon`` hours (48), `seqcast predict` forecasts them, and they are scored:
MASE with the in-sample seasonal naive at lag 24 as scale (M4's hourly definition), sMAPE, and both
relative to seasonal naive on the same holdout (the lower, the better; below 1 beats it).

    python benchmarks/ett_panel.py --models gru,nlinear
    python benchmarks/ett_panel.py --models gru --fit-args "--lookback 96" "--lookback 192" "--lookback 336"

Each child runs with OMP_NUM_THREADS=1 and `--threads 1`; `--seed N` goes to fit. Writes --out .csv and
.md (default benchmarks/results/ett_panel); the panel, checkpoints and forecasts go to --work (default
benchmarks/results/tmp/ett_panel, ignored by git).
"""

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
ETT = ROOT.parent / "shared" / "data" / "ett"
TRAIN_MONTHS_ROWS = 12 * 30 * 24  # the ETT protocol's training part: 8,640 hours
SEASON = 24


def build_panel(rows: int, chunks: int) -> pd.DataFrame:
    """``chunks`` evenly spaced stretches of ``rows`` hours of each ETT column, from the training months."""
    frames = []
    for name in ("ETTh1", "ETTh2"):
        table = pd.read_csv(ETT / f"{name}.csv", parse_dates=["date"]).iloc[:TRAIN_MONTHS_ROWS]
        starts = np.linspace(0, len(table) - rows, chunks).astype(int)
        for column in [c for c in table.columns if c != "date"]:
            for k, start in enumerate(starts):
                part = table.iloc[start:start + rows]
                frames.append(pd.DataFrame({"unique_id": f"{name}_{column}_{k}", "ds": part["date"].to_numpy(),
                                            "y": part[column].to_numpy()}))
    return pd.concat(frames, ignore_index=True)


def score(panel: pd.DataFrame, horizon: int, forecasts: pd.DataFrame | None) -> dict:
    """MASE (seasonal naive scale at lag 24 on each series' training part) and sMAPE of ``forecasts``
    (None: seasonal naive itself), averaged over series."""
    mase, smape = [], []
    for sid, group in panel.groupby("unique_id", sort=False):
        y = group["y"].to_numpy(dtype=float)
        train, test = y[:-horizon], y[-horizon:]
        scale = np.mean(np.abs(train[SEASON:] - train[:-SEASON]))
        if forecasts is None:
            pred = np.resize(train[-SEASON:], horizon)
        else:
            pred = forecasts.loc[forecasts["series"] == sid].sort_values("step")["forecast"].to_numpy(dtype=float)
        mase.append(np.mean(np.abs(test - pred)) / scale)
        smape.append(np.mean(200 * np.abs(test - pred) / np.maximum(np.abs(test) + np.abs(pred), 1e-9)))
    return {"mase": float(np.mean(mase)), "smape": float(np.mean(smape))}


def run(model: str, extra: list[str], train_csv: Path, work: Path, horizon: int, seed: int) -> dict:
    tag = "_".join([model, *[a.strip("-") for a in extra]]).replace("/", "_")
    ckpt, out = work / f"{tag}.ckpt", work / f"{tag}.forecast.csv"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    fit = [sys.executable, "-m", "seqcast", "fit", str(train_csv), "--id-col", "unique_id", "--model", model,
           "--horizon", str(horizon), "--seed", str(seed), "--threads", "1", *extra, "--output", str(ckpt),
           "--force", "--json"]
    began = time.perf_counter()
    done = subprocess.run(fit, capture_output=True, text=True, env=env, cwd=work)
    fit_s = time.perf_counter() - began
    if done.returncode != 0:
        return {"status": f"fit exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}", "fit_s": fit_s}
    summary = json.loads(done.stdout)
    predict = [sys.executable, "-m", "seqcast", "predict", str(ckpt), str(train_csv), "--threads", "1",
               "--output", str(out)]
    done = subprocess.run(predict, capture_output=True, text=True, env=env, cwd=work)
    if done.returncode != 0:
        return {"status": f"predict exit {done.returncode}", "fit_s": fit_s}
    chosen = "; ".join(f"{c['setting']} {c['chosen']}" for c in summary.get("choices", []))
    return {"status": "ok", "fit_s": fit_s, "lookback": summary.get("lookback"), "chosen": chosen,
            "forecasts": pd.read_csv(out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--models", default="seasonal_naive,nlinear,gru")
    parser.add_argument("--fit-args", nargs="*", default=[""], help="one or more variants of extra fit flags")
    parser.add_argument("--rows", type=int, default=1008, help="hours per series (42 days)")
    parser.add_argument("--chunks", type=int, default=4, help="stretches cut from each ETT column")
    parser.add_argument("--horizon", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default=str(ROOT / "benchmarks" / "results" / "tmp" / "ett_panel"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ett_panel"))
    args = parser.parse_args()

    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    panel = build_panel(args.rows, args.chunks)
    train = panel[panel.groupby("unique_id", sort=False).cumcount(ascending=False) >= args.horizon]
    train_csv = work / "train.csv"
    train.to_csv(train_csv, index=False)
    reference = score(panel, args.horizon, None)
    print(f"ETT hourly panel: {panel['unique_id'].nunique()} series x {args.rows} hours, horizon {args.horizon}; "
          f"seasonal naive MASE {reference['mase']:.4f} sMAPE {reference['smape']:.3f}", flush=True)
    rows = []
    for model in args.models.split(","):
        for variant in args.fit_args:
            extra = shlex.split(variant)
            result = run(model, extra, train_csv, work, args.horizon, args.seed)
            row = {"model": model, "fit_args": variant, "status": result["status"], "fit_s": round(result["fit_s"], 1),
                   "lookback": result.get("lookback"), "chosen": result.get("chosen", "")}
            if "forecasts" in result:
                got = score(panel, args.horizon, result["forecasts"])
                row.update(mase=round(got["mase"], 4), smape=round(got["smape"], 3),
                           mase_rel=round(got["mase"] / reference["mase"], 4),
                           smape_rel=round(got["smape"] / reference["smape"], 4))
            rows.append(row)
            print(f"{model:<16} {variant:<22} {row.get('mase', '-')!s:>8} {row.get('mase_rel', '-')!s:>8} "
                  f"fit {row['fit_s']:.0f}s {row['status']} {row['chosen']}", flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(f"{args.out}.csv", index=False)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    command = "python benchmarks/ett_panel.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    lines = [f"# ETT hourly panel: {panel['unique_id'].nunique()} series x {args.rows} hours, horizon {args.horizon}", "",
             f"Command: `{command}`  ",
             f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; commit {commit}; "
             "OMP_NUM_THREADS=1, --threads 1.", "",
             f"Seasonal naive (lag 24) on the holdout: MASE {reference['mase']:.4f}, sMAPE {reference['smape']:.3f}. "
             "`rel`: the model's figure over seasonal naive's.", "",
             "| model | fit args | MASE | MASE rel | sMAPE | sMAPE rel | lookback | fit s | chosen | status |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['model']} | {row['fit_args']} | {row.get('mase', '')} | {row.get('mase_rel', '')} | "
                     f"{row.get('smape', '')} | {row.get('smape_rel', '')} | {row.get('lookback') or ''} | {row['fit_s']} | "
                     f"{row['chosen']} | {row['status']} |")
    Path(f"{args.out}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}.csv and {args.out}.md")
    if any(r["status"] != "ok" for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
