"""Opening a model file, checkpoint or exported ONNX, for a read bounded by what the file is.

Both loaders follow one discipline (docs/guarantees.md, "Every model file meets one standard of
trust"): the file is opened and sized before a byte is parsed, nothing is read past what its size (or,
for a checkpoint, its own header) says it holds, and what it says is checked before it is trusted.
``open_model_file`` is the one place a model file is opened; ``read_whole`` reads a regular file's
bytes, exactly as many as ``stat`` gave, and notices a file that grows or shrinks while it is read.
``parse_json`` is the one JSON parse of a model file's text: nesting deeper than ``MAX_DEPTH`` (seqcast
writes about 8 levels) is a damaged file (``ValueError``), as malformed JSON is, so that no later step
(the digest's canonical JSON, the decoder, a message quoting a value) can exhaust Python's recursion.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

from .errors import CheckpointError

MAX_DEPTH = 64


def open_model_file(path: str | Path, name: str, what: str, streams: bool,
                    limit: int | None = None, advice: str = "") -> tuple[BinaryIO, int | None]:
    """``path`` opened for reading, with its size when it is a regular file (None for a pipe, which only
    a format that says its own length may read: ``streams``). Refused with ``CheckpointError`` naming
    the file: a missing file, a folder, a pipe or device where ``streams`` is False, a regular file of
    more than ``limit`` bytes (``advice`` says how to proceed)."""
    try:  # without streams, opened without waiting: a pipe with no writer would block open() for ever
        stream = open(path, "rb") if streams else os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb")
    except FileNotFoundError:
        raise CheckpointError(f"{name}: no such {what}") from None
    except OSError as exc:
        raise CheckpointError(f"{name}: cannot read ({exc.strerror})") from None
    info = os.fstat(stream.fileno())
    regular = stat.S_ISREG(info.st_mode)
    problem = None
    if stat.S_ISDIR(info.st_mode):
        problem = "cannot read (Is a directory)"
    elif not regular and not streams:
        kind = "a pipe" if stat.S_ISFIFO(info.st_mode) else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(
            info.st_mode) else "not a regular file"
        problem = f"{'is ' if kind.startswith('a ') else ''}{kind}; an {what} is read from a regular file only " \
                  "(its size is checked before it is read): copy it to a file first"
    elif regular and limit is not None and info.st_size > limit:
        problem = (f"{info.st_size:,} bytes, more than the {limit:,} an {what} can hold; it is not one seqcast "
                   f"wrote{'; ' + advice if advice else ''}")
    if problem:
        stream.close()
        raise CheckpointError(f"{name}: {problem}")
    return stream, info.st_size if regular else None


def read_whole(stream: BinaryIO, size: int, name: str, what: str) -> bytes:
    """Exactly ``size`` bytes of the regular file ``stream`` (its size when opened): a file that grows
    or shrinks while it is read is refused, never read on until memory runs out."""
    try:
        data = stream.read(size)
        grew = stream.read(1)
    except OSError as exc:
        raise CheckpointError(f"{name}: cannot read ({exc.strerror})") from None
    if len(data) != size or grew:
        raise CheckpointError(f"{name}: the {what} changed while it was read ({size:,} bytes when opened); "
                              "read it again once nothing writes to it")
    return data


def read_arriving(stream: BinaryIO, length: int, chunk: int = 1 << 24) -> bytes:
    """At most ``length`` bytes of ``stream`` (a pipe), read ``chunk`` bytes at a time until it ends: the
    memory taken follows the bytes that arrive, not the length a header claims (``read(length)`` would
    reserve all of it at once, and a crafted header can claim a terabyte)."""
    if length <= chunk:
        return stream.read(length)
    parts = bytearray()
    while len(parts) < length:
        part = stream.read(min(chunk, length - len(parts)))
        if not part:
            break
        parts += part
    return bytes(parts)


def parse_json(text: str | bytes) -> Any:
    """``json.loads``, with nesting deeper than ``MAX_DEPTH`` (or too deep to parse at all) reported as
    ``ValueError`` (a damaged file), as ``json.JSONDecodeError`` (a ``ValueError`` too) reports malformed text."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    level, depth = [value], 0
    while level:  # breadth first, without recursion
        depth += 1
        if depth > MAX_DEPTH:
            raise ValueError(f"JSON nested more than {MAX_DEPTH} levels deep")
        level = [child for node in level if isinstance(node, (dict, list))
                 for child in (node.values() if isinstance(node, dict) else node) if isinstance(child, (dict, list))]
    return value
