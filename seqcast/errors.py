"""seqcast's errors: one base class, a few subclasses, each mapped to one exit code by the CLI."""


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


class LockedError(SeqcastError):
    """Another run holds the lock on the same output."""

    exit_code = 75


def named(ids, limit: int = 10) -> str:
    """Series ids as a message names many of them: the first ``limit``, quoted, then how many more."""
    ids = list(ids)
    return ", ".join(repr(i) for i in ids[:limit]) + (f" and {len(ids) - limit} more" if len(ids) > limit else "")
