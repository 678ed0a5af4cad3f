"""Prediction intervals on ETT, with seqcast's own CLI: coverage, the cost of quantile training, and
whether the median of a quantile model forecasts as well as the point model. One command.

Runs `seqcast compare --split 8640,2880,2880 --level 80,95` (the ETT protocol of
../shared/docs/BENCHMARKS.md: train-only z-scoring, stride-1 test windows, all of them; the intervals
are calibrated on every stride-1 window of the 2,880 validation rows) on ETTh1, univariate OT, for each
horizon, model and seed, twice: the point model (split-conformal bands around its forecast) and the
same model trained on the quantiles 0.025, 0.1, 0.9, 0.975 (conformalised quantile regression bands;
its median is the forecast). Both runs of a seed come one after the other (A B A B ...), on one
thread, so the time ratio compares like with like on a shared machine.

    python benchmarks/intervals.py              # ETTh1 H=24 and 96; nlinear (L=336) and gru (L=96); seeds 0,1,2
    python benchmarks/intervals.py --quick      # H=24, gru, seed 0
    python benchmarks/intervals.py --models patchtst --horizons 96 --seeds 0,1

Writes benchmarks/results/intervals_ett.csv (one row per run) and intervals_ett.md (the summary:
coverage against the 3-point target, MSIS, width, train-time ratio quantile / point, and the test MSE
of point model and median with their spread over seeds).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from ett import SPLIT, commit, data_file  # noqa: E402  (the ETT protocol, in one place)

LEVELS = (80, 95)
QUANTILES = "0.025,0.1,0.9,0.975"  # the pairs of both levels, so both bands are conformalised quantiles
LOOKBACK = {"nlinear": 336, "dlinear": 336, "patchtst": 336, "nbeats": 336}  # as ett.py: else 96
TARGET_POINTS = 3.0  # coverage within 3 points of nominal (the target)


def run(dataset: str, horizon: int, model: str, seed: int, quantiles: bool) -> dict:
    command = [sys.executable, "-m", "seqcast", "-q", "compare", str(data_file(dataset)), "--split", SPLIT,
               "--target", "OT", "--models", model, "--lookback", str(LOOKBACK.get(model, 96)),
               "--horizon", str(horizon), "--seed", str(seed), "--threads", "1",
               "--level", ",".join(map(str, LEVELS)), "--json"]
    if quantiles:
        command += ["--quantiles", QUANTILES]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if done.returncode:
        raise SystemExit(f"{' '.join(command)}\nfailed ({done.returncode}): {done.stderr[-2000:]}")
    row = next(r for r in json.loads(done.stdout) if r["model"] == model)
    out = {"dataset": dataset, "horizon": horizon, "model": model, "variant": "quantile" if quantiles else "point",
           "seed": seed, "mse": row["mse"], "mae": row["mae"], "train_s": row["train_s"]}
    for level in LEVELS:
        out.update({f"{k}_{level}": row[f"{k}_{level}"] for k in ("coverage", "width", "msis")})
    out["wql"] = row.get("wql")
    return out


def summarise(rows: list[dict], command: str, code: str) -> list[str]:
    lines = ["# Prediction intervals on ETTh1 (OT), the ETT protocol", "",
             f"`{command}` at commit {code}; one thread, seeds run point then quantile, one after the other.",
             "Coverage and width on the stride-1 test windows, scaled values; MSIS scaled like MASE (seasonal",
             f"naive, season 24). Target: coverage within {TARGET_POINTS:g} points of nominal.", "",
             "| H | model | variant | coverage 80 | coverage 95 | within 3 points | MSIS 80 | MSIS 95 | width 95 | "
             "test MSE (mean ± sd over seeds) | train s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    groups: dict = {}
    for row in rows:
        groups.setdefault((row["horizon"], row["model"], row["variant"]), []).append(row)
    for (horizon, model, variant), group in sorted(groups.items()):
        mean = {k: statistics.mean(r[k] for r in group) for k in
                ("coverage_80", "coverage_95", "msis_80", "msis_95", "width_95", "mse", "train_s")}
        sd = statistics.pstdev([r["mse"] for r in group]) if len(group) > 1 else 0.0
        within = all(abs(mean[f"coverage_{lv}"] * 100 - lv) <= TARGET_POINTS for lv in LEVELS)
        lines.append(f"| {horizon} | {model} | {variant} | {mean['coverage_80']:.3f} | {mean['coverage_95']:.3f} | "
                     f"{'yes' if within else '**no**'} | {mean['msis_80']:.2f} | {mean['msis_95']:.2f} | "
                     f"{mean['width_95']:.3f} | {mean['mse']:.4f} ± {sd:.4f} | {mean['train_s']:.1f} |")
    lines += ["", "## Quantile training against the point model (same seed, one after the other)", "",
              "| H | model | train-time ratio quantile / point (median over seeds) | below 1.3 | "
              "MSE point | MSE median | difference within seed spread |", "|---|---|---|---|---|---|---|"]
    for (horizon, model, variant), group in sorted(groups.items()):
        if variant != "point" or (horizon, model, "quantile") not in groups:
            continue
        other = {r["seed"]: r for r in groups[(horizon, model, "quantile")]}
        pairs = [(r, other[r["seed"]]) for r in group if r["seed"] in other]
        ratio = statistics.median(q["train_s"] / p["train_s"] for p, q in pairs)
        point = [p["mse"] for p, _ in pairs]
        median = [q["mse"] for _, q in pairs]
        spread = max(statistics.pstdev(point), statistics.pstdev(median)) if len(pairs) > 1 else 0.0
        gap = statistics.mean(median) - statistics.mean(point)
        lines.append(f"| {horizon} | {model} | {ratio:.2f} | {'yes' if ratio < 1.3 else '**no**'} | "
                     f"{statistics.mean(point):.4f} | {statistics.mean(median):.4f} | "
                     f"{'yes' if gap <= 2 * spread or gap <= 0 else '**no**'} (gap {gap:+.4f}, 2 sd {2 * spread:.4f}) |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="H=24, gru, seed 0")
    parser.add_argument("--horizons", default="24,96")
    parser.add_argument("--models", default="nlinear,gru")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "intervals_ett"))
    args = parser.parse_args()
    horizons = [24] if args.quick else [int(h) for h in args.horizons.split(",")]
    models = ["gru"] if args.quick else args.models.split(",")
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    code, rows = commit(), []
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for horizon in horizons:
        for model in models:
            for seed in seeds:
                for quantiles in (False, True):
                    row = run("ETTh1", horizon, model, seed, quantiles)
                    rows.append(row)
                    print(f"H={horizon} {model} {row['variant']:<8} seed {seed}: coverage 80 {row['coverage_80']:.3f} "
                          f"95 {row['coverage_95']:.3f}, MSIS 95 {row['msis_95']:.2f}, mse {row['mse']:.4f}, "
                          f"train {row['train_s']:.1f}s", flush=True)
                    import pandas as pd

                    pd.DataFrame(rows).to_csv(f"{out}.csv", index=False)  # after every run: a stopped run keeps its rows
    command = "python benchmarks/intervals.py " + " ".join(sys.argv[1:])
    Path(f"{out}.md").write_text("\n".join(summarise(rows, command.strip(), code)) + "\n", encoding="utf-8")
    print(f"wrote {out}.csv and .md")


if __name__ == "__main__":
    main()
