"""One standard of trust for every model file (issue 30, section 1), the checkpoint side and both formats
fuzzed: an older format's metadata is checked against the schema of its own format before the upgrade
(seqcast/formats.py), JSON nested deeper than seqcast writes is a damaged file, and crafted files of
every format end in exit 0 or 2, never 1 (benchmarks/fuzz_loaders.py, run small here)."""

from __future__ import annotations

import copy
import glob
import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ckpt_parts, subprocess_env

from seqcast import checkpoint
from seqcast.decode import SchemaError
from seqcast.errors import CheckpointError
from seqcast.formats import check_own_format

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
OLDER = sorted(Path(p) for p in glob.glob(str(FIXTURES / "format[1-8]" / "*.ckpt")))


def resigned(source: Path, meta: dict, version: int | None = None) -> bytes:
    """``source`` (an older-format fixture) with ``meta`` and a digest recomputed, as anyone can."""
    from safetensors.torch import load_file, save

    tensors = load_file(source)
    version = version or ckpt_parts(source.read_bytes())[2]["format"]
    document = {"format": version, "meta": meta,
                "sha256": checkpoint._digest(version, checkpoint._canonical(meta), tensors)}
    return save(tensors, metadata={"seqcast": checkpoint._canonical(document)})


def manifest_entry(source: Path) -> dict:
    entries = json.loads((source.parent / "manifest.json").read_text(encoding="utf-8"))
    return next(e for e in entries if e["checkpoint"] == source.name)


def test_every_older_fixture_has_the_shape_of_its_own_format():
    for source in OLDER:
        document = ckpt_parts(source.read_bytes())[2]
        check_own_format(document["format"], document["meta"])


@pytest.mark.parametrize("change, named", [
    (lambda m: m.pop("scaler"), "meta (format 1): missing scaler"),
    (lambda m: m.update(tuning=None), "meta (format 1): unknown tuning"),
    (lambda m: m["data"].update(integer_time=[]), None),
    (lambda m: m.update(data=[]), "meta (format 1).data: expected an object"),
    (lambda m: m["model"].update(params=[1]), "meta (format 1).model.params: expected an object"),
    (lambda m: m["training"].pop("epochs_run"), "meta (format 1).training: missing epochs_run"),
    (lambda m: m["metrics"].update(extra=1), "meta (format 1).metrics"),
    (lambda m: m["model"]["params"].update(hidden_size=None), "meta.model_info.params.hidden_size: None is not an integer"),
    (lambda m: m["model"]["params"].update(hidden_size=10**400), "meta.model_info.params.hidden_size"),
    (lambda m: m["data"].update(lookback=float("nan")), "meta.schema.lookback: nan is not an integer"),
    (lambda m: m["model"]["params"].update(bidirectional=1), "meta.model_info.params.bidirectional: 1 is not true"),
    (lambda m: m["data"].update(freq=""), "meta.schema.freq: '' is not a frequency"),
], ids=["missing section", "later section", "integer_time list", "data list", "params list", "missing key",
        "metrics extra", "hidden_size null", "huge int", "NaN", "bidirectional 1", "freq empty"])
def test_crafted_values_in_a_format_1_file_are_exit_2_naming_the_key(invoke, tmp_path, change, named):
    """None of these is exit 1; each is refused naming the key (integer_time is read as a flag: any value
    means what bool() makes of it, as format 1 meant)."""
    source = FIXTURES / "format1" / "gru.ckpt"
    meta = copy.deepcopy(ckpt_parts(source.read_bytes())[2]["meta"])
    change(meta)
    target = tmp_path / "crafted.ckpt"
    target.write_bytes(resigned(source, meta))
    code, out, err = invoke("predict", target, (source.parent / manifest_entry(source)["data"]).resolve())
    if named is None:
        assert code in (0, 2), err
    else:
        assert code == 2 and out == "" and named in err and str(target) in err, err


@pytest.mark.parametrize("source", [FIXTURES / "format1" / "gru.ckpt", FIXTURES / "format8" / "panel_gru.ckpt"],
                         ids=["format 1", "format 8"])
@pytest.mark.parametrize("depth", [70, 200_000])
def test_a_deeply_nested_checkpoint_header_is_damaged(invoke, tmp_path, source, depth):
    """JSON nested past 64 levels (seqcast writes about 8), or past what Python can parse, is a damaged
    header: exit 2, never a RecursionError (for the current format too, below)."""
    document = ckpt_parts(source.read_bytes())[2]
    text = json.dumps(document).replace('"notes":', '"notes":' + "[" * depth + "]" * depth + ', "x":', 1)
    from safetensors.torch import load_file, save

    path = tmp_path / "deep.ckpt"
    path.write_bytes(save(load_file(source), metadata={"seqcast": text}))
    code, out, err = invoke("info", path)
    assert code == 2 and "damaged checkpoint header" in err, err


def test_a_deeply_nested_current_checkpoint_is_damaged(invoke, tiny_ckpt, tmp_path):
    from safetensors.torch import load_file, save

    document = ckpt_parts(tiny_ckpt.read_bytes())[2]
    text = json.dumps(document).replace('"notes":', '"notes":' + "[" * 5000 + "]" * 5000 + ', "x":', 1)
    path = tmp_path / "deep.ckpt"
    path.write_bytes(save(load_file(tiny_ckpt), metadata={"seqcast": text}))
    code, _, err = invoke("info", path)
    assert code == 2 and "damaged checkpoint header" in err, err


def _fuzz_script():
    """benchmarks/fuzz_loaders.py as a module: the test mutates files as the benchmark does."""
    spec = importlib.util.spec_from_file_location("fuzz_loaders", ROOT / "benchmarks" / "fuzz_loaders.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fuzzed_older_formats_load_or_exit_2_and_never_1(invoke, tmp_path):
    """200 format-1..8 files, each with 1-3 values swapped for a wrong type, a huge integer, NaN, nesting,
    or a key dropped, and the digest recomputed: loading is CheckpointError or a forecaster, and every
    one that loads predicts (exit 0 or 2; cli_invoke re-raises an exit-1 crash)."""
    rng, mutate = random.Random(30), _fuzz_script().mutate_values
    loaded = refused = 0
    documents = {source: ckpt_parts(source.read_bytes())[2] for source in OLDER}
    for case in range(200):
        source = rng.choice(OLDER)
        meta = copy.deepcopy(documents[source]["meta"])
        mutate(meta, rng)
        target = tmp_path / f"case{case % 4}.ckpt"
        target.write_bytes(resigned(source, meta))
        try:
            checkpoint.load(target)
        except CheckpointError as error:
            assert str(error).startswith(str(target)), error
            refused += 1
            continue
        loaded += 1
        code, _, err = invoke("predict", target, (source.parent / manifest_entry(source)["data"]).resolve())
        assert code in (0, 2), err
    assert refused > 100 and loaded > 5, (refused, loaded)


def test_the_loader_fuzz_script_finds_no_exit_1_in_either_format(tmp_path):
    """benchmarks/fuzz_loaders.py, small: every format's files (and ONNX with seqcast[onnx]) crafted, each
    predict and info exit 0 or 2, under a 6 GiB address space, none near its 60 s alarm."""
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fuzz_loaders.py"), "--cases", "6", "--json"],
                            capture_output=True, text=True, timeout=600, env=subprocess_env(), cwd=tmp_path)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0 and report["failed"] == 0, report["failures"]
    assert {f"format {v}" for v in range(1, checkpoint.FORMAT_VERSION + 1)} <= set(report["cases"]), report["cases"]
    assert report["slowest"]["seconds"] < 30, report["slowest"]


def test_check_own_format_names_the_format_and_key():
    with pytest.raises(SchemaError, match=r"meta \(format 3\)\.training: expected an object"):
        meta = copy.deepcopy(ckpt_parts((FIXTURES / "format3" / "gru.ckpt").read_bytes())[2]["meta"])
        meta["training"] = 3
        check_own_format(3, meta)
