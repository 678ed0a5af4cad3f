"""``seqcast distill``: a small student trained on a teacher's forecasts (knowledge distillation).

Any checkpoint can teach: one network, an ``auto`` ensemble (statistical members included), a tuned
model. The student is an ordinary fit (``fitting.fit``: its own split, scaling, probes and training
loop) of a small model (``STUDENTS``), with one difference: the targets of its training windows are
mixed with what the teacher forecasts for them (Hinton et al. 2015's soft targets, for regression):

    target = (1 - weight) x actual + weight x teacher's forecast

``weight`` (``--teacher-weight``, default ``TEACHER_WEIGHT``) is the teacher's share. The teacher
forecasts each training window's origin from its own lookback, scaling and transform, in the targets'
units (``Labels``); each student layout and target transform then sees those forecasts in its own
scaled units. A teacher with quantiles gives the student the same quantiles, and a target per
quantile, each mixed so with the teacher's forecast of that quantile (the pinball loss then pulls the
student's quantile towards the teacher's). Validation stays on the real targets, so what fit probes,
keeps and reports is the student's own accuracy.

A teacher that costs much per window (a statistical model fits each one) forecasts at most the
windows it can in ``LABEL_SECONDS``: it is timed on ``TIMED_WINDOWS`` first (after two untimed, which
pay for imports and compiling), and then every series
keeps every k-th of its training origins, counted back from its last (``build_windows``' ``at_most``).
The windows it did not forecast keep their real targets; how many it did is recorded.

The student's checkpoint records its teacher (``forecaster.Distillation``: path, digest, model, weight,
windows taught) and the gap between them on the student's validation windows: both scored as fit's
validation backtest scores (MASE and sMAPE in the targets' units). Library code: it never prints.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .data import SeriesSet
from .errors import CheckpointError, UsageError
from .forecaster import Distillation, Forecaster
from .forecasting import check_schema, run_model
from .transform import TargetTransform, forward
from .windows import Split, WindowSet, build_windows, model_arrays, split_targets

STUDENTS = ("lstm", "gru", "rnn", "tcn", "nlinear")
WIDTHS = {"lstm": "hidden_size", "gru": "hidden_size", "rnn": "hidden_size", "tcn": "out_channels"}  # nlinear: none
WIDTH_LADDER = (4, 8, 12, 16, 24, 32, 48, 64, 96, 128)
# The teacher's share of each taught window's target, chosen on validation windows (the student's validation
# MASE; docs/benchmarks.md, "Distillation"): a gru student of an auto teacher on M3 Monthly scored 0.9347 at
# 0.5, 0.9368 at 0.75 and 0.9468 at 1.0 (0.9422 without a teacher); on ETTh1 0.5977 at 0.5, 0.5928 at 0.75,
# 0.5946 at 1.0 and 0.5984 at 0.25 (0.6021 without). 1.0 (the teacher's forecasts alone) is never best.
TEACHER_WEIGHT = 0.5
LABEL_SECONDS = 300.0  # the most the teacher spends forecasting training windows
TIMED_WINDOWS = 64  # windows the teacher's cost per window is measured on (after two, untimed)
BLOCK = 1 << 16  # windows forecast at a time (memory: a block of inputs)


@dataclass(frozen=True)
class Teaching:
    """What ``fit`` is taught by: the teacher, its share of each target, and its time for labelling."""

    teacher: Forecaster
    weight: float = TEACHER_WEIGHT
    seconds: float = LABEL_SECONDS

    def __post_init__(self) -> None:
        if not 0 < self.weight <= 1:
            raise UsageError(f"--teacher-weight {self.weight}: give the teacher's share of each target, above 0 "
                             "and at most 1")

    def labels(self, series: SeriesSet, splits: dict[str, Split]) -> "Labels":
        """The teacher's forecasts of the training windows of ``series`` (what ``fit`` mixes in)."""
        return Labels(self, series, splits)


class Labels:
    """The teacher's forecasts of the training windows of ``series`` (split as ``splits``), in the
    targets' units, by (series, origin): made once, read by every layout and transform fit prepares."""

    def __init__(self, teaching: Teaching, series: SeriesSet, splits: dict[str, Split]) -> None:
        teacher = teaching.teacher
        check_schema(teacher, series)
        self.teaching = teaching
        shown = teacher.transform.apply(series)
        arrays, static = model_arrays(shown, teacher.scaler, teacher.covariates)
        made = lambda at_most: build_windows(  # noqa: E731
            shown, arrays, teacher.lookback, teacher.horizon, split_targets(splits, "train"),
            pad_short=teacher.schema.pad_short, static=static, past=teacher.covariates.widths[0], at_most=at_most)
        windows = made(0)
        self.possible = len(windows)
        started = time.perf_counter()
        _forecast(teacher, windows, 0, min(2, len(windows)))  # the first call imports and compiles: not timed
        timing = time.perf_counter()
        first = _forecast(teacher, windows, 0, min(TIMED_WINDOWS, len(windows)))
        per_window = (time.perf_counter() - timing) / max(1, len(first))
        affordable = int((teaching.seconds - (timing - started)) / per_window) if per_window > 0 else len(windows)
        if affordable < len(windows):
            windows, first = made(max(1, affordable)), None
        centre, spread = teacher.scaler.arrays(shown)
        lambdas = teacher.transform.lambdas_of(series)
        index, origins = windows.series_index, windows.origins
        parts = [first] if first is not None else []
        for start in range(len(parts[0]) if parts else 0, len(windows), BLOCK):
            parts.append(_forecast(teacher, windows, start, min(start + BLOCK, len(windows))))
        quantiles = teacher.model_info.quantiles
        scaled = np.concatenate(parts) if parts else np.zeros((0, teacher.horizon, len(series.targets),
                                                               *([len(quantiles)] if quantiles else [])))
        columns = [scaled[..., i] for i in range(len(quantiles))] if quantiles else [scaled]
        units = np.stack([teacher.transform.restore(c * spread[index][:, None, :] + centre[index][:, None, :],
                                                    lambdas[index]) for c in columns], axis=-1)
        units = units if quantiles else units[..., 0]  # (N, H, C), or (N, H, C, Q) with the teacher's quantiles
        self.width = int(series.lengths.max()) + 1 if len(series.series) else 1
        order = np.argsort(index * self.width + origins, kind="stable")
        self.keys = (index * self.width + origins)[order]
        self.units = units[order].astype(np.float64)
        self.seconds = time.perf_counter() - started

    def __len__(self) -> int:
        return len(self.keys)

    def teach(self, windows: WindowSet, series: SeriesSet, shown: SeriesSet, transform: TargetTransform,
              scaler: Any, quantiles: tuple[float, ...] = ()) -> WindowSet:
        """``windows`` (of ``series``, ``shown`` under ``transform`` and scaled by ``scaler``: what fit
        prepares) with the teacher's forecasts mixed into the targets of those it forecast: of each of the
        student's ``quantiles`` where the teacher has them all, else of its point forecast."""
        import torch

        keys = windows.series_index * self.width + windows.origins
        at = np.minimum(np.searchsorted(self.keys, keys), max(len(self.keys) - 1, 0))
        hit = self.keys[at] == keys if len(self.keys) else np.zeros(len(keys), dtype=bool)
        index = windows.series_index[hit]
        units = self.units[at[hit]]
        known = self.teaching.teacher.model_info.quantiles
        if units.ndim == 4:  # the teacher's quantiles: the student's, or its median alone
            units = units[..., [known.index(q) for q in quantiles]] if quantiles and set(quantiles) <= set(known) \
                else units[..., known.index(0.5)]
        per_row = (slice(None), None, slice(None)) + ((None,) if units.ndim == 4 else ())  # (n, C) -> units' rank
        if transform.kind != "none":  # log and Box-Cox read values of at least 0, as the targets are
            units = forward(transform.kind, np.maximum(units, 0.0), transform.lambdas_of(series)[index][per_row])
        centre, spread = scaler.arrays(shown)
        forecasts = np.zeros((len(windows), *units.shape[1:]), dtype=np.float32)
        forecasts[hit] = (units - centre[index][per_row]) / spread[index][per_row]
        weights = np.where(hit, self.teaching.weight, 0.0).astype(np.float32)
        return windows.teach(torch.from_numpy(forecasts), torch.from_numpy(weights))

    def note(self, train: WindowSet) -> str:
        """What fit says of the teacher's forecasts of ``train`` (the student's training windows)."""
        teacher, taught = self.teaching.teacher, _taught(train)
        why = ""
        if len(self) < self.possible:
            why = (f"; its time for them ({self.teaching.seconds:g} s) allowed {len(self):,} of its {self.possible:,}: "
                   "--teacher-time gives more")
        elif taught < len(train):
            why = f"; its lookback ({teacher.lookback}) starts later than the student's in each series"
        return (f"distilled from {teacher.label} ({teacher.name}): the teacher forecast {taught:,} of the "
                f"{len(train):,} training windows in {self.seconds:.1f} s, weight {self.teaching.weight:g}{why}")

    def record(self, student: Forecaster, series: SeriesSet, splits: dict[str, Split],
               train: WindowSet) -> Distillation:
        """What the student's checkpoint says of its teacher: who it is, what it taught (of ``train``, the
        student's training windows), and the gap between them on the student's validation windows."""
        from .evaluation import validation_backtest

        teacher = self.teaching.teacher
        scored = validation_backtest(teacher, series, splits)
        stored = teacher.stored
        return Distillation(
            teacher=stored.path if stored else teacher.name, sha256=stored.sha256 if stored else "",
            model=teacher.name, weight=self.teaching.weight, taught=_taught(train), windows=len(train),
            labelling_seconds=self.seconds, teacher_mase=scored.mase if scored else None,
            teacher_smape=scored.smape if scored else None)


def _taught(windows: WindowSet) -> int:
    """How many of ``windows`` hold a teacher's forecast."""
    return int((windows.taught[1] > 0).sum()) if windows.taught is not None else 0


def _forecast(teacher: Forecaster, windows: WindowSet, start: int, end: int) -> np.ndarray:
    """The teacher's forecasts of windows ``start`` to ``end`` (scaled units): (n, H, C), or (n, H, C, Q)
    with its quantiles."""
    x, _, inputs = windows.batch(slice(start, end))
    return run_model(teacher.model, x.numpy(), {k: v.numpy() for k, v in inputs.items()}).astype(np.float64)


def distill(teaching: Teaching, series: SeriesSet, model_config: Any, config: Any, split: Split | None = None,
            max_bytes: int = 0, on_epoch=None, on_step=None) -> Forecaster:
    """The student ``model_config`` asks for, fit on ``series`` with ``teaching``'s forecasts mixed into its
    training targets (``fitting.fit``). Its horizon is the teacher's; its split the one given, else the
    teacher's explicit split (``--split``), else the automatic one (the same validation rows). With
    ``max_bytes`` its width is the largest of ``WIDTHS`` whose int8 graph fits (``sized``)."""
    from .fitting import fit

    teacher = teaching.teacher
    check_student(model_config.name, teacher, model_config.horizon)
    model_config = replace(model_config, horizon=teacher.horizon,  # a teacher's quantiles are the student's too
                           quantiles=model_config.quantiles or teacher.model_info.quantiles)
    split = split or teacher_split(teacher)
    notes = []
    if max_bytes:
        model_config, note = sized(model_config, series, split, max_bytes)
        notes.append(note)
    fitted = fit(series, model_config, config, split, on_epoch=on_epoch, on_step=on_step, teaching=teaching)
    return replace(fitted, notes=(*notes, *fitted.notes))


def teacher_split(teacher: Forecaster) -> Split | None:
    """The teacher's split when it was given (``--split``: one split with a test part for every series), else
    None: the automatic split, whose validation rows do not depend on the lookback."""
    recorded = teacher.training.split  # per series, or (older files, auto) one split for all
    each = recorded.values() if all(isinstance(part, dict) for part in recorded.values()) else [recorded]
    parts = {tuple(int(part.get(k, 0)) for k in ("train", "val", "test")) for part in each}
    if len(parts) == 1:
        train, val, test = parts.pop()
        if test:
            return Split(train, val, test)
    return None


def sized(model_config: Any, series: SeriesSet, split: Split | None, max_bytes: int) -> tuple[Any, str]:
    """``model_config`` at the largest width of ``WIDTHS`` whose int8 graph (``export.int8_model_bytes``:
    weights and operators) is at most ``max_bytes``, at its lookback (the longer one is not probed: it would
    change the size), and the note that says so. ``UsageError`` when even the narrowest does not fit."""
    from .build import build_network
    from .choosing import norm_candidates
    from .covariates import fit_schema
    from .data import seasons
    from .export import exporter_name, int8_model_bytes
    from .fitting import auto_window_norm
    from .layout import make_layout
    from .models._layers import Covariates

    layout = make_layout(series, model_config, split, None)
    schema = fit_schema(layout.series, {sid: sp.train for sid, sp in layout.splits.items()})
    channels, key = len(series.targets), WIDTHS.get(model_config.name)
    if model_config.params.get(key) is not None:
        raise UsageError(f"--max-bytes chooses {key}; drop --param {key}")

    norms = [model_config.window_norm] if model_config.window_norm != "auto" else norm_candidates(
        auto_window_norm(series, model_config.name), seasons(series.freq), layout.lookback)

    @functools.cache  # each width exported once: the search's last step may be the smallest, asked again below
    def size(width: int | None) -> float:  # the largest under any window normalisation fit may choose
        params = {**model_config.params, **({key: width} if key else {})}
        try:
            return max(int8_model_bytes(build_network(model_config.name, layout.lookback, layout.horizon, channels,
                                                      params, window_norm=norm, seasons=seasons(series.freq),
                                                      covariates=Covariates(*schema.widths), seed=0),
                                        layout.lookback, layout.horizon, channels, schema.widths,
                                        exporter_name(model_config.name)) for norm in norms)
        except CheckpointError:  # a width int8 cannot export (the quantizer refused its graph) does not fit
            return math.inf

    fixed = replace(model_config, lookback=layout.lookback, lookback_probe=False)
    widths = [None] if key is None else list(WIDTH_LADDER)
    low, high, best = 0, len(widths) - 1, None  # the size grows with the width: a binary search
    while low <= high:
        middle = (low + high) // 2
        if (measured := size(widths[middle])) <= max_bytes:
            best, low = (widths[middle], measured), middle + 1
        else:
            high = middle - 1
    if best is None:
        smallest = size(widths[0])
        fix = f"a shorter --lookback than {layout.lookback}" if key is None else "a shorter --lookback, or nlinear"
        raise UsageError(f"--max-bytes {max_bytes:,}: the smallest {model_config.name} at lookback {layout.lookback} "
                         f"takes {smallest:,.0f} bytes as int8; give more bytes, or {fix}")
    width, measured = best
    chosen = f"{key} {width}, " if key else ""
    return (replace(fixed, params={**model_config.params, key: width}) if key else fixed,
            f"--max-bytes {max_bytes:,}: {chosen}{measured:,} bytes of int8 graph at lookback {layout.lookback}")


def check_student(name: str, teacher: Forecaster, horizon: int) -> None:
    """``UsageError`` unless ``name`` is a student model and the horizon is the teacher's."""
    if name not in STUDENTS:
        raise UsageError(f"--model {name!r}: a student is one of {', '.join(STUDENTS)}")
    if horizon not in (0, teacher.horizon):
        raise UsageError(f"--horizon {horizon}: the student forecasts the teacher's horizon ({teacher.horizon}); "
                         "drop --horizon")
