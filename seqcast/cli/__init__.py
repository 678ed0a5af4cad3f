"""The seqcast command line: parse -> build configs -> one library call -> render.

``options`` holds the option types shared by the commands, ``output`` what the CLI writes, and
``commands`` the commands themselves. Data goes to stdout (or --output); progress, notes and errors go
to stderr. torch and pandas are imported inside commands, so `seqcast --help` starts fast.
"""

import os
import sys

from .. import startup

if os.path.basename(sys.argv[0]) == "seqcast":  # the console script, not a program importing seqcast.cli
    startup.install()

import fcntl  # noqa: E402


def _closed_streams() -> set[str]:
    """Streams as cron and ssh may leave them. With ``2>&-`` Python starts with ``sys.stderr`` None,
    or (when a launcher script took the free descriptor) with a stderr on a file it cannot write.
    Each such stream becomes /dev/null, so no write fails for want of a stream; stdin stays None, so
    that reading ``-`` says it is closed. Runs on import, before anything else opens a file."""
    closed = set()
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        wanted = os.O_RDONLY if fd == 0 else os.O_WRONLY
        try:
            access = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
        except OSError:
            access = None
        if getattr(sys, name) is not None and access in (wanted, os.O_RDWR):
            continue
        closed.add(name)
        null = os.open(os.devnull, wanted)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
        setattr(sys, name, None if fd == 0 else open(fd, "w", encoding="utf-8", closefd=False))
    return closed


_CLOSED = _closed_streams()

import functools  # noqa: E402
import signal  # noqa: E402
from inspect import signature  # noqa: E402  (cli.inspect is the module of info and models)
import traceback  # noqa: E402
import warnings  # noqa: E402
from typing import Annotated, Callable  # noqa: E402

import typer  # noqa: E402

from .. import __version__
from ..errors import PeerLostError, SeqcastError, UsageError, from_library
from .output import Output, Signals, stdout_errors  # noqa: E402

Signals.closed |= _CLOSED

app = typer.Typer(
    name="seqcast",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

GLOBAL_FLAGS = ("-q", "--quiet", "-v", "--verbose", "--debug", "--no-color")


def command(*, shared: tuple = (), **settings):
    """Register a command (its first parameter is the Typer context) whose failures become one line
    on stderr and the documented exit code. ``shared``: groups of options several commands take
    (``options.COLUMNS``, ...), declared once; the command reads them from ``ctx.params``."""

    def decorate(fn: Callable) -> Callable:
        own = signature(fn)

        @functools.wraps(fn)
        def wrapper(ctx: typer.Context, *args, **kwargs):
            out: Output = ctx.obj
            kwargs = {name: value for name, value in kwargs.items() if name in own.parameters}
            try:
                _check_integers(ctx)
                with warnings.catch_warnings():
                    warnings.showwarning = lambda message, *_, **__: out.say(f"warning: {message}")
                    warnings.simplefilter("ignore")
                    warnings.filterwarnings("default", category=UserWarning, module=r"seqcast\.")
                    done = fn(ctx, *args, **kwargs)
                with stdout_errors():  # what is still buffered fails here, not at exit
                    sys.stdout.flush()
                return done
            except SeqcastError as exc:
                if out.debug:
                    traceback.print_exc()
                out.error(str(exc))
                Signals.leave_at_once = isinstance(exc, PeerLostError)
                raise typer.Exit(exc.exit_code) from None
            except KeyboardInterrupt:
                out.error("interrupted; nothing was written")
                raise typer.Exit(130) from None
            except BrokenPipeError:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                raise typer.Exit(0) from None
            except (typer.Exit, typer.Abort):
                raise
            except Exception as exc:  # the one place that turns an unexpected failure into exit 1
                if Signals.interrupted:
                    # a signal's KeyboardInterrupt raised while Python built a class during an import comes
                    # back wrapped ("RuntimeError: Error calling __set_name__ ..." from a torch dataclass,
                    # seen in a CI run): it is still the interrupt, not our bug
                    out.error("interrupted; nothing was written")
                    raise typer.Exit(130) from None
                known = from_library(exc)  # a dependency's failure the user's input or machine caused: exit 2
                if known is not None:
                    if out.debug:
                        traceback.print_exc()
                    out.error(str(known))
                    raise typer.Exit(known.exit_code) from None
                if out.debug:
                    traceback.print_exc()
                    raise typer.Exit(1) from None
                out.error(f"unexpected {type(exc).__name__}: {exc} (run again with --debug to see the traceback)")
                raise typer.Exit(1) from None

        wrapper.__signature__ = own.replace(parameters=[*own.parameters.values(),
                                                        *(option for group in shared for option in group)])
        return app.command(**settings)(wrapper)

    return decorate


LARGEST = 2**63 - 1  # the largest whole number an option may hold (numpy's and pandas' int64)


def _check_integers(ctx: typer.Context) -> None:
    """Every whole-number option within 64 bits, or UsageError naming it: a count beyond that (``--windows
    2**70``) means nothing here, and would overflow where numpy or pandas meets it."""
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > LARGEST:
            flag = max(param.opts, key=len) if param.opts and param.opts[0].startswith("-") else param.name.upper()
            raise UsageError(f"{flag} {value}: too large; give a whole number up to {LARGEST}")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"seqcast {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Write nothing to stderr on success.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Write more detail to stderr.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an unexpected error.")] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="No colour or terminal effects.")] = False,
) -> None:
    """Forecast time series with the lineage of sequence models, from the vanilla RNN to Informer.

    Exit codes: 0 success, 1 unexpected error, 2 bad usage or input, 75 output locked by another
    run, 130 interrupted.
    """
    ctx.obj = Output(quiet=quiet, verbose=verbose, debug=debug, no_color=no_color)


SIGNALS = [name for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)]


def _interrupt(signum, frame) -> None:
    """Ctrl-C, SIGTERM and SIGHUP: raise KeyboardInterrupt now, and remember it, so that an interrupt raised
    where Python discards exceptions (a finaliser) still ends training at the next step. Once the run
    is stopping, later signals are ignored: the cleanup (temporaries, locks) finishes and the exit
    code stays 130, instead of a second signal killing the process on its way out."""
    Signals.interrupted = True
    for name in SIGNALS:
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    if _importing(frame):
        # an exception raised inside an import can cross a C extension's boundary (torch's pybind11 start-up),
        # which aborts the process ("terminate called after throwing ... error_already_set"): leave as
        # start-up does, at once; an import writes nothing, the flocks are freed with the process, and their
        # files removed here (no import in a handler that interrupted one: the module is looked up)
        files = sys.modules.get("seqcast.files")
        if files is not None:
            files.remove_held_locks()
        startup.interrupted_while_starting(signum, frame)
    raise KeyboardInterrupt


def _importing(frame) -> bool:
    """Whether the interrupted code runs inside an import (the import system's frames are on its stack)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def main() -> None:
    """Console entry point: SIGINT, SIGTERM and SIGHUP (an ssh session dropping) end a run alike (no
    partial files), then run the app.

    The global flags are accepted anywhere before ``--`` (``seqcast fit data.csv -q``), as cron
    users write them, by moving them in front of the command.
    """
    for stream in (sys.stdout, sys.stderr):  # names that are not UTF-8 are escaped, not a failure
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    for name in SIGNALS:
        signal.signal(getattr(signal, name), _interrupt)
    args = sys.argv[1:]
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if a in GLOBAL_FLAGS]
    rest = [a for a in args[:end] if a not in GLOBAL_FLAGS]
    try:
        app(args=flags + rest + args[end:], prog_name="seqcast")
    except SystemExit as done:
        if Signals.interrupted:  # also an interrupt while Typer parsed the options, before a command ran
            if not Signals.reported:
                Output.error("interrupted; nothing was written")
            _leave(done.code if Signals.reported else 130)
        if Signals.leave_at_once:
            _leave(done.code)
        raise
    except KeyboardInterrupt:
        Output.error("interrupted; nothing was written")
        _leave(130)


def _leave(code) -> None:
    """End a run an interrupt stopped (reported, cleaned up, exit 130) with its exit code, now.

    Seen under load: a fit stopped by SIGTERM printed its 130 message and then ended by SIGINT
    (status -2), about one run in four. The likeliest cause: a KeyboardInterrupt that passed through
    Python code a C extension ran with PyRun_* sets CPython's unhandled-interrupt mark, which makes
    the interpreter end itself by SIGINT even after the exception was handled. Leaving here, with
    everything already cleaned up and flushed, keeps the documented 130 (none in 80 runs since)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code if isinstance(code, int) else 1)


from . import train, forecast, evaluate, inspect  # noqa: E402,F401,I001  (registers the commands on ``app``, in this order)
