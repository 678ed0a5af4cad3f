"""The published ETT tables, reproduced with seqcast's own CLI: one command.

Runs `seqcast compare --split 8640,2880,2880` (the protocol of ../shared/docs/BENCHMARKS.md:
train-only z-scoring, stride-1 test windows, MSE/MAE on scaled values, all windows) on ETTh1 and
ETTh2, univariate OT, for each horizon and model, and writes benchmarks/results/ett.csv and ett.md
with the published numbers beside ours. The first step is the self-check: repeat-last-value must
reproduce BENCHMARKS.md to 4 decimals, or the run stops.

    python benchmarks/ett.py --quick                 # a few models at H=96, minutes
    python benchmarks/ett.py                         # every model, H in 24 48 96 168 336 720 (hours)
    python benchmarks/ett.py --models nlinear,dlinear --horizons 96 --datasets ETTh1,ETTh2
    python benchmarks/ett.py --multivariate --horizons 96,336   # all 7 columns as targets
    python benchmarks/ett.py --merge A.csv B.csv --out benchmarks/results/ett   # one table from runs
                                                 # done in parts (a later file's rows replace earlier ones)

Lookback: 336 for the linear, convolutional, N-BEATS and PatchTST models (as their papers) and auto (a
portfolio mostly of those), 96 for the recurrent and attention models (as the Transformer rows of the
tables); `--lookback N` for all.

Every fit gets `--transform none --allow-negative`: the protocol scores each model's own forecast of
the values, and ETTh2's training part never goes below 0 while its test part does, so seqcast's
default floor at zero (for targets never negative in training) would clip the test forecasts; the
naive self-check caught it.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA_DIRS = [ROOT.parent / "shared" / "data" / "ett", ROOT / "sample_data"]
SPLIT = "8640,2880,2880"
LONG_LOOKBACK = {"nlinear", "dlinear", "patchtst", "nbeats", "nbeats_interpretable", "tcn", "cnn", "auto"}

NAIVE = {  # BENCHMARKS.md section 1, repeat-last-value on OT, all windows: (MSE, MAE)
    "ETTh1": {24: (0.03431, 0.13941), 48: (0.05014, 0.17109), 96: (0.06926, 0.20328), 168: (0.08718, 0.22884),
              192: (0.09196, 0.23568), 336: (0.11327, 0.26520), 720: (0.12918, 0.28341)},
    "ETTh2": {24: (0.22936, 0.35728), 48: (0.25875, 0.38967), 96: (0.29548, 0.42325), 168: (0.32858, 0.45423),
              192: (0.33736, 0.46230), 336: (0.38988, 0.50227), 720: (0.43655, 0.53147)},
}
PUBLISHED = {  # (dataset, horizon) -> {published model: MSE}; Informer paper and DLinear paper tables
    ("ETTh1", 24): {"Informer": 0.098, "LSTMa": 0.114, "DeepAR": 0.107, "ARIMA": 0.108},
    ("ETTh1", 48): {"Informer": 0.158, "LSTMa": 0.193, "DeepAR": 0.162, "ARIMA": 0.175},
    ("ETTh1", 96): {"NLinear": 0.053, "DLinear": 0.056, "FEDformer": 0.079, "Autoformer": 0.071, "Informer (L=96)": 0.193},
    ("ETTh1", 168): {"Informer": 0.183, "LSTMa": 0.236, "DeepAR": 0.239, "ARIMA": 0.396},
    ("ETTh1", 192): {"NLinear": 0.069, "DLinear": 0.071, "FEDformer": 0.104, "Informer (L=96)": 0.217},
    ("ETTh1", 336): {"NLinear": 0.081, "DLinear": 0.098, "FEDformer": 0.119, "Informer": 0.222, "LSTMa": 0.590},
    ("ETTh1", 720): {"NLinear": 0.080, "DLinear": 0.189, "FEDformer": 0.142, "Informer": 0.269, "LSTMa": 0.683},
    ("ETTh2", 96): {"NLinear": 0.129, "DLinear": 0.131, "FEDformer": 0.128, "Autoformer": 0.153, "Informer (L=96)": 0.213},
    ("ETTh2", 192): {"NLinear": 0.169, "DLinear": 0.176, "FEDformer": 0.185, "Informer (L=96)": 0.227},
    ("ETTh2", 336): {"NLinear": 0.194, "DLinear": 0.209, "FEDformer": 0.231, "Informer (L=96)": 0.242},
    ("ETTh2", 720): {"NLinear": 0.225, "DLinear": 0.276, "FEDformer": 0.278, "Informer (L=96)": 0.291},
}
MULTIVARIATE_PUBLISHED = {("ETTh1", 96): {"PatchTST/64": 0.370, "DLinear": 0.375, "Informer": 0.865}}
QUICK_MODELS = "naive,nlinear,dlinear,gru,patchtst"
TARGETS_M = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]


def data_file(name: str) -> Path:
    for folder in DATA_DIRS:
        if (folder / f"{name}.csv").exists():
            return folder / f"{name}.csv"
    raise SystemExit(f"{name}.csv not found in {', '.join(map(str, DATA_DIRS))}")


def compare(dataset: str, horizon: int, models: list[str], lookback: int, seed: int, multivariate: bool,
            options: tuple[str, ...] = ()) -> list[dict]:
    """One `seqcast compare` under the protocol; ``options`` are more CLI flags (e.g. --window-norm)."""
    targets = TARGETS_M if multivariate else ["OT"]
    command = [sys.executable, "-m", "seqcast", "-q", "compare", str(data_file(dataset)), "--split", SPLIT,
               "--lookback", str(lookback), "--horizon", str(horizon), "--models", ",".join(models),
               "--seed", str(seed), "--json", "--transform", "none", "--allow-negative", *options]
    for target in targets:
        command += ["--target", target]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)}\nfailed ({done.returncode}): {done.stderr[-2000:]}")
    return [row for row in json.loads(done.stdout) if row["model"] in models]


def self_check(datasets: list[str], horizons: list[int]) -> None:
    for dataset in datasets:
        for horizon in horizons:
            row = compare(dataset, horizon, ["naive"], 96, 0, False)[0]
            mse, mae = NAIVE[dataset][horizon]
            # published values carry 5 decimals: compare the difference (rounding both to 4 decimals
            # fails when they straddle a boundary, e.g. MAE 0.4232481 vs published 0.42325)
            ok = abs(row["mse"] - mse) <= 1e-5 and abs(row["mae"] - mae) <= 1e-5
            print(f"self-check {dataset} H={horizon}: naive {row['mse']:.5f} / {row['mae']:.5f} "
                  f"(published {mse:.5f} / {mae:.5f}) {'ok' if ok else 'MISMATCH'}", flush=True)
            if not ok:
                raise SystemExit("the protocol is not reproduced; stopping")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"models {QUICK_MODELS} at H=96")
    parser.add_argument("--datasets", default="ETTh1,ETTh2")
    parser.add_argument("--horizons", default="24,48,96,168,336,720")
    parser.add_argument("--models", default="", help="comma-separated; default every registered model")
    parser.add_argument("--lookback", type=int, default=0, help="0 = by model family (see the docstring)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds; the spread is reported")
    parser.add_argument("--multivariate", action="store_true", help="all 7 columns as targets (ETTh1)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ett"))
    parser.add_argument("--merge", nargs="+", metavar="CSV", help="merge result CSVs of earlier runs; train nothing")
    args = parser.parse_args()
    if args.merge:
        return merge(args.merge, Path(args.out))

    from seqcast.registry import list_models

    models = (QUICK_MODELS if args.quick else args.models or ",".join(list_models())).split(",")
    horizons = [96] if args.quick else [int(h) for h in args.horizons.split(",")]
    datasets = ["ETTh1"] if args.multivariate else args.datasets.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    self_check(datasets, horizons)
    code = commit()

    rows = []
    for dataset in datasets:
        for horizon in horizons:
            for model in models:
                lookback = args.lookback or (336 if model in LONG_LOOKBACK else 96)
                results = []
                for seed in seeds:
                    started = time.perf_counter()
                    results.append(compare(dataset, horizon, [model], lookback, seed, args.multivariate)[0])
                    results[-1]["process_s"] = time.perf_counter() - started
                mses = [r["mse"] for r in results]
                naive = NAIVE[dataset][horizon][0] if not args.multivariate else None
                row = {"dataset": dataset, "features": "M" if args.multivariate else "S", "horizon": horizon,
                       "model": model, "lookback": lookback, "mse": statistics.mean(mses),
                       "mse_std": statistics.pstdev(mses) if len(mses) > 1 else 0.0, "seeds": len(seeds),
                       "mae": statistics.mean(r["mae"] for r in results), "parameters": results[0]["parameters"],
                       "val_mse": None if results[0]["val_mse"] is None else statistics.mean(r["val_mse"] for r in results),
                       "train_s": statistics.mean(r["train_s"] for r in results),
                       "seconds_per_epoch": statistics.mean(r["seconds_per_epoch"] for r in results),
                       "beats_naive": (statistics.mean(mses) < naive) if naive else None, "commit": code}
                rows.append(row)
                print(f"{dataset} H={horizon} {model:<22} L={lookback} mse {row['mse']:.4f}"
                      f"{' ± %.4f' % row['mse_std'] if len(seeds) > 1 else ''} mae {row['mae']:.4f} "
                      f"train {row['train_s']:.1f}s", flush=True)
                write(rows, Path(args.out), args.multivariate)  # after every row: a stopped run keeps its results
    print(f"wrote {args.out}{'_multivariate' if args.multivariate else ''}.csv and .md")


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def merge(files: list[str], out: Path) -> None:
    import pandas as pd

    frame = pd.concat([pd.read_csv(f).assign(source=Path(f).name) for f in files], ignore_index=True)
    frame = frame.drop_duplicates(["dataset", "features", "horizon", "model"], keep="last")
    for multivariate, group in frame.groupby(frame["features"] == "M"):
        write(group.drop(columns="source").to_dict("records"), out, multivariate)
        print(f"wrote {out}{'_multivariate' if multivariate else ''}.csv and .md")


def summary(frame, published: dict) -> list[str]:
    """Model x horizon MSE per dataset, against repeat-last and the best published number."""
    import pandas as pd

    lines = []
    for dataset, group in frame.groupby("dataset"):
        horizons = sorted(group["horizon"].unique())
        table = group.pivot_table(index="model", columns="horizon", values="mse")
        lines += [f"## {dataset}: MSE by model and horizon (* = does not beat repeat-last)", "",
                  "| model | " + " | ".join(f"H={h}" for h in horizons) + " |", "|---" * (len(horizons) + 1) + "|"]
        for model, row in table.sort_values(horizons[0]).iterrows():
            cells = []
            for h in horizons:
                naive = NAIVE.get(dataset, {}).get(h, (None,))[0]
                value = row.get(h)
                cells.append("" if pd.isna(value) else f"{value:.4f}{'*' if naive and value >= naive else ''}")
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
        if group["features"].iloc[0] == "S":
            lines.append("| *repeat-last* | " + " | ".join(f"{NAIVE[dataset][h][0]:.4f}" for h in horizons) + " |")
        best = [min(published.get((dataset, h), {}).values(), default=None) for h in horizons]
        lines.append("| *best published* | " + " | ".join("" if b is None else f"{b:.3f}" for b in best) + " |")
        ours = [table[h].min() for h in horizons]
        lines.append("| *best seqcast* | " + " | ".join(f"{table[h].idxmin()} {o:.4f}" for h, o in zip(horizons, ours)) + " |")
        lines.append("| **best seqcast beats best published** | " + " | ".join(
            "" if b is None else ("yes" if o < b else "no") for o, b in zip(ours, best)) + " |")
        lines.append("")
    return lines


def write(rows: list[dict], out: Path, multivariate: bool) -> None:
    import pandas as pd

    out.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    suffix = "_multivariate" if multivariate else ""
    frame.to_csv(out.with_name(out.name + suffix + ".csv"), index=False)
    lines = [f"# ETT {'multivariate' if multivariate else 'univariate OT'}: seqcast vs published (MSE / MAE, z-scored, all test windows)", ""]
    published = MULTIVARIATE_PUBLISHED if multivariate else PUBLISHED
    lines += summary(frame, published)
    for (dataset, horizon), group in frame.groupby(["dataset", "horizon"]):
        lines += [f"## {dataset} H={horizon}", "", "| model | L | MSE | MAE | params | train s | beats repeat-last |",
                  "|---|---|---|---|---|---|---|"]
        for r in group.sort_values("mse").itertuples():
            spread = f" ± {r.mse_std:.4f}" if r.seeds > 1 else ""
            lines.append(f"| {r.model} | {r.lookback} | {r.mse:.4f}{spread} | {r.mae:.4f} | {r.parameters:,} | "
                         f"{r.train_s:.1f} | {'' if r.beats_naive is None else ('yes' if r.beats_naive else 'no')} |")
        for name, value in published.get((dataset, horizon), {}).items():
            lines.append(f"| *published {name}* | | {value:.3f} | | | | |")
        lines.append("")
    out.with_name(out.name + suffix + ".md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
