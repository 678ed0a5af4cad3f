"""Where more torch intra-op threads pay: one training step (or one forward) at 1 thread against N.

For each model and batch size, one process builds the model at its ETT lookback (336 for the linear
and convolutional families, 96 for the others; horizon 48, one channel) and times a training step
(forward, backward, AdamW) at ``torch.set_num_threads(1)`` and at ``--threads`` (default 2),
alternating A B A B so that the machine's load falls on both alike; the medians are compared. With
``--forward`` it times a no-grad forward instead (what predict and evaluate run). Each row also
records the work measure seqcast's automatic choice uses (``seqcast.threads.work_per_call``: FLOPs
per call) and the count ``pick_threads`` gives it with every core free, so the rule can be checked
against the table.

    python benchmarks/threads.py [--models gru,transformer] [--batches 32,256] [--rounds 3] [--out FILE]
    python benchmarks/threads.py --wait-idle 60 ...   # time each pair when no other process is running
    python3 -c 'while True: pass' & python benchmarks/threads.py ...; kill %1   # with one core busy
"""

import argparse
import json
import os
import statistics
import time

import torch
from torch import nn

from seqcast.build import create_model
from seqcast.registry import list_models
from seqcast.threads import pick_threads, work_per_call

LONG_LOOKBACK = {"nlinear", "dlinear", "patchtst", "nbeats", "nbeats_interpretable", "tcn", "cnn"}
HORIZON = 48


def timed(model: nn.Module, x: torch.Tensor, y: torch.Tensor, threads: int, steps: int, forward: bool) -> float:
    """Seconds per step (median of ``steps``) at ``threads`` intra-op threads."""
    torch.set_num_threads(threads)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for _ in range(steps + 1):  # the first step warms up at this thread count
        started = time.perf_counter()
        if forward:
            with torch.no_grad():
                model(x)
        else:
            loss = nn.functional.mse_loss(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def others_running() -> int:
    """Processes running right now besides this one (Linux /proc/loadavg)."""
    with open("/proc/loadavg", encoding="ascii") as f:
        return int(f.read().split()[3].split("/")[0]) - 1


def wait_idle(limit: float) -> int:
    """Wait up to ``limit`` seconds for no other process to be running; returns how many still are."""
    deadline = time.monotonic() + limit
    while others_running() and time.monotonic() < deadline:
        time.sleep(0.5)
    return others_running()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(m for m in list_models() if "naive" not in m))
    parser.add_argument("--batches", default="32,256")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--forward", action="store_true", help="time a no-grad forward instead of a step")
    parser.add_argument("--wait-idle", type=float, default=0, help="seconds to wait for an idle machine before each pair")
    parser.add_argument("--out")
    args = parser.parse_args()
    rows = []
    for name in args.models.split(","):
        lookback = 336 if name in LONG_LOOKBACK else 96
        torch.manual_seed(0)
        model = create_model(name, lookback, HORIZON, 1)
        for batch in map(int, args.batches.split(",")):
            x, y = torch.randn(batch, lookback, 1), torch.randn(batch, HORIZON, 1)
            one, many, busy = [], [], []
            for _ in range(args.rounds):
                busy.append(wait_idle(args.wait_idle) if args.wait_idle else others_running())
                one.append(timed(model, x, y, 1, args.steps, args.forward))
                many.append(timed(model, x, y, args.threads, args.steps, args.forward))
                busy.append(others_running())
            work = work_per_call(model, x, None, batch, training=not args.forward)
            row = {"model": name, "lookback": lookback, "batch": batch,
                   "parameters": sum(p.numel() for p in model.parameters()), "gflops": round(work / 1e9, 3),
                   "rule_idle": pick_threads(work, cores=args.threads, ceiling=args.threads),
                   "ms_1": round(statistics.median(one) * 1000, 2),
                   f"ms_{args.threads}": round(statistics.median(many) * 1000, 2),
                   "speedup": round(statistics.median(one) / statistics.median(many), 2),
                   "load": round(os.getloadavg()[0], 2), "others_running": max(busy)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump({"forward": args.forward, "threads": args.threads, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
