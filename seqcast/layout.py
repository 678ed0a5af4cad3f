"""Where fit's windows come from: the lookback and horizon, each series' chronological split, and the
longer lookback ``fit`` may probe beside the default (``choosing.py``).

A layout is computed before anything is built or scaled, and says what it did to short series (left out
with --drop-sparse, padded, trained without validation rows) in its notes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .data import SeriesSet
from .errors import SeqcastError, named
from .windows import (Split, default_horizon_lookback, default_split, explicit_split, needs_padding, real_inputs,
                      short_series, validation_rows)

if TYPE_CHECKING:
    from .fitting import ModelConfig
    from .forecaster import Forecaster


def resolve_windows(series: SeriesSet, model_config: ModelConfig, split: Split | None, notes: list[str],
                    default: int = 0) -> tuple[int, int]:
    """Lookback and horizon: the user's, or defaults by frequency (or ``default``), shrunk to fit a typical series.

    The default lookback is cut to what the (lower) median series can hold (half its training rows),
    so a panel with a few short series keeps the frequency's lookback, and those series are padded
    (``windows.needs_padding``); with one series (or an explicit split) the median is that length.
    """
    horizon_default, lookback_default = default_horizon_lookback(series.freq)
    lookback_default = default or lookback_default
    horizon = model_config.horizon or horizon_default
    lookback = model_config.lookback
    if not lookback:
        lengths = np.sort(series.lengths).tolist()
        typical = lengths[(len(lengths) - 1) // 2]  # the lower median: fewer than half are shorter, and padded
        usable = (split.train if split else int(typical * 0.9)) - horizon
        fits = (split.train if split else typical - validation_rows(typical, horizon)) - horizon  # one window
        lookback = max(2, min(lookback_default, usable // 2, fits))
        if lookback < lookback_default:
            notes.append(f"lookback {lookback} (shortened from {lookback_default} to fit the "
                         f"{'series' if len(series.series) == 1 else 'median series'})")
    return lookback, horizon


class Layout(NamedTuple):
    """The series fit trains on (less any --drop-sparse left out), its window sizes, and each series' split."""

    series: SeriesSet
    lookback: int
    horizon: int
    pad_short: bool  # windows of short series reach before their first row (windows.needs_padding)
    splits: dict[str, Split]
    notes: tuple[str, ...] = ()  # what it did to the lookback and to short series, for fit's notes


def make_layout(series: SeriesSet, model_config: ModelConfig, split: Split | None, init: Forecaster | None) -> Layout:
    """The window sizes and the chronological split of every series, with a note on what it did to
    the short ones (left out, padded, or trained without validation rows)."""
    notes: list[str] = []
    lookback, horizon = resolve_windows(series, model_config, split, notes)
    pad_short = split is None and (init.schema.pad_short if init is not None else
                                   needs_padding(series, lookback, horizon))
    splits = explicit_split(series, split, lookback, horizon) if split else \
        default_split(series, lookback, horizon, pad_short=pad_short, drop_short=model_config.drop_sparse)
    kept = [sid in splits for sid in series.ids]
    left_out = [sid for sid, k in zip(series.ids, kept) if not k]
    if left_out:  # --drop-sparse: the series too short to train or validate on are left out, by name
        series = series.subset(kept)
        notes.append(f"--drop-sparse: left out {len(left_out)} series too short for lookback {lookback} and "
                     f"horizon {horizon}: {named(left_out)}")
    if pad_short and init is None:
        notes.append(f"{short_series(series, lookback, horizon)} of {len(series.series)} series are too short for "
                     f"lookback {lookback}: windows reach up to {lookback - real_inputs(lookback, horizon)} rows "
                     "before the first row of each series, repeating its first value, so that they keep their "
                     "windows; losses and scores use real rows only")
    unvalidated = [sp.train for sp in splits.values() if sp.val == 0] if split is None else []
    if unvalidated:
        context = real_inputs(lookback, horizon) if pad_short else lookback
        untrained = sum(rows < context + horizon for rows in unvalidated)
        notes.append(f"{len(unvalidated)} of {len(splits)} series are too short to hold validation rows after a "
                     "training window: they train on all their rows, and the other series validate"
                     + (f"; {untrained} of them are too short for a training window too (fewer than {context + horizon} "
                        "rows) and are only forecast" if untrained else ""))
    return Layout(series, lookback, horizon, pad_short, splits, tuple(notes))


# The longer lookback fit probes beside the frequency's default (choosing.py): twice it. Measured on M4 Weekly's
# validation holdout (docs/benchmarks.md, "A longer lookback, probed"): gru OWA 0.919 at 104 weeks, 0.773 at 208
# (lstm 0.832 and 0.890: the better one depends on the model and the data, so fit probes it).
LOOKBACK_MULTIPLE = 2


def longer_layouts(series: SeriesSet, model_config: ModelConfig, split: Split | None, layout: Layout,
                   fixed: bool) -> list[Layout]:
    """The layouts of the longer lookback fit probes beside ``layout``'s: none when the lookback was given
    or is fixed (a warm start's, torchrun's), or was shortened to fit the data; else ``LOOKBACK_MULTIPLE``
    times it where the median series holds it as the default rule asks (``resolve_windows``) and every
    series keeps its split, so that the probes of both lookbacks forecast the same validation targets."""
    if fixed or model_config.lookback or not model_config.lookback_probe or \
            layout.lookback < default_horizon_lookback(series.freq)[1]:
        return []
    longer = layout.lookback * LOOKBACK_MULTIPLE
    if resolve_windows(series, replace(model_config, lookback=0), split, [], default=longer)[0] < longer:
        return []
    try:
        other = make_layout(series, replace(model_config, lookback=longer), split, None)
    except SeqcastError:  # a series too short for it
        return []
    kept = layout.series.ids  # constant series are left out after the split
    same = all(other.splits.get(sid) == layout.splits.get(sid) for sid in kept)
    return [other._replace(series=layout.series, splits=layout.splits)] if same else []
