"""Exit codes and the one line of an interrupted command: imported by the entry point
before anything else loads, so this module imports nothing.

0 done, 1 findings asked to fail on, 2 bad input, 3 portal failure (b24kit.errors decides
2, 3 and 4 for errors), 4 a bug, 130 interrupted."""

from __future__ import annotations

USAGE, INTERNAL, INTERRUPTED = 2, 4, 130
INTERRUPTED_LINE = (
    "interrupted; run the same command again to continue (b24kit picks up where it stopped)"
)
