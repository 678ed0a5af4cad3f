"""Edge (issue 17): ONNX export, int8 and the torch-free predict, measured in one command.

    python benchmarks/edge.py [--rounds 7] [--work DIR] [--quick]
    python benchmarks/edge.py --distill [...]   # issue 34: distilled int8 students (benchmarks/edge_distill.py)

1. Cold `seqcast -q predict MODEL.onnx` of one series (the last 400 rows of ETTh1), whole process,
   against the same model's checkpoint: runs alternate A B A B, medians of --rounds, both with
   OMP_NUM_THREADS=1 (onnxruntime's session uses one thread by default, torch is held to one).
2. Peak RSS of both (/usr/bin/time -f %M; else getrusage of the child).
3. Per registered model at ETTh1's shapes (lookback 96, horizon 24, one channel, randomised weights):
   export seconds, graph nodes and file size with each exporter (dynamo and TorchScript), and the
   batch-1 forecast latency of onnxruntime (``edge.OnnxModel``) against torch eager on the predict
   path (``forecasting.run_model``), both on one thread: medians of 300 calls after 30 warm-up.
4. int8 against fp32 for lstm, transformer (lookback 96) and nlinear (lookback 336, as
   benchmarks/ett.py fits it, and 96): file sizes, and ETTh1 H=24 test MSE (the ETT protocol: split
   8640,2880,2880, OT, scaled values, every stride-1 test window) of torch, the fp32 and the int8 graph,
   all through ``evaluation.backtest``, where only the forward differs.

Writes benchmarks/results/edge.md, edge.csv (the per-model table) and edge.json (everything).
Checkpoints are fitted into --work (default: a temporary folder) and reused when already there.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = next(p for p in (ROOT.parent / "shared" / "data" / "ett" / "ETTh1.csv", ROOT / "sample_data" / "ETTh1.csv")
            if p.exists())
SPLIT = "8640,2880,2880"
HORIZON = 24
FITTED = {"lstm": 96, "transformer": 96, "nlinear": 336, "nlinear@96": 96}  # name -> lookback
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
SEQCAST = [sys.executable, "-m", "seqcast"]


def fit(work: Path, key: str) -> Path:
    name, lookback = key.split("@")[0], FITTED[key]
    path = work / f"{key.replace('@', '_L')}.ckpt"
    if not path.exists():
        subprocess.run([*SEQCAST, "-q", "fit", str(DATA), "--model", name, "--target", "OT", "--split", SPLIT,
                        "--lookback", str(lookback), "--horizon", str(HORIZON), "--seed", "0", "--threads", "1",
                        "--output", str(path)], check=True, env=ENV)
    return path


def export(checkpoint: Path, int8: bool) -> Path:
    path = checkpoint.with_suffix(".int8.onnx" if int8 else ".onnx")
    subprocess.run([*SEQCAST, "-q", "export", str(checkpoint), "--output", str(path), "--force",
                    *(["--int8"] if int8 else [])], check=True, env=ENV)
    return path


def wall(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=ENV)
    return time.perf_counter() - started


def peak_rss_mb(command: list[str]) -> float:
    if Path("/usr/bin/time").exists():
        done = subprocess.run(["/usr/bin/time", "-f", "%M", *command], check=True, capture_output=True, text=True,
                              env=ENV)
        return int(done.stderr.strip().splitlines()[-1]) / 1024
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", probe, *command], check=True, capture_output=True, text=True, env=ENV)
    return int(done.stdout.strip()) / 1024


def cold_predict(models: dict[str, Path], history: Path, rounds: int) -> dict:
    """Whole-process seconds of predict from the .onnx and from the checkpoint, alternating."""
    results = {}
    for key, checkpoint in models.items():
        onnx = checkpoint.with_suffix(".onnx")
        commands = {"onnx": [*SEQCAST, "-q", "predict", str(onnx), str(history)],
                    "checkpoint": [*SEQCAST, "-q", "predict", str(checkpoint), str(history)]}
        same = [subprocess.run(c, check=True, capture_output=True, env=ENV).stdout for c in commands.values()]
        times = {kind: [] for kind in commands}
        for _ in range(rounds):
            for kind, command in commands.items():
                times[kind].append(wall(command))
        medians = {kind: statistics.median(values) for kind, values in times.items()}
        results[key] = {"median_s": medians, "runs_s": times, "ratio": medians["onnx"] / medians["checkpoint"],
                        "rss_mb": {kind: peak_rss_mb(command) for kind, command in commands.items()},
                        "same_rows": same[0].count(b"\n") == same[1].count(b"\n")}
    return results


def per_model(names: list[str], calls: int) -> list[dict]:
    """Export seconds, nodes and sizes per exporter, and batch-1 latency of onnxruntime and torch eager."""
    import numpy as np
    import onnx
    import torch

    from seqcast import edge
    from seqcast import export as exporting
    from seqcast.forecasting import run_model
    from seqcast.build import create_model
    from seqcast.data import season_length
    from seqcast.registry import get_spec
    from seqcast.window_norm import WindowNorm

    torch.set_num_threads(1)
    rows = []
    for name in names:
        model_info = get_spec(name)
        torch.manual_seed(0)
        model = create_model(name, 96, HORIZON, 1)
        with torch.no_grad():  # every parameter non-zero, like a trained model's (zero heads included)
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        mode = model_info.capabilities.window_norm
        model = WindowNorm(model, mode, season_length("h") if mode == "season" else 1).eval()
        graph = exporting._Graph(model).eval()
        x = np.random.default_rng(0).normal(size=(1, 96, 1)).astype(np.float32)
        eager = _latency(lambda: run_model(model, x, None), calls)
        row = {"model": name, "declared": model_info.capabilities.onnx_exporter, "torch_eager_ms": eager}
        for exporter in ("dynamo", "torchscript"):
            started = time.perf_counter()
            try:
                proto = exporting._trace(graph, exporter, (torch.randn(2, 96, 1),), False, name)
            except Exception as exc:  # recorded: an exporter that cannot export this model
                row[f"{exporter}_error"] = str(exc)[:160]
                continue
            exporting._strip(proto)
            data = proto.SerializeToString()
            row[f"{exporter}_export_s"] = time.perf_counter() - started
            row[f"{exporter}_nodes"] = len(onnx.load_from_string(data).graph.node)
            row[f"{exporter}_bytes"] = len(data)
            run = edge.OnnxModel(edge.session(data, 1))
            with torch.no_grad():
                expected = model(torch.from_numpy(x)).numpy()
            row[f"{exporter}_difference"] = float(np.abs(run.forward_numpy(x) - expected).max())
            row[f"{exporter}_ort_ms"] = _latency(lambda: run.forward_numpy(x), calls)
        declared = model_info.capabilities.onnx_exporter
        if f"{declared}_bytes" in row:  # the declared graph quantized: bytes, what stays fp32, difference
            proto = exporting._trace(graph, declared, (torch.randn(2, 96, 1),), False, name)
            exporting._strip(proto)
            quantized, found, kept = exporting._quantize(proto.SerializeToString(), name)
            data = quantized.SerializeToString()
            row.update(int8_bytes=len(data), int8_ratio=len(data) / row[f"{declared}_bytes"],
                       int8_quantized="+".join(found), int8_fp32="+".join(kept),
                       int8_difference=float(np.abs(edge.OnnxModel(edge.session(data, 1)).forward_numpy(x)
                                                     - expected).max()) / max(1.0, float(np.abs(expected).max())))
        row["ort_ms"] = row.get(f"{declared}_ort_ms")
        row["ort_over_eager"] = row["ort_ms"] / eager if row["ort_ms"] else None
        rows.append(row)
        print(f"{name:22} eager {eager:7.3f} ms  ort {row['ort_ms'] or float('nan'):7.3f} ms  "
              f"({row['ort_over_eager'] or float('nan'):.3f}x)  dynamo {row.get('dynamo_export_s', float('nan')):5.1f} s "
              f"/ torchscript {row.get('torchscript_export_s', float('nan')):5.2f} s", flush=True)
    return rows


def _latency(call, calls: int) -> float:
    for _ in range(30):
        call()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def int8_accuracy(models: dict[str, Path]) -> dict:
    """File sizes and ETTh1 H=24 test MSE of torch, the fp32 graph and the int8 graph."""
    from seqcast import edge
    from seqcast.checkpoint import load
    from seqcast.data import load_series
    from seqcast.evaluation import EvalConfig, backtest
    from seqcast.forecasting import data_config
    from seqcast.windows import Split

    results = {}
    for key, checkpoint in models.items():
        torch_model = load(checkpoint)
        series = load_series(str(DATA), data_config(torch_model))
        config = EvalConfig(split=Split.parse(SPLIT))
        fp32, int8 = checkpoint.with_suffix(".onnx"), checkpoint.with_suffix(".int8.onnx")
        mse = {}
        for kind, forecaster in (("torch", torch_model), ("fp32", edge.load(fp32, record=True)),
                                 ("int8", edge.load(int8, record=True))):
            report = backtest(forecaster, series, config)
            mse[kind] = report["overall"][report["model"]]["mse"]
        document = edge.open_model(int8).document
        results[key] = {"lookback": FITTED[key], "fp32_bytes": fp32.stat().st_size, "int8_bytes": int8.stat().st_size,
                        "size_ratio": int8.stat().st_size / fp32.stat().st_size, "mse": mse,
                        "mse_change": mse["int8"] / mse["fp32"] - 1, "quantized": document["graph"]["quantized"],
                        "kept_fp32": document["graph"]["fp32"], "int8": document["graph"]["int8"],
                        "windows": report["windows"]}
        print(f"{key:12} fp32 {fp32.stat().st_size:8d} B  int8 {int8.stat().st_size:8d} B "
              f"({results[key]['size_ratio']:.1%})  MSE torch {mse['torch']:.5f} fp32 {mse['fp32']:.5f} "
              f"int8 {mse['int8']:.5f} ({results[key]['mse_change']:+.2%})", flush=True)
    return results


def write(results: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    rows = results["per_model"]
    with out.with_suffix(".csv").open("w", newline="") as f:
        columns = sorted({k for row in rows for k in row}, key=lambda k: (k != "model", k))
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    out.with_suffix(".md").write_text(markdown(results))


def _f(value, model_info: str = ".3f") -> str:
    return "-" if value is None else format(value, model_info)


RECURRENT = ("rnn", "lstm", "gru", "bilstm", "stacked_lstm")


def targets(results: dict) -> list[str]:
    """Issue 17's targets, each against what this run measured."""
    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"
    cold, sizes = results["cold"], results["int8"]
    latency = {r["model"]: r["ort_over_eager"] for r in results["per_model"] if r["model"] in RECURRENT}
    lines = ["## Targets (issue 17)", ""]
    for key, r in cold.items():
        seconds, ratio = r["median_s"]["onnx"], r["ratio"]
        lines.append(f"- cold predict of one series, whole process, {key}: {seconds:.2f} s (< 1.0 s: "
                     f"{verdict(seconds < 1.0)}), {ratio:.2f}x the checkpoint path (< 0.35x: {verdict(ratio < 0.35)})")
    for name, ratio in latency.items():
        lines.append(f"- batch-1 latency, onnxruntime over torch eager, {name}: {ratio:.3f} (< 0.1: {verdict(ratio < 0.1)})")
    for key, r in sizes.items():
        lines.append(f"- int8 size, {key.split('@')[0]} (lookback {r['lookback']}): {r['size_ratio']:.1%} of fp32 "
                     f"(<= 35 %: {verdict(r['size_ratio'] <= 0.35)}); test MSE change {r['mse_change']:+.2%} "
                     f"(<= 2 %: {verdict(abs(r['mse_change']) <= 0.02)})")
    for key, r in cold.items():
        lines.append(f"- peak RSS of the torch-free predict, {key}: {r['rss_mb']['onnx']:.0f} MB (< 150 MB: "
                     f"{verdict(r['rss_mb']['onnx'] < 150)})")
    return lines + [""]


def markdown(results: dict) -> str:
    lines = [f"# Edge: ONNX export and torch-free predict ({results['when']}, {results['machine']})", "",
             f"`python benchmarks/edge.py --rounds {results['rounds']}`; onnxruntime {results['versions']['onnxruntime']}, "
             f"torch {results['versions']['torch']}, one thread everywhere.", "", *targets(results),
             "## Cold predict of one series, whole process (medians)", "",
             "| model | onnx s | checkpoint s | ratio | peak RSS onnx MB | peak RSS checkpoint MB |", "|---|---|---|---|---|---|"]
    for key, r in results["cold"].items():
        lines.append(f"| {key} | {r['median_s']['onnx']:.3f} | {r['median_s']['checkpoint']:.3f} | {r['ratio']:.3f} | "
                     f"{r['rss_mb']['onnx']:.0f} | {r['rss_mb']['checkpoint']:.0f} |")
    lines += ["", "## int8 against fp32 (ETTh1, OT, H=24, test MSE on scaled values, all stride-1 windows)", "",
              "| model | lookback | fp32 bytes | int8 bytes | int8/fp32 | quantized | fp32 layers | MSE torch | MSE fp32 onnx | "
              "MSE int8 | change |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, r in results["int8"].items():
        lines.append(f"| {key.split('@')[0]} | {r['lookback']} | {r['fp32_bytes']} | {r['int8_bytes']} | "
                     f"{r['size_ratio']:.1%} | {', '.join(r['quantized']) or '-'} | {', '.join(r['kept_fp32']) or '-'} | "
                     f"{r['mse']['torch']:.5f} | {r['mse']['fp32']:.5f} | {r['mse']['int8']:.5f} | {r['mse_change']:+.2%} |")
    lines += ["", "## Per model: exporters, batch-1 latency and int8 (lookback 96, horizon 24, randomised weights)", "",
              "Sizes here are the graph alone (no seqcast metadata, about 2 kB in a file); the int8 difference is "
              "the largest |int8 - torch| over the forecast's scale (at least 1) on one random-walk window.", "",
              "| model | declared | dynamo s | dynamo nodes | torchscript s | torchscript nodes | torch eager ms | "
              "onnxruntime ms (declared) | ratio | dynamo graph ms | torchscript graph ms | int8/fp32 | int8 | fp32 "
              "under int8 | int8 difference |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["per_model"]:
        lines.append(
            f"| {r['model']} | {r['declared']} | {_f(r.get('dynamo_export_s'), '.2f') if 'dynamo_error' not in r else 'fails'} | "
            f"{r.get('dynamo_nodes', '-')} | "
            f"{_f(r.get('torchscript_export_s'), '.2f') if 'torchscript_error' not in r else 'fails'} | "
            f"{r.get('torchscript_nodes', '-')} | {r['torch_eager_ms']:.3f} | {_f(r['ort_ms'])} | "
            f"{_f(r['ort_over_eager'])} | {_f(r.get('dynamo_ort_ms'))} | {_f(r.get('torchscript_ort_ms'))} | "
            f"{_f(r.get('int8_ratio'), '.1%')} | {r.get('int8_quantized') or '-'} | {r.get('int8_fp32') or '-'} | "
            f"{_f(r.get('int8_difference'), '.2g')} |")
    errors = [f"- {r['model']}: {k.split('_')[0]} fails: {r[k]}" for r in results["per_model"] for k in r
              if k.endswith("_error")]
    return "\n".join(lines + ([""] + errors if errors else [])) + "\n"


def main() -> None:
    if "--distill" in sys.argv[1:]:  # the second part: distilled int8 students (edge_distill.py)
        import edge_distill

        return edge_distill.main([a for a in sys.argv[1:] if a != "--distill"])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=300, help="timed calls per latency")
    parser.add_argument("--work", type=Path, help="folder for the fitted checkpoints (kept, reused)")
    parser.add_argument("--quick", action="store_true", help="a few models in the per-model table, 3 rounds")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "edge")
    parser.add_argument("--render", action="store_true", help="only write OUT.md again from OUT.json")
    args = parser.parse_args()
    if args.render:
        args.out.with_suffix(".md").write_text(markdown(json.loads(args.out.with_suffix(".json").read_text())))
        return
    import onnxruntime
    import torch

    from seqcast.registry import list_models

    work = args.work or Path(tempfile.mkdtemp(prefix="seqcast-edge-"))
    work.mkdir(parents=True, exist_ok=True)
    rounds = 3 if args.quick else args.rounds
    models = {key: fit(work, key) for key in FITTED}
    for checkpoint in models.values():
        export(checkpoint, int8=False)
        export(checkpoint, int8=True)
    history = work / "history.csv"
    lines = DATA.read_text().splitlines(keepends=True)
    history.write_text("".join(lines[:1] + lines[-400:]))  # nlinear reads 336
    results = {"when": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
               "rounds": rounds, "versions": {"onnxruntime": onnxruntime.__version__,
                                              "torch": torch.__version__.split("+")[0]}}
    results["int8"] = int8_accuracy(models)
    results["cold"] = cold_predict({k: v for k, v in models.items() if "@" not in k}, history, rounds)
    for key, r in results["cold"].items():
        print(f"cold predict {key}: onnx {r['median_s']['onnx']:.3f} s, checkpoint {r['median_s']['checkpoint']:.3f} s "
              f"({r['ratio']:.3f}x); peak RSS {r['rss_mb']['onnx']:.0f} MB against {r['rss_mb']['checkpoint']:.0f} MB",
              flush=True)
    names = ["rnn", "lstm", "gru", "nlinear", "transformer"] if args.quick else list_models()
    results["per_model"] = per_model(names, args.calls)
    write(results, args.out)
    print(f"wrote {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
