"""The one error hierarchy: what went wrong decides the exit code, mapped in one place
(cli/app.py main). Findings are results, not errors (exit 1, decided by the command)."""

from __future__ import annotations

import re

# characters that would rewrite what a terminal shows (ANSI escapes, bidi overrides, line
# breaks, invisible ones) in text that came from a user's file or a portal
_UNPRINTABLE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u2028-\u202e\u2060\u2066-\u2069\ufeff"
    r"\ud800-\udfff]"
)


def one_line(text: str) -> str:
    """``text`` as one line of plain characters: each control, bidi or line-breaking
    character shown as ``\\uXXXX``, so an error line is one line and says what it says."""
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class Error(Exception):
    """Something b24kit could not do. Unknown kinds are bugs: exit 4. ``hint``: one line
    on what to do, shown under the error's own line."""

    exit_code = 4
    hint: str | None = None


class InputError(Error, ValueError):
    """Bad input from the user (a file, a name, an option, a blueprint not applied yet):
    nothing was written. Exit 2. Also a ValueError, as bad values are in Python."""

    exit_code = 2


class PortalFailure(Error):
    """The portal or the network failed, or did not do what it answered. Exit 3."""

    exit_code = 3
