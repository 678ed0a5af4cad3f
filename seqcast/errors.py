"""seqcast's errors: one base class, a few subclasses, each mapped to one exit code by the CLI."""

import errno


class SeqcastError(Exception):
    """An error a user can act on. The message says what, where, and what to do."""

    exit_code = 2


class InputError(SeqcastError):
    """Bad data: a CSV that cannot be read or does not fit the request."""


class UsageError(SeqcastError):
    """Bad options: an unknown model, parameter or value."""


class CheckpointError(SeqcastError):
    """A checkpoint that is not seqcast's, is damaged, or does not fit."""


class TrainingError(SeqcastError):
    """Training could not produce a usable model (for example the loss became NaN)."""


class PeerLostError(SeqcastError):
    """Another process of a torchrun run stopped. The process ends as soon as it has said so: tearing
    down the broken gloo group (or Python's own shutdown around it) can abort the process instead."""


class LockedError(SeqcastError):
    """Another run holds the lock on the same output."""

    exit_code = 75


def named(ids, limit: int = 10) -> str:
    """Series ids as a message names many of them: the first ``limit``, quoted, then how many more."""
    ids = list(ids)
    return ", ".join(repr(i) for i in ids[:limit]) + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


# Failures of the file system that a user fixes (free space, a quota, permissions, a device that
# cannot be written), by errno, as a message says them.
DISK_REASONS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
                errno.EFBIG: "it would exceed the file-size limit (ulimit -f)",
                errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
                errno.EPERM: "permission denied", errno.EIO: "an input/output error on the device"}


def from_library(exc: BaseException) -> SeqcastError | None:
    """A dependency's failure that the user's input, options or machine caused, as the SeqcastError
    (exit 2) that says what to do; None for anything else (seqcast's own bug: exit 1).

    Optuna and its database layer (a storage that is damaged, unreachable or full), onnxruntime (a
    graph it cannot run on this input), a full disk or a quota under any library's write, input nested
    too deeply for a parser (RecursionError) and numbers too large for a machine integer (OverflowError)."""
    module = type(exc).__module__ or ""
    detail = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
    if module.startswith(("optuna", "sqlalchemy")):
        return UsageError(f"the Optuna storage failed: {detail} ({type(exc).__name__}); check --storage (the "
                          "file or database, its space and permissions), or name another --study")
    if module.startswith("onnxruntime"):
        return CheckpointError(f"onnxruntime cannot run this model on this input: {detail}; export the checkpoint "
                               "again with this seqcast (seqcast export), or predict with the checkpoint itself")
    if isinstance(exc, OSError) and exc.errno in DISK_REASONS:
        where = f"{exc.filename}: " if exc.filename else ""
        return InputError(f"{where}{DISK_REASONS[exc.errno]}; free disk space or fix the permissions, then run again")
    if isinstance(exc, RecursionError):
        return InputError("the input is nested too deeply to read (a JSON document or a study record); it is not "
                          "one seqcast or Optuna wrote")
    if isinstance(exc, OverflowError):
        return UsageError(f"a number is too large ({detail}); check the options and the data for values beyond "
                          "what a 64-bit integer or a timestamp can hold")
    return None
