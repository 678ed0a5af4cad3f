"""Start-up: `seqcast --help`, `--version` and a cold one-forecast `seqcast predict`, whole process,
against `python -c "import torch"` (the floor for anything that uses torch). Also checks that
`--help` imports neither torch nor pandas, and measures peak memory of `fit` on ETTh1 against the
size of the data. Runs alternate; medians of --rounds.

    python benchmarks/startup.py [--rounds 5]
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


def wall(command: list[str], **kwargs) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, **kwargs)
    return time.perf_counter() - started


def peak_rss_mb(command: list[str]) -> float:
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *command], check=True, capture_output=True, text=True)
    return int(done.stderr.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    seqcast = [sys.executable, "-m", "seqcast"]
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "gru.ckpt"
        subprocess.run([*seqcast, "-q", "fit", str(DATA), "--model", "gru", "--epochs", "1", "--output", str(ckpt)],
                       check=True)
        history = Path(tmp) / "history.csv"
        history.write_text("".join(DATA.read_text().splitlines(keepends=True)[:1] +
                                   DATA.read_text().splitlines(keepends=True)[-200:]))
        commands = {
            "python -c 'import torch'": [sys.executable, "-c", "import torch"],
            "seqcast --help": [*seqcast, "--help"],
            "seqcast --version": [*seqcast, "--version"],
            "seqcast predict (cold, 1 forecast)": [*seqcast, "-q", "predict", str(ckpt), str(history)],
        }
        times = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, command in commands.items():
                times[name].append(wall(command))
        probe = ("import sys; sys.argv=['seqcast','--help']; from seqcast.cli import app\n"
                 "try:\n    app()\nexcept SystemExit:\n    pass\n"
                 "print(sorted(m for m in ('torch','pandas') if m in sys.modules))")
        imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
        fit_peak = peak_rss_mb([*seqcast, "-q", "fit", str(DATA), "--model", "gru", "--epochs", "1",
                                "--output", str(Path(tmp) / "peak.ckpt")])
        idle_peak = peak_rss_mb([sys.executable, "-c", "import torch, pandas"])
    medians = {name: statistics.median(values) for name, values in times.items()}
    floor = medians["python -c 'import torch'"]
    for name, value in medians.items():
        print(f"{name:<38} {value:6.2f} s  ({value / floor:.2f} x import torch)")
    print(f"seqcast --help imports: {imported.stdout.strip().splitlines()[-1]}")
    size_mb = os.path.getsize(DATA) / 2**20
    print(f"fit gru on ETTh1 ({size_mb:.1f} MB CSV, all 7 columns read, OT trained): peak RSS {fit_peak:.0f} MB; "
          f"python with torch and pandas imported, nothing else: {idle_peak:.0f} MB")
    out = ROOT / "benchmarks" / "results" / "startup.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"median_s": medians, "help_imports": imported.stdout.strip().splitlines()[-1],
                               "fit_peak_rss_mb": fit_peak, "torch_pandas_rss_mb": idle_peak,
                               "data_mb": size_mb}, indent=2) + "\n")


if __name__ == "__main__":
    main()
