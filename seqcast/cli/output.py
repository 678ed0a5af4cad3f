"""What the CLI writes: data to stdout or a file, notes, warnings and progress to stderr.

One ``Output`` per invocation, built from the global flags and kept on the Typer context
(``ctx.obj``). No colour or animation when a stream is not a terminal, with ``NO_COLOR``, with
``TERM=dumb`` or with ``--no-color``; with ``-q`` nothing but errors reaches stderr.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from ..errors import DISK_REASONS, InputError, UsageError

# What may not reach a terminal as it is: C0 and C1 control characters (escape sequences start with
# ESC or CSI; a newline or carriage return would forge a line of its own) and the bidirectional
# overrides that reorder what is shown. Each is written as its Python escape (``\x1b``) instead.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# scheme://user:PASSWORD@host: the password up to the host's @ (a password may hold an @ of its own)
_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/:@]*:)[^\s/]*@")


def shown(text: object) -> str:
    """``text`` as one line fit for a terminal: a URL's password as ``***``, every control character
    and bidirectional override escaped. The one place where text from files, checkpoints, studies and
    libraries meets the user's terminal: every note, progress line, table cell and error passes here."""
    text = _PASSWORD.sub(r"\1***@", str(text))
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class Signals:
    """Process-wide state the entry point sets: ``interrupted`` by the SIGINT/SIGTERM/SIGHUP handler
    (training progress re-raises the interrupt at the next step even if the first KeyboardInterrupt
    was swallowed), ``reported`` once an error line is written, ``closed`` the standard streams that
    were closed at start (now /dev/null)."""

    interrupted = False
    reported = False  # an error line was written (main() adds the interrupt's line when none was)
    leave_at_once = False  # the error said must end the process without Python's shutdown (errors.PeerLostError)
    closed: set[str] = set()

    @classmethod
    def require_stdout(cls) -> None:
        """Data is about to go to stdout: refuse if it was closed at start (it would be lost)."""
        if "stdout" in cls.closed:
            raise UsageError("stdout is closed, so the output would be lost; pass --output FILE")


@dataclass(frozen=True)
class Output:
    quiet: bool = False
    verbose: bool = False
    debug: bool = False
    no_color: bool = False

    @property
    def color_off(self) -> bool:
        return self.no_color or "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb"

    def console(self, stderr: bool = True):
        from rich.console import Console

        stream = sys.stderr if stderr else sys.stdout
        terminal = stream.isatty() and os.environ.get("TERM") != "dumb"
        return Console(file=stream, stderr=stderr, color_system=None if self.color_off else "auto",
                       force_terminal=terminal, highlight=False, emoji=False, soft_wrap=True,
                       width=None if terminal else 200)

    def say(self, message: str) -> None:
        """A note for the user on stderr (silent with -q)."""
        if not self.quiet:
            self.console().print(shown(message), markup=False)

    def detail(self, message: str) -> None:
        """More detail on stderr, with -v only."""
        if self.verbose and not self.quiet:
            self.console().print(shown(message), markup=False)

    @staticmethod
    def lines(lines: list[str]) -> None:
        """Lines of text as a command's result (info, models) on stdout, each one line, shown()."""
        Signals.require_stdout()
        write(("\n".join(shown(line) for line in lines) + "\n").encode("utf-8"))

    def notes(self, notes, warnings=()) -> None:
        for note in notes:
            self.say(f"note: {note}")
        for warning in warnings:
            self.say(f"warning: {warning}")

    @staticmethod
    def error(message: str) -> None:
        Signals.reported = True
        try:
            sys.stderr.write(f"seqcast: error: {shown(message)}\n")
            sys.stderr.flush()
        except OSError:  # stderr on a full disk or a dead terminal: the exit code still says it
            pass

    @staticmethod
    def emit(data: bytes, output: str) -> None:
        """Data to stdout (``-``) or written atomically to ``output``."""
        from ..files import atomic_write

        if output == "-":
            Signals.require_stdout()
            write(data)
        else:
            atomic_write(output, data)

    def table(self, title: str, columns: list[str], rows: list[list[Any]]) -> None:
        """A table on stdout (rich; plain text when stdout is not a terminal)."""
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for i, column in enumerate(columns):
            table.add_column(column, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*[shown(fmt(v)) for v in row])
        table.title = shown(title)
        with stdout_errors():
            self.console(stderr=False).print(table)

    def progress(self, label: str, epochs: bool = True) -> "Progress":
        return Progress(self, label, epochs)


class Progress:
    """Training progress on stderr: a rich bar on a terminal, one plain line per epoch otherwise."""

    def __init__(self, out: Output, label: str, epochs: bool = True):
        self.out, self.label, self.bar, self.task, self.lines = out, label, None, None, epochs
        console = out.console()
        if not out.quiet and console.is_terminal and not out.color_off:
            from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            self.bar = Bar(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[status]}"),
                           TimeElapsedColumn(), console=console, transient=True)

    def __enter__(self):
        if self.bar:
            self.bar.start()
            self.task = self.bar.add_task(shown(self.label), total=None, status="")
        return self

    def __exit__(self, *exc):
        if self.bar:
            self.bar.stop()

    def step(self, step: int, total: int) -> None:
        if Signals.interrupted:  # the signal's KeyboardInterrupt was swallowed somewhere (e.g. in a finaliser)
            raise KeyboardInterrupt
        if self.bar and (step % 10 == 0 or step == total):
            self.bar.update(self.task, completed=step, total=total)

    def epoch(self, report) -> None:
        if Signals.interrupted:
            raise KeyboardInterrupt
        label = f"{self.label} probe ({report.probe})" if report.probe else self.label
        line = (f"{label} {report.unit} {report.epoch}/{report.epochs}: train {report.train_loss:.5f}  "
                f"val {report.val_loss:.5f}{' *' if report.best else ''}  {report.seconds:.1f}s")
        if self.bar:
            self.bar.update(self.task, status=f"{report.unit} {report.epoch} val {report.val_loss:.4f}")
            if self.out.verbose:
                self.bar.console.print(shown(line), markup=False)
        elif self.lines or self.out.verbose:
            self.out.say(line)


def write(data: bytes) -> None:
    """Bytes to stdout, flushed; a failing stdout (a full disk, ``> /dev/full``) is exit 2 saying so."""
    with stdout_errors():
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


@contextmanager
def stdout_errors() -> Iterator[None]:
    """Within: an OSError writing stdout (other than a closed pipe, which ends the run quietly) becomes
    InputError naming stdout and the reason."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        reason = DISK_REASONS.get(exc.errno, exc.strerror or str(exc))
        raise InputError(f"cannot write the output to stdout: {reason} (redirect it elsewhere, or pass "
                         "--output FILE)") from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return value


def to_json(document: Any) -> bytes:
    """One JSON document (NaN and infinities as null), UTF-8, ending in a newline."""
    return (json.dumps(_jsonable(document), indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.4e}"
    return str(value)
