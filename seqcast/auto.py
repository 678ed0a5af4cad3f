"""``--model auto``: a portfolio of candidates under one time budget, and the weighted ensemble of them
that forecasts the validation windows best.

Each candidate is fitted as ``fit --model NAME`` would fit it (its own probes of window normalisation
and loss, its automatic budget, cut to its share of the time left), on the same series, split, windows
and scaling: the target transform is probed once, by the first network, and then shared, so that all
forecast in one set of per-series z-scored units. The models with nothing to train (naive, seasonal
naive and the statistical models) are built as they are; the time a statistical model will take to
forecast the selection windows (it fits each one) is timed on a few and kept out of the networks'
shares. Every candidate then forecasts the same validation windows (each series' latest first,
``SELECTION_WINDOWS`` in all, at least one per series),
scored as fit's probes are (``choosing.forecast_score``: scaled mean absolute error per series, then
over series). The ensemble is chosen by greedy selection with replacement (Caruana et al. 2004,
"Ensemble selection from libraries of models"): start from the best candidate, add whichever
candidate most improves the average forecast, ``ROUNDS`` times, and keep the best average seen, so
its validation score is never above the best candidate's, naive and seasonal naive included. The
weights are how often each candidate was picked: positive, summing to one. The ensemble forecasts the
weighted sum of its members' forecasts (``ensemble.Blend``), and its intervals are calibrated on its
own validation errors.

The portfolio (``PORTFOLIO``) and its order were chosen on the development panels' validation
holdouts (docs/benchmarks.md, "auto"): cheap and strong models first, so that a short budget still
holds the best of them. A candidate that cannot be fitted to the data (too short, covariates it does
not read, a missing optional extra, the budget spent) is skipped with a note; one whose fit fails is
recorded as failed, and the others go on. Library code: it never prints; progress goes to callbacks.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Callable, ContextManager

import numpy as np

from .choosing import forecast_score
from .data import SeriesSet, season_length
from .errors import SeqcastError, UsageError
from .evaluation import validation_backtest
from .forecaster import Candidate, Forecaster, Member, ModelInfo, Portfolio
from .forecasting import run_model
from .budget import TrainConfig
from .intervals import point
from .registry import get_spec, list_models, missing_extra, resolve_params
from .windows import Split

# The candidates, in the order they are fitted (docs/benchmarks.md, "auto"): the baselines and the
# statistical models first (seconds), then the networks from the cheapest; the recurrent hybrid last.
# tcn was one too, and the selection gave it weight in one of the five M4 and M3 fits (M3 Quarterly, 0.11)
# while it took a third of the fit's time on M3 Monthly and M4 Weekly: it left.
PORTFOLIO = ("naive", "seasonal_naive", "theta", "ets", "nlinear", "patchtst", "nbeats", "mstl", "eslstm")
ALWAYS = ("naive", "seasonal_naive")  # candidates whatever --candidates says: the ensemble never loses to them
ROUNDS = 25  # greedy selection rounds: weights in steps of 1/25 at the finest
SELECTION_WINDOWS = 1024  # validation windows every candidate forecasts (more when there are more series)
MAX_SERIES_WINDOWS = 4096  # ... one per series up to this many series
MIN_SECONDS = 2.0  # a network is not started with less of the budget left than this
MAX_STATISTICAL_SHARE = 0.25  # a statistical model whose scoring would take more of the budget is skipped
TIMED_WINDOWS = 8  # windows a statistical model's scoring time is estimated from


def default_time_budget(train_windows: int) -> float:
    """The time budget of ``--model auto`` when none is given: 2 minutes, plus a second per 1,000 training
    windows, at most 15 minutes. Each network's own automatic budget usually ends it sooner."""
    return float(min(900, 120 + train_windows // 1000))


def portfolio(asked: tuple[str, ...] = ()) -> list[str]:
    """The candidates, in fitting order: ``asked`` (validated names) or the default portfolio, with
    naive and seasonal naive always among them."""
    names = list(asked) or list(PORTFOLIO)
    known = list_models()
    for name in names:
        if name not in known:
            raise UsageError(f"--candidates {name!r}: not a model; choose from {', '.join(known)}")
    return list(dict.fromkeys([*ALWAYS, *names]))


def portfolio_index(name: str, order: list[str]) -> tuple[int, int]:
    """Where ``name`` stands in the default portfolio's order (then in ``order``): how tables list candidates."""
    return (PORTFOLIO.index(name) if name in PORTFOLIO else len(PORTFOLIO), order.index(name))


def fit_auto(series: SeriesSet, model_config: Any, config: TrainConfig, split: Any = None, *,
             candidates: tuple[str, ...] = (), init: Forecaster | None = None,
             progress: Callable[[str], ContextManager[Any]] | None = None,
             on_start: Callable[[list[str], float, int], None] | None = None,
             on_candidate: Callable[[Candidate], None] | None = None) -> Forecaster:
    """Fit the portfolio on ``series`` and keep the weighted ensemble of it that validates best.

    ``model_config`` (fitting.ModelConfig named "auto") gives the windows, transform, quantiles, levels and
    the other settings every candidate shares; ``config.time_budget`` the seconds for them all (0: the
    default for the data). ``init``: an auto checkpoint whose networks continue from their weights (its
    members are the candidates). ``progress(name)`` enters each network's training progress (its object
    has ``epoch`` and ``step``); ``on_start`` hears the candidates, the budget and the training windows it
    scales with, before any is fitted; ``on_candidate`` hears each candidate as it ends.
    """
    from . import fitting

    _check_asked(model_config, init)
    started = time.perf_counter()
    names = [m.name for m in init.model_info.members] if init is not None else portfolio(candidates)
    transform = init.transform.kind if init is not None else model_config.transform
    shared = replace(model_config, name="naive", levels=(), transform=transform if transform != "auto" else "none",
                     lookback=init.lookback if init is not None else model_config.lookback)  # a warm start keeps its windows
    data = fitting.validation_data(series, shared, split)
    budget = config.time_budget or default_time_budget(len(data.train))
    if on_start:
        on_start(names, budget, len(data.train))
    quantiles = model_config.quantiles
    results: list[Candidate] = []
    fitted: dict[str, Forecaster | None] = {}  # name -> its forecaster (None: nothing to train, built here)
    neural = [n for n in names if _trains(n, quantiles)]
    # the statistical models fit each window as they forecast it: the time to score them on the selection
    # windows, timed on a few of them, is kept out of the networks' shares
    reserve = {n: _scoring_seconds(n, data.val, series) for n in names
               if get_spec(n).capabilities.statistical and not _unfit(n, series, quantiles, init)}

    def record(candidate: Candidate) -> None:
        results.append(candidate)
        if on_candidate:
            on_candidate(candidate)

    for name in names:
        begun = time.perf_counter()
        why = _unfit(name, series, quantiles, init)
        cost = reserve.get(name, 0.0)
        if not why and cost > budget * MAX_STATISTICAL_SHARE:
            del reserve[name]  # skipped: its time is no longer kept from the networks
            why = f"scoring it would take about {cost:.0f} s of the {budget:g} s budget"
        left = budget - (begun - started) - sum(reserve.values())
        if not why and name in neural and left < MIN_SECONDS:
            why = f"the time budget of {budget:g} s was spent"
        if why:
            record(Candidate(name, "skipped", None, 0.0, note=why))
            continue
        if name not in neural:
            fitted[name] = None
            continue
        share = left / max(1, len([n for n in neural if n not in fitted and n not in _names(results)]))
        # every member at the same lookback, so that they forecast the same selection windows: none probes another
        asked = replace(model_config, name=name, levels=(), transform=transform, lookback_probe=False)
        own_init = _member_view(init, name) if init is not None else None
        try:
            with (progress(name) if progress else _quiet()) as bar:
                member = fitting.fit(series, fitting.requested_model(asked, own_init),
                                     replace(config, time_budget=min(share * 2, left)), split,
                                     on_epoch=getattr(bar, "epoch", None), on_step=getattr(bar, "step", None),
                                     init=own_init, backtest=False)
        except (UsageError, SeqcastError) as exc:
            record(Candidate(name, "failed", None, time.perf_counter() - begun, note=str(exc)))
            continue
        if transform == "auto":  # the first network's probed transform is everyone's
            transform = member.transform.kind
            if transform != shared.transform:
                shared = replace(shared, transform=transform)
                data = fitting.validation_data(series, shared, split)
        fitted[name] = member
        record(Candidate(name, "fitted", None, time.perf_counter() - begun))
    return _select(series, model_config, config, split, data, fitted, results, budget, started, progress)


def _select(series, model_config, config, split, data, fitted, results, budget, started, progress) -> Forecaster:
    """Score every fitted candidate on the selection windows, choose the ensemble, and describe it."""
    from . import fitting
    from .fit_record import calibrate
    from .intervals import require_windows

    if not fitted:
        raise UsageError("--model auto: no candidate could be fitted to this data (" +
                         "; ".join(f"{c.name}: {c.note}" for c in results) + ")")
    networks = [f for f in fitted.values() if f is not None]
    if networks:  # the data's description, scaling and record: the first network's (they all share them)
        base = networks[0]
    elif series.covariate_inputs:
        raise UsageError("--model auto: no candidate that reads the covariates given could be fitted (" +
                         "; ".join(f"{c.name}: {c.note}" for c in results) + ")")
    else:  # naive, fitted as fit would: the description of the data and its scaling, nothing trained
        base = fitting.fit(series, replace(model_config, name="naive", levels=(), quantiles=(), window_norm="last",
                                           transform=data.transform.kind),
                           replace(config, time_budget=0.0, loss="mse"), split, backtest=False)
    _same_scaling(base, fitted)
    windows = data.val.subset(_selection(data.val)) if len(data.val) else data.val
    if len(windows) == 0:
        raise UsageError("--model auto scores its candidates on validation windows, and this split has none; "
                         "give a longer history, or --split with a validation part, or one --model")
    season = season_length(series.freq)
    built = {name: forecaster.model if forecaster is not None else
             _untrained(name, base.lookback, base.horizon, len(base.schema.targets), series)
             for name, forecaster in fitted.items()}
    reads = {name: _reads(name, base) for name in built}
    x, y, covariates = windows.batch(slice(None))
    x, actual = x.numpy(), y.numpy().astype(np.float64)
    inputs = {k: v.numpy() for k, v in covariates.items()}
    outputs, forecasts, scores, seconds = {}, {}, {}, {}
    for name, network in built.items():
        begun = time.perf_counter()
        network.eval()
        outputs[name] = run_model(network, x, inputs if reads[name] else {}).astype(np.float64)
        forecasts[name] = point(outputs[name], _with_median(model_config))
        scores[name] = forecast_score(forecasts[name], actual, windows.series_index)
        seconds[name] = time.perf_counter() - begun
    weights, score = greedy_selection(forecasts, actual, windows.series_index)
    names = [n for n in built if weights.get(n)]
    blend = _blend(built, reads, names, weights)
    if model_config.levels:
        require_windows(model_config.levels, len(windows))
    blended = sum(weights[n] * outputs[n] for n in names)  # the blend's output, its members not run again
    calibration, val_mse = calibrate(blend, windows, model_config.levels, _with_median(model_config), float("nan"),
                                     exact=False, pred=blended)
    members = tuple(_member(name, fitted[name], built[name], weights[name], base, season) for name in names)
    table = []
    for candidate in results:
        if candidate.name in built:
            status = "member" if weights.get(candidate.name) else "not chosen"
            candidate = replace(candidate, status=status, score=scores[candidate.name],
                                seconds=candidate.seconds + seconds[candidate.name], weight=weights.get(candidate.name, 0.0))
        table.append(candidate)
    for name in built:  # the models with nothing to train, in portfolio order after the fitted ones
        if name not in {c.name for c in results}:
            table.append(Candidate(name, "member" if weights.get(name) else "not chosen", scores[name], seconds[name],
                                   weights.get(name, 0.0)))
    order = list(dict.fromkeys([*(c.name for c in results), *built]))
    table.sort(key=lambda c: portfolio_index(c.name, order))
    elapsed = time.perf_counter() - started
    chosen = Portfolio(tuple(table), score, len(windows), budget, elapsed)
    described = _described(base, blend, members, chosen, fitted, calibration, val_mse, model_config, config, budget)
    splits = ({s.id: split for s in series.series} if split is not None else
              {sid: Split(**rows) for sid, rows in base.training.split.items()})
    return replace(described, backtest=validation_backtest(described, series, splits))


def greedy_selection(forecasts: dict[str, np.ndarray], actual: np.ndarray, series_index: np.ndarray,
                     rounds: int = ROUNDS) -> tuple[dict[str, float], float]:
    """Caruana's ensemble selection with replacement: the weights (name -> share, positive ones only) and
    the validation score of the best average seen over ``rounds`` additions, started from the best single
    candidate (ties go to the earlier one), so never above its score."""
    names = list(forecasts)
    score = {n: forecast_score(forecasts[n], actual, series_index) for n in names}
    first = min(names, key=lambda n: (score[n], names.index(n)))
    counts = {n: 0 for n in names}
    counts[first], total = 1, forecasts[first].copy()
    best = (score[first], dict(counts))
    for size in range(2, rounds + 1):
        trial = {n: forecast_score((total + forecasts[n]) / size, actual, series_index) for n in names}
        pick = min(names, key=lambda n: (trial[n], names.index(n)))
        counts[pick] += 1
        total += forecasts[pick]
        if trial[pick] < best[0] - 1e-12:
            best = (trial[pick], dict(counts))
    kept = {n: c for n, c in best[1].items() if c}
    return {n: c / sum(kept.values()) for n, c in kept.items()}, best[0]


def _selection(val) -> np.ndarray:
    """Indices of the validation windows every candidate forecasts: each series' latest first, then the one
    before, and so on, until SELECTION_WINDOWS (and at least one window of each of up to
    MAX_SERIES_WINDOWS series)."""
    series, origins = val.series_index, val.origins
    order = np.lexsort((-origins, series))  # by series, latest window first
    sorted_series = series[order]
    first_of = np.searchsorted(sorted_series, sorted_series)
    rank = np.arange(len(order)) - first_of  # 0 = the series' latest window
    by_rank = order[np.lexsort((sorted_series, rank))]
    count = max(SELECTION_WINDOWS, min(MAX_SERIES_WINDOWS, len(np.unique(series))))
    return np.sort(by_rank[:count])


def _check_asked(model_config: Any, init: Forecaster | None) -> None:
    clashes = [flag for flag, given in (("--param", model_config.params), ("--ensemble", model_config.ensemble != 1))
               if given]
    if clashes:
        raise UsageError(f"--model auto chooses and weights its members itself: drop {' and '.join(clashes)}, or "
                         "fit one model with --model NAME")
    if init is not None and not init.model_info.members:
        raise UsageError(f"--init-from {init.label}: holds one model ({init.name}), not an auto ensemble; give "
                         f"--model {init.name} to continue it")


def _trains(name: str, quantiles: tuple[float, ...] = ()) -> bool:
    """Whether candidate ``name`` is fitted (a network, or a baseline under a quantile head) or built as it is."""
    caps = get_spec(name).capabilities
    return not caps.statistical and (bool(quantiles) or name not in ("naive", "seasonal_naive"))


def _unfit(name: str, series: SeriesSet, quantiles: tuple[float, ...], init: Forecaster | None) -> str:
    """Why ``name`` cannot be a candidate for this data ("" when it can)."""
    caps = get_spec(name).capabilities
    missing = missing_extra(name)
    if missing:
        return missing
    if quantiles and not caps.quantiles:
        return "it has no quantile outputs (--quantiles)"
    kinds = set(series.covariate_inputs)
    if kinds and _trains(name, quantiles) and not kinds <= set(caps.covariates):
        return f"it does not read the {', '.join(sorted(kinds - set(caps.covariates)))} covariates given"
    return ""


def _names(results: list[Candidate]) -> set[str]:
    return {c.name for c in results}


def _params(name: str, season: int) -> dict[str, Any]:
    return {"season": season} if get_spec(name).capabilities.season else {}


def _untrained(name: str, lookback: int, horizon: int, channels: int, series: SeriesSet):
    """A candidate with nothing to train (naive, seasonal naive, a statistical model), built as it is."""
    from .build import build_network
    from .data import seasons

    return build_network(name, lookback, horizon, channels, _params(name, season_length(series.freq)),
                         window_norm=get_spec(name).capabilities.window_norm, seasons=seasons(series.freq))


def _scoring_seconds(name: str, val, series: SeriesSet) -> float:
    """About how long statistical model ``name`` takes to forecast the selection windows of ``val``: timed on
    TIMED_WINDOWS of them, after a first call."""
    if not len(val):
        return 0.0
    chosen = _selection(val)
    x, _, _ = val.subset(chosen[:TIMED_WINDOWS]).batch(slice(None))
    network = _untrained(name, val.lookback, val.horizon, x.shape[-1], series).eval()
    run_model(network, x[:1].numpy(), {})  # the first call compiles the library's code (numba): not timed
    begun = time.perf_counter()
    run_model(network, x.numpy(), {})
    return (time.perf_counter() - begun) * len(chosen) / len(x)


def _with_median(model_config: Any) -> tuple[float, ...]:
    from .quantile_head import with_median

    return with_median(model_config.quantiles) if model_config.quantiles else ()


def _reads(name: str, base: Forecaster) -> bool:
    kinds = {k for k, width in zip(("past", "future", "static"), base.covariates.widths) if width}
    return bool(kinds) and kinds <= set(get_spec(name).capabilities.covariates)


def _blend(built: dict, reads: dict, names: list[str], weights: dict[str, float]):
    from .ensemble import Blend

    return Blend([built[n] for n in names], [weights[n] for n in names], [reads[n] for n in names]).eval()


def _member(name: str, forecaster: Forecaster | None, network, weight: float, base: Forecaster, season: int) -> Member:
    if forecaster is None:
        return Member(name, resolve_params(name, _params(name, season)), get_spec(name).capabilities.window_norm,
                      sum(p.numel() for p in network.parameters()), weight, base.training.settings.loss)
    info = forecaster.model_info
    return Member(name, info.params, info.window_norm, info.n_parameters, weight, forecaster.training.settings.loss,
                  forecaster.choices)


def _same_scaling(base: Forecaster, fitted: dict[str, Forecaster | None]) -> None:
    """Every member forecasts in the base's scaled units (the same transform and statistics): else a bug."""
    for name, forecaster in fitted.items():
        if forecaster is not None and (forecaster.scaler != base.scaler or forecaster.transform != base.transform
                                       or forecaster.covariates != base.covariates):
            raise RuntimeError(f"--model auto: {name} was scaled unlike the other candidates")


def _member_view(init: Forecaster, name: str) -> Forecaster:
    """Member ``name`` of the auto checkpoint ``init`` as a checkpoint of that one model, for its warm start."""
    members = list(init.model_info.members)
    index = [m.name for m in members].index(name)
    member = members[index]
    return replace(init, model=init.model.members[index],
                   model_info=ModelInfo(member.name, member.params, member.window_norm, member.n_parameters,
                                        init.model_info.quantiles),
                   training=replace(init.training, settings=replace(init.training.settings, loss=member.loss)),
                   calibration=None, choices=member.choices, portfolio=None)


def _described(base: Forecaster, blend, members: tuple[Member, ...], chosen: Portfolio, fitted: dict,
               calibration, val_mse: float, model_config: Any, config: TrainConfig, budget: float) -> Forecaster:
    """The auto forecaster: the base's data, scaling and record, the blend, its members and portfolio."""
    networks = [f for f in fitted.values() if f is not None]
    record = base.training
    shared = [w for w in record.warnings if all(w in f.training.warnings for f in networks)]  # the data's
    kept = [fitted[m.name] for m in members if fitted.get(m.name) is not None]  # a candidate left out does not forecast
    warnings = tuple(shared) + tuple(f"{f.name}: {w}" for f in kept for w in f.training.warnings if w not in shared)
    record = replace(record, settings=replace(config, time_budget=budget, loss="mse"),
                     epochs_run=sum(f.training.epochs_run for f in networks),
                     steps=sum(f.training.steps for f in networks), best_epoch=None, val_mse_scaled=val_mse,
                     warnings=warnings, steps_per_epoch=None, round_steps=None, stopped=None,
                     window_flops=sum(f.training.window_flops or 0.0 for f in networks),
                     init_from=None)
    info = ModelInfo("auto", {}, "none", sum(m.n_parameters for m in members), _with_median(model_config), 1, members)
    ranked = sorted((c for c in chosen.candidates if c.score is not None), key=lambda c: c.score)
    notes = [n for n in base.notes if all(n in f.notes for f in networks) and not n.startswith("chosen:")]
    notes.append(f"auto: ensemble of {', '.join(f'{m.name} {m.weight:.2f}' for m in members)}; validation score "
                 f"{chosen.score:.4f} against {ranked[0].score:.4f} for the best single candidate ({ranked[0].name}), "
                 f"over {chosen.windows} windows; {chosen.seconds:.0f} s of a {budget:g} s budget")
    notes += [f"auto: {c.name} {c.status}: {c.note}" for c in chosen.candidates if c.note]
    return replace(base, model=blend, model_info=info, training=record, notes=tuple(notes), calibration=calibration,
                   choices=(), portfolio=chosen)


class _quiet:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
