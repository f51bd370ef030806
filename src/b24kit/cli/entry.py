"""The ``b24kit`` command's entry point: imports the CLI inside a guard, so Ctrl-C while
it loads (a second or so) ends like Ctrl-C at any other moment: one line, exit 130."""

from __future__ import annotations

import sys

INTERRUPTED = 130


def main() -> None:
    try:
        from b24kit.cli.app import main as run
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; run the same command again to continue\n")
        sys.exit(INTERRUPTED)
    run()
