"""``seqcast tune``: hyperparameter search with Optuna, on the validation split only, resumable and shared.

Each trial is one ``fitting.fit`` of the model with values drawn from its search space (the
dimensions it declares where it registers, ``search.py``, plus the shared learning rate, lookback
and window normalisation) and is scored by the validation MSE of the weights it keeps (scaled
values, the windows of each series' validation rows: never the test rows). Optuna's TPE sampler
draws the values and its median pruner stops a trial whose validation loss, round by round, is
worse than the median of earlier trials at the same round. The first trial of a new study is the
model's defaults, so the best is never worse than the defaults on validation.

A study lives in a storage: in memory for one process, Optuna's journal file (``--storage
FILE``: one append-only log that processes on any host sharing the filesystem may write) or a
database URL Optuna supports. A study is created for one model and one data set (its attributes
record them) and may be joined or resumed by any number of workers: ``trials`` counts the study's
finished trials, so a restarted search runs only the trials still missing. After the search the
best configuration is fit again (the same seed: the same model) and returned with a summary of the
study, which the checkpoint keeps. ``compare`` shares its models through a study opened here too
(``comparing.compare_trials``).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Callable

from .data import SeriesSet
from .errors import SeqcastError, UsageError
from .forecaster import Forecaster, Tuning
from .search import FloatRange, IntRange, shared_space


@dataclass(frozen=True)
class TuneConfig:
    """How to search: the study's size, where it lives, and how many processes work on it here."""

    trials: int = 20  # finished (complete or pruned) trials the study should hold; 0 = only refit its best
    jobs: int = 1  # worker processes on this machine
    storage: str | None = None  # a journal file path or a database URL; None = in memory
    study: str | None = None  # the study's name; None = "<model>-h<horizon>"
    time_budget: float = 0.0  # seconds this search may run trials (0 = none); the refit comes after
    prune: bool = True

    def __post_init__(self) -> None:
        if self.trials < 0:
            raise UsageError(f"--trials {self.trials}: give the number of trials (0 = refit the study's best)")
        if self.jobs < 1:
            raise UsageError(f"--jobs {self.jobs}: give 1 or more worker processes")
        if not 0 <= self.time_budget < math.inf:
            raise UsageError(f"--time-budget {self.time_budget:g}: give seconds above 0, or 0 for none")


@dataclass(frozen=True)
class TrialRow:
    """One trial as the trials table shows it."""

    number: int
    state: str  # complete, pruned, failed, running
    value: float | None  # validation MSE (scaled) of a complete trial
    params: dict[str, Any]
    seconds: float | None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "state": self.state, "val_mse_scaled": self.value, "params": self.params,
                "seconds": self.seconds, "error": self.error}


def require_optuna():
    try:
        import optuna
    except ImportError:
        raise UsageError("seqcast tune needs Optuna, an optional extra: pip install 'seqcast[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the CLI reports trials itself
    return optuna


def space(series: SeriesSet, model_config, split=None) -> tuple[dict[str, Any], dict[str, Any], int]:
    """The search space of ``model_config.name`` on ``series``, the model's defaults in it, and the horizon."""
    from .build import create_model
    from .registry import get_spec, resolve_params
    from .fitting import auto_window_norm
    from .layout import resolve_windows

    model = get_spec(model_config.name)
    lookback, horizon = resolve_windows(series, model_config, split, [])
    # the defaults with the --param values fixed, built once under --max-parameters before any trial runs
    built = create_model(model_config.name, lookback, horizon, len(series.targets), model_config.params,
                         max_parameters=model_config.max_parameters)
    if not any(p.requires_grad for p in built.parameters()):
        raise UsageError(f"{model_config.name} has nothing to tune (it learns no weights); tune a trained model "
                         "such as nlinear or gru")
    lengths = sorted(len(s.times) for s in series.series)
    usable = (split.train if split else int(lengths[(len(lengths) - 1) // 2] * 0.9)) - horizon
    dimensions = dict(shared_space(model.capabilities.lr, horizon, lookback, max(usable, horizon)))
    if model_config.lookback:
        dimensions.pop("lookback", None)  # the user fixed it
    if model_config.window_norm != "auto" or model.capabilities.window_norm == "none":  # fixed, or the model's own (eslstm)
        dimensions.pop("window_norm")
    declared = {k: v for k, v in model.capabilities.search.items() if k not in model_config.params}  # --param fixes a key
    dimensions.update(declared)
    resolved = resolve_params(model_config.name, model_config.params)
    defaults = {"lr": model.capabilities.lr, "lookback": lookback, "window_norm": auto_window_norm(series, model_config.name),
                **{k: resolved[k] for k in declared}}
    return dimensions, {k: v for k, v in defaults.items() if k in dimensions}, horizon


def _suggest(trial, key: str, dimension) -> Any:
    if isinstance(dimension, IntRange):
        return trial.suggest_int(key, dimension.low, dimension.high, log=dimension.log)
    if isinstance(dimension, FloatRange):
        return trial.suggest_float(key, dimension.low, dimension.high, log=dimension.log)
    return trial.suggest_categorical(key, list(dimension.options))


def trial_config(model_config, train_config, values: dict[str, Any]):
    """The model and training settings of one trial's ``values``."""
    params = {k: v for k, v in values.items() if k not in ("lr", "lookback", "window_norm")}
    model = replace(model_config, params={**model_config.params, **params}, lookback=values.get("lookback", model_config.lookback),
                    window_norm=values.get("window_norm", model_config.window_norm))
    return model, replace(train_config, lr=values.get("lr", train_config.lr))


def fingerprint(series: SeriesSet, model_config) -> dict[str, Any]:
    """What a study is for: the model and the data, so that a worker with other data cannot join it."""
    return {"model": model_config.name, "horizon": model_config.horizon, "source": os.path.basename(series.source),
            "targets": list(series.targets), "series": len(series.series),
            "rows": int(sum(len(s.times) for s in series.series))}


def open_study(config: TuneConfig, name: str, identity: dict[str, Any] | None, seed: int, create: bool = True,
               grid: dict[str, list] | None = None):
    """The study ``name`` in ``config.storage`` (created when ``create`` and absent), checked to be
    for ``identity``; UsageError naming the storage when it cannot be opened or the study differs.
    ``grid``: every combination is one trial (compare's models), instead of TPE's draws."""
    optuna = require_optuna()
    storage = open_storage(optuna, config.storage)
    if not grid and config.storage and create:  # a resumed or joined study: a seed of its own, not the draws
        with contextlib.suppress(KeyError):      # the first run made already (the trials so far make it another)
            held = len(optuna.load_study(study_name=name, storage=open_storage(optuna, config.storage)).trials)
            seed = (seed * 1_000_003 + held) % 2**31 if held else seed
    sampler = optuna.samplers.GridSampler(grid, seed=seed) if grid else optuna.samplers.TPESampler(seed=seed)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1) if config.prune \
        else optuna.pruners.NopPruner()
    try:
        if create:
            study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner,
                                        direction="minimize", load_if_exists=True)
        else:
            study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    except KeyError:
        known = optuna.get_all_study_names(storage) if config.storage else []
        raise UsageError(f"--study {name}: no such study in {config.storage or 'memory'}"
                         + (f"; it holds {', '.join(known)}" if known else "; it holds none")) from None
    recorded = study.user_attrs.get("seqcast")
    if identity is not None:
        if recorded is None and create:
            study.set_user_attr("seqcast", identity)
        elif recorded is not None and recorded != identity:
            differs = [k for k in identity if recorded.get(k) != identity[k]]
            raise UsageError(f"--study {name} in {config.storage}: the study is for other data or another model "
                             f"({', '.join(f'{k} {recorded.get(k)!r}, not {identity[k]!r}' for k in differs)}); "
                             "name another --study")
    return study


def open_storage(optuna, where: str | None):
    """The Optuna storage at ``where`` (a journal file path or a database URL; None: in memory), or a
    UsageError naming what is wrong with it (a URL's password hidden). A journal's last record cut
    short by a failed write is dropped first (``repair_journal``)."""
    if where is None:
        return None  # in memory
    shown = _shown(where)
    try:
        if "://" in where:
            return optuna.storages.RDBStorage(where)
        from optuna.storages.journal import JournalFileBackend

        folder = os.path.dirname(os.path.abspath(where))
        if not os.path.isdir(folder):
            raise UsageError(f"--storage {where}: no such folder {folder}")
        if os.path.exists(where) and not os.path.isfile(where):
            raise UsageError(f"--storage {where}: not a regular file (a journal is appended to and read back); "
                             "name a journal file or give a database URL")
        if os.path.exists(where) and not os.access(where, os.R_OK | os.W_OK):
            raise UsageError(f"--storage {where}: cannot read and write it (check its permissions)")
        if not os.access(folder, os.W_OK):
            raise UsageError(f"--storage {where}: the folder {folder} is not writable (the journal takes a lock file)")
        repair_journal(where)
        return optuna.storages.JournalStorage(JournalFileBackend(where))
    except SeqcastError:
        raise
    except Exception as exc:  # Optuna and SQLAlchemy raise their own kinds for a storage they cannot open
        detail = (str(exc).splitlines()[0] if str(exc) else "no detail").replace(where, shown)
        raise UsageError(f"--storage {shown}: cannot open it as an Optuna storage ({type(exc).__name__}: {detail})") from None


def repair_journal(where: str | None) -> str | None:
    """Drop the last record of the journal file ``where`` when a failed or interrupted write cut it
    short (bytes after the last newline, or a last line that is not JSON), under Optuna's own lock so
    that no process appends meanwhile; Optuna would otherwise refuse the study once anything followed
    it. Returns the note that says so, None when the journal is whole (or is no journal file)."""
    if not where or "://" in where or not os.path.isfile(where) or not os.access(where, os.R_OK | os.W_OK):
        return None
    from optuna.storages.journal import JournalFileSymlinkLock

    lock = JournalFileSymlinkLock(where)
    lock.acquire()
    try:
        with open(where, "rb+") as journal:
            size = journal.seek(0, os.SEEK_END)
            keep = _whole_records(journal, size)
            if keep == size:
                return None
            journal.truncate(keep)
            os.fsync(journal.fileno())
    finally:
        lock.release()
    return (f"--storage {where}: dropped its last record ({size - keep} bytes), cut short by a failed or "
            "interrupted write; the search resumes from the records before it")


def _whole_records(journal, size: int) -> int:
    """The bytes of ``journal`` up to the end of its last whole record (a JSON line ending in a newline)."""
    import json

    tail, start = b"", size
    while start > 0 and b"\n" not in tail[:-1]:  # back to the newline before the last line
        start -= min(1 << 16, start)
        journal.seek(start)
        tail = journal.read(size - start)
    if not tail.endswith(b"\n"):
        return start + tail.rfind(b"\n") + 1  # a record without its newline: up to the one before it
    before = tail.rfind(b"\n", 0, len(tail) - 1)
    try:
        json.loads(tail[before + 1:])
    except (ValueError, RecursionError):
        return start + before + 1
    return size


def run_trials(study, series: SeriesSet, model_config, train_config, dimensions: dict[str, Any], trials: int,
               time_budget: float, prune: bool, split=None, on_trial: Callable[[TrialRow], None] | None = None,
               stale: set[int] | None = None) -> None:
    """Run trials of ``study`` in this process until it holds ``trials`` finished ones (or the time
    budget is spent). A trial that cannot be fit (a lookback this data cannot hold, say) is recorded
    as failed with the reason, and the search goes on.

    Trials are asked for one at a time, so that processes sharing the study never run more than
    ``trials`` between them: a trial whose number comes after ``trials`` others that finished or are
    running is not run (recorded as failed with ``surplus``, left out of every count and table). A
    configuration some finished trial already ran (a resumed seeded sampler may draw it again) is not
    fit again: the trial takes that one's result and says so (``repeat_of``)."""
    optuna = require_optuna()
    from .fitting import fit

    state = optuna.trial.TrialState
    counted = (state.COMPLETE, state.PRUNED, state.RUNNING)
    # trials running before this search began belong to a killed run (``tune`` gives its workers the ones it
    # found): they hold no place, so that a resumed search runs the trials still missing
    if stale is None:
        stale = {t.number for t in study.get_trials(deepcopy=False, states=(state.RUNNING,))}
    started = time.perf_counter()
    finished = sum(t.state in counted[:2] for t in study.get_trials(deepcopy=False))
    for _ in range(max(0, trials - finished)):  # at most the trials missing, failed ones included (as optimize ran)
        if time_budget and time.perf_counter() - started >= time_budget:
            return
        others = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("surplus")
                  and t.number not in stale]
        if sum(t.state in counted[:2] for t in others) >= trials:
            return
        trial = study.ask()
        others = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("surplus")
                  and t.number not in stale]  # again: every trial numbered before this one exists by now
        ahead = sum(t.state in counted for t in others if t.number < trial.number)
        if ahead >= trials:  # the other processes hold the rest of the study's trials
            trial.set_user_attr("surplus", True)
            study.tell(trial, state=state.FAIL)
            return
        values = {key: _suggest(trial, key, dimension) for key, dimension in dimensions.items()}
        earlier = next((t for t in others if t.state == state.COMPLETE and t.params == trial.params), None)
        if earlier is not None:
            trial.set_user_attr("repeat_of", earlier.number)
            study.tell(trial, earlier.value)
        else:
            model, settings = trial_config(model_config, train_config, values)

            def on_epoch(report) -> None:
                trial.report(report.val_loss, report.epoch)
                if prune and trial.should_prune():
                    raise optuna.TrialPruned()
            try:
                fitted = fit(series, model, settings, split=split, on_epoch=on_epoch, backtest=False)
                trial.set_user_attr("steps", fitted.training.steps)
                study.tell(trial, fitted.training.val_mse_scaled)
            except optuna.TrialPruned:
                study.tell(trial, state=state.PRUNED)
            except SeqcastError as exc:
                trial.set_user_attr("error", str(exc))
                study.tell(trial, state=state.FAIL)
        if on_trial:
            on_trial(row(study.get_trials(deepcopy=False)[trial.number]))


def row(trial) -> TrialRow:
    state = trial.state.name.lower()
    seconds = (trial.datetime_complete - trial.datetime_start).total_seconds() \
        if trial.datetime_complete and trial.datetime_start else None
    value = trial.value if state == "complete" else None  # a pruned trial's is its last round's training loss
    repeat = trial.user_attrs.get("repeat_of")
    return TrialRow(trial.number, {"fail": "failed"}.get(state, state), value, dict(trial.params), seconds,
                    trial.user_attrs.get("error") or (f"the configuration of trial {repeat}: its result, not fit again"
                                                      if repeat is not None else None))


def tune(series: SeriesSet, model_config, train_config, config: TuneConfig, split=None,
         on_trial: Callable[[TrialRow], None] | None = None) -> tuple[Forecaster, list[TrialRow]]:
    """Search, then fit the best configuration again. Returns the fitted best model (its ``tuning``
    the study's summary) and every trial of the study."""
    require_optuna()
    from .fitting import auto_loss, fit

    if train_config.loss == "auto":  # the search decides; no trial probes the loss (choosing.py) on its own
        train_config = replace(train_config, loss=auto_loss(series, model_config.name))
    if model_config.transform == "auto":  # every trial in the same units: its validation MSE is what the search ranks
        model_config = replace(model_config, transform="none")
    if config.jobs > 1 and config.storage is None:
        raise UsageError(f"--jobs {config.jobs}: worker processes share the study through a storage; give "
                         "--storage FILE (a journal file) or a database URL")
    dimensions, defaults, horizon = space(series, model_config, split)
    model_config = replace(model_config, horizon=horizon)
    if config.jobs > 1:  # each worker trains on its own threads, 1 unless told
        train_config = replace(train_config, threads=train_config.threads or 1)
    name = config.study or f"{model_config.name}-h{horizon}"
    identity = fingerprint(series, model_config)
    study = open_study(config, name, identity, train_config.seed, create=bool(config.trials))
    if config.trials and not study.get_trials(deepcopy=False):
        study.enqueue_trial(defaults)  # the first trial: the defaults, so the best is never worse on validation
    started = time.perf_counter()
    if config.jobs > 1 and config.trials:
        from .workers import run_tasks

        stale = {t.number for t in study.get_trials(deepcopy=False) if t.state.name == "RUNNING"}
        with _watching(study, on_trial):
            run_tasks(series, train_config.threads, config.jobs, _work,
                      {f"worker {i}": (config, name, identity, model_config, train_config, dimensions, split,
                                       train_config.seed + i, stale) for i in range(config.jobs)})
    elif config.trials:
        run_trials(study, series, model_config, train_config, dimensions, config.trials, config.time_budget, config.prune,
                   split, on_trial)
    trials = [row(t) for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("surplus")]
    complete = [t for t in trials if t.state == "complete" and t.value is not None and math.isfinite(t.value)]
    if not complete:
        errors = [t.error for t in trials if t.error]
        raise UsageError(f"--study {name}: no trial completed" + (f"; the first failed with: {errors[0]}" if errors
                                                                   else "; give more --trials or a longer --time-budget"))
    best = min(complete, key=lambda t: (t.value, t.number))
    model, settings = trial_config(model_config, train_config, best.params)
    fitted = fit(series, model, settings, split=split)
    summary = {"study": name, "storage": _shown(config.storage), "trials": len(trials),
               "complete": len(complete), "pruned": sum(t.state == "pruned" for t in trials),
               "failed": sum(t.state == "failed" for t in trials), "best_trial": best.number,
               "best_val_mse_scaled": best.value, "best_params": best.params,
               "default_val_mse_scaled": next((t.value for t in trials if t.number == 0), None),
               "space": {k: d.describe() for k, d in dimensions.items()},
               "search_seconds": round(time.perf_counter() - started, 3)}
    return replace(fitted, tuning=Tuning(**summary)), trials


def _shown(storage: str | None) -> str | None:
    """The storage as the checkpoint records it: a database URL without its password."""
    if storage is None or "://" not in storage:
        return storage
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(storage)
    if parts.password is None:
        return storage
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


@contextmanager
def _watching(study, on_trial: Callable[[TrialRow], None] | None):
    """While worker processes run trials: report each trial as it finishes, from the storage."""
    if on_trial is None:
        yield
        return
    stop, seen = threading.Event(), {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}

    def poll() -> None:
        while True:
            done = stop.wait(1.0)
            for trial in study.get_trials(deepcopy=False):
                if trial.state.is_finished() and trial.number not in seen and not trial.user_attrs.get("surplus"):
                    seen.add(trial.number)
                    on_trial(row(trial))
            if done:
                return
    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()


def _work(series: SeriesSet, config: TuneConfig, name: str, identity, model_config, train_config, dimensions, split,
          seed: int, stale: set[int]) -> None:
    """One worker process: join the study and run trials until it is full or the time budget is spent."""
    study = open_study(config, name, identity, seed)
    run_trials(study, series, model_config, train_config, dimensions, config.trials, config.time_budget, config.prune, split,
               stale=stale)
