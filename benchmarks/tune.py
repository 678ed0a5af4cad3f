"""`seqcast tune` on ETTh1 (the ETT protocol): does the tuned model beat the default on test, chosen on
validation alone, and does a killed study lose a finished trial? One command.

    python benchmarks/tune.py                                   # nlinear, H=96, 20 trials, 2 jobs
    python benchmarks/tune.py --model gru --trials 12 --jobs 2

Steps, all through seqcast's CLI with `--split 8640,2880,2880 --target OT` (train-only scaling,
validation on the 2,880 validation rows, test MSE on the scaled test windows, as benchmarks/ett.py):
  1. `fit` at the defaults and `evaluate` on the test windows;
  2. `tune --trials N --jobs J --storage JOURNAL` (validation MSE only), then `evaluate` the refit best;
  3. `tune` again on the same journal with N + 4 trials, SIGKILL once two more trials have finished,
     then the same command again: every trial finished before the kill must still be in the study.
Writes benchmarks/results/tune_<model>_h<H>.md and .json.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from ett import SPLIT, data_file  # noqa: E402


def seqcast(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "seqcast", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    if done.returncode:
        raise SystemExit(f"seqcast {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done, time.perf_counter() - started


def test_mse(checkpoint: Path, data: Path, model: str) -> float:
    done, _ = seqcast("-q", "evaluate", str(checkpoint), str(data), "--split", SPLIT, "--json")
    return json.loads(done.stdout)["overall"][model]["mse"]


def complete_trials(journal: Path, study: str, states: tuple[str, ...] = ("COMPLETE",)) -> list[int]:
    import optuna
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    trials = optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    return [t.number for t in trials if t.state.name in states]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="nlinear")
    parser.add_argument("--dataset", default="ETTh1")
    parser.add_argument("--horizon", type=int, default=96)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--work", default=str(ROOT / "benchmarks" / "results" / "tmp" / "tune"))
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data, model, horizon = data_file(args.dataset), args.model, str(args.horizon)
    common = ["--target", "OT", "--split", SPLIT, "--horizon", horizon, "--model", model]
    journal, study = work / f"{model}_h{horizon}.journal", f"{model}-h{horizon}"
    for stale in (journal, Path(f"{journal}.lock")):
        stale.unlink(missing_ok=True)

    default = work / "default.ckpt"
    _, default_s = seqcast("-q", "fit", str(data), *common, "--output", str(default), "--force", "--threads", "1")
    default_info = json.loads(seqcast("info", str(default), "--json")[0].stdout)
    tuned = work / "tuned.ckpt"
    done, tune_s = seqcast("-q", "tune", str(data), *common, "--trials", str(args.trials), "--jobs", str(args.jobs),
                           "--storage", str(journal), "--output", str(tuned), "--force", "--json")
    search = json.loads(done.stdout)
    result = {"model": model, "dataset": args.dataset, "horizon": args.horizon, "trials": args.trials,
              "jobs": args.jobs, "default": {"val_mse": default_info["metrics"]["val_mse_scaled"],
                                             "test_mse": test_mse(default, data, model), "fit_s": round(default_s, 1),
                                             "lookback": default_info["data"]["lookback"]},
              "tuned": {"val_mse": search["best_val_mse_scaled"], "test_mse": test_mse(tuned, data, model),
                        "params": search["best_params"], "best_trial": search["best_trial"],
                        "tune_s": round(tune_s, 1),
                        "states": {s: sum(t["state"] == s for t in search["trials"])
                                   for s in ("complete", "pruned", "failed")}}}

    # Kill and resume: more trials on the same journal, SIGKILL after two more finish, then again.
    before = complete_trials(journal, study)
    more = args.trials + 4
    command = [sys.executable, "-m", "seqcast", "-q", "tune", str(data), *common, "--trials", str(more),
               "--storage", str(journal), "--output", str(work / "resumed.ckpt"), "--force"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    while len(complete_trials(journal, study)) < len(before) + 2 and proc.poll() is None:
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    at_kill = complete_trials(journal, study)
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    after = complete_trials(journal, study)
    finished = complete_trials(journal, study, ("COMPLETE", "PRUNED"))
    result["resume"] = {"complete_before": len(before), "complete_at_kill": len(at_kill),
                        "complete_after": len(after), "finished_after": len(finished),
                        "lost": sorted(set(at_kill) - set(after)), "asked": more}

    out = ROOT / "benchmarks" / "results" / f"tune_{model}_h{horizon}"
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    d, t, r = result["default"], result["tuned"], result["resume"]
    lines = [f"# seqcast tune: {model} on {args.dataset} H={horizon} (ETT protocol, scaled MSE)", "",
             f"Command: `python benchmarks/tune.py --model {model} --trials {args.trials} --jobs {args.jobs}`; "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; OMP_NUM_THREADS=1.", "",
             "| | validation MSE | test MSE | settings |", "|---|---|---|---|",
             f"| defaults | {d['val_mse']:.4f} | {d['test_mse']:.4f} | lookback {d['lookback']}; fit {d['fit_s']} s |",
             f"| tuned (best of {args.trials} on validation) | {t['val_mse']:.4f} | {t['test_mse']:.4f} | "
             f"trial {t['best_trial']}: {', '.join(f'{k}={v:.3g}' if isinstance(v, float) else f'{k}={v}' for k, v in t['params'].items())} |",
             "", f"Search: {t['states']['complete']} complete, {t['states']['pruned']} pruned, "
             f"{t['states']['failed']} failed, {t['tune_s']} s with {args.jobs} jobs (refit included).",
             f"Test MSE change: {100 * (t['test_mse'] / d['test_mse'] - 1):+.1f} %.", "",
             f"Kill and resume: {r['complete_before']} complete trials, SIGKILL with {r['complete_at_kill']} "
             f"complete, the same command again: {r['finished_after']} finished ({r['complete_after']} complete, "
             f"the rest pruned) of {r['asked']} asked; complete trials lost: {r['lost'] or 'none'}.",
             "", "With several workers, each stops when it sees the study full, so the last trials running "
             "together may finish one or two past --trials."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
