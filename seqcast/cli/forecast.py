"""Commands that forecast: predict, explain and export. Each builds one typed request and makes one
library call (runs.forecast)."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import command, options, render
from .options import Ckpt, Data, Json, LevelsAgain, MinLength, Plot, PlotSeries, Threads
from .output import Output, to_json


@command(shared=(options.READING_AGAIN,))
def predict(
    ctx: typer.Context,
    checkpoint_path: options.CkptOrOnnx,
    data: Data,
    output: Annotated[str, typer.Option("--output", "-o", help="Forecast path: CSV, or Parquet where it ends in .parquet (seqcast[files]); - for stdout (CSV).")] = "-",
    horizon: Annotated[int, typer.Option("--horizon", "-H", help="Forecast only the first N steps (at most the trained horizon; 0 = all).")] = 0,
    future: options.FutureFile = None,
    threads: Threads = 0,
    min_length: MinLength = 0,
    level: LevelsAgain = None,
    plot: Plot = None,
    plot_series: PlotSeries = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout (with the forecast rows unless --output names a file).")] = False,
    record: Annotated[Optional[Path], typer.Option("--record", envvar="SEQCAST_RECORD", show_envvar=True, help="Also append the forecast to the forecast record in this folder (created if missing), which `seqcast monitor` scores once the actuals arrive.")] = None,
    adapt: Annotated[bool, typer.Option("--adapt", help="Draw the interval bands at the coverage rates the record's earlier forecasts call for (adaptive conformal inference); needs --record. Adds level_80, ...: the coverage each band was drawn at.")] = False,
    adapt_rate: Annotated[float, typer.Option("--adapt-rate", help="How fast --adapt moves a band's rate per point scored (gamma).")] = 0.005,
    workers: Annotated[int, typer.Option("--workers", help="Forecast a folder of Parquet files on this many local Dask worker processes, one output partition per file into the folder -o names (needs seqcast[cluster]).")] = 0,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", help="As --workers, on the running Dask cluster at this address (tcp://host:8786); its workers must see the same paths.")] = None,
) -> None:
    """Forecast the next horizon steps after each series' last timestamp (CSV on stdout).

    Columns: series, timestamp, step, model, target, forecast (original units); then lo_80, hi_80, ...
    for each interval level the checkpoint has (fit --level), and q10, q90, ... for a model trained on
    quantiles (fit --quantiles). A .onnx model (seqcast export) gives the same forecast through
    onnxruntime and numpy, without importing torch.
    """
    out: Output = ctx.obj
    from ..data import table_bytes
    from ..forecasting import summary
    from ..intervals import parse_levels
    from ..runs.forecast import PredictRequest, predict_file
    from ..runs.partitions import predict_partitions

    request = PredictRequest(checkpoint=checkpoint_path, data=data, reading=options.reading(**ctx.params),
                             horizon=horizon, levels=parse_levels(level), future=future, threads=threads, plot=plot,
                             plot_series=plot_series, record=record, adapt=adapt, adapt_rate=adapt_rate)
    if workers or scheduler:  # a partitioned dataset, a partition per task: nothing to hold or check here
        return render.partitioned(out, predict_partitions(request, output, workers, scheduler, out), json_out)
    options.check_files(ctx)
    done = predict_file(request, out)
    if plot:
        out.say(f"plot: {plot}")
    if json_out:
        if output != "-":
            out.emit(table_bytes(done.frame, output), output)
        out.emit(to_json(summary(done.forecaster, done.series, done.frame, None if output == "-" else output)), "-")
    else:
        out.emit(table_bytes(done.frame, output), output)
    out.detail(f"{len(done.frame)} forecast rows for {len(done.series.series)} series")
    if done.recorded:
        out.detail(f"recorded as run {done.recorded['run']} in {record}")


@command(name="export")
def export_command(
    ctx: typer.Context,
    checkpoint_path: Ckpt,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="ONNX file to write. Default: the checkpoint's name with .onnx (.int8.onnx with --int8), beside it.")] = None,
    int8: Annotated[bool, typer.Option("--int8", help="Dynamic int8 quantization (onnxruntime): linear, attention, convolution and LSTM weights in int8; GRU and vanilla RNN weights stored in int8 and computed in fp32 (no integer kernel). Checked against torch like the fp32 graph, with a looser limit.")] = False,
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
    from ..runs.forecast import ExportRequest, export_file, export_output

    request = ExportRequest(checkpoint=checkpoint_path, output=output, int8=int8, force=force, wait=wait)
    options.check_files(ctx, output=export_output(request))
    ckpt, exported = export_file(request)
    out.notes(exported.notes)
    for line in render.export_lines(ckpt, exported, export_output(request)):
        out.say(line)
    if json_out:
        out.emit(to_json(render.export_document(ckpt, exported, export_output(request), checkpoint_path)), "-")


@command(shared=(options.READING_AGAIN,))
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
    threads: Threads = 0,
    json_out: Json = False,
) -> None:
    """Show what a model looks at: attention weights (query step x input step) or recurrent gate
    activations per input step, for the last window of each series (CSV on stdout).

    Columns: series, model, layer, kind, query_axis, query_step, input_step, input_timestamp, weight.
    """
    out: Output = ctx.obj
    from .. import explain as explaining
    from ..data import write_csv
    from ..runs.forecast import ExplainRequest, explain_file

    options.check_files(ctx)
    done = explain_file(ExplainRequest(checkpoint=checkpoint_path, data=data, reading=options.reading(**ctx.params),
                                       window=window, per_layer=per_layer, covariates=covariates, future=future,
                                       series_id=series_id, threads=threads, plot=plot), out)
    ckpt = done.forecaster
    if covariates:
        out.emit(to_json({"model": ckpt.name, "window": window, "effects": done.effects.to_dict(orient="records")})
                 if json_out else write_csv(done.effects), output)
        return
    if plot:
        out.say(f"plot: {plot}")
    out.emit(to_json(explaining.to_document(done.maps, ckpt, window)) if json_out
             else write_csv(explaining.to_frame(done.maps, ckpt.name)), output)
