from seqcast import startup

startup.install()  # before the import of the command line, which takes about half a second

from seqcast.cli import main  # noqa: E402

main()
