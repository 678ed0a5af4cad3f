"""The CSV reader at size: the C-reader fast path reads every file exactly as the row-by-row reader
does (same series, values, notes and errors), panels split with one sort, and the frequency and gap
checks run over all series at once while naming the first series that breaks them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqcast.data import source, table as csv_table
from seqcast.data import DataConfig, load_series, series_from_text
from seqcast.errors import InputError

HERE = Path(__file__).parent
FILES = sorted([*(HERE / "bad_inputs").glob("*.csv"), *(HERE / "real_files").glob("*.*sv"),
                *(HERE.parent / "sample_data").glob("*.csv")])


def _load(path: Path, exact: bool, monkeypatch, config: DataConfig = DataConfig()):
    """``load_series`` through the fast path, or with the scan refusing every file (the exact reader)."""
    with monkeypatch.context() as patch:
        if exact:
            patch.setattr(csv_table, "_scan", lambda handle, limits: None)
        try:
            return load_series(str(path), config)
        except InputError as error:
            return str(error)


def _same(fast, exact) -> None:
    if isinstance(exact, str):
        assert fast == exact
        return
    assert not isinstance(fast, str), fast
    for field in ("time_col", "targets", "id_col", "freq", "notes", "decimal", "dayfirst", "fill", "freq_given"):
        assert getattr(fast, field) == getattr(exact, field), field
    assert [s.id for s in fast.series] == [s.id for s in exact.series]
    for a, b in zip(fast.series, exact.series):
        assert a.times.equals(b.times) and a.times.dtype == b.times.dtype, a.id
        np.testing.assert_array_equal(a.values, b.values)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_the_fast_path_reads_every_file_as_the_exact_reader_does(path, monkeypatch):
    _same(_load(path, False, monkeypatch), _load(path, True, monkeypatch))


def test_the_fast_path_serves_plain_files_and_leaves_the_rest_to_the_exact_reader(tmp_path, monkeypatch):
    plain = tmp_path / "plain.csv"
    plain.write_text("ds,y\n2024-01-01,1.5\n2024-01-02,2.25\n2024-01-03,3.125\n")
    quoted = tmp_path / "quoted.csv"  # quotes within a line: the C reader unquotes them as the exact reader does
    quoted.write_text('"ds","y"\n2024-01-01,"1.5"\n2024-01-02,2.25\n2024-01-03,3.125\n')
    spanning = tmp_path / "spanning.csv"  # a quoted line break: rows are no longer lines
    spanning.write_text('ds,note,y\n2024-01-01,"two\nlines",1.5\n2024-01-02,,2.25\n2024-01-03,,3.125\n')
    inner = tmp_path / "inner.csv"  # a quoted delimiter: the delimiter count says so
    inner.write_text('ds,note,y\n2024-01-01,"a, b",1.5\n2024-01-02,,2.25\n2024-01-03,,3.125\n')
    blank = tmp_path / "blank.csv"
    blank.write_text("ds,y\n2024-01-01,1.5\n\n2024-01-02,2.25\n2024-01-03,x\n")
    used = []
    exact = csv_table._exact
    monkeypatch.setattr(csv_table, "_exact", lambda name, data: used.append(name) or exact(name, data))
    table = csv_table.read_table(str(plain), lambda header: set(), lambda header: {"ds"})
    assert not used and isinstance(table.columns["ds"], pd.DatetimeIndex) and table.columns["y"].dtype == np.float64
    assert load_series(str(quoted)).series[0].values[0, 0] == 1.5 and not used
    for path in (spanning, inner):
        assert load_series(str(path), DataConfig(target=("y",))).series[0].values[0, 0] == 1.5
    assert used == [str(spanning), str(inner)]
    with pytest.raises(InputError, match=r"line 5, column 'y': 'x' is not a number"):  # the blank line counts
        load_series(str(blank))


def _panel(n_series: int, length: int, shuffle: bool = False, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2024-01-01", periods=length, freq="h")
    frame = pd.DataFrame({"unique_id": np.repeat([f"s{i:04d}" for i in range(n_series)], length),
                          "ds": np.tile(ds.strftime("%Y-%m-%d %H:%M:%S"), n_series),
                          "y": np.round(rng.normal(size=n_series * length), 4)})
    return frame.sample(frac=1, random_state=seed) if shuffle else frame


def test_a_shuffled_panel_of_thousands_of_series_comes_back_in_order(tmp_path, monkeypatch):
    frame = _panel(3000, 12, shuffle=True)
    path = tmp_path / "panel.csv"
    frame.to_csv(path, index=False)
    loaded = load_series(str(path))
    assert len(loaded.series) == 3000 and loaded.freq == "h"
    assert [s.id for s in loaded.series] == list(dict.fromkeys(frame["unique_id"]))  # order of first appearance
    one = loaded.series[7]
    expected = frame[frame["unique_id"] == one.id].sort_values("ds")
    np.testing.assert_array_equal(one.values[:, 0], expected["y"].to_numpy())
    assert len([n for n in loaded.notes if "not in time order" in n]) == 4  # three named, then a count
    assert any(n.startswith("rows of 2997 more series") for n in loaded.notes)
    _same(loaded, _load(path, True, monkeypatch))


def test_panel_errors_name_the_first_series_in_file_order(tmp_path):
    frame = _panel(50, 10)
    gap = frame.drop(index=frame.index[(frame["unique_id"] == "s0031") & (frame["ds"] == "2024-01-01 05:00:00")])
    gap = gap.drop(index=gap.index[(gap["unique_id"] == "s0040") & (gap["ds"] == "2024-01-01 03:00:00")])
    path = tmp_path / "gap.csv"
    gap.to_csv(path, index=False)
    with pytest.raises(InputError, match=r"series 's0031': gap after 2024-01-01 04:00:00"):
        load_series(str(path))
    filled = load_series(str(path), DataConfig(fill="ffill"))
    assert [len(s.times) for s in filled.series] == [10] * 50
    assert [n for n in filled.notes if "filled" in n] == ["series 's0031': filled 1 missing timestamp (ffill)",
                                                         "series 's0040': filled 1 missing timestamp (ffill)"]
    twice = pd.concat([frame, frame.iloc[[455, 205]]])  # s0045 and s0020 repeat a row at the end
    twice.to_csv(path, index=False)
    with pytest.raises(InputError, match=r"series 's0020': timestamp 2024-01-01 05:00:00 appears twice "
                                         r"\(lines 207 and 503\)"):
        load_series(str(path))


def test_integer_steps_with_one_huge_jump_are_refused_before_allocating(tmp_path):
    steps = list(range(1, 100)) + [300_000_000]
    text = "step,y\n" + "".join(f"{s},{i % 7}.5\n" for i, s in enumerate(steps))
    assert len(text) < 1500
    for fill in ("none", "ffill"):
        with pytest.raises(InputError, match=r"frequency '1' would need 300000000 rows to cover 100 timestamps"):
            series_from_text("steps.csv", text, DataConfig(fill=fill))


def test_calendar_frequencies_are_checked_for_all_series_at_once(tmp_path):
    months = pd.date_range("2020-01-01", periods=24, freq="MS").strftime("%Y-%m-%d")
    frame = pd.DataFrame({"unique_id": np.repeat(["a", "b", "c"], 24), "ds": np.tile(months, 3),
                          "y": np.arange(72, dtype=float) + 0.5})
    frame = frame.drop(index=[24 + 10])  # b misses a month
    path = tmp_path / "monthly.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(InputError, match=r"series 'b': gap after 2020-10-01 00:00:00: next timestamp is 2020-12-01"):
        load_series(str(path))
    loaded = load_series(str(path), DataConfig(fill="interpolate"))
    assert loaded.freq == "MS" and [len(s.times) for s in loaded.series] == [24, 24, 24]
    assert loaded.series[1].values[10, 0] == pytest.approx((loaded.series[1].values[9, 0] +
                                                            loaded.series[1].values[11, 0]) / 2)


def test_a_forecast_of_a_long_series_reads_only_the_end_of_the_file(tmp_path, monkeypatch):
    """``last``: a plain one-series file is read from its end, with the file's line numbers; the series is
    the end of the whole file's, and anything else (a panel, a missing first value) is read whole."""
    times = pd.date_range("2024-01-01", periods=5000, freq="h").strftime("%Y-%m-%d %H:%M:%S")
    values = np.round(np.sin(np.arange(5000) / 5), 5)
    path = tmp_path / "long.csv"
    path.write_text("ds,y\n" + "".join(f"{t},{v}\n" for t, v in zip(times, values)) + "\n\n")
    whole, end = load_series(str(path)), load_series(str(path), last=300)
    assert len(end.series[0].times) == 300
    assert end.series[0].times.equals(whole.series[0].times[-300:])
    np.testing.assert_array_equal(end.series[0].values, whole.series[0].values[-300:])
    lines = path.read_text().splitlines()
    lines[4990] = lines[4990].split(",")[0] + ",oops"  # line 4991 of the file
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"line 4991, column 'y': 'oops' is not a number"):
        load_series(str(path), last=300)
    lines[4990] = lines[4990].split(",")[0] + ","  # a missing value at the first row read: read it all
    lines[4701] = lines[4701].split(",")[0] + ","  # line 4702, the first of the last 300 rows
    path.write_text("\n".join(lines) + "\n")
    assert len(load_series(str(path), DataConfig(fill="ffill"), last=300).series[0].times) == 5000


def test_a_calendar_grid_no_timestamp_lies_on_is_an_error_not_a_crash():
    with pytest.raises(InputError, match=r"off the 'W-SUN' grid"):
        series_from_text("t.csv", "ds,y\n2024-01-08,1\n2024-01-15,2\n", DataConfig(freq="W"))


def test_a_pipe_is_read_once(tmp_path):
    """bash's ``<(...)`` and named pipes can be read only once: the reader takes their bytes in one go."""
    import os
    import threading

    fifo = tmp_path / "data.fifo"
    os.mkfifo(fifo)
    text = "ds,y\n" + "".join(f"2024-01-{d:02d},{d}.5\n" for d in range(1, 29))
    writer = threading.Thread(target=lambda: fifo.write_text(text))
    writer.start()
    loaded = load_series(str(fifo), last=5)
    writer.join(timeout=10)
    assert len(loaded.series[0].times) == 28 and loaded.series[0].values[-1, 0] == 28.5


def test_an_endless_pipe_or_device_is_refused_not_read_until_memory_runs_out(monkeypatch, invoke, tmp_path):
    """Input is read in blocks up to a quarter of the machine's memory (here shrunk to 8 MiB), and binary
    input is refused from its first block."""
    import subprocess

    from seqcast.data import source

    monkeypatch.setattr(source, "memory_limit", lambda: 8 << 20)
    endless = subprocess.Popen(["yes", "2024-01-01,1"], stdout=subprocess.PIPE)
    try:
        with pytest.raises(InputError, match=r"more than 0\.0 GiB of input .* split the file"):
            source.read_bytes(f"/dev/fd/{endless.stdout.fileno()}")
    finally:
        endless.kill()
        endless.wait()
    big = tmp_path / "big.csv"
    big.write_bytes(b"t,y\n" + b"1,2\n" * (3 << 20))  # 12 MiB: refused by its size, before reading
    with pytest.raises(InputError, match="big.csv: more than"):
        source.read_bytes(str(big))
    for device in ("/dev/zero", "/dev/urandom"):
        if os.path.exists(device):
            code, out, err = invoke("fit", device, "--output", tmp_path / "m.ckpt")
            assert code == 2 and ("contains a NUL byte; this is not a text CSV file" in err
                                  or "is not UTF-8; save the file as UTF-8" in err), err


# issue 29: compressed CSV and Parquet, by their first bytes, from a path or stdin

def _compressed(kind: str, data: bytes) -> bytes:
    import bz2
    import gzip
    import lzma

    if kind == "zstd":
        zstandard = pytest.importorskip("zstandard", reason="seqcast[files] (zstandard) is not installed")
        return zstandard.ZstdCompressor().compress(data)
    return {"gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress}[kind](data)


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz", "zstd", "parquet"])
def test_compressed_csv_and_parquet_forecast_what_the_plain_csv_does(kind, invoke, tmp_path):
    plain = Path(__file__).parents[1] / "sample_data" / "bikeshare_dc_hourly.csv"
    if kind == "parquet":
        pytest.importorskip("pyarrow", reason="seqcast[files] (pyarrow) is not installed")
        other = tmp_path / "rentals.parquet"
        pd.read_csv(plain, parse_dates=["ds"]).to_parquet(other)
    else:
        other = tmp_path / "rentals.data"  # told by its first bytes, not its name
        other.write_bytes(_compressed(kind, plain.read_bytes()))
    ckpt = tmp_path / "m.ckpt"
    code, _, err = invoke("fit", other, "--model", "nlinear", "--past-cols", "observed_temp_c", "--max-steps", "3", "-o", ckpt)
    assert code == 0, err
    outputs = [invoke("predict", ckpt, path)[1] for path in (plain, other)]
    assert outputs[0] == outputs[1] and outputs[0].count("\n") == 25
    assert invoke("predict", ckpt, "-", input=other.read_bytes())[1] == outputs[0]  # from stdin too


def test_a_small_file_that_inflates_past_the_limit_is_refused(monkeypatch, tmp_path):
    import gzip

    monkeypatch.setattr(source, "memory_limit", lambda: 8 << 20)
    bomb = tmp_path / "bomb.csv.gz"
    bomb.write_bytes(gzip.compress(b"ds,y\n" + b"2024-01-01,1\n" * (2 << 20)))  # 26 MB of CSV in a few KB
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(InputError, match="more than 0.0 GiB of input"):
        source.read_bytes(str(bomb))
    damaged = tmp_path / "damaged.gz"
    damaged.write_bytes(gzip.compress(b"ds,y\n2024-01-01,1\n")[:-12] + b"garbage!" * 4)
    with pytest.raises(InputError, match="gzip-compressed data is damaged"):
        source.read_bytes(str(damaged))
    cut = tmp_path / "cut.gz"  # a copy cut short: an error, never a CSV missing its end (or with a shorter last value)
    cut.write_bytes(gzip.compress(b"ds,y\n" + b"".join(b"2024-01-%02d,7659123\n" % d for d in range(1, 29)))[:-20])
    with pytest.raises(InputError, match="ends before its end"):
        source.read_bytes(str(cut))
    members = tmp_path / "members.gz"  # concatenated members read as one file
    members.write_bytes(gzip.compress(b"ds,y\n2024-01-01,1\n") + gzip.compress(b"2024-01-02,2\n"))
    assert source.read_bytes(str(members))[1] == b"ds,y\n2024-01-01,1\n2024-01-02,2\n"
