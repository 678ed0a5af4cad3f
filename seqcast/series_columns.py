"""A checkpoint's per-series tables as typed columns beside the weights (format 14), not as JSON.

The tables (``checkpoint.SERIES_TABLES``) are dicts keyed by series name: the scaler's statistics, the
splits, the last timestamps seen, the Box-Cox lambdas, the validation MASE. At a million series their
JSON took seconds to parse and to check value by value on every load; as columns they are a few
arrays, read with one ``numpy.frombuffer`` each.

Every name is stored once, in the order of ``schema.series``: its UTF-8 bytes end to end (``NAMES``)
and where each ends (``NAME_ENDS``, int64). A table of K series is the positions of its series among
the names (``<prefix>/<path>/at``, int64 (K,), in the table's order) and its values
(``<prefix>/<path>``), of one of these kinds, which the small JSON index (``INDEX``) records:

- numbers: a list of W numbers per series (scaler statistics, lambdas): float64 (K, W);
- number: one number per series (validation MASE): float64 (K,);
- counts: an object of the same integer fields per series (the split): int64 (K, F), fields in the index;
- texts: one string per series (the last timestamp seen): UTF-8 bytes end to end, and ``/ends``.

A table of any other shape (an empty one, a null among the numbers, keys that are not series names)
stays JSON in the index, as format 13 held every table. The checkpoint's digest covers every column.
"""

from __future__ import annotations

import itertools
import json
from typing import Any, Callable

import numpy as np

PREFIX = "seqcast.series"
INDEX = PREFIX  # the JSON index: {"columns": {path: {"kind": ..., "fields": [...]}}, "json": {path: table}}
NAMES, NAME_ENDS = f"{PREFIX}/names", f"{PREFIX}/names/ends"
_NAMES_PATH = "schema.series"


def is_column(tensor_name: str) -> bool:
    """Whether ``tensor_name`` is one of the tables' tensors rather than a weight."""
    return tensor_name == PREFIX or tensor_name.startswith(f"{PREFIX}/")


def _kind(table: Any) -> tuple[str, list[str]] | None:
    """The column kind ``table``'s values fit (and the fields of "counts"), or None: it stays JSON.
    Checked with a pass in C over the values (a million series' tables in a fraction of a second)."""
    if not isinstance(table, dict) or not table:
        return None
    values = list(table.values())
    kinds = set(map(type, values))
    if kinds == {float}:
        return "number", []
    if kinds == {str}:
        return "texts", []
    if kinds == {list} and len(set(map(len, values))) == 1 and values[0] \
            and set(map(type, itertools.chain.from_iterable(values))) == {float}:
        return "numbers", []
    if kinds == {dict} and values[0] and len(set(map(tuple, values))) == 1 \
            and set(map(type, itertools.chain.from_iterable(map(dict.values, values)))) == {int}:
        return "counts", list(values[0])
    return None


def _text_column(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 bytes of ``texts`` end to end (uint8) and where each ends (int64)."""
    encoded = [t.encode("utf-8") for t in texts]
    ends = np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)))
    return np.frombuffer(bytearray(b"".join(encoded)), dtype=np.uint8), ends


def to_columns(tables: dict[str, Any]) -> dict[str, np.ndarray]:
    """The arrays that hold ``tables`` (``schema.series`` among them: the names), by tensor name, the JSON
    index (uint8) under ``INDEX``."""
    names = tables.get(_NAMES_PATH)
    if not isinstance(names, list) or not all(type(n) is str for n in names) or len(set(names)) != len(names):
        return {INDEX: _json_bytes({"columns": {}, "json": tables})}
    arrays: dict[str, np.ndarray] = {}
    arrays[NAMES], arrays[NAME_ENDS] = _text_column(names)
    index: dict[str, Any] = {"columns": {}, "json": {}}
    position: dict[str, int] | None = None
    for path, table in tables.items():
        if path == _NAMES_PATH:
            continue
        kind = _kind(table)
        if kind is not None and list(table) == names:
            at = np.arange(len(names), dtype=np.int64)
        elif kind is not None:
            position = position if position is not None else {n: i for i, n in enumerate(names)}
            at = np.fromiter((position.get(k, -1) for k in table), dtype=np.int64, count=len(table))
        if kind is None or at.min() < 0:
            index["json"][path] = table
            continue
        name, values = f"{PREFIX}/{path}", list(table.values())
        arrays[f"{name}/at"] = at
        if kind[0] == "texts":
            arrays[name], arrays[f"{name}/ends"] = _text_column(values)
        elif kind[0] == "counts":
            arrays[name] = np.array([list(v.values()) for v in values], dtype=np.int64)
        else:
            arrays[name] = np.array(values, dtype=np.float64)
        index["columns"][path] = {"kind": kind[0], "fields": kind[1]}
    arrays[INDEX] = _json_bytes(index)
    return arrays


def canonical(document: dict) -> str:
    """``document`` as the checkpoint's canonical JSON (sorted keys, no spaces): what its digest covers."""
    return json.dumps(document, sort_keys=True, ensure_ascii=False, allow_nan=True, separators=(",", ":"))


def _json_bytes(document: dict) -> np.ndarray:
    return np.frombuffer(bytearray(canonical(document).encode("utf-8")), dtype=np.uint8)


class Damaged(ValueError):
    """The columns do not hold tables this format writes."""


# (kind) -> (dtype code in the safetensors header, dimensions) of its values
_SHAPES = {"numbers": ("F64", 2), "number": ("F64", 1), "counts": ("I64", 2), "texts": ("U8", 1)}


def from_columns(index: Any, read: Callable[[str, str, int], np.ndarray]) -> dict[str, Any]:
    """The tables the columns hold, as their JSON would have given them. ``index`` is the parsed JSON index;
    ``read(tensor_name, dtype_code, dimensions)`` returns that tensor's array, or raises ``Damaged``."""
    if not isinstance(index, dict) or set(index) != {"columns", "json"} or not isinstance(index["json"], dict) \
            or not isinstance(index["columns"], dict):
        raise Damaged("index")
    tables = dict(index["json"])
    if not index["columns"] and _NAMES_PATH in tables:
        return tables
    names = _texts(read, NAMES)
    tables[_NAMES_PATH] = names
    for path, spec in index["columns"].items():
        if path in tables or not isinstance(spec, dict) or spec.get("kind") not in _SHAPES:
            raise Damaged(path)
        name, (dtype, dims) = f"{PREFIX}/{path}", _SHAPES[spec["kind"]]
        at = read(f"{name}/at", "I64", 1)
        if len(at) == len(names) and np.array_equal(at, np.arange(len(names))):
            keys = names  # every series, in order: the common case
        elif len(at) and (at.min() < 0 or at.max() >= len(names) or len(np.unique(at)) != len(at)):
            raise Damaged(path)
        else:
            keys = [names[i] for i in at.tolist()]
        if spec["kind"] == "texts":
            values = _texts(read, name)
        else:
            array = read(name, dtype, dims)
            fields = spec.get("fields")
            if spec["kind"] == "counts" and (not isinstance(fields, list) or not all(type(f) is str for f in fields)
                                            or array.shape[1] != len(fields)):
                raise Damaged(path)
            values = array.tolist() if spec["kind"] != "counts" else [dict(zip(fields, row)) for row in array.tolist()]
        if len(values) != len(keys):
            raise Damaged(path)
        tables[path] = dict(zip(keys, values))
    return tables


def _texts(read: Callable[[str, str, int], np.ndarray], name: str) -> list[str]:
    """The strings of a text column: its bytes cut at its ends, each decoded as UTF-8."""
    blob, ends = read(name, "U8", 1).tobytes(), read(f"{name}/ends", "I64", 1)
    if len(ends) and (ends[-1] != len(blob) or (np.diff(ends) < 0).any() or ends[0] < 0):
        raise Damaged(name)
    starts = np.concatenate([[0], ends[:-1]]).tolist()
    try:
        if blob.isascii():  # one character a byte: cut the decoded text
            text = blob.decode("ascii")
            return [text[a:b] for a, b in zip(starts, ends.tolist())]
        return [blob[a:b].decode("utf-8") for a, b in zip(starts, ends.tolist())]
    except UnicodeDecodeError:
        raise Damaged(name) from None
