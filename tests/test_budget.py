"""The training budget (issue 13): a bounded automatic budget that leaves ETT-sized runs as they were,
validation rounds when epochs are longer than the budget, --time-budget, and the torch threads
chosen for the work, recorded and shown. Contracts, not timings."""

import io
import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from seqcast import checkpoint, threads
from seqcast.budget import Schedule, auto_budget, plan_budget
from seqcast.build import create_model
from seqcast.budget import TrainConfig
from seqcast.training import STOPPED, evaluate_loss, train
from seqcast.window_norm import WindowNorm
from seqcast.windows import WindowSet

from conftest import TINY_FIT, hourly_text


def _windows(n_windows: int, lookback: int = 8, horizon: int = 2, seed: int = 0) -> WindowSet:
    span = lookback + horizon
    t = torch.arange(n_windows + span - 1, dtype=torch.float32)
    values = (torch.sin(t * 2 * math.pi / 12) + 0.1 * torch.randn(len(t), generator=torch.Generator().manual_seed(seed)))
    return WindowSet(values[:, None], None, [0], [0], [lookback], [n_windows], lookback, horizon)


def _model(lookback: int = 8, horizon: int = 2):
    torch.manual_seed(0)
    return WindowNorm(create_model("nlinear", lookback, horizon, 1), "last")


# --- the automatic budget ------------------------------------------------------------------------

# (lookback, horizon) -> the batch the code before the cap recorded for ETTh1/ETTh2 --split 8640,2880,2880
ETT_BATCH = {(336, 96): 164, (96, 96): 168, (96, 24): 170, (336, 720): 151, (336, 336): 159}


@pytest.mark.parametrize("lookback, horizon", list(ETT_BATCH))
def test_ett_sized_runs_keep_todays_schedule(lookback, horizon):
    """ETTh1/ETTh2 with --split 8640,2880,2880: every ETT row of docs/benchmarks.md trains with the
    batch, steps, validation points and patience it had before the cap (51 steps an epoch, 4 epochs,
    204 steps), so the table does not change."""
    n_windows = 8640 - lookback - horizon + 1
    budget = plan_budget(n_windows)
    assert (budget.batch_size, budget.steps_per_epoch) == (ETT_BATCH[lookback, horizon], 51)
    assert (budget.total, budget.round_steps, budget.rounds, budget.unit) == (204, 51, 4, "epoch")
    assert budget.validation_steps() == [51, 102, 153, 204]
    assert (budget.patience, budget.warmup) == (2, 10)
    assert budget == plan_budget(n_windows, Schedule(max_auto_steps=0))  # the rule without the cap


def test_the_training_loop_validates_an_ett_sized_run_after_each_of_its_epochs():
    reports = []
    result = train(_model(), _windows(8209), _windows(64, seed=1), TrainConfig(lr=0.01, patience=10, device="cpu"),
                   on_epoch=reports.append)
    assert (result.batch_size, result.steps_per_epoch, result.round_steps) == (164, 51, 51)
    assert [r.steps for r in reports] == [51, 102, 153, 204] and {r.unit for r in reports} == {"epoch"}
    assert result.stopped == "budget"


def test_small_data_keeps_its_extra_passes():
    budget = plan_budget(300)  # batch 32, 10 steps an epoch: 20 epochs for about 200 steps
    assert (budget.batch_size, budget.steps_per_epoch, budget.total, budget.rounds) == (32, 10, 200, 20)
    assert budget == plan_budget(300, Schedule(max_auto_steps=0))


def test_the_cap_binds_on_big_data_with_validation_rounds_shorter_than_an_epoch():
    """A panel of 400 hourly series (about 300k windows, 1,172 steps of 256 an epoch): 2,000 steps,
    not 4,688, validated every 500 steps, with patience counted in those rounds."""
    budget = plan_budget(300_000)
    assert (budget.batch_size, budget.steps_per_epoch) == (256, 1172)
    assert (budget.total, budget.round_steps, budget.unit) == (2000, 500, "round")
    assert budget.validation_steps() == [500, 1000, 1500, 2000]
    assert budget.patience == 2
    assert plan_budget(300_000, Schedule(max_auto_steps=0)).total == 4 * 1172  # what it was
    assert auto_budget(500) == (2000, 500) and auto_budget(501) == (2000, 500)  # binds just above 500 an epoch
    assert plan_budget(128_000).total == 2000 and plan_budget(128_000).unit == "epoch"  # 500 an epoch: not yet


def test_explicit_epochs_and_max_steps_work_as_before_the_cap():
    assert plan_budget(300_000, epochs=2).total == 2 * 1172  # --epochs N: N full passes
    assert plan_budget(300_000, epochs=2).unit == "epoch"
    assert plan_budget(300_000, max_steps=3000).total == 3000  # the automatic epochs, cut to --max-steps
    assert plan_budget(300_000, max_steps=3000).round_steps == 1172
    warm = plan_budget(300_000, warm_start=True)  # a warm start: a quarter of the automatic budget
    assert (warm.total, warm.round_steps) == (500, 500)


def test_training_validates_every_round_and_early_stopping_counts_rounds():
    """With a cap below an epoch, train() validates every round_steps steps inside the epoch, and a
    model that cannot improve (lr 0) stops after ``patience`` rounds, not epochs."""
    rules = Schedule(max_auto_steps=40, min_epochs=4)  # 64 windows of batch 32: rounds of 10 steps
    windows = _windows(640)
    reports = []
    result = train(_model(), windows, _windows(64, seed=1),
                   TrainConfig(batch_size=32, lr=0.01, patience=10, schedule=rules, device="cpu"), on_epoch=reports.append)
    assert (result.steps_per_epoch, result.round_steps) == (20, 10)
    assert [r.steps for r in reports] == [10, 20, 30, 40] and {r.unit for r in reports} == {"round"}
    assert result.stopped == "budget" and result.steps == 40
    frozen = train(_model(), windows, _windows(64, seed=1),
                   TrainConfig(batch_size=32, lr=0.0, schedule=rules, device="cpu"), on_epoch=(stuck := []).append)
    assert result.epochs == 4 and frozen.stopped == "early_stopping"
    assert [r.steps for r in stuck] == [10, 20] and frozen.best_epoch == 0  # 2 rounds without improvement


# --- the time budget -----------------------------------------------------------------------------

def test_time_budget_stops_validates_and_keeps_the_best_weights(monkeypatch):
    from seqcast import training

    clock = iter(range(10**6))  # every reading of the clock is one second later
    monkeypatch.setattr(training.time, "perf_counter", lambda: float(next(clock)))
    reports = []
    val = _windows(64, seed=1)
    model = _model()
    result = train(model, _windows(640), val,
                   TrainConfig(epochs=50, batch_size=32, lr=0.01, patience=100, time_budget=12, device="cpu"),
                   on_epoch=reports.append)
    assert result.stopped == "time_budget" and result.steps < 50 * 20
    assert reports[-1].steps == result.steps  # validated at the moment it stopped
    assert result.val_loss == min(r.val_loss for r in reports)
    assert evaluate_loss(model, val) == pytest.approx(result.val_loss, rel=1e-6)  # the best weights are kept


def test_time_budget_through_the_cli_is_recorded_and_shown(invoke, tmp_path, hourly_csv):
    ckpt = tmp_path / "late.ckpt"
    args = [a for a in TINY_FIT if a not in ("--epochs", "1")]
    code, out, err = invoke("fit", hourly_csv, *args, "--epochs", "500", "--time-budget", "0.001", "--output", ckpt)
    assert code == 0, err
    assert "training stopped at the --time-budget of 0.001 s" in err and "keeps the best weights" in err
    loaded = checkpoint.load(ckpt)
    assert loaded.training.stopped == "time_budget" and loaded.training.settings.time_budget == 0.001
    assert loaded.training.steps < 500 and "training stopped at the --time-budget" in " ".join(loaded.notes)
    code, out, err = invoke("info", ckpt)
    assert code == 0, err
    assert "stopped     time budget spent (--time-budget 0.001 s)" in out


# --- threads -------------------------------------------------------------------------------------

def test_pick_threads_follows_the_work_the_free_cores_and_the_ceiling():
    big, small = 1e12, 1e6
    assert threads.pick_threads(small, cores=16, ceiling=16) == 1  # small work: one thread
    assert threads.pick_threads(big, cores=16, ceiling=16) == 16
    assert threads.pick_threads(big, cores=1, ceiling=16) == 1  # the other cores are busy
    assert threads.pick_threads(big, cores=16, ceiling=2) == 2  # OMP_NUM_THREADS=2 or set_num_threads(2)
    assert threads.pick_threads(3 * threads.FLOPS_PER_THREAD, cores=16, ceiling=16) == 3
    with threads.using_threads(1):  # the default ceiling is torch's current setting
        assert threads.pick_threads(big, cores=16) == 1


def test_free_cores_leaves_out_the_cores_other_processes_keep_busy(monkeypatch):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(threads, "_running_elsewhere", lambda: 0)
    # this process as if idle since long ago: its own part of the load (a busy test run's) is then nil
    monkeypatch.setattr(threads, "_IMPORTED", (threads.time.monotonic() - 1e6, threads.time.process_time()))
    for load, free in ((0.1, 2), (1.0, 1), (3.5, 1)):
        monkeypatch.setattr(threads.os, "getloadavg", lambda load=load: (load, load, load))
        assert threads.free_cores() == free
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr(threads, "_running_elsewhere", lambda: 1)  # a job started seconds ago
    assert threads.free_cores() == 1


def test_flops_are_counted_without_touching_the_random_state_and_include_lstm_layers():
    x = torch.zeros(1, 24, 1)
    lstm = create_model("lstm", 24, 6, 1)
    state = torch.get_rng_state()
    hidden = lstm.encoder.hidden_size
    assert threads.forward_flops(lstm, x) >= 2 * 4 * hidden * (1 + hidden) * 24  # every weight at every step
    assert torch.equal(torch.get_rng_state(), state)
    assert threads.work_per_call(lstm, x, None, 256, training=True) == 3 * 256 * threads.forward_flops(lstm, x)


def test_automatic_threads_never_exceed_what_the_user_set(monkeypatch):
    """OMP_NUM_THREADS or torch.set_num_threads is a ceiling for the automatic choice (never raised);
    --threads N replaces it."""
    from seqcast.data import series_from_text
    from seqcast.fitting import ModelConfig, fit

    monkeypatch.setattr(threads, "free_cores", lambda: 16)
    monkeypatch.setattr(threads, "FLOPS_PER_THREAD", 1.0)  # any model wants every core
    series = series_from_text("t.csv", hourly_text(200))
    spec = ModelConfig("gru", {"hidden_size": 4}, 24, 6)
    for ceiling in (1, 2):
        with threads.using_threads(ceiling):
            assert fit(series, spec, TrainConfig(epochs=1)).training.settings.threads == ceiling
    with threads.using_threads(1):
        assert fit(series, spec, TrainConfig(epochs=1, threads=2)).training.settings.threads == 2


def test_using_threads_restores_the_setting():
    before = torch.get_num_threads()
    with threads.using_threads(before + 1):
        assert torch.get_num_threads() == before + 1
    assert torch.get_num_threads() == before


def test_threads_are_recorded_and_shown_and_fit_leaves_torch_as_it_was(invoke, tmp_path, hourly_csv, monkeypatch):
    before = torch.get_num_threads()
    for asked, used in (("0", 1), ("2", 2)):  # tiny model: auto is one thread (and conftest's OMP_NUM_THREADS=1)
        ckpt = tmp_path / f"t{asked}.ckpt"
        code, out, err = invoke("fit", hourly_csv, *TINY_FIT, "--threads", asked, "--output", ckpt)
        assert code == 0, err
        assert torch.get_num_threads() == before
        assert checkpoint.load(ckpt).training.settings.threads == used
        code, out, err = invoke("info", ckpt)
        assert f"threads     {used} thread{'s' if used > 1 else ''}" in out
        code, out, err = invoke("info", ckpt, "--json")
        assert json.loads(out)["training"]["settings"]["threads"] == used
    from seqcast import forecasting

    seen, real = [], forecasting.predict
    monkeypatch.setattr(forecasting, "predict", lambda *a, **k: seen.append(torch.get_num_threads()) or real(*a, **k))
    for command, extra in (("predict", ()), ("evaluate", ("--in-sample",)), ("explain", ())):
        code, out, err = invoke(command, tmp_path / "t2.ckpt", hourly_csv, "--threads", "2", *extra)
        assert code == 0, (command, err)
        assert torch.get_num_threads() == before
    assert seen == [2]  # predict ran on the threads asked for, and the setting was restored after


# --- bad values ----------------------------------------------------------------------------------

@pytest.mark.parametrize("command, option, value", [
    ("fit", "--time-budget", "-1"), ("fit", "--time-budget", "nan"), ("fit", "--threads", "-1"),
    ("compare", "--time-budget", "-5"), ("compare", "--threads", "-2"),
    ("predict", "--threads", "-1"), ("evaluate", "--threads", "-1"), ("explain", "--threads", "-1")])
def test_invalid_budget_and_thread_values_exit_2_naming_the_option(invoke, tmp_path, hourly_csv, tiny_ckpt,
                                                                 command, option, value):
    args = [hourly_csv, *TINY_FIT, "--output", tmp_path / "x.ckpt"] if command == "fit" else \
        [hourly_csv, "--models", "nlinear"] if command == "compare" else [tiny_ckpt, hourly_csv]
    code, out, err = invoke(command, *args, option, value)
    assert code == 2 and out == ""
    assert f"{option} {value}: must be a number of" in err
    assert "Traceback" not in err


# --- checkpoints ---------------------------------------------------------------------------------

FORMAT_2 = Path(__file__).parent / "fixtures" / "format2"
FORMAT_2_FILES = json.loads((FORMAT_2 / "manifest.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("entry", FORMAT_2_FILES, ids=[e["checkpoint"] for e in FORMAT_2_FILES])
def test_format_2_checkpoints_load_with_the_defaults_they_trained_with(entry, invoke):
    """Checkpoints written by format-2 code (tests/fixtures/format2/README.md) forecast the numbers that
    code wrote; the settings format 3 added read as what that code did: no cap, no time budget, threads
    and why training stopped not recorded."""
    path, data = FORMAT_2 / entry["checkpoint"], (FORMAT_2 / entry["data"]).resolve()
    ckpt = checkpoint.load(path)
    assert ckpt.stored.format == 2 < checkpoint.FORMAT_VERSION
    settings, record = ckpt.training.settings, ckpt.training
    assert settings.schedule == Schedule(max_auto_steps=0, max_auto_flops=0) and settings.time_budget == 0 and settings.threads == 0
    assert (record.stopped, record.round_steps, record.steps_per_epoch) == (None, None, None)
    assert record.rounds_are_epochs
    code, out, err = invoke("predict", path, data, *entry["predict_args"])
    assert code == 0, err
    # The same rows; the numbers to float32 precision (torch's kernels round differently on other CPUs).
    now, then = pd.read_csv(io.StringIO(out)), pd.read_csv(FORMAT_2 / entry["forecast"])
    pd.testing.assert_frame_equal(now.drop(columns="forecast"), then.drop(columns="forecast"))
    assert now["forecast"].to_numpy() == pytest.approx(then["forecast"].to_numpy(), rel=1e-6)
    code, out, err = invoke("info", path)
    assert code == 0, err
    assert f"format      2, upgraded to {checkpoint.FORMAT_VERSION} on reading" in out
    assert "stopped     (not recorded" in out and "threads     (not recorded" in out


def test_new_training_fields_round_trip_through_the_checkpoint(tiny_ckpt, tmp_path):
    loaded = checkpoint.load(tiny_ckpt)
    record = loaded.training
    assert record.stopped in STOPPED and record.settings.threads >= 1
    assert record.round_steps == record.steps_per_epoch >= 1
    again = checkpoint.load(checkpoint.save(tmp_path / "again.ckpt", loaded).stored.path)
    assert again.training == record


def test_help_and_readme_state_the_cap_the_code_uses(invoke):
    rules = Schedule()
    code, out, err = invoke("fit", "--help")
    text, readme = " ".join(out.split()), " ".join((Path(__file__).parents[1] / "README.md").read_text("utf-8").split())
    assert f"at most {rules.max_auto_steps:,} steps (validated every {rules.max_auto_steps // rules.min_epochs}" in text
    assert f"at most {rules.max_auto_steps:,} steps" in readme
    assert f"every {rules.max_auto_steps // rules.min_epochs} steps" in readme
    assert f"more than {rules.max_auto_steps // rules.min_epochs * rules.max_batch:,} training windows" in readme


def test_a_costly_model_on_a_big_panel_takes_smaller_batches_within_the_compute_cap():
    """When the step cap binds, the batch shrinks (to no fewer than 32) so that the automatic budget computes
    at most max_auto_flops; below the cap, with the user's budget, or for a cheap model nothing changes."""
    rules = Schedule()
    heavy = plan_budget(360_000, rules, window_flops=16.42e6)  # a transformer window on M4 Weekly
    assert heavy.total == rules.max_auto_steps and heavy.batch_size == 101
    assert heavy.total * heavy.batch_size * 3 * 16.42e6 <= rules.max_auto_flops
    assert plan_budget(360_000, rules, window_flops=0.66e6) == plan_budget(360_000, rules)  # a gru: unchanged
    assert plan_budget(8_640, rules, window_flops=16.42e6) == plan_budget(8_640, rules)  # ETT: below the step cap
    assert plan_budget(360_000, rules, window_flops=1e12).batch_size == rules.min_batch
    assert plan_budget(360_000, rules, epochs=2, window_flops=16.42e6).batch_size == 256  # the user's budget
