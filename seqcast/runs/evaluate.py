"""``seqcast evaluate`` and ``seqcast compare`` as library calls: scores on rolling-origin test windows."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import InputError, UsageError
from . import Reading, Reporter, load


@dataclass(frozen=True, kw_only=True)
class EvaluateRequest:
    checkpoint: Path
    data: str
    reading: Reading = Reading()
    windows: int = 20
    stride: int = 0  # 0: the horizon
    split: Any = None  # windows.Split: explicit rows, stride-1 test windows
    in_sample: bool = False
    levels: tuple[float, ...] = ()  # interval levels to score; (): every one the checkpoint has
    threads: int = 0
    plot: Path | None = None
    plot_series: tuple[str, ...] | None = None


def evaluate_file(request: EvaluateRequest, reporter: Reporter) -> dict[str, Any]:
    """The backtest report of ``request.checkpoint`` on the last test windows of ``request.data``
    (evaluation.backtest's, its forecasts frame under "forecasts"), drawn to ``request.plot``."""
    from ..checkpoint import load as load_checkpoint
    from ..evaluation import EvalConfig, backtest
    from ..intervals import check_levels
    from ..plots import backtest_plot, require_matplotlib
    from ..threads import forecast_threads, using_threads

    if request.plot:
        require_matplotlib()
    ckpt = load_checkpoint(request.checkpoint)
    levels = check_levels(request.levels, ckpt.calibration, str(request.checkpoint))
    series = load(reporter, request.data, request.reading.again(ckpt))
    with using_threads(forecast_threads(request.threads, ckpt, request.windows * len(series.series))):
        report = backtest(ckpt, series, EvalConfig(request.windows, request.stride, request.split,
                                                   request.in_sample, levels))
    reporter.notes([], report["warnings"])
    if request.plot:
        backtest_plot(report["forecasts"], ckpt.schema.freq, ckpt.schema.integer_time, request.plot,
                      request.plot_series)
    return report


@dataclass(frozen=True, kw_only=True)
class CompareRequest:
    data: str
    models: list[str]
    params: dict[str, dict[str, str]]  # per model, its --param values
    model: Any  # training.ModelConfig shared by every model (lookback, horizon, window norm, ...)
    training: Any  # budget.TrainConfig
    metric: str  # the leaderboard's order (evaluation.leaderboard_metric)
    reading: Reading = Reading()
    windows: int = 0  # 0: as many as the data allow, up to the default
    stride: int = 0
    split: Any = None
    save_dir: Path | None = None
    force: bool = False
    jobs: int = 1
    storage: str | None = None  # share the models among processes through an Optuna storage
    study: str | None = None


def saved_checkpoints(save_dir: Path | None, models: list[str]) -> list[Path]:
    """Where compare --save-dir keeps each model's checkpoint."""
    return [save_dir / f"{name}.ckpt" for name in models] if save_dir else []


def compare_file(request: CompareRequest, reporter: Reporter, on_model: Callable | None = None,
                 on_epoch: Callable | None = None, on_forecasts: Callable | None = None) -> list[dict[str, Any]]:
    """Every model of ``request`` trained alike and scored on the same test windows: the leaderboard's
    rows, ranked by ``request.metric`` (evaluation.compare says what the callbacks receive)."""
    from ..comparing import DEFAULT_WINDOWS, compare, fitting_windows, without_short
    from ..evaluation import EvalConfig, rank
    from ..files import output_lock
    from ..fitting import ModelConfig
    from ..workers import jobs_for_cores

    shared = _shared_study(request, on_forecasts is not None)
    saved = saved_checkpoints(request.save_dir, request.models)
    if request.save_dir and not request.save_dir.is_dir():
        raise UsageError(f"--save-dir {request.save_dir}: no such folder")
    existing = [str(p) for p in saved if p.exists()]
    if existing and not request.force:
        raise UsageError(f"--save-dir {request.save_dir}: {', '.join(existing)} exist; pass --force to overwrite "
                         "them (or choose another folder)")
    jobs = min(jobs_for_cores(request.jobs, request.training.threads), len(request.models))
    if shared:
        from ..tuning import repair_journal

        reporter.notes([note for note in [repair_journal(request.storage)] if note])
    series = load(reporter, request.data, request.reading.fresh(), describe=True)
    windows = request.windows
    asked = ModelConfig(lookback=request.model.lookback, horizon=request.model.horizon,
                        drop_sparse=request.model.drop_sparse)
    if not windows and not request.split:  # the default: as many as the data allow, up to DEFAULT_WINDOWS
        windows, notes = fitting_windows(series, asked, request.stride)
        reporter.notes(notes)
    eval_config = EvalConfig(windows or DEFAULT_WINDOWS, request.stride, request.split)
    if not request.split:  # every model trains on each series' rows before its test windows
        series, notes = without_short(series, asked, eval_config)
        reporter.notes(notes)
    if jobs > 1:
        threads = request.training.threads
        reporter.say(f"training {len(request.models)} models, {jobs} at a time in worker processes, {threads or 1} "
                     f"thread{'s' if threads > 1 else ''} each; each is reported when it finishes")
    with contextlib.ExitStack() as locks:  # a second compare into the same --save-dir waits for none: exit 75
        for path in saved:
            locks.enter_context(output_lock(path))
        rows = compare(series, request.models, request.model, request.training, eval_config, request.params,
                       str(request.save_dir) if request.save_dir else None, on_model=on_model, on_epoch=on_epoch,
                       on_forecasts=on_forecasts, jobs=jobs, study=shared)
    return rank(rows, request.metric)


def _shared_study(request: CompareRequest, forecasts: bool):
    """The tuning.TuneConfig of a compare shared through ``--storage``, else None."""
    if not request.storage:
        if request.study:
            raise UsageError("--study names a study in --storage; give --storage too")
        return None
    from ..tuning import TuneConfig, require_optuna

    require_optuna()
    if forecasts:
        raise UsageError("--forecasts with --storage: each model's forecasts stay with the process that trained "
                         "it; keep the checkpoints with --save-dir and run `seqcast evaluate --forecasts` on them")
    return TuneConfig(trials=len(request.models), storage=request.storage, study=request.study)


@dataclass(frozen=True, kw_only=True)
class MonitorRequest:
    record: Path  # a forecast record folder (predict --record)
    actuals: str  # the file with the actuals, read as the latest recorded run's data was
    window: int = 30
    margin: float = 0.5
    series_margin: float = 2.0
    alpha: float = 0.01
    stale_steps: int = 1
    plot: Path | None = None


def monitor_file(request: MonitorRequest, reporter: Reporter) -> dict[str, Any]:
    """``monitor.monitor``'s report on the record's forecasts against ``request.actuals``, drawn to
    ``request.plot``; the record's and the reader's notes to ``reporter``."""
    from .. import record
    from ..monitor import MonitorConfig, monitor
    from ..plots import monitor_plot, require_matplotlib

    config = MonitorConfig(window=request.window, margin=request.margin, series_margin=request.series_margin,
                           alpha=request.alpha,
                           stale_steps=request.stale_steps)
    if request.plot:
        require_matplotlib()
    held = record.read(request.record)
    reporter.notes(held.notes)
    if not held.runs:
        raise InputError(f"{request.record}: the record lists no forecast yet; predict --record {request.record} adds one")
    latest = held.runs[-1]
    actuals = load(reporter, request.actuals, record.reading_config(
        held.described(latest)["reading"], str(held.folder / record.CHECKPOINTS / f"{latest['sha256']}.json")))
    report = monitor(held, actuals, config)
    if request.plot:
        monitor_plot(report, request.plot)
    return {"record": str(request.record), **report}
