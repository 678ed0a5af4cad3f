"""Fuzz both model formats (issue 30): every crafted file loads or is exit 2, within time and memory.

    python benchmarks/fuzz_loaders.py [--cases N] [--seed S] [--memory GIB] [--json]

Sources: the checkpoint fixtures of every earlier format (tests/fixtures/formatN), a checkpoint of the
current format and its ONNX export (made here from format8/panel_gru.ckpt; the ONNX part is left out without
seqcast[onnx]).
Each case changes one source as an attacker would and re-signs it (the digest detects damage, not
forgery): metadata values swapped for wrong types, huge integers, NaN, deep nesting, keys dropped or
added, the format edited, or nothing changed but the signature; for ONNX also operators renamed (Loop, If, Scan, unlisted ones), a node
dropped, dimensions changed, weights moved to external data; or raw bytes flipped or cut. Then
``seqcast predict FILE DATA`` and ``seqcast info FILE`` run in this process (the CLI's own exit codes),
under an address-space limit of --memory GiB (``RLIMIT_AS``) and a 60 s alarm per command.

Reports N cases per source, outcomes by exit code (0 loaded, 2 refused; anything else is a failure),
the slowest case, and this process's peak memory (max RSS). Exit status 1 when any command exits with
a code other than 0 or 2, or times out.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import resource
import signal
import struct
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
POOL = [0, -1, 1, 1.5, -0.5, 2**31, 2**63, 10**30, 10**400, float("nan"), float("inf"), "", "x", "gru", None, True,
        False, [], {}, [1, 2], {"a": 1}, [[[[[1]]]]]]
OPS = [("", "Loop"), ("", "If"), ("", "Scan"), ("", "Range"), ("", "RandomNormal"), ("com.example", "Exec"),
       ("", "Identity"), ("", "Add")]


def sources(work: Path) -> list[tuple[str, Path, Path]]:
    """(label, model file, data file) for each source."""
    from seqcast import checkpoint

    found = []
    for version in range(1, checkpoint.FORMAT_VERSION):
        manifest = json.loads((FIXTURES / f"format{version}" / "manifest.json").read_text(encoding="utf-8"))
        for entry in manifest[:2]:
            found.append((f"format {version}", FIXTURES / f"format{version}" / entry["checkpoint"],
                          (FIXTURES / f"format{version}" / entry["data"]).resolve()))
    panel = FIXTURES / "format8" / "panel_gru.ckpt"
    data = (ROOT / "sample_data" / "us_macro_quarterly.csv").resolve()
    current = checkpoint.save(work / "current.ckpt", checkpoint.load(panel))
    found.append((f"format {checkpoint.FORMAT_VERSION}", Path(current.stored.path), data))
    try:
        from seqcast import export

        export.require_exporter()
        (work / "model.onnx").write_bytes(export.export(current).data)
        found.append(("onnx", work / "model.onnx", data))
    except Exception as exc:  # noqa: BLE001  (no seqcast[onnx]: the ONNX part is left out, and said so)
        print(f"ONNX left out: {exc}", file=sys.stderr)
    return found


def _paths(node, rng, path=()):
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, rng, path + (key,))
    elif isinstance(node, list) and node:
        index = rng.randrange(len(node))
        yield from _paths(node[index], rng, path + (index,))


def mutate_values(meta: dict, rng: random.Random) -> str:
    """Change 1-3 values of ``meta`` in place; returns what was done."""
    done = []
    for _ in range(rng.randint(1, 3)):
        path = rng.choice([p for p in _paths(meta, rng) if p])
        node = meta
        for part in path[:-1]:
            node = node[part]
        roll = rng.random()
        if roll < 0.15 and isinstance(node, dict):
            node.pop(path[-1], None)
            done.append(f"drop {'.'.join(map(str, path))}")
        elif roll < 0.2 and isinstance(node, dict):
            node["wormhole"] = 1
            done.append(f"add {'.'.join(map(str, path[:-1]))}.wormhole")
        else:
            node[path[-1]] = copy.deepcopy(rng.choice(POOL))
            done.append(f"set {'.'.join(map(str, path))}={str(node[path[-1]])[:20]}")
    return "; ".join(done)


def _text(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=True, separators=(",", ":"))


def craft_checkpoint(source: Path, rng: random.Random) -> tuple[bytes, str]:
    from safetensors.torch import load_file, save

    from seqcast import checkpoint

    data = source.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    document = json.loads(json.loads(data[8:8 + size])["__metadata__"]["seqcast"])
    kind = rng.choice(["values", "values", "values", "format", "nested", "bytes", "resigned"])
    if kind == "bytes":
        return _bytes(data, rng)
    version, meta = document["format"], document["meta"]
    what = "re-signed unchanged (loads)"
    if kind == "values":
        what = mutate_values(meta, rng)
    elif kind == "format":
        version = rng.choice([1, 2, 5, 8, 9, 10, -7, 0, 1.9, "9", True, None])
        what = f"format={version!r}"
    tensors = load_file(source)
    digest_version = version if isinstance(version, int) and not isinstance(version, bool) and version > 0 else 9
    text = _text({"format": version, "meta": meta,
                  "sha256": checkpoint._digest(digest_version, _text(meta), tensors)})  # noqa: SLF001
    if kind == "nested":
        depth = rng.choice([70, 2000, 200_000])
        text = text.replace('"notes":', '"notes":' + "[" * depth + "]" * depth + ',"x":', 1)
        what = f"nesting {depth} deep"
    return save(tensors, metadata={"seqcast": text}), what


def _bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    if rng.random() < 0.3:
        return bytes(data[:rng.randrange(len(data))]), "bytes flipped and cut"
    return bytes(data), "bytes flipped"


def craft_onnx(source: Path, rng: random.Random) -> tuple[bytes, str]:
    import onnx

    from seqcast import edge

    data = source.read_bytes()
    kind = rng.choice(["values", "values", "graph", "graph", "bytes", "resigned"])
    if kind == "bytes":
        return _bytes(data, rng)
    proto = onnx.load_from_string(data)
    entry = next(e for e in proto.metadata_props if e.key == edge.KEY)
    document = json.loads(entry.value)
    graph = proto.graph
    if kind == "resigned":
        document["checkpoint"]["path"] = "elsewhere.ckpt"
        what = "re-signed, the source path changed (loads)"
    elif kind == "values":
        what = mutate_values(document, rng)
    else:
        roll, node = rng.random(), graph.node[rng.randrange(len(graph.node))]
        if roll < 0.4:
            node.domain, node.op_type = rng.choice(OPS)
            what = f"node -> {node.domain}:{node.op_type}"
        elif roll < 0.55:
            graph.node.remove(node)
            what = "a node dropped"
        elif roll < 0.75:
            value = rng.choice([*graph.input, *graph.output])
            dims = value.type.tensor_type.shape.dim
            if dims:
                dims[rng.randrange(len(dims))].dim_value = rng.choice([1, 7, 2**40])
            what = f"a dimension of {value.name} changed"
        elif roll < 0.9:
            tensor = graph.initializer[rng.randrange(len(graph.initializer))]
            tensor.dims[:] = [rng.choice([1, 3, 2**20]) for _ in range(rng.randint(0, 3))]
            what = "a weight's dimensions changed"
        else:
            tensor = graph.initializer[rng.randrange(len(graph.initializer))]
            tensor.data_location = onnx.TensorProto.EXTERNAL
            tensor.external_data.add(key="location", value="/etc/passwd")
            what = "a weight moved to external data"
    document["sha256"] = edge.UNSIGNED
    try:
        entry.value = edge.encode(document)
    except ValueError:  # NaN in the document: written as the JSON a hand-crafted file could hold
        entry.value = json.dumps(document, sort_keys=True, separators=(",", ":"))
    unsigned = proto.SerializeToString()
    digest = edge.file_digest(unsigned)
    return (edge.signed(unsigned, digest) if digest else unsigned), what


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100, help="cases per source kind (each format, onnx)")
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--memory", type=float, default=6.0, help="address-space limit, GiB")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    limit = int(args.memory * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGALRM, _alarm)
    import warnings

    warnings.simplefilter("ignore")
    from typer.testing import CliRunner

    from seqcast.cli import app

    rng = random.Random(args.seed)
    runner = CliRunner()
    outcomes: dict[str, Counter] = {}
    slowest, failures, started = (0.0, "", ""), [], time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        by_kind: dict[str, list] = {}
        for label, path, data in sources(work):
            by_kind.setdefault(label, []).append((path, data))
        for label, choices in by_kind.items():
            counts = outcomes.setdefault(label, Counter())
            for case in range(args.cases):
                path, data = rng.choice(choices)
                content, what = (craft_onnx if label == "onnx" else craft_checkpoint)(path, rng)
                target = work / ("case.onnx" if label == "onnx" else "case.ckpt")
                target.write_bytes(content)
                for command in (["predict", str(target), str(data)], ["info", str(target)]):
                    began = time.monotonic()
                    signal.alarm(60)
                    try:
                        result = runner.invoke(app, command)
                        code = result.exit_code
                    except Timeout:
                        code = "timeout"
                    finally:
                        signal.alarm(0)
                    seconds = time.monotonic() - began
                    counts[f"{command[0]} exit {code}"] += 1
                    if seconds > slowest[0]:
                        slowest = (seconds, f"{label} {command[0]}", what)
                    if code not in (0, 2):
                        failures.append({"source": label, "command": command[0], "exit": code, "case": what,
                                         "said": (result.stderr or "")[-300:] if code != "timeout" else ""})
    report = {"cases": {label: args.cases for label in outcomes}, "outcomes": {k: dict(v) for k, v in outcomes.items()},
              "slowest": {"seconds": round(slowest[0], 3), "where": slowest[1], "case": slowest[2]},
              "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
              "address_space_gib": args.memory, "seconds": round(time.monotonic() - started, 1),
              "failures": failures[:20], "failed": len(failures)}
    if args.json:
        print(json.dumps(report))
    else:
        for label, counts in report["outcomes"].items():
            print(f"{label:10} {args.cases} cases: " + ", ".join(f"{k} x{v}" for k, v in sorted(counts.items())))
        print(f"slowest: {report['slowest']['seconds']} s ({report['slowest']['where']}: {report['slowest']['case']})")
        print(f"peak RSS {report['peak_rss_mib']} MiB under {args.memory} GiB of address space; "
              f"{report['seconds']} s in all; {len(failures)} failures")
        for failure in failures[:20]:
            print("FAILED", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
