"""Writing files safely: atomic replacement, outputs that never destroy what they should not, and a
per-output lock that a killed run never leaves stuck.

What an output path may be, and what seqcast does with it:
  * a regular file, or a name that does not exist yet: replaced atomically (a temporary beside it,
    fsynced, renamed into place); an existing file keeps its mode, a new one gets the umask's;
  * a symbolic link: followed, and the file it points to is replaced atomically in its own folder,
    so the link keeps pointing at the fresh output;
  * a character device or a FIFO (``/dev/null``, ``/dev/stdout``, a named pipe): written to as a
    stream, never replaced;
  * a folder, a socket, or one of the command's own inputs: refused (exit 2) before any work.
Failures of the file system (a read-only folder, a full disk, no permission) are exit 2 naming the
user's path; the old file stays intact and no temporary is left.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import tempfile
import time
from pathlib import Path
from typing import Iterable, Iterator

from .errors import InputError, LockedError, UsageError

_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.tmp$")


def check_outputs(outputs: Iterable[str | Path | None], inputs: Iterable[str | Path | None],
                  updates: Iterable[str | Path | None] = ()) -> None:
    """Refuse, before any work, an output that is a folder or a socket, that would replace one of the
    command's inputs, or that is named twice. ``-`` (stdout / stdin) and None are skipped.

    ``updates`` are inputs the command reads whole before it replaces them atomically, so that an output
    may be one of them (through any link): a warm start that continues a checkpoint and writes it back
    (``fit --init-from m.ckpt --output m.ckpt``). Every other input is refused as an output."""
    seen: dict[str, str] = {}
    updated = {_identity(p) for p in updates if p not in (None, "-") and os.path.exists(p)}
    sources = {_identity(p): str(p) for p in inputs if p not in (None, "-") and os.path.exists(p)}
    for output in outputs:
        if output in (None, "-"):
            continue
        kind = _kind(output)
        if kind == "folder":
            raise UsageError(f"{output}: is a folder; give a file name for the output")
        if kind == "other":
            raise UsageError(f"{output}: is not a regular file, a device or a pipe; choose another output")
        key = _identity(output) if os.path.exists(output) else os.path.realpath(output)
        if key in sources and key not in updated:
            raise UsageError(f"{output}: is the input {sources[key]}; writing it would destroy the data read. "
                             "Choose another output")
        if key in seen:
            raise UsageError(f"{output}: named as two outputs ({seen[key]} and {output}); give each its own file")
        seen[key] = str(output)


def same_file(a: str | Path | None, b: str | Path | None) -> bool:
    """Whether ``a`` and ``b`` are one existing file (through links, hard links and relative paths)."""
    return a not in (None, "-") and b not in (None, "-") and os.path.exists(a) and os.path.exists(b) \
        and _identity(a) == _identity(b)


def _identity(path: str | Path) -> str:
    info = os.stat(path)
    return f"{info.st_dev}:{info.st_ino}"


def _kind(path: str | Path) -> str:
    """'new', 'file', 'stream' (character device, FIFO), 'folder' or 'other' (following links)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "new"
    except OSError:
        return "new"  # an unreadable path: the write says what is wrong
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return "stream"
    return "folder" if stat.S_ISDIR(mode) else "other"


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never half of either.

    A temporary file beside the target (the link's target for a symbolic link) is written, fsynced
    and renamed into place; a run killed mid-write leaves at most a hidden temporary, which the
    next write beside it removes. Devices and FIFOs are written as streams.
    """
    shown = Path(path)
    kind = _kind(shown)
    if kind == "stream":
        return _stream_write(shown, data)
    if kind == "folder":
        raise InputError(f"{shown}: is a folder; give a file name for the output")
    if kind == "other":
        raise InputError(f"{shown}: is not a regular file; choose another output")
    target = Path(os.path.realpath(shown))
    folder = target.parent
    if not folder.is_dir():
        raise InputError(f"{shown}: folder {shown.parent if str(shown.parent) else '.'} does not exist; "
                         "create it or choose another output")
    _remove_stale_temporaries(folder, target.name)
    mode = _mode_for(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise _write_error(shown, exc) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        _sync_folder(folder)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _write_error(shown, exc) from None
        raise


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a power loss after it keeps the new name): fsync the folder,
    where the file system allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # a file system that cannot sync a folder: the rename is as durable as it allows
        pass
    finally:
        os.close(fd)


def _stream_write(path: Path, data: bytes) -> None:
    try:
        with open(path, "wb", buffering=0) as handle:
            handle.write(data)
    except OSError as exc:
        raise _write_error(path, exc) from None


def _mode_for(target: Path) -> int:
    """An existing file's permission bits; for a new file those the umask leaves of 0666."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _write_error(path: Path, exc: OSError) -> InputError:
    reasons = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
               errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
               errno.EPERM: "permission denied", errno.EISDIR: "it is a folder",
               errno.ENOTDIR: "a part of the path is not a folder", errno.ENAMETOOLONG: "the name is too long",
               errno.EFBIG: "it would exceed the file-size limit (ulimit -f)"}
    reason = reasons.get(exc.errno, exc.strerror or str(exc))
    return InputError(f"{path}: cannot write it: {reason}; the previous file, if any, is unchanged")


def _remove_stale_temporaries(folder: Path, name: str) -> None:
    """Temporaries of ``name`` whose writer is no longer running (killed mid-write) are removed."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            match = _TEMPORARY.match(entry.name)
            if match and match["name"] == name and not _running(int(match["pid"])):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_path(path: str | Path) -> Path:
    """The lock of an output: beside the file it really is (a link's target), so every name that
    reaches one file shares one lock."""
    real = Path(os.path.realpath(path))
    return real.with_name(f".{real.name}.lock")


@contextlib.contextmanager
def locked_output(path: str | Path, force: bool = False, wait: bool = False) -> Iterator[Path]:
    """``output_lock`` on a file a run is about to write, refusing (UsageError) once it holds the lock if
    the file exists and ``force`` is not given: what fit, tune, export and compare --save-dir share."""
    with output_lock(path, wait=wait) as lock:
        if Path(path).exists() and not force:
            raise UsageError(f"{path} exists; pass --force to overwrite it (or choose another --output)")
        yield lock


_HELD: set[str] = set()  # the lock files this process holds now (remove_held_locks)


def remove_held_locks() -> None:
    """Remove the lock files this process holds, for a run that leaves at once (an interrupt that lands
    inside an import, ``cli._interrupt``): the kernel frees the flocks with the process, and a waiter
    that locked one of these files notices it was removed and locks afresh (``output_lock``)."""
    for held in list(_HELD):
        with contextlib.suppress(OSError):
            os.unlink(held)


@contextlib.contextmanager
def output_lock(path: str | Path, wait: bool = False) -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` for the duration of a run that writes it.

    The lock is an flock on a hidden file beside the output (never through a symbolic link: a lock path
    that is one is refused, exit 2 naming it): the kernel releases it when the holder dies, so a SIGKILLed run never leaves it stuck (a later run takes the file over). The file is
    removed on release; a waiter that locked a file removed meanwhile notices (inode changed) and
    locks the new one. Outputs that are devices or pipes take no lock.
    """
    if _kind(path) == "stream":
        yield Path(os.devnull)
        return
    target = lock_path(path)
    planted = UsageError(f"{path}: its lock {target} is a symbolic link, which seqcast does not follow (it could "
                         "make a run write where the link points); remove the link and run again")
    while True:
        if os.path.islink(target):
            raise planted
        try:
            fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except FileNotFoundError:
            raise InputError(f"{path}: folder {Path(path).parent} does not exist") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a link put there since the check above
                raise planted from None
            raise _write_error(Path(path), exc) from None
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
    _HELD.add(str(target))
    try:
        yield target
    finally:
        _HELD.discard(str(target))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
        os.close(fd)
