"""Reading, frequency inference, splits, scaling and windows: the data spine."""

import numpy as np
import pandas as pd
import pytest
import torch

from seqcast.data import DataConfig, future_times, season_length, series_from_text
from seqcast.errors import InputError
from seqcast.scaling import Scaler
from seqcast.windows import Split, build_windows, default_split, explicit_split, scaled_arrays, split_targets


def _csv(n=200, freq="h", start="2024-01-01", value=lambda i: float(i)):
    times = pd.date_range(start, periods=n, freq=freq)
    return "timestamp,value\n" + "".join(f"{t},{value(i)}\n" for i, t in enumerate(times))


@pytest.mark.parametrize("freq,expected,season", [("h", "h", 24), ("D", "D", 7), ("W-SUN", "W-SUN", 52),
                                                  ("MS", "MS", 12), ("QS-JAN", "QS-JAN", 4), ("15min", "15min", 96)])
def test_frequency_inference(freq, expected, season):
    series = series_from_text("t.csv", _csv(60, freq))
    assert series.freq == expected
    assert season_length(series.freq) == season


def test_integer_steps_and_future_times():
    series = series_from_text("t.csv", "step,value\n" + "".join(f"{10 + 5 * i},{i}\n" for i in range(30)))
    assert series.integer_time and series.freq == "5"
    assert list(future_times(series.series[0].times[-1], series.freq, 3)) == [160, 165, 170]


def test_monthly_future_timestamps_follow_the_calendar():
    series = series_from_text("t.csv", _csv(30, "MS"))
    future = future_times(series.series[0].times[-1], series.freq, 2)
    assert [str(t.date()) for t in future] == ["2026-07-01", "2026-08-01"]


def test_default_target_is_last_numeric_column_and_said():
    series = series_from_text("t.csv", "date,a,b,label\n2024-01-01,1,2,x\n2024-01-02,3,4,y\n2024-01-03,5,6,z\n")
    assert series.targets == ["b"]
    assert any("last numeric" in n for n in series.notes)


def test_long_format_is_detected():
    text = "unique_id,ds,y\n" + "".join(f"{sid},2024-01-{d:02d},{d}\n" for sid in "ab" for d in range(1, 21))
    series = series_from_text("t.csv", text)
    assert series.id_col == "unique_id" and [s.id for s in series.series] == ["a", "b"]
    assert series.series[1].values.shape == (20, 1)


def test_gap_names_the_place_and_fill_repairs_it():
    lines = _csv(50).splitlines(keepends=True)
    text = "".join(lines[:11] + lines[13:])
    with pytest.raises(InputError, match=r"gap after 2024-01-01 09:00:00.*2 timestamps missing"):
        series_from_text("t.csv", text)
    filled = series_from_text("t.csv", text, DataConfig(fill="interpolate"))
    assert np.allclose(filled.series[0].values[:, 0], np.arange(50))


def test_short_row_is_noticed():
    with pytest.raises(InputError, match="t.csv: line 3: expected 2 fields, saw 1"):
        series_from_text("t.csv", "timestamp,value\n2024-01-01,1\n2024-01-02\n2024-01-03,3\n")


def test_split_borders_include_the_lookback_overlap():
    series = series_from_text("t.csv", _csv(300))
    splits = explicit_split(series, Split(200, 50, 50), lookback=24, horizon=6)
    arrays = scaled_arrays(series, Scaler.fit(series, {"main": 200}))
    train = build_windows(series, arrays, 24, 6, split_targets(splits, "train"))
    val = build_windows(series, arrays, 24, 6, split_targets(splits, "val"))
    test = build_windows(series, arrays, 24, 6, split_targets(splits, "test"))
    assert len(train) == 200 - 24 - 6 + 1
    assert len(val) == 50 - 6 + 1 and len(test) == 50 - 6 + 1
    assert val.origins.min() == 200  # the first validation target is its first row, its input L rows early:
    assert torch.equal(val.batch(slice(0, 1))[0][0], torch.from_numpy(arrays[0][200 - 24 : 200]))
    assert test.origins.max() + 6 == 300
    x, y, _ = test.batch(slice(0, 1))
    assert x.shape == (1, 24, 1) and y.shape == (1, 6, 1)
    # The first test target is row 250: its scaled value is (250 - mean) / std of the training rows.
    scaler = Scaler.fit(series, {"main": 200})
    assert torch.isclose(y[0, 0, 0], torch.tensor((250 - scaler.mean["main"][0]) / scaler.std["main"][0]))


def test_scaler_fits_on_training_rows_only():
    series = series_from_text("t.csv", _csv(100, value=lambda i: 1000.0 if i >= 80 else float(i % 2)))
    scaler = Scaler.fit(series, {"main": 80})
    assert scaler.mean["main"] == [0.5] and scaler.std["main"] == [0.5]


def test_windows_do_not_cross_series():
    text = "unique_id,ds,y\n" + "".join(f"{sid},2024-01-{d:02d},{d}\n" for sid in "ab" for d in range(1, 31))
    series = series_from_text("t.csv", text)
    arrays = scaled_arrays(series, Scaler.fit(series, {"a": 30, "b": 30}))
    windows = build_windows(series, arrays, 5, 2, {"a": (0, 30), "b": (0, 30)})
    assert len(windows) == 2 * (30 - 5 - 2 + 1)
    x, y, _ = windows.batch(slice(None))
    diffs = torch.diff(torch.cat([x, y], 1)[..., 0], dim=1)
    assert torch.allclose(diffs, diffs[:, :1].expand_as(diffs))  # each window is one straight ramp


def test_validation_windows_thin_evenly_and_keep_each_series_last():
    text = "unique_id,ds,y\n" + "".join(f"{sid},2024-01-{d:02d},{d}\n" for sid, n in (("a", 31), ("b", 12))
                                        for d in range(1, n + 1))
    series = series_from_text("t.csv", text)
    arrays = scaled_arrays(series, Scaler.fit(series, {"a": 31, "b": 12}))
    whole = build_windows(series, arrays, 5, 2, {"a": (5, 31), "b": (5, 12)})
    assert len(whole) == 25 + 6
    thinned = build_windows(series, arrays, 5, 2, {"a": (5, 31), "b": (5, 12)}, at_most=10)
    assert thinned.origins.tolist() == [5, 9, 13, 17, 21, 25, 29, 6, 10]  # every 4th, counted back from each last
    assert thinned.series_index.tolist() == [0] * 7 + [1] * 2
    assert len(build_windows(series, arrays, 5, 2, {"a": (5, 31), "b": (5, 12)}, at_most=31)) == 31  # enough: whole


def test_rolling_origin_windows_count_back_from_the_end():
    series = series_from_text("t.csv", _csv(120))
    arrays = scaled_arrays(series, Scaler.fit(series, {"main": 100}))
    windows = build_windows(series, arrays, 24, 6, {"main": (0, 120)}, stride=6, last=5)
    assert windows.origins.tolist() == [90, 96, 102, 108, 114]


def test_too_short_series_says_required_and_actual():
    series = series_from_text("t.csv", _csv(40))
    with pytest.raises(InputError, match=r"has 40 rows, needs 144 \(lookback 96 \+ horizon 24 \+ validation 24\)"):
        default_split(series, 96, 24)


def test_etth1_protocol_self_check():
    """Repeat-last-value on ETTh1 OT, H=24 and 96, reproduces BENCHMARKS.md to 4 decimals."""
    from pathlib import Path

    from seqcast.data import load_series

    path = Path(__file__).parents[1] / "sample_data" / "ETTh1.csv"
    series = load_series(str(path), DataConfig(target=("OT",)))
    for horizon, mse, mae in ((24, 0.03431, 0.13941), (96, 0.06926, 0.20328)):
        splits = explicit_split(series, Split(8640, 2880, 2880), 96, horizon)
        arrays = scaled_arrays(series, Scaler.fit(series, {"main": 8640}))
        x, y, _ = build_windows(series, arrays, 96, horizon, split_targets(splits, "test")).batch(slice(None))
        assert len(x) == 2881 - horizon
        error = (x[:, -1:, :].double() - y.double())
        assert round(float((error**2).mean()), 4) == round(mse, 4)
        assert round(float(error.abs().mean()), 4) == round(mae, 4)


def test_reading_options_load_or_refuse_never_crash():
    """Day/month dates, separators and the reading options in any mix: a SeriesSet or an InputError."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    date = st.builds(lambda a, b, y, sep, time: f"{a}{sep}{b}{sep}{y}{time}", st.integers(0, 40), st.integers(0, 40),
                     st.sampled_from(["2024", "24", "1949", "0"]), st.sampled_from([".", "/", "-", " "]),
                     st.sampled_from(["", " 13:00", "T01:00:00", " 1:00 PM", " x"]))
    number = st.sampled_from(["1,5", "1.5", "1.234", "1,234", "1.234,5", "1,234.5", "1.234.567", ",5", "-0,1",
                              "12", "", "NA", "1e3", "1,5e3", "abc"])
    period = st.sampled_from(["1", "4", "Q2", "q3", "13", "Jan", "x", "0"])

    @settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.tuples(date, number, period, st.sampled_from(["2020", "2021", "99"])), min_size=1, max_size=15),
           st.sampled_from([";", ",", "\t"]), st.sampled_from(["date", "year"]),
           st.builds(DataConfig, time_col=st.sampled_from([None, None, "year,quarter", "date", "year"]),
                     decimal=st.sampled_from([None, None, ".", ","]), dayfirst=st.sampled_from([None, True, False]),
                     date_format=st.sampled_from([None, None, "%d.%m.%Y", "%Q", "%Y"]),
                     freq=st.sampled_from([None, None, "D", "MS", "1"]), fill=st.sampled_from(["none", "ffill"])))
    def check(rows, delimiter, first, config):
        header = delimiter.join([first, "quarter", "value"])
        body = "".join(delimiter.join([d if first == "date" else y, p, f'"{v}"']) + "\n" for d, v, p, y in rows)
        try:
            data = series_from_text("t.csv", header + "\n" + body, config)
        except InputError:
            return
        assert all(np.isfinite(s.values).all() for s in data.series)
        assert data.decimal in (".", ",", None)

    check()


@pytest.mark.parametrize("label", ["{y} Q{q}", "Q{q} {y}", "{y}-Q{q}", "{y}Q{q}", "q{q}/{y}"])
def test_quarter_labels_are_read_as_quarters(label):
    text = "quarter,gdp\n" + "".join(f"{label.format(y=1956 + i // 4, q=i % 4 + 1)},{i}\n" for i in range(12))
    series = series_from_text("q.csv", text)
    assert series.time_col == "quarter" and series.freq.startswith("QS")
    assert [str(t.date()) for t in series.series[0].times[:3]] == ["1956-01-01", "1956-04-01", "1956-07-01"]


def test_years_written_as_floats_are_years():
    series = series_from_text("y.csv", "year,flow\n" + "".join(f"{1700 + i}.0,{i}\n" for i in range(30)))
    assert series.freq.startswith("YS") and str(series.series[0].times[0].date()) == "1700-01-01"


PUBLIC_DATA = {"load_series", "load_future", "series_from_text", "write_csv", "table_bytes", "dataset_files",
               "DataConfig", "SeriesSet",
               "Series", "Panel",
               "DEFAULT_ID", "CALENDAR_FEATURES", "season_length", "seasons", "future_times", "future_grid",
               "canonical_freq"}


def test_the_data_package_is_one_entry_that_loads_pandas_not_torch():
    """``seqcast.data`` gives exactly its public names (its submodules aside), and importing it never
    imports torch (predict with an exported model runs without it). In a fresh interpreter: this one
    has torch loaded already."""
    import json
    import subprocess
    import sys

    from conftest import subprocess_env

    code = ("import json, sys, types, seqcast.data as d; print(json.dumps([sorted(d.__all__), sorted(k for k, v in "
            "vars(d).items() if not k.startswith('_') and not isinstance(v, types.ModuleType)), 'torch' in sys.modules, "
            "'pandas' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(), check=True)
    exported, public, torch_loaded, pandas_loaded = json.loads(out.stdout)
    assert set(exported) == set(public) == PUBLIC_DATA
    assert not torch_loaded and pandas_loaded


def test_library_code_reaches_the_data_package_through_its_entry_and_its_modules_share_no_private_name():
    """Modules outside ``seqcast/data/`` import from ``seqcast.data`` only, never from its submodules;
    the package's modules import no private (underscored) name from one another."""
    import ast
    import re
    from pathlib import Path

    root = Path(__file__).parents[1] / "seqcast"
    for path in root.rglob("*.py"):
        inside = path.parent == root / "data"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                modules = ["." * node.level + (node.module or "")]
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not (inside and private), f"{path.relative_to(root)} imports {private} from {modules[0]}"
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            else:
                continue
            for module in modules:
                assert inside or not re.search(r"(^|\.)data\.", module), \
                    f"{path.relative_to(root)} imports {module}: import from seqcast.data"
