"""The commands: each parses its options, makes one library call and renders the result."""

import contextlib
import dataclasses
import time
from pathlib import Path
from typing import Annotated, Any, Optional, Sequence

import typer

from ..errors import SeqcastError, UsageError
from . import command, options
from .options import (LR, Batch, Ckpt, CompareThreads, Data, DateFormat, DayFirst, Decimal, Device, EnsembleOpt,
                      Epochs, Fill, FillAgain, Forecasts, Freq, FreqAgain, Horizon, IdCol, Jobs, Json, Levels,
                      LevelsAgain, Lookback, Loss, MaxSteps, Param, Patience, Plot, PlotSeries, Quantiles, Seed,
                      SplitOpt, Stride, Target, Threads, TimeBudget, TimeCol, TransformOpt, AllowNegative,
                      WindowNormOpt, Windows, MinLength, DropSparse, Wide)
from .output import Output, fmt, to_json

def _load(out: Output, path: str, config, describe: bool = False, last: Optional[int] = None) -> Any:
    """Read the CSV (only its last ``last`` rows where that is enough); its notes (and with
    ``describe`` what was found) on stderr."""
    from ..data import load_series

    series = load_series(path, config, last=last)
    out.notes(series.notes)
    if describe:
        out.say(_describe(series))
    return series


# Every file a command names, by the parameter that names it, in one place: what it reads is never
# written over, except a warm start's checkpoint, which fit reads whole before it replaces the file
# atomically (`fit --init-from m.ckpt --output m.ckpt`, the README's cron line). A test checks that
# every path parameter of every command is named here.
READS = ("data", "checkpoint_path", "future", "init_from", "storage")
WRITES = ("output", "plot", "forecasts")
UPDATES = ("init_from",)


def _check_files(ctx: typer.Context, more: Sequence[Path] = (), **resolved) -> None:
    """Before any work: no output may be a folder, one of the command's inputs (save ``UPDATES``), or
    named twice, and data meant for stdout needs an open stdout. ``resolved`` replaces a parameter's
    value where the command resolved a default (fit's MODEL.ckpt); ``more``: outputs it derived."""
    from ..files import check_outputs
    from .output import Signals

    values = {**ctx.params, **resolved}
    files = {name: _local_file(name, values.get(name)) for name in READS + WRITES}
    outputs = [files[name] for name in WRITES if files[name] is not None] + list(more)
    if "-" in [str(o) for o in outputs]:
        Signals.require_stdout()
    check_outputs(outputs, [files[name] for name in READS], [files[name] for name in UPDATES])


def _local_file(name: str, value) -> Optional[str]:
    """The local file a parameter names: None for none, and for a database URL other than sqlite's."""
    if value is None or name != "storage" or "://" not in str(value):
        return None if value is None else str(value)
    return str(value).split(":///", 1)[1] if str(value).startswith("sqlite:///") else None


def _rows_needed(ckpt) -> Optional[int]:
    """How many of a file's last rows a forecast reads: the lookback, with room for gaps a fill
    closes; None (the whole file) unless the single series of a file is one the model was scaled on
    (a series it has not seen is scaled by its whole history)."""
    from ..data import DEFAULT_ID

    return 2 * ckpt.lookback + 64 if DEFAULT_ID in ckpt.scaler.mean else None


def _describe(series) -> str:
    count = len(series.series)
    rows = sum(len(s.times) for s in series.series)
    what = f"{count} series" if count > 1 else "1 series"
    return (f"{series.source}: {what}, {rows} rows; time column {series.time_col or '(row number)'}, "
            f"target {', '.join(series.targets)}, frequency {series.freq}")


@command()
def fit(
    ctx: typer.Context,
    data: Data,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Registered model name (`seqcast models`). Default: gru, or the --init-from checkpoint's model.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Checkpoint path. Default: MODEL.ckpt here.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing checkpoint.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for another run writing the same checkpoint instead of exiting 75.")] = False,
    init_from: Annotated[Optional[Path], typer.Option("--init-from", help="Continue training from this checkpoint's weights: same model, windows and way of reading the data; a shorter default budget.")] = None,
    lookback: Lookback = 0,
    horizon: Horizon = 0,
    target: Target = None,
    time_col: TimeCol = None,
    id_col: IdCol = None,
    freq: Freq = None,
    fill: FillAgain = None,
    decimal: Decimal = None,
    dayfirst: DayFirst = None,
    date_format: DateFormat = None,
    past_cols: options.PastCols = None,
    future_cols: options.FutureCols = None,
    static_cols: options.StaticCols = None,
    calendar: options.Calendar = "none",
    param: Param = None,
    window_norm: WindowNormOpt = "auto",
    split: SplitOpt = None,
    epochs: Epochs = 0,
    max_steps: MaxSteps = 0,
    batch_size: Batch = 0,
    lr: LR = 0.0,
    patience: Patience = 2,
    seed: Seed = 0,
    device: Device = "auto",
    time_budget: TimeBudget = 0.0,
    threads: Threads = 0,
    loss: Loss = "auto",
    transform: TransformOpt = "auto",
    allow_negative: AllowNegative = False,
    min_length: MinLength = 0,
    drop_sparse: DropSparse = False,
    wide: Wide = False,
    ensemble: EnsembleOpt = 1,
    quantiles: Quantiles = None,
    level: Levels = None,
    json_out: Json = False,
) -> None:
    """Train a model on a CSV and save a checkpoint.

    Under torchrun (`torchrun --nproc-per-node N -m seqcast fit ...`) the N processes train one model
    data-parallel; rank 0 reports and writes the checkpoint.
    """
    out: Output = ctx.obj
    from .. import checkpoint
    from ..distributed import close, from_environment
    from ..files import output_lock, same_file
    from .options import parse_param_options
    from ..fitting import ModelConfig, requested_model
    from ..fitting import fit as fit_model
    from ..windows import Split

    from ..intervals import parse_levels, parse_quantiles

    init = checkpoint.load(init_from) if init_from else None
    spec = requested_model(ModelConfig(model, parse_param_options(param), lookback, horizon, window_norm,
                                       parse_quantiles(quantiles), parse_levels(level), ensemble, transform,
                                       allow_negative, drop_sparse), init)
    reading = dataclasses.replace(options.fit_reading(init, time_col, target, id_col, freq, fill, decimal, dayfirst,
                                                      date_format, options.covariates(past_cols, future_cols,
                                                                                      static_cols, calendar)),
                                  min_length=min_length, wide=wide or (init is not None and init.policy.wide))
    train_config = options.train_config(epochs, max_steps, batch_size, lr, patience, seed, device, time_budget,
                                        threads, loss)
    output = output or Path(f"{spec.name}.ckpt")
    _check_files(ctx, output=output)
    dist = from_environment(device)
    writer = dist is None or dist.rank == 0  # under torchrun, rank 0 reports and writes
    if not writer:
        out = ctx.obj = dataclasses.replace(out, quiet=True)
    if dist and not threads:
        train_config = options.train_config(epochs, max_steps, batch_size, lr, patience, seed, device, time_budget,
                                            max(1, options.available_cores() // dist.local_world_size), loss)
    try:
        with contextlib.ExitStack() as stack:
            refused = None
            if writer:
                try:
                    stack.enter_context(output_lock(output, wait=wait))
                    if output.exists() and not force:
                        raise UsageError(f"{output} exists; pass --force to overwrite it (or choose another --output)")
                    if same_file(init_from, output):  # in place: continue from what the last run holding the lock wrote
                        init = checkpoint.load(init_from)
                except SeqcastError as exc:
                    refused = exc
            if dist and not dist.all_agree(refused is None):  # every rank stops before training
                raise refused or UsageError(f"rank 0 cannot write {output} (its message says why); nothing was trained")
            if refused:
                raise refused
            series = _load(out, data, reading, describe=True)
            started = time.perf_counter()
            with out.progress(spec.name) as progress:
                fitted = fit_model(series, spec, train_config, split=Split.parse(split) if split else None,
                                   on_epoch=progress.epoch, on_step=progress.step, init=init, dist=dist)
            seconds = time.perf_counter() - started
            out.notes([n for n in fitted.notes if n not in series.notes], fitted.training.warnings)  # (read: said)
            if not writer:
                return
            fitted = checkpoint.save(output, fitted)
    finally:
        close(dist)
    out.say(f"{spec.name}: lookback {fitted.lookback}, horizon {fitted.horizon}, {fitted.spec.n_parameters} "
            f"parameters, {_rounds_text(fitted.training)} in {seconds:.1f}s on {_threads_text(fitted.training)}, "
            f"validation MSE {fitted.training.val_mse_scaled:.5f} (scaled)")
    if fitted.calibration:
        calibration = fitted.calibration
        how = ", ".join(sorted(set(calibration.methods)))
        out.say(f"intervals {', '.join(f'{v:g}' for v in calibration.levels)} %: calibrated on "
                f"{calibration.windows} validation windows ({'conformalised quantiles' if how == 'cqr' else how})")
    out.say(f"checkpoint: {output}")
    if json_out:
        out.emit(to_json({**fitted.summary(), "seconds": seconds}), "-")


@command()
def predict(
    ctx: typer.Context,
    checkpoint_path: options.CkptOrOnnx,
    data: Data,
    output: Annotated[str, typer.Option("--output", "-o", help="Forecast CSV path, or - for stdout.")] = "-",
    horizon: Annotated[int, typer.Option("--horizon", "-H", help="Forecast only the first N steps (at most the trained horizon; 0 = all).")] = 0,
    future: options.FutureFile = None,
    fill: FillAgain = None,
    freq: FreqAgain = None,
    decimal: Decimal = None,
    dayfirst: DayFirst = None,
    date_format: DateFormat = None,
    threads: Threads = 0,
    min_length: MinLength = 0,
    level: LevelsAgain = None,
    plot: Plot = None,
    plot_series: PlotSeries = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout (with the forecast rows unless --output names a file).")] = False,
) -> None:
    """Forecast the next horizon steps after each series' last timestamp (CSV on stdout).

    Columns: series, timestamp, step, model, target, forecast (original units); then lo_80, hi_80, ...
    for each interval level the checkpoint has (fit --level), and q10, q90, ... for a model trained on
    quantiles (fit --quantiles). A .onnx model (seqcast export) gives the same forecast through
    onnxruntime and numpy, without importing torch.
    """
    out: Output = ctx.obj
    from ..data import write_csv
    from ..forecasting import predict as forecast
    from ..forecasting import summary

    from ..intervals import check_levels, parse_levels
    from ..plots import forecast_plot, require_matplotlib

    if plot:
        require_matplotlib()
    _check_files(ctx)
    ckpt = _forecaster(checkpoint_path, threads)
    levels = check_levels(parse_levels(level), ckpt.calibration, str(checkpoint_path))
    reading = dataclasses.replace(options.reading_again(ckpt, fill, freq, decimal, dayfirst, date_format),
                                  min_length=min_length)
    series = _load(out, data, reading, last=None if plot else _rows_needed(ckpt))
    series = _with_future(out, series, future, reading, ckpt)
    with _forecast_threads(ckpt, threads, len(series.series)):
        frame = forecast(ckpt, series, horizon, levels)
    if plot:
        forecast_plot(series, frame, plot, plot_series)
        out.say(f"plot: {plot}")
    if json_out:
        if output != "-":
            out.emit(write_csv(frame), output)
        out.emit(to_json(summary(ckpt, series, frame, None if output == "-" else output)), "-")
    else:
        out.emit(write_csv(frame), output)
    out.detail(f"{len(frame)} forecast rows for {len(series.series)} series")


def _with_future(out: Output, series, future: Path | None, reading, ckpt):
    """``series`` with the known-future covariates of ``--future FILE`` in place of any rows after each
    series' last observation in the history; notes on static categories ``ckpt`` never saw and on
    covariate values outside their training range."""
    from ..covariates import outside_training_range, unseen_categories
    from ..data import load_future
    from ..forecasting import unseen_series

    out.notes(unseen_series(ckpt, series) + unseen_categories(series, ckpt.covariates))
    if future is None:
        out.notes(outside_training_range(series, ckpt.covariates))
        return series

    if not reading.future_cols:
        dropped = any("not fed to the model" in w for w in ckpt.training.warnings) if ckpt.training else False
        if not dropped:
            raise UsageError(f"--future {future}: the model reads no known-future covariates (fit --future-cols); "
                             "leave --future out")
        out.notes([f"--future {future} ignored: fit left out the future covariates as constant over its training "
                   "rows (seqcast info shows its warning), so the model reads none"])
        out.notes(outside_training_range(series, ckpt.covariates))
        return series
    if series.ahead:
        out.notes([f"--future {future} replaces the rows after the last observation in {series.source}"])
    series = dataclasses.replace(series, ahead=load_future(str(future), reading))
    out.notes(outside_training_range(series, ckpt.covariates))
    return series


def _forecaster(path: Path, threads: int) -> Any:
    """A checkpoint, or an exported .onnx model (read without torch, run on ``threads`` onnxruntime threads)."""
    from .. import edge

    if edge.is_onnx(path):
        if threads < 0:  # as threads.check_threads says it (that module loads torch)
            raise UsageError(f"--threads {threads}: must be a number of threads, or 0 to choose them for the work")
        return edge.load(path, threads=threads)
    from ..checkpoint import load

    return load(path)


def _forecast_threads(ckpt, threads: int, windows: int):
    """torch's intra-op threads around a checkpoint's forecast; an ONNX model's session has its own."""
    from ..edge import OnnxModel

    if isinstance(ckpt.model, OnnxModel):
        return contextlib.nullcontext()
    from ..threads import forecast_threads, using_threads

    return using_threads(forecast_threads(threads, ckpt, windows))


@command(name="export")
def export_command(
    ctx: typer.Context,
    checkpoint_path: Ckpt,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="ONNX file to write. Default: the checkpoint's name with .onnx (.int8.onnx with --int8), beside it.")] = None,
    int8: Annotated[bool, typer.Option("--int8", help="Dynamic int8 quantization (onnxruntime): linear, attention, convolution and LSTM weights in int8; GRU and vanilla RNN layers stay fp32 (no integer kernel). Checked against torch like the fp32 graph, with a looser limit.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for another run writing the same file instead of exiting 75.")] = False,
    json_out: Json = False,
) -> None:
    """Export a checkpoint as one ONNX file that `seqcast predict` runs through onnxruntime, without torch.

    The file holds the graph (model, window normalisation, quantile head) and the checkpoint's
    metadata (schema, frequency, scaler, lookback, horizon, intervals, the checkpoint's digest).
    Before it is written, onnxruntime's forecasts are compared with torch's at two batch sizes; an
    export that does not match is refused. Needs seqcast[onnx].
    """
    out: Output = ctx.obj
    from .. import export as exporting
    from ..checkpoint import load
    from ..files import output_lock

    exporting.require_exporter()
    output = output or checkpoint_path.with_suffix(".int8.onnx" if int8 else ".onnx")
    if str(output) == "-":
        raise UsageError("--output -: an ONNX model is a binary file; name a .onnx file")
    _check_files(ctx, output=output)
    ckpt = load(checkpoint_path)
    with output_lock(output, wait=wait):
        if output.exists() and not force:
            raise UsageError(f"{output} exists; pass --force to overwrite it (or choose another --output)")
        exported = exporting.export(ckpt, int8=int8)
        out.emit(exported.data, str(output))
    out.notes(exported.notes)
    size = len(exported.data)
    what = (f"int8 ({', '.join(exported.quantized)} quantized), {size / 1000:.1f} kB, {size / exported.fp32_bytes:.0%} "
            f"of the fp32 graph's {exported.fp32_bytes / 1000:.1f} kB" if exported.int8 else f"fp32, {size / 1000:.1f} kB")
    out.say(f"{ckpt.name}: exported with the {exported.exporter} exporter in {exported.seconds:.1f}s; onnxruntime "
            f"matches torch at batches {' and '.join(map(str, exporting.PARITY_BATCHES))} within "
            f"{exported.max_difference:.2g} (limit {exported.tolerance:g}); {what}")
    out.say(f"onnx model: {output}")
    if json_out:
        out.emit(to_json({"onnx": str(output), "checkpoint": str(checkpoint_path), "model": ckpt.name,
                          "bytes": size, "fp32_bytes": exported.fp32_bytes, "seconds": exported.seconds,
                          **{k: exported.document[k] for k in ("graph", "parity", "versions", "sha256")}}), "-")


@command()
def evaluate(
    ctx: typer.Context,
    checkpoint_path: Ckpt,
    data: Data,
    windows: Windows = 20,
    stride: Stride = 0,
    split: SplitOpt = None,
    in_sample: Annotated[bool, typer.Option("--in-sample", help="Also score windows the model was trained or validated on (their scores flatter it).")] = False,
    fill: FillAgain = None,
    freq: FreqAgain = None,
    decimal: Decimal = None,
    dayfirst: DayFirst = None,
    date_format: DateFormat = None,
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
    from ..checkpoint import load
    from ..evaluation import EvalConfig, backtest
    from ..intervals import check_levels, parse_levels
    from ..plots import backtest_plot, require_matplotlib
    from ..windows import Split

    if plot:
        require_matplotlib()
    _check_files(ctx)
    ckpt = load(checkpoint_path)
    levels = check_levels(parse_levels(level), ckpt.calibration, str(checkpoint_path))
    series = _load(out, data, dataclasses.replace(options.reading_again(ckpt, fill, freq, decimal, dayfirst,
                                                                        date_format), min_length=min_length))
    from ..threads import forecast_threads, using_threads

    with using_threads(forecast_threads(threads, ckpt, windows * len(series.series))):
        report = backtest(ckpt, series, EvalConfig(windows, stride, Split.parse(split) if split else None, in_sample,
                                                   levels))
    for warning in report["warnings"]:
        out.say(f"warning: {warning}")
    frame = report.pop("forecasts")
    if plot:
        backtest_plot(frame, ckpt.schema.freq, ckpt.schema.integer_time, plot, plot_series)
        out.say(f"plot: {plot}")
    if forecasts:
        from ..data import write_csv

        out.emit(write_csv(frame), forecasts)
        if forecasts == "-":
            return
    if json_out:
        out.emit(to_json(report), "-")
        return
    _report_tables(out, report)


def _report_tables(out: Output, report: dict) -> None:
    from ..evaluation import METRICS

    units = "scaled values" if report["scaled"] else "original units"
    pooled = " (MSE, MAE, RMSE pooled on scaled values)" if report["pooled_scaled"] else ""
    overall = [*METRICS, *(["owa"] if "owa" in report["overall"][report["model"]] else [])]
    rows = [[name, *[values[m] for m in overall]] for name, values in report["overall"].items()]
    out.table(f"{report['model']}: {_windows_scored(report)}, stride {report['stride']}, {units}{pooled}"
              f"{_owa_note(report['overall'])}", ["model", *overall], rows)
    if len(report["targets"]) > 1:
        rows = [[target, name, *[values[m] for m in METRICS]]
                for target, by_model in report["targets"].items() for name, values in by_model.items()]
        out.table(f"per target ({units})", ["target", "model", *METRICS], rows)
    if len(report["series"]) > 1:
        rows = [[sid, values["windows"], *[values[report["model"]][m] for m in METRICS]]
                for sid, values in report["series"].items()]
        out.table("per series", ["series", "windows", *METRICS], rows)
    scores = _interval_columns(report["overall"][report["model"]])
    if scores:
        out.table(f"{report['model']}: intervals (coverage: share of actuals inside; width in {units}; "
                  "MSIS scaled like MASE)", scores, [[report["overall"][report["model"]][k] for k in scores]])


def _owa_note(overall: dict) -> str:
    """What the OWA column is relative to, when scores have one (one test window per series)."""
    return "; OWA relative to Naive2 (M4's seasonally adjusted repeat-last)" if "naive2" in overall else ""


def _interval_columns(values: dict) -> list[str]:
    """The interval and quantile scores among a model's metrics, level by level."""
    return [k for k in values if k.startswith(("coverage_", "width_", "msis_")) or k == "wql"]


def _windows_scored(report: dict) -> str:
    asked = report.get("windows_requested")
    if asked and report["windows"] < asked:
        return f"{report['windows']} windows scored ({asked} asked for)"
    return f"{report['windows']} windows"


@command()
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
    lookback: Lookback = 0,
    horizon: Horizon = 0,
    target: Target = None,
    time_col: TimeCol = None,
    id_col: IdCol = None,
    freq: Freq = None,
    fill: Fill = "none",
    decimal: Decimal = None,
    dayfirst: DayFirst = None,
    date_format: DateFormat = None,
    past_cols: options.PastCols = None,
    future_cols: options.FutureCols = None,
    static_cols: options.StaticCols = None,
    calendar: options.Calendar = "none",
    param: Annotated[Optional[list[str]], typer.Option("--param", "-p", help="MODEL.key=value for one model, or key=value for all that accept it.")] = None,
    window_norm: WindowNormOpt = "auto",
    epochs: Epochs = 0,
    max_steps: MaxSteps = 0,
    batch_size: Batch = 0,
    lr: LR = 0.0,
    patience: Patience = 2,
    seed: Seed = 0,
    device: Device = "auto",
    time_budget: TimeBudget = 0.0,
    threads: CompareThreads = 0,
    loss: Loss = "auto",
    ensemble: EnsembleOpt = 1,
    transform: TransformOpt = "auto",
    allow_negative: AllowNegative = False,
    min_length: MinLength = 0,
    drop_sparse: DropSparse = False,
    wide: Wide = False,
    jobs: Jobs = 1,
    forecasts: Forecasts = None,
    quantiles: Quantiles = None,
    level: Levels = None,
    storage: Annotated[Optional[str], typer.Option("--storage", help="Share the models among processes and hosts through an Optuna storage (a journal file on a shared filesystem, or a database URL; pip install 'seqcast[tune]'): every compare started with the same options and --storage trains the models not yet taken, and each prints the whole leaderboard when all are done.")] = None,
    study: Annotated[Optional[str], typer.Option("--study", help="The study's name in --storage. Default: compare-MODELS.")] = None,
    json_out: Json = False,
) -> None:
    """Train several models identically and rank them on the same test windows."""
    out: Output = ctx.obj
    from ..data import write_csv
    from ..comparing import DEFAULT_WINDOWS, fitting_windows
    from ..comparing import compare as run_compare
    from ..evaluation import EvalConfig, leaderboard_metric, rank
    from ..files import output_lock
    from ..intervals import parse_levels, parse_quantiles
    from .options import model_names, parse_param_options, route_params
    from ..fitting import ModelConfig
    from ..windows import Split

    covariate_options = options.covariates(past_cols, future_cols, static_cols, calendar)
    names = model_names(models, options.covariate_kinds(covariate_options))
    shared = None
    if storage:
        from ..tuning import TuneConfig, require_optuna

        require_optuna()
        if forecasts:
            raise UsageError("--forecasts with --storage: each model's forecasts stay with the process that trained "
                             "it; keep the checkpoints with --save-dir and run `seqcast evaluate --forecasts` on them")
        shared = TuneConfig(trials=len(names), storage=storage, study=study)
    elif study:
        raise UsageError("--study names a study in --storage; give --storage too")
    quantile_levels, interval_levels = parse_quantiles(quantiles), parse_levels(level)
    metric = leaderboard_metric(metric, split, windows)
    per_model = route_params(names, parse_param_options(param))
    if output and not output.endswith((".csv", ".json")):
        raise UsageError(f"--output {output}: name a .csv or .json file")
    if save_dir and not save_dir.is_dir():
        raise UsageError(f"--save-dir {save_dir}: no such folder")
    saved = [save_dir / f"{name}.ckpt" for name in names] if save_dir else []
    _check_files(ctx, saved)
    existing = [str(p) for p in saved if p.exists()]
    if existing and not force:
        raise UsageError(f"--save-dir {save_dir}: {', '.join(existing)} exist; pass --force to overwrite them "
                         "(or choose another folder)")
    train_config = options.train_config(epochs, max_steps, batch_size, lr, patience, seed, device, time_budget,
                                        threads, loss)
    jobs = min(options.compare_jobs(jobs, threads), len(names))
    series = _load(out, data, dataclasses.replace(options.reading(
        time_col, target, id_col, freq, fill, decimal, dayfirst, date_format, covariate_options), min_length=min_length,
        wide=wide),
        describe=True)
    if not windows and not split:  # the default: as many as the data allow, up to DEFAULT_WINDOWS
        windows, notes = fitting_windows(series, ModelConfig(lookback=lookback, horizon=horizon), stride)
        out.notes(notes)
    eval_config = EvalConfig(windows or DEFAULT_WINDOWS, stride, Split.parse(split) if split else None)
    on_model, on_epoch = _model_progress(out, metric)
    if jobs > 1:
        out.say(f"training {len(names)} models, {jobs} at a time in worker processes, {threads or 1} "
                f"thread{'s' if threads > 1 else ''} each; each is reported when it finishes")
    with contextlib.ExitStack() as locks:  # a second compare into the same --save-dir waits for none: exit 75
        for path in saved:
            locks.enter_context(output_lock(path))
        rows = rank(run_compare(series, names, ModelConfig(params={}, lookback=lookback, horizon=horizon,
                                                           window_norm=window_norm, quantiles=quantile_levels,
                                                           levels=interval_levels, ensemble=ensemble,
                                                           transform=transform, allow_negative=allow_negative,
                                                           drop_sparse=drop_sparse),
                                train_config, eval_config, per_model, str(save_dir) if save_dir else None,
                                on_model=on_model, on_epoch=on_epoch, jobs=jobs,
                                on_forecasts=(lambda frame: out.emit(write_csv(frame), forecasts))
                                if forecasts else None, study=shared),
                    metric)
    if output:
        out.emit(to_json(rows) if output.endswith(".json") else write_csv(_frame(rows).drop(columns="series")),
                 output)
    if json_out:
        out.emit(to_json(rows), "-")
    elif forecasts != "-":
        _leaderboard(out, rows, metric, split)


@command()
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
    target: Target = None,
    time_col: TimeCol = None,
    id_col: IdCol = None,
    freq: Freq = None,
    fill: Fill = "none",
    decimal: Decimal = None,
    dayfirst: DayFirst = None,
    date_format: DateFormat = None,
    past_cols: options.PastCols = None,
    future_cols: options.FutureCols = None,
    static_cols: options.StaticCols = None,
    calendar: options.Calendar = "none",
    param: Annotated[Optional[list[str]], typer.Option("--param", "-p", help="Fix a hyperparameter key=value (it is then not searched).")] = None,
    window_norm: Annotated[str, typer.Option("--window-norm", help="Fix the window normalisation (default auto: searched among last, mean, revin, deseason).")] = "auto",
    split: SplitOpt = None,
    epochs: Epochs = 0,
    max_steps: MaxSteps = 0,
    batch_size: Batch = 0,
    patience: Patience = 2,
    seed: Seed = 0,
    device: Device = "auto",
    threads: Threads = 0,
    loss: Loss = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="Print the trials table and the best trial as one JSON document on stdout.")] = False,
) -> None:
    """Search a model's hyperparameters with Optuna on the validation split, then fit the best.

    Each trial fits the model with values from its search space (`seqcast models --json` lists
    it) and is scored by validation MSE alone; the first trial of a study is the defaults. The
    best configuration is fit again and saved as an ordinary checkpoint, with the study's summary.
    """
    out: Output = ctx.obj
    from .. import checkpoint
    from ..files import output_lock
    from .options import parse_param_options
    from ..fitting import ModelConfig, requested_model
    from ..tuning import TuneConfig, require_optuna
    from ..tuning import tune as run_tune
    from ..windows import Split

    require_optuna()
    config = TuneConfig(trials, jobs, storage, study, search_budget, not no_prune)
    options.compare_jobs(jobs, threads)  # the workers' threads must fit the cores
    spec = requested_model(ModelConfig(model, parse_param_options(param), lookback, horizon, window_norm))
    train_config = options.train_config(epochs, max_steps, batch_size, 0.0, patience, seed, device, 0.0, threads, loss)
    output = output or Path(f"{spec.name}.tuned.ckpt")
    _check_files(ctx, output=output)
    with output_lock(output):
        if output.exists() and not force:
            raise UsageError(f"{output} exists; pass --force to overwrite it (or choose another --output)")
        series = _load(out, data, options.reading(time_col, target, id_col, freq, fill, decimal, dayfirst, date_format,
                                                  options.covariates(past_cols, future_cols, static_cols, calendar)),
                       describe=True)

        def on_trial(row) -> None:
            score = f"validation MSE {row.value:.5f}" if row.value is not None else row.state
            why = f" ({row.error})" if row.error else ""
            values = " ".join(f"{k}={fmt(v) if isinstance(v, float) else v}" for k, v in row.params.items())
            out.say(f"trial {row.number}: {score}{why}  {values}")
        fitted, rows = run_tune(series, spec, train_config, config, Split.parse(split) if split else None,
                                on_trial=on_trial)
        out.notes([n for n in fitted.notes if n not in series.notes], fitted.training.warnings)
        fitted = checkpoint.save(output, fitted)
    t = fitted.tuning
    default = f" (defaults: {t.default_val_mse_scaled:.5f})" if t.default_val_mse_scaled is not None else ""
    out.say(f"study {t.study}: {t.complete} complete, {t.pruned} pruned, {t.failed} failed; best trial "
            f"{t.best_trial}, validation MSE {t.best_val_mse_scaled:.5f}{default}")
    out.say(f"checkpoint: {output} (validation MSE {fitted.training.val_mse_scaled:.5f} on the refit)")
    if json_out:
        out.emit(to_json({"checkpoint": str(output), "study": t.study, "best_trial": t.best_trial,
                          "best_params": t.best_params, "best_val_mse_scaled": t.best_val_mse_scaled,
                          "default_val_mse_scaled": t.default_val_mse_scaled, "space": t.space,
                          "trials": [r.to_dict() for r in rows]}), "-")


def _model_progress(out: Output, metric: str):
    """compare's callbacks: a progress bar or epoch lines per model, and its score when done (models
    trained in worker processes report only that)."""
    progress: dict = {}

    def on_model(name: str, row: Optional[dict]) -> None:
        if row is None:
            progress[name] = out.progress(name).__enter__()
        else:
            if name in progress:
                progress.pop(name).__exit__(None, None, None)
            out.say(f"{name}: {metric} {fmt(row[metric])}, {row['train_s']:.1f}s training")

    return on_model, lambda report: next(iter(progress.values())).epoch(report)


def _frame(rows: list[dict]):
    import pandas as pd

    return pd.DataFrame(rows)


def _leaderboard(out: Output, rows: list[dict], metric: str, split: Optional[str]) -> None:
    from ..evaluation import METRICS

    owa = ["owa"] if "owa" in rows[0] else []
    columns = ["model", "parameters", "train_s", "seconds_per_epoch", "epochs", "predict_ms", *METRICS, *owa,
               *_interval_columns(next((r for r in rows if _interval_columns(r)), {})), "windows"]
    units = "scaled values" if split else "original units"
    if rows[0].get("pooled_scaled"):
        units += "; MSE, MAE, RMSE pooled on scaled values"
    units += _owa_note({r["model"]: r for r in rows})
    out.table(f"leaderboard by {metric} ({_windows_scored(rows[0])}, {units})", columns,
              [[r.get(c) for c in columns] for r in rows])


@command()
def explain(
    ctx: typer.Context,
    checkpoint_path: Ckpt,
    data: Data,
    window: Annotated[int, typer.Option("--window", help="Explain the window ending N steps before each series' end (0 = the last).")] = 0,
    per_layer: Annotated[bool, typer.Option("--per-layer", help="One map per layer (and direction) instead of the mean over layers.")] = False,
    covariates: Annotated[bool, typer.Option("--covariates", help="Instead of maps: how much each covariate moves the forecast, for any model fit with covariates (its inputs replaced by their training mean; columns series, model, covariate, kind, target, mean_abs_change, max_abs_change, mean_change, in the target's units).")] = False,
    future: options.FutureFile = None,
    series_id: Annotated[Optional[str], typer.Option("--series", help="Only this series id.")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="CSV (or --json) path, or - for stdout.")] = "-",
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Also draw the first series' maps as a PNG heatmap (needs seqcast[plot]).")] = None,
    fill: FillAgain = None,
    freq: FreqAgain = None,
    decimal: Decimal = None,
    dayfirst: DayFirst = None,
    date_format: DateFormat = None,
    threads: Threads = 0,
    json_out: Json = False,
) -> None:
    """Show what a model looks at: attention weights (query step x input step) or recurrent gate
    activations per input step, for the last window of each series (CSV on stdout).

    Columns: series, model, layer, kind, query_axis, query_step, input_step, input_timestamp, weight.
    """
    out: Output = ctx.obj
    from .. import explain as explaining
    from ..checkpoint import load
    from ..data import write_csv

    if plot:
        explaining.require_matplotlib()
    _check_files(ctx)
    ckpt = load(checkpoint_path)
    reading = options.reading_again(ckpt, fill, freq, decimal, dayfirst, date_format)
    series = _with_future(out, _load(out, data, reading), future, reading, ckpt)
    if series_id is not None:
        series.series = [s for s in series.series if s.id == series_id]
        if not series.series:
            raise UsageError(f"--series {series_id!r}: no such series in {series.source}")
    from ..threads import forecast_threads, using_threads

    if covariates:
        if plot:
            raise UsageError("--plot draws attention or gate maps; leave it out with --covariates")
        with using_threads(forecast_threads(threads, ckpt, len(series.series))):
            effects = explaining.covariate_effects(ckpt, series, window)
        out.emit(to_json({"model": ckpt.name, "window": window, "effects": effects.to_dict(orient="records")})
                 if json_out else write_csv(effects), output)
        return
    with using_threads(forecast_threads(threads, ckpt, len(series.series))):
        maps = explaining.explain(ckpt, series, window, per_layer)
    name = ckpt.name
    if plot:
        explaining.plot(maps, name, str(plot))
        out.say(f"plot: {plot}")
    if json_out:
        out.emit(to_json(explaining.to_document(maps, ckpt, window)), output)
    else:
        out.emit(write_csv(explaining.to_frame(maps, name)), output)


@command(name="models")
def models_command(ctx: typer.Context, json_out: Json = False) -> None:
    """List the registered models, one line each, with their hyperparameters."""
    out: Output = ctx.obj
    from ..build import create_model
    from ..registry import get_spec, list_models

    entries = []
    for name in list_models():
        spec = get_spec(name)
        model = create_model(name, 96, 24, 1)
        entries.append({"model": name, "family": spec.family, "parameters": sum(p.numel() for p in model.parameters()),
                        "summary": spec.summary, "defaults": spec.defaults(),
                        "window_norm": spec.capabilities.window_norm,
                        "panel_window_norm": spec.capabilities.panel_window_norm or spec.capabilities.window_norm,
                        "panel_loss": spec.capabilities.panel_loss,
                        "covariates": list(spec.capabilities.covariates),
                        "search": {k: d.describe() for k, d in spec.capabilities.search.items()}})
    if json_out:
        out.emit(to_json(entries), "-")
        return
    lines = [f"{e['model']:<22} {e['family']:<16} {e['parameters']:>9,} params  {e['summary']}\n"
             f"{'':<22} {' '.join(f'{k}={v}' for k, v in e['defaults'].items()) or '(no hyperparameters)'}"
             f"  [window norm {e['window_norm']}"
             f"{'' if e['panel_window_norm'] == e['window_norm'] else ' (on a panel ' + e['panel_window_norm'] + ')'}"
             f", panel loss {e['panel_loss']}, covariates {', '.join(e['covariates']) or 'none'}]"
             for e in entries]
    typer.echo("\n".join(lines))
    out.say("parameters counted at lookback 96, horizon 24, one channel")


@command()
def info(ctx: typer.Context, checkpoint_path: options.CkptOrOnnx, json_out: Json = False) -> None:
    """Show what a checkpoint holds: model, hyperparameters, data schema, scaling, training, versions
    (and, for a .onnx model, how it was exported)."""
    out: Output = ctx.obj
    from .. import edge
    from ..checkpoint import FORMAT_VERSION, load, to_meta

    if edge.is_onnx(checkpoint_path):
        _edge_info(out, checkpoint_path, json_out)
        return
    ckpt = load(checkpoint_path)
    if json_out:
        out.emit(to_json({**to_meta(ckpt), "format": {"stored": ckpt.stored.format, "read_as": FORMAT_VERSION}}), "-")
        return
    typer.echo("\n".join(_info_lines(ckpt, FORMAT_VERSION)))


def _edge_info(out: Output, path: Path, json_out: bool) -> None:
    """info for an exported model: the checkpoint's lines, then the export's."""
    from dataclasses import replace

    from .. import edge
    from ..checkpoint import FORMAT_VERSION

    opened = edge.open_model(path)
    ckpt = edge.forecaster(opened, str(path), record=True)
    document = opened.document
    if json_out:
        out.emit(to_json({**opened.meta, "format": {"stored": document["meta_format"], "read_as": FORMAT_VERSION},
                          "export": {k: document[k] for k in ("format", "checkpoint", "graph", "parity", "versions",
                                                              "sha256")}}), "-")
        return
    graph, parity, source = document["graph"], document["parity"], document["checkpoint"]
    precision = (f"int8 ({', '.join(graph['quantized'])} quantized" + (f"; {', '.join(graph['fp32'])} fp32)"
                 if graph["fp32"] else ")")) if graph["int8"] else "fp32"
    lines = _info_lines(replace(ckpt, stored=replace(ckpt.stored, format=document["meta_format"])), FORMAT_VERSION)
    lines += [
        f"exported    {graph['exporter']} exporter, {precision}; inputs {', '.join(graph['inputs'])}"
        + (f"; {graph['members']} members, median taken in numpy" if graph["members"] > 1 else ""),
        f"parity      within {parity['max_difference']:.2g} of torch at batches "
        f"{' and '.join(map(str, parity['batches']))} (limit {parity['tolerance']:g})",
        f"source      {source['path']} (sha256 {str(source['sha256'])[:16]}...)",
        f"onnx        torch {document['versions']['torch']}, onnx {document['versions']['onnx']}, onnxruntime "
        f"{document['versions']['onnxruntime']} at export",
    ]
    typer.echo("\n".join(lines))


def _info_lines(ckpt, current_format: int) -> list[str]:
    m, d, p, t = ckpt.spec, ckpt.schema, ckpt.policy, ckpt.training
    reading = [f"frequency {d.freq} ({'given' if p.freq_given else 'inferred'})", f"fill {p.fill}",
               f"decimal {p.decimal or '(inferred)'}"]
    if p.dayfirst is not None:
        reading.append("day first" if p.dayfirst else "month first")
    if p.date_format:
        reading.append(f"date format {p.date_format}")
    if p.wide:
        reading.append("wide (a row per series, a column per time)")
    settings = t.settings
    lines = [
        f"model       {m.name} ({m.n_parameters:,} parameters, window norm {m.window_norm})",
        f"params      {' '.join(f'{k}={v}' for k, v in m.params.items()) or '-'}",
        f"data        {d.source}: time {d.time_col or '(row number)'}, targets {', '.join(d.targets)}, "
        f"id {d.id_col or '-'}, {len(d.series)} series",
        f"reading     {', '.join(reading)}",
        f"windows     lookback {d.lookback}, horizon {d.horizon}",
        f"covariates  {_covariates_text(ckpt.covariates)}",
        f"trained on  {_seen_text(t.seen_until)}",
        f"training    {_rounds_text(t)}, {t.steps} steps, batch {settings.batch_size}, lr {settings.lr}, "
        f"loss {settings.loss}, seed {settings.seed}{_best_epoch_text(t.best_epoch, 'epoch' if t.rounds_are_epochs else 'round')}"
        + (f", continued from {t.init_from.path}" if t.init_from else ""),
        f"stopped     {_stopped_text(t)}",
        f"threads     {_threads_text(t)}",
        f"validation  MSE {t.val_mse_scaled:.6g} (scaled{', of the median' if m.quantiles else ''})",
        f"chosen      {_choices_text(ckpt.choices)}",
        f"transform   {ckpt.transform.describe() if ckpt.transform.floor or ckpt.transform.kind != 'none' else 'none (a checkpoint from before transforms: no floor at 0)'}",
        f"quantiles   {', '.join(f'{q:g}' for q in m.quantiles) + ' (pinball loss; 0.5 is the forecast)' if m.quantiles else '-'}",
        f"ensemble    {f'{m.ensemble} members (seeds {settings.seed}..{settings.seed + m.ensemble - 1}), median forecast' if m.ensemble > 1 else '-'}",
        f"intervals   {_intervals_text(ckpt.calibration)}",
        f"tuned       {_tuning_text(ckpt.tuning)}",
        f"versions    seqcast {ckpt.versions.seqcast}, torch {ckpt.versions.torch}",
    ]
    lines += [f"warning     {w}" for w in t.warnings]
    lines += [f"note        {n}" for n in ckpt.notes]  # what fit said: how it read the data, what it decided
    if ckpt.stored.format != current_format:
        lines.append(f"format      {ckpt.stored.format}, upgraded to {current_format} on reading "
                     "(refit to store the newer format)")
    return lines


def _choices_text(choices) -> str:
    if not choices:
        return "- (the declared or the given transform, window norm and loss; fit probes them when they are auto)"
    from ..choosing import describe

    return describe(choices)


def _covariates_text(covariates) -> str:
    if not covariates.columns:
        return "- (fit --past-cols, --future-cols, --static-cols, --calendar add them)"
    parts = []
    for kind in ("past", "calendar", "future", "static"):
        columns = covariates.of(kind)
        if columns:
            names = [c.name + (f" ({len(c.categories)} categories)" if c.categories else "") for c in columns]
            parts.append(f"{kind} {', '.join(names)}")
    return "; ".join(parts)


def _tuning_text(tuning) -> str:
    if tuning is None:
        return "- (seqcast tune searches the hyperparameters)"
    default = (f", defaults {tuning.default_val_mse_scaled:.6g}" if tuning.default_val_mse_scaled is not None else "")
    where = f" in {tuning.storage}" if tuning.storage else ""
    return (f"study {tuning.study}{where}: trial {tuning.best_trial} of {tuning.trials} ({tuning.complete} complete, "
            f"{tuning.pruned} pruned, {tuning.failed} failed), validation MSE {tuning.best_val_mse_scaled:.6g}{default}")


def _intervals_text(calibration) -> str:
    if calibration is None:
        return "- (fit --level 80,95 adds them)"
    kinds = {"residual": "around the forecast", "cqr": "conformalised quantiles"}
    levels = ", ".join(f"{v:g} % ({kinds[how]})" for v, how in zip(calibration.levels, calibration.methods))
    return f"{levels}; calibrated on {calibration.windows} validation windows"


def _seen_text(seen) -> str:
    if seen is None:
        return "(not recorded by this checkpoint's format)"
    last = sorted(set(map(str, seen.values())))
    span = last[0] if len(last) == 1 else f"{last[0]} .. {last[-1]}"
    return f"rows up to {span}" + (f" ({len(seen)} series)" if len(seen) > 1 else "")


def _best_epoch_text(best, unit: str = "epoch") -> str:
    if best is None:
        return ""
    if best == 0:
        return f"; kept the starting weights (no {unit} beat them on validation)"
    return f"; kept {unit} {best}"


def _rounds_text(t) -> str:
    """Validation rounds: "4 epochs", or "4 rounds of 250 steps" when an epoch was longer than a round."""
    if t.rounds_are_epochs:
        return f"{t.epochs_run} epochs"
    return f"{t.epochs_run} rounds of {t.round_steps} steps (epochs of {t.steps_per_epoch})"


def _stopped_text(t) -> str:
    from ..training import STOPPED

    if t.stopped is None:
        return "(not recorded by this checkpoint's format)"
    text = STOPPED.get(t.stopped, t.stopped)
    return f"{text} (--time-budget {t.settings.time_budget:g} s)" if t.stopped == "time_budget" else text


def _threads_text(t) -> str:
    threads = t.settings.threads
    if not threads:
        return "(not recorded by this checkpoint's format)"
    each = f"{threads} thread{'s' if threads > 1 else ''}"
    return each if t.world_size == 1 else f"{t.world_size} processes (torchrun, data parallel) of {each} each"
