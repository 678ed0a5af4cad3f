"""Short series in a panel are padded, not dropped: their windows may start before their first row,
repeating its first value, and losses and scores use real rows only. A checkpoint records it, and
predict and evaluate read a short history the same way."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from conftest import long_text
from seqcast import checkpoint
from seqcast.data import DataConfig, series_from_text
from seqcast.scaling import Scaler
from seqcast.windows import build_windows, needs_padding, scaled_arrays


def _panel(short: int = 20, long: int = 200, n_long: int = 3) -> str:
    """Hourly series: ``n_long`` of ``long`` rows and one (``tiny``) of ``short`` rows."""
    text = long_text(tuple(f"s{i}" for i in range(n_long)), n=long)
    tiny = long_text(("tiny",), n=short, seed=7).splitlines()[1:]
    return text + "\n".join(tiny) + "\n"


def test_padded_windows_repeat_the_first_value_and_keep_targets_real():
    series = series_from_text("panel.csv", _panel(), DataConfig(id_col="unique_id"))
    lookback, horizon = 24, 6
    assert needs_padding(series, lookback, horizon)
    scaler = Scaler.fit(series, {s.id: len(s.times) for s in series.series})
    arrays = scaled_arrays(series, scaler)
    targets = {s.id: (0, len(s.times)) for s in series.series}
    plain = build_windows(series, arrays, lookback, horizon, targets)
    padded = build_windows(series, arrays, lookback, horizon, targets, pad_short=True)
    tiny = [s.id for s in series.series].index("tiny")
    assert (plain.series_index == tiny).sum() == 0  # 20 rows: no window of 24 + 6 without padding
    mine = np.flatnonzero(padded.series_index == tiny)
    assert len(mine) == 20 - 6 - 6 + 1  # origins from the 6th real row (min(L, H) real inputs) to the last
    x, y, _ = padded.batch(mine)
    first = arrays[tiny][0, 0]
    for window, origin, target in zip(x.numpy(), padded.origins[mine], y.numpy()):
        assert (window[: lookback - origin, 0] == first).all()  # the padded part repeats the first row
        assert np.array_equal(window[lookback - origin :, 0], arrays[tiny][:origin, 0])  # then the real rows
        assert np.array_equal(target[:, 0], arrays[tiny][origin : origin + horizon, 0])  # targets are real rows
    for sid in range(3):  # long series: every window of the unpadded set is still there
        assert set(plain.origins[plain.series_index == sid]) <= set(padded.origins[padded.series_index == sid])


@pytest.fixture(scope="module")
def padded(tmp_path_factory):
    """A GRU fit on a panel of three 200-row series and one of 30: (data, checkpoint, fit's stderr)."""
    from conftest import cli_invoke

    folder = tmp_path_factory.mktemp("padded")
    data, ckpt = folder / "panel.csv", folder / "m.ckpt"
    data.write_text(_panel(short=30), encoding="utf-8")
    code, _, err = cli_invoke("fit", data, "--model", "gru", "--epochs", "1", "--lookback", "48", "--horizon",
                              "6", "--param", "hidden_size=8", "--output", ckpt)
    assert code == 0, err
    return data, ckpt, err


def test_a_panel_with_a_short_series_fits_forecasts_and_scores_it(invoke, padded):
    data, ckpt, err = padded
    assert "1 of 4 series are too short for lookback 48: windows reach up to 42 rows before" in err
    assert checkpoint.load(ckpt).schema.pad_short
    code, out, err = invoke("predict", ckpt, data)
    assert code == 0, err
    frame = pd.read_csv(io.StringIO(out))
    assert set(frame["series"]) == {"s0", "s1", "s2", "tiny"} and frame["forecast"].notna().all()
    code, out, err = invoke("evaluate", ckpt, data, "--in-sample", "--windows", "2", "--json")
    assert code == 0 and '"tiny"' in out, err


def test_most_series_too_short_is_still_an_error_naming_them(invoke, tmp_path):
    """Padding keeps a few short series; when most are short the lookback does not suit the data."""
    data = tmp_path / "short.csv"
    data.write_text(_panel(short=30, long=40, n_long=3), encoding="utf-8")
    code, _, err = invoke("fit", data, "--epochs", "1", "--lookback", "48", "--horizon", "6",
                          "--output", tmp_path / "m.ckpt")
    assert code == 2 and "series too short" in err and "'tiny' has 30 rows" in err, err


@pytest.mark.parametrize("rows", [3])
def test_a_padded_model_still_refuses_a_history_shorter_than_its_real_inputs(invoke, padded, tmp_path, rows):
    data, ckpt, _ = padded
    few = tmp_path / "few.csv"
    few.write_text("\n".join(data.read_text(encoding="utf-8").splitlines()[:rows + 1]) + "\n", encoding="utf-8")
    code, out, err = invoke("predict", ckpt, few)
    assert code == 2 and "history too short: the model reads at least 6 rows" in err, err


def test_two_series_of_unlike_length_fit_as_they_did(invoke, tmp_path):
    """With an even count the lower median sizes the lookback, so exactly half never end up short and
    refused (a 50- and a 1000-week series fit, as before padding)."""
    import pandas as pd

    times = pd.date_range("2000-01-02", periods=1000, freq="W-SUN")
    rows = ["unique_id,ds,y"] + [f"a,{t:%Y-%m-%d},{i % 7}" for i, t in enumerate(times[:50])] + \
        [f"b,{t:%Y-%m-%d},{i % 5}" for i, t in enumerate(times)]
    data = tmp_path / "two.csv"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    code, _, err = invoke("fit", data, "--model", "nlinear", "--epochs", "1", "--output", tmp_path / "m.ckpt")
    assert code == 0, err


def test_explain_on_a_padded_checkpoint_gives_every_step_a_timestamp(invoke, padded):
    data, ckpt, _ = padded
    code, out, err = invoke("explain", ckpt, data, "--series", "tiny")
    assert code == 0, err
    frame = pd.read_csv(io.StringIO(out))
    assert frame["input_timestamp"].notna().all() and frame["input_step"].max() == 48


def test_series_short_against_the_horizon_fit_at_the_default_lookback(invoke, tmp_path):
    """60 hourly rows, horizon 24: validation takes 24 rows (not 10 %), so the default lookback is cut to
    what is left for one training window (12), not to half of 90 % of the rows (15, which fits none)."""
    times = pd.date_range("2024-01-01", periods=60, freq="h")
    rows = ["unique_id,ds,y"] + [f"s{k},{t:%Y-%m-%d %H:%M},{10 + k + np.sin(i / 3):.3f}"
                                 for k in range(3) for i, t in enumerate(times)]
    data = tmp_path / "short_hourly.csv"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    code, out, err = invoke("fit", data, "--model", "nlinear", "--horizon", "24", "--max-steps", "5",
                            "--output", tmp_path / "m.ckpt", "--json")
    assert code == 0, err
    assert json.loads(out)["lookback"] == 12 and "lookback 12 (shortened from 96" in err, err
