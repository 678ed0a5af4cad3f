"""What a default fit costs now against an earlier commit, on the same data, in one sitting: one command.

Builds M4 Weekly's long training file (as benchmarks/m4.py does), checks the baseline commit out into
a git worktree under benchmarks/results/tmp/, then times `seqcast fit` of each model with the default
options (one thread, `OMP_NUM_THREADS=1`, seed 0), alternating baseline and current (A B A B ...) so
that both sides meet the same load, and reports the median wall time of each side and their ratio.
The whole process is timed (start-up, reading, probes, training, writing).

    python benchmarks/fit_cost.py --baseline 7f3c847 --models gru,nlinear --rounds 2
    python benchmarks/fit_cost.py --baseline 7f3c847 --models transformer --rounds 1 --data m3-monthly
    python benchmarks/fit_cost.py --baseline 0f35ea8 --models nlinear,gru --rounds 2 --data etth1

Writes --out .json and .md (default benchmarks/results/fit_cost).
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE)]
import m3  # noqa: E402
import m4  # noqa: E402

DATA = {"m4-weekly": ("13", "W-SUN"), "m3-monthly": ("18", "MS"), "etth1": ("24", "h")}  # horizon, frequency


def panel(name: str, work: Path) -> Path:
    """The long training CSV of ``name``, written once into ``work``."""
    if name == "etth1":  # one series, the README's main job
        return ROOT / "sample_data" / "ETTh1.csv"
    path = work / f"{name}-train.csv"
    if not path.exists():
        if name == "m4-weekly":
            train, _ = m4.load_panel()
            m4.write_long(train, path)
        else:
            train, _, _ = m3.load(m3.DATA, "monthly", validation=False)
            train.to_csv(path, index=False)
    return path


def fit_seconds(checkout: Path, data: Path, model: str, horizon: str, work: Path) -> float:
    ids = [] if data.name == "ETTh1.csv" else ["--id-col", "unique_id"]
    command = [sys.executable, "-m", "seqcast", "-q", "fit", str(data), "--model", model, "--horizon", horizon,
               *ids, "--threads", "1", "--seed", "0", "--force",
               "--output", str(work / f"{checkout.name}-{model}.ckpt")]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=checkout, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    if done.returncode:
        raise SystemExit(f"{checkout.name}: fit {model} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="the earlier commit to compare against")
    parser.add_argument("--models", default="gru,nlinear")
    parser.add_argument("--rounds", type=int, default=2, help="fits of each model on each side")
    parser.add_argument("--data", choices=sorted(DATA), default="m4-weekly")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fit_cost"))
    args = parser.parse_args()
    work = ROOT / "benchmarks" / "results" / "tmp" / "fit_cost"
    work.mkdir(parents=True, exist_ok=True)
    baseline = work / f"baseline_{args.baseline}"
    if not baseline.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(baseline), args.baseline], cwd=ROOT, check=True)
    data, (horizon, _) = panel(args.data, work), DATA[args.data]
    rows = []
    for model in args.models.split(","):
        times = {"baseline": [], "current": []}
        for _ in range(args.rounds):
            for side, checkout in (("baseline", baseline), ("current", ROOT)):
                times[side].append(fit_seconds(checkout, data, model, horizon, work))
                print(f"{model} {side}: {times[side][-1]:.1f} s", flush=True)
        medians = {side: statistics.median(values) for side, values in times.items()}
        rows.append({"model": model, **{f"{side}_s": values for side, values in times.items()},
                     **{f"{side}_median_s": value for side, value in medians.items()},
                     "ratio": medians["current"] / medians["baseline"]})
    out = Path(args.out)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out.with_suffix(".json").write_text(json.dumps({"data": args.data, "baseline": args.baseline,
                                                    "current": m4.commit(), "date": stamp, "rows": rows}, indent=2))
    lines = [f"# Default fit cost: {m4.commit()} against {args.baseline} ({args.data})", "",
             f"Command: `python benchmarks/fit_cost.py {' '.join(sys.argv[1:])}`  ", f"Date: {stamp}; one thread, "
             "alternating baseline and current; whole `seqcast fit` process.", "",
             "| model | baseline s (median) | current s (median) | ratio | runs (baseline / current) |", "|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['baseline_median_s']:.1f} | {r['current_median_s']:.1f} | {r['ratio']:.2f} | "
              f"{', '.join(f'{v:.0f}' for v in r['baseline_s'])} / {', '.join(f'{v:.0f}' for v in r['current_s'])} |"
              for r in rows]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
