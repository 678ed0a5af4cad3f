"""Shared fixtures for CLI and data tests: small synthetic CSVs, one tiny trained checkpoint, and
helpers that run the CLI in-process (Typer's CliRunner) or as a real subprocess.

    hourly_csv   400 hourly rows, ``timestamp,value``, a daily sine plus noise
    long_csv     long format ``unique_id,ds,y``: two hourly series, one with a non-ASCII id ("zürich")
    tiny_ckpt    a GRU trained on ``hourly_csv`` with TINY_FIT (lookback 24, horizon 6, hidden 8, 1 epoch)
    invoke       invoke("predict", ckpt, csv, input=...) -> (exit code, stdout, stderr) through CliRunner
    run_cli      run_cli("predict", ckpt, csv, input=b"...", env=..., cwd=...) -> (rc, stdout, stderr)
                 through ``[sys.executable, "-m", "seqcast", ...]`` (text, UTF-8)
    randomised   randomised(name, lookback, horizon, n_features, scale=0.1, **params): a model whose
                 parameters (zero heads included) are all non-zero, like a trained one

All data here is synthetic.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# Tiny models gain nothing from threads, and on a shared 2-core machine extra threads make every fit
# many times slower; one thread also makes results independent of the core count. Set before torch
# is imported by any test module; a value the user set wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

FORECAST_COLUMNS = ["series", "timestamp", "step", "model", "target", "forecast"]
# The fastest settings that still train a real model; every CLI test that fits uses these. The window
# norm and loss are given, so that these fits do not probe (tests/test_choices.py tests the probes).
TINY_FIT = ["--model", "gru", "--epochs", "1", "--lookback", "24", "--horizon", "6", "--param", "hidden_size=8",
            "--window-norm", "mean", "--loss", "mse"]
NON_ASCII_ID = "zürich"


def hourly_text(n: int = 400, seed: int = 0, start: str = "2024-01-01 00:00:00", freq: str = "h") -> str:
    """``timestamp,value`` CSV text: a daily sine plus a little noise."""
    import pandas as pd

    times = pd.date_range(start, periods=n, freq=freq)
    noise = np.random.default_rng(seed).normal(scale=0.1, size=n)
    values = np.sin(np.arange(n) * 2 * np.pi / 24) + noise
    return "timestamp,value\n" + "".join(f"{t:%Y-%m-%d %H:%M:%S},{v:.6f}\n" for t, v in zip(times, values))


def long_text(ids: tuple[str, ...] = (NON_ASCII_ID, "oslo"), n: int = 120, seed: int = 1) -> str:
    """``unique_id,ds,y`` CSV text with one hourly series per id."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    times = pd.date_range("2024-01-01", periods=n, freq="h")
    lines = ["unique_id,ds,y"]
    for k, sid in enumerate(ids):
        values = 10 * k + np.sin(np.arange(n) * 2 * np.pi / 24) + rng.normal(scale=0.1, size=n)
        lines += [f"{sid},{t:%Y-%m-%d %H:%M:%S},{v:.6f}" for t, v in zip(times, values)]
    return "\n".join(lines) + "\n"


@pytest.fixture(autouse=True)
def _in_an_empty_folder(tmp_path_factory, monkeypatch):
    """Every test starts in a new empty folder: what the user left in theirs (the README's gru.ckpt in
    the repository root) never changes a result, and no test leaves files there."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def hourly_csv(data_dir) -> Path:
    path = data_dir / "hourly.csv"
    path.write_text(hourly_text(), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def long_csv(data_dir) -> Path:
    path = data_dir / "long.csv"
    path.write_text(long_text(), encoding="utf-8")
    return path


def cli_invoke(*args, input=None, env=None):
    """Run the Typer app in-process; returns (exit code, stdout, stderr) with the streams kept apart."""
    from typer.testing import CliRunner

    from seqcast.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args], input=input, env=env)
    if result.exit_code == 1 and result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a crash inside the test harness itself; show it
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="session")
def invoke():
    return cli_invoke


def subprocess_env(**extra: str) -> dict[str, str]:
    """The current environment, one torch thread (fast, and identical between runs), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update(OMP_NUM_THREADS="1", PYTHONIOENCODING="utf-8")
    env.update(extra)
    return env


def cli_command(*args) -> list[str]:
    return [sys.executable, "-m", "seqcast", *[str(a) for a in args]]


def run_cli_subprocess(*args, input: bytes | str | None = None, env: dict | None = None, cwd=None,
                       timeout: float = 120) -> tuple[int, str, str]:
    """Run the real CLI (``python -m seqcast ARGS``) and return (rc, stdout, stderr) as UTF-8 text."""
    if isinstance(input, str):
        input = input.encode("utf-8")
    proc = subprocess.run(cli_command(*args), input=input if input is not None else b"",
                          capture_output=True, env=env or subprocess_env(), cwd=cwd, timeout=timeout)
    return proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8")


@pytest.fixture(scope="session")
def run_cli():
    return run_cli_subprocess


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory, hourly_csv) -> Path:
    """A GRU checkpoint trained on ``hourly_csv`` in about a second (shared by the whole session)."""
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    code, _, err = cli_invoke("fit", hourly_csv, *TINY_FIT, "--output", path)
    assert code == 0, err
    return path


def randomised(name: str, lookback: int, horizon: int, n_features: int, scale: float = 0.1, covariates=None,
               **params):
    """A model whose parameters (zero heads included) are all non-zero, like a trained one; built for
    ``covariates`` (models/_layers.Covariates widths) when given."""
    import torch

    from seqcast.build import create_model

    torch.manual_seed(0)
    model = create_model(name, lookback, horizon, n_features, params, covariates=covariates)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * scale)
    return model


def assert_forecasts_as_recorded(out: str, recorded: Path) -> None:
    """A forecast CSV (``out``) equals the one an older seqcast wrote (``recorded``): the same rows and
    labels, the numbers to float32 precision (torch's kernels round differently on other CPUs)."""
    import io

    import pandas as pd

    now, then = pd.read_csv(io.StringIO(out)), pd.read_csv(recorded)
    numbers = [c for c in then.columns if c == "forecast" or c.startswith(("lo_", "hi_", "q"))]
    pd.testing.assert_frame_equal(now.drop(columns=numbers), then.drop(columns=numbers))
    for column in numbers:
        assert now[column].to_numpy() == pytest.approx(then[column].to_numpy(), rel=1e-6), column


FIXTURES = Path(__file__).parent / "fixtures"


def format_fixtures(version: int) -> list:
    """pytest parameters, one per checkpoint in tests/fixtures/formatN (its manifest.json: the checkpoint
    that format's code wrote, its data, predict arguments and the forecast it wrote), named by the file."""
    manifest = FIXTURES / f"format{version}" / "manifest.json"
    return [pytest.param(entry, id=entry["checkpoint"]) for entry in json.loads(manifest.read_text(encoding="utf-8"))]


def load_fixture(version: int, entry: dict):
    """A format-N fixture as today's code loads it, upgraded on reading (and still saying it was stored as N)."""
    from seqcast import checkpoint

    loaded = checkpoint.load(FIXTURES / f"format{version}" / entry["checkpoint"])
    assert loaded.stored.format == version < checkpoint.FORMAT_VERSION
    return loaded


def assert_fixture_forecasts_as_recorded(invoke, version: int, entry: dict) -> None:
    """predict with a format-N fixture, its manifest's data and arguments (paths relative to its folder),
    forecasts what that format's code wrote."""
    folder = FIXTURES / f"format{version}"
    arguments = [str((folder / a).resolve()) if a.startswith("..") else a for a in entry["predict_args"]]
    code, out, err = invoke("predict", folder / entry["checkpoint"], (folder / entry["data"]).resolve(), *arguments)
    assert code == 0, err
    assert_forecasts_as_recorded(out, folder / entry["forecast"])


def ckpt_parts(data: bytes) -> tuple[int, dict, dict]:
    """(header size, safetensors header, seqcast document) of a checkpoint's bytes."""
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    return size, header, json.loads(header["__metadata__"]["seqcast"])


def with_document(data: bytes, document: dict) -> bytes:
    """The checkpoint with its seqcast document replaced (header re-serialised, tensors untouched)."""
    size, header, _ = ckpt_parts(data)
    header["__metadata__"]["seqcast"] = json.dumps(document)
    raw = json.dumps(header).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data[8 + size :]


@pytest.fixture(scope="session")
def onnx_extra():
    """seqcast.export, or the test is skipped saying which extra it needs (seqcast[onnx])."""
    for module in ("onnxruntime", "onnx", "onnxscript"):
        pytest.importorskip(module, reason="the ONNX tests need seqcast[onnx]")
    from seqcast import export

    return export
