"""How the commands show what the library returns: tables, summaries and `seqcast info`'s lines.

Everything here turns values into text for the terminal (tables through ``Output.table``); nothing
here reads files or decides anything.
"""

from pathlib import Path
from typing import Any, Optional

from .output import Output, fmt


def fit_lines(fitted, seconds: float, output: Path) -> list[str]:
    """What fit says when the checkpoint is written."""
    record = fitted.training
    if fitted.portfolio is not None:
        lines = [f"auto: lookback {fitted.lookback}, horizon {fitted.horizon}, {len(fitted.model_info.members)} members, "
                 f"{fitted.model_info.n_parameters} parameters, in {seconds:.1f}s; validation MSE "
                 f"{record.val_mse_scaled:.5f} (scaled)", *portfolio_lines(fitted.portfolio)]
    else:
        lines = [f"{fitted.name}: lookback {fitted.lookback}, horizon {fitted.horizon}, {fitted.model_info.n_parameters} "
                 f"parameters, {_rounds_text(record)} in {seconds:.1f}s on {_threads_text(record)}, "
                 f"validation MSE {record.val_mse_scaled:.5f} (scaled)"]
    if fitted.calibration:
        calibration = fitted.calibration
        how = ", ".join(sorted(set(calibration.methods)))
        lines.append(f"intervals {', '.join(f'{v:g}' for v in calibration.levels)} %: calibrated on "
                     f"{calibration.windows} validation windows ({'conformalised quantiles' if how == 'cqr' else how})")
    if fitted.distillation:
        lines.append(distillation_line(fitted))
    return lines + [f"checkpoint: {output}"]


def distillation_line(fitted) -> str:
    """A distilled model against its teacher on its validation windows."""
    taught, gap = fitted.distillation, fitted.distillation.gap(fitted.backtest)
    teacher = f"teacher {taught.model} ({taught.teacher}, sha256 {taught.sha256[:12]}, weight {taught.weight:g})"
    if gap is None:
        return f"{teacher}: no validation windows to compare them on"
    return (f"{teacher}: validation MASE {taught.teacher_mase:.4f}, the student's {fitted.backtest.mase:.4f} "
            f"({gap:+.1%}); sMAPE {taught.teacher_smape:.3f} and {fitted.backtest.smape:.3f}")


def portfolio_lines(portfolio) -> list[str]:
    """The candidates auto tried, one line each: what became of it, its validation score, weight and time."""
    width = max(len(c.name) for c in portfolio.candidates)
    lines = [f"  {c.name:<{width}}  {c.status:<10}  "
             + (f"score {c.score:.4f}" if c.score is not None else "score -     ")
             + f"  weight {c.weight:.2f}  {c.seconds:6.1f}s" + (f"  ({c.note})" if c.note else "")
             for c in portfolio.candidates]
    return lines + [f"  {'ensemble':<{width}}  {'':<10}  score {portfolio.score:.4f}  ({portfolio.windows} validation "
                    f"windows, {portfolio.seconds:.0f} s of a {portfolio.time_budget:g} s budget)"]


def trial_line(row) -> str:
    """One line per finished trial of tune."""
    score = f"validation MSE {row.value:.5f}" if row.value is not None else row.state
    why = f" ({row.error})" if row.error else ""
    values = " ".join(f"{k}={fmt(v) if isinstance(v, float) else v}" for k, v in row.params.items())
    return f"trial {row.number}: {score}{why}  {values}"


def tune_lines(fitted, output: Path) -> list[str]:
    t = fitted.tuning
    default = f" (defaults: {t.default_val_mse_scaled:.5f})" if t.default_val_mse_scaled is not None else ""
    return [f"study {t.study}: {t.complete} complete, {t.pruned} pruned, {t.failed} failed; best trial "
            f"{t.best_trial}, validation MSE {t.best_val_mse_scaled:.5f}{default}",
            f"checkpoint: {output} (validation MSE {fitted.training.val_mse_scaled:.5f} on the refit)"]


def tune_document(fitted, output: Path, rows: list) -> dict[str, Any]:
    t = fitted.tuning
    return {"checkpoint": str(output), "study": t.study, "best_trial": t.best_trial, "best_params": t.best_params,
            "best_val_mse_scaled": t.best_val_mse_scaled, "default_val_mse_scaled": t.default_val_mse_scaled,
            "space": t.space, "trials": [r.to_dict() for r in rows]}


def export_lines(ckpt, exported, output: Path) -> list[str]:
    from ..export import PARITY_BATCHES

    size = len(exported.data)
    what = (f"int8 ({', '.join(exported.quantized)} quantized), {size / 1000:.1f} kB, {size / exported.fp32_bytes:.0%} "
            f"of the fp32 file's {exported.fp32_bytes / 1000:.1f} kB" if exported.int8 else
            f"fp32, {size / 1000:.1f} kB")
    graph = exported.graph_bytes
    what += f" (the model {graph / 1000:.1f} kB, its metadata {(size - graph) / 1000:.1f} kB)"
    return [f"{ckpt.name}: exported with the {exported.exporter} exporter in {exported.seconds:.1f}s; onnxruntime "
            f"matches torch at batches {' and '.join(map(str, PARITY_BATCHES))} within "
            f"{exported.max_difference:.2g} (limit {exported.tolerance:g}); {what}",
            f"onnx model: {output}"]


def export_document(ckpt, exported, output: Path, checkpoint: Path) -> dict[str, Any]:
    return {"onnx": str(output), "checkpoint": str(checkpoint), "model": ckpt.name, "bytes": len(exported.data),
            "fp32_bytes": exported.fp32_bytes, "graph_bytes": exported.graph_bytes,
            "seconds": exported.seconds,
            **{k: exported.document[k] for k in ("graph", "parity", "versions", "sha256")}}


def leaderboard_csv(rows: list[dict]) -> bytes:
    """compare --output FILE.csv: the leaderboard without the per-series scores."""
    import pandas as pd

    from ..data import write_csv

    return write_csv(pd.DataFrame(rows).drop(columns="series"))


def model_lines(entries: list[dict]) -> list[str]:
    """`seqcast models`: two lines per model."""
    return [f"{e['model']:<22} {e['family']:<16} {e['parameters']:>9,} params  {e['summary']}\n"
            f"{'':<22} {' '.join(f'{k}={v}' for k, v in e['defaults'].items()) or '(no hyperparameters)'}"
            f"  [window norm {e['window_norm']}"
            f"{'' if e['panel_window_norm'] == e['window_norm'] else ' (on a panel ' + e['panel_window_norm'] + ')'}"
            f", panel loss {e['panel_loss']}, covariates {', '.join(e['covariates']) or 'none'}"
            f"{_extra(e)}]"
            for e in entries]


def _extra(entry: dict) -> str:
    if not entry["extra"]:
        return ""
    return f", needs seqcast[{entry['extra']}]" + (" (not installed)" if entry["extra_missing"] else "")


def auto_line() -> str:
    """`seqcast models`: what fit's default ensembles."""
    from ..auto import PORTFOLIO

    return f"fit's default, --model auto, ensembles {', '.join(PORTFOLIO)} (choose with fit --candidates)"


def checkpoint_info(ckpt, current_format: int, to_meta) -> tuple[dict[str, Any], list[str]]:
    """info of a checkpoint: its JSON document and its lines."""
    document = {**to_meta(ckpt), "format": {"stored": ckpt.stored.format, "read_as": current_format}}
    return document, info_lines(ckpt, current_format)


def onnx_info(opened, ckpt, current_format: int) -> tuple[dict[str, Any], list[str]]:
    """info of an exported model (edge.open_model's): its JSON document, and the checkpoint's lines then the export's."""
    from dataclasses import replace

    document = opened.document
    meta = {**opened.meta, "format": {"stored": document["meta_format"], "read_as": current_format},
            "export": {k: document[k] for k in ("format", "checkpoint", "graph", "parity", "versions", "sha256")}}
    graph, parity, source = document["graph"], document["parity"], document["checkpoint"]
    precision = (f"int8 ({', '.join(graph['quantized'])} quantized" + (f"; {', '.join(graph['fp32'])} fp32)"
                 if graph["fp32"] else ")")) if graph["int8"] else "fp32"
    lines = info_lines(replace(ckpt, stored=replace(ckpt.stored, format=document["meta_format"])), current_format)
    lines += [
        f"exported    {graph['exporter']} exporter, {precision}; inputs {', '.join(graph['inputs'])}"
        + (f"; {graph['members']} members, median taken in numpy" if graph["members"] > 1 else ""),
        f"parity      within {parity['max_difference']:.2g} of torch at batches "
        f"{' and '.join(map(str, parity['batches']))} (limit {parity['tolerance']:g})",
        f"source      {source['path']} (sha256 {str(source['sha256'])[:16]}...)",
        f"onnx        torch {document['versions']['torch']}, onnx {document['versions']['onnx']}, onnxruntime "
        f"{document['versions']['onnxruntime']} at export",
    ]
    return meta, lines


def report_tables(out: Output, report: dict) -> None:
    from ..evaluation import METRICS

    units = "scaled values" if report["scaled"] else "original units"
    pooled = " (MSE, MAE, RMSE pooled on scaled values)" if report["pooled_scaled"] else ""
    overall = [*METRICS, *(["owa"] if "owa" in report["overall"][report["model"]] else [])]
    rows = [[name, *[values[m] for m in overall]] for name, values in report["overall"].items()]
    out.table(f"{report['model']}: {_windows_scored(report)}, stride {report['stride']}, {units}{pooled}"
              f"{_owa_note(report['overall'])}", ["model", *overall], rows)
    if len(report["targets"]) > 1:
        rows = [[target, name, *[values[m] for m in METRICS]]
                for target, by_model in report["targets"].items() for name, values in by_model.items()]
        out.table(f"per target ({units})", ["target", "model", *METRICS], rows)
    if len(report["series"]) > 1:
        rows = [[sid, values["windows"], *[values[report["model"]][m] for m in METRICS]]
                for sid, values in report["series"].items()]
        out.table("per series", ["series", "windows", *METRICS], rows)
    scores = _interval_columns(report["overall"][report["model"]])
    if scores:
        out.table(f"{report['model']}: intervals (coverage: share of actuals inside; width in {units}; "
                  "MSIS scaled like MASE)", scores, [[report["overall"][report["model"]][k] for k in scores]])

def _owa_note(overall: dict) -> str:
    """What the OWA column is relative to, when scores have one (one test window per series)."""
    return "; OWA relative to Naive2 (M4's seasonally adjusted repeat-last)" if "naive2" in overall else ""

def _interval_columns(values: dict) -> list[str]:
    """The interval and quantile scores among a model's metrics, level by level."""
    return [k for k in values if k.startswith(("coverage_", "width_", "msis_")) or k == "wql"]

def _windows_scored(report: dict) -> str:
    asked = report.get("windows_requested")
    if asked and report["windows"] < asked:
        return f"{report['windows']} windows scored ({asked} asked for)"
    return f"{report['windows']} windows"

def model_progress(out: Output, metric: str):
    """compare's callbacks: a progress bar or epoch lines per model, and its score when done (models
    trained in worker processes report only that)."""
    progress: dict = {}

    def on_model(name: str, row: Optional[dict]) -> None:
        if row is None:
            progress[name] = out.progress(name).__enter__()
        else:
            if name in progress:
                progress.pop(name).__exit__(None, None, None)
            out.say(f"{name}: {metric} {fmt(row[metric])}, {row['train_s']:.1f}s training")

    return on_model, lambda report: next(iter(progress.values())).epoch(report)

def leaderboard(out: Output, rows: list[dict], metric: str, split: Optional[str]) -> None:
    from ..evaluation import METRICS

    owa = ["owa"] if "owa" in rows[0] else []
    columns = ["model", "parameters", "train_s", "seconds_per_epoch", "epochs", "predict_ms", *METRICS, *owa,
               *_interval_columns(next((r for r in rows if _interval_columns(r)), {})), "windows"]
    units = "scaled values" if split else "original units"
    if rows[0].get("pooled_scaled"):
        units += "; MSE, MAE, RMSE pooled on scaled values"
    units += _owa_note({r["model"]: r for r in rows})
    out.table(f"leaderboard by {metric} ({_windows_scored(rows[0])}, {units})", columns,
              [[r.get(c) for c in columns] for r in rows])

def info_lines(ckpt, current_format: int) -> list[str]:
    m, d, p, t = ckpt.model_info, ckpt.schema, ckpt.policy, ckpt.training
    reading = [f"frequency {d.freq} ({'given' if p.freq_given else 'inferred'})", f"fill {p.fill}",
               f"decimal {p.decimal or '(inferred)'}"]
    if p.dayfirst is not None:
        reading.append("day first" if p.dayfirst else "month first")
    if p.date_format:
        reading.append(f"date format {p.date_format}")
    if p.wide:
        reading.append("wide (a row per series, a column per time)")
    settings = t.settings
    lines = [
        f"model       {m.name} ({m.n_parameters:,} parameters, window norm {m.window_norm})",
        f"params      {' '.join(f'{k}={v}' for k, v in m.params.items()) or '-'}",
        f"data        {d.source}: time {d.time_col or '(row number)'}, targets {', '.join(d.targets)}, "
        f"id {d.id_col or '-'}, {len(d.series)} series",
        f"reading     {', '.join(reading)}",
        f"windows     lookback {d.lookback}, horizon {d.horizon}",
        f"covariates  {_covariates_text(ckpt.covariates)}",
        f"trained on  {_seen_text(t.seen_until)}",
        f"training    {_rounds_text(t)}, {t.steps} steps, batch {settings.batch_size}, lr {settings.lr}, "
        f"loss {settings.loss}, seed {settings.seed}{_best_epoch_text(t.best_epoch, 'epoch' if t.rounds_are_epochs else 'round')}"
        + (f", continued from {t.init_from.path}" if t.init_from else ""),
        f"stopped     {_stopped_text(t)}",
        f"threads     {_threads_text(t)}",
        f"validation  MSE {t.val_mse_scaled:.6g} (scaled{', of the median' if m.quantiles else ''})",
        f"chosen      {_choices_text(ckpt.choices)}",
        f"transform   {ckpt.transform.describe() if ckpt.transform.floor or ckpt.transform.kind != 'none' else 'none (a checkpoint from before transforms: no floor at 0)'}",
        f"quantiles   {', '.join(f'{q:g}' for q in m.quantiles) + ' (pinball loss; 0.5 is the forecast)' if m.quantiles else '-'}",
        f"ensemble    {f'{m.ensemble} members (seeds {settings.seed}..{settings.seed + m.ensemble - 1}), median forecast' if m.ensemble > 1 else '-'}",
        f"intervals   {_intervals_text(ckpt.calibration)}",
        f"backtest    {_backtest_text(ckpt)}",
        f"tuned       {_tuning_text(ckpt.tuning)}",
        f"distilled   {distillation_line(ckpt) if ckpt.distillation else '- (seqcast distill trains one on a teacher)'}",
        f"int8-aware  {'yes: its weight matrices hold int8 values' if settings.qat else 'no'}",
        f"versions    seqcast {ckpt.versions.seqcast}, torch {ckpt.versions.torch}",
    ]
    if m.members:
        count = f"{len(m.members)} model{'s' if len(m.members) != 1 else ''}"
        lines[0] = f"model       auto (a weighted ensemble of {count}, {m.n_parameters:,} parameters)"
        lines[1:1] = [f"member      {x.name} weight {x.weight:.2f}, window norm {x.window_norm}, loss {x.loss}"
                      + "".join(f" {k}={v}" for k, v in x.params.items())
                      + (f"; chosen: {_choices_text(x.choices)}" if x.choices else "") for x in m.members]
        lines += ["portfolio", *portfolio_lines(ckpt.portfolio)]
    lines += [f"warning     {w}" for w in t.warnings]
    lines += [f"note        {n}" for n in ckpt.notes]  # what fit said: how it read the data, what it decided
    if ckpt.stored.format != current_format:
        lines.append(f"format      {ckpt.stored.format}, upgraded to {current_format} on reading "
                     "(refit to store the newer format)")
    return lines

def _choices_text(choices) -> str:
    if not choices:
        return "- (the declared or the given transform, window norm and loss; fit probes them when they are auto)"
    from ..choosing import describe

    return describe(choices)

def _covariates_text(covariates) -> str:
    if not covariates.columns:
        return "- (fit --past-cols, --future-cols, --static-cols, --calendar add them)"
    parts = []
    for kind in ("past", "calendar", "future", "static"):
        columns = covariates.of(kind)
        if columns:
            names = [c.name + (f" ({len(c.categories)} categories)" if c.categories else "") for c in columns]
            parts.append(f"{kind} {', '.join(names)}")
    return "; ".join(parts)

def _tuning_text(tuning) -> str:
    if tuning is None:
        return "- (seqcast tune searches the hyperparameters)"
    default = (f", defaults {tuning.default_val_mse_scaled:.6g}" if tuning.default_val_mse_scaled is not None else "")
    where = f" in {tuning.storage}" if tuning.storage else ""
    return (f"study {tuning.study}{where}: trial {tuning.best_trial} of {tuning.trials} ({tuning.complete} complete, "
            f"{tuning.pruned} pruned, {tuning.failed} failed), validation MSE {tuning.best_val_mse_scaled:.6g}{default}")

def _intervals_text(calibration) -> str:
    if calibration is None:
        return "- (fit --level 80,95 adds them)"
    kinds = {"residual": "around the forecast", "cqr": "conformalised quantiles"}
    levels = ", ".join(f"{v:g} % ({kinds[how]})" for v, how in zip(calibration.levels, calibration.methods))
    return f"{levels}; calibrated on {calibration.windows} validation windows"

def _backtest_text(ckpt) -> str:
    backtest = ckpt.backtest
    if backtest is None:
        return "- (no validation windows scored at fit; seqcast monitor then has no error to compare with)"
    coverage = "".join(f", coverage {v:g} % {c:.3f}" for v, c in zip(ckpt.calibration.levels, backtest.coverage)) \
        if ckpt.calibration else ""
    return (f"MASE {backtest.mase:.4g}, sMAPE {backtest.smape:.4g}, bias {backtest.bias:+.2f}{coverage} on "
            f"{backtest.windows} validation windows (season {backtest.season})")

def _seen_text(seen) -> str:
    if seen is None:
        return "(not recorded by this checkpoint's format)"
    last = sorted(set(map(str, seen.values())))
    span = last[0] if len(last) == 1 else f"{last[0]} .. {last[-1]}"
    return f"rows up to {span}" + (f" ({len(seen)} series)" if len(seen) > 1 else "")

def _best_epoch_text(best, unit: str = "epoch") -> str:
    if best is None:
        return ""
    if best == 0:
        return f"; kept the starting weights (no {unit} beat them on validation)"
    return f"; kept {unit} {best}"

def _rounds_text(t) -> str:
    """Validation rounds: "4 epochs", or "4 rounds of 250 steps" when an epoch was longer than a round."""
    if t.rounds_are_epochs:
        return f"{t.epochs_run} epochs"
    return f"{t.epochs_run} rounds of {t.round_steps} steps (epochs of {t.steps_per_epoch})"

def _stopped_text(t) -> str:
    from ..training import STOPPED

    if t.stopped is None:
        return "(not recorded by this checkpoint's format)"
    text = STOPPED.get(t.stopped, t.stopped)
    return f"{text} (--time-budget {t.settings.time_budget:g} s)" if t.stopped == "time_budget" else text

def _threads_text(t) -> str:
    threads = t.settings.threads
    if not threads:
        return "(not recorded by this checkpoint's format)"
    each = f"{threads} thread{'s' if threads > 1 else ''}"
    return each if t.world_size == 1 else f"{t.world_size} processes (torchrun, data parallel) of {each} each"


MONITOR_ROWS = 30  # series rows the monitor table shows (flagged first); --json has all


def monitor_tables(out, report) -> None:
    """``seqcast monitor``'s report as tables on stdout: the run, overall, the series (flagged first), drift."""
    checkpoint, runs = report["checkpoint"], report["window"]
    what = (f"runs {runs[0]}..{runs[-1]} ({len(runs)} of {report['model_runs']} by this model)" if runs else
            "no run has actuals due yet")
    lines = [f"record    {report['record']}: {report['runs']} runs; model {checkpoint['model']} "
             f"({checkpoint['checkpoint']}, {checkpoint['sha256'][:12]})",
             f"actuals   {report['actuals']}, up to {report['newest_actual']}",
             f"window    {what}"]
    backtest = report["backtest"]
    lines.append(f"backtest  MASE {backtest['mase']:.4g}, sMAPE {backtest['smape']:.4g} on {backtest['windows']} "
                 "validation windows at fit" if backtest else "backtest  - (the checkpoint has none: no error drift is judged)")
    out.lines(lines)
    overall, keys = report["overall"], [f"{level:.10g}" for level in report["levels"]]
    if overall is None:
        out.lines(["scored    nothing yet: no recorded forecast has its actuals in this file"])
    else:
        # MASE over the window; the latest MASE (a series': its latest target times) and what it is held to
        # (overall: the fit's backtest; a series: its earlier target times, or its backtest)
        columns = ["", "forecasts", "points", "MASE", "latest", "held to", "ratio", "sMAPE", "bias",
                   *(f"cov {k}" for k in keys), "flags"]
        rows = [["overall", overall["forecasts"], overall["points"], overall["mase"], overall["mase"],
                 overall.get("backtest_mase"), overall.get("error_ratio"), overall["smape"], overall["bias"],
                 *(overall[f"coverage_{k}"] for k in keys), ""]]
        table = sorted(report["series"], key=lambda r: (not r["flags"], not r["watch"]))
        several = len({r["target"] for r in table}) > 1
        for row in table[:MONITOR_ROWS]:
            reference = row["reference_mase"]
            rows.append([row["series"] + (f" {row['target']}" if several else ""), row["forecasts"], row["points"],
                         row["mase"], row["recent_mase"], reference,
                         row["recent_mase"] / reference if reference else None, row["smape"], row["bias"],
                         *(row[f"coverage_{k}"] for k in keys),
                         "; ".join([*(flag.split(":")[0] for flag in row["flags"]),
                                    *(f"watch {note.split(':')[0]}" for note in row["watch"])])])
        more = len(table) - MONITOR_ROWS
        out.table(f"recorded forecasts scored against their actuals{f' ({more} more series in --json)' if more > 0 else ''}",
                  columns, rows)
    out.lines([f"drift     {line}" for line in report["drift"]] or ["drift     none found"])
    if report["stale"]:
        out.lines([f"stale     {line}" for line in report["stale"]])
    if report["watch"]:
        out.lines([f"watch     {line}" for line in report["watch"]])


def partitioned(out, done, json_out: bool) -> None:
    """What ``predict --workers`` wrote: a line on stderr, or the summary as JSON on stdout."""
    from .output import to_json

    summary = {"output": str(done.output), "partitions": done.partitions, "series": done.series,
               "forecast_rows": done.rows, "seconds": round(done.seconds, 3)}
    if json_out:
        out.emit(to_json(summary), "-")
    out.say(f"{done.rows} forecast rows for {done.series} series in {done.partitions} partitions, written to "
            f"{done.output}/ in {done.seconds:.1f}s")
