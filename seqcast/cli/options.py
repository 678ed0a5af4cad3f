"""Option types shared by the commands, and the run settings they build."""

import inspect
from pathlib import Path
from typing import Annotated, Any, Optional, Sequence

import typer

from ..build import DEFAULT_MAX_PARAMETERS
from ..errors import UsageError
from ..registry import check_covariates, get_spec, list_models, models_reading, resolve_params

# Options shared by several commands, defined once.
Data = Annotated[str, typer.Argument(metavar="DATA", help="CSV or Parquet file with the history, a folder of Parquet files, or - for stdin.")]
Ckpt = Annotated[Path, typer.Argument(metavar="CHECKPOINT", help="Checkpoint written by `seqcast fit`.")]
CkptOrOnnx = Annotated[Path, typer.Argument(metavar="CHECKPOINT", help="Checkpoint written by `seqcast fit`, or a .onnx model written by `seqcast export` (forecasts through onnxruntime, without torch; needs seqcast[onnx]).")]
Target = Annotated[Optional[list[str]], typer.Option("--target", "-t", help="Column(s) to forecast (repeat for several). Default: y/value/target, else the last numeric column.")]
TimeCol = Annotated[Optional[str], typer.Option("--time-col", help="Time column. Default: detected (ds, date, timestamp, ...).")]
IdCol = Annotated[Optional[str], typer.Option("--id-col", help="Series id column for many series in long format. Default: a column named unique_id, series_id, series or id; else a text column whose values repeat named symbol, ticker, store, store_id, item, item_id, sku, product, firm, company, country, region, city, station, site, sensor or location.")]
Freq = Annotated[Optional[str], typer.Option("--freq", help="Frequency as a pandas alias (h, D, W, MS) or integer step. Default: inferred.")]
Fill = Annotated[str, typer.Option("--fill", help="Missing values and gaps: none (error), ffill, interpolate, zero.")]
Decimal = Annotated[Optional[str], typer.Option("--decimal", help="Decimal separator of the numbers, . or , (default: decided from the values; a note says when they were ambiguous).")]
DayFirst = Annotated[Optional[bool], typer.Option("--dayfirst/--monthfirst", help="Dates like 01.02.1949: day first (1 February) or month first (January 2). Default: inferred from the whole column.", show_default=False)]
DateFormat = Annotated[Optional[str], typer.Option("--date-format", help="strftime format of the time column, e.g. '%d.%m.%Y'.")]
# Covariates (seqcast/covariates.py): named at fit, compare and tune; the checkpoint records them.
PastCols = Annotated[Optional[str], typer.Option("--past-cols", metavar="COL,COL,...", help="Past covariates: numeric columns observed up to the forecast origin (another sensor), read with the history and fed to the model beside the targets.")]
FutureCols = Annotated[Optional[str], typer.Option("--future-cols", metavar="COL,COL,...", help="Known-future covariates: numeric columns known for the horizon too (a planned promotion, a holiday flag, a day-ahead forecast). predict needs them for the H steps after each series' last observation: as rows with an empty target at the end of the history, or in predict --future FILE.")]
StaticCols = Annotated[Optional[str], typer.Option("--static-cols", metavar="COL,COL,...", help="Static covariates: columns constant within each series (region, store); numbers, or text read as categories (one input each; a category not seen in training is read as the training average, with a note).")]
Calendar = Annotated[str, typer.Option("--calendar", help="Calendar features generated from the timestamps, fed as known-future inputs: none, auto (each of hour, dow, dom, doy, month that varies at the data's frequency), or names, e.g. hour,dow.")]
FutureFile = Annotated[Optional[Path], typer.Option("--future", metavar="FILE.csv", help="Known-future covariates for the forecast (fit --future-cols): a CSV with the history's time and id columns and those columns, covering the H steps after each series' last observation. Default: the rows with an empty target at the end of DATA.")]
# predict, evaluate and explain read new history the way fit read the training data (as the
# checkpoint records it); these options override that record.
FillAgain = Annotated[Optional[str], typer.Option("--fill", help="Missing values and gaps: none (error), ffill, interpolate, zero. Default: none; for a checkpoint's data, what fit used.")]
FreqAgain = Annotated[Optional[str], typer.Option("--freq", help="Frequency (pandas alias or integer step). Default: the checkpoint's.")]
Param = Annotated[Optional[list[str]], typer.Option("--param", "-p", help="Model hyperparameter key=value (repeatable); `seqcast models` lists them.")]
Lookback = Annotated[int, typer.Option("--lookback", "-L", help="Input steps per window. 0 = by frequency: minutes 240, hourly 96, daily 56, business days 60, weekly 104, monthly 48, quarterly 32, yearly 20, integer steps 40; shortened to fit short series, else probed against twice it on the validation windows (fit).")]
Horizon = Annotated[int, typer.Option("--horizon", "-H", help="Steps to forecast. 0 = by frequency: minutes 60, hourly 24, daily 14, business days 10, weekly 13, monthly 12, quarterly 8, yearly 5, integer steps 10.")]
WindowNormOpt = Annotated[str, typer.Option("--window-norm", help="Per-window normalisation: last (subtract the last value), mean, revin (subtract the mean, divide by the std), season (learn the change from seasonal naive: the last season repeated), deseason (take out the window's level and its seasons, estimated from the window), none. auto = probe the model's default (see `seqcast models`), last and deseason on the validation windows and keep the best.")]
Epochs = Annotated[int, typer.Option("--epochs", help="Full passes over the training windows; early stopping may end sooner. 0 = the automatic budget: about 200 steps and at least 4 epochs, but at most 2,000 steps (validated every 500 when epochs are longer); with --init-from a quarter of it.")]
TimeBudget = Annotated[float, typer.Option("--time-budget", metavar="SECONDS", help="Most seconds of training (per model; for --model auto, of all its candidates together, by default from the data and printed); when spent, training validates once more, keeps the best weights and the checkpoint records that it stopped on the time budget. 0 = none.")]
Threads = Annotated[int, typer.Option("--threads", help="torch intra-op threads. 0 = chosen for the work: one, unless a step has billions of FLOPs and cores are free (load average), and never more than OMP_NUM_THREADS or torch.set_num_threads already allow. Convolutional and attention models differ in the last bits between thread counts: pass --threads for byte-identical reruns (`seqcast info` shows the count used).")]
MaxSteps = Annotated[int, typer.Option("--max-steps", help="Most optimisation steps in all (0 = no cap).")]
Batch = Annotated[int, typer.Option("--batch-size", help="Windows per optimisation step (0 = auto: 1/50 of the training windows, 32 to 256).")]
LR = Annotated[float, typer.Option("--lr", help="Peak learning rate (AdamW; warm-up then cosine decay). 0 = the model's default: 1e-3 for cnn_lstm_transformer, informer, transformer and transformer_xl, 3e-3 for the others.")]
Patience = Annotated[int, typer.Option("--patience", help="Epochs without validation improvement before stopping; never during warm-up, and at least a tenth of the step budget.")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives identical results on CPU.")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu or cuda (bf16 mixed precision on CUDA).")]
SplitOpt = Annotated[Optional[str], typer.Option("--split", help="Explicit split by rows TRAIN,VAL[,TEST] (e.g. 8640,2880,2880 for ETT): stride-1 test windows, metrics on scaled values.")]
Windows = Annotated[int, typer.Option("--windows", help="Rolling-origin test windows per series (the last N). With 1, sMAPE and MASE are also scored for Naive2, and OWA against it (the M4 protocol).")]
Stride = Annotated[int, typer.Option("--stride", help="Steps between test origins (0 = the horizon).")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
# compare: models in parallel processes, each on a fixed number of threads, so that --jobs never changes a result.
Jobs = Annotated[int, typer.Option("--jobs", "-j", help="Models trained at once, each in its own process (1 = one after another; 0 = as many as the cores available to seqcast allow, divided by --threads). The leaderboard, --json, --forecasts and --save-dir checkpoints are those of --jobs 1 (timings aside): every model trains alone from the same seed on the same threads. With more than one job, each model is reported when it finishes, without epoch lines.")]
CompareThreads = Annotated[int, typer.Option("--threads", help="torch intra-op threads of every model. 0 = one thread each, chosen neither by the load of the machine nor by --jobs, so that results do not depend on them. --threads x --jobs may not exceed the cores available.")]
Loss = Annotated[str, typer.Option("--loss", help="Point loss on the values scaled per series: mse, mae (closer to what MASE and sMAPE score), or auto: probe the model's declared loss (`seqcast models`: on a panel mae for the N-BEATS, PatchTST and linear models and some others, as M4 Weekly's validation holdout chose, mse for the rest and for one series) against the other on the validation windows and keep the better. Validation and early stopping use the same loss.")]
TransformOpt = Annotated[str, typer.Option("--transform", help="The target's transform before scaling, undone on every forecast: none, log (log(1 + y)), boxcox (Box-Cox of 1 + y, lambda per series chosen by likelihood in [0, 1.5]); log and boxcox need values of at least 0. auto = for a target never negative, probe none and log on the validation windows and keep the better; else none. A target never negative in the data fit reads is never forecast below 0 (bands and quantiles too).")]
AllowNegative = Annotated[bool, typer.Option("--allow-negative", help="With --transform none: keep forecasts of a never-negative target below 0 when the model gives them (the floor at 0 is off).")]
MinLength = Annotated[int, typer.Option("--min-length", metavar="N", help="Leave out the series with fewer than N rows, with a note naming them (the count and the first ten). 0 = keep every series.")]
DropSparse = Annotated[bool, typer.Option("--drop-sparse", help="Leave out, with a note naming them, the series too short to train on at this lookback and horizon, instead of refusing the file.")]
Wide = Annotated[bool, typer.Option("--wide", help="The file has one row per series and one column per time (headers like 1960, 1961, ... or 2024-01): read each row as a series, its id from --id-col or the first column that is not a time. The checkpoint remembers it, so predict and evaluate read such files again by themselves.")]
MaxParameters = Annotated[int, typer.Option("--max-parameters", metavar="N", min=1, help="The most parameters a model may have (and one tensor or layer per 25,000 of them, at least 4,000): a network past it is refused as it is built, before any training. The default is 100 times the largest model at its defaults.")]
EnsembleOpt = Annotated[int, typer.Option("--ensemble", metavar="N", help="Train N members of the model from seeds SEED..SEED+N-1 and forecast their median (N times the training time). 1 = one model.")]
# Probabilistic forecasts: quantile training and conformal intervals (seqcast/intervals.py).
Quantiles = Annotated[Optional[str], typer.Option("--quantiles", metavar="Q,Q,...", help="Also train quantiles, e.g. 0.1,0.9 (each in (0, 1), ascending), with the pinball loss, through one head shared by every model that places them around the model's forecast (the 0.5 column, always added; the model itself trains as without quantiles); quantiles never cross. predict writes them as q10, q90, ...")]
Levels = Annotated[Optional[str], typer.Option("--level", metavar="PCT,PCT,...", help="Conformal prediction intervals, e.g. 80,95 (percent, each in (0, 100)): calibrated on every validation window (split conformal, finite-sample rank, each window in the scale of its own recent changes; around the quantile pair (a/2, 1-a/2) when trained on it), stored in the checkpoint; predict then writes lo_80, hi_80, lo_95, hi_95 beside forecast.")]
LevelsAgain = Annotated[Optional[str], typer.Option("--level", metavar="PCT,PCT,...", help="Interval levels to report, among those the checkpoint was calibrated for (fit --level). Default: all of them.")]
# Pictures (matplotlib, the optional extra seqcast[plot]).
Plot = Annotated[Optional[Path], typer.Option("--plot", metavar="FILE.png", help="Also draw the forecasts with their intervals as a PNG: the first 4 series, or those named by --series (needs seqcast[plot]).")]
PlotSeries = Annotated[Optional[list[str]], typer.Option("--series", help="Series to draw with --plot (repeat for several). Default: the first 4.")]
Forecasts = Annotated[Optional[str], typer.Option("--forecasts", help="Also write every test window's forecasts as CSV (model, series, origin, step, target, actual, forecast); - for stdout.")]


def _group(*options: tuple[str, Any, Any]) -> tuple[inspect.Parameter, ...]:
    """Options (name, type, default) that several commands take, as ``command(shared=...)`` adds them."""
    return tuple(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
                 for name, annotation, default in options)


# Groups of options shared by commands, declared once (command(shared=(...))); a command reads them from
# ctx.params, through the request builders below.
COLUMNS = _group(("target", Target, None), ("time_col", TimeCol, None), ("id_col", IdCol, None))
READING = _group(("freq", Freq, None), ("decimal", Decimal, None), ("dayfirst", DayFirst, None),
                 ("date_format", DateFormat, None))
READING_AGAIN = _group(("fill", FillAgain, None), ("freq", FreqAgain, None), ("decimal", Decimal, None),
                       ("dayfirst", DayFirst, None), ("date_format", DateFormat, None))
COVARIATES = _group(("past_cols", PastCols, None), ("future_cols", FutureCols, None), ("static_cols", StaticCols, None),
                    ("calendar", Calendar, "none"))
TRAINING = _group(("epochs", Epochs, 0), ("max_steps", MaxSteps, 0), ("batch_size", Batch, 0), ("patience", Patience, 2),
                  ("seed", Seed, 0), ("device", Device, "auto"), ("loss", Loss, "auto"))
SCHEDULE = _group(("lr", LR, 0.0), ("time_budget", TimeBudget, 0.0))
MODELLING = _group(("lookback", Lookback, 0), ("horizon", Horizon, 0), ("window_norm", WindowNormOpt, "auto"),
                   ("transform", TransformOpt, "auto"), ("allow_negative", AllowNegative, False),
                   ("ensemble", EnsembleOpt, 1), ("quantiles", Quantiles, None), ("level", Levels, None),
                   ("min_length", MinLength, 0), ("drop_sparse", DropSparse, False), ("wide", Wide, False),
                   ("max_parameters", MaxParameters, DEFAULT_MAX_PARAMETERS))


def columns(text: str | None) -> tuple[str, ...]:
    """``"a, b"`` -> ``("a", "b")``."""
    return tuple(c.strip() for c in (text or "").split(",") if c.strip())


# Every file a command names, by the parameter that names it, in one place: what it reads is never
# written over, except a warm start's checkpoint, which fit reads whole before it replaces the file
# atomically (`fit --init-from m.ckpt --output m.ckpt`, the README's cron line). A test checks that
# every path parameter of every command is named here.
READS = ("data", "checkpoint_path", "future", "init_from", "storage", "actuals")
WRITES = ("output", "plot", "forecasts")
UPDATES = ("init_from",)


def check_files(ctx: typer.Context, more: Sequence[Path] = (), **resolved) -> None:
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


# The typed requests' parts, built by name from a command's parameters (``**ctx.params``): each takes
# the options it knows and ignores the rest, so a command passes all of them and repeats none.
def reading(*, time_col=None, target=None, id_col=None, freq=None, fill=None, decimal=None, dayfirst=None,
            date_format=None, past_cols=None, future_cols=None, static_cols=None, calendar="none", min_length=0,
            wide=False, **_):
    """How to read the data file (runs.Reading)."""
    from ..runs import Reading

    return Reading(time_col=time_col, target=tuple(target or ()), id_col=id_col, freq=freq, fill=fill,
                   decimal=decimal, dayfirst=dayfirst, date_format=date_format, past_cols=columns(past_cols),
                   future_cols=columns(future_cols), static_cols=columns(static_cols), calendar=calendar,
                   min_length=min_length, wide=wide)


def train_config(*, epochs=0, max_steps=0, batch_size=0, lr=0.0, patience=2, seed=0, device="auto", time_budget=0.0,
                 threads=0, loss="auto", **_):
    """The run's training settings (budget.TrainConfig, which checks them)."""
    from ..budget import TrainConfig

    return TrainConfig(epochs=epochs, max_steps=max_steps, batch_size=batch_size, lr=lr, patience=patience,
                       seed=seed, device=device, time_budget=time_budget, threads=threads, loss=loss)


def model_config(*, model=None, param=None, lookback=0, horizon=0, window_norm="auto", quantiles=None, level=None,
                 ensemble=1, transform="auto", allow_negative=False, drop_sparse=False,
                 max_parameters=DEFAULT_MAX_PARAMETERS, **_):
    """What to build (training.ModelConfig): the model (None: gru, or a warm start's), its --param values,
    windows, normalisation, quantiles, intervals, ensemble, transform and parameter budget."""
    from ..intervals import parse_levels, parse_quantiles
    from ..fitting import ModelConfig

    return ModelConfig(name=model, params=parse_param_options(param), lookback=lookback, horizon=horizon,
                       window_norm=window_norm, quantiles=parse_quantiles(quantiles), levels=parse_levels(level),
                       ensemble=ensemble, transform=transform, allow_negative=allow_negative, drop_sparse=drop_sparse,
                       max_parameters=max_parameters)


def split(text: Optional[str]):
    """--split TRAIN,VAL[,TEST] as windows.Split, or None."""
    from ..windows import Split

    return Split.parse(text) if text else None


def parse_param_options(options: list[str] | None) -> dict[str, str]:
    """``["hidden_size=64", "num_layers=2"]`` -> ``{"hidden_size": "64", "num_layers": "2"}``."""
    out: dict[str, str] = {}
    for item in options or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param {item!r}: write it as key=value, e.g. --param hidden_size=64")
        out[key.strip()] = value.strip()
    return out


def names(text: str | None) -> tuple[str, ...]:
    """``"nlinear, nbeats"`` -> ``("nlinear", "nbeats")``; None -> ()."""
    return tuple(name.strip() for name in (text or "").split(",") if name.strip())


def model_names(text: str | None, covariates: tuple[str, ...] = ()) -> list[str]:
    """``"rnn, gru"`` -> ``["rnn", "gru"]``, each a registered model that reads the ``covariates`` kinds;
    when ``text`` is empty, every model that does."""
    known = [*list_models(), "auto"]  # auto: the validated ensemble (auto.py), never in the default list
    names = [m.strip() for m in text.split(",") if m.strip()] if text else models_reading(covariates)
    if text and not names:
        raise UsageError(f"--models {text!r}: names no model; give names separated by commas, e.g. --models gru,nlinear "
                         "(`seqcast models` lists them), or leave --models out to compare every model")
    unknown = [name for name in names if name not in known]
    if unknown:
        raise UsageError(f"unknown model {unknown[0]!r}; choose from: {', '.join(known)}")
    for name in names:
        check_covariates(name, covariates)
    return names


def route_params(names: list[str], options: dict[str, str]) -> dict[str, dict[str, str]]:
    """``--param`` options of a run over several models, per model: ``MODEL.key=value`` goes to that
    model, ``key=value`` to every model that has the key. A key no model has is an error, as for one model."""
    routed: dict[str, dict[str, str]] = {}
    for key, value in options.items():
        owner, dot, param = key.rpartition(".")
        if dot and owner not in names:
            raise UsageError(f"--param {key}: {owner!r} is not among the models compared ({', '.join(names)})")
        takers = [owner] if dot else [name for name in names if param in get_spec(name).defaults()]
        if not takers:
            raise UsageError(f"--param {key}: none of {', '.join(names)} has a parameter {param!r}; "
                             f"`seqcast models` lists each model's parameters")
        for name in takers:
            routed.setdefault(name, {})[param] = value
    for name, params in routed.items():
        resolve_params(name, params)
    return routed
