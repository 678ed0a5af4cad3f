"""The training loop's rules: validated settings, weight decay on weight matrices only, and the
schedule recorded in every checkpoint."""

import math

import pytest
import torch

from conftest import TINY_FIT
from seqcast import checkpoint
from seqcast.errors import UsageError
from seqcast.build import create_model
from seqcast.budget import Schedule, TrainConfig
from seqcast.training import _parameter_groups


@pytest.mark.parametrize("bad", [{"lr": math.nan}, {"lr": 2.0}, {"patience": 0}, {"epochs": -1},
                                 {"weight_decay": math.nan}, {"clip": 0.0}, {"max_steps": -3}])
def test_a_python_caller_cannot_build_impossible_settings(bad):
    with pytest.raises(UsageError, match=f"--{next(iter(bad)).replace('_', '-')}"):
        TrainConfig(**bad)


def test_weight_decay_reaches_weight_matrices_only():
    model = create_model("transformer", 24, 6, 1, {"d_model": 8, "nhead": 2, "dim_feedforward": 8})
    decayed, kept = _parameter_groups(model, 1e-4)
    assert decayed["weight_decay"] == 1e-4 and kept["weight_decay"] == 0.0
    assert decayed["params"] and all(p.ndim >= 2 for p in decayed["params"])
    assert kept["params"] and all(p.ndim < 2 for p in kept["params"])  # biases and layer-norm gains
    names = {id(p): n for n, p in model.named_parameters()}
    assert any("norm" in names[id(p)] for p in kept["params"])
    assert sum(p.numel() for g in (decayed, kept) for p in g["params"]) == sum(p.numel() for p in model.parameters())


def test_schedule_is_recorded_and_read_back(tiny_ckpt):
    loaded = checkpoint.load(tiny_ckpt)
    assert loaded.training.settings.schedule == Schedule()
    assert checkpoint.to_meta(loaded)["training"]["settings"]["schedule"]["warmup_divisor"] == 20


def test_format_1_records_the_rules_0_1_0_trained_with(tiny_ckpt):
    from pathlib import Path

    old = checkpoint.load(Path(__file__).parent / "fixtures" / "format1" / "gru.ckpt")
    assert old.training.settings.schedule == Schedule(patience_share=0.0, max_auto_steps=0, max_auto_flops=0)
    assert isinstance(old.model, torch.nn.Module)


def test_the_mae_loss_trains_is_recorded_and_a_wrong_loss_is_exit_2(invoke, hourly_csv, tmp_path):
    code, _, err = invoke("fit", hourly_csv, *TINY_FIT, "--loss", "mae", "--output", tmp_path / "m.ckpt")
    assert code == 0, err
    loaded = checkpoint.load(tmp_path / "m.ckpt")
    assert loaded.training.settings.loss == "mae" and loaded.training.val_mse_scaled > 0
    code, out, _ = invoke("info", tmp_path / "m.ckpt")
    assert "loss mae" in out
    code, _, err = invoke("fit", hourly_csv, *TINY_FIT, "--loss", "huber", "--output", tmp_path / "x.ckpt")
    assert code == 2 and "--loss huber: choose auto or one of mse, mae" in err, err


def test_the_automatic_loss_is_the_declared_panel_loss_and_mse_for_one_series(invoke, hourly_csv, long_csv, tmp_path):
    from seqcast.registry import get_spec, list_models

    assert get_spec("nlinear").capabilities.panel_loss == "mae" and get_spec("gru").capabilities.panel_loss == "mse"
    assert {get_spec(n).capabilities.panel_loss for n in list_models()} <= {"mse", "mae"}
    fast = ["--epochs", "1", "--lookback", "24", "--horizon", "6"]
    for data, model, loss in ((hourly_csv, "nlinear", "mse"), (long_csv, "nlinear", "mae"), (long_csv, "gru", "mse")):
        path = tmp_path / f"{model}-{loss}.ckpt"
        code, _, err = invoke("fit", data, "--model", model, *fast, "--output", path)
        assert code == 0, err
        probed = {c.setting: c for c in checkpoint.load(path).choices}["loss"]
        assert probed.candidates == (loss, {"mse": "mae", "mae": "mse"}[loss]), (data, model)  # the declared first


def test_the_automatic_window_norm_is_the_declared_panel_one_on_a_panel(invoke, hourly_csv, long_csv, tmp_path):
    """rnn declares window norm mean (chosen on ETT) and last on a panel (chosen on M4 Weekly): the first
    candidate fit probes; an explicit --window-norm wins on both, unprobed."""
    fast = ["--model", "rnn", "--epochs", "1", "--lookback", "24", "--horizon", "6"]
    for data, extra, norm in ((hourly_csv, [], "mean"), (long_csv, [], "last"), (long_csv, ["--window-norm", "revin"],
                                                                                   "revin")):
        path = tmp_path / f"rnn-{norm}.ckpt"
        code, _, err = invoke("fit", data, *fast, *extra, "--output", path)
        assert code == 0, err
        loaded = checkpoint.load(path)
        choices = {c.setting: c for c in loaded.choices}
        if norm == "mean":  # probed against "last" (a daily season does not fit twice in 24 steps)
            assert choices["window_norm"].candidates == ("mean", "last"), data
            assert loaded.model_info.window_norm == loaded.model.mode == choices["window_norm"].chosen
        else:  # "last" alone is no choice; "revin" was given
            assert (loaded.model_info.window_norm, loaded.model.mode) == (norm, norm) and "window_norm" not in choices


def test_a_season_longer_than_the_lookback_is_said_not_silently_cut(invoke, hourly_csv, tmp_path):
    code, _, err = invoke("fit", hourly_csv, "--model", "seasonal_naive", "--lookback", "12", "--horizon", "6",
                          "--output", tmp_path / "s.ckpt")
    assert code == 0, err
    assert "seasonal_naive: its season of 24 steps is longer than the lookback 12" in err
    assert "give --lookback 24 or more" in err
