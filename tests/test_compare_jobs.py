"""compare --jobs: models trained in worker processes give what --jobs 1 gives (timings aside), bad
values of --jobs are usage errors naming the option, and an interrupt stops the workers."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from conftest import cli_command, subprocess_env
from seqcast import checkpoint

FAST = ["--models", "nlinear,dlinear", "--max-steps", "5", "--windows", "2", "--lookback", "24", "--horizon", "6"]
TIMINGS = ("train_s", "seconds_per_epoch", "predict_ms")


def without_timings(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMINGS} for row in rows]


def test_jobs_2_gives_the_leaderboard_checkpoints_and_forecasts_of_jobs_1(invoke, hourly_csv, tmp_path):
    results = {}
    for jobs in ("1", "2"):
        folder = tmp_path / f"jobs{jobs}"
        folder.mkdir()
        code, out, err = invoke("compare", hourly_csv, *FAST, "--jobs", jobs, "--json", "--save-dir", folder,
                                "--forecasts", folder / "forecasts.csv")
        assert code == 0, err
        results[jobs] = (json.loads(out), err, folder)
    (one, err_one, first), (two, err_two, second) = results["1"], results["2"]
    assert without_timings(one) == without_timings(two)
    assert [r["model"] for r in one] == [r["model"] for r in two]
    assert (first / "forecasts.csv").read_bytes() == (second / "forecasts.csv").read_bytes()
    for name in ("nlinear", "dlinear"):
        a, b = (checkpoint.load(folder / f"{name}.ckpt") for folder in (first, second))
        assert a.training.settings.threads == b.training.settings.threads == 1
        assert all(torch.equal(a.model.state_dict()[k], b.model.state_dict()[k]) for k in a.model.state_dict())
        assert f"{name}: mase " in err_one and f"{name}: mase " in err_two  # each model reported when done
    assert "2 at a time in worker processes" in err_two and "epoch" not in err_two


@pytest.mark.parametrize("value, fragment", [("-1", "--jobs -1: give the number of models"),
                                             ("two", "'--jobs'"),
                                             ("2 --threads 4096", "--jobs 2 with 4096 threads per model needs")])
def test_a_bad_jobs_value_exits_2_naming_the_option(invoke, hourly_csv, value, fragment):
    code, out, err = invoke("compare", hourly_csv, *FAST, "--jobs", *value.split())
    assert code == 2 and out == ""
    assert fragment in err and "Traceback" not in err


def test_jobs_0_is_the_cores_available_over_the_threads_per_model():
    from seqcast.workers import jobs_for_cores as compare_jobs

    cores = len(os.sched_getaffinity(0))
    assert compare_jobs(0, 0) == compare_jobs(0, 1) == cores
    assert compare_jobs(0, 2 * cores) == 1 and compare_jobs(1, 2 * cores) == 1  # one job may use what it likes


def test_an_error_in_one_model_exits_as_with_jobs_1(invoke, hourly_csv):
    """A model that cannot be built fails in its worker; the others are stopped, and the error is the
    one --jobs 1 reports, with its exit code."""
    results = []
    for jobs in ("1", "2"):
        code, out, err = invoke("compare", hourly_csv, "--models", "nlinear,transformer", "-p", "transformer.nhead=3",
                                "--max-steps", "2", "--windows", "2", "--lookback", "24", "--horizon", "6",
                                "--jobs", jobs)
        results.append((code, out, [line for line in err.splitlines() if line.startswith("seqcast: error:")]))
    assert results[0] == results[1] == (2, "", ["seqcast: error: transformer: d_model (64) must be divisible by "
                                                 "nhead (3)"])


def workers_of(pid: int) -> dict[int, float]:
    """The multiprocessing workers whose parent is ``pid``, with the CPU seconds each has used (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if fields[1] == str(pid) and b"spawn_main" in command:
            found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the workers through /proc")
@pytest.mark.parametrize("how", ["SIGTERM to seqcast", "Ctrl-C to the process group"])
def test_an_interrupt_stops_the_workers_and_exits_130_leaving_no_file(hourly_csv, tmp_path, how):
    """CLI-CONTRACT item 25 with workers: SIGTERM (cron, timeout) reaches only seqcast, Ctrl-C the whole
    terminal process group; either way the workers stop, nothing half-written is left, exit 130."""
    folder = tmp_path / "saved"
    folder.mkdir()
    proc = subprocess.Popen(cli_command("compare", hourly_csv, "--models", "gru,lstm", "--epochs", "100000",
                                        "--patience", "100000", "--windows", "2", "--jobs", "2", "--save-dir", folder),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=subprocess_env(), start_new_session=True)
    try:
        # Ctrl-C comes while the workers still import; SIGTERM once one trains (its imports take
        # about 2.5 s of CPU): either way they must stop.
        busy = 0.0 if how.startswith("Ctrl-C") else 4.0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            workers = workers_of(proc.pid)
            if len(workers) >= 2 and max(workers.values()) >= busy:
                break
            time.sleep(0.1)
        assert len(workers) >= 2, "the workers did not start"
        if how == "SIGTERM to seqcast":
            proc.send_signal(signal.SIGTERM)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    err = err.decode("utf-8")
    assert proc.returncode == 130, err
    assert "seqcast: error: interrupted" in err and "Traceback" not in err
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()], "a worker outlived seqcast"
    assert list(folder.iterdir()) == []
