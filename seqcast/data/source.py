"""Bytes from a path or stdin: bounded reads, compressed CSV, Parquet, and decoding to text.

Input is read in blocks up to a quarter of the machine's memory, so that an endless pipe or device
is refused rather than read until memory runs out; binary input is refused from its first block.
Compressed CSV (gzip, bzip2, xz, zstd) and Parquet tables are told by their first bytes, whatever
the file is called: compressed CSV comes back as the CSV bytes it holds, Parquet as its own bytes
(``parquet.py`` reads them as a table). Every error names the file (or ``<stdin>``) and what to do.
"""

from __future__ import annotations

import os
import stat
import sys

from ..errors import InputError
from .limits import MAX_COLUMNS, LineLimits


def display_name(path: str) -> str:
    """A path as text that can be printed and stored: bytes that are not UTF-8 (a file name from a
    system in another encoding) become backslash escapes such as ``\\xff``."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def memory_limit() -> int:
    """The most bytes of CSV seqcast reads: a quarter of this machine's memory (parsing takes a few
    times the file's size), so that an endless pipe or device is refused instead of read until it runs out."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 4
    except (ValueError, OSError, AttributeError):
        return 4 << 30


# What a file may be besides CSV text, by its first bytes: compressed CSV, or a Parquet table.
_COMPRESSED = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}
_PARQUET = b"PAR1"


def _read_bounded(name: str, stream, size: int | None, max_columns: int = MAX_COLUMNS) -> bytes:
    """All of ``stream`` (``size`` bytes when known), refusing input larger than ``memory_limit``
    and, from its first block, binary input (NUL bytes with no UTF-16 mark): ``/dev/zero``, say.
    Each block passes ``limits.LineLimits`` as it arrives: a field or line past the limits is refused
    at the block that shows it, not once the whole input is held.
    Compressed CSV (gzip, bzip2, xz, zstd: told by its first bytes, whatever the file is called) is
    decompressed, bounded alike; a Parquet file comes back as its bytes (``parquet.py`` reads it)."""
    limit = memory_limit()
    too_big = InputError(f"{name}: more than {limit / 2**30:.1f} GiB of input (a quarter of this machine's "
                         "memory, what seqcast reads a CSV into); split the file, or run on a larger machine")
    if size is not None and size > limit:
        raise too_big
    blocks, total, limits = [], 0, LineLimits(name, max_columns)
    while block := stream.read(1 << 20):
        if not blocks:
            kind = next((k for magic, k in _COMPRESSED.items() if block.startswith(magic)), None)
            if kind:
                return _decompressed(name, kind, _chained(block, stream), limit, too_big, limits)
            if block.startswith(_PARQUET):  # read as a table by parquet.py
                return _bounded(_chained(block, stream), limit, too_big)
        if not blocks and b"\x00" in block and not block.startswith((b"\xff\xfe", b"\xfe\xff")):
            decode(name, block[: block.index(b"\x00") + 1])  # raises for its first problem: a byte, or the NUL
        limits.feed(block)
        blocks.append(block)
        total += len(block)
        if total > limit:
            raise too_big
    return b"".join(blocks)


_PIECE = 1 << 22  # bytes inflated at a time


def _checked(data: bytes, limits: LineLimits) -> bytes:
    """Converted CSV bytes (zstd), held to the same limits as a plain file's."""
    for start in range(0, len(data), _PIECE):
        limits.feed(data[start : start + _PIECE])
    return data


def _chained(first: bytes, stream):
    """The blocks of a stream whose first block was already read."""
    yield first
    while block := stream.read(1 << 20):
        yield block


def _bounded(blocks, limit: int, too_big: InputError) -> bytes:
    out, total = bytearray(), 0
    for block in blocks:
        total += len(block)
        if total > limit:
            raise too_big
        out += block
    return bytes(out)


def _decompressed(name: str, kind: str, blocks, limit: int, too_big: InputError, limits: LineLimits) -> bytes:
    """The CSV inside compressed ``blocks``: never more than ``limit`` bytes inflated at any moment (each
    step asks the decompressor for at most what is left, so a small file that inflates past the limit is
    refused as a large one, not held in memory first); concatenated members (gzip, bzip2, xz) follow one
    another; a stream that stops before its end is an error (a copy cut short), never a shorter CSV. The
    CSV is inflated at most 4 MiB at a time, each piece through ``limits`` as it comes."""
    import bz2
    import lzma
    import zlib

    if kind == "zstd":
        return _checked(_zstd(name, blocks, limit, too_big), limits)
    fresh = {"gzip": lambda: zlib.decompressobj(wbits=31), "bzip2": bz2.BZ2Decompressor,
             "xz": lzma.LZMADecompressor}[kind]
    out, decompressor, ended = bytearray(), fresh(), False

    def inflated(piece: bytes) -> None:
        out.extend(piece)
        limits.feed(piece)
    try:
        for block in blocks:
            pending = block
            while pending:
                if ended:  # another member follows the one that ended (or zero padding after a gzip member)
                    if kind == "gzip" and not pending.strip(b"\x00"):
                        break
                    decompressor, ended = fresh(), False
                left = min(limit - len(out) + 1, _PIECE)
                if kind == "gzip":
                    inflated(decompressor.decompress(pending, left))
                    pending = decompressor.unconsumed_tail or (decompressor.unused_data if decompressor.eof else b"")
                else:
                    inflated(decompressor.decompress(pending, left))
                    pending = decompressor.unused_data if decompressor.eof else b""
                    while not decompressor.eof and not decompressor.needs_input and len(out) <= limit:
                        inflated(decompressor.decompress(b"", min(limit - len(out) + 1, _PIECE)))
                if len(out) > limit:
                    raise too_big
                ended = decompressor.eof
    except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as exc:
        raise InputError(f"{name}: {kind}-compressed data is damaged ({exc}); check the file") from None
    if not decompressor.eof:
        raise InputError(f"{name}: {kind}-compressed data ends before its end (the file is cut short); "
                         "copy it again")
    return _plain_text(name, bytes(out))


def _zstd(name: str, blocks, limit: int, too_big: InputError) -> bytes:
    try:
        import zstandard
    except ImportError:
        raise InputError(f"{name}: is zstd-compressed; install seqcast[files] (zstandard) to read it, or "
                         "decompress it first (zstd -d)") from None
    import io

    compressed = _bounded(blocks, limit, too_big)
    out = bytearray()
    try:
        with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(compressed), read_across_frames=True) as reader:
            while chunk := reader.read(1 << 20):
                out += chunk
                if len(out) > limit:
                    raise too_big
    except zstandard.ZstdError as exc:
        raise InputError(f"{name}: zstd-compressed data is damaged or cut short ({exc}); check the file") from None
    return _plain_text(name, bytes(out))


def _plain_text(name: str, data: bytes) -> bytes:
    if b"\x00" in data[: 1 << 20] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        decode(name, data[: data.index(b"\x00") + 1])
    return data


def read_bytes(path: str, max_columns: int = MAX_COLUMNS) -> tuple[str, bytes]:
    """The raw bytes of ``path``, or of stdin for ``-``, with the name errors should use; a line of more
    than ``max_columns`` fields, or a field over the readers' limit, is refused as it is read."""
    if path == "-":
        if sys.stdin is None or sys.stdin.closed:
            raise InputError("reading data from stdin ('-'), but stdin is closed; pipe a CSV in, e.g. "
                             "`cat data.csv | seqcast ... -`, or give the file's path")
        if sys.stdin.isatty():
            raise InputError("reading data from stdin ('-'), but stdin is a terminal; pipe a CSV in, e.g. "
                             "`cat data.csv | seqcast ... -`")
        return "<stdin>", _read_bounded("<stdin>", sys.stdin.buffer, None, max_columns)
    name = display_name(path)
    try:
        with open(path, "rb") as stream:
            info = os.fstat(stream.fileno())
            if stat.S_ISDIR(info.st_mode):
                raise IsADirectoryError
            size = info.st_size if stat.S_ISREG(info.st_mode) else None
            return name, _read_bounded(name, stream, size, max_columns)
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a folder, not a CSV file") from None
    except PermissionError:
        raise InputError(f"{name}: permission denied") from None


def decode(name: str, data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise InputError(f"{name}: looks like UTF-16 but cannot be decoded; save it as UTF-8") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{name}: line {line}: byte 0x{data[exc.start]:02x} is not UTF-8; save the file as UTF-8"
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise InputError(f"{name}: line {line}: contains a NUL byte; this is not a text CSV file")
    return text

