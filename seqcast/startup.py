"""The first thing the command line does: until ``cli.main()`` installs a run's signal handlers, a
signal ends the process at once with the documented exit code and one line.

Importing typer, rich and the commands takes about half a second; a Ctrl-C there would otherwise print
a KeyboardInterrupt traceback. Nothing has been opened or written yet, so exiting at once loses
nothing. Only the command line installs this (``python -m seqcast``, the ``seqcast`` script), never a
program that imports seqcast.
"""

import os
import signal

SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def interrupted_while_starting(signum, frame) -> None:
    try:
        os.write(2, b"seqcast: error: interrupted; nothing was written\n")
    except OSError:
        pass
    os._exit(130)


def install() -> None:
    for signum in SIGNALS:
        signal.signal(signum, interrupted_while_starting)
