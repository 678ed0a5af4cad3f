"""Parquet in and out: a file, a folder of files (a dataset) or Parquet bytes from stdin, read as typed
columns one record batch at a time; and forecasts written as Parquet.

Columns come out as ``table.py``'s fast reader gives them, without passing through text: numbers as
float64 or int64 (NaN for a null; an integer column with nulls as float64), timestamps and dates as a
DatetimeIndex (naive, or UTC where the column has a time zone), text as object arrays in which equal
values are one string (a series id repeated on a million rows costs a million pointers, read through
Arrow's dictionary encoding: each distinct value is converted once per batch). A text column that may
be the time column is typed as the CSV reader types it (ISO 8601 or integer steps). Rows are numbered
as the same table saved as CSV would number its lines (the header is line 1); a dataset's rows are
numbered across its files in path order. Errors name the file and the column.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, UsageError
from .cells import values_as_text
from .times import typed_times

MAGIC = b"PAR1"
BATCH_ROWS = 1 << 20  # rows converted at a time: a batch's Arrow buffers are the most held twice


def pyarrow_for(name: str):
    try:
        import pyarrow as pa
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise InputError(f"{name}: is Parquet; install seqcast[files] (pyarrow) to read it, or save it as CSV") \
            from None
    return pa


def dataset_files(path: str) -> list[str] | None:
    """The Parquet files to read for ``path``: itself when it is a Parquet file, the files of a folder
    that holds Parquet files (in path order, hidden and ``_``-prefixed ones left out, as Spark and Arrow
    write them beside the data), or None when ``path`` is neither (a CSV, a pipe, a missing path)."""
    try:
        if os.path.isdir(path):
            root = Path(path)
            files = sorted(str(p) for p in root.rglob("*") if p.is_file() and not any(
                part.startswith((".", "_")) for part in p.relative_to(root).parts))
            return files if files and any(_starts_parquet(f) for f in files) else None
        return [path] if os.path.isfile(path) and _starts_parquet(path) else None
    except OSError:
        return None


def _starts_parquet(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == MAGIC
    except OSError:
        return False


def parquet_columns(name: str, sources: list, keep_as_text, read_as_times, limit: int):
    """The header, typed columns, row count and codes of the table in ``sources`` (paths of Parquet
    files, or one ``pyarrow.BufferReader``): ``table.read_table`` makes them a ``Table``. The codes are
    those of the text columns ``keep_as_text`` names: each row's code and the distinct values in order
    of first appearance (``Table.codes``).

    ``keep_as_text(header)`` names the columns read as text whatever their type (series ids),
    ``read_as_times(header)`` the text columns that may be timestamps (``columns.reader_hints``). Every
    file must have the first file's columns; a dataset whose row groups would unpack to more than
    ``limit`` bytes (its metadata says) is refused before it is read."""
    pa = pyarrow_for(name)
    import pyarrow.parquet as pq

    files, header, size = [], None, 0
    try:
        for source in sources:
            label = source if isinstance(source, str) else name
            parquet = pq.ParquetFile(source)
            names = parquet.schema_arrow.names
            if header is None:
                header = names
            elif names != header:
                raise InputError(f"{label}: its columns ({', '.join(names)}) are not those of {files[0][0]} "
                                 f"({', '.join(header)}); every file of a dataset needs the same columns")
            meta = parquet.metadata
            size += sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
            files.append((label, parquet))
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{label}: cannot read it as a Parquet file ({exc})") from None
    if size > limit:
        raise InputError(f"{name}: more than {limit / 2**30:.1f} GiB of data unpacked (a quarter of this machine's "
                         "memory); split the dataset, or run on a larger machine")
    _check_names(name, header)
    text = set(keep_as_text(header)) & set(header)
    times = set(read_as_times(header) or ()) & set(header) - text
    rows = sum(parquet.metadata.num_rows for _, parquet in files)
    if rows == 0:
        raise InputError(f"{name}: no data rows (only the columns: {', '.join(header)})")
    columns = {c: _Column(rows) for c in header}
    codes, index = {c: _Column(rows) for c in text}, {c: {} for c in text}
    shared: dict[str, str] = {}
    for label, parquet in files:
        try:
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
                for c, column in zip(header, batch.columns):
                    if c in text:
                        part, coded = _text(_encoded(label, c, column), shared, index[c])
                        codes[c].add(coded)
                    else:
                        part = _typed(label, c, column, False, shared)
                    columns[c].add(part)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{label}: cannot read it as a Parquet file ({exc})") from None
    return (header, {c: columns[c].joined(c in times) for c in header}, rows,
            {c: (codes[c].joined(False), list(index[c])) for c in text})


class _Column:
    """A column's batches written into one array of the dataset's rows as they arrive, so that a load
    holds the columns and one batch, never the columns twice; batches of unlike kinds (text in one file,
    numbers in another) are kept apart and joined by ``_joined``."""

    def __init__(self, rows: int):
        self.rows, self.filled, self.kind, self.array, self.parts = rows, 0, None, None, None

    def add(self, part) -> None:
        zone, values = part if isinstance(part, tuple) else (None, part)
        kind = (zone, values.dtype)
        if self.parts is None and self.kind in (None, kind):
            if self.array is None:
                self.kind, self.array = kind, np.empty(self.rows, dtype=values.dtype)
            self.array[self.filled : self.filled + len(values)] = values
            self.filled += len(values)
            return
        if self.parts is None:
            head, zone_before = self.array[: self.filled], self.kind[0]
            self.parts, self.array = [head if zone_before is None else (zone_before, head)], None
        self.parts.append(part)

    def joined(self, as_time: bool):
        if self.parts is not None:
            return _joined(self.parts, as_time)
        zone = self.kind[0]
        return _joined([self.array if zone is None else (zone, self.array)], as_time)


def _check_names(name: str, header: list[str]) -> None:
    for i, column in enumerate(header):
        if not column.strip():
            raise InputError(f"{name}: column {i + 1} has no name; every column needs one")
        if column in header[:i]:
            raise InputError(f"{name}: column name {column!r} appears twice")


def _typed(label: str, column: str, array, as_text: bool, shared: dict[str, str]):
    """One batch of one column: float64/int64 numbers, datetime64[ns] (with its time zone) or object text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    if pa.types.is_dictionary(kind) and not as_text:
        array, kind = array.dictionary_decode(), kind.value_type
    if pa.types.is_null(kind):  # a column with no value at all (pandas writes an all-None column so)
        return np.full(len(array), np.nan) if not as_text else np.full(len(array), "", dtype=object)
    if pa.types.is_boolean(kind) or not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or
                                         pa.types.is_decimal(kind) or pa.types.is_timestamp(kind) or
                                         pa.types.is_date(kind) or pa.types.is_string(kind) or
                                         pa.types.is_large_string(kind) or pa.types.is_dictionary(kind)):
        as_text = True  # true/false, times of day, ...: as text, as the same table saved as CSV holds them
    if as_text or pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_dictionary(kind):
        return _text(_encoded(label, column, array), shared)[0]
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        zone = getattr(kind, "tz", None)
        try:
            stamps = pc.cast(array, pa.timestamp("ns", zone))
        except pa.ArrowInvalid:
            raise InputError(f"{label}: column {column!r} holds timestamps outside 1677-2262, which seqcast cannot "
                             "hold") from None
        values = stamps.to_numpy(zero_copy_only=False)  # datetime64[ns], NaT for a null (in UTC when zoned)
        return ("utc" if zone else "naive", values)
    if pa.types.is_integer(kind):
        if array.null_count or pa.types.is_unsigned_integer(kind):
            return np.asarray(array.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        return array.cast(pa.int64()).to_numpy()
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return np.asarray(array.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    raise AssertionError(f"no reading for Parquet type {kind}")  # every other type was read as text above


def _as_string(label: str, column: str, array):
    import pyarrow as pa

    try:
        return array.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise InputError(f"{label}: column {column!r} is of Parquet type {array.type}, which seqcast does not read "
                         "(numbers, text, dates, timestamps, or what reads as text); leave it out of the file") \
            from None


def _encoded(label: str, column: str, array):
    """A batch of one column as dictionary-encoded text (as it is, where Parquet stored it so)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(array.type) and (pa.types.is_string(array.type.value_type)
                                               or pa.types.is_large_string(array.type.value_type)):
        return array
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    return pc.dictionary_encode(_as_string(label, column, array))


def _text(encoded, shared: dict[str, str], index: dict[str, int] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """A dictionary-encoded batch as an object array of shared strings (a null reads as an empty field),
    and with ``index`` (value -> code, grows) each row's code into the distinct values of the column in
    order of first appearance over every batch so far: what ``pandas.factorize`` gives the whole column,
    found from the batch's dictionary positions, not by hashing every row's string (int32; the series
    loader then skips hashing the rows)."""
    uniques = encoded.dictionary.to_pylist()
    names = np.array([shared.setdefault(str(u), str(u)) for u in uniques] + [""], dtype=object)
    positions = encoded.indices.fill_null(len(uniques)).to_numpy(zero_copy_only=False)
    if index is None:
        return names[positions], None
    local, seen = pd.factorize(positions)  # positions in order of first appearance
    return names[positions], np.array([index.setdefault(v, len(index)) for v in names[seen]], dtype=np.int32)[local]


def _joined(parts: list, as_time: bool):
    """A column's batches as one column; a column of unlike kinds (text in one file, numbers in another)
    is text throughout, as is a timestamp column with a null (the time reader names its row)."""
    stamps = [p for p in parts if isinstance(p, tuple)]
    if stamps and len(stamps) == len(parts) and len({p[0] for p in parts}) == 1:
        values = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
        if not np.isnat(values).any():
            index = pd.DatetimeIndex(values)
            return index.tz_localize("UTC") if parts[0][0] == "utc" else index
    kinds = {p.dtype.kind for p in parts if not isinstance(p, tuple)}
    if not stamps and len(kinds) > 1 and kinds <= set("if"):  # integers in one batch, floats (or nulls) in another
        parts = [p.astype(np.float64) for p in parts]
    elif stamps or len(kinds) > 1:
        parts = [p if isinstance(p, np.ndarray) and p.dtype == object else values_as_text(p[1] if isinstance(p, tuple)
                                                                                          else p) for p in parts]
    joined = np.concatenate(parts) if len(parts) > 1 else parts[0]
    if as_time and joined.dtype == object:  # ISO 8601 text or integer steps, typed as the CSV reader types them
        typed = typed_times(pd.Series(joined, dtype=object)) if len(joined) else None
        if typed is not None:
            return typed[1]
    return joined


def parquet_bytes(frame: pd.DataFrame, output: str) -> bytes:
    """A forecast table as Parquet bytes (zstd): the columns the CSV has, numbers and timestamps typed,
    converted a chunk of rows at a time (a million series' forecast is 24 million rows)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError(f"{output}: writing Parquet needs pyarrow: pip install 'seqcast[files]' (or write a .csv)") \
            from None
    sink, rows = pa.BufferOutputStream(), 1 << 20  # converted a million rows at a time: memory of a chunk
    schema = pa.Schema.from_pandas(frame.iloc[:1000], preserve_index=False)
    columns = [frame[name] for name in frame.columns]  # sliced column by column: a frame's row slice may
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:  # first copy all of it into one block
        for start in range(0, max(len(frame), 1), rows):
            writer.write_table(pa.Table.from_arrays(
                [pa.Array.from_pandas(c.iloc[start : start + rows], type=f.type) for c, f in zip(columns, schema)],
                schema=schema))
    return sink.getvalue().to_pybytes()
