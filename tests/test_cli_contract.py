"""The command-line contract (CLI-CONTRACT items 1-30), one or more tests per numbered item.

Logic goes through Typer's CliRunner (stdout and stderr asserted separately); pipes, signals, locks,
terminals and the cron environment go through real subprocesses (``python -m seqcast``), which runs
``seqcast.cli:main`` like the installed ``seqcast`` script.
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import pty
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import (FORECAST_COLUMNS, ckpt_parts, with_document, NON_ASCII_ID, TINY_FIT, cli_command, hourly_text, long_text,
                      subprocess_env)

from seqcast import __version__
from seqcast import checkpoint as ckpt_module
from seqcast.cli import app
from seqcast.errors import CheckpointError

ESC = "\x1b"
COMMANDS = ["fit", "predict", "evaluate", "compare", "tune", "distill", "models", "info", "explain", "export",
            "monitor"]
# A fit that runs until it is stopped: a signal or a lock test interrupts it mid-training.
ENDLESS_FIT = [*TINY_FIT[:2], "--epochs", "100000", "--patience", "100000", *TINY_FIT[4:]]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def forecast_frame(stdout: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(stdout))


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("seqcast: error: ")]


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


class Background:
    """A CLI subprocess running in the background, its stderr collected line by line."""

    def __init__(self, *args, cwd=None, env=None):
        self.proc = subprocess.Popen(cli_command(*args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=cwd, env=env or subprocess_env())
        self.lines: list[str] = []
        self.out = b""
        self._threads = [threading.Thread(target=self._read_err, daemon=True),
                         threading.Thread(target=self._read_out, daemon=True)]
        for thread in self._threads:
            thread.start()

    def _read_err(self):
        for line in iter(self.proc.stderr.readline, b""):
            self.lines.append(line.decode("utf-8"))

    def _read_out(self):
        self.out = self.proc.stdout.read()

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.stderr:
                return
            if self.proc.poll() is not None:
                self._threads[0].join(5)
                if text in self.stderr:
                    return
                pytest.fail(f"process ended (rc {self.proc.returncode}) before writing {text!r}:\n{self.stderr}")
            time.sleep(0.05)
        pytest.fail(f"no {text!r} on stderr within {timeout}s:\n{self.stderr}")

    def finish(self, timeout: float = 90) -> tuple[int, str, str]:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self._threads[0].join(5)
            pytest.fail(f"still running {timeout}s later; its stderr:\n{self.stderr}")
        for thread in self._threads:
            thread.join(5)
        return rc, self.out.decode("utf-8"), self.stderr

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def background():
    started: list[Background] = []

    def start(*args, **kwargs) -> Background:
        started.append(Background(*args, **kwargs))
        return started[-1]

    yield start
    for proc in started:
        proc.kill()


def run_on_pty(*args, stdin_tty=False, stderr_tty=False, env=None, cwd=None, timeout=90):
    """Run the CLI with stdin and/or stderr on a pseudo-terminal; returns (rc, stdout, stderr, tty output)."""
    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain():
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO once every holder of the terminal's other end has gone
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    proc = subprocess.Popen(cli_command(*args), stdin=slave if stdin_tty else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave if stderr_tty else subprocess.PIPE,
                            cwd=cwd, env=env or subprocess_env())
    os.close(slave)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"seqcast {' '.join(map(str, args))} hung with a terminal attached")
    finally:
        reader.join(5)
        os.close(master)
    return proc.returncode, out.decode("utf-8"), (err or b"").decode("utf-8"), b"".join(chunks).decode("utf-8", "replace")


class FakeTerminal(io.TextIOWrapper):
    """A text stream that says it is a terminal (for in-process colour checks)."""

    def __init__(self):
        super().__init__(io.BytesIO(), encoding="utf-8", write_through=True)

    def isatty(self) -> bool:
        return True

    def text(self) -> str:
        return self.buffer.getvalue().decode("utf-8")


def run_app_on_fake_terminals(monkeypatch, *args) -> tuple[int, str, str]:
    """Run the app in-process with stdout and stderr both pretending to be terminals."""
    out, err = FakeTerminal(), FakeTerminal()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        app(args=[str(a) for a in args], prog_name="seqcast", standalone_mode=False)
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    finally:
        sys.stdout, sys.stderr = saved
    return code, out.text(), err.text()


# ---------------------------------------------------------------------------------------------------
# Streams and output (items 1-9)


def test_item1_stdin_dash_and_stdout_forecast_with_global_flag_after_the_command(run_cli, tiny_ckpt, hourly_csv):
    """item 1: `-` reads the CSV from stdin, the forecast alone is on stdout with exactly the documented
    columns; the global -v written after the command (as cron users do) is still honoured."""
    rc, out, err = run_cli("predict", tiny_ckpt, "-", "-v", input=hourly_csv.read_bytes())
    assert rc == 0, err
    frame = forecast_frame(out)
    assert list(frame.columns) == FORECAST_COLUMNS
    assert len(frame) == 6 and frame["step"].tolist() == [1, 2, 3, 4, 5, 6]
    assert frame["timestamp"].iloc[0] == "2024-01-17 16:00:00"  # the hour after the last row
    assert "6 forecast rows" in err  # -v detail, on stderr only
    assert "series,timestamp" not in err


def test_item1_output_dash_and_output_file(invoke, tiny_ckpt, hourly_csv, tmp_path):
    """item 1: `--output -` writes to stdout; `--output FILE` writes the file and leaves stdout empty."""
    code, out, err = invoke("predict", tiny_ckpt, hourly_csv, "--output", "-")
    assert code == 0, err
    assert list(forecast_frame(out).columns) == FORECAST_COLUMNS
    assert "forecast" not in err
    target = tmp_path / "forecast.csv"
    code, out2, err = invoke("predict", tiny_ckpt, hourly_csv, "--output", target)
    assert code == 0 and out2 == "", err
    assert target.read_text(encoding="utf-8") == out


def test_item1_logs_and_notes_never_on_stdout(invoke, hourly_csv, tmp_path):
    """item 1: fit writes its description, progress and result to stderr, nothing to stdout."""
    code, out, err = invoke("fit", hourly_csv, *TINY_FIT, "--output", tmp_path / "m.ckpt")
    assert code == 0, err
    assert out == ""
    assert "epoch 1/1" in err and "checkpoint:" in err


def test_item2_stdin_terminal_gives_hint_and_exit_2_instead_of_hanging(tiny_ckpt):
    """item 2: reading `-` while stdin is a terminal prints a usage hint and exits 2 (no hang)."""
    rc, out, err, _ = run_on_pty("predict", tiny_ckpt, "-", stdin_tty=True, timeout=60)
    assert rc == 2, err
    assert out == ""
    assert "stdin is a terminal" in err and "pipe a CSV in" in err
    assert "Traceback" not in err


def test_item3_progress_bar_only_on_a_terminal_and_only_on_stderr(hourly_csv, tmp_path):
    """item 3: with stderr a terminal, training shows a rich progress bar there; stdout stays clean."""
    rc, out, _, terminal = run_on_pty("fit", hourly_csv, *TINY_FIT, "--output", tmp_path / "m.ckpt",
                                      stderr_tty=True, env=subprocess_env(TERM="xterm-256color"))
    assert rc == 0, terminal
    assert out == ""
    assert ESC in terminal, "a terminal gets the animated progress bar"
    assert "checkpoint:" in terminal


def test_item3_no_escape_and_no_carriage_return_when_stderr_is_not_a_terminal(invoke, hourly_csv, tmp_path):
    """item 3: with stderr not a terminal: no ESC, no \\r, at most one progress line per epoch."""
    code, out, err = invoke("fit", hourly_csv, *TINY_FIT[:2], "--epochs", "3", "--patience", "5", *TINY_FIT[4:],
                            "--output", tmp_path / "m.ckpt")
    assert code == 0, err
    assert ESC not in err + out and "\r" not in err + out
    epoch_lines = [line for line in err.splitlines() if re.search(r"epoch \d+/3", line)]
    assert 1 <= len(epoch_lines) <= 3
    assert len(epoch_lines) == len(set(epoch_lines))


@pytest.mark.parametrize("switch", ["NO_COLOR", "TERM=dumb", "--no-color"])
def test_item3_no_escape_sequences_on_a_terminal_when_colour_is_off(switch, monkeypatch, hourly_csv, tmp_path):
    """item 3: NO_COLOR, TERM=dumb or --no-color: no ESC on either stream, even on a terminal."""
    ckpt = tmp_path / "m.ckpt"
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    # Control: on a (fake) terminal with colour on, the bar and the table do use ESC sequences.
    code, _, err = run_app_on_fake_terminals(monkeypatch, "fit", hourly_csv, *TINY_FIT, "--output", ckpt)
    assert code == 0, err
    assert ESC in err
    code, out, _ = run_app_on_fake_terminals(monkeypatch, "evaluate", ckpt, hourly_csv, "--windows", "2", "--in-sample")
    assert code == 0 and ESC in out

    flags = []
    if switch == "NO_COLOR":
        monkeypatch.setenv("NO_COLOR", "1")
    elif switch == "TERM=dumb":
        monkeypatch.setenv("TERM", "dumb")
    else:
        flags = ["--no-color"]
    code, out, err = run_app_on_fake_terminals(monkeypatch, *flags, "fit", hourly_csv, *TINY_FIT, "--output",
                                               ckpt, "--force")
    assert code == 0, err
    assert ESC not in out + err and "\r" not in err
    assert "epoch 1/1" in err  # plain progress lines instead of the bar
    code, out, err = run_app_on_fake_terminals(monkeypatch, *flags, "evaluate", ckpt, hourly_csv, "--windows", "2",
                                               "--in-sample")
    assert code == 0, err
    assert ESC not in out + err
    assert "naive" in out


def test_item4_no_stray_files_or_folders(invoke, hourly_csv, tmp_path, monkeypatch):
    """item 4: fit, predict, evaluate and info create only the paths the user named (no lightning_logs/,
    no lock or temporary files left behind)."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    data = write(work / "data.csv", hourly_text(200))
    code, _, err = invoke("fit", data, *TINY_FIT)  # default output: gru.ckpt in the working folder
    assert code == 0, err
    code, _, err = invoke("fit", data, *TINY_FIT, "--output", "named.ckpt")
    assert code == 0, err
    code, _, err = invoke("predict", "named.ckpt", data, "--output", "forecast.csv")
    assert code == 0, err
    for args in (("evaluate", "named.ckpt", data, "--windows", "2", "--in-sample"), ("info", "named.ckpt")):
        code, _, err = invoke(*args)
        assert code == 0, err
    assert files_under(work) == {"data.csv", "gru.ckpt", "named.ckpt", "forecast.csv"}


def test_item5_predict_into_head_and_into_a_closed_pipe_ends_quietly(tiny_ckpt, hourly_csv):
    """item 5: `seqcast predict ... | head -n 2` (and a reader that closed the pipe before any write)
    ends without a traceback or BrokenPipeError message."""
    env = subprocess_env()
    producer = subprocess.Popen(cli_command("predict", tiny_ckpt, hourly_csv), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)
    head = subprocess.Popen(["head", "-n", "2"], stdin=producer.stdout, stdout=subprocess.PIPE)
    producer.stdout.close()  # head alone holds the read end, as in a shell pipeline
    read_end, write_end = os.pipe()
    closed = subprocess.Popen(cli_command("predict", tiny_ckpt, hourly_csv), stdout=write_end,
                              stderr=subprocess.PIPE, env=env)
    os.close(write_end)
    os.close(read_end)  # like `| true`: nobody will ever read
    head_out = head.communicate(timeout=90)[0].decode()
    producer_err = producer.communicate(timeout=90)[1].decode()
    closed_err = closed.communicate(timeout=90)[1].decode()
    assert head_out.splitlines()[0] == ",".join(FORECAST_COLUMNS) and len(head_out.splitlines()) == 2
    for rc, err in ((producer.returncode, producer_err), (closed.returncode, closed_err)):
        assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err
        assert rc == 0, err


def test_item6_evaluate_json_is_one_document_with_documented_keys(invoke, tiny_ckpt, hourly_csv):
    """item 6: `evaluate --json` prints exactly one JSON document on stdout."""
    code, out, err = invoke("evaluate", tiny_ckpt, hourly_csv, "--windows", "3", "--json", "--in-sample")
    assert code == 0, err
    report = json.loads(out)  # raises if stdout holds anything besides one document
    assert {"model", "checkpoint", "windows", "stride", "scaled", "lookback", "horizon", "season",
            "overall", "series"} <= set(report)
    assert report["windows"] == 3 and report["horizon"] == 6
    assert set(report["overall"]) == {"gru", "naive", "seasonal_naive"}
    assert set(report["overall"]["gru"]) == {"mse", "mae", "rmse", "mape", "smape", "mase"}
    assert "{" not in err


def test_item6_compare_json_is_one_document_with_documented_keys(invoke, hourly_csv):
    """item 6: `compare --json` prints one JSON document: a list of leaderboard rows."""
    code, out, err = invoke("compare", hourly_csv, "--models", "gru,naive", *TINY_FIT[2:], "--windows", "2",
                            "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert isinstance(rows, list) and {r["model"] for r in rows} >= {"gru", "naive"}
    documented = {"model", "parameters", "train_s", "seconds_per_epoch", "epochs", "predict_ms", "mse", "mae",
                  "rmse", "mape", "smape", "mase", "windows"}
    for row in rows:
        assert documented <= set(row)


def test_item7_quiet_success_writes_nothing_to_stderr(invoke, hourly_csv, tiny_ckpt, tmp_path):
    """item 7: with -q a successful fit or predict writes nothing to stderr."""
    code, out, err = invoke("-q", "fit", hourly_csv, *TINY_FIT, "--output", tmp_path / "m.ckpt")
    assert code == 0 and out == "" and err == ""
    code, out, err = invoke("-q", "predict", tiny_ckpt, hourly_csv)
    assert code == 0 and err == "" and out


def test_item7_quiet_never_hides_an_error(invoke, tiny_ckpt, tmp_path):
    """item 7: -q never hides an error."""
    code, out, err = invoke("-q", "predict", tiny_ckpt, tmp_path / "missing.csv")
    assert code == 2 and out == ""
    assert error_lines(err) == [f"seqcast: error: {tmp_path / 'missing.csv'}: no such file"]


def test_item7_verbose_adds_detail(invoke, tiny_ckpt, hourly_csv):
    """item 7: -v adds detail on stderr; stdout is unchanged."""
    code, out, err = invoke("predict", tiny_ckpt, hourly_csv)
    code_v, out_v, err_v = invoke("-v", "predict", tiny_ckpt, hourly_csv)
    assert code == code_v == 0
    assert out == out_v
    assert len(err_v) > len(err) and "6 forecast rows for 1 series" in err_v


def test_item7_unexpected_error_is_one_line_and_debug_shows_traceback(invoke, tiny_ckpt, hourly_csv, monkeypatch):
    """item 7 and exit code 1: an unexpected error is one line with a hint to use --debug (exit 1);
    --debug shows its traceback."""
    import seqcast.forecasting

    def broken(*args, **kwargs):
        raise RuntimeError("simulated internal failure")

    monkeypatch.setattr(seqcast.forecasting, "predict", broken)
    code, out, err = invoke("predict", tiny_ckpt, hourly_csv)
    assert code == 1 and out == ""
    assert err.strip().splitlines() == [
        "seqcast: error: unexpected RuntimeError: simulated internal failure "
        "(run again with --debug to see the traceback)"]
    code, _, err = invoke("--debug", "predict", tiny_ckpt, hourly_csv)
    assert code == 1
    assert "Traceback (most recent call last)" in err and "simulated internal failure" in err


def test_item8_version_and_help_on_the_app_and_every_command(invoke):
    """item 8: `--version` prints `seqcast X.Y.Z`; `--help` works on the app and on every command."""
    code, out, err = invoke("--version")
    assert code == 0 and err == ""
    assert re.fullmatch(r"seqcast \d+\.\d+\.\d+\n", out) and out == f"seqcast {__version__}\n"
    code, out, _ = invoke("--help")
    assert code == 0 and "Usage:" in out
    assert {c.name or c.callback.__name__ for c in app.registered_commands} == set(COMMANDS)
    for command in COMMANDS:
        assert command in out
        code, text, err = invoke(command, "--help")
        assert code == 0, err
        assert f"Usage: seqcast {command}" in text


def test_item9_help_and_version_import_neither_torch_nor_pandas(tmp_path):
    """item 9: `seqcast --help` and `--version` import neither torch nor pandas; both also run for real."""
    probe = (
        "import sys\n"
        "from seqcast.cli import main\n"
        "for flag in ('--help', '--version'):\n"
        "    sys.argv = ['seqcast', flag]\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, exc.code\n"
        "    heavy = sorted(m for m in ('torch', 'pandas') if m in sys.modules)\n"
        "    sys.stderr.write(f'{flag} imported: {heavy}\\n')\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=subprocess_env(),
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--help imported: []" in proc.stderr and "--version imported: []" in proc.stderr
    assert "Usage:" in proc.stdout and f"seqcast {__version__}" in proc.stdout


# ---------------------------------------------------------------------------------------------------
# Bad input: one specific message naming the place, exit 2 (items 10-19)


def assert_one_error(code: int, out: str, err: str, *fragments: str) -> str:
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err
    errors = error_lines(err)
    assert len(errors) == 1, err
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def test_item10_wrong_field_count_names_the_line(invoke, tmp_path):
    """item 10: a short or long row -> `data.csv: line 4: expected 3 fields, saw 4`; pandas would fill NaN."""
    good = "timestamp,value,other\n" + "".join(f"2024-01-01 {h:02d}:00,{h},1\n" for h in range(20))
    lines = good.splitlines()
    long_row = write(tmp_path / "data.csv", "\n".join(lines[:3] + [lines[3] + ",9"] + lines[4:]) + "\n")
    assert_one_error(*invoke("fit", long_row, *TINY_FIT), f"{long_row}: line 4: expected 3 fields, saw 4")
    short_row = write(tmp_path / "short.csv", "\n".join(lines[:3] + ["2024-01-01 02:00,2"] + lines[4:]) + "\n")
    assert_one_error(*invoke("fit", short_row, *TINY_FIT), f"{short_row}: line 4: expected 3 fields, saw 2")


def test_item10_stdin_is_named_stdin(invoke, tiny_ckpt):
    """item 10: the same error read from `-` names `<stdin>`."""
    text = hourly_text(50).splitlines()
    text[3] = text[3].split(",")[0]
    code, out, err = invoke("predict", tiny_ckpt, "-", input="\n".join(text) + "\n")
    assert_one_error(code, out, err, "<stdin>: line 4: expected 2 fields, saw 1")


def test_item11_non_numeric_value_names_column_line_and_value(invoke, tmp_path):
    """item 11: a non-numeric value names the column, the line and the value."""
    text = hourly_text(60).splitlines()
    text[7] = text[7].split(",")[0] + ",twelve"
    data = write(tmp_path / "data.csv", "\n".join(text) + "\n")
    assert_one_error(*invoke("fit", data, *TINY_FIT), "line 8", "column 'value'", "'twelve' is not a number")


def test_item12_unparseable_timestamp_names_line_and_value(invoke, tmp_path):
    """item 12: an unparseable timestamp names the line and the value."""
    text = hourly_text(60).splitlines()
    text[10] = "2024-01-01 25:99," + text[10].split(",")[1]
    data = write(tmp_path / "data.csv", "\n".join(text) + "\n")
    assert_one_error(*invoke("fit", data, *TINY_FIT), "line 11", "'2024-01-01 25:99'", "timestamp")


def test_item13_missing_values_count_and_first_lines_unless_filled(invoke, tmp_path):
    """item 13: missing values -> a count and the first line numbers; a --fill policy accepts them."""
    text = hourly_text(120).splitlines()
    for i in (5, 9, 30):
        text[i] = text[i].split(",")[0] + ","
    text[40] = text[40].split(",")[0] + ",NaN"
    data = write(tmp_path / "data.csv", "\n".join(text) + "\n")
    assert_one_error(*invoke("fit", data, *TINY_FIT), "4 missing values", "first at lines 6, 10, 31, 41", "--fill")
    code, _, err = invoke("fit", data, *TINY_FIT, "--fill", "interpolate", "--output", tmp_path / "m.ckpt")
    assert code == 0, err
    assert "filled 4 missing values (interpolate)" in err


def test_item14_duplicate_timestamp_names_series_and_timestamp(invoke, tmp_path):
    """item 14: a duplicate timestamp within a series names the series and the timestamp."""
    text = long_text(n=60).splitlines()
    text.insert(70, f"{NON_ASCII_ID},2024-01-01 03:00:00,1.5")  # inside oslo's block, with zürich's id
    data = write(tmp_path / "data.csv", "\n".join(text) + "\n")
    assert_one_error(*invoke("fit", data, *TINY_FIT), f"series '{NON_ASCII_ID}'", "timestamp 2024-01-01 03:00:00",
                     "appears twice", "lines 5 and 71")


def test_item15_gap_names_first_gap_and_frequency_and_offers_options(invoke, tmp_path):
    """item 15: a gap names the first gap and the inferred frequency, and offers --freq / --fill."""
    text = hourly_text(120).splitlines()
    data = write(tmp_path / "data.csv", "\n".join(text[:51] + text[54:]) + "\n")
    message = assert_one_error(*invoke("fit", data, *TINY_FIT), "gap after 2024-01-03 01:00:00",
                               "expected 2024-01-03 02:00:00", "frequency 'h'", "3 timestamps missing")
    assert "--fill" in message and "--freq" in message
    code, _, err = invoke("fit", data, *TINY_FIT, "--fill", "ffill", "--output", tmp_path / "m.ckpt")
    assert code == 0, err


def test_item15_irregular_spacing_names_the_place_and_offers_freq(invoke, tmp_path):
    """item 15: irregular spacing names where the spacing breaks and offers --freq."""
    text = hourly_text(120).splitlines()
    text[20] = "2024-01-01 19:30:00," + text[20].split(",")[1]
    data = write(tmp_path / "data.csv", "\n".join(text) + "\n")
    assert_one_error(*invoke("fit", data, *TINY_FIT), "usual step is 'h'", "2024-01-01 18:00:00 is followed by "
                     "2024-01-01 19:30:00", "--freq")
    assert_one_error(*invoke("fit", data, *TINY_FIT, "--freq", "h"), "2024-01-01 19:30:00 is off the 'h' grid")


@pytest.mark.parametrize("freq,fragment", [("bogus", "--freq 'bogus' is not a frequency"),
                                            ("7", "--freq '7' is not a frequency"),
                                            ("1us", "would need 1436400000001 rows")])
def test_item15_a_wrong_freq_option_is_exit_2(invoke, hourly_csv, freq, fragment):
    """item 15: the offered --freq, given wrongly, is a usage error (exit 2), never a crash or a huge grid."""
    assert_one_error(*invoke("fit", hourly_csv, *TINY_FIT, "--freq", freq), fragment)


def test_item16_too_short_series_required_versus_actual_per_series(invoke, tmp_path):
    """item 16: each series too short for lookback + horizon + validation: required versus actual."""
    data = write(tmp_path / "data.csv", long_text(ids=("a", NON_ASCII_ID), n=30))
    message = assert_one_error(*invoke("fit", data, *TINY_FIT), "series too short")
    assert "'a' has 30 rows, needs 36 (lookback 24 + horizon 6 + validation 6)" in message
    assert f"'{NON_ASCII_ID}' has 30 rows, needs 36" in message


def test_item17_empty_input_says_no_data_rows(invoke, tmp_path, tiny_ckpt):
    """item 17: 0 bytes, or a header only: "no data rows" (also from stdin)."""
    empty = write(tmp_path / "empty.csv", "")
    header = write(tmp_path / "header.csv", "timestamp,value\n")
    assert_one_error(*invoke("fit", empty, *TINY_FIT), f"{empty}: no data rows")
    assert_one_error(*invoke("fit", header, *TINY_FIT), f"{header}: no data rows")
    assert_one_error(*invoke("predict", tiny_ckpt, "-", input=""), "<stdin>: no data rows")


def test_item17_unknown_column_lists_the_columns(invoke, hourly_csv):
    """item 17: an unknown column name lists the columns that exist."""
    assert_one_error(*invoke("fit", hourly_csv, *TINY_FIT, "--target", "sales"), "no column 'sales'",
                     "the columns are: timestamp, value")
    assert_one_error(*invoke("fit", hourly_csv, *TINY_FIT, "--time-col", "when"), "no column 'when'",
                     "timestamp, value")


def test_item18_unknown_model_or_param_lists_valid_names(invoke, hourly_csv, tmp_path):
    """item 18: an unknown --model or --param exits 2 and lists the valid names."""
    message = assert_one_error(*invoke("fit", hourly_csv, "--model", "grue", "--output", tmp_path / "m.ckpt"),
                               "grue")
    assert all(name in message for name in ("gru", "lstm", "naive"))
    message = assert_one_error(*invoke("fit", hourly_csv, "--model", "gru", "--param", "hiden_size=8",
                                       "--output", tmp_path / "m.ckpt"), "hiden_size")
    assert "hidden_size" in message
    assert_one_error(*invoke("compare", hourly_csv, "--models", "gru,grue"), "unknown model 'grue'", "lstm")
    assert not (tmp_path / "m.ckpt").exists()


@pytest.mark.parametrize("lr", ["nan", "inf", "1e38", "-1", "2"])
def test_item18_bad_learning_rate_is_a_usage_error(invoke, hourly_csv, tmp_path, lr):
    """item 18 / exit codes: an impossible --lr is exit 2 up front, never an internal error (exit 1)."""
    assert_one_error(*invoke("fit", hourly_csv, *TINY_FIT, "--lr", lr, "--output", tmp_path / "m.ckpt"), "--lr")


def test_item19_constant_and_huge_series_train_without_nan(invoke, tmp_path):
    """item 19: a constant series, and one around 1e15, train to finite losses and finite forecasts."""
    from seqcast.checkpoint import load

    times = pd.date_range("2024-01-01", periods=200, freq="h")
    for name, values in (("constant", np.full(200, 7.0)), ("huge", 3e15 + 1e14 * np.sin(np.arange(200) / 4))):
        data = write(tmp_path / f"{name}.csv", "timestamp,value\n" + "".join(
            f"{t:%Y-%m-%d %H:%M},{float(v)!r}\n" for t, v in zip(times, values)))
        ckpt = tmp_path / f"{name}.ckpt"
        code, _, err = invoke("fit", data, *TINY_FIT, "--output", ckpt)
        assert code == 0, err
        assert math.isfinite(load(ckpt).training.val_mse_scaled)
        code, out, err = invoke("predict", ckpt, data)
        assert code == 0, err
        assert np.isfinite(forecast_frame(out)["forecast"]).all()


def test_item19_nan_training_loss_stops_without_a_checkpoint(invoke, hourly_csv, tmp_path, monkeypatch):
    """item 19: a training loss that becomes NaN stops with a clear message and writes no checkpoint."""
    real_mse = torch.nn.functional.mse_loss
    monkeypatch.setattr(torch.nn.functional, "mse_loss", lambda pred, y: real_mse(pred, y) * float("nan"))
    ckpt = tmp_path / "m.ckpt"
    assert_one_error(*invoke("fit", hourly_csv, *TINY_FIT, "--output", ckpt), "training loss became nan",
                     "no checkpoint written")
    assert files_under(tmp_path) == set()


# ---------------------------------------------------------------------------------------------------
# Files, cron and concurrency (items 20-25)


def test_item20_writes_go_through_a_temporary_file_in_the_same_folder(invoke, tiny_ckpt, hourly_csv, tmp_path,
                                                                      monkeypatch):
    """item 20: checkpoint and forecast are written to a temporary file beside the target, then moved."""
    import seqcast.files

    moves = []
    real_replace = os.replace

    def spy(src, dst):
        moves.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(seqcast.files.os, "replace", spy)
    ckpt, forecast = tmp_path / "m.ckpt", tmp_path / "out" / "f.csv"
    forecast.parent.mkdir()
    assert invoke("fit", hourly_csv, *TINY_FIT, "--output", ckpt)[0] == 0
    assert invoke("predict", ckpt, hourly_csv, "--output", forecast)[0] == 0
    assert [dst for _, dst in moves] == [ckpt, forecast]
    for src, dst in moves:
        assert src.parent == dst.parent and src.name.startswith(f".{dst.name}.") and not src.exists()


def test_item20_a_write_killed_midway_leaves_the_old_file(tmp_path, monkeypatch):
    """item 20: a run stopped in the middle of writing leaves the old file intact and no temporary file."""
    import seqcast.files
    from seqcast.files import atomic_write

    target = tmp_path / "forecast.csv"
    atomic_write(target, b"old\n")

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(seqcast.files.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, b"new and much longer\n" * 1000)
    assert target.read_bytes() == b"old\n"
    assert files_under(tmp_path) == {"forecast.csv"}


def test_item21_second_fit_exits_75_naming_the_lock_and_wait_waits(background, invoke, hourly_csv, tmp_path):
    """item 21: two runs writing the same checkpoint: the second exits 75 naming the lock; with --wait
    a third waits for the holder, and goes on when the holder is SIGKILLed."""
    ckpt = tmp_path / "shared.ckpt"
    holder = background("fit", hourly_csv, *ENDLESS_FIT, "--output", ckpt)
    holder.wait_for("1 series, 400 rows")  # said after taking the lock
    waiter = background("fit", hourly_csv, *TINY_FIT, "--output", ckpt, "--force", "--wait")
    code, out, err = invoke("fit", hourly_csv, *TINY_FIT, "--output", ckpt, "--force")  # flock is per process
    assert code == 75, err
    assert out == "" and ".shared.ckpt.lock" in err and "--wait" in err
    lock = tmp_path / ".shared.ckpt.lock"
    deadline = time.monotonic() + 60
    while not any(os.path.realpath(f"/proc/{waiter.proc.pid}/fd/{fd}") == str(lock)
                  for fd in os.listdir(f"/proc/{waiter.proc.pid}/fd")):  # opened the lock, now blocked on it
        assert waiter.proc.poll() is None, waiter.stderr
        assert time.monotonic() < deadline, "the --wait run never reached the lock"
        time.sleep(0.05)
    time.sleep(0.5)
    assert waiter.proc.poll() is None and "series" not in waiter.stderr, "waits: it has not read the data yet"
    assert not ckpt.exists()
    holder.proc.send_signal(signal.SIGKILL)
    assert holder.finish()[0] == -signal.SIGKILL
    rc, _, err = waiter.finish()
    assert rc == 0, err
    assert ckpt_module.load(ckpt).training.settings.epochs == 1  # the waiter's checkpoint
    assert files_under(tmp_path) == {"shared.ckpt"}


def test_item21_a_sigkilled_holder_never_leaves_the_lock_stuck(background, invoke, hourly_csv, tmp_path):
    """item 21: SIGKILL a fit holding the lock; a new fit (without --wait) then succeeds."""
    ckpt = tmp_path / "m.ckpt"
    holder = background("fit", hourly_csv, *ENDLESS_FIT, "--output", ckpt)
    holder.wait_for("1 series, 400 rows")
    assert invoke("fit", hourly_csv, *TINY_FIT, "--output", ckpt)[0] == 75  # held
    holder.proc.send_signal(signal.SIGKILL)
    assert holder.finish()[0] == -signal.SIGKILL
    assert (tmp_path / ".m.ckpt.lock").exists() and not ckpt.exists()  # the dead holder's lock file stays
    code, _, err = invoke("fit", hourly_csv, *TINY_FIT, "--output", ckpt)
    assert code == 0, err
    ckpt_module.load(ckpt)
    assert files_under(tmp_path) == {"m.ckpt"}


def test_item22_overwriting_needs_force_and_never_prompts(invoke, hourly_csv, tmp_path):
    """item 22: an existing checkpoint is kept unless --force; nothing prompts (stdin not a terminal)."""
    ckpt = tmp_path / "m.ckpt"
    ckpt.write_bytes(b"precious")
    code, out, err = invoke("fit", hourly_csv, *TINY_FIT, "--output", ckpt, input="y\n")
    assert_one_error(code, out, err, f"{ckpt} exists", "--force")
    assert ckpt.read_bytes() == b"precious"
    code, _, err = invoke("fit", hourly_csv, *TINY_FIT, "--output", ckpt, "--force")
    assert code == 0, err
    ckpt_module.load(ckpt)


def test_item23_same_seed_gives_byte_identical_checkpoint_and_forecast(invoke, hourly_csv, tmp_path):
    """item 23: on CPU the same command and --seed give byte-identical checkpoints and forecasts."""
    paths = [tmp_path / "a" / "m.ckpt", tmp_path / "b" / "m.ckpt"]
    forecasts = []
    for path in paths:
        path.parent.mkdir()
        code, _, err = invoke("fit", hourly_csv, *TINY_FIT[:2], "--epochs", "2", *TINY_FIT[4:], "--seed", "7",
                              "--device", "cpu", "--output", path)
        assert code == 0, err
        code, out, _ = invoke("predict", path, hourly_csv)
        forecasts.append(out)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert forecasts[0] == forecasts[1] and forecasts[0]
    code, _, _ = invoke("fit", hourly_csv, *TINY_FIT[:2], "--epochs", "2", *TINY_FIT[4:], "--seed", "8",
                        "--device", "cpu", "--output", tmp_path / "other.ckpt")
    assert (tmp_path / "other.ckpt").read_bytes() != paths[0].read_bytes(), "the seed matters"


def test_item24_cron_environment_reads_and_writes_utf8(long_csv, tmp_path):
    """item 24: under `env -i PATH=/usr/bin:/bin HOME=<tmp>` (no LANG), fit and predict work and read and
    write UTF-8: a non-ASCII series id and file names survive; -q after the command silences success."""
    home = tmp_path / "home"
    home.mkdir()
    data = tmp_path / f"daten-{NON_ASCII_ID}.csv"
    data.write_bytes(long_csv.read_bytes())
    # One torch thread, as every subprocess test runs (fast and core-count independent); nothing else.
    cron = ["env", "-i", "PATH=/usr/bin:/bin", f"HOME={home}", "OMP_NUM_THREADS=1", sys.executable, "-m", "seqcast"]
    ckpt, forecast = tmp_path / "modell.ckpt", tmp_path / f"prognose-{NON_ASCII_ID}.csv"
    fit = subprocess.run([*cron, "fit", str(data), *TINY_FIT, "--output", str(ckpt), "-q"], cwd=tmp_path,
                         capture_output=True, timeout=180)
    assert fit.returncode == 0, fit.stderr.decode("utf-8", "replace")
    assert fit.stdout == b"" and fit.stderr == b""
    predict = subprocess.run([*cron, "predict", str(ckpt), str(data), "--output", str(forecast)], cwd=tmp_path,
                             capture_output=True, timeout=180)
    assert predict.returncode == 0, predict.stderr.decode("utf-8", "replace")
    frame = pd.read_csv(forecast, encoding="utf-8")
    assert set(frame["series"]) == {NON_ASCII_ID, "oslo"}
    assert NON_ASCII_ID.encode("utf-8") in forecast.read_bytes()
    assert ckpt_module.load(ckpt).schema.series == (NON_ASCII_ID, "oslo")
    assert files_under(home) == set(), "nothing written to HOME"


def _readme_cron_lines() -> list[str]:
    """The commands of the README's crontab, schedule fields removed, otherwise as printed."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("# m h dom mon dow"):].split("```", 1)[0].splitlines()[1:]
    return [line.split(None, 5)[5] for line in block if line.strip()]


def test_item24_the_readme_cron_lines_run_verbatim_with_the_warm_start_in_place(tmp_path):
    """The README's cron lines, run as cron runs them (`env -i`, no LANG, /bin/sh through bash), in a folder
    standing for /srv/forecast: Sunday's fit, the nightly warm start that writes its checkpoint back in
    place (also through a link), the nightly forecast into the record, and the monitor, which refits
    when the forecasts drifted. Each exits 0 and writes nothing to the log."""
    lines = _readme_cron_lines()
    assert len(lines) == 4 and "--init-from models/load.ckpt --output models/load.ckpt" in lines[1]
    assert "--record records/load" in lines[2] and "monitor records/load" in lines[3] and "case $? in 3)" in lines[3]
    for folder in ("data", "models", "out", "logs", "home"):
        (tmp_path / folder).mkdir()
    (tmp_path / "data" / "load.csv").write_text(hourly_text(500), encoding="utf-8")
    shim = f'seqcast() {{ OMP_NUM_THREADS=1 "{sys.executable}" -m seqcast "$@"; }}\n'  # the installed command
    cron = ["env", "-i", "PATH=/usr/bin:/bin", f"HOME={tmp_path / 'home'}", "bash", "-c"]

    def run(line: str) -> None:
        done = subprocess.run([*cron, shim + line.replace("/srv/forecast", str(tmp_path))], capture_output=True,
                              timeout=300)
        log = (tmp_path / "logs" / "seqcast.log").read_text() if (tmp_path / "logs" / "seqcast.log").exists() else ""
        assert done.returncode == 0 and log == "", (line, done.stderr, log)

    ckpt = tmp_path / "models" / "load.ckpt"
    run(lines[0])
    sunday = ckpt_module.load(ckpt)
    assert sunday.training.init_from is None
    run(lines[1])
    monday = ckpt_module.load(ckpt)
    assert monday.training.init_from is not None and monday.training.init_from.sha256 == sunday.stored.sha256
    real = tmp_path / "models" / "load-v1.ckpt"  # a deployment that points models/load.ckpt at a versioned file
    ckpt.rename(real)
    ckpt.symlink_to(real.name)
    run(lines[1])
    assert ckpt.is_symlink() and ckpt_module.load(real).training.init_from.sha256 == monday.stored.sha256
    run(lines[2])
    forecasts = list((tmp_path / "out").glob("load-*.csv"))
    assert len(forecasts) == 1 and len(pd.read_csv(forecasts[0])) == 24
    assert "level_95" in pd.read_csv(forecasts[0]).columns  # --adapt: the coverage each band was drawn at
    before = ckpt_module.load(ckpt).stored.sha256
    run(lines[3])  # nothing due yet: healthy, no refit
    report = json.loads(next((tmp_path / "out").glob("monitor-*.json")).read_text())
    assert report["healthy"] and ckpt_module.load(ckpt).stored.sha256 == before
    shifted = hourly_text(524).splitlines()  # the next day arrives, ten units above everything before
    rows = [f"{line.split(',')[0]},{float(line.split(',')[1]) + 10:.6f}" for line in shifted[501:]]
    (tmp_path / "data" / "load.csv").write_text("\n".join(shifted[:501] + rows) + "\n", encoding="utf-8")
    run(lines[3])  # monitor exits 3: the line refits from scratch
    report = json.loads(next((tmp_path / "out").glob("monitor-*.json")).read_text())
    assert not report["healthy"] and any("overall: error" in line for line in report["drift"]), report["drift"]
    refit = ckpt_module.load(ckpt)
    assert refit.stored.sha256 != before and refit.training.init_from is None


def test_item25_sigint_during_fit_exits_130_and_leaves_nothing(background, hourly_csv, tmp_path):
    """item 25: SIGINT during fit exits 130; no checkpoint, no temporary or lock file is left."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    ckpt = out_dir / "m.ckpt"
    run = background("fit", hourly_csv, *ENDLESS_FIT, "--output", ckpt)
    run.wait_for("epoch 1/")
    run.proc.send_signal(signal.SIGINT)
    rc, out, err = run.finish()
    assert rc == 130, err
    assert out == "" and "Traceback" not in err
    assert error_lines(err) == ["seqcast: error: interrupted; nothing was written"]
    assert files_under(out_dir) == set()


def test_item25_an_interrupt_swallowed_by_python_still_stops_training(monkeypatch):
    """item 25: an interrupt that Python discarded (raised inside a finaliser) is re-raised at the next
    training step or epoch, so a Ctrl-C is never lost in a long fit."""
    from seqcast.cli.output import Output, Signals

    progress = Output().progress("gru")
    progress.step(1, 10)  # no interrupt: nothing happens
    monkeypatch.setattr(Signals, "interrupted", True)
    with pytest.raises(KeyboardInterrupt):
        progress.step(2, 10)
    with pytest.raises(KeyboardInterrupt):
        progress.epoch(None)


# ---------------------------------------------------------------------------------------------------
# Checkpoints (items 26-30)


@pytest.fixture
def no_model_built(monkeypatch):
    """Fail if loading gets as far as putting the file's tensors into a model (the model itself may be
    built before the digest is checked: within the bytes the header lists, as meta_schema explains)."""
    def refuse(*args, **kwargs):
        raise AssertionError("the checkpoint was used before it was verified")

    from seqcast.window_norm import WindowNorm

    monkeypatch.setattr(WindowNorm, "load_state_dict", refuse)


def assert_refused(invoke, path: Path, hourly_csv: Path, *fragments: str) -> None:
    for args in (("predict", path, hourly_csv), ("info", path)):
        assert_one_error(*invoke(*args), str(path), *fragments)
    with pytest.raises(CheckpointError):
        ckpt_module.load(path)


@pytest.mark.parametrize("kind", ["pickle", "torch.save"])
def test_item26_a_pickle_is_refused_and_never_runs(kind, invoke, hourly_csv, tmp_path):
    """item 26: loading never unpickles: a pickle (plain or torch.save) whose __reduce__ would create a
    file is refused as "not a seqcast checkpoint", and the file never appears."""
    sentinel = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(sentinel), "w"))

    path = tmp_path / "evil.ckpt"
    if kind == "pickle":
        path.write_bytes(pickle.dumps({"state_dict": Payload()}))
    else:
        torch.save({"state_dict": Payload()}, path)
    assert not sentinel.exists()
    assert_refused(invoke, path, hourly_csv, "not a seqcast checkpoint")
    assert not sentinel.exists()


def test_item27_a_truncated_checkpoint_is_refused_before_use(invoke, tiny_ckpt, hourly_csv, tmp_path, no_model_built):
    """item 27: a truncated checkpoint (inside the header, or inside the weights) is refused."""
    data = tiny_ckpt.read_bytes()
    size = ckpt_parts(data)[0]
    in_header, in_weights = tmp_path / "header.ckpt", tmp_path / "weights.ckpt"
    in_header.write_bytes(data[: 8 + size // 2])
    in_weights.write_bytes(data[:-7])
    assert_refused(invoke, in_header, hourly_csv, "checkpoint is truncated")
    assert_refused(invoke, in_weights, hourly_csv, "truncated or has extra bytes")


def test_item27_one_flipped_byte_in_weights_or_metadata_is_refused(invoke, tiny_ckpt, hourly_csv, tmp_path,
                                                                    no_model_built):
    """item 27: one flipped byte in the weights, or in the metadata JSON, fails with a clear message."""
    data = bytearray(tiny_ckpt.read_bytes())
    size, header, _ = ckpt_parts(bytes(data))
    weights = tmp_path / "weights.ckpt"
    flipped = data.copy()
    weight = next(k for k in sorted(header) if k != "__metadata__" and not k.startswith("seqcast.series"))
    flipped[8 + size + header[weight]["data_offsets"][0] + 1] ^= 0x01  # a weight, not a per-series table
    weights.write_bytes(bytes(flipped))
    assert_refused(invoke, weights, hourly_csv, "digest does not match")

    meta_value = tmp_path / "meta.ckpt"  # still valid JSON, a different value: the digest catches it
    flipped = data.copy()
    at = bytes(data).index(b'\\"lr\\":0.003', 8, 8 + size) + len(b'\\"lr\\":0.00')
    flipped[at] ^= 0x01  # 0.003 -> 0.002
    meta_value.write_bytes(bytes(flipped))
    assert_refused(invoke, meta_value, hourly_csv, "digest does not match")

    meta_syntax = tmp_path / "syntax.ckpt"  # broken JSON
    flipped = data.copy()
    flipped[8] ^= 0x01  # the header's opening brace
    meta_syntax.write_bytes(bytes(flipped))
    assert_refused(invoke, meta_syntax, hourly_csv, "not a seqcast checkpoint")
    flipped = data.copy()
    flipped[8 + size // 2] = ord("\x07")
    meta_syntax.write_bytes(bytes(flipped))
    assert_refused(invoke, meta_syntax, hourly_csv, "damaged checkpoint header")


def test_item28_a_newer_format_asks_to_upgrade_seqcast(invoke, tiny_ckpt, hourly_csv, tmp_path, no_model_built):
    """item 28: a checkpoint from a newer format: "checkpoint format N is newer than this seqcast
    supports (M); upgrade seqcast"."""
    data = tiny_ckpt.read_bytes()
    document = ckpt_parts(data)[2]
    newer = ckpt_module.FORMAT_VERSION + 1
    path = tmp_path / "future.ckpt"
    path.write_bytes(with_document(data, {**document, "format": newer}))
    assert_refused(invoke, path, hourly_csv, f"checkpoint format {newer} is newer than this seqcast supports "
                   f"({ckpt_module.FORMAT_VERSION}); upgrade seqcast")


def test_item28_current_format_round_trips_through_upgrade(tiny_ckpt, tmp_path):
    """item 28: the upgrade function leaves the current format unchanged, and a re-serialised header
    of the current format still loads (the crafting above changes only what it means to)."""
    data = tiny_ckpt.read_bytes()
    document = ckpt_parts(data)[2]
    assert document["format"] == ckpt_module.FORMAT_VERSION
    assert ckpt_module.upgrade(ckpt_module.FORMAT_VERSION, document["meta"]) == document["meta"]
    path = tmp_path / "same.ckpt"
    path.write_bytes(with_document(data, document))
    assert ckpt_module._without_tables(ckpt_module.to_meta(ckpt_module.load(path)))[0] == document["meta"]


FORMAT_1 = Path(__file__).parent / "fixtures" / "format1"
FORMAT_1_FILES = json.loads((FORMAT_1 / "manifest.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("entry", FORMAT_1_FILES, ids=[e["checkpoint"] for e in FORMAT_1_FILES])
def test_item28_an_older_format_is_upgraded_from_a_stored_fixture(entry, invoke):
    """item 28: older versions are upgraded in one function, tested against stored fixtures: format-1
    checkpoints written by seqcast 0.1.0 (tests/fixtures/format1/README.md) forecast the numbers that
    version wrote, and `info` says the file was upgraded."""
    path, data = FORMAT_1 / entry["checkpoint"], (FORMAT_1 / entry["data"]).resolve()
    ckpt = ckpt_module.load(path)
    assert ckpt.stored.format == 1 < ckpt_module.FORMAT_VERSION
    integer_time = ckpt.schema.integer_time  # an integer step is kept, so `year` stays integers
    from seqcast.formats import FORMAT_1_POLICY  # the format history lives in formats.py

    assert ckpt_module.to_meta(ckpt)["policy"] == {**FORMAT_1_POLICY, "freq_given": integer_time,
                                                   "wide": False}  # (format 8 added it)
    assert ckpt.training.seen_until is None and ckpt.training.best_epoch is None
    code, out, err = invoke("predict", path, data, *entry["predict_args"])
    assert code == 0, err
    # The same rows; the numbers to float32 precision (torch's kernels may round differently on other CPUs).
    now, then = pd.read_csv(io.StringIO(out)), pd.read_csv(FORMAT_1 / entry["forecast"])
    pd.testing.assert_frame_equal(now.drop(columns="forecast"), then.drop(columns="forecast"))
    assert now["forecast"].to_numpy() == pytest.approx(then["forecast"].to_numpy(), rel=1e-6)
    code, out, err = invoke("info", path)
    assert code == 0, err
    assert f"format      1, upgraded to {ckpt_module.FORMAT_VERSION} on reading" in out
    if "evaluate" in entry:
        code, out, err = invoke("evaluate", path, data, *entry["evaluate_args"])
        assert code == 0, err
        assert "cannot tell which rows of this file it was trained on (checkpoint format 1 did not record it)" in err
        then, now = json.loads((FORMAT_1 / entry["evaluate"]).read_text(encoding="utf-8")), json.loads(out)
        assert now["windows"] == then["windows"]
        for name, values in then["overall"].items():
            assert now["overall"][name] == pytest.approx(values, rel=1e-6)


def test_item29_nan_or_inf_weights_are_refused(invoke, tiny_ckpt, hourly_csv, tmp_path):
    """item 29: weights holding NaN or Inf are refused, even with a correct digest."""
    for bad in (float("nan"), float("inf")):
        ckpt = ckpt_module.load(tiny_ckpt)
        with torch.no_grad():
            next(iter(ckpt.model.parameters())).view(-1)[0] = bad
        path = tmp_path / f"{bad}.ckpt"
        path.write_bytes(ckpt_module.to_bytes(ckpt))  # a correct digest
        assert_refused(invoke, path, hourly_csv, "holds NaN or infinite values")


def test_item29_weights_that_do_not_fit_the_recorded_config_are_refused(invoke, tiny_ckpt, hourly_csv, tmp_path):
    """item 29: weight shapes that differ from the recorded config are refused, even with a correct digest."""
    ckpt = ckpt_module.load(tiny_ckpt)
    meta = ckpt_module.to_meta(ckpt)
    meta["model_info"]["params"]["hidden_size"] = 16  # the weights are for hidden_size 8
    path = tmp_path / "shape.ckpt"
    path.write_bytes(ckpt_module.to_bytes(ckpt_module.from_meta(meta, ckpt.model)))
    assert_refused(invoke, path, hourly_csv, "has shape", "the recorded gru config needs")
    meta = ckpt_module.to_meta(ckpt)
    meta["model_info"]["params"]["num_layers"] = 2
    path.write_bytes(ckpt_module.to_bytes(ckpt_module.from_meta(meta, ckpt.model)))
    assert_refused(invoke, path, hourly_csv, "weights do not match the recorded gru model", "missing")


def test_item30_other_columns_name_expected_versus_got(invoke, tiny_ckpt, tmp_path):
    """item 30: predicting on data with other columns than training names expected versus got."""
    data = write(tmp_path / "data.csv", hourly_text(100).replace("timestamp,value", "timestamp,load", 1))
    assert_one_error(*invoke("predict", tiny_ckpt, data), "no column 'value'", "columns are: timestamp, load")
    data = write(tmp_path / "time.csv", hourly_text(100).replace("timestamp,value", "when,value", 1))
    assert_one_error(*invoke("predict", tiny_ckpt, data), "no column 'timestamp'", "columns are: when, value")


def test_item30_other_frequency_names_expected_versus_got(invoke, tiny_ckpt, tmp_path):
    """item 30: predicting on data of another frequency names expected versus got."""
    data = write(tmp_path / "daily.csv", hourly_text(100, freq="D"))
    assert_one_error(*invoke("predict", tiny_ckpt, data), "frequency differs from training",
                     "expected 'h'", "got 'D'")
    steps = write(tmp_path / "steps.csv", "timestamp,value\n" + "".join(f"{i},{i % 7}\n" for i in range(100)))
    assert_one_error(*invoke("predict", tiny_ckpt, steps), "expected 'h'", "got '1'")
