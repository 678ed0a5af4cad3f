"""Reading a CSV into columns: pandas' C reader on the fast path, an exact reader for the rest.

The fast path vouches for a file only when a byte scan proves the C reader sees it as written:
UTF-8 without NUL bytes, no quoted field running on past its line, every line one row with the
header's number of delimiters (none inside quotes) and no blank lines between rows, so that row ``i``
is line ``first_line + i``. Numbers
then come out of the C reader as float64 or int64, timestamps in ISO 8601 or integer steps as
datetime64 or int64 (``times.typed_times``), and any other text as object arrays whose equal values
share one string, read in chunks so that a load holds little more than the typed columns. Whatever
the scan cannot vouch for (quoted line breaks or delimiters, blank lines, ragged rows, other
encodings) goes through ``parse_table``, which reads row by row and names the line of every problem.
Either way the columns are what the rest of ``seqcast.data`` works from; a column that must be seen
as text after all (a decimal comma, a value that is not a number) is read again as text, so that its
errors quote the file.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import stat
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import InputError
from .cells import MISSING, is_text, values_as_text
from .limits import MAX_COLUMNS, LineLimits
from .parquet import MAGIC, dataset_files, parquet_bytes, parquet_columns, pyarrow_for
from .source import decode, display_name, memory_limit, read_bytes
from .times import typed_times


def delimiter_of(header: str) -> str:
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def parse_table(name: str, text: str) -> tuple[list[str], dict[str, np.ndarray], np.ndarray, str]:
    """Split CSV text into header, string columns and the source line of each row.

    Returns ``(header, columns, lines, delimiter)``. Every row must have as many fields as the header.
    """
    stripped = text.lstrip("\r\n")
    if not stripped.strip():
        raise InputError(f"{name}: no data rows (the input is empty)")
    skipped = text[: len(text) - len(stripped)].count("\n")
    delimiter = delimiter_of(stripped.splitlines()[0])
    reader = csv.reader(io.StringIO(stripped, newline=""), delimiter=delimiter)
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        header = [h.strip() for h in next(reader)]
        width = len(header)
        start = reader.line_num + 1  # a quoted field may span lines: name the line where the row starts
        for row in reader:
            line, start = start + skipped, reader.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != width:
                spans = f" (a quoted field runs on to line {reader.line_num + skipped}; is a quote unclosed?)" \
                    if reader.line_num + skipped > line else ""
                raise InputError(f"{name}: line {line}: expected {width} fields, saw {len(row)}{spans}")
            rows.append(row)
            lines.append(line)
    except csv.Error as exc:
        raise InputError(f"{name}: line {reader.line_num + skipped}: {exc}") from None
    for i, column in enumerate(header):
        if not column:
            raise InputError(f"{name}: line {1 + skipped}: column {i + 1} has no name; every column needs a header")
        if column in header[:i]:
            raise InputError(f"{name}: line {1 + skipped}: column name {column!r} appears twice")
    if not rows:
        raise InputError(f"{name}: no data rows (only a header: {', '.join(header)})")
    table = np.array(rows, dtype=object).reshape(len(rows), width)
    columns = {column: table[:, i] for i, column in enumerate(header)}
    return header, columns, np.asarray(lines), delimiter


CHUNK_ROWS = 1 << 16  # rows per chunk of the C reader: a chunk's strings are the most text held at once
_BLOCK = 1 << 22  # bytes per block of the scan
# The missing-value markers as the C reader must be told them: it matches case-sensitively.
NA_TOKENS = sorted({form for m in MISSING for form in (m, m.upper(), m.title(), m.capitalize())})


@dataclass
class Table:
    """A CSV's columns (object text, float64/int64 numbers, datetime64 timestamps or int64 steps) and
    the source line of every row."""

    name: str
    header: list[str]
    columns: dict[str, np.ndarray | pd.Index]
    lines: np.ndarray
    delimiter: str
    _source: str | bytes | None = field(default=None, repr=False)  # to read columns again as text
    partial: bool = False  # only the file's last rows were read (read_table's ``last``)
    typed: bool = False  # from a typed source (Parquet): no text behind the typed columns, no decimal separator
    codes: dict = field(default_factory=dict)  # column -> (each row's code, distinct values by first appearance)

    def text(self, column: str) -> np.ndarray:
        """The column exactly as written (object strings), read again from the file if it was typed."""
        self.as_text([column])
        return self.columns[column]

    def as_text(self, columns) -> None:
        """Read ``columns`` again as text, all in one pass over the file."""
        typed = [c for c in columns if not is_text(self.columns[c])]
        if typed:
            self.columns.update(self._read_text(typed))

    def head_text(self, column: str, rows: int = CHUNK_ROWS) -> np.ndarray:
        """The first ``rows`` values of a column exactly as written (object strings), without reading the
        whole column again: a typed column's first block, where a proof of its decimal point usually is."""
        values = self.columns[column]
        if is_text(values) or self.typed:
            return values[:rows] if is_text(values) else values_as_text(values[:rows])
        with _chunks(self._source, self.delimiter, {column: str}, {}, usecols=[column]) as reader:
            first = next(iter(reader), None)
        return np.empty(0, dtype=object) if first is None else first[column].to_numpy(dtype=object)[:rows]

    def _read_text(self, columns: list[str]) -> dict[str, np.ndarray]:
        if self.typed:
            return {c: values_as_text(self.columns[c]) for c in columns}
        text: dict[str, list] = {c: [] for c in columns}
        shared: dict[str, str] = {}
        for chunk in _chunks(self._source, self.delimiter, {c: str for c in columns}, {}, usecols=columns):
            for c in columns:
                text[c].append(_shared_strings(chunk[c], shared))
        return {c: np.concatenate(parts) if parts else np.empty(0, dtype=object) for c, parts in text.items()}


def read_table(path: str, keep_as_text, read_as_times, last: int | None = None,
               max_columns: int = MAX_COLUMNS) -> Table:
    """The table in ``path`` (``-`` for stdin). ``keep_as_text(header)`` names the columns that must
    stay text (series ids), ``read_as_times(header)`` those to read as timestamps when they are ISO
    8601 or integer steps (None: read none so, as with --date-format); ``columns.reader_hints`` gives both.

    With ``last``, a plain file of many more rows is read from its last ``last`` rows only (seeking
    from the end; ``Table.partial`` says so, and lines are still the file's); others are read whole.

    A header of more than ``max_columns`` columns, a line of more fields or a field longer than the
    readers' limit is refused by the byte scan, before any line is held whole (``limits.py``).
    """
    files = dataset_files(path) if path != "-" else None
    if files:  # a Parquet file, or a folder of them
        return _parquet(display_name(path), files, keep_as_text, read_as_times)
    if path == "-" or not _regular(path):  # stdin, a pipe (bash's <(...)): read once, from memory
        name, data = read_bytes(path, max_columns)
        return table_from_bytes(name, data, keep_as_text, read_as_times, max_columns)
    try:
        with open(path, "rb") as handle:
            scan = _scan(handle, LineLimits(display_name(path), max_columns))
            rows = scan.newlines - scan.skipped if scan is not None else 0
            if scan is not None and last and rows > 2 * last:
                data = scan.header_line.encode("utf-8") + b"\n" + _last_lines(handle, last)
                table = table_from_bytes(display_name(path), data, keep_as_text, read_as_times, max_columns)
                table.lines = table.lines.astype(np.int64) + scan.skipped + rows - last
                table.partial = True
                return table
    except OSError:
        scan = None  # read_bytes below names what is wrong with the path
    table = _fast(display_name(path), path, scan, keep_as_text, read_as_times) if scan is not None else None
    return table or _exact(*read_bytes(path, max_columns))


def _regular(path: str) -> bool:
    """A regular file (which can be read twice and seeked in); False for pipes, devices and errors."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return True  # read_bytes names what is wrong with the path


def _last_lines(handle, n: int) -> bytes:
    """The last ``n`` lines of the file, without its trailing blank lines."""
    end = handle.seek(0, io.SEEK_END)
    tail = b""
    while end > 0:
        start = max(0, end - _BLOCK)
        handle.seek(start)
        tail = handle.read(end - start) + tail
        end = start
        body = tail.rstrip(b"\r\n ")
        if body.count(b"\n") >= n:
            break
    body = tail.rstrip(b"\r\n ")
    cut = len(body)
    for _ in range(n):
        cut = body.rindex(b"\n", 0, cut)
    return body[cut + 1 :] + b"\n"


def table_from_bytes(name: str, data: bytes, keep_as_text, read_as_times, max_columns: int = MAX_COLUMNS) -> Table:
    if data.startswith(MAGIC):  # Parquet from stdin or a pipe
        return _parquet(name, [pyarrow_for(name).BufferReader(data)], keep_as_text, read_as_times)
    scan = _scan(io.BytesIO(data), LineLimits(name, max_columns))
    table = _fast(name, data, scan, keep_as_text, read_as_times) if scan is not None else None
    return table or _exact(name, data)


def line_numbers(rows: int, first: int) -> np.ndarray:
    """The line of each of ``rows`` rows, the first on line ``first``: 32-bit where they fit (a panel of
    60 million rows holds 240 MB of them, not 480)."""
    kind = np.int32 if rows + first < np.iinfo(np.int32).max else np.int64
    return np.arange(first, rows + first, dtype=kind)


def _parquet(name: str, sources: list, keep_as_text, read_as_times) -> Table:
    """Parquet as typed columns (``parquet.py``); rows numbered as the same table saved as CSV numbers
    its lines (the header is line 1)."""
    header, columns, rows, codes = parquet_columns(name, sources, keep_as_text, read_as_times, memory_limit())
    return Table(name, header, columns, line_numbers(rows, 2), ",", typed=True, codes=codes)


def _exact(name: str, data: bytes) -> Table:
    header, columns, lines, delimiter = parse_table(name, decode(name, data))
    return Table(name, header, columns, lines, delimiter)


@dataclass
class _Scan:
    header_line: str
    skipped: int  # blank lines before the header
    newlines: int  # newlines before the trailing blank lines
    delimiters: dict[str, int]  # each candidate delimiter's count before the trailing blank lines


def _scan(handle, limits: LineLimits) -> _Scan | None:
    """One pass over the bytes, each block through ``limits`` (which raises): None unless the file is
    UTF-8 (a BOM allowed) without NUL bytes or quoted fields that span lines, with a header line, in
    which case the counts that prove each line one row. (What returns None is read by ``read_bytes``,
    held to the same limits.)"""
    decoder = codecs.getincrementaldecoder("utf-8")()
    counts = {d: 0 for d in (",", ";", "\t", "|")}
    newlines, first, tail, quotes = 0, b"", b"", 0
    while True:
        block = handle.read(_BLOCK)
        if not block:
            break
        if not first:
            first = block
        if b"\x00" in block:
            return None
        if b'"' in block:  # quoted fields: fine while none runs on past its line (every line holds pairs)
            quotes = _paired_quotes(block, quotes)
            if quotes is None:
                return None
        limits.feed(block)
        try:
            decoder.decode(block)
        except UnicodeDecodeError:
            return None
        newlines += block.count(b"\n")
        for d in counts:
            counts[d] += block.count(d.encode())
        tail = (tail + block)[-4096:]
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return None
    if first.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None
    # Trailing blank lines (and spaces) are not rows: take their newlines off the count.
    trailing = tail[len(tail.rstrip(b"\r\n ")):]
    if len(trailing) == len(tail):
        return None  # blank for its last 4 KiB: not worth proving
    newlines -= trailing.count(b"\n")
    start = first[3:] if first.startswith(codecs.BOM_UTF8) else first
    body = start.lstrip(b"\r\n")
    skipped = start[: len(start) - len(body)].count(b"\n")
    end = body.find(b"\n")
    if end < 0 and len(first) == _BLOCK:
        return None  # a header longer than a block
    header_line = body[: end if end >= 0 else len(body)].decode("utf-8", errors="replace").rstrip("\r")
    if not header_line.strip():
        return None
    return _Scan(header_line, skipped, newlines, counts)


def _paired_quotes(block: bytes, carried: int) -> int | None:
    """The parity of the quote characters before this block's end (``carried``: before its start), or
    None when a line of it ends with a quote open (a quoted field that runs on to the next line, which
    the fast path's one-line-one-row count cannot follow) or a quoted field holds a delimiter (which
    the delimiter count, the proof that every row has the header's fields, would count)."""
    data = np.frombuffer(block, dtype=np.uint8)
    parity = (np.cumsum(data == ord('"'), dtype=np.uint8) + carried) & 1  # wraps at 256: parity survives
    inside = data[parity.astype(bool)]
    if parity[data == ord("\n")].any() or np.isin(inside, np.frombuffer(b",;\t|", dtype=np.uint8)).any():
        return None  # a quoted line break, or a quoted delimiter, which the delimiter count would miscount
    return int(parity[-1])


def _fast(name: str, source: str | bytes, scan: _Scan, keep_as_text, read_as_times) -> Table | None:
    """The table through the C reader, or None when the file is not what the scan needs it to be."""
    delimiter = delimiter_of(scan.header_line)
    try:
        raw_header = next(csv.reader([scan.header_line], delimiter=delimiter))  # "unique_id","ds": unquoted
    except csv.Error:  # a carriage return inside it: the exact reader says what it makes of that
        return None
    header = [h.strip() for h in raw_header]
    if any(not h for h in header) or len(set(header)) < len(header) or len(header) < 1:
        return None  # the exact reader names the column
    if raw_header != header:
        return None  # names with spaces around them: the exact reader strips them alike
    text = set(keep_as_text(header)) & set(header)
    times = set(read_as_times(header) or ()) & set(header) - text
    dtypes = {c: str for c in text | times}
    na = {c: NA_TOKENS for c in header if c not in text | times}
    parts: dict[str, list] = {c: [] for c in header}
    kinds: dict[str, set] = {c: set() for c in header}
    shared: dict[str, str] = {}
    rows = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # rows that do not fit the header
            for chunk in _chunks(source, delimiter, dtypes, na):
                if list(chunk.columns) != header:
                    return None
                rows += len(chunk)
                for c in header:
                    kind, values = _compact(chunk[c], c in times, c in text, shared)
                    kinds[c].add(kind)
                    parts[c].append(values)
    except (pd.errors.ParserError, pd.errors.ParserWarning, pd.errors.EmptyDataError, UnicodeDecodeError,
            ValueError):
        return None
    width = len(header)
    if rows == 0 or scan.newlines != scan.skipped + rows or scan.delimiters[delimiter] != (rows + 1) * (width - 1):
        return None  # a blank line, a ragged row: the exact reader says which line
    columns: dict[str, np.ndarray | pd.Index] = {}
    again = []
    for c in header:
        kind = kinds[c]
        if kind <= {"float", "int"}:
            columns[c] = np.concatenate(parts[c]) if len(parts[c]) > 1 else parts[c][0]
        elif len(kind) == 1 and kind <= {"text", "steps"}:
            columns[c] = np.concatenate(parts[c]) if len(parts[c]) > 1 else parts[c][0]
        elif len(kind) == 1 and kind <= {"naive", "utc"}:
            columns[c] = parts[c][0].append(parts[c][1:]) if len(parts[c]) > 1 else parts[c][0]
        else:
            again.append(c)  # not one kind throughout: read it as text
    table = Table(name, header, columns, line_numbers(rows, scan.skipped + 2), delimiter, source)
    for c in again:
        columns[c] = None
    if again:
        columns.update(table._read_text(again))
    longest = max((len(v) for c in header if is_text(columns[c]) for v in set(columns[c])), default=0)
    return table if longest <= csv.field_size_limit() else None  # the exact reader refuses such a field


def _chunks(source, delimiter: str, dtypes: dict, na: dict, usecols=None):
    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    return pd.read_csv(handle, sep=delimiter, dtype=dtypes, keep_default_na=False, na_values=na,
                       na_filter=bool(na), index_col=False, encoding="utf-8-sig", engine="c", usecols=usecols,
                       chunksize=CHUNK_ROWS, skip_blank_lines=True, float_precision="round_trip")  # exact as pandas 3


def _shared_strings(values: pd.Series, shared: dict[str, str]) -> np.ndarray:
    """The strings as an object array in which equal values are one object (a key repeated on a
    million rows costs a million pointers, not a million strings)."""
    codes, uniques = pd.factorize(values.to_numpy(dtype=object))
    canonical = np.array([shared.setdefault(u, u) for u in uniques], dtype=object)
    return canonical[codes] if len(codes) else np.empty(0, dtype=object)


def _compact(values: pd.Series, as_time: bool, as_text: bool, shared: dict[str, str]) -> tuple[str, object]:
    """One chunk of one column in its smallest faithful form, and what kind that is."""
    if not as_text and not as_time:
        kind = values.dtype.kind
        if kind == "f":
            return "float", values.to_numpy(dtype=np.float64)
        if kind in "iu":
            return "int", values.to_numpy(dtype=np.float64) if kind == "u" else values.to_numpy()
        return "other", None
    if as_time and len(values):
        timed = typed_times(values)
        if timed is not None:
            return timed
    return "text", _shared_strings(values, shared)




def write_csv(frame: pd.DataFrame) -> bytes:
    """A forecast or table as UTF-8 CSV bytes; floats keep full precision (lossless round-trip)."""
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def table_bytes(frame: pd.DataFrame, output: str) -> bytes:
    """A forecast table as the bytes of ``output``: Parquet where its name ends in ``.parquet``, else
    CSV (``write_csv``; stdout, ``-``, is CSV)."""
    if str(output).lower().endswith(".parquet"):
        return parquet_bytes(frame, str(output))
    return write_csv(frame)
