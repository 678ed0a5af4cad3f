"""Commands that score: evaluate and compare. Each builds one typed request and makes one library call
(runs.evaluate)."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from . import command, options, render
from .options import (Ckpt, CompareThreads, Data, Fill, Forecasts, Jobs, Json, LevelsAgain, MinLength, Plot,
                      PlotSeries, SplitOpt, Stride, Threads, Windows)
from .output import Output, to_json


@command(shared=(options.READING_AGAIN,))
def evaluate(
    ctx: typer.Context,
    checkpoint_path: Ckpt,
    data: Data,
    windows: Windows = 20,
    stride: Stride = 0,
    split: SplitOpt = None,
    in_sample: Annotated[bool, typer.Option("--in-sample", help="Also score windows the model was trained or validated on (their scores flatter it).")] = False,
    forecasts: Forecasts = None,
    threads: Threads = 0,
    min_length: MinLength = 0,
    level: LevelsAgain = None,
    plot: Plot = None,
    plot_series: PlotSeries = None,
    json_out: Json = False,
) -> None:
    """Backtest a checkpoint on the last rolling-origin windows of a CSV, beside naive baselines.

    Only windows after the data the checkpoint was trained and validated on are scored, unless
    --in-sample is given.
    """
    out: Output = ctx.obj
    from ..data import table_bytes
    from ..intervals import parse_levels
    from ..runs.evaluate import EvaluateRequest, evaluate_file

    options.check_files(ctx)
    report = evaluate_file(EvaluateRequest(checkpoint=checkpoint_path, data=data, reading=options.reading(**ctx.params),
                                           windows=windows, stride=stride, split=options.split(split),
                                           in_sample=in_sample, levels=parse_levels(level), threads=threads,
                                           plot=plot, plot_series=plot_series), out)
    frame = report.pop("forecasts")
    if plot:
        out.say(f"plot: {plot}")
    if forecasts:
        out.emit(table_bytes(frame, forecasts), forecasts)
        if forecasts == "-":
            return
    if json_out:
        out.emit(to_json(report), "-")
    else:
        render.report_tables(out, report)


@command(shared=(options.COLUMNS, options.READING, options.COVARIATES, options.TRAINING, options.SCHEDULE, options.MODELLING))
def compare(
    ctx: typer.Context,
    data: Data,
    models: Annotated[Optional[str], typer.Option("--models", help="Comma-separated model names. Default: every registered model.")] = None,
    metric: Annotated[str, typer.Option("--metric", help="Sort the leaderboard by this metric: mse, mae, rmse, mape, smape, mase, or owa (with --windows 1). Default: mase (mse with --split).")] = "",
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Also write the table: .csv or .json.")] = None,
    save_dir: Annotated[Optional[Path], typer.Option("--save-dir", help="Keep each model's checkpoint in this folder (as MODEL.ckpt).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite checkpoints already in --save-dir.")] = False,
    windows: Annotated[int, typer.Option("--windows", help="Rolling-origin test windows per series (the last N). Default: 20, or fewer where the shortest series would keep less than half its rows (and two horizons) to train on, with a note. With 1, sMAPE and MASE are also scored for Naive2, and OWA against it (the M4 protocol).")] = 0,
    stride: Stride = 0,
    split: SplitOpt = None,
    fill: Fill = "none",
    param: Annotated[Optional[list[str]], typer.Option("--param", "-p", help="MODEL.key=value for one model, or key=value for all that accept it.")] = None,
    threads: CompareThreads = 0,
    jobs: Jobs = 1,
    forecasts: Forecasts = None,
    storage: Annotated[Optional[str], typer.Option("--storage", help="Share the models among processes and hosts through an Optuna storage (a journal file on a shared filesystem, or a database URL; pip install 'seqcast[tune]'): every compare started with the same options and --storage trains the models not yet taken, and each prints the whole leaderboard when all are done.")] = None,
    study: Annotated[Optional[str], typer.Option("--study", help="The study's name in --storage. Default: compare-MODELS.")] = None,
    json_out: Json = False,
) -> None:
    """Train several models identically and rank them on the same test windows."""
    out: Output = ctx.obj
    from ..data import table_bytes
    from ..evaluation import leaderboard_metric
    from ..runs.evaluate import CompareRequest, compare_file, saved_checkpoints

    names = options.model_names(models, options.reading(**ctx.params).covariate_inputs)
    if output and not output.endswith((".csv", ".json")):
        raise UsageError(f"--output {output}: name a .csv or .json file")
    request = CompareRequest(data=data, models=names, params=options.route_params(names, options.parse_param_options(param)),
                             model=options.model_config(**{**ctx.params, "param": None}),
                             training=options.train_config(**ctx.params), metric=leaderboard_metric(metric, split, windows),
                             reading=options.reading(**ctx.params), windows=windows, stride=stride,
                             split=options.split(split), save_dir=save_dir, force=force, jobs=jobs, storage=storage,
                             study=study)
    options.check_files(ctx, saved_checkpoints(save_dir, names))
    on_model, on_epoch = render.model_progress(out, request.metric)
    rows = compare_file(request, out, on_model=on_model, on_epoch=on_epoch,
                        on_forecasts=(lambda frame: out.emit(table_bytes(frame, forecasts), forecasts)) if forecasts else None)
    if output:
        out.emit(to_json(rows) if output.endswith(".json") else render.leaderboard_csv(rows), output)
    if json_out:
        out.emit(to_json(rows), "-")
    elif forecasts != "-":
        render.leaderboard(out, rows, request.metric, split)


@command()
def monitor(
    ctx: typer.Context,
    record: Annotated[Path, typer.Argument(metavar="DIR", help="The forecast record: the folder predict --record DIR appends to.")],
    actuals: Annotated[str, typer.Argument(metavar="ACTUALS", help="CSV with the actuals (the history file predict reads, as it grows), or - for stdin; read with the options the latest recorded checkpoint reads with.")],
    window: Annotated[int, typer.Option("--window", help="Judge the latest N runs that have actuals due (0: every run of the current model).")] = 30,
    margin: Annotated[float, typer.Option("--margin", help="Error drift overall: the window's MASE above the fit's backtest MASE times 1 + MARGIN.")] = 0.5,
    series_margin: Annotated[float, typer.Option("--series-margin", help="Error drift of a series: its latest forecasts' MASE above that of its forecasts before them times 1 + SERIES_MARGIN.")] = 2.0,
    alpha: Annotated[float, typer.Option("--alpha", help="Coverage drift: outside the binomial band of probability 1 - ALPHA around the nominal level (per series: ALPHA over the number of series).")] = 0.01,
    stale_steps: Annotated[int, typer.Option("--stale-steps", help="A series is stale when runs at least this many steps of its frequency apart (by the clock) all forecast it from the same last actual.")] = 1,
    plot: Annotated[Optional[Path], typer.Option("--plot", metavar="FILE.png", help="Also draw each run's error and coverage over time as a PNG (needs seqcast[plot]).")] = None,
    json_out: Json = False,
) -> None:
    """Score the recorded forecasts whose actuals have arrived, per series and overall, and find drift.

    Error (MASE, sMAPE), bias and interval coverage of each series over the latest runs, against what
    fit measured on its validation windows (the checkpoint's backtest). Drift: coverage outside a
    binomial band around the nominal level, error above the backtest's by more than --margin, and
    series whose actuals stopped arriving. Exit 0: healthy; 3: drift found (a refit may cure it); 4:
    only stale series (actuals stopped arriving: a refit cannot); 2: bad input.
    """
    out: Output = ctx.obj
    from ..runs.evaluate import MonitorRequest, monitor_file

    options.check_files(ctx)
    report = monitor_file(MonitorRequest(record=record, actuals=actuals, window=window, margin=margin,
                                         series_margin=series_margin, alpha=alpha,
                                         stale_steps=stale_steps, plot=plot), out)
    if plot:
        out.say(f"plot: {plot}")
    if json_out:
        out.emit(to_json({**report, "healthy": not report["drift"] and not report["stale"]}), "-")
    else:
        render.monitor_tables(out, report)
    for key, code in (("drift", 3), ("stale", 4)):  # drift first: a refit may cure it, and not stale data
        if report[key]:
            count = len(report[key])
            out.say(f"{key}: {count} finding{'s' if count != 1 else ''}{' (and stale series)' if code == 3 and report['stale'] else ''} (exit {code})")
            raise typer.Exit(code)
