"""Streams, signals and names the way cron and ssh deliver them, through real subprocesses: closed
standard streams, a launcher that left stderr on a file it cannot write, SIGHUP, and file names that
are not UTF-8."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import TINY_FIT, cli_command, subprocess_env

ENDLESS_FIT = [*TINY_FIT[:2], "--epochs", "100000", "--patience", "100000", *TINY_FIT[4:]]


def _run(args, preexec=None, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=180):
    return subprocess.run(cli_command(*args), stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                          env=subprocess_env(), preexec_fn=preexec, timeout=timeout)


def _close(*fds):
    return lambda: [os.close(fd) for fd in fds]


def _read_only_on(fd: int, path: Path):
    def setup():
        handle = os.open(path, os.O_RDONLY)
        os.dup2(handle, fd)
        os.close(handle)
    return setup


def test_fit_with_stderr_closed_works(hourly_csv, tmp_path):
    before = hourly_csv.read_bytes()
    for name, setup in (("closed", _close(2)), ("read_only", _read_only_on(2, hourly_csv))):
        ckpt = tmp_path / f"{name}.ckpt"
        result = _run(["fit", hourly_csv, *TINY_FIT, "--output", ckpt], preexec=setup, stderr=None)
        assert result.returncode == 0 and ckpt.exists(), name
    assert hourly_csv.read_bytes() == before, "the file a read-only stderr was left on is untouched"


def test_a_closed_stdout_is_refused_when_data_would_go_there_and_fine_otherwise(tiny_ckpt, hourly_csv, tmp_path):
    result = _run(["predict", tiny_ckpt, hourly_csv], preexec=_close(1), stdout=None)
    assert result.returncode == 2
    assert "stdout is closed, so the output would be lost; pass --output FILE" in result.stderr.decode()
    out = tmp_path / "f.csv"
    result = _run(["predict", tiny_ckpt, hourly_csv, "--output", out], preexec=_close(1), stdout=None)
    assert result.returncode == 0 and out.read_text().startswith("series,timestamp")


def test_reading_a_closed_stdin_says_it_is_closed(tiny_ckpt):
    proc = subprocess.run(cli_command("predict", tiny_ckpt, "-"), capture_output=True, env=subprocess_env(),
                          preexec_fn=_close(0), timeout=120)
    assert proc.returncode == 2
    assert "stdin is closed" in proc.stderr.decode() and "terminal" not in proc.stderr.decode()


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM])
def test_sighup_and_sigterm_stop_a_fit_like_ctrl_c(signum, hourly_csv, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = subprocess.Popen(cli_command("fit", hourly_csv, *ENDLESS_FIT, "--output", out_dir / "m.ckpt"),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=subprocess_env())
    deadline = time.monotonic() + 90
    while not list(out_dir.iterdir()) and time.monotonic() < deadline:  # the output's lock: training has begun
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err.decode()
    assert "seqcast: error: interrupted; nothing was written" in err.decode()
    assert list(out_dir.iterdir()) == [], "no checkpoint, temporary or lock is left"


def test_a_signal_inside_an_import_during_a_run_leaves_no_lock(tmp_path):
    """An interrupt that lands inside an import (a module a command imports late) leaves at once with 130,
    and removes the lock files the run holds: deterministic here, a module that signals its own process
    as it is imported while an output's lock is held."""
    (tmp_path / "signals_itself.py").write_text("import os, signal, time\nos.kill(os.getpid(), signal.SIGTERM)\n"
                                                 "time.sleep(5)\n", encoding="utf-8")
    script = ("import signal, sys\n"
              "from seqcast import cli, files\n"
              "signal.signal(signal.SIGTERM, cli._interrupt)\n"
              f"with files.output_lock({str(tmp_path / 'out.csv')!r}):\n"
              "    import signals_itself\n"
              "sys.exit(0)\n")
    proc = subprocess.run([os.sys.executable, "-c", script], capture_output=True, timeout=60, cwd=tmp_path,
                          env={**subprocess_env(), "PYTHONPATH": os.pathsep.join(
                              filter(None, [str(tmp_path), subprocess_env().get("PYTHONPATH", "")]))})
    assert proc.returncode == 130, proc.stderr.decode()
    assert proc.stderr.decode() == "seqcast: error: interrupted; nothing was written\n"
    assert not (tmp_path / ".out.csv.lock").exists()


def test_a_file_name_that_is_not_utf8_is_read_stored_and_shown_escaped(tmp_path, hourly_csv):
    folder = os.fsencode(tmp_path)
    data = os.path.join(folder, b"sales-\xff.csv")
    with open(data, "wb") as handle:
        handle.write(hourly_csv.read_bytes())
    ckpt = os.path.join(folder, b"model-\xff.ckpt")
    result = _run(["fit", os.fsdecode(data), *TINY_FIT, "--output", os.fsdecode(ckpt)])
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    assert "sales-\\xff.csv" in result.stderr.decode()
    info = _run(["info", os.fsdecode(ckpt)])
    assert info.returncode == 0 and "sales-\\xff.csv" in info.stdout.decode()
    predict = _run(["predict", os.fsdecode(ckpt), os.fsdecode(data)])
    assert predict.returncode == 0 and predict.stdout.decode().startswith("series,timestamp")


def _default_signals() -> None:
    """A child that starts as a terminal user's command does: a suite run in the background by a
    non-interactive shell ignores SIGINT, and a child inherits that until seqcast installs its handlers."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_seqcast_is_still_importing_is_exit_130_with_one_line(signum, hourly_csv, tmp_path):
    """The first half second of a run is spent importing (typer, rich, the commands) before main()
    installs its handlers: a signal there ends the run with 130 and the one line, no traceback.
    (Before seqcast's first line runs, in the interpreter's own start-up and runpy, Python decides;
    those draws are skipped, and most must reach seqcast.)"""
    reached = 0
    for delay in (0.06, 0.1, 0.15, 0.2, 0.3, 0.45, 0.6):
        child = subprocess.Popen(cli_command("fit", hourly_csv, *ENDLESS_FIT, "--output", tmp_path / "m.ckpt"),
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env=subprocess_env(), preexec_fn=_default_signals)
        time.sleep(delay)
        child.send_signal(signum)
        _, err = child.communicate(timeout=120)
        err = err.decode("utf-8", "replace")
        if "Traceback" in err and "seqcast/cli/" not in err:  # before seqcast's first line: Python's own start-up
            continue
        if child.returncode == -signum and not err:  # the signal's default action, before seqcast's first line
            continue
        reached += 1
        assert child.returncode == 130 and "Traceback" not in err and "KeyboardInterrupt" not in err, (delay, err)
        assert err.strip().splitlines()[-1] == "seqcast: error: interrupted; nothing was written", (delay, err)
        assert not (tmp_path / "m.ckpt").exists()
    assert reached >= 5
