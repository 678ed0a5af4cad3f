"""Limits a CSV is held to while its bytes stream past, before any line of it is held whole.

``LineLimits`` is fed the file block by block (by the byte scan of a plain file, and by every
bounded read of a pipe or stdin) and refuses, naming the file and line, a header of more columns
than seqcast reads, a line of more fields than that, and a field longer than the readers' field
limit. It keeps a few counters between blocks, so a file of one 1 GB line costs one block of memory.

Lines are found without looking at every byte: a line longer than ``2 * _WINDOW`` bytes covers an
aligned window of ``_WINDOW`` bytes without a newline, so only such windows, the first line (the
header) and the lines cut by a block's ends are counted exactly; a shorter line holds fewer fields
and a shorter field than any limit here. A long row of another width than the header is the error
the readers would give once they reached it, so it is given at once (in a file whose every line is
one row: no quotes, no UTF-16); a short one is left to the readers.
"""

from __future__ import annotations

import csv

import numpy as np

from ..errors import InputError

FIELD_LIMIT = csv.field_size_limit()  # characters in one field: the exact reader's limit (128 Ki)
# A run of bytes with no separator in it is inside one field. Past this many bytes the field is over
# FIELD_LIMIT characters whatever its encoding (4 bytes a character at most) and quoting.
_FIELD_BYTES = 4 * FIELD_LIMIT + 2
MAX_COLUMNS = 10_000  # columns of a file with a row per time: targets and covariates, never this many
MAX_WIDE_COLUMNS = 100_000  # with --wide, a column per time: 270 years of daily columns
_WINDOW = 4096  # lines up to twice this are never counted exactly (fewer fields than any limit above)
_CANDIDATES = b",;\t|"  # the delimiters seqcast recognises (table.delimiter_of), as bytes
_SEPARATORS = np.zeros(256, dtype=bool)
_SEPARATORS[list(_CANDIDATES + b"\r\n")] = True

assert 2 * _WINDOW < min(MAX_COLUMNS, _FIELD_BYTES)


def columns_allowed(wide: bool) -> int:
    return MAX_WIDE_COLUMNS if wide else MAX_COLUMNS


class LineLimits:
    """Feed a file's bytes in order with ``feed``; it raises ``InputError`` at the first block past a limit."""

    def __init__(self, name: str, max_columns: int = MAX_COLUMNS):
        self.name, self.max_columns = name, max_columns
        self.line = 1  # the line the next block starts on
        self.fields = 0  # delimiters on the current line so far
        self.run = 0  # bytes since the current line's last separator
        self.length = 0  # bytes of the current line counted so far
        self.delimiter: int | None = None  # decided at the end of the header (the first line with text)
        self.width = 0  # the header's fields
        self.header = {d: 0 for d in _CANDIDATES}  # each candidate's count on the header so far
        self.text = False  # the current line has more than blanks
        # No quote, no NUL (UTF-16) and no carriage return but before a newline so far: each line is one row
        # as the readers split it, so a counted row of another width than the header is the reader's error.
        self.literal = True

    def feed(self, block: bytes) -> None:
        if self.literal and (b'"' in block or b"\x00" in block
                             or (b"\r" in block and block.count(b"\r") != block.count(b"\r\n"))):
            self.literal = False
        first, last = block.find(b"\n"), block.rfind(b"\n")
        if first < 0:
            self._count(block, 0, len(block), self.line)
            return
        self._count(block, 0, first, self.line)
        self._line_ends(self.line)
        line = self.line + 1
        start = first + 1
        if self.delimiter is None:  # blank lines before the header, then the header: count each exactly
            while start <= last and self.delimiter is None:
                end = block.index(b"\n", start)
                self._count(block, start, end, line)
                self._line_ends(line)
                start, line = end + 1, line + 1
        seen = start
        for window in range(-(-start // _WINDOW) * _WINDOW, last - _WINDOW + 1, _WINDOW):
            if window < seen or block.find(b"\n", window, window + _WINDOW) >= 0:
                continue
            begin = block.rfind(b"\n", 0, window) + 1
            end = block.index(b"\n", window + _WINDOW)
            at = line + block.count(b"\n", start, begin)
            self._count(block, begin, end, at)
            self._line_ends(at)
            seen = end
        self.line += block.count(b"\n")
        self._count(block, last + 1, len(block), self.line)

    def _line_ends(self, line: int) -> None:
        if self.delimiter is None and self.text:
            counts = self.header
            self.delimiter = max(counts, key=counts.get) if max(counts.values()) else ord(",")
            self.width = max(counts.values()) + 1
        elif self.delimiter is not None and self.text and self.literal and self.fields + 1 != self.width \
                and self.length > 2 * _WINDOW:  # every such line is counted: a long row's error comes at once
            raise InputError(f"{self.name}: line {line}: expected {self.width} fields, saw {self.fields + 1}")
        self.fields = self.run = self.length = 0
        self.text = False

    def _count(self, block: bytes, start: int, end: int, line: int) -> None:
        """One stretch of a single line, ``block[start:end]``, counted exactly onto the current line's state."""
        if start >= end:
            return
        data = np.frombuffer(block, dtype=np.uint8, count=end - start, offset=start)
        self.length += end - start
        separators = np.flatnonzero(_SEPARATORS[data])
        if separators.size:
            longest = max(int(separators[0]) + self.run, int(np.diff(separators).max(initial=1)) - 1)
            self.run = end - start - int(separators[-1]) - 1
        else:
            longest, self.run = 0, self.run + end - start
        if max(longest, self.run) > _FIELD_BYTES:
            raise InputError(f"{self.name}: line {line}: a field longer than {FIELD_LIMIT:,} characters, the most "
                             "seqcast reads in one field; is a quote left open, or is this file not a table of series?")
        self.text = self.text or bool((data > 32).any())
        if self.delimiter is None:
            for d in self.header:
                self.header[d] += int(np.count_nonzero(data == d))
            fields = max(self.header.values()) + 1
        else:
            self.fields += int(np.count_nonzero(data == self.delimiter))
            fields = self.fields + 1
        if fields > self.max_columns:
            raise InputError(self._too_many(line))

    def _too_many(self, line: int) -> str:
        what = "the header has" if self.delimiter is None else "a row has"
        most = ("the most seqcast reads with --wide (a column per time)" if self.max_columns == MAX_WIDE_COLUMNS
                else f"the most seqcast reads in a file with a row per time ({MAX_WIDE_COLUMNS:,} with --wide, "
                     "a column per time)")
        return (f"{self.name}: line {line}: {what} more than {self.max_columns:,} fields, {most}; keep only the "
                "columns the forecast needs")
