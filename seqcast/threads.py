"""How many torch intra-op threads a run uses: chosen for the work and the free cores, set around the
work and restored after.

Why not torch's default (one thread per core): a thread only pays when each operation has enough
work to split, and when a core is free to run it. seqcast's models are small; on a 2-core machine
shared with other jobs, the default made a gru fit 8x slower than one thread (164 s against 21.6 s),
because every operation waits for the thread whose core another process holds. Measured with
``benchmarks/threads.py`` (docs/benchmarks.md, "Threads"): under other jobs' load a second thread
made nearly every model's training step slower (2x to 100x); on a quieter machine it paid 1.1x to
1.9x for steps of 2.5 billion FLOPs and more (tcn, cnn, patchtst, transformer at batch 256), and
little or nothing below (0.8x to 1.4x, gru 1.0x).

The rule (``pick_threads``): one thread per ``FLOPS_PER_THREAD`` of work in one call (a training
step's forward and backward, or one forward of a batch of windows), at most the cores free now and
at most what torch already allows (``OMP_NUM_THREADS``, ``torch.set_num_threads``, or a caller's
share of the machine), at least one. ``--threads N`` replaces the rule.

Results on CPU depend, in their last bits, on the thread count for convolutional and attention
models (their reductions split by thread); every checkpoint records the count it trained with.
"""

from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from .budget import TRAINING_STEP  # noqa: F401  (fitting.py imports it from here)
from .errors import UsageError

# A training step or forward call needs about this many FLOPs per thread before another thread pays
# (docs/benchmarks.md, "Threads"): below it, the fork/join of every small operation costs more than
# the split saves. The gru of a default ETTh1 fit (batch 256) does about 0.5e9 per step; a transformer
# at batch 256 about 14e9.
FLOPS_PER_THREAD = 2e9

_IMPORTED = (time.monotonic(), time.process_time())  # to estimate this process's own share of the load


def check_threads(requested: int) -> int:
    """``--threads`` as given: 0 (automatic) or a count of threads."""
    if not isinstance(requested, int) or requested < 0:
        raise UsageError(f"--threads {requested}: must be a number of threads, or 0 to choose them for the work")
    return requested


def free_cores() -> int:
    """Cores this process may run on (its affinity mask) less those other processes keep busy, at least 1.

    Busy cores: the 1-minute load average less this process's own part of it, or the processes
    running at this moment, whichever is more (a job started seconds ago barely moves the average),
    as a share of this process's cores when it may use only some of the machine's.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return cores
    started, cpu = _IMPORTED
    age = max(time.monotonic() - started, 1e-9)
    own = (time.process_time() - cpu) / age * (1 - math.exp(-age / 60))  # load1 averages over a minute
    share = cores / (os.cpu_count() or cores)
    busy = max(round((load - own) * share), round(_running_elsewhere() * share))
    return max(1, cores - busy)


def _running_elsewhere() -> int:
    """Processes running right now besides this one (Linux: /proc/loadavg), else 0."""
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            running = int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return 0
    return max(0, running - 1)  # the reading process itself is running


@torch.no_grad()
def forward_flops(model: nn.Module, x: torch.Tensor, covariates: dict[str, torch.Tensor] | None = None) -> float:
    """FLOPs of ``model``'s forward on the windows ``x`` (B, L, C) and their ``covariates`` (the contract's
    keywords), counted by torch's FlopCounterMode.

    LSTM layers run as one fused operation the counter does not see; they are counted from their
    weights (2 FLOPs per weight per step and window). The count runs in eval mode with the random
    state restored, so it changes nothing that training does afterwards.
    """
    from torch.utils.flop_counter import FlopCounterMode

    lstm_flops = []

    def count_lstm(module: nn.LSTM, inputs, _output) -> None:
        steps = inputs[0].shape[1 if module.batch_first else 0]
        weights = sum(p.numel() for name, p in module.named_parameters() if name.startswith("weight"))
        lstm_flops.append(2 * weights * steps * len(x))

    hooks = [m.register_forward_hook(count_lstm) for m in model.modules() if isinstance(m, nn.LSTM)]
    training = model.training
    try:
        model.eval()
        with torch.random.fork_rng(devices=[]), FlopCounterMode(display=False) as counter:
            model(x, **(covariates or {}))
    finally:
        model.train(training)
        for hook in hooks:
            hook.remove()
    return float(counter.get_total_flops() + sum(lstm_flops))


def work_per_call(model: nn.Module, x: torch.Tensor, covariates: dict[str, torch.Tensor] | None, batch: int,
                  training: bool) -> float:
    """FLOPs of one call: a training step (``training``) or a forward of ``batch`` windows, from one window."""
    one = forward_flops(model, x[:1], {k: v[:1] for k, v in (covariates or {}).items()})
    return one * batch * (TRAINING_STEP if training else 1)


def pick_threads(flops: float, cores: int | None = None, ceiling: int | None = None) -> int:
    """Intra-op threads for calls of ``flops`` each: one per ``FLOPS_PER_THREAD``, at most ``cores``
    (default: ``free_cores()``) and ``ceiling`` (default: torch's current setting, which holds
    ``OMP_NUM_THREADS`` or a caller's ``torch.set_num_threads``), at least one."""
    cores = free_cores() if cores is None else cores
    ceiling = torch.get_num_threads() if ceiling is None else ceiling
    return max(1, min(cores, ceiling, int(flops // FLOPS_PER_THREAD)))


def sample_inputs(lookback: int, horizon: int, n_features: int, widths: tuple[int, int, int] = (0, 0, 0)
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One window of zeros of the model contract's shapes (covariates of ``widths`` P, F, S), to count
    a forward's FLOPs."""
    past, future, static = widths
    shapes = {"past": (1, lookback, past), "future": (1, lookback + horizon, future), "static": (1, static)}
    return torch.zeros(1, lookback, n_features), {k: torch.zeros(shape) for k, shape in shapes.items() if shape[-1]}


def forecast_threads(requested: int, ckpt, windows: int) -> int:
    """Threads to forecast ``windows`` windows with checkpoint ``ckpt``: ``requested``, or 0 = automatic."""
    if check_threads(requested):
        return requested
    batch = min(max(windows, 1), 2048)
    if ckpt.training.window_flops is not None:  # recorded at fit: counting again costs seconds of imports
        return pick_threads(ckpt.training.window_flops * batch)
    x, covariates = sample_inputs(ckpt.lookback, ckpt.horizon, len(ckpt.schema.targets), ckpt.covariates.widths)
    return pick_threads(work_per_call(ckpt.model, x, covariates, batch, training=False))


@contextmanager
def using_threads(count: int) -> Iterator[int]:
    """Run the block with ``count`` torch intra-op threads; the previous setting is restored after."""
    previous = torch.get_num_threads()
    if count != previous:
        torch.set_num_threads(count)
    try:
        yield count
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)
