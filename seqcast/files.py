"""Writing files safely: atomic replacement and a per-output lock that a killed run never leaves stuck."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
import time
from pathlib import Path
from typing import Iterator

from .errors import InputError, LockedError


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and move it into place.

    A reader sees the old file or the new one, never half of either; a run killed mid-write leaves
    at most a hidden temporary file, never a truncated ``path``.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"{path}: folder {folder} does not exist; create it or choose another --output")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def lock_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def output_lock(path: str | Path, wait: bool = False) -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` for the duration of a run that writes it.

    The lock is an flock on a hidden file beside the output: the kernel releases it when the holder
    dies, so a SIGKILLed run never leaves it stuck. The file is removed on release; a waiter that
    locked a file removed meanwhile notices (inode changed) and locks the new one.
    """
    target = lock_path(path)
    while True:
        try:
            fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            raise InputError(f"{path}: folder {target.parent} does not exist") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise LockedError(
                    f"{path}: another seqcast run is writing it (lock {target}); "
                    "try again later or pass --wait"
                ) from None
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(target).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
        time.sleep(0.01)
    try:
        yield target
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
        os.close(fd)
