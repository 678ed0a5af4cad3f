"""Fit on a panel with more training windows than memory would hold one by one (issue 33, out-of-core fit).

    python benchmarks/out_of_core.py --baseline 0a42ef3            # 1,000 series x 100,000 rows, both sides
    python benchmarks/out_of_core.py --baseline 0a42ef3 --series 100 --length 100000   # a smaller check

Data (generated once into WORK/data, seeded, reused while the spec matches): minutely series `unique_id,
ds, y` (an hourly and a daily season, level and noise differing by series), one Parquet file. Every
series has about as many training windows as rows, so the panel has about series x length of them.

Each side is one child process `seqcast fit long.parquet --model nlinear --horizon 60` at the defaults,
one thread, its wall time and peak RSS from GNU time (scale.py's launcher); the baseline commit runs
from a git worktree under benchmarks/results/tmp/, and the sides alternate (baseline, current, ...).
The baseline lists every window (three int64 per window, and an int64 permutation per epoch); the
current code holds the windows as runs per series and samples an epoch's windows from them above
`training.SAMPLED_ABOVE` windows. `seqcast info --json` of each checkpoint gives its steps in an epoch
(the training windows over the batch), the steps taken and the validation loss.
Results: benchmarks/results/out_of_core.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import RESULTS, log, run_child  # noqa: E402  (the launcher with peak RSS, shared)

ROOT = Path(__file__).resolve().parents[1]
HORIZON, SEED = 60, 34


def generate(path: Path, series: int, length: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    spec = {"series": series, "length": length, "seed": SEED, "version": 1}
    marker = path.with_suffix(".json")
    if path.exists() and marker.exists() and json.loads(marker.read_text()) == spec:
        return
    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    t = np.arange(length)
    stamps = (np.datetime64("2024-01-01T00:00", "m") + t.astype("timedelta64[m]")).astype("datetime64[us]")
    with pq.ParquetWriter(path, pa.schema([("unique_id", pa.string()), ("ds", pa.timestamp("us")),
                                           ("y", pa.float64())]), compression="zstd") as writer:
        for s in range(series):
            level, amplitude = rng.uniform(10, 100), rng.uniform(1, 10)
            y = (level + amplitude * np.sin(2 * np.pi * t / 60 + rng.uniform(0, 6))
                 + 0.5 * amplitude * np.sin(2 * np.pi * t / 1440) + rng.normal(0, 0.2 * amplitude, length))
            writer.write_table(pa.table({"unique_id": pa.array([f"m{s:05d}"] * length),
                                         "ds": pa.array(stamps), "y": pa.array(np.round(y, 3))}))
    marker.write_text(json.dumps(spec))
    log(f"generated {series} x {length} rows in {time.perf_counter() - started:.0f}s")


def run(args) -> None:
    work = Path(args.work)
    data = work / "data" / "long.parquet"
    generate(data, args.series, args.length)
    baseline = work / f"baseline_{args.baseline}"
    if not baseline.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(baseline), args.baseline], cwd=ROOT, check=True)
    sides = {"baseline": baseline, "current": ROOT}
    results: dict[str, list[dict]] = {side: [] for side in sides}
    for round_ in range(args.rounds):
        for side, checkout in sides.items():
            env = dict(os.environ, PYTHONPATH=str(checkout), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                       OPENBLAS_NUM_THREADS="1")
            ckpt = work / f"{side}.ckpt"
            command = [sys.executable, "-m", "seqcast", "fit", str(data), "--model", "nlinear", "--horizon",
                       str(HORIZON), "--threads", "1", "-o", str(ckpt), "--force"]
            log(f"{side} round {round_ + 1}: fit")
            fit = run_child(command, args.timeout, env, work / "logs" / f"{side}_{round_}.log", cwd=work)
            log(f"  {fit['status']} in {fit['wall_s']:.1f}s, peak {fit['rss_mb']:.0f} MB")
            row = {"wall_s": fit["wall_s"], "rss_mb": fit["rss_mb"], "status": fit["status"]}
            if fit["status"] == "ok":
                info = subprocess.run([sys.executable, "-m", "seqcast", "info", str(ckpt), "--json"], env=env,
                                      capture_output=True, text=True, check=True)
                training = json.loads(info.stdout)["training"]
                row.update({key: training.get(key) for key in ("steps_per_epoch", "steps", "val_mse_scaled")})
            results[side].append(row)
    summary = {side: {"wall_s": statistics.median(r["wall_s"] for r in rows),
                      "rss_mb": statistics.median(r["rss_mb"] for r in rows),
                      "status": "/".join(r["status"] for r in rows),
                      **{k: rows[-1].get(k) for k in ("steps_per_epoch", "steps", "val_mse_scaled")}}
               for side, rows in results.items()}
    out = RESULTS / "out_of_core"
    out.with_suffix(".json").write_text(json.dumps({"series": args.series, "length": args.length,
                                                    "baseline": args.baseline, "runs": results,
                                                    "summary": summary}, indent=1, default=str))
    lines = [f"# Out-of-core fit: {args.series:,} series x {args.length:,} minutely rows", "",
             f"`python benchmarks/out_of_core.py --baseline {args.baseline} --series {args.series} "
             f"--length {args.length}`: `seqcast fit --model nlinear --horizon {HORIZON}` at the defaults, "
             f"one thread, {args.rounds} round(s) alternated; medians.", "",
             "| side | fit s | peak RSS MB | steps in an epoch | steps | validation MSE (scaled) | status |",
             "|---|---|---|---|---|---|---|"]
    for side, row in summary.items():
        windows = f"{row['steps_per_epoch']:,}" if row.get("steps_per_epoch") else "-"
        mse = f"{row['val_mse_scaled']:.4f}" if row.get("val_mse_scaled") is not None else "-"
        lines.append(f"| {side} | {row['wall_s']:.1f} | {row['rss_mb']:.0f} | {windows} | {row.get('steps') or '-'} "
                     f"| {mse} | {row['status']} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    log(f"wrote {out}.md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--baseline", required=True, help="the earlier commit to compare against")
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--length", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--work", default=str(RESULTS / "tmp" / "out_of_core"))
    run(parser.parse_args())


if __name__ == "__main__":
    main()
