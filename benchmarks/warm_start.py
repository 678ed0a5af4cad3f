"""Nightly refit: `fit --init-from yesterday.ckpt` on a day more of data, against a fresh `fit` on the
same file, whole process, one torch thread each, alternating (fresh, warm, fresh, warm, ...).

Yesterday's checkpoint is a fresh fit on ETTh1 without its last day; tonight's data is the whole
file. Reports the median wall time, steps and validation MSE of each, and the ratio.

    python benchmarks/warm_start.py [--model gru] [--rounds 3]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "sample_data" / "ETTh1.csv"


def fit(args: list[str]) -> tuple[float, dict]:
    command = [sys.executable, "-m", "seqcast", "-q", "fit", *args, "--force", "--json"]
    started = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    return time.perf_counter() - started, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gru")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lines = DATA.read_text(encoding="utf-8").splitlines(keepends=True)
        yesterday = Path(tmp) / "yesterday.csv"
        yesterday.write_text("".join(lines[:-24]), encoding="utf-8")
        old = Path(tmp) / "yesterday.ckpt"
        fit([str(yesterday), "--model", args.model, "--output", str(old)])
        runs = {"fresh": [], "warm": []}
        for _ in range(args.rounds):
            runs["fresh"].append(fit([str(DATA), "--model", args.model, "--output", str(Path(tmp) / "fresh.ckpt")]))
            runs["warm"].append(fit([str(DATA), "--init-from", str(old), "--output", str(Path(tmp) / "warm.ckpt")]))
    result = {"model": args.model, "data": "ETTh1.csv (OT), yesterday = all but the last 24 rows",
              "rounds": args.rounds, "threads": 1}
    for kind, values in runs.items():
        result[kind] = {"median_s": statistics.median(s for s, _ in values),
                        "steps": values[0][1]["steps"], "val_mse_scaled": values[0][1]["val_mse_scaled"],
                        "best_epoch": values[0][1]["best_epoch"], "all_s": [round(s, 2) for s, _ in values]}
    result["warm_over_fresh"] = result["warm"]["median_s"] / result["fresh"]["median_s"]
    for kind in runs:
        r = result[kind]
        print(f"{kind:<6} {r['median_s']:6.1f} s  {r['steps']:4d} steps  val MSE {r['val_mse_scaled']:.5f}  "
              f"best epoch {r['best_epoch']}")
    print(f"warm / fresh wall time: {result['warm_over_fresh']:.2f}")
    out = ROOT / "benchmarks" / "results" / f"warm_start_{args.model}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
