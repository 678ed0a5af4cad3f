"""``seqcast fit``, ``seqcast tune`` and ``seqcast distill`` as library calls: a request in, a saved checkpoint out.

fit coordinates what surrounds ``training.fit``: a warm start (read whole, and read again under the
lock when it is continued in place), the output's lock and ``--force``, and torchrun, where every rank
trains and rank 0 alone reports and writes (the ranks agree before any trains).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import SeqcastError, UsageError
from . import Quiet, Reading, Reporter, load


@dataclass(frozen=True, kw_only=True)
class FitRequest:
    data: str  # a file, or - for stdin
    model: Any  # training.ModelConfig as asked (its name None: gru, or the warm start's model)
    training: Any  # budget.TrainConfig
    reading: Reading = Reading()
    output: Path | None = None  # None: MODEL.ckpt here
    force: bool = False
    wait: bool = False
    init_from: Path | None = None
    split: Any = None  # windows.Split, or None for the automatic split
    candidates: tuple[str, ...] = ()  # --model auto's portfolio (auto.portfolio); () = the default one


@dataclass(frozen=True)
class Fitted:
    forecaster: Any  # the forecaster.Forecaster saved (under torchrun: rank 0's; on other ranks, unsaved)
    output: Path
    seconds: float
    writer: bool  # this process wrote the checkpoint (False on torchrun ranks other than 0)


def fit_output(request: FitRequest) -> Path:
    """Where ``request`` writes: ``--output``, else MODEL.ckpt here (MODEL the one asked, or the warm start's)."""
    if request.output is not None:
        return request.output
    return Path(f"{request.model.name or _init_name(request.init_from) or 'auto'}.ckpt")


def _init_name(init_from: Path | None) -> str | None:
    from ..checkpoint import load as load_checkpoint

    return load_checkpoint(init_from).name if init_from else None


def fit_to_file(request: FitRequest, reporter: Reporter, other_ranks: Reporter = Quiet()) -> Fitted:
    """Train the model ``request`` asks for and save it; under torchrun (``distributed.from_environment``)
    every rank trains, rank 0 reports to ``reporter`` and writes, the others report to ``other_ranks``."""
    from .. import checkpoint
    from ..distributed import close, from_environment, peer_failure
    from ..files import locked_output, same_file
    from ..workers import available_cores
    from ..fitting import fit, requested_model

    init = checkpoint.load(request.init_from) if request.init_from else None
    model_config = requested_model(request.model, init)
    reading = request.reading.for_fit(init)
    output = request.output or Path(f"{model_config.name}.ckpt")
    dist = from_environment(request.training.device)
    writer = dist is None or dist.rank == 0
    config = request.training
    reporter = reporter if writer else other_ranks
    if dist and not config.threads:  # the cores shared among the ranks of this host
        config = replace(config, threads=max(1, available_cores() // dist.local_world_size))
    try:
        with contextlib.ExitStack() as stack:
            refused = None
            if writer:
                try:
                    stack.enter_context(locked_output(output, force=request.force, wait=request.wait))
                    if same_file(request.init_from, output):  # in place: continue from what the last run wrote
                        init = checkpoint.load(request.init_from)
                except SeqcastError as exc:
                    refused = exc
            if dist and not dist.all_agree(refused is None):  # every rank stops before training
                raise refused or UsageError(f"rank 0 cannot write {output} (its message says why); nothing was trained")
            if refused:
                raise refused
            series = load(reporter, request.data, reading, describe=True)
            started = time.perf_counter()
            if model_config.name == "auto":
                fitted = _fit_auto(request, series, model_config, config, init, dist, reporter)
            else:
                with reporter.progress(model_config.name) as progress:
                    fitted = fit(series, model_config, config, split=request.split, on_epoch=progress.epoch,
                                 on_step=progress.step, init=init, dist=dist)
            seconds = time.perf_counter() - started
            reporter.notes([n for n in fitted.notes if n not in series.notes], fitted.training.warnings)
            if writer:
                fitted = checkpoint.save(output, fitted)
    except RuntimeError as exc:
        stopped = peer_failure(exc, dist)  # another rank of a torchrun went away: say so, exit 2
        if stopped is None:
            close(dist)
            raise
        raise stopped from None  # the group is left as it is: tearing down a broken one can abort the process
    except BaseException:
        close(dist)
        raise
    close(dist)
    return Fitted(fitted, output, seconds, writer)


def _fit_auto(request: FitRequest, series: Any, model_config: Any, config: Any, init: Any, dist: Any,
              reporter: Reporter) -> Any:
    """``--model auto``: the portfolio, each network's progress on its own bar (a terminal) or one line per
    candidate as it ends (otherwise)."""
    from ..auto import fit_auto

    if dist is not None:
        raise UsageError("--model auto does not run under torchrun; give one --model to train data-parallel")
    given = bool(config.time_budget)

    def started(names: list[str], budget: float, windows: int) -> None:
        why = "--time-budget" if given else f"the default for {windows:,} training windows"
        reporter.say(f"auto: candidates {', '.join(names)}; time budget {budget:g} s ({why})")

    return fit_auto(series, model_config, config, request.split, candidates=request.candidates, init=init,
                    progress=lambda name: reporter.progress(f"auto: {name}", epochs=False),
                    on_start=started, on_candidate=lambda c: reporter.say(_candidate_line(c)))


def _candidate_line(candidate: Any) -> str:
    """One line for a candidate auto has finished with."""
    note = f" ({candidate.note})" if candidate.note else ""
    return f"auto: {candidate.name} {candidate.status} in {candidate.seconds:.1f} s{note}"


@dataclass(frozen=True, kw_only=True)
class TuneRequest:
    data: str
    model: Any  # training.ModelConfig: the model, the hyperparameters fixed, lookback, horizon, window norm
    training: Any  # budget.TrainConfig
    study: Any  # tuning.TuneConfig
    reading: Reading = Reading()
    output: Path | None = None  # None: MODEL.tuned.ckpt here
    force: bool = False
    split: Any = None


def tune_output(request: TuneRequest) -> Path:
    return request.output or Path(f"{request.model.name}.tuned.ckpt")


def tune_to_file(request: TuneRequest, reporter: Reporter, on_trial=None) -> tuple[Any, list]:
    """Search ``request.model``'s hyperparameters, fit the best again and save it; returns the saved
    forecaster and the trials' rows (``on_trial(row)`` as each trial ends)."""
    from .. import checkpoint
    from ..files import locked_output
    from ..fitting import requested_model
    from ..tuning import repair_journal, require_optuna, tune

    require_optuna()
    reporter.notes([note for note in [repair_journal(request.study.storage)] if note])
    model_config = requested_model(request.model)
    with locked_output(tune_output(request), force=request.force):
        series = load(reporter, request.data, request.reading.fresh(), describe=True)
        fitted, rows = tune(series, model_config, request.training, request.study, request.split, on_trial=on_trial)
        reporter.notes([n for n in fitted.notes if n not in series.notes], fitted.training.warnings)
        return checkpoint.save(tune_output(request), fitted), rows


@dataclass(frozen=True, kw_only=True)
class DistillRequest:
    teacher: Path  # the checkpoint that teaches
    data: str  # a file, or - for stdin: read as the teacher reads its data
    model: Any  # fitting.ModelConfig of the student (its name one of distill.STUDENTS)
    training: Any  # budget.TrainConfig (qat: aware of int8 weights)
    weight: float  # the teacher's share of each target
    teacher_time: float = 300.0  # the most seconds the teacher spends forecasting training windows
    max_bytes: int = 0  # the student's int8 ONNX file at most this size; 0 = no budget
    reading: Reading = Reading()
    output: Path | None = None  # None: MODEL.student.ckpt here
    force: bool = False
    split: Any = None  # windows.Split; None: the teacher's explicit split, else the automatic one


def distill_output(request: DistillRequest) -> Path:
    return request.output or Path(f"{request.model.name}.student.ckpt")


def distill_to_file(request: DistillRequest, reporter: Reporter) -> Fitted:
    """Distil ``request.teacher`` into the student asked for and save it (``distill.distill``)."""
    from .. import checkpoint
    from ..distill import Teaching, distill
    from ..files import locked_output

    teacher = checkpoint.load(request.teacher)
    output = distill_output(request)
    with locked_output(output, force=request.force):
        series = load(reporter, request.data, request.reading.for_fit(teacher), describe=True)
        started = time.perf_counter()
        reporter.say(f"distill: {teacher.name} ({request.teacher}) forecasts the training windows first, in at most "
                     f"{request.teacher_time:g} s; then {request.model.name} trains on them")
        with reporter.progress(request.model.name) as progress:
            fitted = distill(Teaching(teacher, request.weight, request.teacher_time), series, request.model,
                             request.training,
                             split=request.split, max_bytes=request.max_bytes, on_epoch=progress.epoch,
                             on_step=progress.step)
        seconds = time.perf_counter() - started
        reporter.notes([n for n in fitted.notes if n not in series.notes], fitted.training.warnings)
        return Fitted(checkpoint.save(output, fitted), output, seconds, True)
