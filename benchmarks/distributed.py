"""Data-parallel fit: `torchrun --standalone --nproc-per-node 2 -m seqcast fit` against one process, on a
400-series panel, the same budget (steps x batch: the same windows seen). One command.

    python benchmarks/distributed.py                       # gru, 3 rounds A B C A B C, medians
    python benchmarks/distributed.py --model nlinear --rounds 2

The panel: 400 synthetic weekly series of 520 values (a seeded mix of level, trend, yearly season
and noise, written by this script), horizon 13. Each round runs, alternating: one process on 1
thread, one process on 2 threads, and two torchrun processes of 1 thread each; wall time of the
whole command, and the validation MSE each checkpoint records. Writes
benchmarks/results/distributed.md and .json.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def panel(path: Path, n_series: int = 400, length: int = 520, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    steps = np.arange(length)
    dates = np.datetime_as_string(np.datetime64("2010-01-03") + 7 * steps, unit="D")
    lines = ["unique_id,ds,y"]
    for k in range(n_series):
        level, trend = rng.uniform(50, 500), rng.normal(0, 0.05)
        season = rng.uniform(0, 0.3) * np.sin(2 * np.pi * steps / 52 + rng.uniform(0, 2 * np.pi))
        walk = np.cumsum(rng.normal(0, 0.02, length))
        values = level * (1 + season + walk) + trend * steps
        lines += [f"s{k},{d},{v:.3f}" for d, v in zip(dates, values)]
    path.write_text("\n".join(lines) + "\n")


def run(command: list[str], checkpoint: Path) -> dict:
    checkpoint.unlink(missing_ok=True)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    info = json.loads(subprocess.run([sys.executable, "-m", "seqcast", "info", str(checkpoint), "--json"],
                                     capture_output=True, text=True, check=True).stdout)
    fit_s = float(re.search(r" in ([0-9.]+)s on ", done.stderr).group(1))  # fit's own line: the training call
    return {"seconds": seconds, "fit_s": fit_s, "val_mse": info["metrics"]["val_mse_scaled"],
            "steps": info["training"]["steps"], "batch": info["training"]["batch_size"],
            "world_size": info["training"]["world_size"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="gru")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=2000)
    parser.add_argument("--work", default=str(ROOT / "benchmarks" / "results" / "tmp" / "distributed"))
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data = work / "panel400.csv"
    panel(data)
    fit = ["fit", str(data), "--model", args.model, "--horizon", "13", "--max-steps", str(args.max_steps),
           "--seed", "0", "--force"]
    python = [sys.executable, "-m"]
    setups = {
        "1 process, 1 thread": python + ["seqcast", *fit, "--threads", "1"],
        "1 process, 2 threads": python + ["seqcast", *fit, "--threads", "2"],
        "torchrun 2 processes x 1 thread": python + ["torch.distributed.run", "--standalone", "--nproc-per-node",
                                                      "2", "-m", "seqcast", *fit, "--threads", "1"],
    }
    results: dict[str, list[dict]] = {name: [] for name in setups}
    for _ in range(args.rounds):  # A B C A B C: the machine's load drifts alike for every setup
        for name, command in setups.items():
            checkpoint = work / f"{abs(hash(name))}.ckpt"
            results[name].append(run(command + ["--output", str(checkpoint)], checkpoint))
            print(name, results[name][-1], flush=True)
    summary = {name: {"median_s": statistics.median(r["seconds"] for r in rows),
                      "median_fit_s": statistics.median(r["fit_s"] for r in rows),
                      "val_mse": [round(r["val_mse"], 6) for r in rows], "steps": rows[0]["steps"],
                      "batch": rows[0]["batch"], "world_size": rows[0]["world_size"]} for name, rows in results.items()}
    one, two, ddp = (summary[n]["median_s"] for n in setups)
    fit_one, fit_two, fit_ddp = (summary[n]["median_fit_s"] for n in setups)
    out = ROOT / "benchmarks" / "results" / "distributed"
    out.with_suffix(".json").write_text(json.dumps({"model": args.model, "runs": results, "summary": summary},
                                                   indent=2) + "\n")
    lines = [f"# Data-parallel fit: {args.model} on a 400-series weekly panel (horizon 13, {args.max_steps} steps)", "",
             f"Command: `python benchmarks/distributed.py --model {args.model} --rounds {args.rounds} "
             f"--max-steps {args.max_steps}`; "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores; whole-command wall time, "
             "median of the rounds (A B C alternating).", "",
             "| setup | command median s | ratio | fit median s (training call) | ratio | validation MSE (each round) "
             "| steps x batch |", "|---|---|---|---|---|---|---|"]
    for name, s in summary.items():
        lines.append(f"| {name} | {s['median_s']:.1f} | {s['median_s'] / one:.2f} | {s['median_fit_s']:.1f} | "
                     f"{s['median_fit_s'] / fit_one:.2f} | {', '.join(f'{v:.5f}' for v in s['val_mse'])} | "
                     f"{s['steps']} x {s['batch']} |")
    lines += ["", "Ratios are to 1 process x 1 thread. torchrun 2 x 1, whole command: "
              f"{ddp / one:.2f}x of 1 x 1 and {ddp / two:.2f}x of 1 x 2; the training call: {fit_ddp / fit_one:.2f}x "
              f"and {fit_ddp / fit_two:.2f}x (target < 0.7x of one process)."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
