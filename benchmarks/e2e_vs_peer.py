"""End to end at defaults on ETTh1 OT (lookback 96, horizon 24, standard split), against neuralforecast.

Whole process, from start to the forecasts of all 2857 test windows written to a file, for seqcast's
`rnn`, `lstm` and `gru` at their defaults and neuralforecast's RNN/LSTM/GRU at theirs (300 steps of
32 windows), run alternately (A B A B) in one session; medians and ratios are printed and written
to benchmarks/results/e2e_vs_peer.json. The peer runs from a throwaway virtual environment:

    python -m venv /tmp/nfenv && /tmp/nfenv/bin/pip install torch==2.13.0 neuralforecast==3.3.0
    python benchmarks/e2e_vs_peer.py --peer-python /tmp/nfenv/bin/python [--rounds 2]
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "sample_data" / "ETTh1.csv"


def timed(command: list[str]) -> tuple[float, str, int]:
    """Wall seconds, stdout and peak RSS (KB) of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, done.stdout, max(peak, before)


def seqcast_run(model: str, out: Path) -> dict:
    seconds, stdout, _ = timed([sys.executable, "-m", "seqcast", "-q", "compare", str(DATA), "--target", "OT",
                                "--split", "8640,2880,2880", "--lookback", "96", "--horizon", "24",
                                "--models", model, "--forecasts", str(out), "--json"])
    row = json.loads(stdout)[0]
    return {"seconds": seconds, "mse": row["mse"], "fit_s": row["train_s"], "parameters": row["parameters"]}


def peer_run(python: str, model: str, out: Path) -> dict:
    seconds, stdout, _ = timed([python, str(ROOT / "benchmarks" / "peer_neuralforecast.py"), model, str(DATA), str(out)])
    row = json.loads(stdout.strip().splitlines()[-1])
    return {"seconds": seconds, "mse": row["mse"], "fit_s": row["fit_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-python", required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--models", default="rnn,lstm,gru")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            ours, peers = [], []
            for round_ in range(args.rounds):
                ours.append(seqcast_run(model, Path(tmp) / "ours.csv"))
                peers.append(peer_run(args.peer_python, model, Path(tmp) / "peer.csv"))
                print(f"{model} round {round_ + 1}: seqcast {ours[-1]['seconds']:.1f}s mse {ours[-1]['mse']:.4f} | "
                      f"neuralforecast {peers[-1]['seconds']:.1f}s mse {peers[-1]['mse']:.4f}", flush=True)
            ours_s = statistics.median(r["seconds"] for r in ours)
            peer_s = statistics.median(r["seconds"] for r in peers)
            results[model] = {"seqcast_s": ours_s, "seqcast_mse": ours[0]["mse"], "seqcast_fit_s": statistics.median(r["fit_s"] for r in ours),
                              "peer_s": peer_s, "peer_mse": statistics.median(r["mse"] for r in peers),
                              "peer_fit_s": statistics.median(r["fit_s"] for r in peers), "time_ratio": ours_s / peer_s}
            print(f"{model}: seqcast {ours_s:.1f}s vs neuralforecast {peer_s:.1f}s (ratio {ours_s / peer_s:.2f}); "
                  f"MSE {ours[0]['mse']:.4f} vs {results[model]['peer_mse']:.4f}; repeat-last 0.0343", flush=True)
    out = ROOT / "benchmarks" / "results" / "e2e_vs_peer.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
