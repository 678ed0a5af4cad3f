"""seqcast tune: search spaces declared per model, the Optuna study (validation only, resumable, shared
by processes through a journal file), the refit best checkpoint, and the errors a user can fix."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import assert_fixture_forecasts_as_recorded, format_fixtures, load_fixture

from seqcast.build import create_model
from seqcast.registry import get_spec, list_models, register_model, resolve_params
from seqcast.search import Choice, FloatRange, IntRange

TRAINED = [name for name in list_models() if any(p.requires_grad for p in create_model(name, 8, 2, 1).parameters())]
FAST = ["--max-steps", "40", "--horizon", "6"]


def _inside(value, dimension) -> bool:
    if isinstance(dimension, Choice):
        return value in dimension.options
    return dimension.low <= value <= dimension.high


@pytest.mark.parametrize("name", TRAINED)
def test_every_trained_model_declares_a_search_space_holding_its_defaults(name):
    """The first trial of a study is the defaults, so they must lie inside the declared space."""
    space = get_spec(name).capabilities.search
    assert space, f"{name} declares nothing for `seqcast tune` to vary"
    defaults = resolve_params(name, {})
    outside = {k: defaults[k] for k, d in space.items() if not _inside(defaults[k], d)}
    assert not outside, f"{name}: defaults outside the search space: {outside}"


@pytest.mark.parametrize("name", TRAINED)
def test_the_corners_of_every_search_space_build(name):
    """Every combination of the lowest and of the highest values builds a model (no trial fails on a
    hyperparameter the model cannot take, e.g. a d_model that nhead does not divide)."""
    space = get_spec(name).capabilities.search
    for pick in (0, -1):
        values = {k: (d.options[pick] if isinstance(d, Choice) else (d.low if pick == 0 else d.high))
                  for k, d in space.items()}
        create_model(name, 48, 12, 1, values)


@pytest.mark.parametrize(("search", "problem"), [
    ({"hidden": IntRange(1, 4)}, "search 'hidden': not a hyperparameter"),
    ({"width": IntRange(4, 2)}, "low 4 must be below high 2"),
    ({"width": FloatRange(0.0, 1.0, log=True)}, "a log range must start above 0"),
    ({"width": Choice((8,))}, "a Choice needs two options"),
    ({"width": (8, 16)}, "is not an IntRange, FloatRange or Choice"),
])
def test_a_wrong_search_declaration_fails_at_registration(search, problem):
    class Throwaway:
        def __init__(self, lookback, horizon, n_features, *, width: int = 8):
            pass

    with pytest.raises(ValueError, match=problem):
        register_model("throwaway_search", search=search)(Throwaway)


def _panel(tmp_path: Path) -> Path:
    from conftest import long_text

    path = tmp_path / "panel.csv"
    path.write_text(long_text(ids=("a", "b", "c"), n=160), encoding="utf-8")
    return path


def test_tune_searches_on_validation_and_saves_the_best_as_an_ordinary_checkpoint(tmp_path, invoke):
    pytest.importorskip("optuna", reason="seqcast[tune] (optuna) is not installed")
    from seqcast.checkpoint import load

    data, ckpt = _panel(tmp_path), tmp_path / "best.ckpt"
    code, out, err = invoke("tune", data, "--model", "nlinear", "--trials", "4", *FAST, "-o", ckpt, "--json")
    assert code == 0, err
    document = json.loads(out)
    trials = document["trials"]
    assert len(trials) == 4 and trials[0]["number"] == 0 and "trial 0: validation MSE" in err
    complete = [t for t in trials if t["state"] == "complete"]
    best = min(complete, key=lambda t: t["val_mse_scaled"])
    assert document["best_trial"] == best["number"] and document["best_params"] == best["params"]
    # Trial 0 is the defaults: the best is never worse than them on validation.
    assert document["default_val_mse_scaled"] == trials[0]["val_mse_scaled"] >= document["best_val_mse_scaled"]
    loaded = load(ckpt)
    tuning = loaded.tuning
    assert tuning.best_trial == best["number"] and tuning.trials == 4 and tuning.storage is None
    assert loaded.lookback == best["params"].get("lookback", loaded.lookback)
    assert loaded.model_info.window_norm == best["params"]["window_norm"]
    # The refit of the best reproduces its validation score (same seed, same settings).
    assert loaded.training.val_mse_scaled == pytest.approx(best["val_mse_scaled"], rel=1e-6)
    code, out, err = invoke("predict", ckpt, data)
    assert code == 0, err and len(out.splitlines()) == 1 + 3 * 6
    code, out, _ = invoke("info", ckpt)
    assert code == 0 and f"tuned       study nlinear-h6: trial {best['number']} of 4" in out


def test_a_journal_study_resumes_without_repeating_finished_trials(tmp_path, invoke):
    pytest.importorskip("optuna", reason="seqcast[tune] (optuna) is not installed")
    data, journal = _panel(tmp_path), tmp_path / "study.log"
    args = ("tune", data, "--model", "nlinear", *FAST, "--storage", journal, "--study", "s", "--json")
    code, out, err = invoke(*args, "--trials", "2", "-o", tmp_path / "a.ckpt")
    assert code == 0, err
    first = json.loads(out)["trials"]
    code, out, err = invoke(*args, "--trials", "3", "-o", tmp_path / "b.ckpt")
    assert code == 0, err
    second = json.loads(out)["trials"]
    assert len(second) == 3 and second[:2] == first  # the two finished trials kept, one more run
    assert second[2]["params"] not in [t["params"] for t in first]  # a resumed sampler draws anew
    assert err.count("trial ") - err.count("best trial") == 1
    # --trials 0: no new trial, the study's best fit again; an unknown study is an error.
    code, out, err = invoke(*args[:-3], "--study", "s", "--trials", "0", "-o", tmp_path / "c.ckpt")
    assert code == 0, err and "trial " not in err.split("study s:")[0]
    code, _, err = invoke(*args[:-3], "--study", "nope", "--trials", "0", "-o", tmp_path / "d.ckpt")
    assert code == 2 and "--study nope: no such study" in err and "it holds s" in err


def test_a_killed_search_loses_no_finished_trial(tmp_path):
    """SIGKILL in the middle of a search, then the same command: the trials finished before the
    kill are in the study, and only the missing ones run."""
    pytest.importorskip("optuna", reason="seqcast[tune] (optuna) is not installed")
    from conftest import cli_command, subprocess_env

    data, journal = _panel(tmp_path), tmp_path / "study.log"
    command = cli_command("tune", data, "--model", "nlinear", *FAST, "--storage", journal, "--trials", "30",
                          "-o", tmp_path / "best.ckpt", "--no-prune")
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=subprocess_env())
    finished = 0
    deadline = time.monotonic() + 120
    while finished < 2 and time.monotonic() < deadline:  # wait for two finished trials in the journal
        time.sleep(0.2)
        finished = journal.read_text().count('"state":1,') if journal.exists() else 0  # COMPLETE
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert finished >= 2, proc.stderr.read().decode()
    import optuna
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    study = optuna.load_study(study_name="nlinear-h6", storage=storage)
    done = [t.number for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) >= 2
    rc = subprocess.run(cli_command("tune", data, "--model", "nlinear", *FAST, "--storage", journal,
                                    "--trials", str(len(done) + 1), "-o", tmp_path / "best.ckpt", "--json",
                                    "--no-prune"),
                        capture_output=True, env=subprocess_env(), timeout=300)
    assert rc.returncode == 0, rc.stderr.decode()
    trials = json.loads(rc.stdout)["trials"]
    complete = [t["number"] for t in trials if t["state"] == "complete"]
    assert complete[: len(done)] == done and len(complete) == len(done) + 1


def test_workers_share_one_study_through_the_journal(tmp_path, invoke):
    pytest.importorskip("optuna", reason="seqcast[tune] (optuna) is not installed")
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("two workers need two cores")
    data, journal = _panel(tmp_path), tmp_path / "study.log"
    code, out, err = invoke("tune", data, "--model", "nlinear", *FAST, "--storage", journal, "--trials", "7",
                            "--jobs", "2", "-o", tmp_path / "best.ckpt", "--json")
    assert code == 0, err
    trials = json.loads(out)["trials"]
    finished = [t for t in trials if t["state"] in ("complete", "pruned")]
    assert len(finished) == 7 and len(trials) == 7  # two workers, exactly the trials asked for


@pytest.mark.parametrize(("extra", "problem"), [
    (["--model", "naive"], "naive has nothing to tune"),
    (["--storage", "/no/such/folder/journal.log"], "--storage /no/such/folder/journal.log: no such folder"),
    (["--storage", "sqlite:////no/such/folder/x.db"], "cannot open it as an Optuna storage"),
    (["--jobs", "2"], "give --storage FILE"),
    (["--trials", "-1"], "--trials -1"),
])
def test_tune_errors_are_exit_2_with_the_reason(tmp_path, invoke, extra, problem):
    pytest.importorskip("optuna", reason="seqcast[tune] (optuna) is not installed")
    args = ["tune", _panel(tmp_path), *FAST, "--trials", "1", "-o", tmp_path / "x.ckpt"]
    args += extra if "--model" in extra else ["--model", "nlinear", *extra]
    if extra == ["--jobs", "2"] and len(os.sched_getaffinity(0)) < 2:
        pytest.skip("two workers need two cores")
    code, _, err = invoke(*args)
    assert code == 2, err
    assert problem in err
    assert not (tmp_path / "x.ckpt").exists()


def test_a_study_for_other_data_cannot_be_joined(tmp_path, invoke):
    pytest.importorskip("optuna", reason="seqcast[tune] (optuna) is not installed")
    from conftest import long_text

    journal = tmp_path / "study.log"
    code, _, err = invoke("tune", _panel(tmp_path), "--model", "nlinear", *FAST, "--storage", journal,
                          "--study", "s", "--trials", "1", "-o", tmp_path / "a.ckpt")
    assert code == 0, err
    other = tmp_path / "other.csv"
    other.write_text(long_text(ids=("x", "y"), n=160), encoding="utf-8")
    code, _, err = invoke("tune", other, "--model", "nlinear", *FAST, "--storage", journal, "--study", "s",
                          "--trials", "2", "-o", tmp_path / "b.ckpt")
    assert code == 2 and "--study s" in err and "other data or another model" in err


def test_compare_shares_its_models_among_processes_through_a_storage(tmp_path, invoke):
    """Two compares on one journal: each model is trained once, by one of them, and both print the
    whole leaderboard, identical."""
    pytest.importorskip("optuna", reason="seqcast[tune] (optuna) is not installed")
    from conftest import cli_command, subprocess_env

    data, journal = _panel(tmp_path), tmp_path / "grid.log"
    args = ["compare", data, "--models", "naive,nlinear,dlinear", *FAST, "--lookback", "24", "--storage", journal,
            "--json"]
    other = subprocess.Popen(cli_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=subprocess_env())
    code, out, err = invoke(*args)
    theirs, their_err = other.communicate(timeout=300)
    assert code == 0 and other.returncode == 0, (err, their_err.decode())
    assert json.loads(out) == json.loads(theirs)
    assert {r["model"] for r in json.loads(out)} == {"naive", "nlinear", "dlinear", "seasonal_naive"}
    import optuna
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    study = optuna.load_study(study_name="compare-naive-nlinear-dlinear", storage=storage)
    trained = sorted(t.user_attrs["model"] for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)
    assert trained == ["dlinear", "naive", "nlinear"]
    # Run again: nothing is left to train, the same leaderboard comes back.
    code, again, err = invoke(*args)
    assert code == 0 and json.loads(again) == json.loads(out) and "epoch" not in err


def test_compare_storage_refuses_what_it_cannot_share(tmp_path, invoke):
    pytest.importorskip("optuna", reason="seqcast[tune] (optuna) is not installed")
    data = _panel(tmp_path)
    code, _, err = invoke("compare", data, "--models", "naive", *FAST, "--storage", tmp_path / "g.log",
                          "--forecasts", tmp_path / "f.csv")
    assert code == 2 and "--forecasts with --storage" in err
    code, _, err = invoke("compare", data, "--models", "naive", *FAST, "--study", "s")
    assert code == 2 and "give --storage too" in err


def test_a_database_url_works_as_optuna_supports_it(tmp_path, invoke):
    pytest.importorskip("optuna", reason="seqcast[tune] (optuna) is not installed")
    pytest.importorskip("sqlalchemy", reason="Optuna's RDB storage needs SQLAlchemy")
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    args = ("tune", _panel(tmp_path), "--model", "nlinear", *FAST, "--storage", url, "--json")
    code, out, err = invoke(*args, "--trials", "2", "-o", tmp_path / "a.ckpt")
    assert code == 0, err
    code, out, err = invoke(*args, "--trials", "3", "-o", tmp_path / "b.ckpt")
    assert code == 0, err
    assert len(json.loads(out)["trials"]) == 3




@pytest.mark.parametrize("entry", format_fixtures(4))
def test_format_4_checkpoints_load_untuned_on_one_process_and_forecast_what_they_did(entry, invoke):
    loaded = load_fixture(4, entry)
    assert loaded.tuning is None and loaded.training.world_size == 1
    assert_fixture_forecasts_as_recorded(invoke, 4, entry)


def test_without_optuna_tune_and_a_shared_compare_say_how_to_install_it(tmp_path, invoke, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna raises ImportError
    data = _panel(tmp_path)
    for args in (["tune", data, "--model", "nlinear", *FAST], ["compare", data, "--models", "naive", *FAST,
                                                               "--storage", tmp_path / "g.log"]):
        code, _, err = invoke(*args)
        assert code == 2 and "pip install 'seqcast[tune]'" in err, err
