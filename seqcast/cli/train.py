"""Commands that train: fit, tune and distill. Each builds one typed request and makes one library call (runs.train)."""

import dataclasses
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import command, options, render
from ..build import DEFAULT_MAX_PARAMETERS
from .options import (Data, Fill, FillAgain, Horizon, Json, Levels, Lookback, MaxParameters, Param, SplitOpt,
                      Threads, TransformOpt, WindowNormOpt)
from .output import Output, to_json


@command(shared=(options.COLUMNS, options.READING, options.COVARIATES, options.TRAINING, options.SCHEDULE, options.MODELLING))
def fit(
    ctx: typer.Context,
    data: Data,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Registered model name (`seqcast models`), or auto: a weighted ensemble of a portfolio of models, chosen on the validation windows. Default: auto, or the --init-from checkpoint's model.")] = None,
    candidates: Annotated[Optional[str], typer.Option("--candidates", metavar="MODEL,...", help="--model auto: the models it tries (naive and seasonal_naive are always among them). Default: its validated portfolio.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Checkpoint path. Default: MODEL.ckpt here.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing checkpoint.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for another run writing the same checkpoint instead of exiting 75.")] = False,
    init_from: Annotated[Optional[Path], typer.Option("--init-from", help="Continue training from this checkpoint's weights: same model, windows and way of reading the data; a shorter default budget.")] = None,
    qat: Annotated[bool, typer.Option("--qat", help="Train aware of int8 weights (rounded in every forward, kept rounded), so that export --int8 forecasts what the checkpoint does.")] = False,
    fill: FillAgain = None,
    param: Param = None,
    split: SplitOpt = None,
    threads: Threads = 0,
    json_out: Json = False,
) -> None:
    """Train a model on a CSV and save a checkpoint.

    Under torchrun (`torchrun --nproc-per-node N -m seqcast fit ...`) the N processes train one model
    data-parallel; rank 0 reports and writes the checkpoint.
    """
    out: Output = ctx.obj
    from ..runs.train import FitRequest, fit_output, fit_to_file

    request = FitRequest(data=data, model=options.model_config(**ctx.params),
                         training=dataclasses.replace(options.train_config(**ctx.params), qat=qat),
                         reading=options.reading(**ctx.params), output=output, force=force, wait=wait,
                         init_from=init_from, split=options.split(split), candidates=options.names(candidates))
    options.check_files(ctx, output=fit_output(request))
    fitted = fit_to_file(request, out, other_ranks=dataclasses.replace(out, quiet=True))
    if not fitted.writer:
        return
    for line in render.fit_lines(fitted.forecaster, fitted.seconds, fitted.output):
        out.say(line)
    if json_out:
        out.emit(to_json({**fitted.forecaster.summary(), "seconds": fitted.seconds}), "-")


@command(shared=(options.COLUMNS, options.READING, options.COVARIATES, options.TRAINING))
def tune(
    ctx: typer.Context,
    data: Data,
    model: Annotated[str, typer.Option("--model", "-m", help="Registered model to tune (`seqcast models`).")] = "gru",
    trials: Annotated[int, typer.Option("--trials", help="Finished trials the study should hold (complete or pruned; a resumed study runs only those missing). 0 = run none: fit the study's best again.")] = 20,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Worker processes on this machine, sharing the study through --storage (each on --threads threads, 1 by default).")] = 1,
    storage: Annotated[Optional[str], typer.Option("--storage", help="Where the study lives: a journal file (processes and hosts sharing the filesystem can work on one study, and a killed search resumes) or a database URL Optuna supports. Default: in memory.")] = None,
    study: Annotated[Optional[str], typer.Option("--study", help="The study's name in --storage. Default: MODEL-hHORIZON.")] = None,
    search_budget: Annotated[float, typer.Option("--time-budget", metavar="SECONDS", help="Most seconds of trials for this search (each worker); the refit of the best comes after. 0 = none.")] = 0.0,
    no_prune: Annotated[bool, typer.Option("--no-prune", help="Run every trial to its end (default: stop trials worse than the median at the same round).")] = False,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Checkpoint of the best configuration. Default: MODEL.tuned.ckpt here.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing checkpoint.")] = False,
    lookback: Annotated[int, typer.Option("--lookback", "-L", help="Fix the lookback (default: searched among multiples of the horizon).")] = 0,
    horizon: Horizon = 0,
    fill: Fill = "none",
    param: Annotated[Optional[list[str]], typer.Option("--param", "-p", help="Fix a hyperparameter key=value (it is then not searched).")] = None,
    window_norm: Annotated[str, typer.Option("--window-norm", help="Fix the window normalisation (default auto: searched among last, mean, revin, deseason).")] = "auto",
    split: SplitOpt = None,
    threads: Threads = 0,
    max_parameters: MaxParameters = DEFAULT_MAX_PARAMETERS,
    json_out: Annotated[bool, typer.Option("--json", help="Print the trials table and the best trial as one JSON document on stdout.")] = False,
) -> None:
    """Search a model's hyperparameters with Optuna on the validation split, then fit the best.

    Each trial fits the model with values from its search space (`seqcast models --json` lists
    it) and is scored by validation MSE alone; the first trial of a study is the defaults. The
    best configuration is fit again and saved as an ordinary checkpoint, with the study's summary.
    """
    out: Output = ctx.obj
    from ..runs.train import TuneRequest, tune_output, tune_to_file
    from ..tuning import TuneConfig
    from ..workers import jobs_for_cores

    jobs_for_cores(jobs, threads)  # the workers' threads must fit the cores
    request = TuneRequest(data=data, model=options.model_config(**ctx.params),
                          training=options.train_config(**ctx.params),
                          study=TuneConfig(trials, jobs, storage, study, search_budget, not no_prune),
                          reading=options.reading(**ctx.params), output=output, force=force,
                          split=options.split(split))
    options.check_files(ctx, output=tune_output(request))
    fitted, rows = tune_to_file(request, out, on_trial=lambda row: out.say(render.trial_line(row)))
    for line in render.tune_lines(fitted, tune_output(request)):
        out.say(line)
    if json_out:
        out.emit(to_json(render.tune_document(fitted, tune_output(request), rows)), "-")


@command(shared=(options.READING_AGAIN, options.TRAINING, options.SCHEDULE))
def distill(
    ctx: typer.Context,
    checkpoint_path: Annotated[Path, typer.Argument(metavar="TEACHER", help="The checkpoint that teaches: any model, an auto ensemble included.")],
    data: Data,
    model: Annotated[str, typer.Option("--model", "-m", help="The student: lstm, gru, rnn, tcn or nlinear.")] = "gru",
    teacher_weight: Annotated[float, typer.Option("--teacher-weight", metavar="W", help="The teacher's share of each training target: (1 - W) x actual + W x the teacher's forecast, in (0, 1].")] = 0.5,
    teacher_time: Annotated[float, typer.Option("--teacher-time", metavar="SECONDS", min=1, help="The most seconds the teacher spends forecasting the training windows; a slow teacher (a statistical member fits each window) forecasts as many as fit, spread over every series, and the rest keep their real targets.")] = 300.0,
    max_bytes: Annotated[int, typer.Option("--max-bytes", metavar="N", min=0, help="Choose the student's width so that its int8 ONNX graph (export --int8: weights and operators, without the metadata) is at most N bytes. 0 = its default width.")] = 0,
    qat: Annotated[bool, typer.Option("--qat/--no-qat", help="Train aware of int8 weights (rounded in every forward, kept rounded), so that export --int8 forecasts what the checkpoint does.")] = True,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Checkpoint path. Default: MODEL.student.ckpt here.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing checkpoint.")] = False,
    lookback: Lookback = 0,
    window_norm: WindowNormOpt = "auto",
    transform: TransformOpt = "auto",
    level: Levels = None,
    param: Param = None,
    split: SplitOpt = None,
    threads: Threads = 0,
    max_parameters: MaxParameters = DEFAULT_MAX_PARAMETERS,
    json_out: Json = False,
) -> None:
    """Train a small student on a teacher's forecasts (knowledge distillation) and save its checkpoint.

    The data is read as the teacher reads its own. The student forecasts the teacher's horizon, and its
    training targets mix the real values with the teacher's forecasts; validation stays on the real
    values. The checkpoint records the teacher (path, digest) and the gap between them on validation.
    """
    out: Output = ctx.obj
    from ..runs.train import DistillRequest, distill_output, distill_to_file

    request = DistillRequest(teacher=checkpoint_path, data=data, model=options.model_config(**ctx.params),
                             training=dataclasses.replace(options.train_config(**ctx.params), qat=qat),
                             weight=teacher_weight, teacher_time=teacher_time, max_bytes=max_bytes,
                             reading=options.reading(**ctx.params),
                             output=output, force=force, split=options.split(split))
    options.check_files(ctx, output=distill_output(request))
    fitted = distill_to_file(request, out)
    for line in render.fit_lines(fitted.forecaster, fitted.seconds, fitted.output):
        out.say(line)
    if json_out:
        out.emit(to_json({**fitted.forecaster.summary(), "seconds": fitted.seconds}), "-")
