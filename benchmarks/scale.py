"""Scale benchmark (issue 13): load, fit, predict and evaluate on generated panels of real size, through
seqcast's own CLI, with peak memory; and the same end-to-end GRU job through neuralforecast, alternated.

    python benchmarks/scale.py --quick --peer-python /tmp/nfenv/bin/python   # small panels, gru, 20 steps: minutes
    python benchmarks/scale.py --peer-python /tmp/nfenv/bin/python  # the full run (see docs/benchmarks.md)
    python benchmarks/scale.py --only load,predict --repeats 3      # some steps only
    python benchmarks/scale.py --million --workers 2                # 1,000,000 series x 60 rows (issue 33)

Data (generated once into --work, seeded, reused while the spec matches): hourly long-format panels
`unique_id,ds,y` (daily and weekly seasons, a small trend, AR(1) noise; level, amplitudes, phases and
start times differ by series). Each dataset is written twice: `train.csv` with the nominal size
(series x length: 400 x 875 = 350k rows for the fit comparison, 1k x 1k, 10k x 200, 50k x 40, and a
2M-row single series `ds,y`), and `full.csv` with H more rows per series, the held-out test steps.

Every step is one child process (`python -m seqcast ...`, run in the work folder), its wall time and
peak RSS recorded. The RSS comes from GNU time (`/usr/bin/time -f %M`) or, without it, a `python -S`
fork-and-exec wrapper reading RUSAGE_CHILDREN: never from this script's own children, whose ru_maxrss
would include this script's memory at fork (Linux keeps the pre-exec high-water mark). The steps:
- load: there is no load-only CLI command, so `python -c` calls `seqcast.load_series(train.csv)`
  (parse + validate + split into series); the in-process load time is the figure compared with the
  target, the whole process is reported too. A baseline child that loads a 3-row file gives the RSS
  of the imports alone.
- fit: `seqcast fit train.csv --model M --horizon H` at defaults, M in gru, nlinear, tcn;
- predict: `seqcast predict CKPT train.csv -o forecasts.csv`; its test MSE/MAE on the held-out H steps
  (original units, and "scaled": each series' errors divided by its train std) is computed here;
- evaluate: `seqcast evaluate CKPT full.csv --in-sample --json` (20 rolling windows per series where
  they fit, stride H: every window batched; in-sample, so a timing, not an accuracy figure);
- torch: `python -c 'import torch'`, the reference of the predict target;
- peer: on the fit-comparison panel, alternated A B A B: seqcast `fit --model gru --horizon 48` then
  `predict` (two processes, both timed) against one neuralforecast process (`GRU(h=48)` at its
  defaults, `NeuralForecast(freq='h').fit(train)` then `.predict()`), run with --peer-python (a
  throwaway venv, never a project dependency). Both forecast the same held-out last 48 steps.

Threads are pinned the same way for every child: OMP_NUM_THREADS, MKL_NUM_THREADS and
OPENBLAS_NUM_THREADS set to --threads (default 1), `--threads N` passed to seqcast commands that
accept it, and torch.set_num_threads(N) in the peer process. `--threads 0` pins nothing (each tool
picks its own). Results: benchmarks/results/scale.{csv,md} (scale_quick.* with --quick), progress on
stderr, each child's output under WORK/logs/.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_WORK = RESULTS / "tmp" / "scale"  # benchmarks/results/tmp/ is gitignored
SEQCAST = [sys.executable, "-m", "seqcast"]
STEPS = ("load", "fit", "predict", "evaluate", "peer")


@dataclass(frozen=True)
class Dataset:
    name: str
    series: int
    length: int  # rows per series in train.csv (the nominal size); full.csv has `horizon` more
    horizon: int  # fit/predict horizon and the held-out test steps
    role: str = ""  # which of the targets apply: fit400, p50k, single2m
    seed: int = 0

    @property
    def single(self) -> bool:
        return self.series == 1

    @property
    def rows(self) -> int:
        return self.series * self.length


FULL = [
    Dataset("panel_400x875", 400, 875, 48, "fit400", seed=1),
    Dataset("panel_1000x1000", 1000, 1000, 48, seed=2),
    Dataset("panel_10000x200", 10000, 200, 24, seed=3),
    Dataset("panel_50000x40", 50000, 40, 8, "p50k", seed=4),
    Dataset("single_2000000", 1, 2_000_000, 48, "single2m", seed=5),
]
QUICK = [
    Dataset("panel_40x300", 40, 300, 48, "fit400", seed=1),
    Dataset("panel_1000x40", 1000, 40, 8, "p50k", seed=4),
    Dataset("single_100000", 1, 100_000, 48, "single2m", seed=5),
]
FULL_MODELS, QUICK_MODELS = "gru,nlinear,tcn", "gru"
QUICK_MAX_STEPS = 20


def log(message: str) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------- data

def generate(ds: Dataset, folder: Path) -> dict:
    """Write train.csv, full.csv and test.csv (held-out steps, train std, naive forecasts) for ``ds``;
    reuse them when spec.json matches."""
    spec = {"series": ds.series, "length": ds.length, "horizon": ds.horizon, "seed": ds.seed, "version": 1}
    marker = folder / "spec.json"
    if marker.exists() and json.loads(marker.read_text()) == spec and all(
            (folder / f).exists() for f in ("train.csv", "full.csv", "test.csv")):
        return spec
    import numpy as np
    import pandas as pd

    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    rng = np.random.default_rng(ds.seed)
    n, total, h = ds.series, ds.length + ds.horizon, ds.horizon
    level = rng.uniform(5, 50, n)[:, None]
    scale = rng.uniform(1, 5, n)[:, None]
    daily, weekly = scale * rng.uniform(0.5, 2, (n, 1)), scale * rng.uniform(0, 1, (n, 1))
    phase_d, phase_w = rng.uniform(0, 2 * np.pi, (n, 1)), rng.uniform(0, 2 * np.pi, (n, 1))
    trend = scale * rng.normal(0, 0.5, (n, 1)) / total
    t = np.arange(total, dtype=np.float64)[None, :]
    noise = rng.normal(0, 1, (n, total)) * scale * rng.uniform(0.1, 0.4, (n, 1))
    try:  # AR(1) noise, phi 0.6, along time for every series at once
        from scipy.signal import lfilter
        ar = lfilter([1.0], [1.0, -0.6], noise, axis=1)
    except ImportError:
        ar = np.empty_like(noise)
        ar[:, 0] = noise[:, 0]
        for i in range(1, total):
            ar[:, i] = 0.6 * ar[:, i - 1] + noise[:, i]
    y = (level + daily * np.sin(2 * np.pi * t / 24 + phase_d) + weekly * np.sin(2 * np.pi * t / 168 + phase_w)
         + trend * t + ar).astype(np.float32)
    start = np.datetime64("2000-01-01T00", "h") + rng.integers(0, 24 * 90, n).astype("timedelta64[h]")
    times = start[:, None] + np.arange(total).astype("timedelta64[h]")[None, :]
    width = len(str(n - 1))
    ids = np.array([f"s{i:0{width}d}" for i in range(n)], dtype=object)
    frame = pd.DataFrame({"unique_id": np.repeat(ids, total), "ds": times.reshape(-1), "y": y.reshape(-1)})
    keep = np.tile(np.arange(total) < ds.length, n)
    columns = ["ds", "y"] if ds.single else ["unique_id", "ds", "y"]
    write = dict(index=False, date_format="%Y-%m-%d %H:%M:%S", float_format="%.4f")
    frame.loc[keep, columns].to_csv(folder / "train.csv", **write)
    frame[columns].to_csv(folder / "full.csv", **write)
    y_rounded = np.round(y.astype(np.float64), 4)  # what the CSV holds
    train, test = y_rounded[:, :ds.length], y_rounded[:, ds.length:]
    steps = np.arange(h)
    held = pd.DataFrame({
        "unique_id": np.repeat(ids, h), "ds": times[:, ds.length:].reshape(-1), "step": np.tile(steps + 1, n),
        "y": test.reshape(-1), "train_std": np.repeat(train.std(axis=1), h),
        "naive": np.repeat(train[:, -1], h),  # repeat the last value
        "snaive": train[:, ds.length - 24 + steps % 24].reshape(-1),  # seasonal naive, period 24
    })
    held.to_csv(folder / "test.csv", index=False, date_format="%Y-%m-%d %H:%M:%S")
    (folder / "tiny.csv").write_text("\n".join([",".join(columns), *[
        ",".join(([] if ds.single else ["a"]) + [f"2000-01-01 0{i}:00:00", "1.0"]) for i in range(3)]]) + "\n")
    marker.write_text(json.dumps(spec))
    log(f"generated {ds.name}: {ds.rows:,} rows in train.csv ({(folder / 'train.csv').stat().st_size / 2**20:.1f} MB) "
        f"in {time.perf_counter() - started:.1f}s")
    return spec


def accuracy(forecasts: Path, test: Path, id_col: str, time_col: str, value_col: str | None, single: bool) -> dict:
    """Test MSE/MAE of a forecast file on the held-out steps, joined on (series, timestamp)."""
    import numpy as np
    import pandas as pd

    held = pd.read_csv(test, parse_dates=["ds"], dtype={"unique_id": str})
    fc = pd.read_csv(forecasts, dtype={id_col: str})
    value_col = value_col or [c for c in fc.columns if c not in (id_col, time_col, "cutoff", "index")][0]
    fc = fc.assign(ds=pd.to_datetime(fc[time_col]).dt.tz_localize(None))
    on = ["ds"] if single else ["unique_id", "ds"]
    if not single:
        fc = fc.assign(unique_id=fc[id_col].astype(str))
    joined = held.merge(fc[on + [value_col]], on=on, how="left")
    missing = int(joined[value_col].isna().sum())
    err = (joined[value_col] - joined["y"]).to_numpy()
    ok = ~np.isnan(err)
    scaled = err / joined["train_std"].to_numpy()
    return {"mse": float(np.mean(err[ok] ** 2)) if ok.any() else None,
            "mae": float(np.mean(np.abs(err[ok]))) if ok.any() else None,
            "mse_scaled": float(np.mean(scaled[ok] ** 2)) if ok.any() else None,
            "missing": missing, "points": len(joined)}


def baselines(test: Path) -> dict:
    import numpy as np
    import pandas as pd

    held = pd.read_csv(test)
    out = {}
    for name in ("naive", "snaive"):
        err = (held[name] - held["y"]).to_numpy()
        out[name] = {"mse": float(np.mean(err ** 2)), "mae": float(np.mean(np.abs(err))),
                     "mse_scaled": float(np.mean((err / held["train_std"].to_numpy()) ** 2))}
    return out


# ------------------------------------------------------------------------------------------ children

WRAPPER = """\
import os, resource, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status = os.waitpid(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def gnu_time() -> str | None:
    path = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    if path and subprocess.run([path, "--version"], capture_output=True).returncode == 0:
        return path
    return None


TIME = gnu_time()


def measured(command: list[str], rss_file: Path) -> list[str]:
    """``command`` under a small launcher that reports its peak RSS (KB) into ``rss_file``. A child's
    ru_maxrss counts the memory of the process it was forked from (Linux keeps the pre-exec high-water
    mark), so the child must be forked from something small, never from this script (pandas loaded):
    GNU time where present, else a `python -S` fork-and-exec wrapper (about 9 MB, the floor then)."""
    if TIME:
        return [TIME, "-q", "-f", "%M", "-o", str(rss_file), *command]
    return [sys.executable, "-S", "-c", WRAPPER, str(rss_file), *command]


def run_child(command: list[str], timeout: float, env: dict, log_path: Path, cwd: Path | None = None) -> dict:
    """Run one child; wall seconds, peak RSS (MB, of the child and whatever it waited for), status and
    stdout. Past ``timeout`` its process group is stopped (SIGTERM, then SIGKILL): timed out."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    out_path, rss_path = log_path.with_suffix(".out"), log_path.with_suffix(".rss")
    rss_path.unlink(missing_ok=True)
    with open(out_path, "wb") as stdout, open(log_path, "wb") as stderr:
        stderr.write((" ".join(command) + "\n\n").encode())
        stderr.flush()
        started = time.perf_counter()
        child = subprocess.Popen(measured(command, rss_path), stdout=stdout, stderr=stderr, env=env, cwd=cwd,
                                 start_new_session=True)
        timed_out = threading.Event()

        def stop() -> None:
            timed_out.set()
            for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 0.0)):
                try:
                    os.killpg(child.pid, sig)
                except ProcessLookupError:
                    return
                deadline = time.monotonic() + grace
                while time.monotonic() < deadline and child.poll() is None:
                    time.sleep(0.1)

        timer = threading.Timer(timeout, stop)
        timer.start()
        try:
            child.wait()
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
    text = out_path.read_text(errors="replace")
    try:
        rss_mb = int(rss_path.read_text().strip().splitlines()[-1]) / 1024
    except (OSError, ValueError, IndexError):
        rss_mb = 0.0
    state = "timeout" if timed_out.is_set() else ("ok" if child.returncode == 0 else f"error {child.returncode}")
    result = {"status": state, "wall_s": wall, "rss_mb": rss_mb, "stdout": text}
    if state.startswith("error"):
        result["error"] = log_path.read_text(errors="replace").strip().splitlines()[-1:] or [""]
        log(f"  {log_path.stem} failed: {result['error'][0][:300]} (log {log_path})")
    return result


def last_json(text: str) -> dict:
    """The JSON object a child printed: the whole stdout, else its last line that is an object."""
    for chunk in [text, *reversed(text.strip().splitlines())]:
        try:
            value = json.loads(chunk)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}


LOAD_SNIPPET = """\
import json, sys, time
t0 = time.perf_counter()
from seqcast import load_series
t1 = time.perf_counter()
s = load_series(sys.argv[1])
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "series": len(s.series),
                  "rows": int(sum(len(x.times) for x in s.series)), "freq": str(s.freq)}))
"""

PEER_SNIPPET = """\
import json, logging, sys, time
started = time.perf_counter()
train_path, horizon, out, threads, max_steps = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
import torch
if threads:
    torch.set_num_threads(threads)
import pandas as pd
import neuralforecast
from neuralforecast import NeuralForecast
from neuralforecast.models import GRU
import_s = time.perf_counter() - started
logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
df = pd.read_csv(train_path, parse_dates=["ds"], dtype={"unique_id": str})
if "unique_id" not in df.columns:
    df.insert(0, "unique_id", "series")
kwargs = {"h": horizon}
if max_steps:
    kwargs["max_steps"] = max_steps
model = GRU(**kwargs)  # everything else at neuralforecast's defaults
nf = NeuralForecast(models=[model], freq="h")
t = time.perf_counter()
nf.fit(df)
fit_s = time.perf_counter() - t
t = time.perf_counter()
forecast = nf.predict()
predict_s = time.perf_counter() - t
if "unique_id" not in forecast.columns:
    forecast = forecast.reset_index()
forecast.to_csv(out, index=False)
print(json.dumps({"import_s": import_s, "fit_s": fit_s, "predict_s": predict_s, "version": neuralforecast.__version__,
                  "parameters": int(sum(p.numel() for p in nf.models[0].parameters())),
                  "max_steps": int(nf.models[0].max_steps), "input_size": int(nf.models[0].input_size),
                  "batch_size": int(nf.models[0].batch_size), "threads": torch.get_num_threads()}))
"""


# --------------------------------------------------------------------------------------------- bench

class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(args.work)
        self.rows: list[dict] = []
        self.env = dict(os.environ)
        if args.threads:
            for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                self.env[var] = str(args.threads)
        self.env["PYTHONUNBUFFERED"] = "1"
        self.work.mkdir(parents=True, exist_ok=True)
        self.thread_flag = {}  # seqcast command -> does it take --threads?
        for cmd in ("fit", "predict", "evaluate"):
            done = subprocess.run([*SEQCAST, cmd, "--help"], capture_output=True, text=True, env=self.env, cwd=self.work)
            self.thread_flag[cmd] = "--threads" in done.stdout
        self.torch_s: float | None = None

    def seqcast(self, cmd: str, *rest: str) -> list[str]:
        extra = ["--threads", str(self.args.threads)] if self.args.threads and self.thread_flag[cmd] else []
        return [*SEQCAST, cmd, *rest, *extra]

    def child(self, name: str, command: list[str], cwd: Path | None = None, timeout: float | None = None) -> dict:
        load1 = os.getloadavg()[0]  # children run in the work folder: whatever they write lands there
        result = run_child(command, timeout or self.args.timeout, self.env, self.work / "logs" / f"{name}.log",
                           cwd or self.work)
        result["load1"], result["limit_s"] = load1, timeout or self.args.timeout
        return result

    def record(self, section: str, ds: Dataset | None, step: str, result: dict, repeat: int, **extra) -> dict:
        file_mb = extra.pop("file_mb", None)
        row = {"section": section, "dataset": ds.name if ds else "", "series": ds.series if ds else "",
               "rows": ds.rows if ds else "", "file_mb": round(file_mb, 2) if file_mb else "",
               "step": step, "model": extra.pop("model", ""), "horizon": extra.pop("horizon", ""),
               "repeat": repeat, "status": result["status"], "wall_s": round(result["wall_s"], 3),
               "peak_rss_mb": round(result["rss_mb"], 1) if result["rss_mb"] else None,
               "rss_over_file": round(result["rss_mb"] / file_mb, 2) if file_mb and result["rss_mb"] else "",
               "timeout_s": result.get("limit_s", "") if result["status"] == "timeout" else "",
               "load1": round(result.get("load1", 0), 2), "threads": self.args.threads or "tool default"}
        row.update({k: (round(v, 6) if isinstance(v, float) else v) for k, v in extra.items()})
        self.rows.append(row)
        self.write()
        return row

    def folder(self, ds: Dataset) -> Path:
        return self.work / "data" / ds.name

    def file_mb(self, ds: Dataset, which: str = "train.csv") -> float:
        return (self.folder(ds) / which).stat().st_size / 2**20

    # steps ----------------------------------------------------------------------------------------

    def import_torch(self) -> None:
        times = []
        for r in range(self.args.repeats):
            res = self.child(f"import_torch_{r}", [sys.executable, "-c", "import torch"])
            self.record("reference", None, "python -c 'import torch'", res, r)
            times.append(res["wall_s"])
        self.torch_s = statistics.median(times)
        log(f"import torch: {self.torch_s:.2f}s (median of {len(times)})")

    def load(self, ds: Dataset) -> None:
        folder = self.folder(ds)
        for r in range(self.args.repeats):
            base = self.child(f"{ds.name}_load_baseline_{r}", [sys.executable, "-c", LOAD_SNIPPET, str(folder / "tiny.csv")])
            res = self.child(f"{ds.name}_load_{r}", [sys.executable, "-c", LOAD_SNIPPET, str(folder / "train.csv")])
            info = last_json(res["stdout"]) if res["status"] == "ok" else {}
            baseline_mb = base["rss_mb"] if base["status"] == "ok" else None
            self.record("load", ds, "load (python -c seqcast.load_series)", res, r, file_mb=self.file_mb(ds),
                        inner_s=info.get("load_s"), series_found=info.get("series"), rows_found=info.get("rows"),
                        baseline_rss_mb=round(baseline_mb, 1) if baseline_mb else None,
                        rss_over_baseline_mb=round(res["rss_mb"] - baseline_mb, 1) if baseline_mb else None)
            log(f"load {ds.name} #{r + 1}: {res['status']}, load_series {info.get('load_s', float('nan')):.2f}s, "
                f"process {res['wall_s']:.2f}s, peak RSS {res['rss_mb']:.0f} MB (imports alone "
                f"{(baseline_mb or 0):.0f} MB), file {self.file_mb(ds):.1f} MB")

    def fit(self, ds: Dataset, model: str, ckpt: Path, name: str, repeat: int, section: str = "fit") -> dict:
        command = self.seqcast("fit", str(self.folder(ds) / "train.csv"), "--model", model, "--horizon", str(ds.horizon),
                               "-o", str(ckpt), "--force", "--json")
        if self.args.max_steps:
            command += ["--max-steps", str(self.args.max_steps)]
        res = self.child(name, command)
        info = last_json(res["stdout"]) if res["status"] == "ok" else {}
        row = self.record(section, ds, "fit", res, repeat, model=model, horizon=ds.horizon, file_mb=self.file_mb(ds),
                          inner_s=info.get("seconds"), steps=info.get("steps"), epochs=info.get("epochs"),
                          lookback=info.get("lookback"), parameters=info.get("parameters"),
                          val_mse_scaled=info.get("val_mse_scaled"),
                          tool_threads=next((v for k, v in info.items() if "thread" in k), None))
        log(f"{'' if section == 'fit' else section + ' '}fit {model} on {ds.name} #{repeat + 1}: {res['status']}, {res['wall_s']:.1f}s, "
            f"{info.get('steps')} steps, lookback {info.get('lookback')}, peak RSS {res['rss_mb']:.0f} MB")
        return row

    def predict(self, ds: Dataset, model: str, ckpt: Path, name: str, repeat: int, section: str = "predict") -> dict:
        out = self.work / "forecasts" / f"{name}.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)
        res = self.child(name, self.seqcast("predict", str(ckpt), str(self.folder(ds) / "train.csv"), "-o", str(out)))
        acc = {}
        if res["status"] == "ok":
            acc = accuracy(out, self.folder(ds) / "test.csv", "series", "timestamp", "forecast", ds.single)
        row = self.record(section, ds, "predict", res, repeat, model=model, horizon=ds.horizon, file_mb=self.file_mb(ds),
                          **{k: acc.get(k) for k in ("mse", "mae", "mse_scaled", "missing")})
        log(f"{'' if section == 'predict' else section + ' '}predict {model} on {ds.name} #{repeat + 1}: {res['status']}, {res['wall_s']:.2f}s, "
            f"peak RSS {res['rss_mb']:.0f} MB, test MSE {acc.get('mse')}")
        return row

    def evaluate(self, ds: Dataset, model: str, ckpt: Path, repeat: int) -> None:
        name = f"{ds.name}_{model}_evaluate_{repeat}"
        res = self.child(name, self.seqcast("evaluate", str(ckpt), str(self.folder(ds) / "full.csv"), "--in-sample", "--json"))
        info = last_json(res["stdout"]) if res["status"] == "ok" else {}
        self.record("evaluate", ds, "evaluate (--in-sample, 20 windows)", res, repeat, model=model, horizon=ds.horizon,
                    file_mb=self.file_mb(ds, "full.csv"), windows=info.get("windows"), inner_ms=info.get("predict_ms"))
        log(f"evaluate {model} on {ds.name} #{repeat + 1}: {res['status']}, {res['wall_s']:.2f}s, "
            f"{info.get('windows')} windows, peak RSS {res['rss_mb']:.0f} MB")

    def peer(self, ds: Dataset) -> None:
        if not self.args.peer_python:
            log("peer: skipped (no --peer-python)")
            return
        script = self.work / "peer_neuralforecast.py"
        script.write_text(PEER_SNIPPET)
        peer_cwd = self.work / "peer_cwd"  # lightning_logs land here
        peer_cwd.mkdir(exist_ok=True)
        base = baselines(self.folder(ds) / "test.csv")
        for name, values in base.items():
            self.record("peer", ds, f"baseline {name}", {"status": "ok", "wall_s": 0, "rss_mb": 0}, 0,
                        model=name, horizon=ds.horizon, **values)
        for r in range(self.args.repeats):
            ckpt = self.work / "ckpt" / f"peer_seqcast_gru_{r}.ckpt"
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            fit_row = self.fit(ds, "gru", ckpt, f"peer_seqcast_fit_{r}", r, section="peer")
            if fit_row["status"] == "ok":
                pred_row = self.predict(ds, "gru", ckpt, f"peer_seqcast_predict_{r}", r, section="peer")
            else:
                pred_row = {"status": "skipped", "wall_s": 0}
            total = fit_row["wall_s"] + pred_row["wall_s"]
            states = {fit_row["status"], pred_row["status"]}
            state = "ok" if states == {"ok"} else ("timeout" if "timeout" in states else "failed")
            self.record("peer", ds, "seqcast end to end (fit + predict)",
                        {"status": state, "wall_s": total, "limit_s": self.args.timeout,
                         "rss_mb": max(fit_row["peak_rss_mb"] or 0, pred_row.get("peak_rss_mb") or 0)}, r,
                        tool="seqcast", model="gru", horizon=ds.horizon, inner_s=fit_row.get("inner_s"),
                        **{k: pred_row.get(k) for k in ("mse", "mae", "mse_scaled")})
            out = self.work / "forecasts" / f"peer_nf_{r}.csv"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.unlink(missing_ok=True)
            res = self.child(f"peer_neuralforecast_{r}",
                             [self.args.peer_python, str(script), str(self.folder(ds) / "train.csv"), str(ds.horizon),
                              str(out), str(self.args.threads), str(self.args.max_steps)], cwd=peer_cwd,
                             timeout=self.args.peer_timeout)
            info = last_json(res["stdout"]) if res["status"] == "ok" else {}
            acc = accuracy(out, self.folder(ds) / "test.csv", "unique_id", "ds", "GRU", ds.single) if res["status"] == "ok" else {}
            self.record("peer", ds, "neuralforecast end to end (fit + predict)", res, r, tool="neuralforecast",
                        model="GRU", horizon=ds.horizon, inner_s=info.get("fit_s"), predict_inner_s=info.get("predict_s"),
                        steps=info.get("max_steps"), lookback=info.get("input_size"), parameters=info.get("parameters"),
                        tool_threads=info.get("threads"), peer_version=info.get("version"),
                        **{k: acc.get(k) for k in ("mse", "mae", "mse_scaled", "missing")})
            log(f"peer #{r + 1}: seqcast {total:.1f}s (MSE {pred_row.get('mse')}) | neuralforecast "
                f"{res['wall_s']:.1f}s {res['status']} (fit {info.get('fit_s')}, MSE {acc.get('mse')})")

    # ------------------------------------------------------------------------------------------------

    def run(self) -> None:
        args = self.args
        datasets = QUICK if args.quick else FULL
        if args.datasets:
            wanted = args.datasets.split(",")
            datasets = [d for d in datasets if d.name in wanted or d.role in wanted]
        models = args.models.split(",")
        only = set(args.only.split(","))
        self.started = time.time()
        self.meta = environment(args, self.thread_flag, self.env, self.work)
        log(f"work folder {self.work}; steps {','.join(s for s in STEPS if s in only)}; threads "
            f"{args.threads or 'tool default'}; timeout {args.timeout:.0f}s per step; repeats {args.repeats}")
        for ds in datasets:
            generate(ds, self.folder(ds))
        if args.generate_only:
            return
        if only & {"predict", "peer"}:
            self.import_torch()
        if "load" in only:
            for ds in datasets:
                self.load(ds)
        for ds in datasets:
            if not only & {"fit", "predict", "evaluate"}:
                break
            for model in models:
                ckpt = self.work / "ckpt" / f"{ds.name}_{model}.ckpt"
                ckpt.parent.mkdir(parents=True, exist_ok=True)
                if "fit" in only or not ckpt.exists():
                    for r in range(args.fit_repeats):
                        row = self.fit(ds, model, ckpt, f"{ds.name}_{model}_fit_{r}", r)
                    if row["status"] != "ok":
                        ckpt.unlink(missing_ok=True)
                        continue
                if "predict" in only:
                    for r in range(args.repeats):
                        self.predict(ds, model, ckpt, f"{ds.name}_{model}_predict_{r}", r)
                if "evaluate" in only:
                    for r in range(args.repeats):
                        self.evaluate(ds, model, ckpt, r)
        if "peer" in only:
            fit_panel = [d for d in datasets if d.role == "fit400"]
            if fit_panel:
                self.peer(fit_panel[0])
        self.meta["elapsed_s"] = round(time.time() - self.started, 1)
        self.write()
        log(f"done in {self.meta['elapsed_s']:.0f}s: {self.out}.csv, {self.out}.md")

    @property
    def out(self) -> Path:
        return Path(self.args.out) if self.args.out else RESULTS / ("scale_quick" if self.args.quick else "scale")

    def write(self) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        keys: list[str] = []
        for row in self.rows:
            keys += [k for k in row if k not in keys]
        with open(f"{self.out}.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.rows)
        Path(f"{self.out}.md").write_text(markdown(self.rows, getattr(self, "meta", {}), self.torch_s, self.args))


# ------------------------------------------------------------------------------------------- report

def environment(args: argparse.Namespace, thread_flag: dict, env: dict, work: Path) -> dict:
    def git(*cmd: str) -> str:
        done = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    versions = subprocess.run([sys.executable, "-c", "import torch, pandas, numpy, seqcast; print(torch.__version__, "
                               "pandas.__version__, numpy.__version__, seqcast.__file__)"], capture_output=True, text=True,
                              env=env, cwd=work).stdout.split()
    where = str(Path(versions.pop()).parent) if len(versions) == 4 else "?"
    dirty = where == str(ROOT / "seqcast") and bool(git("status", "--porcelain", "--", "seqcast"))
    if where != str(ROOT / "seqcast"):
        log(f"note: children import seqcast from {where}, not this checkout")
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "commit": git("rev-parse", "--short", "HEAD"),
            "seqcast_dirty": dirty, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "python": platform.python_version(), "versions": versions, "seqcast_from": where, "load_at_start": os.getloadavg()[0],
            "threads": args.threads, "seqcast_threads_flag": thread_flag, "command": " ".join(sys.argv),
            "max_steps": args.max_steps}


def median_of(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) not in (None, "") and r["status"] == "ok"]
    return statistics.median(values) if values else None


def fmt(value, digits: int = 2) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) >= 10 ** -digits or value == 0 else f"{value:.2g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def wall_text(rows: list[dict], digits: int = 2) -> str:
    """Median wall seconds of the runs that finished, or '> LIMIT' when every run timed out."""
    wall = median_of(rows, "wall_s")
    if wall is None and any(r["status"] == "timeout" for r in rows):
        return f"> {max(float(r['timeout_s'] or 0) for r in rows):.0f} (timed out)"
    return fmt(wall, digits)


def status_of(rows: list[dict]) -> str:
    states = sorted({r["status"] for r in rows})
    return "ok" if states == ["ok"] else "/".join(states)


def check(value: float | None, limit: float | None) -> str:
    if value is None or limit is None:
        return "?"
    return "yes" if value < limit else "no"


def markdown(rows: list[dict], meta: dict, torch_s: float | None, args: argparse.Namespace) -> str:
    def group(section: str) -> dict:
        groups: dict = {}
        for r in rows:
            if r["section"] == section:
                groups.setdefault((r["dataset"], r["model"], r["step"]), []).append(r)
        return groups

    roles = {d.name: d.role for d in (QUICK if args.quick else FULL)}
    lines = ["# Scale benchmark (issue 13)", "",
             f"Command: `{meta.get('command', '')}`. {meta.get('date', '')}, commit {meta.get('commit', '')}"
             f"{' + uncommitted changes in seqcast/' if meta.get('seqcast_dirty') else ''}; {meta.get('machine', '')}; "
             f"seqcast imported from `{meta.get('seqcast_from', '?')}`; Python {meta.get('python', '')}, torch/pandas/numpy {' / '.join(meta.get('versions', []))}; "
             f"load average at start {meta.get('load_at_start', 0):.2f}; threads pinned to "
             f"{args.threads or 'each tool default'} (OMP/MKL/OPENBLAS_NUM_THREADS"
             f"{', seqcast --threads' if any(meta.get('seqcast_threads_flag', {}).values()) else ''}"
             f", torch.set_num_threads in the peer); timeout {args.timeout:.0f}s per step ({args.peer_timeout:.0f}s for "
             f"neuralforecast); medians of "
             f"{args.repeats} run(s) (fits: {args.fit_repeats}); whole run {meta.get('elapsed_s', '(running)')} s.", ""]
    if args.quick:
        lines += [f"**--quick**: small panels, fits capped at --max-steps {args.max_steps} on both sides. The targets "
                  "are for the full sizes; the 'met?' column here only exercises the checks.", ""]
    elif args.max_steps:
        lines += [f"**Fits capped at --max-steps {args.max_steps} on both sides: not the defaults.**", ""]
    lines += ["'RSS / file' = peak RSS of the whole process over the CSV's size (target: < 3x for loading the "
              "2M-row series). Raw rows: the CSV beside this file; child logs under the work folder.", ""]

    targets: list[list[str]] = []
    load = group("load")
    if load:
        lines += ["## Load (parse + validate + split: `python -c` calling `seqcast.load_series`; no load-only CLI "
                  "command exists)", "",
                  "| dataset | series | rows | file MB | status | load_series s | whole process s | peak RSS MB | "
                  "RSS / file | RSS over imports MB | target | met? |", "|" + "---|" * 12]
        for (name, _, _), rs in load.items():
            r0, inner = rs[0], median_of(rs, "inner_s")
            rss, role = median_of(rs, "peak_rss_mb"), roles.get(name)
            target, met = "", ""
            if role == "fit400":
                target, met = "< 1.5 s", check(inner, 1.5)
            elif role == "p50k":
                target, met = "< 10 s", check(inner, 10)
            elif role == "single2m":
                ratio = rss / r0["file_mb"] if rss else None
                over = median_of(rs, "rss_over_baseline_mb")
                over_ratio = over / r0["file_mb"] if over is not None else None
                target = "< 6 s, RSS < 3x file"
                met = "yes" if inner is not None and inner < 6 and ratio is not None and ratio < 3 else \
                    f"time {check(inner, 6)}, RSS {check(ratio, 3)} ({check(over_ratio, 3)} over the imports alone)"
            if target:
                measured = f"{fmt(inner)} s"
                if role == "single2m" and rss:
                    measured += f", RSS {fmt(ratio)}x the file ({fmt(over_ratio)}x over the imports alone)"
                targets.append([f"load {name}", target, measured, met])
            lines.append(f"| {name} | {fmt(r0['series'])} | {fmt(r0['rows'])} | {fmt(r0['file_mb'])} | {status_of(rs)} | "
                         f"{fmt(inner)} | {wall_text(rs)} | {fmt(rss, 0)} | "
                         f"{fmt(rss / r0['file_mb'] if rss else None)} | {fmt(median_of(rs, 'rss_over_baseline_mb'), 0)} | "
                         f"{target} | {met} |")
        lines.append("")

    ref = group("reference")
    if ref:
        (_, rs), = ref.items()
        lines += [f"`python -c 'import torch'`: {fmt(median_of(rs, 'wall_s'))} s (median of {len(rs)}; the predict "
                  "target's reference).", ""]

    fit = group("fit")
    if fit:
        lines += ["## Fit at defaults (`seqcast fit train.csv --model M --horizon H`)", "",
                  "| dataset | rows | model | H | lookback | status | whole process s | training s | steps | epochs | "
                  "peak RSS MB | RSS / file | target | met? |", "|" + "---|" * 14]
        for (name, model, _), rs in fit.items():
            r0, wall = rs[0], median_of(rs, "wall_s")
            target = met = ""
            if roles.get(name) == "fit400" and model == "gru":
                target, met = "< 180 s", check(wall, 180) if status_of(rs) == "ok" else "no"
                targets.append([f"fit gru {name}", target, f"{wall_text(rs, 1)} s ({status_of(rs)})", met])
            rss = median_of(rs, "peak_rss_mb")
            lines.append(f"| {name} | {fmt(r0['rows'])} | {model} | {r0['horizon']} | {fmt(r0.get('lookback'))} | "
                         f"{status_of(rs)} | {wall_text(rs, 1)} | {fmt(median_of(rs, 'inner_s'), 1)} | "
                         f"{fmt(r0.get('steps'))} | {fmt(r0.get('epochs'))} | {fmt(rss, 0)} | "
                         f"{fmt(rss / r0['file_mb'] if rss else None)} | {target} | {met} |")
        lines.append("")

    pred = group("predict")
    if pred:
        lines += ["## Predict (`seqcast predict CKPT train.csv -o out.csv`; test error on the held-out H steps)", "",
                  "| dataset | series | model | status | whole process s | peak RSS MB | RSS / file | test MSE | "
                  "test MAE | MSE scaled | target | met? |", "|" + "---|" * 12]
        for (name, model, _), rs in pred.items():
            r0, wall = rs[0], median_of(rs, "wall_s")
            target = met = ""
            if roles.get(name) == "fit400" and torch_s is not None:
                target, met = f"< import torch + 1.5 = {torch_s + 1.5:.2f} s", check(wall, torch_s + 1.5)
            elif roles.get(name) == "p50k":
                target, met = "< 20 s", check(wall, 20)
            if target:
                targets.append([f"predict {model} {name}", target, f"{wall_text(rs)} s", met])
            rss = median_of(rs, "peak_rss_mb")
            lines.append(f"| {name} | {fmt(r0['series'])} | {model} | {status_of(rs)} | {wall_text(rs)} | {fmt(rss, 0)} | "
                         f"{fmt(rss / r0['file_mb'] if rss else None)} | {fmt(r0.get('mse'), 4)} | "
                         f"{fmt(r0.get('mae'), 4)} | {fmt(r0.get('mse_scaled'), 4)} | {target} | {met} |")
        lines.append("")

    ev = group("evaluate")
    if ev:
        lines += ["## Evaluate (`seqcast evaluate CKPT full.csv --in-sample --json`: up to 20 windows per series, "
                  "stride H; a timing)", "",
                  "| dataset | series | model | status | windows scored | whole process s | peak RSS MB | RSS / file |",
                  "|" + "---|" * 8]
        for (name, model, _), rs in ev.items():
            r0, rss = rs[0], median_of(rs, "peak_rss_mb")
            lines.append(f"| {name} | {fmt(r0['series'])} | {model} | {status_of(rs)} | {fmt(r0.get('windows'))} | "
                         f"{wall_text(rs)} | {fmt(rss, 0)} | {fmt(rss / r0['file_mb'] if rss else None)} |")
        lines.append("")

    peer = [r for r in rows if r["section"] == "peer"]
    if peer:
        ours = [r for r in peer if r.get("tool") == "seqcast"]
        theirs = [r for r in peer if r.get("tool") == "neuralforecast"]
        fits = [r for r in peer if r["step"] == "fit"]
        name = peer[0]["dataset"]
        lines += [f"## End to end against neuralforecast ({name}, GRU, horizon 48, alternated A B per repeat)", "",
                  "seqcast: `fit train.csv --model gru --horizon 48` + `predict` (two processes, both counted); "
                  "neuralforecast: one process, `GRU(h=48)` at its defaults, `fit(train)` + `predict()`. Test error "
                  "on the same held-out last 48 steps of every series (original units; 'scaled': each series' "
                  "errors over its train std).", "",
                  "| tool | runs | status | end to end s | fit s (in process) | steps | lookback | parameters | peak RSS MB | "
                  "test MSE | test MAE | MSE scaled |", "|" + "---|" * 12]
        for label, rs, extra in (("seqcast", ours, fits), ("neuralforecast", theirs, theirs)):
            if not rs:
                continue
            lines.append(f"| {label} | {len(rs)} | {status_of(rs)} | {wall_text(rs, 1)} | "
                         f"{fmt(median_of(rs, 'inner_s'), 1)} | {fmt(extra[0].get('steps') if extra else '')} | "
                         f"{fmt(extra[0].get('lookback') if extra else '')} | {fmt(extra[0].get('parameters') if extra else '')} | "
                         f"{fmt(median_of(rs, 'peak_rss_mb'), 0)} | {fmt(median_of(rs, 'mse'), 4)} | "
                         f"{fmt(median_of(rs, 'mae'), 4)} | {fmt(median_of(rs, 'mse_scaled'), 4)} |")
        for r in peer:
            if r["step"].startswith("baseline"):
                lines.append(f"| {r['step']} | | | | | | | | | {fmt(r.get('mse'), 4)} | {fmt(r.get('mae'), 4)} | "
                             f"{fmt(r.get('mse_scaled'), 4)} |")
        a, b = median_of(ours, "wall_s"), median_of(theirs, "wall_s")
        if a and b is None and theirs and all(r["status"] == "timeout" for r in theirs):
            limit = float(theirs[0]["timeout_s"])
            lines += ["", f"neuralforecast timed out at {limit:.0f} s: time ratio < {a / limit:.2f}"]
            targets.append(["fit gru vs neuralforecast GRU (end to end)", "< 0.5x", f"< {a / limit:.2f}x (peer timed out)",
                            check(a / limit, 0.5)])
        if a and b:
            ratio = a / b
            lines += ["", f"Time ratio seqcast / neuralforecast (medians): **{ratio:.2f}**; per repeat: "
                      + ", ".join(f"{x['wall_s'] / y['wall_s']:.2f}" for x, y in zip(ours, theirs) if y["wall_s"])]
            targets.append(["fit gru vs neuralforecast GRU (end to end)", "< 0.5x", f"{ratio:.2f}x", check(ratio, 0.5)])
            ma, mb = median_of(ours, "mse"), median_of(theirs, "mse")
            aa, ab = median_of(ours, "mae"), median_of(theirs, "mae")
            if None not in (ma, mb, aa, ab):
                targets.append(["test error vs neuralforecast GRU", "lower MSE and MAE",
                                f"MSE {ma:.4g} vs {mb:.4g}, MAE {aa:.4g} vs {ab:.4g}",
                                "yes" if ma < mb and aa < ab else "no"])
        lines.append("")

    if targets:
        lines = lines[:4] + ["## Targets (issue 13)", "", "| figure | target | measured | met? |", "|---|---|---|---|",
                             *[f"| {' | '.join(t)} |" for t in targets], ""] + lines[4:]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help=f"small panels, gru only, fits capped at {QUICK_MAX_STEPS} steps on both sides, 1 repeat")
    parser.add_argument("--only", default=",".join(STEPS), help=f"comma list of {','.join(STEPS)} (default: all)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="runs of load/predict/evaluate, and A B peer rounds (default 2; --quick 1)")
    parser.add_argument("--fit-repeats", type=int, default=1, help="runs of each fit in the fit section")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per child process before it is stopped")
    parser.add_argument("--peer-timeout", type=float, default=3600,
                        help="seconds for the neuralforecast process (its default 1000 steps take about 20 minutes here)")
    parser.add_argument("--threads", type=int, default=1, help="threads for every child (0 = each tool's default)")
    parser.add_argument("--models", default=None, help=f"fit models (default {FULL_MODELS}; --quick {QUICK_MODELS})")
    parser.add_argument("--datasets", default=None, help="comma list of dataset names or roles (fit400, p50k, single2m)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help=f"cap every fit on both sides (default: none = defaults; --quick {QUICK_MAX_STEPS})")
    parser.add_argument("--peer-python", default=None, help="python of the throwaway venv with neuralforecast")
    parser.add_argument("--work", default=str(DEFAULT_WORK), help=f"work folder (default {DEFAULT_WORK})")
    parser.add_argument("--out", default=None, help="results path without extension (default benchmarks/results/scale)")
    parser.add_argument("--generate-only", action="store_true", help="write the datasets and stop")
    parser.add_argument("--clean", action="store_true", help="delete the work folder's data first (regenerate)")
    parser.add_argument("--million", action="store_true",
                        help="the million-series run instead (benchmarks/million.py): load, naive and nlinear on "
                             "1,000,000 x 60 hourly rows from Parquet and CSV, peak memory")
    parser.add_argument("--series", type=int, default=1_000_000, help="--million: series in the panel")
    parser.add_argument("--workers", type=int, default=0, help="--million: also predict over the Parquet folder with "
                                                               "this many workers against one")
    args = parser.parse_args()
    if args.million:
        import million

        args.repeats = args.repeats or 2
        args.models = args.models or "naive,nlinear"
        million.run(args)
        return
    args.repeats = args.repeats or (1 if args.quick else 2)
    args.models = args.models or (QUICK_MODELS if args.quick else FULL_MODELS)
    args.max_steps = args.max_steps if args.max_steps is not None else (QUICK_MAX_STEPS if args.quick else 0)
    unknown = set(args.only.split(",")) - set(STEPS)
    if unknown:
        parser.error(f"--only: unknown step(s) {', '.join(sorted(unknown))}; choose from {', '.join(STEPS)}")
    if args.clean:
        shutil.rmtree(Path(args.work) / "data", ignore_errors=True)
    Bench(args).run()


if __name__ == "__main__":
    main()
