"""The bad-input corpus (tests/bad_inputs/): every file either loads as expected.json says, or fails
with exit 2 and a message naming the place (line, column, series) -- never a traceback, never exit 1.

Each file goes through ``seqcast.data.load_series`` and through ``seqcast fit`` (CliRunner, a tiny
GRU). Files that load are also trained on: a constant series and one with values near 1e15 must
train to a finite checkpoint (contract item 19).
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from seqcast.data import load_series
from seqcast.errors import SeqcastError

CORPUS = Path(__file__).parent / "bad_inputs"
EXPECTED = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
FIT = ["--model", "gru", "--epochs", "1", "--lookback", "4", "--horizon", "2", "--param", "hidden_size=4", "--seed", "0"]


def test_corpus_is_large_and_fully_described():
    files = sorted(p.name for p in CORPUS.glob("*.csv"))
    assert len(files) >= 40
    assert files == sorted(EXPECTED), "every corpus file needs an entry in expected.json, and only those"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_load_series(name):
    expected = EXPECTED[name]
    path = str(CORPUS / name)
    if expected["outcome"] == "exit 2":
        with pytest.raises(SeqcastError) as info:
            load_series(path)
        assert info.value.exit_code == 2
        assert expected["message"] in str(info.value)
        assert str(info.value).startswith(path), "the message names the file"
        return
    series = load_series(path)
    assert series.targets == expected["target"]
    assert series.time_col == expected["time_col"]
    assert series.id_col == expected["id_col"]
    assert series.freq == expected["freq"]
    assert {s.id: len(s.times) for s in series.series} == expected["rows"]
    first = series.series[0]
    assert str(first.times[0]) == expected["first_time"] and str(first.times[-1]) == expected["last_time"]
    assert np.allclose(first.values[:2, 0], expected["first_values"], rtol=1e-9, atol=0)
    assert all(np.isfinite(s.values).all() for s in series.series)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fit_through_the_cli(name, invoke, tmp_path):
    expected = EXPECTED[name]
    expected = expected.get("fit", expected)
    ckpt = tmp_path / "model.ckpt"
    code, out, err = invoke("fit", CORPUS / name, *FIT, "--output", ckpt)
    assert "Traceback" not in err and "Traceback" not in out
    assert code != 1, err
    assert out == "", "fit writes nothing to stdout"
    if expected["outcome"] == "exit 2":
        assert code == 2, err
        errors = [line for line in err.splitlines() if line.startswith("seqcast: error: ")]
        assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], "one error line, last"
        assert expected["message"] in errors[0]
        assert not ckpt.exists()
        return
    assert code == 0, err
    from seqcast.checkpoint import load

    loaded = load(ckpt)  # load() refuses NaN/Inf weights
    assert math.isfinite(loaded.training.val_mse_scaled)
    assert loaded.schema.freq == expected["freq"]


@pytest.mark.parametrize("name", ["constant_series.csv", "huge_values.csv", "tiny_values.csv"])
def test_item19_extreme_series_train_and_forecast_finite_values(name, invoke, tmp_path):
    """item 19: a constant series, or one with huge values, trains without NaN and forecasts finite values."""
    ckpt = tmp_path / "model.ckpt"
    code, _, err = invoke("fit", CORPUS / name, *FIT, "--output", ckpt)
    assert code == 0, err
    code, out, err = invoke("predict", ckpt, CORPUS / name)
    assert code == 0, err
    import io

    import pandas as pd

    forecast = pd.read_csv(io.StringIO(out))["forecast"]
    assert np.isfinite(forecast).all()
    level = np.abs(load_series(str(CORPUS / name)).series[0].values).max()
    assert (np.abs(forecast) < 10 * level + 1).all(), "forecast stays on the scale of the data"
