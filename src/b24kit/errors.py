"""The one error hierarchy: what went wrong decides the exit code, mapped in one place
(cli/app.py main). Findings are results, not errors (exit 1, decided by the command)."""

from __future__ import annotations


class Error(Exception):
    """Something b24kit could not do. Unknown kinds are bugs: exit 4."""

    exit_code = 4


class InputError(Error, ValueError):
    """Bad input from the user (a file, a name, an option, a blueprint not applied yet):
    nothing was written. Exit 2. Also a ValueError, as bad values are in Python."""

    exit_code = 2


class PortalFailure(Error):
    """The portal or the network failed, or did not do what it answered. Exit 3."""

    exit_code = 3
