"""``compare``: the same data, split, budget and seed for every model, scored on the same test windows
beside the naive baselines; in this process, in worker processes (``jobs``), or as the queued trials of
one shared Optuna study (``study``).

Each model is one ``train_and_score``: fit on the rows before the test windows (or on an explicit
split's training and validation rows), save, and score with ``evaluation.score``. The rows a model
may train on end before its first rolling-origin test window, so nothing tested is trained on.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from .checkpoint import save
from .data import SeriesSet
from .errors import InputError, UsageError, named
from .evaluation import BASELINES, NAIVE2, EvalConfig, score, truncate
from .fitting import ModelConfig, fit
from .layout import resolve_windows
from .budget import TrainConfig
from .training import EpochReport
from .tuning import TuneConfig, fingerprint, open_storage, require_optuna
from .windows import Split
from .workers import run_tasks


def compare(series: SeriesSet, names: list[str], base: ModelConfig, train_config: TrainConfig,
            eval_config: EvalConfig, params: dict[str, dict[str, str]] | None = None,
            save_dir: str | None = None,
            on_model: Callable[[str, dict[str, Any] | None], None] | None = None,
            on_epoch: Callable[[EpochReport], None] | None = None,
            on_forecasts: Callable[[Any], None] | None = None, jobs: int = 1,
            study: Any = None) -> list[dict[str, Any]]:
    """Train every model in ``names`` identically and score all on the same test windows.

    Returns leaderboard rows (model, parameters, training seconds, prediction ms, metrics), with the
    baselines' rows computed on the same windows. Rows are unsorted (in ``names`` order); the caller
    orders them. ``on_forecasts`` receives every test window's forecasts of every trained model, as one frame.

    Every model trains and forecasts on ``train_config.threads`` torch threads, 1 when it is 0 (the
    automatic choice depends on the load of the machine, and results on CPU on the thread count).
    With ``jobs`` > 1, up to ``jobs`` models train at once, each in its own worker process; every
    model still trains alone from the same seed on the same threads, so rows, checkpoints and
    forecasts are those of ``jobs=1`` (timings aside). Workers report nothing while they train:
    ``on_model(name, row)`` comes as each model finishes, without ``on_model(name, None)`` or
    ``on_epoch``. An error in one model stops the others and is raised here, as with ``jobs=1``.

    With ``study`` (a ``tuning.TuneConfig`` naming a storage) the models are the trials of one Optuna
    study: processes on any host running the same compare on the same storage share the models,
    and each returns the whole leaderboard once all are done (``compare_trials``).
    """
    config = replace(train_config, threads=train_config.threads or 1)
    model_configs = [replace(base, name=name, params={**base.params, **(params or {}).get(name, {})}) for name in names]
    results: dict[str, tuple[dict[str, Any], Any, dict[str, Any]]] = {}
    if study is not None:
        results = compare_trials(series, model_configs, config, eval_config, save_dir, replace(study, jobs=jobs), on_model)
    elif jobs > 1 and len(model_configs) > 1:
        def finished(name: str, result: tuple) -> None:
            results[name] = result
            if on_model:
                on_model(name, result[0])

        in_processes(series, model_configs, config, eval_config, save_dir, min(jobs, len(model_configs)), finished)
    else:
        for model_config in model_configs:
            if on_model:
                on_model(model_config.name, None)
            results[model_config.name] = train_and_score(series, model_config, config, eval_config, save_dir, on_epoch)
            if on_model:
                on_model(model_config.name, results[model_config.name][0])
    rows = [results[name][0] for name in names]
    last = results[names[-1]][2] if names else None  # the baselines, scored on the windows of every model
    for b in (*BASELINES, NAIVE2) if rows else ():
        if b not in names and b in last["overall"]:
            rows.append({"model": b, "parameters": 0, "train_s": 0.0, "epochs": 0, "seconds_per_epoch": 0.0,
                         "predict_ms": None, "val_mse": None, "lookback": last["lookback"],
                         "horizon": last["horizon"], "windows": last["windows"],
                         "windows_requested": last["windows_requested"],
                         "pooled_scaled": last["pooled_scaled"], **last["overall"][b],
                         "series": {sid: {"windows": scores["windows"], b: scores[b]}
                                    for sid, scores in last["series"].items()}})
    if on_forecasts and rows:
        import pandas as pd

        on_forecasts(pd.concat([results[name][1] for name in names], ignore_index=True))
    return rows


def train_and_score(series: SeriesSet, model_config: ModelConfig, config: TrainConfig, eval_config: EvalConfig,
                    save_dir: str | None, on_epoch: Callable[[EpochReport], None] | None = None
                    ) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    """One model of ``compare``: fit before the test windows, save, score. Returns its leaderboard row,
    its forecasts frame and what the baselines' rows need (the windows and the baselines' metrics)."""
    from .threads import using_threads

    name = model_config.name
    if eval_config.split:
        train_series, split = series, Split(eval_config.split.train, eval_config.split.val)
    else:
        train_series, split = _before_test(series, model_config, eval_config), None
    with using_threads(config.threads):  # forecasting on the threads it trained on, in every mode
        started = time.perf_counter()
        if name == "auto":
            from .auto import fit_auto

            fitted = fit_auto(train_series, model_config, config, split)
        else:
            # the validation backtest is for a checkpoint that is kept (monitor's reference); compare scores its own
            fitted = fit(train_series, model_config, config, split=split, on_epoch=on_epoch, backtest=bool(save_dir))
        train_s = time.perf_counter() - started
        if save_dir:
            save(Path(save_dir) / f"{name}.ckpt", fitted)
        report, elapsed = score(fitted, series, eval_config)
    epochs = fitted.training.epochs_run
    row = {"model": name, "parameters": fitted.model_info.n_parameters,
           "train_s": round(train_s, 3), "epochs": epochs,
           "seconds_per_epoch": round(train_s / max(epochs, 1), 3),
           "predict_ms": round(elapsed, 2), "val_mse": fitted.training.val_mse_scaled,
           "lookback": fitted.lookback, "horizon": fitted.horizon, "windows": report["windows"],
           "windows_requested": report["windows_requested"], "pooled_scaled": report["pooled_scaled"],
           **report["overall"][name], "series": report["series"]}
    windows = {key: report[key] for key in ("lookback", "horizon", "windows", "windows_requested", "pooled_scaled")}
    baselines = [b for b in (*BASELINES, NAIVE2) if b in report["overall"]]
    return row, report["forecasts"], {**windows, "overall": {b: report["overall"][b] for b in baselines},
                                      "series": report["series"]}


DEFAULT_WINDOWS = 20  # compare's rolling-origin test windows per series, where the series allow them


def fitting_windows(series: SeriesSet, model_config: ModelConfig, stride: int = 0) -> tuple[int, list[str]]:
    """``compare``'s default number of test windows per series: ``DEFAULT_WINDOWS``, or fewer where the
    shortest series could not keep half its rows (and two horizons) to train on before its first test
    window; at least 1. With ``--drop-sparse`` the series too short for even one window (which
    ``without_short`` then leaves out) do not decide it. Returns the number and a note saying why when
    it is fewer."""
    _, horizon = resolve_windows(series, model_config, None, [])
    stride = stride or horizon
    counted = [s for s in series.series if len(s.times) >= 3 * horizon] if model_config.drop_sparse else []
    shortest = min(counted or series.series, key=lambda s: len(s.times))
    rows = len(shortest.times)
    keep = max(2 * horizon, rows // 2)
    windows = max(1, min(DEFAULT_WINDOWS, (rows - keep - horizon) // stride + 1))
    if windows == DEFAULT_WINDOWS:
        return windows, []
    return windows, [f"--windows {windows} per series (not {DEFAULT_WINDOWS}): series {shortest.id!r} has {rows} "
                     f"rows and keeps {keep} of them to train on (half, and at least two horizons of {horizon}); "
                     "give --windows to choose"]


def _rows_before_test(series: SeriesSet, model_config: ModelConfig, config: EvalConfig) -> tuple[dict[str, int], str]:
    """Per series, its rows before the first rolling-origin test window, and the windows in words."""
    _, horizon = resolve_windows(series, model_config, None, [])
    stride = config.stride or horizon
    keep = {s.id: len(s.times) - horizon - stride * (config.windows - 1) for s in series.series}
    return keep, f"{config.windows} test window{'s' if config.windows > 1 else ''} of horizon {horizon} " \
                 f"with stride {stride} (and two horizons to train on before them)"


def without_short(series: SeriesSet, model_config: ModelConfig, config: EvalConfig) -> tuple[SeriesSet, list[str]]:
    """The series of ``series`` long enough for compare's test windows and two horizons of training rows
    before them. A shorter one is left out with a note under ``--drop-sparse`` (as fit leaves out what it
    cannot train on); otherwise the error names every one at once."""
    keep, windows = _rows_before_test(series, model_config, config)
    _, horizon = resolve_windows(series, model_config, None, [])
    short = [sid for sid, rows in keep.items() if rows < 2 * horizon]
    if not short:
        return series, []
    if not model_config.drop_sparse or len(short) == len(series.series):
        raise InputError(f"{series.source}: {len(short)} of {len(series.series)} series are too short for {windows}: "
                         f"{named(short)}; use fewer --windows"
                         + (", or --drop-sparse to leave them out" if len(short) < len(series.series) else ""))
    kept = replace(series, series=[s for s in series.series if s.id not in set(short)])
    return kept, [f"--drop-sparse: left out {len(short)} of {len(series.series)} series too short for {windows}: "
                  f"{named(short)}"]


def _before_test(series: SeriesSet, model_config: ModelConfig, config: EvalConfig) -> SeriesSet:
    """Cut each series before its first rolling-origin test window, so nothing tested is trained on."""
    series, _ = without_short(series, replace(model_config, drop_sparse=False), config)
    return truncate(series, _rows_before_test(series, model_config, config)[0])


def in_processes(series: SeriesSet, model_configs: list[ModelConfig], config: TrainConfig, eval_config: EvalConfig,
                 save_dir: str | None, jobs: int, finished: Callable[[str, tuple], None]) -> None:
    """``train_and_score`` of every model_config in ``jobs`` worker processes; ``finished(name,
    result)`` as each model is done. On an error in a model or an interrupt (KeyboardInterrupt:
    Ctrl-C, SIGTERM) the workers are ended at once and the exception is raised here."""
    run_tasks(series, config.threads, jobs, train_and_score,
              {model_config.name: (model_config, config, eval_config, save_dir) for model_config in model_configs}, finished)


def compare_trials(series: SeriesSet, model_configs: list, train_config, eval_config, save_dir: str | None,
                   config: TuneConfig, on_model: Callable[[str, dict[str, Any]], None] | None = None
                   ) -> dict[str, tuple[dict[str, Any], None, dict[str, Any]]]:
    """``compare``'s models as the trials of one study in ``config.storage``: the process that creates
    the study queues one trial per model, and every process running the same compare on the same
    storage takes queued models (Optuna hands each waiting trial to one process) until none is left;
    each then waits for the models others are training and returns the whole leaderboard's
    ``train_and_score`` results by name (without the forecast frames, which stay with
    the process that made them)."""
    optuna = require_optuna()
    names = [model_config.name for model_config in model_configs]
    identity = {**fingerprint(series, model_configs[0]), "models": names, "windows": eval_config.windows,
                "stride": eval_config.stride, "split": list(eval_config.split) if eval_config.split else None}
    name = config.study or f"compare-{'-'.join(names)}"[:200]
    study = _compare_study(config, name, identity, names)
    if config.jobs > 1:
        run_tasks(series, train_config.threads, config.jobs, _compare_work,
                  {f"worker {i}": (model_configs, train_config, eval_config, save_dir, config, name, identity)
                   for i in range(config.jobs)})
    else:
        _compare_work(series, model_configs, train_config, eval_config, save_dir, config, name, identity, study)
    results: dict[str, tuple] = {}
    state = optuna.trial.TrialState
    while len(results) < len(names):  # models other processes are still training
        for trial in study.get_trials(deepcopy=False, states=(state.COMPLETE,)):
            model = trial.user_attrs.get("model")
            if model in names and model not in results:
                results[model] = (trial.user_attrs["row"], None, trial.user_attrs["baselines"])
                if on_model:
                    on_model(model, results[model][0])
        if len(results) < len(names):
            if not study.get_trials(deepcopy=False, states=(state.RUNNING, state.WAITING)):
                missing = [n for n in names if n not in results]
                raise UsageError(f"--study {name}: {', '.join(missing)} failed in another process (its message "
                                 "says why); run the same compare again to train what is missing")
            time.sleep(1.0)
    return results


def _compare_study(config: TuneConfig, name: str, identity: dict[str, Any], names: list[str]):
    """compare's study: created with one queued trial per model, or joined once its creator has queued them."""
    optuna = require_optuna()
    storage = open_storage(optuna, config.storage)
    try:
        study = optuna.create_study(study_name=name, storage=storage, direction="minimize")
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage)
        deadline = time.monotonic() + 60
        while "seqcast" not in study.user_attrs and time.monotonic() < deadline:  # the creator is queueing
            time.sleep(0.2)
        recorded = study.user_attrs.get("seqcast")
        if recorded != identity:
            raise UsageError(f"--study {name} in {config.storage}: the study is for another compare (other data, "
                             "models or test windows); name another --study") from None
        state = optuna.trial.TrialState
        live = {t.user_attrs.get("model")
                for t in study.get_trials(deepcopy=False, states=(state.COMPLETE, state.RUNNING, state.WAITING))}
        for model in names:
            if model not in live:  # failed before: queued again
                study.enqueue_trial({"model": model}, user_attrs={"model": model})
        return study
    for model in names:  # the name in user_attrs too: a process that asks for a trial can tell it was queued
        study.enqueue_trial({"model": model}, user_attrs={"model": model})
    study.set_user_attr("seqcast", identity)  # last: joiners wait for it, so the queue is complete
    return study


def _compare_work(series: SeriesSet, model_configs: list, train_config, eval_config, save_dir, config: TuneConfig, name: str,
                  identity, study=None) -> None:
    """Take queued models of the study, one trial each, train and score them, until the queue is empty."""
    optuna = require_optuna()
    by_name = {model_config.name: model_config for model_config in model_configs}
    if study is None:
        study = optuna.load_study(study_name=name, storage=open_storage(optuna, config.storage))
    while study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
        trial = study.ask()
        queued = trial.user_attrs.get("model")
        if queued not in by_name:  # another process took the last one first: this trial is not a model
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            break
        trial.suggest_categorical("model", list(by_name))
        try:
            row, _, baselines = train_and_score(series, by_name[queued], train_config, eval_config, save_dir)
        except BaseException:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        trial.set_user_attr("row", row)
        trial.set_user_attr("baselines", baselines)
        study.tell(trial, float(row["mse"]))
