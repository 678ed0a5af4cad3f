"""How training runs (TrainConfig, the settings fit passes to the loop) and how long: the batch size, the step budget, the validation rounds and patience.

The automatic budget is about 200 optimisation steps and at least 4 epochs (small data needs more
passes), capped at ``Schedule.max_auto_steps`` steps so that its cost does not grow with the data.
When the cap binds, an epoch is longer than the budget allows, and validation comes every round of
``max_auto_steps // min_epochs`` steps instead of after every epoch; early stopping counts rounds.
Below the cap the budget is what it was before the cap, step for step. When the cap binds, a model
whose windows cost much to compute (the attention models on a big panel) also takes smaller batches,
so that the budget computes at most ``Schedule.max_auto_flops``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import UsageError
from .registry import POINT_LOSSES

TRAINING_STEP = 3  # a training step costs about three forwards (forward, and a backward twice as long)
# Validation scores at most about this many windows (``windows.build_windows``'s ``at_most``): beyond it every
# series keeps every k-th of its validation windows, counted back from its last. Consecutive windows share all
# but one of their values, and a fit validates often (every round of every probe, and once more to score it):
# on M4 Weekly (36,000 validation windows, 10 % of 367,000 rows) one pass of the transformer took 35 s, and
# the default fit's 21 passes cost more than its training steps. ETT (2,900) and M3 (one to a few per
# series) stay whole.
VALIDATION_WINDOWS = 4096


@dataclass(frozen=True)
class Schedule:
    """The training loop's rules of thumb, in one place, recorded in every checkpoint."""

    warmup_divisor: int = 20  # the learning rate warms up linearly over the first 1/20 of the steps,
    lr_floor: float = 0.55  # then decays on a cosine from the peak to 55 % of it
    min_epochs: int = 4  # the automatic budget: at least 4 epochs ...
    min_steps: int = 200  # ... and at least about 200 optimisation steps (small data needs more passes),
    # ... but at most 2,000 steps, validated every 2000 / 4 = 500 steps when epochs are longer than that.
    # It binds only above 128,000 training windows (more than 500 steps of 256 an epoch); every ETT run
    # of docs/benchmarks.md takes 204 steps (51 an epoch) and trains exactly as before. Measured on a
    # 400-series hourly panel (300k windows; docs/benchmarks.md, "A bounded default budget"), a default
    # gru fit at 1,000 / 2,000 / 4,028 steps (the last is the uncapped 4 epochs) took 55 / 87 / 181 s
    # with test MASE 0.91 / 0.78 / 0.71: 2,000 keeps most of the accuracy at half the 3-minute target;
    # 1,000 (neuralforecast's default max_steps) cost 28 % in MASE. 0 = no cap (checkpoints before it).
    max_auto_steps: int = 2000
    batch_divisor: int = 50  # the automatic batch: 1/50 of the training windows (about 50 steps an epoch),
    min_batch: int = 32  # but at least 32 ...
    max_batch: int = 256  # ... and at most 256 windows
    # ... and, when max_auto_steps binds, small enough that the budget computes at most this many FLOPs
    # (steps x batch x 3 forwards of one window). On M4 Weekly (360k windows) the attention models
    # took 15 to 38 minutes at batch 256 on one thread, 25 TFLOP for the transformer; 10 TFLOP cuts
    # transformer, informer and transformer_xl to batches of about 100, 80 and 55, and binds for no
    # other model there, nor on ETT or M3 (their budgets are below the step cap). 0 = no cap
    # (checkpoints before it).
    max_auto_flops: float = 1e13
    improvement: float = 1e-7  # validation loss must fall by more than this to count as better
    patience_share: float = 0.1  # early stopping's patience spans at least this share of the steps
    warm_start_divisor: int = 4  # a warm start (--init-from) takes 1/4 of a fresh fit's automatic steps


def auto_batch_size(n_windows: int, schedule: Schedule = Schedule(), window_flops: float = 0.0) -> int:
    """About 50 steps per epoch: batches of 1/50 of the windows, between 32 and 256.

    Small data keeps small batches (enough steps to learn); large data gets large batches, which
    cost little more per step on a CPU than small ones, so an epoch takes a bounded number of steps.
    With ``window_flops`` (one window's forward) and the step cap binding, the batch is cut (to no
    fewer than 32) so that the automatic budget computes at most ``schedule.max_auto_flops``.
    """
    batch = int(min(schedule.max_batch, max(schedule.min_batch, n_windows // schedule.batch_divisor)))
    if window_flops and schedule.max_auto_flops and schedule.max_auto_steps:
        total, _ = auto_budget(math.ceil(n_windows / batch), schedule)
        if total == schedule.max_auto_steps:
            affordable = int(schedule.max_auto_flops / (total * TRAINING_STEP * window_flops))
            batch = max(schedule.min_batch, min(batch, affordable))
    return batch


def auto_epochs(steps_per_epoch: int, schedule: Schedule = Schedule()) -> int:
    """At least 4 epochs and at least about 200 optimisation steps (small data needs more passes)."""
    return max(schedule.min_epochs, math.ceil(schedule.min_steps / max(steps_per_epoch, 1)))


def auto_budget(steps_per_epoch: int, schedule: Schedule = Schedule()) -> tuple[int, int]:
    """The automatic budget: (steps in all, steps between validations).

    ``auto_epochs`` epochs, validated after each, while that is at most ``max_auto_steps`` steps;
    beyond, ``max_auto_steps`` steps validated every ``max_auto_steps // min_epochs`` of them, so that
    early stopping still has as many rounds to judge. The windows of every step are drawn from one
    random permutation of all training windows per epoch, so a budget shorter than an epoch still
    samples every series.
    """
    total = steps_per_epoch * auto_epochs(steps_per_epoch, schedule)
    cap = schedule.max_auto_steps
    if not cap or total <= cap:
        return total, steps_per_epoch
    return cap, max(1, min(steps_per_epoch, cap // schedule.min_epochs))


@dataclass(frozen=True)
class Budget:
    """What ``train`` will run: batch, steps, validation rounds, patience and warm-up."""

    batch_size: int
    steps_per_epoch: int
    total: int  # optimisation steps in all, unless early stopping or the time budget ends sooner
    round_steps: int  # steps between validations: an epoch, or a round of the capped automatic budget
    patience: int  # validation rounds without improvement before early stopping
    warmup: int  # learning-rate warm-up steps (early stopping never fires during them)

    @property
    def rounds(self) -> int:
        return math.ceil(self.total / self.round_steps)

    @property
    def unit(self) -> str:
        return "epoch" if self.round_steps == self.steps_per_epoch else "round"

    def validation_steps(self) -> list[int]:
        """The steps after which validation comes, if nothing stops training early."""
        return [min(k * self.round_steps, self.total) for k in range(1, self.rounds + 1)]


def plan_budget(n_windows: int, rules: Schedule = Schedule(), *, epochs: int = 0, max_steps: int = 0,
                batch_size: int = 0, patience: int = 2, warm_start: bool = False, share: float = 1.0,
                window_flops: float = 0.0) -> Budget:
    """The budget ``train`` runs on ``n_windows`` training windows (the arguments are TrainConfig's,
    0 = automatic): ``epochs`` whole epochs (the automatic epochs when only ``max_steps`` is given)
    cut to ``max_steps``, or else the automatic budget (``auto_budget``), of which a warm start
    takes ``1 / warm_start_divisor``; ``window_flops`` bounds the automatic budget's compute
    (``auto_batch_size``). ``share`` < 1: a probe (``choosing.py``) of that share of the
    steps, validated at least twice."""
    batch_size = batch_size or auto_batch_size(n_windows, rules, 0.0 if epochs or max_steps else window_flops)
    per_epoch = math.ceil(n_windows / batch_size)
    if epochs or max_steps:  # the user's budget, as before the automatic cap
        total, round_steps = per_epoch * (epochs or auto_epochs(per_epoch, rules)), per_epoch
    else:
        total, round_steps = auto_budget(per_epoch, rules)
        if warm_start:
            total = max(1, total // rules.warm_start_divisor)
    if max_steps:
        total = min(total, max_steps)
    if share < 1:
        total = max(1, math.ceil(total * share))
        round_steps = max(1, min(round_steps, math.ceil(total / 2)))
    return Budget(batch_size, per_epoch, total, round_steps,
                  patience=patience_epochs(patience, round_steps, total, rules),
                  warmup=max(1, total // rules.warmup_divisor))


def patience_epochs(patience: int, steps_per_epoch: int, total_steps: int, schedule: Schedule = Schedule()) -> int:
    """Validation rounds without improvement before stopping: ``patience``, but never less than a
    tenth of the budget. On short series an epoch is a few steps, and two of them are no test of a
    model. ``steps_per_epoch`` is the steps of a round (an epoch, or a round of the capped budget)."""
    return max(patience, math.ceil(schedule.patience_share * total_steps / max(steps_per_epoch, 1)))


@dataclass(frozen=True)
class TrainConfig:
    """How to optimise: budget, batch, learning rate, early stopping, seed, device and threads."""

    epochs: int = 0  # 0 = the automatic budget (auto_budget): about 200 steps, at least 4 epochs, at most 2,000 steps
    max_steps: int = 0  # 0 = no cap beyond epochs
    time_budget: float = 0.0  # seconds of training; when spent, validate once more and stop (0 = none)
    batch_size: int = 0  # 0 = auto_batch_size(number of training windows)
    lr: float = 0.0  # 0 = the model's declared learning rate
    weight_decay: float = 1e-4  # on weight matrices only, never on biases or norms
    patience: int = 2
    clip: float = 1.0
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # torch intra-op threads; 0 = chosen by threads.pick_threads (as run: the count used)
    loss: str = "auto"  # the point loss on scaled values: mse, mae, or auto (as run: the one used; see auto_loss)
    schedule: Schedule = Schedule()
    qat: bool = False  # train aware of int8 weights (quantization.fake_int8): for export --int8

    def __post_init__(self) -> None:
        # Each rule is written as "inside the range", so NaN, which compares false, fails as well.
        rules = {"epochs": (self.epochs >= 0, "at least 0 (0 = the automatic budget)"),
                 "max_steps": (self.max_steps >= 0, "at least 0 (0 = no cap)"),
                 "batch_size": (self.batch_size >= 0, "at least 0 (0 = auto)"),
                 "patience": (self.patience >= 1, "at least 1"),
                 "lr": (0 <= self.lr <= 1, "in [0, 1] (0 = the model's default)"),
                 "weight_decay": (0 <= self.weight_decay < 1, "in [0, 1)"),
                 "clip": (self.clip > 0, "above 0"),
                 "time_budget": (0 <= self.time_budget < math.inf, "a number of seconds above 0, or 0 for none"),
                 "threads": (self.threads >= 0, "a number of threads, or 0 to choose them for the work"),
                 "seed": (0 <= self.seed < 2**32, "a whole number from 0 to 4294967295")}
        bad = [(name, need) for name, (ok, need) in rules.items() if not ok]
        if bad:
            name, need = bad[0]
            value = getattr(self, name)
            shown = f"{value:g}" if isinstance(value, float) else value  # as typed: -1, not -1.0
            raise UsageError(f"--{name.replace('_', '-')} {shown}: must be {need}")
        if self.loss not in ("auto", *POINT_LOSSES):
            raise UsageError(f"--loss {self.loss}: choose auto or one of {', '.join(POINT_LOSSES)}")
