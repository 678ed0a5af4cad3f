"""Checkpoints that are intact (their digest matches) but describe what this seqcast must not build or
use are refused with exit 2: an unknown window normalisation, weights of another dtype, metadata that
breaks the schema or asks for a model larger than its weights; and reading stays bounded by what the
file says it holds (a header that promises more, a pipe that never ends, a fuzzed file)."""

from __future__ import annotations

import copy
import json
import os
import struct
import subprocess
import sys
import textwrap

import pytest

from seqcast import checkpoint as ckpt_module
from seqcast.errors import CheckpointError
from seqcast.registry import get_spec, list_models

from conftest import ckpt_parts


def _refused(invoke, path, data, *messages):
    code, out, err = invoke("predict", path, data)
    assert code == 2 and out == "", err
    for message in messages:
        assert message in err, err


def test_an_unknown_window_norm_is_exit_2(invoke, tiny_ckpt, hourly_csv, tmp_path):
    ckpt = ckpt_module.load(tiny_ckpt)
    meta = ckpt_module.to_meta(ckpt)
    meta["model_info"]["window_norm"] = "sideways"
    path = tmp_path / "norm.ckpt"
    path.write_bytes(ckpt_module.to_bytes(ckpt_module.from_meta(meta, ckpt.model)))
    _refused(invoke, path, hourly_csv, "cannot build", "sideways")


def test_weights_of_another_dtype_are_refused_not_cast(invoke, tiny_ckpt, hourly_csv, tmp_path):
    ckpt = ckpt_module.load(tiny_ckpt)
    half = copy.deepcopy(ckpt.model).half()
    path = tmp_path / "half.ckpt"
    path.write_bytes(ckpt_module.to_bytes(ckpt_module.from_meta(ckpt_module.to_meta(ckpt), half)))
    _refused(invoke, path, hourly_csv, "is float16, the gru model needs float32")


# ---------------------------------------------------------------------------------------------------
# Crafted metadata (the digest recomputed, as anyone can): a strict schema, and a model built only
# within the bytes the file's tensors hold.


def _crafted(tiny_ckpt, tmp_path, change, name="crafted.ckpt"):
    """``tiny_ckpt`` with its metadata changed by ``change(meta)`` and a correct digest."""
    from safetensors.torch import load_file

    meta = ckpt_module.to_meta(ckpt_module.load(tiny_ckpt))
    change(meta)
    path = tmp_path / name
    path.write_bytes(ckpt_module.pack(meta, load_file(tiny_ckpt))[0])
    return path


def _set(section, key, value):
    def change(meta):
        target = meta
        for part in section.split("."):
            target = target[part] if part else target
        target[key] = value
    return change


BOUNDED = textwrap.dedent('''
    import resource, sys, time
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
    from seqcast import checkpoint
    from seqcast.errors import CheckpointError
    started = time.monotonic()
    try:
        checkpoint.load(sys.argv[1])
        print("loaded")
    except CheckpointError as error:
        print("refused", round(time.monotonic() - started, 2), error)
''')


@pytest.mark.parametrize("param, value", [("num_layers", 20000), ("hidden_size", 20000), ("hidden_size", 10**9)])
def test_a_crafted_model_size_is_refused_at_once_within_memory(tiny_ckpt, tmp_path, param, value):
    """A 3 KB file whose metadata asks for a model of gigabytes (or of 20,000 layers) is refused in a
    moment, inside a 6 GiB address space, instead of building for minutes or taking 5 GB."""
    path = _crafted(tiny_ckpt, tmp_path, _set("model_info.params", param, value))
    assert path.stat().st_size < 10_000
    result = subprocess.run([sys.executable, "-c", BOUNDED, str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    verdict, seconds, message = result.stdout.split(" ", 2)
    assert verdict == "refused" and float(seconds) < 10, result.stdout
    assert "cannot build" in message and f"{param}={value}" in message, message


@pytest.mark.parametrize("change, named", [
    (_set("schema", "lookback", "96"), "meta.schema.lookback: '96' is not an integer"),
    (_set("schema", "lookback", True), "meta.schema.lookback: True is not an integer"),
    (_set("schema", "lookback", 96.0), "meta.schema.lookback: 96.0 is not an integer"),
    (_set("schema", "horizon", 10**9), "meta.schema.horizon"),
    (_set("schema", "lookback", 0), "meta.schema.lookback"),
    (_set("schema", "targets", []), "meta.schema.targets"),
    (_set("schema", "targets", "y"), "meta.schema.targets: 'y' is not a list of strings"),
    (_set("schema", "source", None), "meta.schema.source: None is not a string"),
    (_set("schema", "wormhole", 1), "meta.schema: unknown 'wormhole'"),
    (_set("model_info.params", "hidden_size", -8), "meta.model_info.params.hidden_size"),
    (_set("model_info.params", "hidden_size", {"a": 1}), "meta.model_info.params.hidden_size"),
    (_set("model_info", "n_parameters", "many"), "meta.model_info.n_parameters"),
    (_set("training.settings", "seed", -1), "meta.training.settings: --seed -1"),
    (_set("training.settings", "lr", True), "meta.training.settings.lr: True is not a number"),
    (_set("training", "steps", -3), "meta.training.steps"),
    (_set("training.settings.schedule", "min_batch", -1), "meta.training.settings.schedule.min_batch"),
    (_set("training.settings.schedule", "min_batch", 1.5), "meta.training.settings.schedule.min_batch: 1.5"),
    (_set("policy", "fill", 3), "meta.policy.fill: 3 is not a string"),
    (_set("policy", "decimal", 3), "meta.policy.decimal: 3 is not a string or null"),
    (lambda meta: meta["scaler"]["std"].update({k: [0.0] for k in meta["scaler"]["std"]}), "meta.scaler.std"),
    (lambda meta: meta["scaler"]["mean"].clear(), "meta.scaler.mean"),
    (lambda meta: meta["training"]["settings"].pop("patience"), "meta.training.settings: missing patience"),
    (lambda meta: meta.pop("versions"), "meta: missing versions"),
    (lambda meta: meta.update(covariates=[]), "meta.covariates: expected an object, found a list"),
])
def test_metadata_that_breaks_the_schema_is_exit_2_naming_the_key(invoke, tiny_ckpt, hourly_csv, tmp_path,
                                                                  change, named):
    path = _crafted(tiny_ckpt, tmp_path, change)
    _refused(invoke, path, hourly_csv, "cannot build", named)


def test_the_schema_accepts_every_checkpoint_seqcast_writes(tiny_ckpt):
    """The schema is not stricter than seqcast itself: every model's metadata passes (fit writes them
    in test_model_contract; here the stored tiny one, and every registered model's defaults)."""
    from seqcast import meta_schema

    meta = ckpt_module.to_meta(ckpt_module.load(tiny_ckpt))
    meta_schema.check(ckpt_module.from_meta(meta))
    for name in list_models():
        spec = {**meta["model_info"], "name": name, "params": get_spec(name).defaults()}
        meta_schema.check(ckpt_module.from_meta({**meta, "model_info": spec}))


def test_a_header_that_promises_more_than_the_file_holds_is_refused_unread(tiny_ckpt, tmp_path, monkeypatch):
    """A regular file is sized before it is read: a header listing more tensor bytes than the file has
    is refused from the header alone (never a multi-GB read to reject it)."""
    data = tiny_ckpt.read_bytes()
    path = tmp_path / "big.ckpt"
    path.write_bytes(data + b"\0" * 1000)
    reads = []
    real_open = open

    def counting_open(*args, **kwargs):
        stream = real_open(*args, **kwargs)
        original = stream.read

        def read(n=-1):
            chunk = original(n)
            reads.append(len(chunk))
            return chunk
        stream.read = read
        return stream
    from seqcast import model_files  # where every model file is opened

    monkeypatch.setattr(model_files, "open", counting_open, raising=False)
    with pytest.raises(CheckpointError, match="truncated or has extra bytes"):
        ckpt_module.load(path)
    (header_size,) = struct.unpack("<Q", data[:8])
    assert sum(reads) == 8 + header_size < len(data), reads  # the header, not the weights


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("endless", [False, True])
def test_a_checkpoint_from_a_pipe_loads_and_an_endless_one_is_refused(invoke, tiny_ckpt, hourly_csv, tmp_path,
                                                                      endless):
    """A checkpoint read from a pipe (`--checkpoint <(...)`) loads; one that goes on after its listed
    bytes is refused once they are read, not read until memory runs out."""
    fifo = tmp_path / "model.fifo"
    os.mkfifo(fifo)
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent('''
        import sys
        data = open(sys.argv[1], "rb").read()
        try:
            with open(sys.argv[2], "wb") as out:
                out.write(data)
                while sys.argv[3] == "1":
                    out.write(b"\\0" * 65536)
        except BrokenPipeError:
            pass
    '''), str(tiny_ckpt), str(fifo), "1" if endless else "0"])
    try:
        code, out, err = invoke("predict", fifo, hourly_csv)
    finally:
        writer.kill()
        writer.wait()
    if endless:
        assert code == 2 and "has extra bytes" in err, err
    else:
        assert code == 0 and out.startswith("series,timestamp"), err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_piped_header_claiming_gigabytes_is_read_as_the_bytes_arrive(tiny_ckpt, tmp_path):
    """A header read from a pipe can claim a tensor of 8 GB: the body is read as it arrives, so the
    claim costs no memory and ends as a truncated checkpoint (exit 2), not an allocation (exit 1)."""
    data = tiny_ckpt.read_bytes()
    size, header, _ = ckpt_parts(data)
    last = max((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][1])
    begin = header[last]["data_offsets"][0]
    header[last] = {"dtype": "F32", "shape": [1 << 31], "data_offsets": [begin, begin + (4 << 31)]}
    raw = json.dumps(header).encode()
    crafted = tmp_path / "crafted.bin"
    crafted.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + size :])
    fifo = tmp_path / "model.fifo"
    os.mkfifo(fifo)
    writer = subprocess.Popen([sys.executable, "-c", "import sys; open(sys.argv[2], 'wb').write(open(sys.argv[1], "
                               "'rb').read())", str(crafted), str(fifo)])
    try:
        done = subprocess.run([sys.executable, "-c", textwrap.dedent('''
            import resource, sys
            resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
            from seqcast import checkpoint
            from seqcast.errors import CheckpointError
            try:
                checkpoint.load(sys.argv[1])
            except CheckpointError as exc:
                print(exc)
        '''), str(fifo)], capture_output=True, text=True, timeout=120)
    finally:
        writer.kill()
        writer.wait()
    assert done.returncode == 0 and "truncated" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_an_endless_device_is_refused(invoke, hourly_csv, device):
    if not os.path.exists(device):
        pytest.skip(f"{device} is not on this system")
    code, out, err = invoke("predict", device, hourly_csv)
    assert code == 2 and "not a seqcast checkpoint" in err, err


FUZZ = textwrap.dedent('''
    import math, random, resource, struct, sys, time
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
    import torch
    from safetensors.torch import load_file
    from seqcast import checkpoint
    from seqcast.errors import CheckpointError

    rng = random.Random(20261202)
    source = sys.argv[1]
    base_meta = checkpoint.to_meta(checkpoint.load(source))
    base_tensors = load_file(source)
    pool = [0, -1, 1, 2**31, 2**63, 10**12, 20000, 1.5, -0.5, float("nan"), float("inf"), "", "x", None, True,
            False, [], {}, [1, 2], {"a": 1}, "gru", "none", "revin"]

    def leaves(node, path=()):
        if isinstance(node, dict):
            for k, v in node.items():
                yield from leaves(v, path + (k,))
        elif isinstance(node, list) and node:
            yield from leaves(node[0], path + (0,))
        yield path

    def craft(meta, tensors):
        return checkpoint.pack(meta, tensors)[0]

    outcomes, slowest = {"loaded": 0, "refused": 0}, 0.0
    base = open(source, "rb").read()
    for case in range(400):
        meta, tensors = checkpoint.json.loads(checkpoint.json.dumps(base_meta)), dict(base_tensors)
        kind = rng.choice(["value", "value", "value", "tensor", "bytes"])
        if kind == "value":
            for _ in range(rng.randint(1, 3)):
                path = rng.choice(list(leaves(meta)))
                if not path:
                    continue
                node = meta
                for part in path[:-1]:
                    node = node[part]
                node[path[-1]] = rng.choice(pool)
            data = craft(meta, tensors)
        elif kind == "tensor":
            key = rng.choice(sorted(tensors))
            shape = [rng.choice([0, 1, 3, 64, 20000]) for _ in range(rng.randint(0, 3))]
            dtype = rng.choice([torch.float32, torch.float16, torch.float64, torch.int64])
            if math.prod(shape) * 8 < (1 << 28):
                tensors[key] = torch.zeros(shape, dtype=dtype)
            data = craft(meta, tensors)
        else:
            data = bytearray(base)
            for _ in range(rng.randint(1, 4)):
                at = rng.randrange(len(data))
                data[at] = rng.randrange(256)
            if rng.random() < 0.3:
                data = data[: rng.randrange(len(data))]
            data = bytes(data)
        with open("fuzz.ckpt", "wb") as out:
            out.write(data)
        started = time.monotonic()
        try:
            checkpoint.load("fuzz.ckpt")
            outcomes["loaded"] += 1
        except CheckpointError as error:
            assert error.exit_code == 2 and str(error).startswith("fuzz.ckpt"), str(error)
            outcomes["refused"] += 1
        slowest = max(slowest, time.monotonic() - started)
    print(outcomes, round(slowest, 2))
''')


def test_fuzzed_checkpoints_load_or_exit_2_within_bounds(tiny_ckpt, tmp_path):
    """400 checkpoints with metadata values, tensors or bytes changed (the digest recomputed where the
    metadata or tensors change) each load or raise CheckpointError (exit 2), in a 6 GiB address space,
    none taking more than a few seconds."""
    result = subprocess.run([sys.executable, "-c", FUZZ, str(tiny_ckpt)], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes, slowest = result.stdout.rsplit(" ", 1)
    outcomes = eval(outcomes)
    assert outcomes["refused"] > 100 and outcomes["loaded"] > 5, outcomes
    assert float(slowest) < 5, slowest


def test_a_number_too_large_for_a_float_is_exit_2_naming_the_key(invoke, tiny_ckpt, hourly_csv, tmp_path):
    def change(meta):
        sid = next(iter(meta["scaler"]["mean"]))
        meta["scaler"]["mean"][sid] = [10**400]
    _refused(invoke, _crafted(tiny_ckpt, tmp_path, change), hourly_csv, "cannot build", "scaler.mean")


def _choice(setting, chosen, candidates, scores=None):
    def change(meta):
        meta["choices"] = [{"setting": setting, "chosen": chosen, "candidates": list(candidates),
                            "scores": list(scores or [0.5] * len(candidates)), "probe_steps": 9}]
    return change


@pytest.mark.parametrize("change, named", [
    (_choice("lookback", "48", ["24", "48"]), "meta.choices[0]: two or more of whole numbers of steps, the one chosen "
                                               "among them and the one trained with (24)"),
    (_choice("lookback", "24", ["24", "-48"]), "whole numbers of steps"),
    (_choice("lookback", "24", ["24", "048"]), "whole numbers of steps"),
    (_choice("lookback", "24", ["24", "\u00b2"]), "whole numbers of steps"),  # a digit to str.isdigit, not to int()
    (_choice("lookback", "24", ["24", "9" * 5000]), "whole numbers of steps"),
    (_choice("lookback", "24", ["24"]), "whole numbers of steps"),
    (_choice("lookback", "24", ["24", "48"], [0.5]), "meta.choices[0].scores"),
    (_choice("horizon", "6", ["6", "12"]), "meta.choices[0].setting: 'horizon' is not one of"),
])
def test_a_lookback_choice_must_be_whole_steps_and_the_lookback_trained(invoke, tiny_ckpt, hourly_csv, tmp_path,
                                                                         change, named):
    path = _crafted(tiny_ckpt, tmp_path, change)
    _refused(invoke, path, hourly_csv, "cannot build", named)


def test_a_lookback_choice_of_the_lookback_trained_loads(tiny_ckpt, tmp_path):
    path = _crafted(tiny_ckpt, tmp_path, _choice("lookback", "24", ["24", "48"], [0.5, None]))
    assert [c.chosen for c in ckpt_module.load(path).choices] == ["24"]
