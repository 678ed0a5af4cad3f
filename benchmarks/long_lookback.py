"""Transformer-XL against the vanilla Transformer as the lookback grows: one command.

    python benchmarks/long_lookback.py                       # L = 1024, 4096, 16384, 32768
    python benchmarks/long_lookback.py --lookbacks 1024,4096 --timeout 60

For each lookback L and model (``transformer_xl``, ``transformer``; seqcast's defaults, wrapped in
the default ``--window-norm last`` as ``seqcast fit`` does), a fresh child process builds the model
with ``seqcast.build.create_model`` (horizon 24, one channel), then on random windows of batch 4:
one untimed warm-up training step, ``--steps`` timed training steps (forward, MSE, backward, gradient
clipping, AdamW step: what ``seqcast.training.train`` does per batch), and one timed predict forward
(eval mode, no gradient, same batch), on ``--threads`` torch threads (default 1). The child
reports its peak resident memory (``ru_maxrss``).

Each child runs under a wall-clock limit (``--timeout``, default 120 s) and an address-space limit
(``--mem-gb``, default 10 GiB, so a blow-up fails inside the child instead of pressing on a shared
machine); a child over either is recorded as "out of time" / "out of memory" and the larger lookbacks
of that model are skipped. Results: benchmarks/results/long_lookback.json (and a table on stdout).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("transformer_xl", "transformer")
HORIZON, BATCH = 24, 4


def child(model_name: str, lookback: int, steps: int, threads: int) -> None:
    import torch
    from torch import nn

    torch.set_num_threads(threads)

    from seqcast.window_norm import WindowNorm
    from seqcast.build import create_model

    torch.manual_seed(0)
    model = WindowNorm(create_model(model_name, lookback, HORIZON, 1), "last")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    x, y = torch.randn(BATCH, lookback, 1), torch.randn(BATCH, HORIZON, 1)

    def step() -> None:
        loss = nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()

    model.train()
    step()  # warm-up (allocator, kernels)
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    model.eval()
    with torch.no_grad():
        started = time.perf_counter()
        model(x)
        predict_s = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"status": "ok", "train_step_s": sorted(times)[len(times) // 2], "train_steps_s": times,
                      "predict_s": predict_s, "peak_rss_mb": round(rss_mb, 1),
                      "parameters": sum(p.numel() for p in params), "threads": torch.get_num_threads()}))


def run_one(model: str, lookback: int, steps: int, threads: int, timeout: float, mem_gb: float) -> dict:
    limit = int(mem_gb * 2**30)

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    command = [sys.executable, __file__, "--child", model, str(lookback), "--steps", str(steps), "--threads", str(threads)]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, preexec_fn=limits)
    except subprocess.TimeoutExpired:
        return {"status": "out of time", "limit_s": timeout, "process_s": round(time.perf_counter() - started, 1)}
    process_s = round(time.perf_counter() - started, 1)
    lines = done.stdout.strip().splitlines()
    if done.returncode == 0 and lines:
        return {**json.loads(lines[-1]), "process_s": process_s}
    tail = done.stderr.strip().splitlines()[-1:] or [""]
    text = done.stderr.lower()
    out_of_memory = ("memory" in text or "alloc" in text or done.returncode == -signal.SIGKILL)
    return {"status": "out of memory" if out_of_memory else "failed", "returncode": done.returncode,
            "limit_gb": mem_gb, "error": tail[0][-300:], "process_s": process_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "LOOKBACK"), help=argparse.SUPPRESS)
    parser.add_argument("--lookbacks", default="1024,4096,16384,32768")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--steps", type=int, default=3, help="timed training steps (median reported)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per child (1: steadier on a shared 2-core machine)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per (model, lookback) child")
    parser.add_argument("--mem-gb", type=float, default=10.0, help="address-space limit per child, GiB")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "long_lookback.json"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.steps, args.threads)
        return

    lookbacks = [int(v) for v in args.lookbacks.split(",")]
    results: list[dict] = []
    failed: set[str] = set()
    for lookback in lookbacks:
        for model in args.models.split(","):
            if model in failed:
                row = {"status": "skipped (failed at a smaller lookback)"}
            else:
                row = run_one(model, lookback, args.steps, args.threads, args.timeout, args.mem_gb)
                if row["status"] != "ok":
                    failed.add(model)
            row = {"model": model, "lookback": lookback, "horizon": HORIZON, "batch": BATCH, **row}
            results.append(row)
            if row["status"] == "ok":
                print(f"{model:<15} L={lookback:<6} train step {row['train_step_s']:8.3f} s  predict "
                      f"{row['predict_s']:8.3f} s  peak RSS {row['peak_rss_mb']:8.0f} MB", flush=True)
            else:
                print(f"{model:<15} L={lookback:<6} {row['status']} {row.get('error', '')}", flush=True)
    for model in args.models.split(","):  # growth per 4x lookback, where both ends ran
        ok = {r["lookback"]: r for r in results if r["model"] == model and r["status"] == "ok"}
        for small, large in zip(lookbacks, lookbacks[1:]):
            if small in ok and large in ok:
                factor = large / small
                print(f"{model:<15} L {small} -> {large} (x{factor:g}): train step "
                      f"x{ok[large]['train_step_s'] / ok[small]['train_step_s']:.2f}, predict "
                      f"x{ok[large]['predict_s'] / ok[small]['predict_s']:.2f}, peak RSS "
                      f"x{ok[large]['peak_rss_mb'] / ok[small]['peak_rss_mb']:.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"horizon": HORIZON, "batch": BATCH, "timed_steps": args.steps, "threads": args.threads, "timeout_s": args.timeout,
            "mem_limit_gb": args.mem_gb, "cpu_count": os.cpu_count(), "load_average_at_end": os.getloadavg()}
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
