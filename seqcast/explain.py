"""What a model looked at: attention weights, or recurrent gate activations, for one window per series.

For each series, the window ending ``window`` steps before its last row (0 = the last window, the one
``predict`` forecasts from) is scaled and window-normalised exactly as for a forecast, then:

The model says what it shows (its ``explain`` capability) and computes it (its ``explain`` method,
the model contract in ``models/__init__.py``); this module only shapes the result:

- attention models (``explain="attention"``): each map's weights, query step x input
  step, averaged over heads by the model; rows sum to 1 over the L input steps. By default maps of
  the same kind (encoder self-attention, decoder cross-attention) are averaged over layers; with
  ``per_layer`` every layer is reported.
- gated recurrent models (``explain="gates"``: lstm, gru and their presets): the mean gate activation over
  hidden units at each input step (LSTM forget, input, output; GRU update, reset), averaged over
  layers and directions by default, or per layer and direction with ``per_layer``.

Long-format columns (``COLUMNS``):
    series           the series id
    model            the registered model name
    layer            "mean" (averaged over layers/directions) or the layer: "0", "1", ... and for a
                     bidirectional encoder "0_reverse"
    kind             self_attention, cross_attention or attention (lstm_attention's horizon queries);
                     or the gate: forget_gate, input_gate, output_gate, update_gate, reset_gate
    query_axis       horizon (query steps are forecast steps 1..H) or input (query steps are input
                     steps 1..L); empty for gates
    query_step       1-based query step; empty for gates
    input_step       1..L, 1 the oldest step of the window, L the last observed one
    input_timestamp  the timestamp of that input step
    weight           the attention weight, or the mean gate activation in (0, 1)

With covariates (``covariate_effects``, ``explain --covariates``), for every model that reads them:
how much each covariate moved the forecast, its inputs replaced by their training mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import intervals
from .data import SeriesSet
from .forecaster import Forecaster
from .errors import UsageError
from .forecasting import window_inputs
from .plots import require_matplotlib, save_png
from .registry import get_spec, list_models

COLUMNS = ["series", "model", "layer", "kind", "query_axis", "query_step", "input_step", "input_timestamp", "weight"]
# what each kind of attention map queries with: the input steps themselves, or the horizon steps
_QUERY_AXIS = {"self_attention": "input", "cross_attention": "horizon", "attention": "horizon"}


@dataclass
class Map:
    """One heatmap: ``weights`` (Q, L), Q query steps over the L input steps (gates: one row per gate)."""

    series: str
    layer: str
    kinds: list[str]  # one kind for attention; for gates, the gate of each row
    query_axis: str  # "horizon", "input", or "" for gates
    input_times: pd.Index
    weights: np.ndarray


def explainable_models() -> list[str]:
    """Registered models that declare something to explain (nothing built)."""
    return [name for name in list_models() if get_spec(name).capabilities.explain]


def _check(ckpt: Forecaster) -> str:
    how = get_spec(ckpt.name).capabilities.explain
    if how is None:
        raise UsageError(f"{ckpt.name} has no attention or gates to explain; explain works for "
                         f"{', '.join(explainable_models())}")
    return how


def _attention(raw: dict[str, torch.Tensor], ids: list[str], pasts: list[pd.Index], per_layer: bool) -> list[Map]:
    groups: dict[str, list[tuple[str, torch.Tensor]]] = {}  # kind -> [(layer, (B, Q, L))]
    for key, weights in raw.items():
        layer, kind = key.split(".")
        groups.setdefault(kind, []).append((layer, weights))
    maps = []
    for kind, layers in groups.items():
        if not per_layer:  # average only maps with the same query count
            shapes = {w.shape for _, w in layers}
            layers = [("mean", torch.stack([w for _, w in layers]).mean(0))] if len(shapes) == 1 else layers
        for layer, weights in layers:
            for b, sid in enumerate(ids):
                maps.append(Map(sid, layer, [kind], _QUERY_AXIS[kind], pasts[b], weights[b].double().numpy()))
    return maps


def _gates(raw: dict[str, torch.Tensor], ids: list[str], pasts: list[pd.Index], per_layer: bool) -> list[Map]:
    by_layer: dict[str, dict[str, torch.Tensor]] = {}  # layer -> gate -> (B, L)
    for key, values in raw.items():
        layer, gate = key.split(".")
        by_layer.setdefault(layer, {})[gate] = values
    if not per_layer:
        gates = next(iter(by_layer.values())).keys()
        by_layer = {"mean": {g: torch.stack([v[g] for v in by_layer.values()]).mean(0) for g in gates}}
    maps = []
    for layer, gates in by_layer.items():
        stacked = torch.stack(list(gates.values()), dim=1)  # (B, gates, L)
        for b, sid in enumerate(ids):
            maps.append(Map(sid, layer, [f"{g}_gate" for g in gates], "", pasts[b], stacked[b].double().numpy()))
    return maps


def explain(ckpt: Forecaster, series: SeriesSet, window: int = 0, per_layer: bool = False) -> list[Map]:
    """Attention maps or gate activations for one window per series (see the module docstring)."""
    if window < 0:
        raise UsageError(f"--window must be 0 or more (steps before the end), not {window}")
    members = _explained_members(ckpt)
    inputs, covariates, pasts, _ = window_inputs(ckpt, series, offset=window)
    ids = [s.id for s in series.series]
    maps = []
    for label, model, how, reads in members:  # one model; or each member of an auto ensemble that explains
        x = model.normalise(torch.from_numpy(inputs.astype(np.float32)))  # what the inner model sees
        extra = {k: torch.from_numpy(v) for k, v in covariates.items()} if reads else {}
        model.eval()
        with torch.no_grad():
            raw = model.network.explain(x, **extra)  # {"0.self_attention": (B, Q, L), ...}
        found = (_attention if how == "attention" else _gates)(raw, ids, pasts, per_layer)
        maps += [Map(m.series, f"{label}:{m.layer}", m.kinds, m.query_axis, m.input_times, m.weights)
                 for m in found] if label else found
    return maps


def _explained_members(ckpt: Forecaster) -> list[tuple[str, Any, str, bool]]:
    """(label, network, what it explains, reads the covariates) for the model, or for each member of an auto
    ensemble that declares something to explain (label: its name, which prefixes its layers)."""
    if not ckpt.model_info.members:
        return [("", ckpt.model, _check(ckpt), True)]
    found = [(m.name, network, get_spec(m.name).capabilities.explain, reads)
             for m, network, reads in zip(ckpt.model_info.members, ckpt.model.members, ckpt.model.reads)
             if get_spec(m.name).capabilities.explain]
    if not found:
        raise UsageError(f"{ckpt.label}: none of its members ({', '.join(m.name for m in ckpt.model_info.members)}) "
                         f"has attention or gates to explain; explain works for {', '.join(explainable_models())}")
    return found


def to_frame(maps: list[Map], model: str) -> pd.DataFrame:
    """The maps in long format, one row per (map, query step, input step): ``COLUMNS``."""
    frames = []
    for m in maps:
        rows, steps = m.weights.shape
        gate = not m.query_axis
        frames.append(pd.DataFrame({
            "series": m.series, "model": model, "layer": m.layer,
            "kind": np.repeat(m.kinds if gate else m.kinds * rows, steps),
            "query_axis": m.query_axis,
            "query_step": pd.array([pd.NA] * (rows * steps) if gate else np.repeat(np.arange(1, rows + 1), steps),
                                   dtype="Int64"),
            "input_step": np.tile(np.arange(1, steps + 1), rows),
            "input_timestamp": np.tile(np.asarray(m.input_times), rows),
            "weight": m.weights.reshape(-1),
        }))
    return pd.concat(frames, ignore_index=True)[COLUMNS]


def to_document(maps: list[Map], ckpt: Forecaster, window: int) -> dict[str, Any]:
    """A JSON-ready document: one entry per map with its (Q, L) weights as nested lists; a gate map
    has kind "gates", the gate of each row under "gates", and query_axis null."""
    return {
        "model": ckpt.name, "lookback": ckpt.lookback, "horizon": ckpt.horizon, "window": window,
        "maps": [{"series": m.series, "layer": m.layer, "kind": m.kinds[0] if m.query_axis else "gates",
                  "query_axis": m.query_axis or None, **({} if m.query_axis else {"gates": m.kinds}),
                  "input_timestamps": [str(t) for t in m.input_times], "weights": m.weights.tolist()}
                 for m in maps],
    }


def plot(maps: list[Map], model: str, path: str) -> None:
    """Heatmaps of the first series' maps, one panel each, to a PNG. Needs matplotlib (``seqcast[plot]``)."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sid = maps[0].series
    shown = [m for m in maps if m.series == sid]
    fig, axes = plt.subplots(len(shown), 1, figsize=(9, 2.0 + 2.6 * len(shown)), squeeze=False)
    for ax, m in zip(axes[:, 0], shown):
        gate = not m.query_axis
        image = ax.imshow(m.weights, aspect="auto", cmap="viridis", interpolation="nearest",
                          vmin=0.0 if gate else None, vmax=1.0 if gate else None,
                          extent=(0.5, m.weights.shape[1] + 0.5, m.weights.shape[0] + 0.5, 0.5))
        what = "mean gate activation" if gate else m.kinds[0].replace("_", " ")
        layer = "mean over layers" if m.layer == "mean" else f"layer {m.layer}"
        ax.set_title(f"{model}, series {sid}: {what} ({layer}), window ending {m.input_times[-1]}", fontsize=9)
        ax.set_xlabel(f"input step (1 = {m.input_times[0]}, {m.weights.shape[1]} = {m.input_times[-1]})")
        if gate:
            ax.set_yticks(range(1, len(m.kinds) + 1), [k.replace("_", " ") for k in m.kinds])
            ax.set_ylabel("gate")
        else:
            ax.set_ylabel(f"query: {m.query_axis} step")
        fig.colorbar(image, ax=ax, label="activation" if gate else "attention weight")
    fig.tight_layout()
    save_png(fig, path)


EFFECT_COLUMNS = ["series", "model", "covariate", "kind", "target", "mean_abs_change", "max_abs_change",
                  "mean_change"]


def covariate_effects(ckpt: Forecaster, series: SeriesSet, window: int = 0) -> pd.DataFrame:
    """How much each covariate moves the forecast of one window per series (the window ending ``window``
    steps before its last row): the forecast with the covariate's inputs replaced by its training mean
    (0 once scaled: every step of the window and of the horizon; a static category's every input),
    minus the forecast itself, in the target's units, over the H steps. Works for every model that
    reads covariates: it measures the forecast, not the model's insides. Columns: ``EFFECT_COLUMNS``."""
    from .forecasting import last_windows, run_model

    if window < 0:
        raise UsageError(f"--window must be 0 or more (steps before the end), not {window}")
    schema = ckpt.covariates
    if not schema.columns:
        raise UsageError(f"{ckpt.label}: the model reads no covariates, so there is no effect to show; fit it with "
                         "--past-cols, --future-cols, --static-cols or --calendar, or leave --covariates out")
    windows = last_windows(ckpt, series, window)

    def forecast(covariates: dict[str, np.ndarray]) -> np.ndarray:  # (N, H, C) in original units
        raw = run_model(ckpt.model, windows.inputs, covariates).astype(np.float64)
        return windows.to_units(intervals.point(raw, ckpt.model_info.quantiles))

    base = forecast(windows.covariates)
    blocks = {"past": ("past",), "future": ("calendar", "future"), "static": ("static",)}
    rows = []
    for block, kinds in blocks.items():
        start = 0
        for column in (c for kind in kinds for c in schema.of(kind)):
            width = len(column.mean)
            changed = dict(windows.covariates)
            changed[block] = changed[block].copy()
            changed[block][..., start : start + width] = 0.0  # the training mean
            start += width
            change = forecast(changed) - base  # (N, H, C)
            for i, s in enumerate(series.series):
                for c, target in enumerate(ckpt.schema.targets):
                    steps = change[i, :, c]
                    rows.append((s.id, ckpt.name, column.name, column.kind, target, float(np.abs(steps).mean()),
                                 float(np.abs(steps).max()), float(steps.mean())))
    return pd.DataFrame(rows, columns=EFFECT_COLUMNS)
