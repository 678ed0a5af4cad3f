"""``seqcast predict``, ``explain`` and ``export`` as library calls.

What they share: a checkpoint or an exported .onnx model (read without torch), the new history read
as fit read its data (only the rows a forecast needs), the known-future covariates of ``--future``
or of the rows after each series' last observation, and the threads a forecast runs on.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..adaptive import RATE
from ..errors import UsageError
from ..record import ENVIRONMENT
from . import Reading, Reporter, load


def open_forecaster(path: Path, threads: int = 0) -> Any:
    """A checkpoint, or an exported .onnx model (read without torch, run on ``threads`` onnxruntime threads)."""
    from .. import edge

    if edge.is_onnx(path):
        if threads < 0:  # as threads.check_threads says it (that module loads torch)
            raise UsageError(f"--threads {threads}: must be a number of threads, or 0 to choose them for the work")
        return edge.load(path, threads=threads)
    from ..checkpoint import load as load_checkpoint

    return load_checkpoint(path)


def rows_needed(ckpt) -> int | None:
    """How many of a file's last rows a forecast reads: the lookback, with room for gaps a fill
    closes; None (the whole file) unless the single series of a file is one the model was scaled on
    (a series it has not seen is scaled by its whole history)."""
    from ..data import DEFAULT_ID

    return 2 * ckpt.lookback + 64 if DEFAULT_ID in ckpt.scaler.mean else None


def forecast_threads(ckpt, threads: int, windows: int):
    """torch's intra-op threads around a checkpoint's forecast of ``windows`` windows; an ONNX model's
    session has its own."""
    from ..edge import OnnxModel

    if isinstance(ckpt.model, OnnxModel):
        return contextlib.nullcontext()
    from ..threads import forecast_threads as threads_for, using_threads

    return using_threads(threads_for(threads, ckpt, windows))


def with_future(reporter: Reporter, series, future: Path | None, config, ckpt):
    """``series`` with the known-future covariates of ``--future FILE`` in place of any rows after each
    series' last observation in the history; notes on series and static categories ``ckpt`` never saw
    and on covariate values outside their training range."""
    from ..covariates import outside_training_range, unseen_categories
    from ..data import load_future
    from ..forecasting import unseen_series

    reporter.notes(unseen_series(ckpt, series) + unseen_categories(series, ckpt.covariates))
    if future is not None and not config.future_cols:
        dropped = any("not fed to the model" in w for w in ckpt.training.warnings) if ckpt.training else False
        if not dropped:
            raise UsageError(f"--future {future}: the model reads no known-future covariates (fit --future-cols); "
                             "leave --future out")
        reporter.notes([f"--future {future} ignored: fit left out the future covariates as constant over its "
                        "training rows (seqcast info shows its warning), so the model reads none"])
    elif future is not None:
        if series.ahead:
            reporter.notes([f"--future {future} replaces the rows after the last observation in {series.source}"])
        series = replace(series, ahead=load_future(str(future), config))
    reporter.notes(outside_training_range(series, ckpt.covariates))
    return series


@dataclass(frozen=True, kw_only=True)
class PredictRequest:
    checkpoint: Path  # a checkpoint, or a .onnx model from seqcast export
    data: str
    reading: Reading = Reading()
    horizon: int = 0  # 0: the trained horizon
    levels: tuple[float, ...] = ()  # interval levels to report; (): every one the checkpoint has
    future: Path | None = None
    threads: int = 0
    plot: Path | None = None
    plot_series: tuple[str, ...] | None = None
    record: Path | None = None  # append the forecast to this forecast record (record.py)
    adapt: bool = False  # draw the bands at the rates the record's coverage left (adaptive.py)
    adapt_rate: float = RATE  # adaptive conformal inference's gamma


@dataclass(frozen=True)
class Forecast:
    frame: Any  # pandas.DataFrame: forecasting.COLUMNS, then interval and quantile columns
    forecaster: Any
    series: Any  # the history read (data.SeriesSet)
    recorded: dict[str, Any] | None = None  # the record's index entry of this run (request.record)


def predict_file(request: PredictRequest, reporter: Reporter) -> Forecast:
    """The forecast of the next horizon after each series of ``request.data``, drawn to ``request.plot``."""
    from ..forecasting import predict
    from ..intervals import check_levels
    from ..plots import forecast_plot, require_matplotlib

    if request.plot:
        require_matplotlib()
    if request.adapt and request.record is None:
        raise UsageError(f"--adapt draws the bands from the coverage the forecast record measured; give --record DIR "
                         f"(or set {ENVIRONMENT})")
    if not 0 < request.adapt_rate < 1:
        raise UsageError(f"--adapt-rate {request.adapt_rate:g}: give a rate in (0, 1), e.g. 0.005")
    ckpt = open_forecaster(request.checkpoint, request.threads)
    levels = check_levels(request.levels, ckpt.calibration, str(request.checkpoint))
    if request.adapt and not levels:
        raise UsageError(f"--adapt: {request.checkpoint} has no intervals to adapt; refit it with `seqcast fit ... "
                         "--level 80,95`")
    config = request.reading.again(ckpt)
    series = load(reporter, request.data, config, last=None if request.plot else rows_needed(ckpt))
    series = with_future(reporter, series, request.future, config, ckpt)
    with forecast_threads(ckpt, request.threads, len(series.series)):
        frame = predict(ckpt, series, request.horizon, levels)
    entry = None
    if request.record is not None:
        frame, entry = record_forecast(request, reporter, ckpt, series, config, frame, levels)
    if request.plot:
        forecast_plot(series, frame, request.plot, request.plot_series)
    return Forecast(frame, ckpt, series, entry)


def record_forecast(request: PredictRequest, reporter: Reporter, ckpt, series, config, frame, levels):
    """Append ``frame`` to the forecast record ``request.record``; with ``request.adapt``, first feed the
    record's forecasts whose actuals ``series`` now holds to the adaptive state, and draw the bands at it.
    Returns the frame as recorded and its index entry."""
    from dataclasses import asdict

    from .. import adaptive, record
    from ..data import season_length

    folder = record.folder_of(request.record)
    training = ckpt.training
    integer_time = ckpt.schema.integer_time
    entry = {"checkpoint": str(request.checkpoint), "sha256": ckpt.stored.sha256,
             "parent": training.init_from.sha256 if training is not None and training.init_from else None,
             "model": ckpt.name, "data": series.source, "series": len(series.series), "targets": list(series.targets),
             "horizon": int(frame["step"].max()), "levels": list(levels), "freq": ckpt.schema.freq,
             "integer_time": integer_time, "season": season_length(series.freq),
             "adapt": request.adapt_rate if request.adapt else None}
    described = {"checkpoint": str(request.checkpoint), "reading": asdict(config),
                 "backtest": asdict(ckpt.backtest) if ckpt.backtest is not None else None,
                 "backtest_levels": list(ckpt.calibration.levels) if ckpt.calibration else []}
    origins = dict(zip(series.ids, series.stacked_times()[series.bounds[1:] - 1]))
    with record.writing(folder) as held:
        reporter.notes(held.notes)
        if request.adapt:
            state = adaptive.load(folder, integer_time)
            latest = {sid: int(record.time_keys([origin], integer_time)[0]) for sid, origin in origins.items()}
            fed = held.forecasts(adaptive.runs_to_feed(held, state, integer_time, latest))
            fed = fed.assign(key=record.recorded_keys(held, fed["timestamp"], integer_time)) if len(fed) else fed
            state = adaptive.update(state, fed, record.actual_values(series), levels, request.adapt_rate, integer_time)
            frame = adaptive.apply(frame, state, levels)
            adaptive.save(folder, state)
        entry = record.append(held, frame, origins, {**entry, "root": record.root(held, entry)}, described)
    return frame, entry


@dataclass(frozen=True, kw_only=True)
class ExplainRequest:
    checkpoint: Path
    data: str
    reading: Reading = Reading()
    window: int = 0  # the window ending this many steps before each series' end
    per_layer: bool = False
    covariates: bool = False  # each covariate's effect on the forecast instead of maps
    future: Path | None = None
    series_id: str | None = None
    threads: int = 0
    plot: Path | None = None


@dataclass(frozen=True)
class Explained:
    forecaster: Any
    maps: Any = None  # explain.explain's maps, or
    effects: Any = None  # explain.covariate_effects' frame (request.covariates)


def explain_file(request: ExplainRequest, reporter: Reporter) -> Explained:
    """What the model looks at in the last window of each series (or the covariates' effects), with
    the maps drawn to ``request.plot``."""
    from .. import explain
    from ..checkpoint import load as load_checkpoint

    if request.plot:
        explain.require_matplotlib()
        if request.covariates:
            raise UsageError("--plot draws attention or gate maps; leave it out with --covariates")
    ckpt = load_checkpoint(request.checkpoint)
    config = request.reading.again(ckpt)
    series = with_future(reporter, load(reporter, request.data, config), request.future, config, ckpt)
    if request.series_id is not None:
        series.series = [s for s in series.series if s.id == request.series_id]
        if not series.series:
            raise UsageError(f"--series {request.series_id!r}: no such series in {series.source}")
    with forecast_threads(ckpt, request.threads, len(series.series)):
        if request.covariates:
            return Explained(ckpt, effects=explain.covariate_effects(ckpt, series, request.window))
        maps = explain.explain(ckpt, series, request.window, request.per_layer)
    if request.plot:
        explain.plot(maps, ckpt.name, str(request.plot))
    return Explained(ckpt, maps=maps)


@dataclass(frozen=True, kw_only=True)
class ExportRequest:
    checkpoint: Path
    output: Path | None = None  # None: the checkpoint's name with .onnx (.int8.onnx with int8), beside it
    int8: bool = False
    force: bool = False
    wait: bool = False


def export_output(request: ExportRequest) -> Path:
    output = request.output or request.checkpoint.with_suffix(".int8.onnx" if request.int8 else ".onnx")
    if str(output) == "-":
        raise UsageError("--output -: an ONNX model is a binary file; name a .onnx file")
    return output


def export_file(request: ExportRequest) -> tuple[Any, Any]:
    """The checkpoint as one parity-checked ONNX file; returns the forecaster and export.Exported."""
    from .. import export
    from ..checkpoint import load as load_checkpoint
    from ..files import atomic_write, locked_output

    export.require_exporter()
    output = export_output(request)
    ckpt = load_checkpoint(request.checkpoint)
    with locked_output(output, force=request.force, wait=request.wait):
        exported = export.export(ckpt, int8=request.int8)
        atomic_write(output, exported.data)
    return ckpt, exported
