"""A million series on one machine (issue 33): `python benchmarks/scale.py --million`.

Data (generated once into WORK/million, seeded, reused while the spec matches): 1,000,000 hourly series
x 60 rows (`unique_id, ds, y`: daily season, level and noise differing by series, start times staggered),
written as one Parquet file (`train.parquet`, row groups of 1M rows), as a folder of 8 Parquet files
(`parts/`, the series split between them) and as CSV (`train.csv`), with the next 24 hours of every series
held out (`test.parquet`) to score the forecasts.

Every step is one child process (`python -m seqcast ...`), timed, its peak RSS from GNU time (the
`measured` launcher of scale.py), threads pinned to --threads for all:
- load: `seqcast.load_series` of the Parquet file, of the Parquet folder and of the CSV (in-process time);
- naive, nlinear: `seqcast fit train.parquet --model M --horizon 24` at defaults, then
  `seqcast predict M.ckpt train.parquet -o M.parquet`; the forecast's MASE on the held-out day against
  the seasonal naive (period 24) is computed here;
- workers (when --workers is given): `seqcast predict M.ckpt parts/ -o out/ --workers 1` and `--workers N`
  alternated A B A B, the speed-up of N workers over one.
Results: benchmarks/results/scale_million.{json,md}; each child's output under WORK/million/logs/.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import RESULTS, log, run_child  # noqa: E402  (the launcher with peak RSS, shared)

SERIES, LENGTH, HORIZON, SEED, PARTS = 1_000_000, 60, 24, 33, 8
TARGETS = {"load_parquet": 60, "load_csv": 180, "naive": 120, "nlinear": 600, "rss_mb": 6 * 1024, "workers": 1.6}

LOAD = """\
import json, sys, time
from seqcast import load_series
t = time.perf_counter()
s = load_series(sys.argv[1])
print(json.dumps({"load_s": time.perf_counter() - t, "series": len(s.series), "rows": int(s.bounds[-1])}))
"""


def generate(folder: Path, series: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv
    import pyarrow.parquet as pq

    spec = {"series": series, "length": LENGTH, "horizon": HORIZON, "seed": SEED, "parts": PARTS, "version": 1}
    marker = folder / "spec.json"
    if marker.exists() and json.loads(marker.read_text()) == spec:
        return
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    total = LENGTH + HORIZON
    level = rng.uniform(5, 50, (series, 1))
    amplitude = level * rng.uniform(0.05, 0.4, (series, 1))
    phase = rng.uniform(0, 2 * np.pi, (series, 1))
    t = np.arange(total)[None, :]
    noise = rng.normal(0, 1, (series, total)) * amplitude * rng.uniform(0.05, 0.3, (series, 1))
    y = np.round(level + amplitude * np.sin(2 * np.pi * t / 24 + phase) + noise, 3)
    start = np.datetime64("2024-01-01T00", "h") + rng.integers(0, 24 * 30, series).astype("timedelta64[h]")
    times = (start[:, None] + np.arange(total).astype("timedelta64[h]")).astype("datetime64[us]")
    ids = np.char.add("s", np.char.zfill(np.arange(series).astype(str), 7))

    def table(rows: slice, steps: slice) -> pa.Table:
        return pa.table({"unique_id": pa.array(np.repeat(ids[rows], steps.stop - steps.start)),
                         "ds": pa.array(times[rows, steps].reshape(-1)), "y": pa.array(y[rows, steps].reshape(-1))})

    train = table(slice(0, series), slice(0, LENGTH))
    pq.write_table(train, folder / "train.parquet", row_group_size=1 << 20)
    pyarrow.csv.write_csv(train, folder / "train.csv", pyarrow.csv.WriteOptions(quoting_style="none"))
    parts = folder / "parts"
    parts.mkdir(exist_ok=True)
    edges = np.linspace(0, series, PARTS + 1).astype(int)
    for k in range(PARTS):
        pq.write_table(table(slice(edges[k], edges[k + 1]), slice(0, LENGTH)), parts / f"part-{k:03d}.parquet",
                       row_group_size=1 << 20)
    test = table(slice(0, series), slice(LENGTH, total))
    pq.write_table(test.append_column("snaive", pa.array(y[:, LENGTH - 24 : LENGTH].reshape(-1))),
                   folder / "test.parquet")
    scale = np.abs(y[:, 24:LENGTH] - y[:, : LENGTH - 24]).mean(axis=1)  # the in-sample seasonal naive's error
    np.save(folder / "mase_scale.npy", scale)
    marker.write_text(json.dumps(spec))
    log(f"generated {series:,} series x {LENGTH} rows in {time.perf_counter() - started:.0f}s")


def mase(folder: Path, forecast: Path) -> dict:
    """MASE (seasonal scale, period 24) of the forecast and of the seasonal naive on the held-out day."""
    import numpy as np
    import pandas as pd

    held = pd.read_parquet(folder / "test.parquet")
    made = pd.read_parquet(forecast, columns=["series", "timestamp", "forecast"])
    joined = held.merge(made, left_on=["unique_id", "ds"], right_on=["series", "timestamp"], how="left")
    scale = np.repeat(np.load(folder / "mase_scale.npy"), HORIZON)
    out = {"missing": int(joined["forecast"].isna().sum())}
    for name in ("forecast", "snaive"):
        out[name] = float(np.nanmean(np.abs(joined[name] - joined["y"]) / scale))
    out["relative"] = out["forecast"] / out["snaive"]
    return out


def run(args) -> None:
    work = Path(args.work) / "million"
    folder = work / "data"
    generate(folder, args.series)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads))
    python = [sys.executable]
    logs = work / "logs"
    rows: dict[str, dict] = {}

    def child(label: str, command: list[str]) -> dict:
        log(f"{label}: {' '.join(command[2:])[:160]}")
        result = run_child(command, args.timeout, env, logs / f"{label}.log", cwd=work)
        log(f"  {result['status']} in {result['wall_s']:.1f}s, peak {result['rss_mb']:.0f} MB")
        return result

    for label, path in (("load_parquet", "train.parquet"), ("load_folder", "parts"), ("load_csv", "train.csv")):
        result = child(label, python + ["-c", LOAD, str(folder / path)])
        loaded = json.loads(result["stdout"] or "{}") if result["status"] == "ok" else {}
        rows[label] = {"wall_s": result["wall_s"], "rss_mb": result["rss_mb"], "status": result["status"], **loaded}
    for model in args.models.split(","):
        ckpt, forecast = work / f"{model}.ckpt", work / f"{model}.parquet"
        fit = child(f"fit_{model}", python + ["-m", "seqcast", "fit", str(folder / "train.parquet"), "--model", model,
                                              "--horizon", str(HORIZON), "-o", str(ckpt), "--force",
                                              "--threads", str(args.threads)])
        predict = child(f"predict_{model}", python + ["-m", "seqcast", "predict", str(ckpt),
                                                      str(folder / "train.parquet"), "-o", str(forecast)])
        row = {"fit_s": fit["wall_s"], "predict_s": predict["wall_s"], "fit_rss_mb": fit["rss_mb"],
               "predict_rss_mb": predict["rss_mb"], "status": f"{fit['status']}/{predict['status']}"}
        if predict["status"] == "ok":
            row.update(mase(folder, forecast))
        rows[model] = row
    if args.workers:
        ckpt = work / f"{args.models.split(',')[0]}.ckpt"
        times: dict[int, list[float]] = {1: [], args.workers: []}
        for _ in range(args.repeats):
            for n in (1, args.workers):
                result = child(f"workers_{n}", python + ["-m", "seqcast", "predict", str(ckpt), str(folder / "parts"),
                                                         "-o", str(work / f"by_{n}"), "--workers", str(n)])
                times[n].append(result["wall_s"] if result["status"] == "ok" else float("nan"))
        rows["workers"] = {"one_s": statistics.median(times[1]), "many_s": statistics.median(times[args.workers]),
                           "workers": args.workers, "rounds": times}
        rows["workers"]["speedup"] = rows["workers"]["one_s"] / rows["workers"]["many_s"]
    out = RESULTS / "scale_million"
    out.with_suffix(".json").write_text(json.dumps({"series": args.series, "threads": args.threads, "rows": rows},
                                                   indent=1, default=str))
    out.with_suffix(".md").write_text(markdown(rows, args))
    log(f"wrote {out}.md")


def markdown(rows: dict, args) -> str:
    def met(value, limit, below=True):
        if value is None or value != value:
            return "not run"
        return "met" if (value < limit if below else value >= limit) else "missed"

    lines = [f"# A million series ({args.series:,} x {LENGTH} hourly rows, {args.threads} thread(s))", "",
             "| step | wall s | peak RSS MB | target | result |", "|---|---|---|---|---|"]
    for label, what, limit in (("load_parquet", "load, one Parquet file", TARGETS["load_parquet"]),
                               ("load_folder", "load, a folder of 8 Parquet files", TARGETS["load_parquet"]),
                               ("load_csv", "load, CSV", TARGETS["load_csv"])):
        row = rows.get(label, {})
        value = row.get("load_s")
        lines.append(f"| {what} (in-process; whole process {row.get('wall_s', float('nan')):.1f} s) | "
                     f"{value if value is None else round(value, 1)} | {row.get('rss_mb', 0):.0f} | < {limit} s | "
                     f"{met(value, limit)} |")
    for model in args.models.split(","):
        row = rows.get(model, {})
        total = row.get("fit_s", float("nan")) + row.get("predict_s", float("nan"))
        limit = TARGETS.get(model, TARGETS["nlinear"])
        peak = max(row.get("fit_rss_mb", 0), row.get("predict_rss_mb", 0))
        lines.append(f"| {model}: fit {row.get('fit_s', float('nan')):.1f} s + predict "
                     f"{row.get('predict_s', float('nan')):.1f} s (MASE {row.get('forecast', float('nan')):.3f}, "
                     f"seasonal naive {row.get('snaive', float('nan')):.3f}) | {total:.1f} | {peak:.0f} | < {limit} s | "
                     f"{met(total, limit)} |")
    peak = max([r.get(k, 0) for r in rows.values() for k in ("rss_mb", "fit_rss_mb", "predict_rss_mb")] or [0])
    lines.append(f"| peak RSS of every step | | {peak:.0f} | < {TARGETS['rss_mb']} MB | {met(peak, TARGETS['rss_mb'])} |")
    if "workers" in rows:
        w = rows["workers"]
        lines.append(f"| predict over `parts/`, {w['workers']} workers against 1 (median of {args.repeats}, A B) | "
                     f"{w['many_s']:.1f} / {w['one_s']:.1f} | | >= 1.6x | {w['speedup']:.2f}x "
                     f"{met(w['speedup'], TARGETS['workers'], below=False)} |")
    return "\n".join(lines) + "\n"
