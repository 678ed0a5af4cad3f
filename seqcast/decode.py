"""Stored JSON to typed dataclasses and back, driven by the dataclasses' annotations.

``encode`` turns a dataclass into JSON values: each field under its name, nested dataclasses as
objects, tuples as lists. ``decode`` builds the typed object back from JSON, strictly: an object must
hold exactly the stored fields of its dataclass (none missing, none unknown), and every value must be
of its annotated type: ``bool`` is not an ``int``, an ``int`` is read where a ``float`` is annotated
(as JSON may write 2.0), ``None`` only where the annotation says ``X | None``, and a tuple arrives as a
list. A value that breaks this raises ``SchemaError`` naming its key path (``meta.schema.lookback``).

The annotations understood: ``bool``, ``int``, ``float``, ``str``, ``Any`` and bare ``dict`` (any JSON
value, kept as it is), ``X | None``, ``list[X]``, ``tuple[X, ...]``, ``dict[str, X]`` and dataclasses;
anything else is a seqcast bug (``TypeError``), which the round-trip tests catch when a field is added.
A field marked ``NOT_STORED`` (``field(metadata=NOT_STORED)``) is neither written nor read; the caller
gives its value. Annotations are resolved in the dataclass's module, one field at a time, when that
field is first decoded.

Our own rather than pydantic's or msgspec's: measured in docs/architecture.md ("The checkpoint
format"), importing it costs about a millisecond, no new dependency, and messages in seqcast's words.
"""

from __future__ import annotations

import functools
import itertools
import math
import sys
import types
import typing
from dataclasses import fields, is_dataclass
from typing import Any, Iterable

from .errors import SeqcastError

NOT_STORED = types.MappingProxyType({"stored": False})  # field(metadata=NOT_STORED): the caller supplies it


class SchemaError(ValueError):
    """Stored metadata that breaks the schema; the message starts with the key's path, e.g. ``meta.schema.lookback``."""


def encode(value: Any) -> Any:
    """``value`` as JSON values: a dataclass as an object of its stored fields, tuples as lists."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list or kind is tuple:  # a million per-series values: no call for each plain one
        return [v if type(v) in _SCALARS else encode(v) for v in value]
    if kind is dict:
        values = value.values()
        if _all_of(values, list) and set(map(type, itertools.chain.from_iterable(values))) <= _SCALARS:
            return {k: list(v) for k, v in value.items()}  # a list of numbers per series: copied in C
        if _all_of(values, dict) and set(map(type, itertools.chain.from_iterable(map(dict.values, values)))) \
                <= _SCALARS:
            return {k: dict(v) for k, v in value.items()}  # an object of numbers per series (the splits)
        return {k: v if type(v) in _SCALARS else encode(v) for k, v in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        return {name: encode(getattr(value, name)) for name, _ in stored_fields(type(value))}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    return value


_SCALARS = frozenset((str, int, float, bool, type(None)))


def decode(hint: Any, value: Any, where: str, **given: Any) -> Any:
    """The object of annotated type ``hint`` that the JSON ``value`` describes; ``SchemaError`` naming the
    key path (``where`` and below) otherwise. For a dataclass, ``given`` supplies fields by name: those not
    stored, and stored ones the caller does not want read (their key must still be there)."""
    if given and not _is_class(hint):
        raise TypeError("decode: given fields need a dataclass")
    if hint is Any or hint is dict:
        if hint is dict and not isinstance(value, dict):
            raise _wrong(where, value, hint)
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) != 1 or len(args) != 2:
            raise TypeError(f"decode cannot read {hint!r}: only X | None")
        return None if value is None else _checked(options[0], value, where, hint)
    return _checked(hint, value, where, hint, given)


def _checked(hint: Any, value: Any, where: str, shown: Any, given: dict | None = None) -> Any:
    if hint is bool or hint is str:
        if not isinstance(value, hint):
            raise _wrong(where, value, shown)
        return value
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _wrong(where, value, shown)
        return value
    if hint is float:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= 1e308:
            return float(value)  # a 400-digit integer is no float
        if not isinstance(value, float):
            raise _wrong(where, value, shown)
        return value
    if hint is type(None):
        if value is not None:
            raise _wrong(where, value, shown)
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list or origin is tuple:
        if not isinstance(value, list):
            raise _wrong(where, value, shown)
        if origin is list or (len(args) == 2 and args[1] is Ellipsis):
            kind = args[0]
            if kind in (str, float) and _all_of(value, kind):  # the common case, checked at once
                items = list(value)
            else:
                items = [decode(kind, v, f"{where}[{i}]") for i, v in enumerate(value)]
        else:  # a fixed tuple, e.g. tuple[float, float]
            if len(value) != len(args):
                raise SchemaError(f"{where}: expected a list of {len(args)} values, found {len(value)}")
            items = [decode(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value))]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict) or args[0] is not str:
            raise _wrong(where, value, shown) if args[0] is str else TypeError(f"decode cannot read {hint!r}")
        if args[1] is Any:  # e.g. each series' split: nothing to check below the keys
            return dict(value)
        if args[1] in (str, float) and _all_of(value.values(), args[1]):  # a number per series
            return dict(value)
        plain = _plain_list(args[1])
        if plain is not None:  # e.g. the scaler's statistics, a list per series: checked without a call each
            kind, container = plain
            if _all_of(value.values(), list) and _all_of(itertools.chain.from_iterable(value.values()), kind):
                # the lists are the parsed document's own, which nothing else holds
                return dict(value) if container is list else {key: container(v) for key, v in value.items()}
        return {key: decode(args[1], v, f"{where}[{key!r}]") for key, v in value.items()}
    if _is_class(hint):
        return _dataclass(hint, value, where, given or {})
    raise TypeError(f"decode cannot read {hint!r}")  # a new kind of annotation needs a rule here


def _dataclass(cls: type, value: Any, where: str, given: dict[str, Any]) -> Any:
    if not isinstance(value, dict):
        raise SchemaError(f"{where}: expected an object, found {_kind(value)}")
    stored = stored_fields(cls)
    names = [name for name, _ in stored]
    missing, unknown = [n for n in names if n not in value], [str(k) for k in value if k not in names]
    if missing or unknown:
        raise SchemaError(f"{where}: " + "; ".join(part for part in (
            f"missing {', '.join(missing)}" if missing else "",
            f"unknown {', '.join(_short(k) for k in unknown)}" if unknown else "") if part))
    values = dict(given)
    for name, annotation in stored:
        if name not in given:
            values[name] = decode(annotation(), value[name], f"{where}.{name}")
    try:
        return cls(**values)
    except (SeqcastError, ValueError) as exc:  # a dataclass that checks its own ranges (TrainConfig)
        raise SchemaError(f"{where}: {exc}") from None


def _all_of(values: Iterable[Any], kind: type) -> bool:
    """Whether every value is exactly of type ``kind`` (a bool is no int), in one pass in C."""
    return set(map(type, values)) <= {kind}


@functools.cache
def _plain_list(hint: Any) -> tuple[type, type] | None:
    """(item type, list or tuple) for ``list[str]``, ``list[float]``, ``tuple[str, ...]``, ``tuple[float, ...]``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list and args[0] in (str, float):
        return args[0], list
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis and args[0] in (str, float):
        return args[0], tuple
    return None


@functools.cache
def stored_fields(cls: type) -> tuple[tuple[str, Any], ...]:
    """The stored fields of dataclass ``cls``, in order: (name, a function giving its resolved annotation)."""
    module = sys.modules[cls.__module__]
    return tuple((f.name, functools.cache(functools.partial(_resolve, f.type, module)))
                 for f in fields(cls) if f.metadata.get("stored", True))


def _resolve(annotation: Any, module: types.ModuleType) -> Any:
    # Annotations are seqcast's own source text (``from __future__ import annotations``), never stored
    # data; a quoted one ("Scaler") is text twice.
    while isinstance(annotation, str):
        annotation = eval(annotation, vars(module))  # noqa: S307
    return annotation


def _is_class(hint: Any) -> bool:
    return isinstance(hint, type) and is_dataclass(hint)


def _wrong(where: str, value: Any, hint: Any) -> SchemaError:
    return SchemaError(f"{where}: {_short(value)} is not {_shown(hint)}")


_NAMES = {bool: ("true or false", "true or false values"), int: ("an integer", "integers"),
          float: ("a number", "numbers"), str: ("a string", "strings"), type(None): ("null", "nulls")}


def _shown(hint: Any, many: bool = False) -> str:
    """How a message names the annotated type: "an integer", "a list of numbers or nulls"."""
    if hint in _NAMES:
        return _NAMES[hint][many]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_shown(a, many) for a in args)
    if origin in (list, tuple):
        return f"lists of {_shown(args[0], True)}" if many else f"a list of {_shown(args[0], True)}"
    return "objects" if many else "an object"


def _kind(value: Any) -> str:
    return {bool: "true or false", int: "a number", float: "a number", str: "a string", list: "a list",
            type(None): "null"}.get(type(value), type(value).__name__)


def _short(value: Any, limit: int = 60) -> str:
    """``value``'s repr, cut to ``limit`` characters (a crafted file's values can be long)."""
    text = repr(value) if not isinstance(value, float) or math.isfinite(value) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
