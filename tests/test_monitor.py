"""The forecast record (predict --record), seqcast monitor, and adaptive intervals (predict --adapt), through
the CLI on a two-series hourly panel that is replayed run by run, and the record's crash safety through
real SIGKILLs."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import subprocess_env

from seqcast import adaptive, checkpoint, record
from seqcast.drift import binomial_band

HORIZON = 6
FIT = ["--model", "nlinear", "--lookback", "24", "--horizon", str(HORIZON), "--id-col", "unique_id",
       "--level", "80,95", "--max-steps", "60", "--seed", "0", "--loss", "mse", "--window-norm", "last",
       "--transform", "none"]


def panel(n: int = 400, shift_from: int | None = None, shift: float = 0.0, ids=("north", "south")) -> pd.DataFrame:
    """Hourly series: a daily sine and noise at their own level; from row ``shift_from`` on, raised by ``shift``."""
    rng = np.random.default_rng(3)
    times = pd.date_range("2024-01-01", periods=n, freq="h")
    parts = []
    for k, sid in enumerate(ids):
        values = 10 * (k + 1) + np.sin(np.arange(n) * 2 * np.pi / 24) + rng.normal(scale=0.2, size=n)
        if shift_from is not None:
            values[shift_from:] += shift
        parts.append(pd.DataFrame({"unique_id": sid, "ds": times.strftime("%Y-%m-%d %H:%M:%S"), "y": values}))
    return pd.concat(parts, ignore_index=True)


def cut(frame: pd.DataFrame, rows: int, path: Path) -> Path:
    """The first ``rows`` rows of every series of ``frame``, written to ``path``."""
    frame.groupby("unique_id", sort=False).head(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """A checkpoint fit on the first 300 rows of each series (with intervals), and the whole panel."""
    from conftest import cli_invoke

    folder = tmp_path_factory.mktemp("monitor")
    frame = panel()
    code, _, err = cli_invoke("fit", cut(frame, 300, folder / "fit.csv"), *FIT, "--output", folder / "m.ckpt")
    assert code == 0, err
    return folder / "m.ckpt", frame


def replay(invoke, ckpt: Path, frame: pd.DataFrame, folder: Path, starts: range, *extra) -> Path:
    """predict --record once per start (the history's rows per series), as a nightly job would."""
    rec = folder / "record"
    for rows in starts:
        code, _, err = invoke("predict", ckpt, cut(frame, rows, folder / "now.csv"), "--record", rec,
                              "--output", folder / "forecast.csv", *extra)
        assert code == 0, err
    return rec


# --- what fit records ------------------------------------------------------------------------------------

def test_fit_scores_its_validation_windows_and_info_and_json_show_it(fitted, invoke):
    ckpt, _ = fitted
    loaded = checkpoint.load(ckpt)
    backtest = loaded.backtest
    assert backtest is not None and backtest.windows >= 2 and backtest.season == 24
    assert 0 < backtest.mase < 5 and 0 < backtest.smape < 20 and -1 <= backtest.bias <= 1
    assert len(backtest.coverage) == 2 and all(0 <= c <= 1 for c in backtest.coverage)
    assert set(backtest.series_mase) == {"north", "south"}
    code, out, err = invoke("info", ckpt)
    assert code == 0 and f"backtest    MASE {backtest.mase:.4g}" in out and "coverage 80 %" in out, err


# --- the record --------------------------------------------------------------------------------------------

def test_predict_record_appends_each_run_with_its_checkpoint_and_origin(fitted, invoke, tmp_path):
    ckpt, frame = fitted
    rec = replay(invoke, ckpt, frame, tmp_path, range(300, 312, 6))
    held = record.read(rec)
    runs = held.runs
    assert [r["run"] for r in runs] == [1, 2] and runs[0]["sha256"] == checkpoint.load(ckpt).stored.sha256
    assert runs[0]["levels"] == [80.0, 95.0] and len((rec / "index.jsonl").read_text().splitlines()[0]) < 1000
    described = held.described(runs[1])  # once per checkpoint, beside the index
    assert described["reading"]["id_col"] == "unique_id"
    assert described["backtest"]["mase"] == checkpoint.load(ckpt).backtest.mase
    assert [p.name for p in (rec / "checkpoints").iterdir()] == [f"{runs[0]['sha256']}.json"]
    rows = pd.read_csv(rec / runs[1]["file"])
    written = pd.read_csv(tmp_path / "forecast.csv")
    assert list(rows.columns[:3]) == ["run", "series", "origin"] and (rows["run"] == 2).all()
    assert set(rows["origin"]) == {"2024-01-13 17:00:00"}  # row 306 of each series, the last observed
    pd.testing.assert_frame_equal(rows.drop(columns=["run", "origin"]), written)


def test_the_environment_variable_names_the_record_and_adapt_needs_one(fitted, invoke, tmp_path):
    ckpt, frame = fitted
    data = cut(frame, 300, tmp_path / "now.csv")
    code, _, err = invoke("predict", ckpt, data, "-o", tmp_path / "f.csv", env={"SEQCAST_RECORD": str(tmp_path / "r")})
    assert code == 0 and len(record.read(tmp_path / "r").runs) == 1, err
    code, out, err = invoke("predict", ckpt, data, "--adapt")
    assert code == 2 and out == "" and "--adapt" in err and "--record" in err and "SEQCAST_RECORD" in err


def test_adapt_needs_intervals(invoke, tmp_path):
    data = cut(panel(), 300, tmp_path / "d.csv")
    code, _, err = invoke("fit", data, *[a for a in FIT if a not in ("--level", "80,95")], "--output", tmp_path / "p.ckpt")
    assert code == 0, err
    code, _, err = invoke("predict", tmp_path / "p.ckpt", data, "--record", tmp_path / "r", "--adapt")
    assert code == 2 and "has no intervals to adapt" in err and "--level" in err


def test_a_torn_last_line_and_an_orphan_file_are_ignored_then_repaired(fitted, invoke, tmp_path):
    """What a kill between the CSV and its line, or inside the line, leaves: readable; the next run cuts
    the torn line and takes the next free number. A whole last line without its newline is kept."""
    ckpt, frame = fitted
    rec = replay(invoke, ckpt, frame, tmp_path, range(300, 306, 6))
    with open(rec / "index.jsonl", "ab") as handle:
        handle.write(b'{"run": 7, "file": "../../etc/passwd"}\n')  # a hand-edited line: not a run, skipped
        handle.write(b'{"run": 2, "file": "forecasts/0000')  # torn
    (rec / "forecasts" / "000002.csv").write_text("run,series\n2,half")  # orphan
    held = record.read(rec)
    assert [r["run"] for r in held.runs] == [1] and "cut off" in held.notes[0]
    assert held.notes[1].endswith("line 2 is not a recorded run; it is skipped")
    code, out, err = invoke("monitor", rec, cut(frame, 306, tmp_path / "now.csv"))
    assert code == 0 and "cut off" in err, err
    replay(invoke, ckpt, frame, tmp_path, range(306, 312, 6))
    text = (rec / "index.jsonl").read_text()
    assert text.endswith("\n") and [json.loads(line)["run"] for line in text.splitlines()] == [1, 7, 3]
    assert (rec / "forecasts" / "000002.csv").read_text() == "run,series\n2,half"  # never written over
    assert len(pd.read_csv(rec / "forecasts" / "000003.csv")) == 2 * HORIZON * 1
    index = rec / "index.jsonl"
    index.write_bytes(index.read_bytes().rstrip(b"\n"))  # saved by an editor without the last newline
    replay(invoke, ckpt, frame, tmp_path, range(312, 318, 6))
    assert [json.loads(line)["run"] for line in index.read_text().splitlines()] == [1, 7, 3, 4]


APPENDER = """
import sys, pandas as pd
from pathlib import Path
from seqcast import record
ENTRY = ENTRY_LITERAL
folder = record.folder_of(sys.argv[1])
frame = pd.DataFrame({"series": ["a"] * 500, "timestamp": range(500), "step": range(1, 501), "model": "naive",
                      "target": "y", "forecast": [float(i) for i in range(500)]})
print("ready", flush=True)
while True:
    with record.writing(folder) as held:
        record.append(held, frame, {"a": -1}, {**ENTRY, "note": "x" * 20000})
"""
# what predict records of a run besides its number, time, file, rows and timestamps (record.KEYS)
ENTRY = {"checkpoint": "m.ckpt", "sha256": "0" * 64, "parent": None, "model": "naive", "data": "d.csv", "series": 1,
         "targets": ["y"], "horizon": 500, "levels": [], "freq": "1", "integer_time": True}
APPENDER = APPENDER.replace("ENTRY_LITERAL", repr(ENTRY))


def test_sigkill_while_recording_leaves_a_readable_record(tmp_path):
    """CLI-CONTRACT item 20 for the record: a writer SIGKILLed at any moment leaves every listed run whole;
    the next writer goes on from it."""
    for attempt, delay in enumerate((0.3, 0.55, 0.8)):
        folder = tmp_path / f"r{attempt}"
        proc = subprocess.Popen([sys.executable, "-c", APPENDER, str(folder)], stdout=subprocess.PIPE,
                                env=subprocess_env())
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        held = record.read(folder)
        assert held.runs, "some runs were recorded before the kill"
        for run in held.runs:
            assert len(pd.read_csv(folder / run["file"])) == 500
        with record.writing(folder) as again:  # the lock the killed writer held is free, the torn line cut
            record.append(again, pd.read_csv(folder / held.runs[0]["file"]).drop(columns=["run", "origin"]),
                          {"a": -1}, ENTRY)
        after = record.read(folder).runs
        assert list(after[:-1]) == list(held.runs) and after[-1]["run"] > held.runs[-1]["run"]  # an orphan's number skipped
        assert len(pd.read_csv(folder / after[-1]["file"])) == 500
        assert (folder / "index.jsonl").read_bytes().endswith(b"\n")


# --- monitor ---------------------------------------------------------------------------------------------

def test_monitor_before_any_actual_is_due_is_healthy(fitted, invoke, tmp_path):
    ckpt, frame = fitted
    rec = replay(invoke, ckpt, frame, tmp_path, range(300, 301))
    code, out, err = invoke("monitor", rec, tmp_path / "now.csv")
    assert code == 0 and "scored    nothing yet" in out and "drift     none found" in out, err


def test_monitor_on_data_like_the_training_is_healthy_and_reports_every_series(fitted, invoke, tmp_path):
    ckpt, frame = fitted
    rec = replay(invoke, ckpt, frame, tmp_path, range(300, 390, 6))
    code, out, err = invoke("monitor", rec, cut(frame, 390, tmp_path / "all.csv"), "--json")
    assert code == 0, (out, err)
    report = json.loads(out)
    assert report["healthy"] and report["drift"] == [] and report["window"] == list(range(1, 16))
    overall = report["overall"]
    assert overall["forecasts"] == 2 * 15 and overall["points"] == 2 * 15 * HORIZON
    assert 0.6 <= overall["coverage_80"] <= 1 and overall["error_ratio"] < 1.5
    assert [row["series"] for row in report["series"]] == ["north", "south"]
    code, out, _ = invoke("monitor", rec, tmp_path / "all.csv")
    assert code == 0 and "overall" in out and "north" in out and "drift     none found" in out


def test_a_level_shift_is_overall_drift_exit_3(fitted, invoke, tmp_path):
    """A jump the model recovers from within a run: the window's error and coverage drift overall; no series
    is flagged, since each series' latest target times are as good as those before them."""
    ckpt, _ = fitted
    shifted = panel(shift_from=330, shift=6.0)
    rec = replay(invoke, ckpt, shifted, tmp_path, range(300, 390, 6))
    code, out, err = invoke("monitor", rec, cut(shifted, 390, tmp_path / "all.csv"))
    assert code == 3, (out, err)
    assert "drift: 2 findings (exit 3)" in err
    drift = [line for line in out.splitlines() if line.startswith("drift")]
    assert drift[0].startswith("drift     overall: error: MASE") and "times the backtest's" in drift[0], drift
    assert drift[1].startswith("drift     overall: coverage 95 %: 0.717 over 15 runs, outside 0.733..1.000"), drift
    assert len(drift) == 2, drift
    code, out, err = invoke("-q", "monitor", rec, tmp_path / "all.csv", "--json")
    assert code == 3 and err == "" and json.loads(out)["healthy"] is False


def test_forecasts_that_keep_missing_are_drift_of_their_series(fitted, invoke, tmp_path):
    """From row 360 on, 'north' climbs half a unit an hour: every later forecast of it misses, and its latest
    four runs' worth of target times are judged against those before; 'south' is not flagged."""
    ckpt, _ = fitted
    ramp = panel()
    north = ramp["unique_id"] == "north"
    steps = np.arange(north.sum())
    ramp.loc[north, "y"] += np.where(steps >= 360, 0.5 * (steps - 359), 0.0)
    rec = replay(invoke, ckpt, ramp, tmp_path, range(300, 390, 6))
    code, out, _ = invoke("monitor", rec, cut(ramp, 390, tmp_path / "all.csv"), "--json")
    assert code == 3
    report = json.loads(out)
    north_row, south_row = report["series"]
    assert any(f.startswith("error: MASE") and "over its latest 24 target times" in f and "of its earlier target times"
               in f for f in north_row["flags"]), north_row["flags"]
    assert any(f.startswith("coverage 95 %: 0.000 over its latest 24 target times (4 forecasts' worth)")
               for f in north_row["flags"]), north_row["flags"]
    assert south_row["flags"] == [] and not any("'south'" in line for line in report["drift"])


def test_a_series_with_no_history_yet_is_held_to_its_backtest_as_a_note_not_drift(fitted, invoke, tmp_path):
    """Before a series has earlier target times to compare with, an error far above its backtest is a line in
    watch (its backtest had a window or two): reported, and the run stays healthy."""
    ckpt, _ = fitted
    noisy = panel()
    north = (noisy["unique_id"] == "north").to_numpy()
    noisy.loc[north, "y"] += np.where(np.arange(north.sum()) >= 300, np.random.default_rng(0).normal(0, 6, north.sum()), 0)
    rec = replay(invoke, ckpt, noisy, tmp_path, range(300, 318, 6))
    code, out, err = invoke("monitor", rec, cut(noisy, 318, tmp_path / "all.csv"), "--margin", "100", "--alpha", "1e-9")
    assert code == 0, (out, err)
    watch = [line for line in out.splitlines() if line.startswith("watch")]
    assert len(watch) == 1 and watch[0].startswith("watch     series 'north': error: MASE") and "of its backtest" in watch[0]
    assert "drift     none found" in out and "watch error" in out


def test_a_series_whose_actuals_stop_is_stale_but_a_rerun_is_not(fitted, invoke, tmp_path):
    """Nightly runs: 'south' stops arriving after row 306 while 'north' goes on; runs a day apart forecast
    it from the same last actual. The same runs minutes apart (a rerun by hand) are not stale."""
    ckpt, frame = fitted
    rec = tmp_path / "record"
    for rows in (300, 306, 312):
        now = frame.groupby("unique_id", sort=False).head(rows)
        now = now[(now["unique_id"] == "north") | (now.groupby("unique_id").cumcount() < 306)]
        now.to_csv(tmp_path / "now.csv", index=False)
        code, _, err = invoke("predict", ckpt, tmp_path / "now.csv", "--record", rec, "-o", tmp_path / "f.csv")
        assert code == 0, err
    code, out, _ = invoke("monitor", rec, tmp_path / "now.csv", "--json")
    assert code == 0 and json.loads(out)["stale"] == []  # seconds apart: a rerun
    index = rec / "index.jsonl"
    entries = [json.loads(line) for line in index.read_text().splitlines()]
    for day, entry in enumerate(entries):
        entry["time"] = f"2024-02-0{day + 1}T02:30:00+00:00"
    index.write_text("".join(json.dumps(e) + "\n" for e in entries))
    code, out, err = invoke("monitor", rec, tmp_path / "now.csv", "--json")
    assert code == 4 and "stale: 1 finding (exit 4)" in err  # a refit cannot cure it: not exit 3
    report = json.loads(out)
    assert report["drift"] == [] and not report["healthy"] and report["stale"] == [
        "series 'south': stale: its actuals end at 2024-01-13 17:00:00, the origin of the last 2 runs (24 hours "
        "apart): no new actual arrived while predict ran"], report["stale"]
    code, out, _ = invoke("monitor", rec, tmp_path / "now.csv", "--json", "--stale-steps", "25")
    assert code == 0 and json.loads(out)["stale"] == []


def test_a_fresh_fit_starts_a_new_window_and_a_warm_start_keeps_it(fitted, invoke, tmp_path):
    ckpt, frame = fitted
    rec = replay(invoke, ckpt, frame, tmp_path, range(300, 318, 6))
    warm = tmp_path / "warm.ckpt"
    code, _, err = invoke("fit", cut(frame, 318, tmp_path / "fit2.csv"), "--init-from", ckpt, "--max-steps", "20",
                          "--output", warm)
    assert code == 0, err
    replay(invoke, warm, frame, tmp_path, range(318, 324, 6))
    code, out, _ = invoke("monitor", rec, cut(frame, 330, tmp_path / "all.csv"), "--json")
    assert json.loads(out)["window"] == [1, 2, 3, 4] and json.loads(out)["model_runs"] == 4
    fresh = tmp_path / "fresh.ckpt"
    code, _, err = invoke("fit", tmp_path / "fit2.csv", *FIT, "--seed", "1", "--output", fresh)
    assert code == 0, err
    replay(invoke, fresh, frame, tmp_path, range(324, 330, 6))
    code, out, _ = invoke("monitor", rec, tmp_path / "all.csv", "--json")
    report = json.loads(out)
    assert report["model_runs"] == 1 and report["window"] == [5] and report["overall"]["forecasts"] == 2


def test_monitor_plot_draws_error_and_coverage(fitted, invoke, tmp_path):
    pytest.importorskip("matplotlib", reason="--plot needs seqcast[plot]")
    ckpt, frame = fitted
    rec = replay(invoke, ckpt, frame, tmp_path, range(300, 330, 6))
    code, _, err = invoke("monitor", rec, cut(frame, 330, tmp_path / "all.csv"), "--plot", tmp_path / "m.png")
    assert code == 0 and (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", err


def test_monitor_bad_input_is_exit_2(fitted, invoke, tmp_path):
    code, _, err = invoke("monitor", tmp_path / "none", tmp_path / "x.csv")
    assert code == 2 and "no such record folder" in err
    (tmp_path / "empty").mkdir()
    code, _, err = invoke("monitor", tmp_path / "empty", tmp_path / "x.csv")
    assert code == 2 and "holds no forecast record" in err
    ckpt, frame = fitted
    rec = replay(invoke, ckpt, frame, tmp_path, range(300, 301))
    code, _, err = invoke("monitor", rec, tmp_path / "now.csv", "--alpha", "2")
    assert code == 2 and "--alpha 2" in err
    code, _, err = invoke("monitor", rec, tmp_path / "now.csv", "--plot", tmp_path / "now.csv")
    assert code == 2 and "is the input" in err


# --- the pieces ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,p,alpha", [(1, 0.8, 0.01), (4, 0.8, 0.01), (20, 0.95, 0.05), (50, 0.8, 0.001)])
def test_the_binomial_band_is_the_exact_two_sided_region(n, p, alpha):
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    low = min(k for k in range(n + 1) if sum(pmf[: k + 1]) > alpha / 2)
    high = max(k for k in range(n + 1) if sum(pmf[k:]) > alpha / 2)
    assert binomial_band(n, p, alpha) == pytest.approx((low / n, high / n))


def test_aci_moves_each_rate_by_gamma_times_nominal_less_misses_and_widens_below_nominal():
    recorded = pd.DataFrame({"series": ["a"] * 10, "target": "y", "timestamp": list(range(10)), "forecast": 0.0,
                             "lo_80": -1.0, "hi_80": 1.0})
    actuals = pd.DataFrame({"series": "a", "target": "y", "key": np.arange(10), "actual": [5.0] * 4 + [0.0] * 6})
    state = adaptive.update(adaptive.load(Path("/nonexistent")), recorded, actuals, (80.0,), 0.01, integer_time=True)
    row = state.iloc[0]
    assert row["alpha"] == pytest.approx(0.2 + 0.01 * (10 * 0.2 - 4)) and row["points"] == 10 and row["misses"] == 4
    assert row["through"] == "9"
    again = adaptive.update(state, recorded, actuals, (80.0,), 0.01, integer_time=True)
    assert again["alpha"].iloc[0] == row["alpha"]  # nothing new to feed
    frame = pd.DataFrame({"series": ["a"], "target": ["y"], "forecast": [10.0], "lo_80": [8.0], "hi_80": [13.0]})
    wider = adaptive.apply(frame, state, (80.0,))
    assert wider["lo_80"].iloc[0] < 8.0 and wider["hi_80"].iloc[0] > 13.0
    assert wider["level_80"].iloc[0] == pytest.approx(100 * (1 - row["alpha"]))
    assert (10 - wider["lo_80"].iloc[0]) / 2 == pytest.approx((wider["hi_80"].iloc[0] - 10) / 3)  # shape kept


def test_adapt_widens_bands_after_misses_and_records_the_levels_drawn(fitted, invoke, tmp_path):
    ckpt, _ = fitted
    shifted = panel(shift_from=306, shift=6.0)
    rec = replay(invoke, ckpt, shifted, tmp_path, range(300, 342, 6), "--adapt", "--adapt-rate", "0.05")
    state = pd.read_csv(rec / "adapt.csv")
    assert set(state["level"]) == {80.0, 95.0} and (state["misses"] > 0).all()
    last = pd.read_csv(tmp_path / "forecast.csv")
    assert {"level_80", "level_95"} <= set(last.columns) and (last["level_80"] > 80).any()
    assert (last["lo_95"] <= last["lo_80"]).all() and (last["hi_80"] <= last["hi_95"]).all()
    static = tmp_path / "static"
    static.mkdir()
    replay(invoke, ckpt, shifted, static, range(336, 342, 6))
    plain = pd.read_csv(static / "forecast.csv")
    assert ((last["hi_80"] - last["lo_80"]) >= (plain["hi_80"] - plain["lo_80"]) - 1e-9).all()


def test_an_exported_model_records_with_its_backtest_and_monitor_reads_stdin(fitted, invoke, tmp_path, onnx_extra):
    ckpt, frame = fitted
    code, _, err = invoke("export", ckpt, "--output", tmp_path / "m.onnx")
    assert code == 0, err
    data = cut(frame, 300, tmp_path / "now.csv")
    code, _, err = invoke("predict", tmp_path / "m.onnx", data, "--record", tmp_path / "r", "--adapt", "-o", tmp_path / "f.csv")
    assert code == 0, err
    held = record.read(tmp_path / "r")
    run = held.runs[0]
    assert run["checkpoint"].endswith("m.onnx")
    assert held.described(run)["backtest"]["mase"] == checkpoint.load(ckpt).backtest.mase
    code, out, err = invoke("monitor", tmp_path / "r", "-", input=cut(frame, 306, tmp_path / "later.csv").read_text())
    assert code == 0 and "actuals   <stdin>" in out and "overall" in out, err


def test_levels_that_change_between_runs_are_scored_where_they_were_issued(fitted, invoke, tmp_path):
    """Runs that issued only the 80 % band, then runs with both: the 95 % level is scored on the points
    whose runs issued it, and the adaptive state counts only those."""
    ckpt, frame = fitted
    rec = replay(invoke, ckpt, frame, tmp_path, range(300, 330, 6), "--level", "80", "--adapt")
    replay(invoke, ckpt, frame, tmp_path, range(330, 342, 6), "--adapt")
    code, out, err = invoke("monitor", rec, cut(frame, 342, tmp_path / "all.csv"), "--json")
    assert code == 0, (out, err)
    report = json.loads(out)
    assert report["overall"]["coverage_95"] is not None and report["drift"] == []
    assert [t["coverage_95"] is None for t in report["timeline"]] == [True] * 5 + [False] * 2
    state = pd.read_csv(rec / "adapt.csv")
    assert state[state["level"] == 95.0]["points"].tolist() == [HORIZON, HORIZON]
    code, out, err = invoke("monitor", rec, cut(frame, 336, tmp_path / "early.csv"))  # the 95 % run not due yet
    assert code == 0, err


def test_a_warm_start_written_in_place_keeps_the_model_even_when_a_night_went_unrecorded(fitted, invoke, tmp_path):
    """The README's nightly warm start writes over the same file; a night whose predict failed leaves a
    checkpoint the record never saw between two it did: the runs still belong to one model."""
    ckpt, frame = fitted
    nightly = tmp_path / "load.ckpt"
    nightly.write_bytes(ckpt.read_bytes())
    rec = replay(invoke, nightly, frame, tmp_path, range(300, 306, 6))
    for rows in (306, 312):  # two warm starts in place; no predict after the first
        code, _, err = invoke("fit", cut(frame, rows, tmp_path / "fit.csv"), "--init-from", nightly, "--max-steps", "20",
                              "--output", nightly, "--force")
        assert code == 0, err
    replay(invoke, nightly, frame, tmp_path, range(312, 318, 6))
    runs = record.read(rec).runs
    assert runs[1]["parent"] not in {r["sha256"] for r in runs} and runs[1]["root"] == runs[0]["sha256"]
    code, out, _ = invoke("monitor", rec, cut(frame, 318, tmp_path / "all.csv"), "--json")
    assert json.loads(out)["model_runs"] == 2


def test_damaged_record_files_are_exit_2_naming_them(fitted, invoke, tmp_path):
    ckpt, frame = fitted
    rec = replay(invoke, ckpt, frame, tmp_path, range(300, 312, 6), "--adapt")
    data = cut(frame, 318, tmp_path / "all.csv")
    (rec / "adapt.csv").write_text("series,target,level,alpha,through,points,misses\nnorth,y,80,high,soon,6,1\n")
    code, _, err = invoke("predict", ckpt, data, "--record", rec, "--adapt")
    assert code == 2 and "adapt.csv: the adaptive state cannot be read" in err and "remove it" in err
    (rec / "adapt.csv").unlink()
    first = record.read(rec).runs[0]
    described = rec / "checkpoints" / f"{first['sha256']}.json"
    described.write_text('{"reading": {}}')
    code, _, err = invoke("monitor", rec, data)
    assert code == 2 and f"{first['sha256']}.json" in err and "cannot be read" in err
    described.unlink()
    code, _, err = invoke("monitor", rec, data)
    assert code == 2 and "record a forecast with that checkpoint again" in err
    replay(invoke, ckpt, frame, tmp_path, range(312, 318, 6))  # writes the description again
    (rec / "forecasts" / "000001.csv").write_text("run,series\n1,north\n")
    code, _, err = invoke("monitor", rec, data)
    assert code == 2 and "000001.csv: run 1 of the record cannot be read" in err and "restore the file" in err
    rows = pd.read_csv(rec / "forecasts" / "000002.csv")
    rows.assign(timestamp="soon").to_csv(rec / "forecasts" / "000001.csv", index=False)
    code, _, err = invoke("monitor", rec, data)
    assert code == 2 and "a recorded timestamp cannot be read" in err


def test_the_readme_command_lines_for_the_record_and_monitor_run(fitted, invoke, tmp_path):
    """The README's Commands lines `predict ... --record rec/ --adapt` and `monitor rec/ ACTUALS.csv`, with
    its placeholders (gru.ckpt, DATA.csv, ACTUALS.csv) standing for a checkpoint and its data."""
    import shlex

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    lines = [line.split("#")[0].split() for line in readme.splitlines()
             if line.startswith(("seqcast predict gru.ckpt DATA.csv --record", "seqcast monitor rec/"))]
    assert len(lines) == 2, lines
    ckpt, frame = fitted
    files = {"gru.ckpt": str(ckpt), "DATA.csv": str(cut(frame, 300, tmp_path / "data.csv")),
             "ACTUALS.csv": str(cut(frame, 306, tmp_path / "actuals.csv")), "rec/": str(tmp_path / "rec")}
    for words in lines:
        args = [files.get(word, word) for word in shlex.split(" ".join(words))[1:]]
        code, out, err = invoke(*args)
        assert code == 0, (args, err)
    assert len(record.read(tmp_path / "rec").runs) == 1 and (tmp_path / "rec" / "adapt.csv").exists()
    assert "overall" in out
