"""The one training loop every model uses: from a network and its windows to the weights that validate best.

AdamW, MSE or MAE on scaled values (``--loss``; plus the pinball loss of a quantile head's other
quantiles), gradient clipping, warm-up then cosine learning-rate decay, early
stopping on the validation windows (the best weights are kept), seeding, CPU or CUDA (bf16 autocast
on CUDA). How many steps, and when validation comes, is ``budget.py``'s; an optional time budget
ends training early (the best weights are still kept). ``fitting.fit`` prepares the data, chooses
the settings and runs this loop. Library code never prints: progress goes to the callbacks the caller passes.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from torch import nn

from . import int8, quantile_head
from .budget import TrainConfig, plan_budget
from .distributed import Distributed
from .errors import TrainingError, UsageError
from .windows import WindowSet

# Above this many training windows an epoch draws its windows at random, SAMPLED_BLOCK at a time,
# instead of permuting them all (a permutation is 8 bytes a window: 256 MB here).
SAMPLED_ABOVE = 1 << 25
SAMPLED_BLOCK = 1 << 20


@dataclass(frozen=True)
class EpochReport:
    """One validation round: an epoch, or ``round_steps`` steps when an epoch is longer than the
    automatic budget's round (``unit`` says which)."""

    epoch: int
    epochs: int
    steps: int
    train_loss: float
    val_loss: float
    best: bool
    seconds: float
    unit: str = "epoch"  # "epoch", or "round" when validation comes every round_steps steps within epochs
    probe: str = ""  # the settings a probe trains (choosing.py), e.g. "window norm last, loss mae"; "" = the fit


# Why training ended (TrainResult.stopped, recorded in the checkpoint).
STOPPED = {"budget": "step budget spent", "early_stopping": "early stopping (no validation improvement)",
           "time_budget": "time budget spent", "nothing_to_train": "nothing to train"}


@dataclass
class TrainResult:
    val_loss: float
    epochs: int  # validation rounds run (epochs unless round_steps < steps_per_epoch)
    steps: int
    seconds: float
    batch_size: int = 0
    history: list[EpochReport] = field(default_factory=list)
    best_epoch: int = 0  # the round whose weights were kept; 0 = the starting weights
    steps_per_epoch: int = 0
    round_steps: int = 0  # steps between validations
    stopped: str = "nothing_to_train"  # a key of STOPPED


def _parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on weight matrices (2-D and up) only: decaying biases, norm gains or scalars
    towards zero regularises nothing and pulls a norm layer's scale off one."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available here; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise UsageError(f"--device {name!r}: choose auto, cpu or cuda")
    return torch.device(name)


def _autocast(device: torch.device):
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the weights, to restore the best epoch's after training."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _forward(model: nn.Module, windows: WindowSet, index, qat: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    x, y, covariates = windows.batch(index)
    return (int8.forward(model, x, **covariates) if qat else model(x, **covariates)), y


def epoch_batches(count: int, local_batch: int, generator: torch.Generator, dist: Distributed | None,
                  device: torch.device) -> Iterator[torch.Tensor]:
    """The windows of each step of one epoch over ``count`` windows: a fresh random permutation of all
    of them; above ``SAMPLED_ABOVE`` windows, ``count`` windows drawn at random (with replacement) a
    block at a time, so that no array as long as the windows is made. Every rank draws the same
    numbers from the seed; rank r takes positions r, r + world, ... of them (an equal share each), so
    the windows of a step are those one process would take."""
    world, rank = (dist.world_size, dist.rank) if dist else (1, 0)
    step = local_batch * world  # the windows of one step, all ranks together
    block = count if count <= SAMPLED_ABOVE else max(1, SAMPLED_BLOCK // step) * step
    for first in range(0, count, block):
        drawn = torch.randperm(count, generator=generator) if block == count else \
            torch.randint(count, (min(block, count - first),), generator=generator)
        if dist:
            drawn = drawn[: len(drawn) - len(drawn) % world][rank::world]
        drawn = drawn.to(device)
        for start in range(0, len(drawn), local_batch):
            yield drawn[start : start + local_batch]


@torch.no_grad()
def evaluate_loss(model: nn.Module, windows: WindowSet, batch_size: int = 1024,
                  loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                  dist: Distributed | None = None, qat: bool = False) -> float:
    """The training objective over all windows: mean squared error (mean over windows x steps x
    channels), or the mean of ``loss`` (the MAE, or a quantile head's loss). With ``dist`` each rank
    scores its shard and the sums are added over the ranks: every rank gets the same number. ``qat``:
    with the weights rounded to int8 (``int8.forward``), as quantization-aware training validates."""
    if len(windows) == 0:
        return float("nan")
    model.eval()
    device = windows.values.device
    first, end = dist.shard(len(windows)) if dist else (0, len(windows))
    total, count = 0.0, 0
    for start in range(first, end, batch_size):
        with _autocast(device):
            pred, y = _forward(model, windows, slice(start, min(start + batch_size, end)), qat)
        total += float(((pred.float() - y) ** 2).sum()) if loss is None else float(loss(pred.float(), y)) * y.numel()
        count += y.numel()
    if dist:
        total, count = dist.all_sum([total, count], device)
    return total / count


def train(model: nn.Module, train_set: WindowSet, val_set: WindowSet, config: TrainConfig,
          on_epoch: Callable[[EpochReport], None] | None = None,
          on_step: Callable[[int, int], None] | None = None, warm_start: bool = False,
          loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
          dist: Distributed | None = None, share: float = 1.0, window_flops: float = 0.0) -> TrainResult:
    """Optimise ``model`` on ``train_set``; keep the weights with the lowest validation loss.

    The budget: ``config.epochs`` passes, or the automatic budget (``auto_budget``), cut to
    ``config.max_steps``; a warm start (weights already trained) takes ``1 / schedule.warm_start_divisor``
    of the automatic budget. Validation comes after every epoch, or every round of steps when the
    automatic budget is shorter than its epochs would be; early stopping counts those rounds. With
    ``config.time_budget``, training validates once more and stops when that many seconds have passed.
    ``loss`` replaces the mean squared error (``quantile_head.quantile_loss`` for a quantile head).

    With ``dist`` (torchrun) the model trains as DistributedDataParallel: the budget and the batch
    are the whole run's, each rank takes its 1/world_size of every batch from the same permutation
    (so the steps, and the windows seen, are those of one process), and validation is summed over
    the ranks' shards, so that every rank makes the same decisions. ``share`` < 1 trains a probe on that
    share of the budget (``budget.plan_budget``).
    """
    objective = loss or quantile_head.mse
    device = resolve_device(config.device)
    model.to(device)
    train_set, val_set = train_set.to(device), val_set.to(device)
    started = time.perf_counter()
    params = [p for p in model.parameters() if p.requires_grad]
    if not params or len(train_set) == 0:
        return TrainResult(evaluate_loss(model, val_set, loss=loss), 0, 0, time.perf_counter() - started)

    generator = torch.Generator().manual_seed(config.seed)
    rules = config.schedule
    budget = plan_budget(len(train_set), rules, epochs=config.epochs, max_steps=config.max_steps,
                         batch_size=config.batch_size, patience=config.patience, warm_start=warm_start,
                         share=share, window_flops=window_flops)
    batch_size, per_epoch, total, round_steps = budget.batch_size, budget.steps_per_epoch, budget.total, budget.round_steps
    world = dist.world_size if dist else 1
    if world > min(len(train_set), batch_size):
        raise UsageError(f"{world} processes share each batch of {min(len(train_set), batch_size)} windows "
                         f"({len(train_set)} training windows), and each needs one at least: start at most "
                         f"{min(len(train_set), batch_size)} processes, or give a larger --batch-size")
    local_batch = batch_size // world  # each rank's share of a batch
    if dist and config.qat:
        raise UsageError("quantization-aware training does not run under torchrun; train the student in one process")
    if dist:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    else:
        net = model
    rounds, unit, warmup, patience = budget.rounds, budget.unit, budget.warmup, budget.patience
    optimizer = torch.optim.AdamW(_parameter_groups(model, config.weight_decay), lr=config.lr)
    floor = rules.lr_floor

    def lr_factor(s: int) -> float:  # warm-up, then cosine from 1 down to the floor at the last step
        return min(1.0, (s + 1) / warmup) * (floor + (1 - floor) * math.cos(math.pi * min(s, total) / total))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    # Training starts from the untrained weights' validation loss (for zero-head models under window
    # normalisation that is repeating the window's level), so the weights kept are never worse on validation.
    best_loss = evaluate_loss(model, val_set, loss=loss, dist=dist, qat=config.qat) if len(val_set) else math.inf
    best_state = _snapshot(model) if len(val_set) else None
    result = TrainResult(math.nan, 0, 0, 0.0, batch_size, steps_per_epoch=per_epoch, round_steps=round_steps)
    stale, step, done, stopped = 0, 0, 0, None
    running, batches = torch.zeros((), device=device), 0
    model.train()
    while stopped is None:  # one pass over the training windows per epoch (``epoch_batches``)
        for index in epoch_batches(len(train_set), local_batch, generator, dist, device):
            with _autocast(device):
                pred, y = _forward(net, train_set, index, config.qat)
                step_loss = objective(pred.float(), y)
            optimizer.zero_grad(set_to_none=True)
            step_loss.backward()
            nn.utils.clip_grad_norm_(params, config.clip)
            optimizer.step()
            schedule.step()
            running += step_loss.detach()
            batches += 1
            step += 1
            if on_step:
                on_step(step, total)
            late = bool(config.time_budget) and time.perf_counter() - started >= config.time_budget
            if dist and config.time_budget:  # every rank stops at the same step
                late = not dist.all_agree(not late)
            if step % round_steps and step < total and not late:
                continue
            done += 1  # a validation round ends here
            train_loss = float(running) / max(batches, 1)
            if dist:
                train_loss = dist.all_sum([train_loss], device)[0] / world
            if not math.isfinite(train_loss):
                raise TrainingError(
                    f"training loss became {train_loss} in {unit} {done}; no checkpoint written. "
                    "Try a lower --lr, or check the data for extreme values"
                )
            val_loss = (evaluate_loss(model, val_set, loss=loss, dist=dist, qat=config.qat) if len(val_set)
                        else train_loss)
            improved = val_loss < best_loss - rules.improvement
            if improved:
                best_loss, stale, result.best_epoch = val_loss, 0, done
                best_state = _snapshot(model)
            else:
                stale += 1
            report = EpochReport(done, rounds, step, train_loss, val_loss, improved, time.perf_counter() - started, unit)
            result.history.append(report)
            if on_epoch:
                on_epoch(report)
            if late:
                stopped = "time_budget"
            elif step >= total:
                stopped = "budget"
            elif stale >= patience and step >= warmup:  # never stop while still warming up
                stopped = "early_stopping"
            if stopped:
                break
            running, batches = torch.zeros((), device=device), 0
            model.train()
    if best_state is not None:
        model.load_state_dict(best_state)
    if config.qat:  # the weights kept are the int8 ones validated: an --int8 export then rounds nothing
        int8.snap(model)
    model.eval()
    result.val_loss, result.epochs, result.steps, result.stopped = best_loss, done, step, stopped
    result.seconds = time.perf_counter() - started
    return result


def objective(quantiles: tuple[float, ...], point_loss: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None:
    """The training objective: the point loss (None: the loop's MSE), under a quantile head with the pinball loss."""
    point = quantile_head.point_loss(point_loss)
    return quantile_head.quantile_loss(quantiles, point) if quantiles else (None if point_loss == "mse" else point)
