"""A million series (issue 33): Parquet read as typed columns (a file, a folder of files), Parquet
forecasts, a panel held column-wise, the partitioned forecast on Dask workers, and the README's lines."""

from __future__ import annotations

import io
import json
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqcast.data import DataConfig, load_series, series_from_text, table as csv_table
from seqcast.errors import InputError

def _panel_frame(series: int = 5, rows: int = 120) -> pd.DataFrame:
    times = pd.date_range("2024-01-01", periods=rows, freq="h")
    rng = np.random.default_rng(0)
    return pd.DataFrame({"unique_id": np.repeat([f"id{i}" for i in range(series)], rows),
                         "ds": np.tile(times, series),
                         "y": np.round(10 + rng.normal(size=series * rows) + np.tile(np.sin(np.arange(rows) / 4), series),
                                       3)})


def test_a_folder_of_parquet_files_forecasts_what_the_csv_does(invoke, tmp_path):
    pytest.importorskip("pyarrow", reason="seqcast[files] (pyarrow) is not installed")
    frame = _panel_frame()
    plain = tmp_path / "panel.csv"
    frame.to_csv(plain, index=False)
    folder = tmp_path / "parts"
    folder.mkdir()
    for k, ids in enumerate((["id0", "id1"], ["id2"], ["id3", "id4"])):
        frame[frame["unique_id"].isin(ids)].to_parquet(folder / f"part-{k}.parquet")
    (folder / "_SUCCESS").write_text("")  # what Spark writes beside the data: left out
    ckpt = tmp_path / "m.ckpt"
    code, _, err = invoke("fit", folder, "--model", "nlinear", "--max-steps", "3", "-o", ckpt)
    assert code == 0 and "5 series, 600 rows" in err, err
    outputs = [invoke("predict", ckpt, path)[1] for path in (plain, folder)]
    assert outputs[0] == outputs[1] and outputs[0].count("\n") == 5 * 24 + 1
    assert load_series(str(folder)).ids == [f"id{i}" for i in range(5)]


def test_dataset_files_that_disagree_are_named(tmp_path):
    pytest.importorskip("pyarrow", reason="seqcast[files] (pyarrow) is not installed")
    folder = tmp_path / "parts"
    folder.mkdir()
    frame = _panel_frame(2, 30)
    frame.to_parquet(folder / "a.parquet")
    frame.rename(columns={"y": "sales"}).to_parquet(folder / "b.parquet")
    with pytest.raises(InputError, match=r"b\.parquet: its columns \(unique_id, ds, sales\) are not those of .*a\.parquet"):
        load_series(str(folder))
    (folder / "b.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match=r"b\.parquet: cannot read it as a Parquet file"):
        load_series(str(folder))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="is a folder, not a CSV file"):
        load_series(str(empty))


def test_parquet_types_are_read_as_the_csv_reader_types_them(tmp_path):
    pa = pytest.importorskip("pyarrow", reason="seqcast[files] (pyarrow) is not installed")
    import pyarrow.parquet as pq

    stamps = pd.date_range("2024-03-01", periods=6, freq="D", tz="Europe/Berlin")
    table = pa.table({"store": pa.array([7, 7, 7, 8, 8, 8], pa.int32()),  # an integer id: read as text
                      "day": pa.array(list(stamps[:3]) * 2, pa.timestamp("ms", "Europe/Berlin")),
                      "sales": pa.array([1, None, 3, 4, 5, 6], pa.int64()),  # nulls: float, filled as asked
                      "price": pa.array([1.5, 2.5, 3.5, 1.0, 2.0, 3.0]).dictionary_encode()})
    path = tmp_path / "typed.parquet"
    pq.write_table(table, path)
    series = load_series(str(path), DataConfig(id_col="store", target=("sales",), fill="interpolate"))
    assert series.ids == ["7", "8"] and series.freq == "D"
    assert str(series.series[0].times.tz) == "UTC" and series.series[0].times[0] == stamps[0]
    assert series.series[0].values[:, 0].tolist() == [1.0, 2.0, 3.0]
    assert "column not used: price" in " ".join(series.notes)
    bad = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"ds": pa.array(list(stamps)), "y": pa.array([[1], [2], [3], [4], [5], [6]])}), bad)
    with pytest.raises(InputError, match=r"column .y. is of Parquet type list<.*int64>, which seqcast does not read"):
        load_series(str(bad))


def test_forecasts_are_written_as_parquet_where_the_output_says_so(invoke, tmp_path):
    pytest.importorskip("pyarrow", reason="seqcast[files] (pyarrow) is not installed")
    plain = tmp_path / "panel.csv"
    _panel_frame(3, 100).to_csv(plain, index=False)
    ckpt = tmp_path / "m.ckpt"
    assert invoke("fit", plain, "--model", "naive", "-o", ckpt)[0] == 0
    code, csv_out, err = invoke("predict", ckpt, plain)
    assert code == 0, err
    code, _, err = invoke("predict", ckpt, plain, "-o", tmp_path / "f.parquet")
    assert code == 0, err
    written = pd.read_parquet(tmp_path / "f.parquet")
    expected = pd.read_csv(io.StringIO(csv_out), parse_dates=["timestamp"])
    pd.testing.assert_frame_equal(written, expected, check_dtype=False)
    assert str(written["timestamp"].dtype).startswith("datetime64")
    code, _, err = invoke("evaluate", ckpt, plain, "--in-sample", "--forecasts", tmp_path / "w.parquet")
    assert code == 0 and len(pd.read_parquet(tmp_path / "w.parquet")) > 0, err


def test_a_panel_is_held_column_wise_and_cut_without_a_series_object_each():
    text = "unique_id,ds,y\n" + "".join(f"{sid},2024-01-{d:02d},{k * 10 + d}\n" for k, sid in enumerate("abc")
                                        for d in range(1, 6))
    series = series_from_text("p.csv", text)
    assert series.ids == ["a", "b", "c"] and series.bounds.tolist() == [0, 5, 10, 15]
    assert series.stacked_values()[:, 0].tolist() == [k * 10 + d for k in range(3) for d in range(1, 6)]
    part = series.subset([True, False, True]).heads([2, 3])
    assert part.ids == ["a", "c"] and part.lengths.tolist() == [2, 3]
    assert part.series[1].values[:, 0].tolist() == [21, 22, 23]
    assert [str(t.date()) for t in part.series[1].times] == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert [s.id for s in series.series[-2:]] == ["b", "c"] and series.series[-1].id == "c"


def test_a_typed_column_whose_first_block_proves_the_point_is_not_read_again_as_text(tmp_path, monkeypatch):
    rows = ["ds,y"] + [f"2024-01-01 {h:02d}:00,{v}" for h, v in zip(range(24), ["12.5"] + ["12.345"] * 23)]
    path = tmp_path / "prices.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    monkeypatch.setattr(csv_table.Table, "_read_text", lambda *a: pytest.fail("the column was read again as text"))
    series = load_series(str(path))
    assert series.decimal == "." and series.stacked_values()[1, 0] == 12.345 and not series.notes


def test_a_partitioned_dataset_is_forecast_on_dask_workers_one_partition_per_file(invoke, tmp_path):
    pytest.importorskip("pyarrow", reason="seqcast[files] (pyarrow) is not installed")
    pytest.importorskip("dask.distributed", reason="seqcast[cluster] (dask[distributed]) is not installed")
    frame = _panel_frame(6, 100)
    folder = tmp_path / "parts"
    (folder / "2026").mkdir(parents=True)
    for k in range(3):
        frame[frame["unique_id"].isin([f"id{2 * k}", f"id{2 * k + 1}"])].to_parquet(folder / "2026" / f"p{k}.parquet")
    ckpt = tmp_path / "m.ckpt"
    assert invoke("fit", folder, "--model", "nlinear", "--max-steps", "3", "-o", ckpt)[0] == 0
    code, whole, err = invoke("predict", ckpt, folder)
    assert code == 0, err
    code, out, err = invoke("predict", ckpt, folder, "-o", tmp_path / "out", "--workers", "2", "--json")
    assert code == 0, err
    assert json.loads(out) | {"seconds": 0} == {"output": str(tmp_path / "out"), "partitions": 3, "series": 6,
                                                "forecast_rows": 6 * 24, "seconds": 0}
    parts = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in parts] == ["p0.parquet", "p1.parquet", "p2.parquet"]
    together = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    pd.testing.assert_frame_equal(together, pd.read_csv(io.StringIO(whole), parse_dates=["timestamp"]),
                                  check_dtype=False)


@pytest.mark.parametrize("extra, message", [
    (["-o", "f.csv", "--workers", "2"], "with --workers or --scheduler the output is a folder"),
    (["-o", "out", "--workers", "2", "--plot", "p.png"], "--plot: not with --workers or --scheduler"),
    (["-o", "out", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "give one of them"),
])
def test_partitioned_forecasts_refuse_what_they_cannot_do(invoke, tmp_path, extra, message):
    plain = tmp_path / "panel.csv"
    _panel_frame(2, 60).to_csv(plain, index=False)
    ckpt = tmp_path / "m.ckpt"
    assert invoke("fit", plain, "--model", "naive", "-o", ckpt)[0] == 0
    code, _, err = invoke("predict", ckpt, plain, *[str(tmp_path / e) if e in ("f.csv", "out", "p.png") else e
                                                      for e in extra])
    assert code == 2 and message in err, err


def test_the_readme_large_panel_lines_run_as_printed(invoke, tmp_path, monkeypatch):
    """The README's "A million series" block, on a small folder of Parquet files: each line as printed (the
    scheduler's HOST:8786 is a local Dask cluster's address), the forecasts of each alike."""
    pytest.importorskip("pyarrow", reason="seqcast[files] (pyarrow) is not installed")
    distributed = pytest.importorskip("dask.distributed", reason="seqcast[cluster] (dask[distributed]) is not installed")
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("**A million series**", 1)[1].split("```", 2)[1]
    lines = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert len(lines) == 4 and all(line.startswith("seqcast ") for line in lines)
    monkeypatch.chdir(tmp_path)
    frame = _panel_frame(4, 80)
    Path("parts").mkdir()
    for k in range(2):
        frame[frame["unique_id"].isin([f"id{2 * k}", f"id{2 * k + 1}"])].to_parquet(f"parts/part-{k}.parquet")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        address = cluster.scheduler_address.removeprefix("tcp://")
        for line in lines:
            words = shlex.split(line.replace("HOST:8786", address))
            code, _, err = invoke(*words[1:])
            assert code == 0, (line, err)
            if "--workers" in words:  # the local workers' partitions, before the cluster's replace them
                by_workers = pd.concat([pd.read_parquet(p) for p in sorted(Path("forecasts").iterdir())])
    finally:
        cluster.close()
    whole = pd.read_parquet("forecasts.parquet")
    by_cluster = pd.concat([pd.read_parquet(p) for p in sorted(Path("forecasts").iterdir())])
    assert len(whole) == 4 * 24
    for other in (by_workers, by_cluster):
        pd.testing.assert_frame_equal(other.reset_index(drop=True), whole)


def test_fits_validation_backtest_in_blocks_of_series_scores_what_one_block_does(tmp_path, monkeypatch):
    """A million series are scored a block at a time (memory bounded by the block); the block size
    changes nothing but rounding."""
    from seqcast import evaluation
    from seqcast.fitting import ModelConfig, fit
    from seqcast.budget import TrainConfig

    path = tmp_path / "panel.csv"
    _panel_frame(5, 150).to_csv(path, index=False)
    series = load_series(str(path))
    fitted = fit(series, ModelConfig(name="nlinear", lookback=24, horizon=12), TrainConfig(max_steps=5, seed=0))
    whole = fitted.backtest
    splits = {sid: evaluation.Split(**fitted.training.split[sid]) for sid in series.ids}
    monkeypatch.setattr(evaluation, "VALIDATION_BLOCK", 2)
    blocks = evaluation.validation_backtest(fitted, series, splits)
    assert blocks.windows == whole.windows and list(blocks.series_mase) == list(whole.series_mase)
    # a model's forward pass rounds in float32 differently for a batch of one series than of five
    assert blocks.series_mase == pytest.approx(whole.series_mase, rel=1e-6)
    assert (blocks.mase, blocks.smape, blocks.bias) == pytest.approx((whole.mase, whole.smape, whole.bias), rel=1e-6)


def test_partitioned_forecasts_refuse_a_series_split_between_files_and_a_missing_checkpoint(invoke, tmp_path):
    pytest.importorskip("pyarrow", reason="seqcast[files] (pyarrow) is not installed")
    pytest.importorskip("dask.distributed", reason="seqcast[cluster] (dask[distributed]) is not installed")
    frame = _panel_frame(2, 100)
    folder = tmp_path / "by_month"
    folder.mkdir()
    frame[frame["ds"] < "2024-01-03"].to_parquet(folder / "a.parquet")  # split by time: both series in both
    frame[frame["ds"] >= "2024-01-03"].to_parquet(folder / "b.parquet")
    ckpt = tmp_path / "m.ckpt"
    assert invoke("fit", folder, "--model", "naive", "-o", ckpt)[0] == 0
    code, _, err = invoke("predict", tmp_path / "absent.ckpt", folder, "-o", tmp_path / "out", "--workers", "1")
    assert code == 2 and "absent.ckpt: no such checkpoint" in err and not (tmp_path / "out").exists(), err
    code, _, err = invoke("predict", ckpt, folder, "-o", tmp_path / "out", "--workers", "1")
    assert code == 2 and "b.parquet: series 'id0' is in" in err and "partition the dataset by series" in err, err


def test_parquet_columns_of_no_value_or_of_other_types_read_as_the_csv_would(tmp_path):
    pa = pytest.importorskip("pyarrow", reason="seqcast[files] (pyarrow) is not installed")
    import datetime
    import pyarrow.parquet as pq

    stamps = pd.date_range("2024-03-01", periods=6, freq="D")
    pq.write_table(pa.table({"ds": pa.array(stamps), "y": pa.array([1.0, 2, 3, 4, 5, 6]),
                             "note": pa.nulls(6), "open": pa.array([True, False] * 3),
                             "at": pa.array([datetime.time(9, 30)] * 6)}), tmp_path / "t.parquet")
    series = load_series(str(tmp_path / "t.parquet"), DataConfig(target=("y",)))
    assert series.stacked_values()[:, 0].tolist() == [1, 2, 3, 4, 5, 6]
    assert "columns not used: note, open, at" in " ".join(series.notes)


# --- out-of-core fit: windows held as runs per series, epochs sampled from them --------------------

@pytest.mark.parametrize("options", [{}, {"stride": 3}, {"last": 4, "stride": 2}, {"at_most": 17},
                                     {"pad_short": True}])
def test_windows_held_as_runs_cut_the_rows_a_listing_of_every_window_would(options):
    """Window i, found from the runs when a batch asks for it, holds the rows its series and origin say."""
    import torch

    from seqcast.windows import WindowSet, build_windows

    rng = np.random.default_rng(3)
    kept = [rng.normal(size=(n, 2)).astype(np.float32) for n in (40, 7, 90, 30, 55)]
    panel = series_from_text("p.csv", "unique_id,ds,a,b\n" + "".join(
        f"s{k},{t},{v[0]},{v[1]}\n" for k, a in enumerate(kept)
        for t, v in zip(pd.date_range("2024-01-01", periods=len(a), freq="h"), a)),
        DataConfig(target=("a", "b")))
    lookback, horizon = 8, 3
    targets = {sid: (0, len(a)) for sid, a in zip(panel.ids, kept) if sid != "s3"}  # s3: no windows
    windows = build_windows(panel, kept, lookback, horizon, targets, **options)
    assert isinstance(windows, WindowSet) and len(windows) == len(windows.series_index) == len(windows.origins)
    assert len(windows.runs[0]) <= len(kept) - 1 and 3 not in windows.series_index  # by series, not by window
    index = torch.randperm(len(windows), generator=torch.Generator().manual_seed(0))[:50]
    x, y, _ = windows.batch(index)
    for row, i in enumerate(index.tolist()):
        series, origin = kept[windows.series_index[i]], windows.origins[i]
        padded = np.concatenate([np.repeat(series[:1], max(lookback - origin, 0), axis=0), series])
        at = origin + max(lookback - origin, 0)
        assert np.array_equal(x[row].numpy(), padded[at - lookback : at])
        assert np.array_equal(y[row].numpy(), series[origin : origin + horizon])
    part = windows.subset(index[:7].numpy())
    assert np.array_equal(part.batch(slice(None))[1].numpy(), y[:7].numpy())


def test_a_series_of_ten_million_windows_costs_its_rows_not_a_listing():
    import torch

    from seqcast.windows import WindowSet

    rows = 10_000_000
    windows = WindowSet(torch.zeros(rows, 1), None, [0], [0], [96], [rows - 96 - 24 + 1], 96, 24)
    assert len(windows) == rows - 119
    assert sum(a.nbytes for a in windows.runs) == 4 * 8  # one run: four int64, whatever the windows
    x, y, _ = windows.batch(torch.tensor([len(windows) - 1]))
    assert x.shape == (1, 96, 1) and y.shape == (1, 24, 1)


def test_an_epoch_above_the_sampling_threshold_draws_its_windows_a_block_at_a_time(monkeypatch):
    """Below SAMPLED_ABOVE an epoch permutes every window; above it, it draws as many at random a block at
    a time, the same on every rank from the seed, each rank an equal, disjoint share of every step."""
    import torch

    from seqcast import training
    from seqcast.distributed import Distributed

    def epoch(count, batch, dist=None):
        generator = torch.Generator().manual_seed(5)
        return list(training.epoch_batches(count, batch, generator, dist, torch.device("cpu")))

    permuted = torch.cat(epoch(1000, 64))
    assert sorted(permuted.tolist()) == list(range(1000))  # every window once
    monkeypatch.setattr(training, "SAMPLED_ABOVE", 500)
    monkeypatch.setattr(training, "SAMPLED_BLOCK", 256)
    drawn = epoch(1000, 64)
    assert [len(b) for b in drawn] == [64] * 15 + [40]  # the steps of an epoch, as the budget counts them
    values = torch.cat(drawn)
    assert len(values) == 1000 and 0 <= values.min() and values.max() < 1000 and len(values.unique()) < 1000
    assert all(torch.equal(a, b) for a, b in zip(drawn, epoch(1000, 64)))  # the seed decides
    ranks = [epoch(1000, 32, Distributed(r, 2, r, 2, "gloo")) for r in (0, 1)]
    assert [len(b) for b in ranks[0]] == [len(b) for b in ranks[1]]
    for step, (a, b) in enumerate(zip(*ranks)):  # one process's step, shared between the ranks
        assert sorted(torch.cat([a, b]).tolist()) == sorted(drawn[step].tolist())


def test_fit_above_the_sampling_threshold_trains_and_forecasts(invoke, tmp_path, monkeypatch):
    from seqcast import training
    from seqcast.checkpoint import load

    monkeypatch.setattr(training, "SAMPLED_ABOVE", 100)
    monkeypatch.setattr(training, "SAMPLED_BLOCK", 64)
    data = tmp_path / "p.csv"
    _panel_frame(3, 400).to_csv(data, index=False)
    ckpt = tmp_path / "m.ckpt"
    code, _, err = invoke("fit", data, "--model", "nlinear", "--max-steps", "40", "--batch-size", "32", "-o", ckpt)
    assert code == 0, err
    training_record = load(ckpt).training
    assert training_record.steps == 40 and training_record.val_mse_scaled < 1.0
    code, out, err = invoke("predict", ckpt, data)
    assert code == 0 and out.count("\n") == 3 * 24 + 1, err
