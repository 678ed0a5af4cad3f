"""Covariates (issue 16): the three measurements, each one command.

    python benchmarks/covariates.py ms [--horizons 24,96] [--models ...]     # ETTh1 "MS"
    python benchmarks/covariates.py ms --merge A.csv B.csv                   # one table from runs in parts
    python benchmarks/covariates.py synthetic                                # known-future check
    python benchmarks/covariates.py cost [--rounds 3] [--models ...]         # fit time with / without

ms: the published "MS" setting on ETTh1: OT is the target, the six load columns (HUFL, HULL, MUFL,
MULL, LUFL, LULL) are past covariates, the ETT protocol otherwise (`seqcast compare --split
8640,2880,2880`: train-only scaling, stride-1 test windows, MSE and MAE on scaled OT). Every model is
run twice in the same run, on the same code: univariate (S) and with the past covariates (MS); the
lookback is ett.py's (336 for the linear, convolutional, N-BEATS and PatchTST models, 96 for the
others). Models that cannot read past covariates (patchtst, the baselines) run univariate only.

synthetic: a panel of 8 hourly series whose target is a deterministic function of a known-future
covariate (y = 2 * promo + sin(promo) + a level per series, promo independent from step to step, so the
target's own past says nothing about its future); every model that reads future covariates is fit
with the covariate (`--future-cols promo`) and without it, at its defaults, and scored by
`seqcast evaluate` on the last 5 windows of each series that training never saw. The target ratio
is MSE without / with >= 10.

cost: fit time with the ETTh1 past covariates against without, the same model, steps and batch
(`--epochs 1 --max-steps N --batch-size 64`), one thread, rounds alternating A B A B; the medians
and their ratio (target < 1.5x).

Results: benchmarks/results/covariates_<mode>.csv and .md.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from ett import LONG_LOOKBACK, compare, commit, data_file  # noqa: E402

LOADS = "HUFL,HULL,MUFL,MULL,LUFL,LULL"
OUT = ROOT / "benchmarks" / "results"


def models_reading(kind: str) -> list[str]:
    from seqcast.registry import get_spec, list_models

    return [n for n in list_models() if kind in get_spec(n).capabilities.covariates]


def seqcast(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "seqcast", "-q", *map(str, args)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"seqcast {' '.join(map(str, args))}\nfailed ({done.returncode}): {done.stderr[-2000:]}")
    return done


def table(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines)


def ms(args) -> None:
    from seqcast.registry import list_models

    models = args.models.split(",") if args.models else [m for m in list_models() if m not in ("naive", "seasonal_naive")]
    readers = set(models_reading("past"))
    rows = []
    out = Path(args.out) if args.out else OUT / "covariates_ms"
    if args.merge:
        ms_report(pd.concat([pd.read_csv(f) for f in args.merge]).drop_duplicates(["horizon", "model", "setting"],
                                                                                  keep="last"), out)
        return
    for horizon in map(int, args.horizons.split(",")):
        for model in models:
            lookback = 336 if model in LONG_LOOKBACK else 96
            for setting in ("S", "MS") if model in readers else ("S",):
                options = ("--past-cols", LOADS) if setting == "MS" else ()
                started = time.perf_counter()
                result = compare("ETTh1", horizon, [model], lookback, args.seed, False, options)[0]
                rows.append({"horizon": horizon, "model": model, "setting": setting, "lookback": lookback,
                             "mse": result["mse"], "mae": result["mae"], "val_mse": result["val_mse"],
                             "parameters": result["parameters"], "train_s": result["train_s"],
                             "process_s": time.perf_counter() - started, "commit": commit()})
                print(f"H={horizon} {model:<22} {setting:<2} mse {result['mse']:.4f} mae {result['mae']:.4f} "
                      f"train {result['train_s']:.1f}s", flush=True)
                pd.DataFrame(rows).to_csv(out.with_suffix(".csv"), index=False)
    ms_report(pd.DataFrame(rows), out)


def ms_report(frame: pd.DataFrame, out: Path) -> None:
    frame.to_csv(out.with_suffix(".csv"), index=False)
    commits = ", ".join(sorted(set(frame["commit"])))
    lines = [f"# ETTh1 MS: OT with the six load columns as past covariates (commit {commits})", ""]
    for horizon, part in frame.groupby("horizon"):
        wide = part.pivot_table(index="model", columns="setting", values="mse")
        wide["gain_%"] = 100 * (wide["S"] - wide.get("MS")) / wide["S"] if "MS" in wide else np.nan
        best_s = wide["S"].idxmin()
        best_ms = wide["MS"].idxmin() if "MS" in wide else None
        lines += [f"## H={horizon}", "", f"best univariate: {best_s} {wide['S'].min():.4f}; best with covariates: "
                  f"{best_ms} {wide['MS'].min():.4f}" if best_ms else "", "",
                  table(wide.reset_index().sort_values("MS" if "MS" in wide else "S")), ""]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out}.csv and .md")


def synthetic_panel(path: Path, series: int = 8, rows: int = 600, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(series):
        promo = rng.normal(size=rows)
        frames.append(pd.DataFrame({"unique_id": f"s{k}", "ds": pd.date_range("2024-01-01", periods=rows, freq="h"),
                                    "promo": promo.round(6),
                                    "y": (2 * promo + np.sin(promo) + 5 * k).round(6)}))
    pd.concat(frames).to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%S")


def synthetic(args) -> None:
    models = args.models.split(",") if args.models else models_reading("future")
    rows = []
    out = OUT / "covariates_synthetic"
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        full, train = folder / "panel.csv", folder / "train.csv"
        synthetic_panel(full)
        frame = pd.read_csv(full)
        held = 5 * 24  # the last 5 windows of H = 24 of each series: training never sees them
        frame.groupby("unique_id").head(len(frame) // 8 - held).to_csv(train, index=False)
        for model in models:
            row = {"model": model}
            for setting, options in (("with", ["--future-cols", "promo"]), ("without", [])):
                ckpt = folder / f"{model}_{setting}.ckpt"
                started = time.perf_counter()
                seqcast("fit", train, "--model", model, "--horizon", "24", "--lookback", "96", "--seed", str(args.seed),
                        "--device", "cpu", *options, "-o", ckpt, "--force")
                row[f"train_s_{setting}"] = time.perf_counter() - started
                report = json.loads(seqcast("evaluate", ckpt, full, "--windows", "5", "--json").stdout)
                row[f"mse_{setting}"] = report["overall"][model]["mse"]
            row["ratio"] = row["mse_without"] / row["mse_with"]
            rows.append(row)
            print(f"{model:<22} mse with {row['mse_with']:.4f} without {row['mse_without']:.4f} "
                  f"ratio {row['ratio']:.1f}x", flush=True)
            pd.DataFrame(rows).to_csv(out.with_suffix(".csv"), index=False)
    frame = pd.DataFrame(rows)
    met = int((frame["ratio"] >= 10).sum())
    out.with_suffix(".md").write_text(
        f"# Known-future synthetic check (commit {commit()})\n\n{met} of {len(frame)} models reach the 10x target.\n\n"
        + table(frame[["model", "mse_with", "mse_without", "ratio", "train_s_with", "train_s_without"]]) + "\n",
        encoding="utf-8")
    print(f"wrote {out}.csv and .md")


def cost(args) -> None:
    models = args.models.split(",") if args.models else models_reading("past")
    data = data_file("ETTh1")
    rows = []
    out = OUT / "covariates_cost"
    with tempfile.TemporaryDirectory() as folder:
        for model in models:
            lookback = 336 if model in LONG_LOOKBACK else 96
            times = {"without": [], "with": []}
            for _ in range(args.rounds):
                for setting in ("without", "with"):
                    options = ["--past-cols", LOADS] if setting == "with" else []
                    done = json.loads(seqcast("fit", data, "--model", model, "--target", "OT", "--split",
                                              "8640,2880,2880", "--lookback", lookback, "--horizon", "96",
                                              "--epochs", "1", "--max-steps", args.max_steps, "--batch-size", "64",
                                              "--threads", "1", "--device", "cpu", *options, "--json",
                                              "-o", Path(folder) / "m.ckpt", "--force").stdout)
                    times[setting].append(done["seconds"])
            row = {"model": model, "without_s": statistics.median(times["without"]),
                   "with_s": statistics.median(times["with"])}
            row["ratio"] = row["with_s"] / row["without_s"]
            rows.append(row)
            print(f"{model:<22} without {row['without_s']:.2f}s with {row['with_s']:.2f}s ratio {row['ratio']:.2f}",
                  flush=True)
            pd.DataFrame(rows).to_csv(out.with_suffix(".csv"), index=False)
    frame = pd.DataFrame(rows)
    out.with_suffix(".md").write_text(
        f"# Fit time with the six ETTh1 past covariates against without (commit {commit()})\n\n"
        f"`--epochs 1 --max-steps {args.max_steps} --batch-size 64 --threads 1`, H=96, medians of {args.rounds} "
        f"rounds alternating without / with. {int((frame['ratio'] < 1.5).sum())} of {len(frame)} under 1.5x.\n\n"
        + table(frame) + "\n", encoding="utf-8")
    print(f"wrote {out}.csv and .md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("ms", "synthetic", "cost"))
    parser.add_argument("--models", default="")
    parser.add_argument("--horizons", default="24,96")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=100)
    parser.add_argument("--out", default="", help="result path without suffix (default benchmarks/results/covariates_MODE)")
    parser.add_argument("--merge", nargs="+", metavar="CSV", help="ms: build the table from these runs; train nothing")
    args = parser.parse_args()
    {"ms": ms, "synthetic": synthetic, "cost": cost}[args.mode](args)


if __name__ == "__main__":
    main()
