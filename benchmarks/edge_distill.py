"""Edge, second part (issue 34): an auto ensemble distilled into a small int8 student, on real panels.

    python benchmarks/edge.py --distill [--work DIR] [--panels m4,m3,ett] [--students gru,nlinear] [--rounds 7]

Per panel (M4 Weekly, M3 Monthly, ETTh1 H=24 under the ETT protocol), with every process on one thread:

1. The teacher: ``seqcast fit --model auto`` at its defaults (kept in --work and reused).
2. Per student model: ``seqcast distill TEACHER DATA --model S --max-bytes 50000`` (the student sized to
   a 50 KB int8 graph, trained aware of int8 weights, teacher weight at its default), and the same
   student without a teacher: ``seqcast fit --model S --qat`` at the distilled student's width and
   lookback. Both exported with ``seqcast export --int8``.
3. Test scores of the teacher (its checkpoint) and of both int8 students (their .onnx files, torch-free):
   M4 Weekly and M3 Monthly as their competitions scored them (sMAPE, MASE, OWA against Naive2: the
   same measures as benchmarks/m4.py and benchmarks/m3.py); ETTh1 the protocol's test MSE on scaled
   values over every stride-1 test window (benchmarks/edge.py's ``int8_accuracy``).
4. Cold predict of each int8 student on one series (the first series' history; for ETT the last 400
   rows), whole process: medians of --rounds, and peak RSS.

Targets: a student of at most 50 KB of int8 graph within 5 % of its teacher's OWA (M4, M3) and better
than the same student without a teacher; ETTh1 within 3 % of the teacher's test MSE; cold predict under
0.5 s and 100 MB. Writes benchmarks/results/edge_distill.md and .json.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]
import m3  # noqa: E402
import m4  # noqa: E402
from edge import ENV, SEQCAST, peak_rss_mb, wall  # noqa: E402

ETT = ROOT.parent / "shared" / "data" / "ett" / "ETTh1.csv"
SPLIT = "8640,2880,2880"
MAX_BYTES = 50_000
PANELS = {
    "m4": {"horizon": 13, "args": ["--horizon", "13", "--id-col", "unique_id"]},
    "m3": {"horizon": 18, "args": ["--horizon", "18", "--id-col", "unique_id", "--time-col", "ds", "--target", "y"]},
    "ett": {"horizon": 24, "args": ["--target", "OT", "--split", SPLIT, "--horizon", "24"],
            "teacher": ["--lookback", "96", "--transform", "none", "--allow-negative"]},
}
STUDENT_ARGS = {"ett": ["--transform", "none"]}  # the protocol scores untransformed, scaled values


def run(*arguments: str) -> tuple[str, float]:
    started = time.perf_counter()
    done = subprocess.run([*SEQCAST, *arguments], capture_output=True, text=True, env=ENV)
    if done.returncode:
        raise SystemExit(f"seqcast {' '.join(arguments)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout, time.perf_counter() - started


class Panel:
    """One panel's training file, test values and scoring."""

    def __init__(self, name: str, work: Path):
        self.name, self.work, self.horizon = name, work, PANELS[name]["horizon"]
        if name == "m4":
            train, self.test = m4.load_panel()
            self.data = work / "m4-train.csv"
            if not self.data.exists():
                m4.write_long(train, self.data)
            self.scale, self.history = m4.scales(train), train
        elif name == "m3":
            frame, self.history, self.test = m3.load(m3.DATA, "monthly", False)
            self.data = work / "m3-monthly-train.csv"
            if not self.data.exists():
                frame.to_csv(self.data, index=False)
            season = m3.FREQS["monthly"][1]
            self.scale = {s: float(np.mean(np.abs(v[season:] - v[:-season]))) for s, v in self.history.items()}
            reference = m3.score(self.test, self.scale, {s: m3.naive2(v[:, None], self.horizon, season)[:, 0]
                                                         for s, v in self.history.items()})
            self.naive2 = reference
        else:
            self.data = ETT

    def score(self, model: Path) -> dict:
        """Test scores of a checkpoint or an .onnx file."""
        if self.name == "ett":
            return {"mse": ett_mse(model)}
        forecast = self.work / f"{model.name}.forecast.csv"
        run("-q", "predict", str(model), str(self.data), "--output", str(forecast), "--threads", "1")
        if self.name == "m4":
            values, _ = m4.read_forecast(forecast, self.test)
            return m4.score(self.test, self.scale, values)
        values = m3.read_forecast(forecast, list(self.test), self.horizon)
        row = m3.score(self.test, self.scale, values)
        return row | {"owa": m3.owa(row["smape"], row["mase"], self.naive2["smape"], self.naive2["mase"])}

    def one_series(self) -> Path:
        """A file of one series' history: what an edge device forecasts."""
        path = self.work / f"{self.name}-one-series.csv"
        if self.name == "ett":
            lines = ETT.read_text().splitlines(keepends=True)
            path.write_text("".join(lines[:1] + lines[-400:]))
        else:
            frame = pd.read_csv(self.data, dtype={"unique_id": str})
            frame[frame["unique_id"] == frame["unique_id"].iloc[0]].to_csv(path, index=False)
        return path


def ett_mse(model: Path) -> float:
    from seqcast import edge
    from seqcast.checkpoint import load
    from seqcast.data import load_series
    from seqcast.evaluation import EvalConfig, backtest
    from seqcast.forecasting import data_config
    from seqcast.windows import Split

    forecaster = edge.load(model, record=True) if model.suffix == ".onnx" else load(model)
    series = load_series(str(ETT), data_config(forecaster))
    report = backtest(forecaster, series, EvalConfig(split=Split.parse(SPLIT)))
    return float(report["overall"][report["model"]]["mse"])


def teacher(panel: Panel) -> Path:
    path = panel.work / f"{panel.name}-teacher.ckpt"
    if not path.exists():
        run("-q", "fit", str(panel.data), *PANELS[panel.name]["args"], *PANELS[panel.name].get("teacher", []),
            "--model", "auto", "--threads", "1", "--seed", "0", "--output", str(path))
    return path


def students(panel: Panel, taught_by: Path, name: str) -> dict:
    """The distilled student and the same student alone: fitted, exported int8, described."""
    from seqcast.checkpoint import load

    distilled = panel.work / f"{panel.name}-{name}-distilled.ckpt"
    alone = panel.work / f"{panel.name}-{name}-alone.ckpt"
    seconds = {}
    if not distilled.exists():
        _, seconds["distill"] = run("-q", "distill", str(taught_by), str(panel.data), "--model", name, "--max-bytes",
                                    str(MAX_BYTES), "--threads", "1", "--seed", "0", "--output", str(distilled),
                                    *STUDENT_ARGS.get(panel.name, []))
    student = load(distilled)
    params = [f"{k}={v}" for k, v in student.model_info.params.items() if k in ("hidden_size", "out_channels")]
    if not alone.exists():
        widths = [a for p in params for a in ("--param", p)]
        _, seconds["alone"] = run("-q", "fit", str(panel.data), *PANELS[panel.name]["args"], "--model", name, *widths,
                                  "--lookback",
                                  str(student.lookback), "--qat", "--threads", "1", "--seed", "0", "--output",
                                  str(alone), *STUDENT_ARGS.get(panel.name, []))
    result = {"params": dict(student.model_info.params), "lookback": student.lookback,
              "parameters": student.model_info.n_parameters, "seconds": seconds,
              "validation": {"teacher_mase": student.distillation.teacher_mase,
                             "student_mase": student.backtest.mase if student.backtest else None,
                             "alone_mase": load(alone).backtest.mase if load(alone).backtest else None,
                             "taught": student.distillation.taught, "windows": student.distillation.windows}}
    for kind, path in (("distilled", distilled), ("alone", alone)):
        onnx = path.with_suffix(".int8.onnx")
        said, _ = run("-q", "export", str(path), "--int8", "--force", "--json", "--output", str(onnx))
        document = json.loads(said)
        result[kind] = {"file_bytes": document["bytes"], "graph_bytes": document["graph_bytes"],
                        "quantized": document["graph"]["quantized"],
                        "kept_fp32": document["graph"]["fp32"], "parity": document["parity"]["max_difference"],
                        "test": panel.score(onnx), "test_checkpoint": panel.score(path), "onnx": str(onnx)}
    return result


def cold(onnx: Path, history: Path, rounds: int) -> dict:
    command = [*SEQCAST, "-q", "predict", str(onnx), str(history)]
    subprocess.run(command, check=True, capture_output=True, env=ENV)
    times = [wall(command) for _ in range(rounds)]
    return {"median_s": statistics.median(times), "runs_s": times, "rss_mb": peak_rss_mb(command)}


def main(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "results" / "tmp" / "edge_distill")
    parser.add_argument("--panels", default="ett,m3,m4")
    parser.add_argument("--students", default="gru,nlinear")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "edge_distill")
    parser.add_argument("--render", action="store_true", help="only write OUT.md again from OUT.json")
    args = parser.parse_args(argv)
    if args.render:
        args.out.with_suffix(".md").write_text(markdown(json.loads(args.out.with_suffix(".json").read_text())))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    out_json = args.out.with_suffix(".json")
    results = json.loads(out_json.read_text()) if out_json.exists() else {}
    results.update({"when": time.strftime("%Y-%m-%d"), "commit": m4.commit(), "max_bytes": MAX_BYTES})
    for name in args.panels.split(","):
        panel = Panel(name, args.work)
        taught_by = teacher(panel)
        entry = results.setdefault("panels", {}).setdefault(name, {})
        entry["teacher"] = panel.score(taught_by)
        print(f"{name}: teacher {entry['teacher']}", flush=True)
        for student in args.students.split(","):
            entry[student] = students(panel, taught_by, student)
            entry[student]["cold"] = cold(Path(entry[student]["distilled"]["onnx"]), panel.one_series(), args.rounds)
            print(f"{name} {student}: {json.dumps(entry[student])}", flush=True)
            out_json.write_text(json.dumps(results, indent=1))
    out_json.write_text(json.dumps(results, indent=1))
    args.out.with_suffix(".md").write_text(markdown(results))
    print(f"wrote {args.out.with_suffix('.md')}")


def markdown(results: dict) -> str:
    measure = {"m4": "owa", "m3": "owa", "ett": "mse"}
    limit = {"m4": 0.05, "m3": 0.05, "ett": 0.03}
    lines = [f"# Edge: distilled int8 students against their teachers ({results['when']}, commit {results['commit']})",
             "", "`python benchmarks/edge.py --distill`; every process on one thread. Teacher: `fit --model auto` at "
             f"its defaults. Student: `distill --max-bytes {results['max_bytes']}` (int8-aware), exported "
             "`--int8` and scored from the .onnx file; alone: the same student (`fit --qat`, same width and "
             "lookback) without a teacher.", "",
             "| panel | student | width | int8 graph | file | teacher | distilled int8 | ratio | alone int8 "
             "| cold predict | peak RSS |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    verdicts = []
    for panel, entry in results.get("panels", {}).items():
        key = measure[panel]
        for student, r in entry.items():
            if student == "teacher":
                continue
            teacher, mine, alone = entry["teacher"][key], r["distilled"]["test"][key], r["alone"]["test"][key]
            width = ", ".join(f"{k} {v}" for k, v in r["params"].items() if k in ("hidden_size", "out_channels"))
            lines.append(f"| {panel} | {student} | {width or '-'} L={r['lookback']} | "
                         f"{r['distilled']['graph_bytes'] / 1000:.1f} kB | {r['distilled']['file_bytes'] / 1000:.1f} kB | "
                         f"{key} {teacher:.4f} | {mine:.4f} | "
                         f"{mine / teacher:.3f} | {alone:.4f} | {r['cold']['median_s']:.3f} s | {r['cold']['rss_mb']:.0f} MB |")
            ok = lambda good: "met" if good else "**not met**"  # noqa: E731
            verdicts.append(f"- {panel} {student}: within {limit[panel]:.0%} of the teacher's {key.upper()}: "
                            f"{mine / teacher - 1:+.1%} ({ok(mine <= teacher * (1 + limit[panel]))}); better than alone "
                            f"({mine:.4f} against {alone:.4f}: {ok(mine < alone)}); at most 50 KB of int8 graph "
                            f"({ok(r['distilled']['graph_bytes'] <= results['max_bytes'])}); cold predict "
                            f"{r['cold']['median_s']:.3f} s ({ok(r['cold']['median_s'] < 0.5)}) and "
                            f"{r['cold']['rss_mb']:.0f} MB ({ok(r['cold']['rss_mb'] < 100)})")
    return "\n".join(lines + ["", "## Targets (issue 34)", ""] + verdicts) + "\n"


if __name__ == "__main__":
    main(sys.argv[1:])
