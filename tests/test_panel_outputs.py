"""predict and evaluate on small panels write what they wrote before they were vectorised over
series (tests/fixtures/panel/README.md): the same rows and keys in the same order, the numbers to
float32 precision (torch's kernels round differently on other CPUs, so bytes can differ)."""

import io
import json
import math
from pathlib import Path

import pandas as pd
import pytest

PANEL = Path(__file__).parent / "fixtures" / "panel"
ENTRIES = json.loads((PANEL / "manifest.json").read_text(encoding="utf-8"))


def same_document(now, then, where="report"):
    """Equal structure, keys in the same order and equal values; floats to float32 precision."""
    if isinstance(then, dict):
        assert isinstance(now, dict) and list(now) == list(then), where
        for key in then:
            same_document(now[key], then[key], f"{where}.{key}")
    elif isinstance(then, list):
        assert isinstance(now, list) and len(now) == len(then), where
        for i, (a, b) in enumerate(zip(now, then)):
            same_document(a, b, f"{where}[{i}]")
    elif isinstance(then, float):
        assert isinstance(now, float) and math.isclose(now, then, rel_tol=1e-5, abs_tol=1e-7), (where, now, then)
    else:
        assert now == then, (where, now, then)


@pytest.mark.parametrize("entry", ENTRIES, ids=[f"{e['checkpoint']}-{e['command']}-{'-'.join(e['args'])}"
                                                for e in ENTRIES])
def test_panel_outputs_are_unchanged(entry, invoke, monkeypatch, tmp_path):
    monkeypatch.chdir(PANEL)  # the checkpoint and data paths appear in messages and reports as given
    forecasts = ["--forecasts", str(tmp_path / "forecasts.csv")] if "forecasts" in entry else []
    code, out, err = invoke(entry["command"], entry["checkpoint"], entry["data"], *entry["args"], *forecasts)
    assert code == 0, err
    expected = (PANEL / entry["stdout"]).read_text(encoding="utf-8")
    if entry["stdout"].endswith(".json"):
        now, then = json.loads(out), json.loads(expected)
        now.pop("predict_ms", None), then.pop("predict_ms", None)
        same_document(now, then)
    else:
        same_csv(out, expected)
    if forecasts:
        same_csv((tmp_path / "forecasts.csv").read_text(encoding="utf-8"),
                 (PANEL / entry["forecasts"]).read_text(encoding="utf-8"))


def same_csv(now: str, then: str) -> None:
    """The same header and rows; text columns equal, number columns to float32 precision."""
    assert now.splitlines()[0] == then.splitlines()[0]
    a, b = pd.read_csv(io.StringIO(now)), pd.read_csv(io.StringIO(then))
    assert a.shape == b.shape
    for column in b:
        if b[column].dtype.kind == "f":
            values = b[column].to_numpy()  # float32 rounding is relative to the column's magnitude
            assert a[column].to_numpy() == pytest.approx(values, rel=1e-5, abs=1e-6 * abs(values).max()), column
        else:
            assert a[column].tolist() == b[column].tolist(), column


# The vectorised pieces against the one-series-at-a-time definitions they replace.

@pytest.mark.parametrize("freq", ["h", "30min", "D", "2D", "B", "W-SAT", "MS", "ME", "QS-JAN", "YE-DEC", "C"])
@pytest.mark.parametrize("tz", [None, "UTC", "Europe/Berlin"])
def test_future_grid_is_future_times_of_every_series(freq, tz):
    """Calendar offsets and DST changes included; the dtype (unit, zone) is date_range's."""
    import numpy as np
    import pandas as pd

    from seqcast.data import future_times
    from seqcast.data import future_grid

    grid = pd.date_range("2016-03-20", "2024-11-10", freq=freq, tz=tz, unit="s")
    lasts = grid[np.r_[np.linspace(0, len(grid) - 1, 12).astype(int), 3, 3]]  # two series ending together
    parts = [future_times(t, freq, 5) for t in lasts]
    want = parts[0].append(parts[1:])
    got = future_grid(lasts, freq, 5)
    assert got.equals(want) and got.dtype == want.dtype
    steps = pd.Index(np.array([7, 12], dtype=np.int64))
    assert list(future_grid(steps, "5", 2)) == [12, 17, 17, 22]


def test_statistics_of_stacked_series_equal_those_of_each_alone():
    """Scaler statistics and MASE scales come from series stacked by length: the same to the bit."""
    import numpy as np

    from seqcast.evaluation import _seasonal_scale
    from seqcast.scaling import by_length, moments

    rng = np.random.default_rng(0)
    for dtype, channels in ((np.float64, 1), (np.float64, 3), (np.float32, 2)):
        arrays = [(rng.normal(size=(n, channels)) * 10.0 ** rng.integers(-3, 6)).astype(dtype)
                  for n in rng.integers(2, 300, size=40).tolist() + [50] * 10]
        mean, std = moments(arrays)
        for a, m, s in zip(arrays, mean, std):
            one = moments([a])
            assert np.array_equal(one[0][0], m) and np.array_equal(one[1][0], s)
        scales = by_length(arrays, lambda stack: _seasonal_scale(stack, 7))
        assert all(np.array_equal(_seasonal_scale(a[None], 7)[0], s) for a, s in zip(arrays, scales))


def test_build_windows_places_windows_as_a_loop_over_series_would():
    import numpy as np
    import pandas as pd

    from seqcast.data import Series, SeriesSet
    from seqcast.windows import build_windows

    lengths = [30, 5, 17, 40, 12]
    series = SeriesSet("x.csv", "t", ["y"], "id", "1",
                       [Series(f"s{i}", pd.Index(np.arange(n, dtype=np.int64)), np.zeros((n, 1))) for i, n in
                        enumerate(lengths)])
    arrays = [np.arange(n, dtype=np.float32)[:, None] + 100 * i for i, n in enumerate(lengths)]
    targets = {"s0": (0, 30), "s1": (0, 5), "s2": (9, 17), "s3": (20, 35)}  # s4: none
    for stride, last in ((1, None), (3, None), (2, 3), (4, 20)):
        windows = build_windows(series, arrays, 4, 3, targets, stride=stride, last=last)
        expected = []
        for i, (sid, n) in enumerate(zip(["s0", "s1", "s2", "s3", "s4"], lengths)):
            first, end = targets.get(sid, (0, 0))
            top = min(end, n) - 3
            origins = [o for o in range(max(first, 4), top + 1)][::-1][::stride][::-1] if last else \
                list(range(max(first, 4), top + 1, stride))
            expected += [(i, o) for o in (origins[-last:] if last else origins)]
        assert list(zip(windows.series_index.tolist(), windows.origins.tolist())) == expected
        x, y, _ = windows.batch(slice(None))
        assert all(float(x[k, 0, 0]) == 100 * i + o - 4 and float(y[k, 0, 0]) == 100 * i + o
                   for k, (i, o) in enumerate(expected))


def test_unseen_rows_per_series_and_a_time_zone_that_differs(tmp_path):
    from seqcast.data import load_series
    from seqcast.errors import InputError
    from seqcast.evaluation import unseen_rows

    series = load_series(str(PANEL / "hourly.csv"))
    seen = {"a": "2024-01-03 00:00:00", "c": "2023-12-29 00:00:00", "gone": "2024-01-01 00:00:00"}
    assert unseen_rows(series, seen) == {"a": 49, "zürich": 0, "b10": 0, "c": 0, "new": 0}
    with pytest.raises(InputError, match="series 'north': timestamps differ in time zone"):
        unseen_rows(load_series(str(PANEL / "daily_utc.csv")), {"north": "2023-02-01 00:00:00"})
