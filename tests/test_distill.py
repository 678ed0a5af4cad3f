"""Distillation and int8 for the edge (issue 34): `seqcast distill` and quantization-aware training.

Contracts:
- a taught window's target is (1 - w) x actual + w x the teacher's forecast, in the student's scaled
  units whatever its transform; a window the teacher did not forecast keeps its real target;
- the teacher's forecasts are the teacher's own (a naive teacher's are each window's last value);
- ``distill`` works through the CLI on a real panel with a network and with an auto-ensemble teacher:
  the checkpoint records the teacher's path and digest, its weight and the validation gap, and
  forecasts like any checkpoint; ``--max-bytes`` picks a width whose int8 graph fits, and refuses a
  budget nothing fits; bad students, horizons and weights exit 2 naming the fix;
- quantization-aware training keeps weights that int8 rounding leaves as they are, so the int8 export
  forecasts what the checkpoint does (GRU weights included, stored int8: test_edge.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from seqcast import checkpoint, int8

ROOT = Path(__file__).resolve().parents[1]
PANEL = ROOT / "sample_data" / "us_macro_quarterly.csv"
QUICK = ["--max-steps", "30", "--seed", "0", "--threads", "1"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, invoke) -> Path:
    path = tmp_path_factory.mktemp("teacher") / "teacher.ckpt"
    code, _, err = invoke("fit", PANEL, "--id-col", "unique_id", "--model", "nlinear", *QUICK, "--output", path)
    assert code == 0, err
    return path


@pytest.fixture(scope="module")
def student(tmp_path_factory, invoke, teacher) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("student") / "gru.student.ckpt"
    code, out, err = invoke("distill", teacher, PANEL, "--model", "gru", "--max-bytes", "30000", *QUICK,
                            "--output", path, "--json")
    assert code == 0, err
    return path, out + err


# --- the targets a student learns from ------------------------------------------------------------------

def test_taught_targets_mix_the_teachers_forecast_in_by_its_weight():
    from seqcast.windows import WindowSet

    values = torch.arange(20, dtype=torch.float32)[:, None]
    windows = WindowSet(values, None, np.array([0]), np.array([0]), np.array([4]), np.array([10]), 4, 3)
    teacher = torch.full((10, 3, 1), 100.0)
    weights = torch.tensor([0.25] * 5 + [0.0] * 5)
    _, y, _ = windows.teach(teacher, weights).batch(slice(None))
    _, real, _ = windows.batch(slice(None))
    assert torch.allclose(y[:5], 0.75 * real[:5] + 25.0) and torch.equal(y[5:], real[5:])
    _, picked, _ = windows.teach(teacher, weights).batch(torch.tensor([6, 1]))
    assert torch.equal(picked[0], real[6]) and torch.allclose(picked[1], 0.75 * real[1] + 25.0)
    with pytest.raises(ValueError):
        windows.teach(teacher[:3], weights)


@pytest.mark.parametrize("kind", ["none", "log", "boxcox"])
def test_a_naive_teachers_forecasts_reach_the_student_as_each_windows_last_value(kind, teacher):
    """With weight 1 a taught target is the teacher's forecast: for a naive teacher the window's last
    value, in the student's own scaled units under either transform."""
    from dataclasses import replace

    from seqcast.build import build_network
    from seqcast.data import DataConfig, load_series
    from seqcast.distill import Labels, Teaching
    from seqcast.scaling import Scaler
    from seqcast.transform import TargetTransform
    from seqcast.windows import build_windows, default_split, model_arrays, split_targets

    base = checkpoint.load(teacher)
    naive = replace(base, model=build_network("naive", base.lookback, base.horizon, 1, window_norm="last",
                                              seasons=(4,)).eval())
    series = load_series(str(PANEL), DataConfig(id_col="unique_id", time_col="ds", target=("y",)))
    splits = default_split(series, 16, base.horizon)
    train_rows = {sid: sp.train for sid, sp in splits.items()}
    transform = TargetTransform.fit(kind, series, train_rows)
    shown = transform.apply(series)
    scaler = Scaler.fit(shown, train_rows)
    arrays, _ = model_arrays(shown, scaler, base.covariates)
    windows = build_windows(shown, arrays, 16, base.horizon, split_targets(splits, "train"))
    labels = Labels(Teaching(naive, weight=1.0), series, splits)
    taught = labels.teach(windows, series, shown, transform, scaler)
    x, y, _ = taught.batch(slice(None))
    hit = taught.taught[1] > 0
    assert hit.sum() > 0.8 * len(windows)  # the teacher's lookback (8) is shorter: it forecasts nearly all
    last = x[hit][:, -1:, :].expand(-1, base.horizon, -1)
    assert torch.allclose(y[hit], last, atol=1e-4)


# --- distill through the CLI ----------------------------------------------------------------------------

def test_distill_records_its_teacher_and_the_validation_gap(student, teacher, invoke, tmp_path):
    path, said = student
    loaded = checkpoint.load(path)
    taught = loaded.distillation
    assert taught.teacher == str(teacher) and taught.sha256 == checkpoint.load(teacher).stored.sha256
    assert taught.model == "nlinear" and taught.weight == 0.5 and 0 < taught.taught == taught.windows
    assert taught.teacher_mase > 0 and loaded.backtest.mase > 0 and loaded.training.settings.qat
    assert loaded.name == "gru" and loaded.horizon == checkpoint.load(teacher).horizon
    summary = json.loads(said[said.index("{"):said.rindex("}") + 1])
    assert summary["distillation"]["gap"] == pytest.approx(loaded.backtest.mase / taught.teacher_mase - 1)
    assert "teacher nlinear" in said and "validation MASE" in said and "--max-bytes 30,000: hidden_size" in said
    assert "nlinear (" in said and "forecasts the training windows first, in at most 300 s" in said
    code, out, err = invoke("predict", path, PANEL)
    assert code == 0 and out.count("\n") == 8 * loaded.horizon + 1, err
    code, out, _ = invoke("info", path)
    assert code == 0 and "distilled" in out and str(teacher) in out


def test_the_student_fits_its_byte_budget_as_int8_and_forecasts_what_the_checkpoint_does(student, onnx_extra,
                                                                                      invoke, tmp_path):
    path, _ = student
    onnx = tmp_path / "s.int8.onnx"
    code, out, err = invoke("export", path, "--int8", "--output", onnx, "--json")
    assert code == 0, err
    document = json.loads(out)
    assert 0 < document["graph_bytes"] <= 30_000 and document["bytes"] == onnx.stat().st_size
    assert document["parity"]["max_difference"] < 0.01  # the weights were kept int8: only activations round
    _, ckpt_out, _ = invoke("predict", path, PANEL)
    _, onnx_out, _ = invoke("predict", onnx, PANEL)
    got = np.array([float(line.rsplit(",", 1)[1]) for line in onnx_out.splitlines()[1:]])
    want = np.array([float(line.rsplit(",", 1)[1]) for line in ckpt_out.splitlines()[1:]])
    assert np.allclose(got, want, rtol=0.01)


def test_an_auto_ensemble_teaches_too(invoke, tmp_path):
    teacher = tmp_path / "auto.ckpt"
    code, _, err = invoke("fit", PANEL, "--id-col", "unique_id", "--model", "auto", "--candidates", "naive,nlinear",
                          "--time-budget", "10", "--seed", "0", "--output", teacher)
    assert code == 0, err
    path = tmp_path / "n.ckpt"
    code, out, err = invoke("distill", teacher, PANEL, "--model", "nlinear", "--teacher-weight", "0.8", *QUICK,
                            "--output", path)
    assert code == 0, err
    taught = checkpoint.load(path).distillation
    assert taught.model == "auto" and taught.weight == 0.8 and taught.taught == taught.windows > 0


@pytest.mark.parametrize("arguments, message", [
    (["--model", "transformer"], "a student is one of lstm, gru, rnn, tcn, nlinear"),
    (["--teacher-weight", "0"], "--teacher-weight 0.0: give the teacher's share"),
    (["--teacher-weight", "1.5"], "--teacher-weight 1.5"),
    (["--teacher-time", "0"], "--teacher-time"),
    (["--max-bytes", "500"], "--max-bytes 500: the smallest gru"),
])
def test_distill_refuses_what_cannot_be_a_student_with_exit_2(arguments, message, invoke, teacher, tmp_path,
                                                              onnx_extra):
    code, out, err = invoke("distill", teacher, PANEL, *arguments, *QUICK, "--output", tmp_path / "x.ckpt")
    assert code == 2 and out == "" and message in err, err
    assert not (tmp_path / "x.ckpt").exists()


# --- quantization-aware training ------------------------------------------------------------------------

def test_fake_int8_rounds_to_255_levels_and_passes_the_gradient_straight_through():
    weight = torch.randn(16, 8, requires_grad=True)
    rounded = int8.fake_int8(weight)
    scale = weight.detach().abs().max() / 127
    assert torch.allclose(rounded / scale, torch.round(rounded / scale), atol=1e-4)
    assert len(torch.unique(torch.round(rounded / scale))) <= 255
    rounded.sum().backward()
    assert torch.equal(weight.grad, torch.ones_like(weight))
    snapped = nn.Linear(8, 16)
    int8.snap(snapped)
    assert torch.equal(int8.fake_int8(snapped.weight), snapped.weight)  # rounding it again changes nothing


def test_fit_with_qat_keeps_int8_weights(invoke, hourly_csv, tmp_path):
    from conftest import TINY_FIT

    path = tmp_path / "q.ckpt"
    code, _, err = invoke("fit", hourly_csv, *TINY_FIT, "--qat", "--output", path)
    assert code == 0, err
    loaded = checkpoint.load(path)
    assert loaded.training.settings.qat
    for name, weight in loaded.model.named_parameters():
        if int8.rounded(name, weight):
            assert torch.equal(int8.fake_int8(weight.detach()), weight.detach()), name


def test_the_readme_distill_lines_run(invoke, tmp_path, monkeypatch, onnx_extra):
    """The README's "Distil for the edge" block on the sample panel, each line as printed; the fit and the
    distill are shortened (auto to two candidates, a few steps), which changes what they train, not the lines."""
    import shlex
    import shutil

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("**Distil for the edge.**", 1)[1].split("```", 2)[1]
    lines = [line.strip() for line in block.strip().splitlines()]
    assert len(lines) == 4 and all(line.startswith("seqcast ") for line in lines)
    monkeypatch.chdir(tmp_path)
    shutil.copy(PANEL, "panel.csv")
    shorter = {"fit": ["--candidates", "naive,nlinear", "--time-budget", "10", "--max-steps", "20"],
               "distill": ["--max-steps", "20"]}
    for line in lines:
        words, target = shlex.split(line), None
        if ">" in words:
            words, target = words[: words.index(">")], words[words.index(">") + 1]
        code, out, err = invoke(*words[1:], *shorter.get(words[1], []))
        assert code == 0, (line, err)
        if target:
            Path(target).write_text(out, encoding="utf-8")
    forecast = Path("forecast.csv").read_text(encoding="utf-8").splitlines()
    assert forecast[0].startswith("series,") and len(forecast) == 1 + 8 * checkpoint.load("student.ckpt").horizon
    assert checkpoint.load("student.ckpt").distillation.model == "auto"


def test_a_teacher_short_of_time_forecasts_fewer_windows_spread_over_every_series(teacher):
    """A teacher given (nearly) no time forecasts at least each series' last training window; the record
    and the split it hands the student say what it did."""
    from seqcast.data import DataConfig, load_series
    from seqcast.distill import Labels, Teaching, teacher_split
    from seqcast.windows import Split, default_split

    loaded = checkpoint.load(teacher)
    series = load_series(str(PANEL), DataConfig(id_col="unique_id", time_col="ds", target=("y",)))
    splits = default_split(series, loaded.lookback, loaded.horizon)
    short = Labels(Teaching(loaded, seconds=1e-6), series, splits)
    whole = Labels(Teaching(loaded), series, splits)
    assert len(short) == len(series.series) < len(whole) == whole.possible == short.possible
    assert sorted(set((short.keys // short.width).tolist())) == list(range(len(series.series)))
    assert teacher_split(loaded) is None  # an automatic split: the student's own, with the same validation rows
    from dataclasses import replace

    explicit = replace(loaded, training=replace(loaded.training, split={s: {"train": 150, "val": 20, "test": 20}
                                                                         for s in series.ids}))
    assert teacher_split(explicit) == Split(150, 20, 20)


def test_a_teacher_with_quantiles_teaches_each_of_them(invoke, tmp_path):
    """A quantile teacher's student gets the same quantiles, each trained towards the teacher's own (a target
    per quantile, mixed like the point's); its checkpoint forecasts them through predict."""
    from seqcast.data import DataConfig, load_series
    from seqcast.distill import Labels, Teaching
    from seqcast.scaling import Scaler
    from seqcast.transform import TargetTransform
    from seqcast.windows import build_windows, default_split, model_arrays, split_targets

    teacher = tmp_path / "q.ckpt"
    code, _, err = invoke("fit", PANEL, "--id-col", "unique_id", "--model", "nlinear", "--quantiles", "0.1,0.9",
                          *QUICK, "--output", teacher)
    assert code == 0, err
    loaded = checkpoint.load(teacher)
    series = load_series(str(PANEL), DataConfig(id_col="unique_id", time_col="ds", target=("y",)))
    splits = default_split(series, 16, loaded.horizon)
    train_rows = {sid: sp.train for sid, sp in splits.items()}
    transform = TargetTransform.fit("none", series, train_rows)
    scaler = Scaler.fit(series, train_rows)
    windows = build_windows(series, model_arrays(series, scaler, loaded.covariates)[0], 16, loaded.horizon,
                            split_targets(splits, "train"))
    labels = Labels(Teaching(loaded, weight=1.0), series, splits)
    each = labels.teach(windows, series, series, transform, scaler, (0.1, 0.5, 0.9))
    point = labels.teach(windows, series, series, transform, scaler)
    _, y, _ = each.batch(slice(None))
    _, y_point, _ = point.batch(slice(None))
    assert y.shape == (len(windows), loaded.horizon, 1, 3) and y_point.shape == (len(windows), loaded.horizon, 1)
    assert torch.allclose(y[..., 1], y_point) and bool((y[..., 0] <= y[..., 1]).all() and (y[..., 1] <= y[..., 2]).all())
    student = tmp_path / "s.ckpt"
    code, _, err = invoke("distill", teacher, PANEL, "--model", "nlinear", *QUICK, "--output", student)
    assert code == 0, err
    assert checkpoint.load(student).model_info.quantiles == loaded.model_info.quantiles == (0.1, 0.5, 0.9)
    code, out, err = invoke("predict", student, PANEL)
    assert code == 0 and "q10" in out.splitlines()[0] and "q90" in out.splitlines()[0], err
