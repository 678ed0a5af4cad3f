"""Training-loop efficiency: seqcast's optimisation steps per second against a bare PyTorch loop.

Same model (a 2 x 128 LSTM by default), lookback 96, horizon 24, batch 32, AdamW, MSE, random
windows already in memory. The bare loop has no data pipeline and no framework; seqcast's run is
its real `training.train` (window views, clipping, schedule, early-stopping bookkeeping). Runs
alternate A B A B in one process and the medians are compared.

    python benchmarks/loop_efficiency.py [--cell lstm] [--steps 60] [--rounds 3]
"""

import argparse
import statistics
import time

import numpy as np
import torch
from torch import nn

from seqcast.window_norm import WindowNorm
from seqcast.build import create_model
from seqcast.budget import TrainConfig
from seqcast.training import train
from seqcast.windows import WindowSet

LOOKBACK, HORIZON, BATCH, HIDDEN, LAYERS = 96, 24, 32, 128, 2


class Bare(nn.Module):
    def __init__(self, cell: str):
        super().__init__()
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell](1, HIDDEN, LAYERS, batch_first=True)
        self.head = nn.Linear(HIDDEN, HORIZON)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1]).unsqueeze(-1)


def bare_loop(cell: str, steps: int, x: torch.Tensor, y: torch.Tensor) -> float:
    torch.manual_seed(0)
    model = Bare(cell)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    started = time.perf_counter()
    for _ in range(steps):
        index = torch.randint(0, len(x), (BATCH,))
        loss = nn.functional.mse_loss(model(x[index]), y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return steps / (time.perf_counter() - started)


def seqcast_loop(cell: str, steps: int, windows: WindowSet, empty: WindowSet) -> float:
    torch.manual_seed(0)
    model = WindowNorm(create_model(cell, LOOKBACK, HORIZON, 1, {"hidden_size": HIDDEN, "num_layers": LAYERS}), "none")
    config = TrainConfig(epochs=1, max_steps=steps, batch_size=BATCH, lr=1e-3, device="cpu")
    result = train(model, windows, empty, config)
    return result.steps / result.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    rows = 20_000
    values = torch.randn(rows, 1)
    span = LOOKBACK + HORIZON
    starts = np.arange(rows - span + 1)
    windows = WindowSet(values, None, starts, np.zeros(len(starts), int), starts + LOOKBACK, LOOKBACK, HORIZON)
    empty = WindowSet(values, None, starts[:0], starts[:0], starts[:0], LOOKBACK, HORIZON)
    x, y, _ = windows.batch(slice(None))
    x, y = x.contiguous(), y.contiguous()  # the bare loop gets materialised windows

    bare, ours = [], []
    bare_loop(args.cell, 5, x, y)  # warm-up
    seqcast_loop(args.cell, 5, windows, empty)
    for round_ in range(args.rounds):
        bare.append(bare_loop(args.cell, args.steps, x, y))
        ours.append(seqcast_loop(args.cell, args.steps, windows, empty))
        print(f"round {round_ + 1}: bare {bare[-1]:.2f} steps/s, seqcast {ours[-1]:.2f} steps/s", flush=True)
    b, s = statistics.median(bare), statistics.median(ours)
    print(f"{args.cell} {LAYERS}x{HIDDEN}, L={LOOKBACK}, H={HORIZON}, batch {BATCH}, threads {torch.get_num_threads()}: "
          f"bare {b:.2f} steps/s, seqcast {s:.2f} steps/s, ratio {s / b:.1%} (median of {args.rounds})")


if __name__ == "__main__":
    main()
