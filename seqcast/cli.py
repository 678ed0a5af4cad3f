"""The seqcast command line: parse -> build configs -> one library call -> render.

Data goes to stdout (or --output); progress, notes and errors go to stderr. torch and pandas are
imported inside commands, so `seqcast --help` starts fast.
"""

import functools
import json
import math
import os
import signal
import sys
import time
import traceback
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from . import __version__
from .errors import SeqcastError, UsageError

app = typer.Typer(
    name="seqcast",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class State:
    quiet = False
    verbose = False
    debug = False
    no_color = False
    interrupted = False  # set by SIGINT/SIGTERM; training progress re-raises it at the next step


def _color_off() -> bool:
    return State.no_color or "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb"


def _console(stderr: bool = True):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty() and os.environ.get("TERM") != "dumb"
    return Console(file=stream, stderr=stderr, color_system=None if _color_off() else "auto",
                   force_terminal=terminal, highlight=False, emoji=False, soft_wrap=True,
                   width=None if terminal else 200)


def say(message: str) -> None:
    """A note for the user on stderr (silent with -q)."""
    if not State.quiet:
        _console().print(message, markup=False)


def detail(message: str) -> None:
    if State.verbose and not State.quiet:
        _console().print(message, markup=False)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    say(f"warning: {message}")


def _error(message: str) -> None:
    sys.stderr.write(f"seqcast: error: {message}\n")
    sys.stderr.flush()


def _command(**settings):
    """Register a command whose failures become one line on stderr and the documented exit code."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                with warnings.catch_warnings():
                    warnings.showwarning = _show_warning
                    warnings.simplefilter("ignore")
                    warnings.filterwarnings("default", category=UserWarning, module=r"seqcast\.")
                    return fn(*args, **kwargs)
            except SeqcastError as exc:
                if State.debug:
                    traceback.print_exc()
                _error(str(exc))
                raise typer.Exit(exc.exit_code) from None
            except KeyboardInterrupt:
                _error("interrupted; nothing was written")
                raise typer.Exit(130) from None
            except BrokenPipeError:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                raise typer.Exit(0) from None
            except (typer.Exit, typer.Abort):
                raise
            except Exception as exc:  # the one place that turns an unexpected failure into exit 1
                if State.debug:
                    traceback.print_exc()
                    raise typer.Exit(1) from None
                _error(f"unexpected {type(exc).__name__}: {exc} (run again with --debug to see the traceback)")
                raise typer.Exit(1) from None

        return app.command(**settings)(wrapper)

    return decorate


def _version(value: bool) -> None:
    if value:
        typer.echo(f"seqcast {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Write nothing to stderr on success.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Write more detail to stderr.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an unexpected error.")] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="No colour or terminal effects.")] = False,
) -> None:
    """Forecast time series with the lineage of sequence models, from the vanilla RNN to Informer.

    Exit codes: 0 success, 1 unexpected error, 2 bad usage or input, 75 output locked by another
    run, 130 interrupted.
    """
    State.quiet, State.verbose, State.debug, State.no_color = quiet, verbose, debug, no_color


# Options shared by several commands, defined once.
Data = Annotated[str, typer.Argument(metavar="DATA", help="CSV file with the history, or - for stdin.")]
Ckpt = Annotated[Path, typer.Argument(metavar="CHECKPOINT", help="Checkpoint written by `seqcast fit`.")]
Target = Annotated[Optional[list[str]], typer.Option("--target", "-t", help="Column(s) to forecast (repeat for several). Default: y/value/target, else the last numeric column.")]
TimeCol = Annotated[Optional[str], typer.Option("--time-col", help="Time column. Default: detected (ds, date, timestamp, ...).")]
IdCol = Annotated[Optional[str], typer.Option("--id-col", help="Series id column for many series in long format. Default: a column named unique_id, series_id, series or id; else a text column whose values repeat named symbol, ticker, store, store_id, item, item_id, sku, product, firm, company, country, region, city, station, site, sensor or location.")]
Freq = Annotated[Optional[str], typer.Option("--freq", help="Frequency as a pandas alias (h, D, W, MS) or integer step. Default: inferred.")]
Fill = Annotated[str, typer.Option("--fill", help="Missing values and gaps: none (error), ffill, interpolate, zero.")]
Decimal = Annotated[Optional[str], typer.Option("--decimal", help="Decimal separator of the numbers, . or , (default: decided from the values; a note says when they were ambiguous).")]
DayFirst = Annotated[Optional[bool], typer.Option("--dayfirst/--monthfirst", help="Dates like 01.02.1949: day first (1 February) or month first (January 2). Default: inferred from the whole column.", show_default=False)]
DateFormat = Annotated[Optional[str], typer.Option("--date-format", help="strftime format of the time column, e.g. '%d.%m.%Y'.")]
# predict, evaluate and explain read new history the way fit read the training data (as the
# checkpoint records it); these options override that record.
FillAgain = Annotated[Optional[str], typer.Option("--fill", help="Missing values and gaps: none (error), ffill, interpolate, zero. Default: none; for a checkpoint's data, what fit used.")]
FreqAgain = Annotated[Optional[str], typer.Option("--freq", help="Frequency (pandas alias or integer step). Default: the checkpoint's.")]
Param = Annotated[Optional[list[str]], typer.Option("--param", "-p", help="Model hyperparameter key=value (repeatable); `seqcast models` lists them.")]
Lookback = Annotated[int, typer.Option("--lookback", "-L", help="Input steps per window. 0 = by frequency: minutes 240, hourly 96, daily 56, business days 60, weekly 104, monthly 48, quarterly 32, yearly 20, integer steps 40; shortened to fit short series.")]
Horizon = Annotated[int, typer.Option("--horizon", "-H", help="Steps to forecast. 0 = by frequency: minutes 60, hourly 24, daily 14, business days 10, weekly 13, monthly 12, quarterly 8, yearly 5, integer steps 10.")]
WindowNormOpt = Annotated[str, typer.Option("--window-norm", help="Per-window normalisation: last (subtract the last value), mean, revin (subtract the mean, divide by the std), none. auto = the model's default (see `seqcast models`).")]
Epochs = Annotated[int, typer.Option("--epochs", help="Most epochs; early stopping may end sooner (0 = auto: at least 4 and about 200 steps; with --init-from a quarter of those steps).")]
MaxSteps = Annotated[int, typer.Option("--max-steps", help="Most optimisation steps in all (0 = no cap).")]
Batch = Annotated[int, typer.Option("--batch-size", help="Windows per optimisation step (0 = auto: 1/50 of the training windows, 32 to 256).")]
LR = Annotated[float, typer.Option("--lr", help="Peak learning rate (AdamW; warm-up then cosine decay). 0 = the model's default: 1e-3 for cnn_lstm_transformer, informer, transformer and transformer_xl, 3e-3 for the others.")]
Patience = Annotated[int, typer.Option("--patience", help="Epochs without validation improvement before stopping; never during warm-up, and at least a tenth of the step budget.")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives identical results on CPU.")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu or cuda (bf16 mixed precision on CUDA).")]
SplitOpt = Annotated[Optional[str], typer.Option("--split", help="Explicit split by rows TRAIN,VAL[,TEST] (e.g. 8640,2880,2880 for ETT): stride-1 test windows, metrics on scaled values.")]
Windows = Annotated[int, typer.Option("--windows", help="Rolling-origin test windows per series (the last N).")]
Stride = Annotated[int, typer.Option("--stride", help="Steps between test origins (0 = the horizon).")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
Forecasts = Annotated[Optional[str], typer.Option("--forecasts", help="Also write every test window's forecasts as CSV (model, series, origin, step, target, actual, forecast); - for stdout.")]


def _data_config(time_col, target, id_col, freq, fill, decimal, dayfirst, date_format):
    from .data import DataConfig

    return DataConfig(time_col=time_col, target=tuple(target or ()), id_col=id_col, freq=freq, fill=fill,
                      decimal=decimal, dayfirst=dayfirst, date_format=date_format)


def _reread(ckpt, fill, freq, decimal, dayfirst, date_format):
    """How to read new history for ``ckpt``: as fit read its data, with the options given here on top."""
    from .forecasting import data_config

    return data_config(ckpt, fill=fill, freq=freq, decimal=decimal, dayfirst=dayfirst,
                       date_format=date_format)


def _train_config(epochs, max_steps, batch_size, lr, patience, seed, device):
    from .training import TrainConfig

    return TrainConfig(epochs=epochs, max_steps=max_steps, batch_size=batch_size, lr=lr, patience=patience,
                       seed=seed, device=device)


def _load(path: str, config) -> Any:
    from .data import load_series

    series = load_series(path, config)
    for note in series.notes:
        say(f"note: {note}")
    return series


def _describe(series) -> str:
    count = len(series.series)
    rows = sum(len(s.times) for s in series.series)
    what = f"{count} series" if count > 1 else "1 series"
    return (f"{series.source}: {what}, {rows} rows; time column {series.time_col or '(row number)'}, "
            f"target {', '.join(series.targets)}, frequency {series.freq}")


class _Progress:
    """Training progress on stderr: a rich bar on a terminal, one plain line per epoch otherwise."""

    def __init__(self, label: str):
        self.label, self.bar, self.task = label, None, None
        console = _console()
        if not State.quiet and console.is_terminal and not _color_off():
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[status]}"),
                                TimeElapsedColumn(), console=console, transient=True)

    def __enter__(self):
        if self.bar:
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=None, status="")
        return self

    def __exit__(self, *exc):
        if self.bar:
            self.bar.stop()

    def step(self, step: int, total: int) -> None:
        if State.interrupted:  # the signal's KeyboardInterrupt was swallowed somewhere (e.g. in a finaliser)
            raise KeyboardInterrupt
        if self.bar and (step % 10 == 0 or step == total):
            self.bar.update(self.task, completed=step, total=total)

    def epoch(self, report) -> None:
        if State.interrupted:
            raise KeyboardInterrupt
        line = (f"{self.label} epoch {report.epoch}/{report.epochs}: train {report.train_loss:.5f}  "
                f"val {report.val_loss:.5f}{' *' if report.best else ''}  {report.seconds:.1f}s")
        if self.bar:
            self.bar.update(self.task, status=f"epoch {report.epoch} val {report.val_loss:.4f}")
            if State.verbose:
                self.bar.console.print(line, markup=False)
        else:
            say(line)


def _emit(data: bytes, output: str) -> None:
    from .files import atomic_write

    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        atomic_write(output, data)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return value


def _json(document: Any) -> bytes:
    return (json.dumps(_jsonable(document), indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.4e}"
    return str(value)


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*[_fmt(v) for v in row])
    _console(stderr=False).print(table)


@_command()
def fit(
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
    json_out: Json = False,
) -> None:
    """Train a model on a CSV and save a checkpoint."""
    from .registry import parse_param_options, resolve_params
    from .training import ModelConfig, warm_start_config

    spec = ModelConfig(model, parse_param_options(param), lookback, horizon, window_norm)
    train_config = _train_config(epochs, max_steps, batch_size, lr, patience, seed, device)
    init = None
    if init_from:
        from .checkpoint import load

        init = load(init_from)
        spec = warm_start_config(init, spec)
        if any((target, time_col, id_col)):
            raise UsageError("--init-from: the targets, time and id columns come from the checkpoint; "
                             "drop --target, --time-col and --id-col")
        reading = _reread(init, fill, freq, decimal, dayfirst, date_format)
    else:
        spec = replace(spec, name=model or "gru")
        resolve_params(spec.name, spec.params)
        reading = _data_config(time_col, target, id_col, freq, fill or "none", decimal, dayfirst, date_format)
    output = output or Path(f"{spec.name}.ckpt")
    from .files import output_lock

    with output_lock(output, wait=wait):
        if output.exists() and not force:
            raise UsageError(f"{output} exists; pass --force to overwrite it (or choose another --output)")
        from . import checkpoint
        from .training import fit as fit_model
        from .windows import Split

        series = _load(data, reading)
        say(_describe(series))
        explicit = Split.parse(split) if split else None
        started = time.perf_counter()
        with _Progress(spec.name) as progress:
            fitted = fit_model(series, spec, train_config, split=explicit, on_epoch=progress.epoch,
                               on_step=progress.step, init=init)
        seconds = time.perf_counter() - started
        for note in fitted.notes:
            say(f"note: {note}")
        for warning in fitted.training.warnings:
            say(f"warning: {warning}")
        fitted = checkpoint.save(output, fitted)
    say(f"{spec.name}: lookback {fitted.lookback}, horizon {fitted.horizon}, {fitted.spec.n_parameters} parameters, "
        f"{fitted.training.epochs_run} epochs in {seconds:.1f}s, "
        f"validation MSE {fitted.training.val_mse_scaled:.5f} (scaled)")
    say(f"checkpoint: {output}")
    if json_out:
        _emit(_json({**fitted.summary(), "seconds": seconds}), "-")


@_command()
def predict(
    checkpoint_path: Ckpt,
    data: Data,
    output: Annotated[str, typer.Option("--output", "-o", help="Forecast CSV path, or - for stdout.")] = "-",
    horizon: Annotated[int, typer.Option("--horizon", "-H", help="Forecast only the first N steps (at most the trained horizon; 0 = all).")] = 0,
    fill: FillAgain = None,
    freq: FreqAgain = None,
    decimal: Decimal = None,
    dayfirst: DayFirst = None,
    date_format: DateFormat = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout (with the forecast rows unless --output names a file).")] = False,
) -> None:
    """Forecast the next horizon steps after each series' last timestamp (CSV on stdout).

    Columns: series, timestamp, step, model, target, forecast (original units).
    """
    from .checkpoint import load
    from .data import write_csv
    from .forecasting import predict as forecast
    from .forecasting import summary

    ckpt = load(checkpoint_path)
    series = _load(data, _reread(ckpt, fill, freq, decimal, dayfirst, date_format))
    frame = forecast(ckpt, series, horizon)
    if json_out:
        if output != "-":
            _emit(write_csv(frame), output)
        _emit(_json(summary(ckpt, series, frame, None if output == "-" else output)), "-")
    else:
        _emit(write_csv(frame), output)
    detail(f"{len(frame)} forecast rows for {len(series.series)} series")


@_command()
def evaluate(
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
    json_out: Json = False,
) -> None:
    """Backtest a checkpoint on the last rolling-origin windows of a CSV, beside naive baselines.

    Only windows after the data the checkpoint was trained and validated on are scored, unless
    --in-sample is given.
    """
    from .checkpoint import load
    from .evaluation import EvalConfig, backtest
    from .windows import Split

    ckpt = load(checkpoint_path)
    series = _load(data, _reread(ckpt, fill, freq, decimal, dayfirst, date_format))
    report = backtest(ckpt, series, EvalConfig(windows, stride, Split.parse(split) if split else None, in_sample))
    for warning in report["warnings"]:
        say(f"warning: {warning}")
    frame = report.pop("forecasts")
    if forecasts:
        from .data import write_csv

        _emit(write_csv(frame), forecasts)
        if forecasts == "-":
            return
    if json_out:
        _emit(_json(report), "-")
        return
    _report_tables(report)


def _report_tables(report: dict) -> None:
    from .evaluation import METRICS

    units = "scaled values" if report["scaled"] else "original units"
    pooled = " (MSE, MAE, RMSE pooled on scaled values)" if report["pooled_scaled"] else ""
    rows = [[name, *[values[m] for m in METRICS]] for name, values in report["overall"].items()]
    _table(f"{report['model']}: {_windows_scored(report)}, stride {report['stride']}, {units}{pooled}",
           ["model", *METRICS], rows)
    if len(report["targets"]) > 1:
        rows = [[target, name, *[values[m] for m in METRICS]]
                for target, by_model in report["targets"].items() for name, values in by_model.items()]
        _table(f"per target ({units})", ["target", "model", *METRICS], rows)
    if len(report["series"]) > 1:
        rows = [[sid, values["windows"], *[values[report["model"]][m] for m in METRICS]]
                for sid, values in report["series"].items()]
        _table("per series", ["series", "windows", *METRICS], rows)


def _windows_scored(report: dict) -> str:
    asked = report.get("windows_requested")
    if asked and report["windows"] < asked:
        return f"{report['windows']} windows scored ({asked} asked for)"
    return f"{report['windows']} windows"


@_command()
def compare(
    data: Data,
    models: Annotated[Optional[str], typer.Option("--models", help="Comma-separated model names. Default: every registered model.")] = None,
    metric: Annotated[str, typer.Option("--metric", help="Sort the leaderboard by this metric: mse, mae, rmse, mape, smape or mase. Default: mase (mse with --split).")] = "",
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Also write the table: .csv or .json.")] = None,
    save_dir: Annotated[Optional[Path], typer.Option("--save-dir", help="Keep each model's checkpoint in this folder.")] = None,
    windows: Windows = 20,
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
    param: Annotated[Optional[list[str]], typer.Option("--param", "-p", help="MODEL.key=value for one model, or key=value for all that accept it.")] = None,
    window_norm: WindowNormOpt = "auto",
    epochs: Epochs = 0,
    max_steps: MaxSteps = 0,
    batch_size: Batch = 0,
    lr: LR = 0.0,
    patience: Patience = 2,
    seed: Seed = 0,
    device: Device = "auto",
    forecasts: Forecasts = None,
    json_out: Json = False,
) -> None:
    """Train several models identically and rank them on the same test windows."""
    from .data import write_csv
    from .evaluation import METRICS, EvalConfig
    from .evaluation import compare as run_compare
    from .registry import list_models, parse_param_options, resolve_params
    from .training import ModelConfig
    from .windows import Split

    names = [m.strip() for m in models.split(",") if m.strip()] if models else list_models()
    known = list_models()
    for name in names:
        if name not in known:
            raise UsageError(f"unknown model {name!r}; choose from: {', '.join(known)}")
    metric = metric or ("mse" if split else "mase")
    if metric not in METRICS:
        raise UsageError(f"--metric {metric!r}: choose one of {', '.join(METRICS)}")
    per_model: dict[str, dict[str, str]] = {}
    for key, value in parse_param_options(param).items():
        owner, dot, name = key.rpartition(".")
        for model_name in ([owner] if dot else names):
            if dot or name in resolve_params(model_name):
                per_model.setdefault(model_name, {})[name] = value
    for model_name, params in per_model.items():
        resolve_params(model_name, params)
    if output and not output.endswith((".csv", ".json")):
        raise UsageError(f"--output {output}: name a .csv or .json file")
    if save_dir and not save_dir.is_dir():
        raise UsageError(f"--save-dir {save_dir}: no such folder")
    train_config = _train_config(epochs, max_steps, batch_size, lr, patience, seed, device)
    series = _load(data, _data_config(time_col, target, id_col, freq, fill, decimal, dayfirst, date_format))
    say(_describe(series))
    eval_config = EvalConfig(windows, stride, Split.parse(split) if split else None)
    progress: dict[str, _Progress] = {}

    def on_model(name: str, row: Optional[dict]) -> None:
        if row is None:
            progress[name] = _Progress(name)
            progress[name].__enter__()
        else:
            progress.pop(name).__exit__(None, None, None)
            say(f"{name}: {metric} {_fmt(row[metric])}, {row['train_s']:.1f}s training")

    rows = run_compare(series, names, ModelConfig(params={}, lookback=lookback, horizon=horizon,
                                                  window_norm=window_norm),
                       train_config, eval_config, per_model, str(save_dir) if save_dir else None,
                       on_model=on_model, on_epoch=lambda r: progress[next(iter(progress))].epoch(r),
                       on_forecasts=(lambda frame: _emit(write_csv(frame), forecasts)) if forecasts else None)
    rows.sort(key=lambda r: (not math.isfinite(r[metric]), r[metric]))
    columns = ["model", "parameters", "train_s", "seconds_per_epoch", "epochs", "predict_ms", *METRICS, "windows"]
    if output:
        if output.endswith(".json"):
            _emit(_json(rows), output)
        else:
            import pandas as pd

            from .data import write_csv

            _emit(write_csv(pd.DataFrame(rows)), output)
    if json_out:
        _emit(_json(rows), "-")
        return
    if forecasts == "-":
        return
    units = "scaled values" if split else "original units"
    if rows[0].get("pooled_scaled"):
        units += "; MSE, MAE, RMSE pooled on scaled values"
    _table(f"leaderboard by {metric} ({_windows_scored(rows[0])}, {units})", columns,
           [[r[c] for c in columns] for r in rows])


@_command()
def explain(
    checkpoint_path: Ckpt,
    data: Data,
    window: Annotated[int, typer.Option("--window", help="Explain the window ending N steps before each series' end (0 = the last).")] = 0,
    per_layer: Annotated[bool, typer.Option("--per-layer", help="One map per layer (and direction) instead of the mean over layers.")] = False,
    series_id: Annotated[Optional[str], typer.Option("--series", help="Only this series id.")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="CSV (or --json) path, or - for stdout.")] = "-",
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Also draw the first series' maps as a PNG heatmap (needs seqcast[plot]).")] = None,
    fill: FillAgain = None,
    freq: FreqAgain = None,
    decimal: Decimal = None,
    dayfirst: DayFirst = None,
    date_format: DateFormat = None,
    json_out: Json = False,
) -> None:
    """Show what a model looks at: attention weights (query step x input step) or recurrent gate
    activations per input step, for the last window of each series (CSV on stdout).

    Columns: series, model, layer, kind, query_axis, query_step, input_step, input_timestamp, weight.
    """
    from . import explain as explaining
    from .checkpoint import load
    from .data import write_csv

    if plot:
        explaining.require_matplotlib()
    ckpt = load(checkpoint_path)
    series = _load(data, _reread(ckpt, fill, freq, decimal, dayfirst, date_format))
    if series_id is not None:
        series.series = [s for s in series.series if s.id == series_id]
        if not series.series:
            raise UsageError(f"--series {series_id!r}: no such series in {series.source}")
    maps = explaining.explain(ckpt, series, window, per_layer)
    name = ckpt.name
    if plot:
        explaining.plot(maps, name, str(plot))
        say(f"plot: {plot}")
    if json_out:
        _emit(_json(explaining.to_document(maps, ckpt, window)), output)
    else:
        _emit(write_csv(explaining.to_frame(maps, name)), output)


@_command(name="models")
def models_command(json_out: Json = False) -> None:
    """List the registered models, one line each, with their hyperparameters."""
    from .registry import create_model, get_spec, list_models

    entries = []
    for name in list_models():
        spec = get_spec(name)
        model = create_model(name, 96, 24, 1)
        entries.append({"model": name, "family": spec.family, "parameters": sum(p.numel() for p in model.parameters()),
                        "summary": spec.summary, "defaults": spec.defaults(),
                        "window_norm": spec.capabilities.window_norm})
    if json_out:
        _emit(_json(entries), "-")
        return
    lines = [f"{e['model']:<22} {e['family']:<16} {e['parameters']:>9,} params  {e['summary']}\n"
             f"{'':<22} {' '.join(f'{k}={v}' for k, v in e['defaults'].items()) or '(no hyperparameters)'}"
             f"  [window norm {e['window_norm']}]"
             for e in entries]
    typer.echo("\n".join(lines))
    say("parameters counted at lookback 96, horizon 24, one channel")


@_command()
def info(checkpoint_path: Ckpt, json_out: Json = False) -> None:
    """Show what a checkpoint holds: model, hyperparameters, data schema, scaling, training, versions."""
    from .checkpoint import FORMAT_VERSION, load, to_meta

    ckpt = load(checkpoint_path)
    if json_out:
        _emit(_json({**to_meta(ckpt), "format": {"stored": ckpt.stored.format, "read_as": FORMAT_VERSION}}), "-")
        return
    m, d, p, t = ckpt.spec, ckpt.schema, ckpt.policy, ckpt.training
    reading = [f"frequency {d.freq} ({'given' if p.freq_given else 'inferred'})", f"fill {p.fill}",
               f"decimal {p.decimal or '(inferred)'}"]
    if p.dayfirst is not None:
        reading.append("day first" if p.dayfirst else "month first")
    if p.date_format:
        reading.append(f"date format {p.date_format}")
    settings = t.settings
    lines = [
        f"model       {m.name} ({m.n_parameters:,} parameters, window norm {m.window_norm})",
        f"params      {' '.join(f'{k}={v}' for k, v in m.params.items()) or '-'}",
        f"data        {d.source}: time {d.time_col or '(row number)'}, targets {', '.join(d.targets)}, "
        f"id {d.id_col or '-'}, {len(d.series)} series",
        f"reading     {', '.join(reading)}",
        f"windows     lookback {d.lookback}, horizon {d.horizon}",
        f"trained on  {_seen_text(t.seen_until)}",
        f"training    {t.epochs_run} epochs, {t.steps} steps, batch {settings.batch_size}, lr {settings.lr}, "
        f"seed {settings.seed}{_best_epoch_text(t.best_epoch)}"
        + (f", continued from {t.init_from.path}" if t.init_from else ""),
        f"validation  MSE {t.val_mse_scaled:.6g} (scaled)",
        f"versions    seqcast {ckpt.versions.seqcast}, torch {ckpt.versions.torch}",
    ]
    lines += [f"warning     {w}" for w in t.warnings]
    if ckpt.stored.format != FORMAT_VERSION:
        lines.append(f"format      {ckpt.stored.format}, upgraded to {FORMAT_VERSION} on reading "
                     "(refit to store the newer format)")
    typer.echo("\n".join(lines))


def _seen_text(seen) -> str:
    if seen is None:
        return "(not recorded by this checkpoint's format)"
    last = sorted(set(map(str, seen.values())))
    span = last[0] if len(last) == 1 else f"{last[0]} .. {last[-1]}"
    return f"rows up to {span}" + (f" ({len(seen)} series)" if len(seen) > 1 else "")


def _best_epoch_text(best) -> str:
    if best is None:
        return ""
    if best == 0:
        return "; kept the starting weights (no epoch beat them on validation)"
    return f"; kept epoch {best}"


GLOBAL_FLAGS = ("-q", "--quiet", "-v", "--verbose", "--debug", "--no-color")


def _interrupt(signum, frame) -> None:
    """Ctrl-C and SIGTERM: raise KeyboardInterrupt now, and remember it, so that an interrupt raised
    where Python discards exceptions (a finaliser) still ends training at the next step."""
    State.interrupted = True
    raise KeyboardInterrupt


def main() -> None:
    """Console entry point: SIGINT and SIGTERM end a run alike (no partial files), then run the app.

    The global flags are accepted anywhere before ``--`` (``seqcast fit data.csv -q``), as cron
    users write them, by moving them in front of the command.
    """
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    args = sys.argv[1:]
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if a in GLOBAL_FLAGS]
    rest = [a for a in args[:end] if a not in GLOBAL_FLAGS]
    app(args=flags + rest + args[end:], prog_name="seqcast")
