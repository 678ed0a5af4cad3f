"""Checkpoint format 9: the metadata is the forecaster's dataclasses as they are, read by one strict
decoder driven by their annotations (decode.py); the digest covers the format number; format-8 files
(tests/fixtures/format8, written by format-8 code) load through the upgrade and forecast what they did."""

from __future__ import annotations

import json
import subprocess
import sys
import types
import typing
from dataclasses import dataclass, is_dataclass, replace
from pathlib import Path

import pytest
from conftest import (FIXTURES, assert_fixture_forecasts_as_recorded, ckpt_parts, format_fixtures, load_fixture,
                      with_document)

from seqcast import checkpoint, meta_schema
from seqcast.decode import SchemaError, decode, encode, stored_fields
from seqcast.errors import CheckpointError, SeqcastError
from seqcast.forecaster import Forecaster, InitFrom, Tuning

FORMAT_8 = Path(__file__).parent / "fixtures" / "format8"


# --- the format-8 fixtures ---------------------------------------------------------------------------

@pytest.mark.parametrize("entry", format_fixtures(8))
def test_format_8_checkpoints_load_and_forecast_what_they_did(entry, invoke):
    loaded = load_fixture(8, entry)
    assert loaded.name == entry["model"] and loaded.choices and loaded.transform.floor
    assert_fixture_forecasts_as_recorded(invoke, 8, entry)
    code, out, err = invoke("info", FORMAT_8 / entry["checkpoint"])
    assert code == 0 and f"format      8, upgraded to {checkpoint.FORMAT_VERSION} on reading" in out, err


def test_a_format_8_file_saved_again_is_format_9_and_means_the_same(tmp_path):
    """Upgrading moves the sections into the dataclasses' shape and nothing else: saved again, the same
    forecaster comes back (every section, the weights included)."""
    for path in sorted(FORMAT_8.glob("*.ckpt")):
        old = checkpoint.load(path)
        again = checkpoint.load(checkpoint.save(tmp_path / path.name, old).stored.path)
        assert again.stored.format == checkpoint.FORMAT_VERSION
        assert replace(again, model=None) == replace(old, model=None)
        _, _, document = ckpt_parts((tmp_path / path.name).read_bytes())
        assert set(document["meta"]) == {name for name, _ in stored_fields(Forecaster)}
        assert document["meta"]["training"]["settings"]["schedule"] == json.loads(json.dumps(
            encode(old.training.settings.schedule)))


def test_a_format_8_file_with_an_unknown_section_is_refused(tmp_path, invoke):
    """The upgrade moves format 8's sections by name; one it does not know is refused, never dropped."""
    from safetensors.torch import load_file, save

    source = FORMAT_8 / "panel_gru.ckpt"
    _, _, document = ckpt_parts(source.read_bytes())
    meta = {**document["meta"], "wormhole": 1}
    tensors = load_file(source)
    crafted = {"format": 8, "meta": meta, "sha256": checkpoint._digest(8, checkpoint._canonical(meta), tensors)}
    path = tmp_path / "crafted.ckpt"
    path.write_bytes(save(tensors, metadata={"seqcast": checkpoint._canonical(crafted)}))
    code, out, err = invoke("predict", path, (FORMAT_8 / "../../../sample_data/us_macro_quarterly.csv").resolve())
    assert code == 2 and out == "" and "cannot build" in err and "wormhole" in err, err


# --- the digest covers the format ------------------------------------------------------------------------

@pytest.mark.parametrize("stored", [14, 13, 12, 11, 10, 9, 8, 1, 16, 15.0, 1.9, -7, 0, "15", True, None])
def test_a_current_file_whose_format_is_edited_does_not_load(stored, tiny_ckpt, hourly_csv, tmp_path, invoke):
    data = tiny_ckpt.read_bytes()
    _, _, document = ckpt_parts(data)
    assert document["format"] == checkpoint.FORMAT_VERSION == 15
    path = tmp_path / "edited.ckpt"
    path.write_bytes(with_document(data, {**document, "format": stored}))
    code, out, err = invoke("predict", path, hourly_csv)
    assert code == 2 and out == "", err
    assert any(why in err for why in ("damaged", "newer than this seqcast", "cannot build", "incomplete")), err


def test_the_digest_covers_the_format_number(tiny_ckpt, tmp_path, invoke, hourly_csv):
    """Even with a metadata shape the edited format would accept, the digest tells: a format-15 document
    relabelled 16 and read by a seqcast that knows 16 would fail its digest. Here: the digest differs by
    format, and a file whose digest was taken without the format is damaged."""
    from safetensors.torch import load_file, save

    tensors = load_file(tiny_ckpt)
    _, _, document = ckpt_parts(tiny_ckpt.read_bytes())
    canonical = checkpoint._canonical(document["meta"])
    assert checkpoint._digest(15, canonical, tensors) == document["sha256"]
    assert len({checkpoint._digest(v, canonical, tensors) for v in (8, 9, 10, 11, 12, 13, 14, 15, 16)}) == 9
    unlabelled = {**document, "sha256": checkpoint._digest(8, canonical, tensors)}  # the old digest
    path = tmp_path / "unlabelled.ckpt"
    path.write_bytes(save(tensors, metadata={"seqcast": checkpoint._canonical(unlabelled)}))
    code, _, err = invoke("predict", path, hourly_csv)
    assert code == 2 and "digest does not match" in err, err


# --- the decoder ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Inner:
    rate: float
    sizes: tuple[int, ...] = ()


@dataclass(frozen=True)
class Outer:
    name: str
    inner: Inner
    maybe: int | None
    table: dict[str, list[float]]
    rows: tuple[Inner, ...] = ()
    free: dict[str, typing.Any] = None


GOOD = {"name": "a", "inner": {"rate": 1, "sizes": [1, 2]}, "maybe": None, "table": {"x": [1, 2.5]},
        "rows": [{"rate": 0.5, "sizes": []}], "free": {"anything": [1, {"b": None}]}}


def test_the_decoder_builds_the_typed_object_and_encode_undoes_it():
    value = decode(Outer, json.loads(json.dumps(GOOD)), "meta")
    assert value == Outer("a", Inner(1.0, (1, 2)), None, {"x": [1.0, 2.5]}, (Inner(0.5, ()),),
                          {"anything": [1, {"b": None}]})
    assert isinstance(value.inner.rate, float) and isinstance(value.inner.sizes, tuple)  # an int read as a float
    assert encode(value) == {**GOOD, "inner": {"rate": 1.0, "sizes": [1, 2]}}


@pytest.mark.parametrize("change, message", [
    (lambda v: v.update(maybe=True), "meta.maybe: True is not an integer or null"),
    (lambda v: v.update(maybe=1.0), "meta.maybe: 1.0 is not an integer or null"),
    (lambda v: v.update(name=None), "meta.name: None is not a string"),
    (lambda v: v["inner"].update(rate=False), "meta.inner.rate: False is not a number"),
    (lambda v: v["inner"].update(rate=10**400), "meta.inner.rate: 1000000"),
    (lambda v: v["inner"].update(sizes=[1, "2"]), "meta.inner.sizes[1]: '2' is not an integer"),
    (lambda v: v["inner"].update(sizes=(1, 2)), "meta.inner.sizes: (1, 2) is not a list of integers"),
    (lambda v: v["table"].update(x=[1, None]), "meta.table['x'][1]: None is not a number"),
    (lambda v: v["rows"][0].pop("rate"), "meta.rows[0]: missing rate"),
    (lambda v: v["rows"][0].update(extra=1), "meta.rows[0]: unknown 'extra'"),
    (lambda v: v.update(inner=[1]), "meta.inner: expected an object, found a list"),
    (lambda v: v.update(free=[]), "meta.free: [] is not"),
])
def test_the_decoder_refuses_naming_the_key_path(change, message):
    value = json.loads(json.dumps(GOOD))
    change(value)
    with pytest.raises(SchemaError) as caught:
        decode(Outer, value, "meta")
    assert str(caught.value).startswith(message), str(caught.value)


def test_the_decoder_refuses_an_annotation_it_has_no_rule_for():
    @dataclass
    class Odd:
        either: int | str

    with pytest.raises(TypeError, match="only X | None"):
        decode(Odd, {"either": 1}, "meta")


def _annotations(hint, seen):
    """Every annotation reachable from ``hint`` through the stored fields of dataclasses."""
    if is_dataclass(hint) and isinstance(hint, type):
        if hint in seen:
            return
        seen.add(hint)
        for _, resolve in stored_fields(hint):
            yield from _annotations(resolve(), seen)
        return
    yield hint
    for arg in typing.get_args(hint):
        if arg is not Ellipsis:
            yield from _annotations(arg, seen)


def test_every_stored_annotation_is_one_the_decoder_reads():
    """A new checkpoint field whose annotation the decoder has no rule for fails here, not in a user's load."""
    known = {bool, int, float, str, dict, list, tuple, typing.Any, type(None), typing.Union}
    for hint in _annotations(Forecaster, set()):
        origin = typing.get_origin(hint)
        assert hint in known or origin in known or origin is types.UnionType, hint


def test_every_section_round_trips_through_json(tiny_ckpt):
    """A forecaster with every optional section filled (tuning, warm start, calibration, choices ...) is
    written and read back equal: the decoder reads what encode writes, field for field."""
    filled = checkpoint.load(FORMAT_8 / "panel_gru.ckpt")
    filled = replace(filled, tuning=Tuning("study", None, 3, 2, 1, 0, 1, 0.5, None, {"hidden_size": 8},
                                           {"hidden_size": "8..64"}, 1.5),
                     training=replace(filled.training, init_from=InitFrom("old.ckpt", "0" * 64),
                                      warnings=("a warning",), seen_until={"cpi": "2009-07-01"}))
    meta = json.loads(checkpoint._canonical(checkpoint.to_meta(filled)))
    again = checkpoint.from_meta(meta, filled.model, filled.stored)
    meta_schema.check(again)
    assert again == filled and again.tuning is not None and again.training.init_from.sha256 == "0" * 64


def test_reading_for_a_forecast_reads_no_training_record_and_imports_no_torch(tmp_path):
    """The exported model's path (edge.py): the training record's key must be there but is not read, so
    neither training.py nor torch is imported to decode and check the rest."""
    meta = checkpoint.to_meta(checkpoint.load(FORMAT_8 / "bikes_nlinear.ckpt"))
    meta["training"] = {"not": "read"}
    (tmp_path / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    script = ("import json, sys\n"
              "from seqcast import checkpoint, meta_schema\n"
              "f = checkpoint.from_meta(json.load(open(sys.argv[1])), record=False)\n"
              "meta_schema.check(f)\n"
              "print(f.training, f.schema.lookback, 'torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "meta.json")], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["None", "48", "False"]
    del meta["training"]
    with pytest.raises(SchemaError, match="meta: missing training"):
        checkpoint.from_meta(meta, record=False)


# --- the format-10 fixtures: format 11 added the fit's backtest --------------------------------------------

@pytest.mark.parametrize("entry", format_fixtures(10))
def test_format_10_checkpoints_load_without_a_backtest_and_forecast_what_they_did(entry, invoke):
    if entry["model"] == "auto":
        pytest.importorskip("statsforecast", reason="this auto ensemble holds theta, which needs seqcast[stats]")
    loaded = load_fixture(10, entry)
    assert loaded.name == entry["model"] and loaded.backtest is None
    assert (loaded.portfolio is not None) == (entry["model"] == "auto")
    assert_fixture_forecasts_as_recorded(invoke, 10, entry)
    code, out, err = invoke("info", Path(__file__).parent / "fixtures" / "format10" / entry["checkpoint"])
    assert code == 0 and "backtest    - (no validation windows scored at fit" in out, err


def _older_crafted(version: int, fixture: str, change, path: Path) -> Path:
    """The format-``version`` fixture with its metadata changed by ``change(meta) -> meta``, digest correct."""
    from safetensors.torch import load_file, save

    source = Path(__file__).parent / "fixtures" / f"format{version}" / fixture
    _, _, document = ckpt_parts(source.read_bytes())
    meta, tensors = change(document["meta"]), load_file(source)
    crafted = {"format": version, "meta": meta,
               "sha256": checkpoint._digest(version, checkpoint._canonical(meta), tensors)}
    path.write_bytes(save(tensors, metadata={"seqcast": checkpoint._canonical(crafted)}))
    return path


def test_a_format_10_file_with_a_backtest_section_is_refused(tmp_path):
    """Format 10 had no backtest: a format-10 file holding one is not what that format wrote."""
    path = _older_crafted(10, "panel_gru.ckpt", lambda meta: {**meta, "backtest": None}, tmp_path / "crafted.ckpt")
    with pytest.raises(SeqcastError, match=r"cannot build \(meta \(format 10\): unknown backtest\)"):
        checkpoint.load(path)


# --- the format-11 fixtures: format 12 added the lookback among fit's choices -----------------------------

@pytest.mark.parametrize("entry", format_fixtures(11))
def test_format_11_checkpoints_load_and_forecast_what_they_did(entry, invoke):
    if entry["model"] == "auto":
        pytest.importorskip("statsforecast", reason="this auto ensemble holds theta, which needs seqcast[stats]")
    loaded = load_fixture(11, entry)
    assert loaded.name == entry["model"] and loaded.backtest is not None
    assert "lookback" not in [c.setting for c in loaded.choices]
    if entry["checkpoint"] == "nino_gru.ckpt":  # format 11's choices read as they were made
        assert [c.setting for c in loaded.choices] == ["window_norm", "transform", "loss"]
    assert_fixture_forecasts_as_recorded(invoke, 11, entry)


def test_a_format_11_file_with_a_lookback_choice_is_refused(tmp_path):
    """Format 11 never chose a lookback: a format-11 file holding such a choice is not what that format wrote."""
    def with_lookback_choice(meta):
        lookback = meta["schema"]["lookback"]
        choice = {"setting": "lookback", "chosen": str(lookback), "candidates": [str(lookback), str(2 * lookback)],
                  "scores": [0.5, 0.6], "probe_steps": 9}
        return {**meta, "choices": [*meta["choices"], choice]}

    path = _older_crafted(11, "nino_gru.ckpt", with_lookback_choice, tmp_path / "crafted.ckpt")
    with pytest.raises(SeqcastError, match=r"meta \(format 11\)\.choices: a lookback choice"):
        checkpoint.load(path)


# --- the format-12 fixtures: format 13 moved the per-series tables out of the header ----------------------

@pytest.mark.parametrize("entry", format_fixtures(12))
def test_format_12_checkpoints_load_and_forecast_what_they_did(entry, invoke):
    if entry["model"] == "auto":
        pytest.importorskip("statsforecast", reason="this auto ensemble holds theta, which needs seqcast[stats]")
    loaded = load_fixture(12, entry)
    assert loaded.name == entry["model"] and loaded.scaler.mean and loaded.schema.series
    if entry["checkpoint"] == "nino_gru.ckpt":  # format 12's lookback choice reads as it was made
        assert [c.setting for c in loaded.choices] == ["window_norm", "transform", "loss", "lookback"]
    assert_fixture_forecasts_as_recorded(invoke, 12, entry)


# --- the format-13 fixtures: format 14 stores the per-series tables as columns -----------------------------

@pytest.mark.parametrize("entry", format_fixtures(13))
def test_format_13_checkpoints_load_and_forecast_what_they_did(entry, invoke):
    if entry["model"] == "auto":
        pytest.importorskip("statsforecast", reason="this auto ensemble holds theta, which needs seqcast[stats]")
    loaded = load_fixture(13, entry)
    assert loaded.name == entry["model"] and set(loaded.scaler.mean) == set(loaded.schema.series)
    assert loaded.training.split and loaded.training.seen_until
    if entry["checkpoint"] == "panel_gru.ckpt":  # Box-Cox lambdas, per series
        assert set(loaded.transform.lambdas) == set(loaded.schema.series)
    if entry["checkpoint"] == "panel_auto.ckpt":  # validation MASE, per series
        assert set(loaded.backtest.series_mase) <= set(loaded.schema.series) and loaded.backtest.series_mase
    assert_fixture_forecasts_as_recorded(invoke, 13, entry)


def saved_again(version: int, entry: dict, tmp_path):
    """A format-N fixture loaded and saved by today's code: its header and document, and whether, read back,
    it means what the fixture meant."""
    old = load_fixture(version, entry)
    path = tmp_path / "again.ckpt"
    checkpoint.save(path, old)
    _, header, document = ckpt_parts(path.read_bytes())
    return header, document, checkpoint.to_meta(checkpoint.load(path)) == checkpoint.to_meta(old)


@pytest.mark.parametrize("entry", format_fixtures(13))
def test_a_format_13_file_saved_again_holds_its_tables_as_columns_and_means_the_same(entry, tmp_path):
    from seqcast import series_columns

    header, document, same = saved_again(13, entry, tmp_path)
    assert document["format"] == checkpoint.FORMAT_VERSION and f"{series_columns.PREFIX}/scaler.mean" in header
    assert header[f"{series_columns.PREFIX}/scaler.mean"]["dtype"] == "F64"
    assert f"{series_columns.PREFIX}/training.split" in header and f"{series_columns.PREFIX}/names" in header
    assert same


# --- the format-14 fixtures: format 15 adds what a distilled model records, and quantization-aware training ----

@pytest.mark.parametrize("entry", format_fixtures(14))
def test_format_14_checkpoints_load_and_forecast_what_they_did(entry, invoke):
    if entry["model"] == "auto":
        pytest.importorskip("statsforecast", reason="this auto ensemble holds theta, which needs seqcast[stats]")
    loaded = load_fixture(14, entry)
    assert loaded.name == entry["model"] and loaded.distillation is None and loaded.training.settings.qat is False
    assert set(loaded.scaler.mean) == set(loaded.schema.series) and loaded.training.split and loaded.training.seen_until
    assert_fixture_forecasts_as_recorded(invoke, 14, entry)


@pytest.mark.parametrize("entry", format_fixtures(14))
def test_a_format_14_file_saved_again_is_format_15_and_means_the_same(entry, tmp_path):
    _, document, same = saved_again(14, entry, tmp_path)
    assert document["format"] == 15 and document["meta"]["distillation"] is None
    assert document["meta"]["training"]["settings"]["qat"] is False and same


def test_a_format_14_file_that_claims_a_teacher_is_refused(tmp_path):
    """Format 14 knew no distillation: a format-14 document holding one was not written by seqcast."""
    from safetensors.torch import load_file, save

    source = FIXTURES / "format14" / "nino_gru.ckpt"
    _, _, document = ckpt_parts(source.read_bytes())
    meta = {**document["meta"], "distillation": None}
    crafted = {**document, "meta": meta}
    crafted["sha256"] = checkpoint._digest(14, checkpoint._canonical(meta), load_file(source))
    path = tmp_path / "crafted.ckpt"
    path.write_bytes(save(load_file(source), metadata={"seqcast": checkpoint._canonical(crafted)}))
    with pytest.raises(CheckpointError, match="distillation"):
        checkpoint.load(path)


def test_a_format_14_header_holds_no_per_series_table_and_the_digest_covers_the_columns(tiny_ckpt, tmp_path,
                                                                                       invoke, hourly_csv):
    from seqcast import series_columns

    data = tiny_ckpt.read_bytes()
    size, header, document = ckpt_parts(data)
    assert "mean" not in document["meta"]["scaler"] and "series" not in document["meta"]["schema"]
    assert "split" not in document["meta"]["training"] and header[checkpoint.SERIES_TENSOR]["dtype"] == "U8"
    columns = {k for k in header if series_columns.is_column(k)}
    assert {f"{series_columns.PREFIX}/{t}" for t in ("scaler.mean", "scaler.std", "training.split", "names")} <= columns
    for column in sorted(columns):  # one bit of any column is caught
        start = 8 + size + header[column]["data_offsets"][0]
        if header[column]["data_offsets"][1] == header[column]["data_offsets"][0]:
            continue
        flipped = bytearray(data)
        flipped[start] ^= 0x01
        path = tmp_path / "flipped.ckpt"
        path.write_bytes(bytes(flipped))
        code, _, err = invoke("predict", path, hourly_csv)
        assert code == 2 and ("digest does not match" in err or "damaged" in err or "cannot build" in err), (column, err)


def test_columns_that_do_not_hold_the_tables_are_damage(tiny_ckpt, tmp_path):
    """Positions out of range or repeated, a missing or an extra column: refused before any is used."""
    import numpy as np
    import torch
    from safetensors.torch import load_file

    from seqcast import series_columns
    from seqcast.errors import CheckpointError

    meta = checkpoint.to_meta(checkpoint.load(tiny_ckpt))
    weights = load_file(tiny_ckpt)
    at = f"{series_columns.PREFIX}/scaler.mean/at"

    def crafted(change) -> bytes:
        tensors = {k: v for k, v in weights.items() if not series_columns.is_column(k)}
        tables = checkpoint._without_tables(meta)[1]
        arrays = series_columns.to_columns(tables)
        change(arrays)
        tensors.update({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()})
        header_meta = checkpoint._without_tables(meta)[0]
        digest = checkpoint._digest(checkpoint.FORMAT_VERSION, checkpoint._canonical(header_meta), tensors)
        from safetensors.torch import save

        document = {"format": checkpoint.FORMAT_VERSION, "meta": header_meta, "sha256": digest}
        return save(tensors, metadata={"seqcast": checkpoint._canonical(document)})

    changes = {"position out of range": lambda a: a.__setitem__(at, a[at] + 5),
               "extra column": lambda a: a.__setitem__(f"{series_columns.PREFIX}/spare", np.zeros(3)),
               "missing column": lambda a: a.pop(f"{series_columns.PREFIX}/scaler.std"),
               "names cut short": lambda a: a.__setitem__(series_columns.NAME_ENDS, a[series_columns.NAME_ENDS] - 1)}
    for what, change in changes.items():
        path = tmp_path / "crafted.ckpt"
        path.write_bytes(crafted(change))
        with pytest.raises(CheckpointError, match="damaged checkpoint"):
            checkpoint.load(path)
    path.write_bytes(crafted(lambda a: None))  # the same, unchanged, loads
    assert checkpoint.load(path).scaler.mean == checkpoint.load(tiny_ckpt).scaler.mean


def test_a_panel_too_large_for_a_header_saves_and_loads(tiny_ckpt, tmp_path):
    """A million series' scaler is tens of MB of JSON: past safetensors' 100 MB header with the rest. Here a
    panel of 300,000 made-up series (16 MB of tables) round-trips, its header staying small."""
    from dataclasses import replace

    from seqcast.scaling import Scaler

    ckpt = checkpoint.load(tiny_ckpt)
    ids = [*ckpt.schema.series, *(f"series-{i:07d}" for i in range(300_000))]
    big = replace(ckpt, scaler=Scaler(dict.fromkeys(ids, [1.5]), dict.fromkeys(ids, [2.0])),
                  schema=replace(ckpt.schema, series=tuple(ids)))
    path = tmp_path / "big.ckpt"
    checkpoint.save(path, big)
    size, _, _ = ckpt_parts(path.read_bytes())
    assert size < 1 << 20
    again = checkpoint.load(path)
    assert again.schema.series == tuple(ids) and again.scaler.std["series-0299999"] == [2.0]


def test_every_kind_of_table_round_trips_through_columns_and_odd_ones_stay_json():
    """Numbers per series, a number, integer fields, texts; a subset of the series in its own order; names
    that are not ASCII; and tables no column kind fits (a null among numbers, mixed widths) kept as JSON."""
    import numpy as np

    from seqcast import series_columns

    names = ["zürich", "a,b", "plain", "日本"]
    tables = {"schema.series": names,
              "scaler.mean": {n: [float(i), -0.5] for i, n in enumerate(names)},
              "backtest.series_mase": {"plain": 0.7, "zürich": float("nan")},
              "training.split": {n: {"train": 10 + i, "val": 3, "test": 0} for i, n in enumerate(reversed(names))},
              "training.seen_until": {n: f"2024-01-0{i + 1} 00:00:00+01:00" for i, n in enumerate(names)},
              "transform.lambdas": {"plain": [0.5, None]},
              "scaler.std": {"plain": [1.0], "日本": [1.0, 2.0]},
              "extra.empty": {}}
    arrays = series_columns.to_columns(tables)
    index = json.loads(arrays.pop(series_columns.INDEX).tobytes())
    assert set(index["json"]) == {"transform.lambdas", "scaler.std", "extra.empty"}
    assert {p: c["kind"] for p, c in index["columns"].items()} == {
        "scaler.mean": "numbers", "backtest.series_mase": "number", "training.split": "counts",
        "training.seen_until": "texts"}
    read_names = set()

    def read(name, dtype, dims):
        read_names.add(name)
        array = arrays[name]
        assert array.ndim == dims and {"F64": np.float64, "I64": np.int64, "U8": np.uint8}[dtype] == array.dtype
        return array

    again = series_columns.from_columns(index, read)
    assert read_names == set(arrays)
    assert json.dumps(again, sort_keys=True) == json.dumps(tables, sort_keys=True)
    assert list(again["training.split"]) == list(reversed(names))  # each table keeps its own order
