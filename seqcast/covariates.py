"""Covariates: what the user knows besides the targets, turned into model inputs (``seqcast.data`` reads them
from the same CSV).

Three kinds, named on the command line (``fit --past-cols/--future-cols/--static-cols/--calendar``):

    past      observed up to the forecast origin (another sensor of the machine): numbers, one per row
    future    known for the horizon too (a planned promotion, a holiday, a day-ahead forecast): numbers,
              one per row; at predict time the H rows after each series' last observation come from
              rows at the end of the history whose targets are empty, or from ``predict --future FILE``
    static    constant per series (its region, its store): a number, or a category (text)
    calendar  known-future features generated from the timestamps (``seqcast.data.CALENDAR_FEATURES``)

Every model input is z-scored with statistics of the training rows (all series together; a static
column over the training series), so that an input at its training mean is 0: that is what ``explain``
replaces a covariate with to measure its effect. A static category becomes one input per category of
its training vocabulary (a one-hot, then z-scored); a category not seen in training is read as the
training average (every one of its inputs at its mean, i.e. 0), with a note naming the series.

This module is numpy and pandas only: predicting with an exported model (no torch) builds the same inputs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from .data import CALENDAR_FEATURES
from .errors import InputError
from .forecaster import Covariate, CovariateSchema


def calendar_features(times: pd.Index, names: tuple[str, ...]) -> np.ndarray:
    """The calendar features ``names`` of ``times``, (T, len(names)) float32."""
    if not names:
        return np.zeros((len(times), 0), dtype=np.float32)
    return np.stack([np.asarray(CALENDAR_FEATURES[n](times), dtype=np.float64) for n in names], axis=1).astype(
        np.float32)


def _moments(values: np.ndarray) -> tuple[list[float], list[float]]:
    """Mean and population std of each column of (N, K) finite values; a constant column gets std 1."""
    mean = values.mean(axis=0) if len(values) else np.zeros(values.shape[1])
    std = values.std(axis=0) if len(values) else np.ones(values.shape[1])
    std = np.where((std > 1e-12 * np.maximum(np.abs(mean), 1.0)) & np.isfinite(std), std, 1.0)
    return mean.tolist(), std.tolist()


def without_constant(series, train_rows: dict[str, int]) -> tuple[Any, list[str]]:
    """``series`` (a data.SeriesSet) less the past and future covariates that hold one value over every
    training row (a holiday flag that never fires tells the model nothing, and scaled by a zero spread
    would explode on the day it does), and a warning naming them ([] when none)."""
    names = list(series.past_cols) + list(series.future_cols)
    if not names:
        return series, []
    kept = [s for s in series.series if train_rows.get(s.id, 0) > 0]
    if not kept:
        return series, []
    rows = np.concatenate([s.covariates[: train_rows[s.id]] for s in kept])
    constant = [i for i in range(len(names)) if np.all(rows[:, i] == rows[0, i])
                or np.all(np.isnan(rows[:, i]))]
    if not constant:
        return series, []
    keep = [i for i in range(len(names)) if i not in constant]
    n_past = len(series.past_cols)
    future_keep = [i - n_past for i in keep if i >= n_past]
    trimmed = replace(
        series, past_cols=[names[i] for i in keep if i < n_past], future_cols=[names[i] for i in keep if i >= n_past],
        series=[replace(s, covariates=s.covariates[:, keep] if keep else None) for s in series.series],
        ahead={sid: replace(a, values=a.values[:, future_keep]) for sid, a in series.ahead.items()})
    listed = ", ".join(f"{names[i]} ({'past' if i < n_past else 'future'}, always {rows[0, i]:g})" for i in constant)
    return trimmed, [f"covariates constant over the training rows, not fed to the model: {listed}; they carry no "
                     "information until they change (fit again once they do)"]


def fit_schema(series, train_rows: dict[str, int]) -> CovariateSchema:
    """The covariates of ``series`` (a data.SeriesSet) with their statistics on the training rows."""
    columns: list[Covariate] = []
    if not (series.past_cols or series.future_cols or series.calendar or series.static_cols):
        return CovariateSchema(())  # targets only: no series to look at
    n_past = len(series.past_cols)
    kept = [s for s in series.series if train_rows.get(s.id, 0) > 0]
    if series.past_cols or series.future_cols:
        mean, std = _moments(np.concatenate([s.covariates[: train_rows[s.id]] for s in kept]))
        every = np.concatenate([s.covariates for s in series.series] + [  # the range: every row fit read
            np.concatenate([np.full((len(a.values), n_past), np.nan), a.values], axis=1) for a in series.ahead.values()])
        spans = [(float(low), float(high)) for low, high in zip(np.nanmin(every, axis=0), np.nanmax(every, axis=0))]
        columns += [Covariate(n, "past", (m,), (d,), span=r)
                    for n, m, d, r in zip(series.past_cols, mean[:n_past], std[:n_past], spans[:n_past])]
    if series.calendar:
        features = np.concatenate([calendar_features(s.times[: train_rows[s.id]], series.calendar) for s in kept])
        cal_mean, cal_std = _moments(features.astype(np.float64))
        columns += [Covariate(n, "calendar", (m,), (d,)) for n, m, d in zip(series.calendar, cal_mean, cal_std)]
    if series.future_cols:
        columns += [Covariate(n, "future", (m,), (d,), span=r) for n, m, d, r in
                    zip(series.future_cols, mean[n_past:], std[n_past:], spans[n_past:])]
    for i, column in enumerate(series.static_cols):
        values = [series.static[s.id][i] for s in kept]
        if all(isinstance(v, float) for v in values):
            mean, std = _moments(np.asarray(values, dtype=np.float64)[:, None])
            columns.append(Covariate(column, "static", tuple(mean), tuple(std), span=(min(values), max(values))))
        else:
            categories = tuple(sorted({str(v) for v in values}))
            onehot = np.array([[str(v) == c for c in categories] for v in values], dtype=np.float64)
            mean, std = _moments(onehot)
            columns.append(Covariate(column, "static", tuple(mean), tuple(std), categories))
    return CovariateSchema(tuple(columns))


def _scaled(values: np.ndarray, columns: tuple[Covariate, ...]) -> np.ndarray:
    mean = np.array([m for c in columns for m in c.mean])
    std = np.array([d for c in columns for d in c.std])
    return ((values - mean) / std).astype(np.float32)


def step_values(series, schema: CovariateSchema, s) -> np.ndarray:
    """Series ``s``'s covariates at each of its rows as model inputs (T, P + F): the past ones, then
    the known-future block (calendar features, then future covariates), scaled."""
    past, calendar, future = schema.of("past"), schema.of("calendar"), schema.of("future")
    n_past = len(past)
    raw = np.concatenate([s.covariates[:, :n_past] if n_past else np.zeros((len(s.times), 0)),
                          calendar_features(s.times, tuple(c.name for c in calendar)),
                          s.covariates[:, n_past:] if future else np.zeros((len(s.times), 0))], axis=1)
    return _scaled(raw, past + calendar + future)


def unseen_categories(series, schema: CovariateSchema) -> list[str]:
    """The note to give when ``series`` holds static categories its model never saw (none: [])."""
    if not any(c.categories for c in schema.of("static")):
        return []
    unseen = [f"{s.id!r} ({c.name}={value})" for s in series.series for c, value in
              ((c, dict(zip(series.static_cols, series.static[s.id]))[c.name]) for c in schema.of("static"))
              if c.categories and str(value) not in c.categories]
    if not unseen:
        return []
    return [f"static categories not seen in training, read as the training average: {', '.join(unseen[:5])}"
            + (f" and {len(unseen) - 5} more" if len(unseen) > 5 else "")]


def outside_training_range(series, schema: CovariateSchema) -> list[str]:
    """The note to give when numeric covariates of ``series`` (its rows and its known-future rows) leave
    the range their training rows spanned: the model never saw such values ([] when none stray)."""
    if not (schema.of("past") or schema.of("future") or schema.of("static")):
        return []  # a model reading none: nothing to look at in a million series
    stray = []
    n_past = len(series.past_cols)
    for s in series.series:
        blocks = [(c, s.covariates[:, i] if s.covariates is not None else np.zeros(0))
                  for i, c in enumerate(schema.of("past"))]
        ahead = series.ahead.get(s.id)
        for j, c in enumerate(schema.of("future")):
            values = s.covariates[:, n_past + j] if s.covariates is not None else np.zeros(0)
            blocks.append((c, np.concatenate([values, ahead.values[:, j]]) if ahead is not None else values))
        static = dict(zip(series.static_cols, series.static.get(s.id, ())))
        blocks += [(c, np.array([static[c.name]], dtype=np.float64)) for c in schema.of("static")
                   if not c.categories and isinstance(static.get(c.name), float)]  # (a text value: its own error)
        for column, values in blocks:
            if len(column.span) == 2 and len(values):
                low, high = column.span
                out = values[(values < low) | (values > high)]
                if len(out):
                    worst = out[np.argmax(np.abs(out - (low + high) / 2))]
                    stray.append(f"{s.id!r} {column.name}={worst:g} (fit read {low:g} to {high:g})")
    if not stray:
        return []
    return [f"covariate values outside the range of the data the model was fit on (it extrapolates there): "
            f"{', '.join(stray[:5])}" + (f" and {len(stray) - 5} more" if len(stray) > 5 else "")]


def static_inputs(series, schema: CovariateSchema) -> np.ndarray | None:
    """The static inputs (N, S) of every series of ``series``, scaled; None without static covariates.
    A category not seen in training reads as the training average (0 after scaling): ``unseen_categories``."""
    columns = schema.of("static")
    if not columns:
        return None
    rows = []
    for s in series.series:
        values = dict(zip(series.static_cols, series.static[s.id]))
        row = []
        for column in columns:
            value = values[column.name]
            if not column.categories:
                if not isinstance(value, float):
                    raise InputError(f"{series.source}: static column {column.name!r} of series {s.id!r} is "
                                     f"{value!r}; it held numbers in training")
                row.append((value - column.mean[0]) / column.std[0])
            elif str(value) in column.categories:
                row += [((str(value) == c) - m) / d for c, m, d in zip(column.categories, column.mean, column.std)]
            else:
                row += [0.0] * len(column.categories)
        rows.append(row)
    return np.asarray(rows, dtype=np.float32)


def horizon_values(series, schema: CovariateSchema, ends: np.ndarray, future: pd.Index, horizon: int) -> np.ndarray:
    """The known-future block (N, H, F) of the H steps ``future`` (N * H timestamps, one series after
    another) after row ``ends[i]`` of each series: calendar features from the timestamps, future
    covariates from the series' own later rows or its rows after the last observation (``ahead``).

    Every one of the N x H steps must be covered: otherwise InputError listing the first missing
    (series, timestamp) pairs and their count."""
    calendar, columns = schema.of("calendar"), schema.of("future")
    n = len(series.series)
    parts = [calendar_features(future, tuple(c.name for c in calendar)).reshape(n, horizon, -1)]
    if columns:
        offset = len(schema.of("past"))
        known = np.full((n, horizon, len(columns)), np.nan)
        for i, s in enumerate(series.series):
            after = ends[i] + 1
            stamps = future[i * horizon : (i + 1) * horizon]
            inside = min(horizon, len(s.times) - after)
            if inside > 0:
                known[i, :inside] = s.covariates[after : after + inside, offset:]
            ahead = series.ahead.get(s.id)
            if inside < horizon and ahead is not None:
                where = ahead.times.get_indexer(stamps[max(inside, 0):])
                found = where >= 0
                known[i, max(inside, 0):][found] = ahead.values[where[found]]
        _check_covered(series, known, future, horizon, [c.name for c in columns])
        parts.append(known)
    raw = np.concatenate(parts, axis=-1).reshape(n * horizon, -1)
    return _scaled(raw, calendar + columns).reshape(n, horizon, -1)


def _check_covered(series, known: np.ndarray, future: pd.Index, horizon: int, names: list[str]) -> None:
    missing = np.isnan(known).any(axis=-1)  # (N, H)
    if not missing.any():
        return
    flat = np.flatnonzero(missing.reshape(-1))
    pairs = [f"({series.series[i // horizon].id!r}, {future[i]})" for i in flat[:5]]
    empty = [(i // horizon, i) for i in flat if series.ahead.get(series.series[i // horizon].id) is not None
             and future[i] in series.ahead[series.series[i // horizon].id].times]
    hint = (f"; {len(empty)} of them have a row with an empty {'/'.join(names)}" if empty else "")
    raise InputError(f"{series.source}: known-future covariates {', '.join(names)} are missing for {len(flat)} of "
                     f"the {missing.size} forecast steps (series, timestamp): {', '.join(pairs)}"
                     + (" ..." if len(flat) > 5 else "") + hint
                     + f"; give the {horizon} steps after each series' last observation, as rows with an empty "
                     "target at the end of the history or in predict --future FILE")
