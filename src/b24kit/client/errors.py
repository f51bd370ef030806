"""Typed errors of the REST client. Every message is safe to print: no secret in it."""

from __future__ import annotations

from typing import Any

from b24kit.errors import InputError, PortalFailure


class B24Error(PortalFailure):
    """Base of everything the client raises (a portal failure: exit 3)."""


class PortalError(B24Error):
    """The portal answered with an error: keeps method, HTTP status, code and description."""

    def __init__(self, method: str, status: int, code: Any, description: str) -> None:
        self.method = method
        self.status = status
        self.code = "" if code is None else str(code)
        self.description = description
        super().__init__(str(self))

    def __str__(self) -> str:
        code = self.code or "(no code)"
        return f"{self.method}: HTTP {self.status} {code}: {self.description}"

    @property
    def upper_code(self) -> str:
        return self.code.upper()


class AuthError(PortalError):
    """401/403 about credentials: a wrong webhook secret, an expired or invalid token."""


class ScopeError(PortalError):
    """The webhook or app lacks the scope the method needs."""


class MethodNotFound(PortalError):
    pass


class QueryLimitExceeded(PortalError):
    """503 QUERY_LIMIT_EXCEEDED: the leaky bucket refused the request (it did not run). Only
    the code says so: a 503 without it is a :class:`ServerError`."""


class BucketFull(QueryLimitExceeded):
    """Not sent: the portal has just refused a request, and by this client's count its
    bucket has no room yet (``B24Client.batch(wait_if_refused=False)``)."""


class OperationTimeLimit(PortalError):
    """429 OPERATION_TIME_LIMIT: this method is paused until its budget resets."""


class ServerError(PortalError):
    """A 5xx that is not the bucket's refusal (500, or a proxy's bare 502/503/504 with no
    error code): transient, and the outcome of a write is unknown."""

    @property
    def may_still_run(self) -> bool:
        """A gateway's 502/504: the proxy gave up on the portal, which may still be
        running the request."""
        return self.status in (502, 504) and not self.code


# 5xx statuses that say the server cannot serve such a request at all, now or later: 501
# Not Implemented (a server that is no portal: `python -m http.server` answers a POST so),
# 505 HTTP Version Not Supported. Sent again, they answer the same: one is final.
NEVER_TRANSIENT = frozenset({501, 505})


def transient(status: int) -> bool:
    """A 5xx that may be answered otherwise when asked again: a server error (a 500, a
    proxy's 502/503/504), whether the portal's envelope came with it or not."""
    return status >= 500 and status not in NEVER_TRANSIENT


# 4xx statuses that say "not now" (a time-out, too early, too many): worth asking again
LATER = frozenset({408, 425, 429})
# what a web server in front of the portal says of a request too large for it (a batch's
# body, a URL): final, but no sign of a wrong address
TOO_LARGE = frozenset({413, 414, 431})


class BadResponse(B24Error):
    """The portal answered with something that is not the JSON envelope (HTML, empty).
    ``final``: asked again, it answers the same (a redirect, a web server's 404 or 403
    page, a 501, a web page where the API should be): the address is no portal, or not
    this one, and a read is not retried."""

    def __init__(self, method: str, status: int, detail: str, *, page: bool = False) -> None:
        self.method = method
        self.status = status
        self.final = (
            status in NEVER_TRANSIENT
            or 300 <= status < 400
            or (400 <= status < 500 and status not in LATER)
            or (page and status < 300)  # a login or captive page, not a cut answer
        )
        super().__init__(f"{method}: HTTP {status}: {detail}{_hint(status) if self.final else ''}")


def _hint(status: int) -> str:
    if 300 <= status < 400:
        return " (the address redirects: give the portal's own https:// address)"
    if status in TOO_LARGE:
        return " (the request is too large for the portal's web server)"
    return " (no Bitrix24 answer: check the portal's address)"


class TransportFailure(B24Error):
    """The request did not complete: connection refused, dropped, timed out.
    For a write, whether it ran is unknown."""

    def __init__(
        self,
        method: str,
        portal: str,
        detail: str,
        *,
        permanent: bool = False,
        may_still_run: bool = False,
    ) -> None:
        self.method = method
        self.permanent = permanent  # the name does not resolve: trying again will not help
        # we stopped waiting (a time-out), the portal may not have: what it was asked to
        # write may appear a while later
        self.may_still_run = may_still_run
        super().__init__(f"{method}: could not reach {portal}: {detail}")


# What the resolver says when a host name does not exist (glibc, musl, macOS, Windows)
UNRESOLVED = (
    "name or service not known",
    "nodename nor servname",
    "no address associated",
    "name does not resolve",
    "getaddrinfo failed",
    "temporary failure in name resolution",
    "no such host",
)


class UnknownOutcome(B24Error):
    """A write may or may not have happened and cannot be looked up safely."""


# The failures after which a call may or may not have run on the portal: repeated when
# safe, looked up by key when not (the executor), never taken as "ran nothing".
UNKNOWN = (ServerError, TransportFailure, BadResponse)


class DeadlinePassed(B24Error):
    """The run's deadline passed before the portal answered: the work is incomplete, and
    running it again continues it (every write can be found again)."""


class IncompleteRead(B24Error):
    """A paged read could not be completed exactly; nothing partial is returned."""


class ConfigError(B24Error, InputError):
    """The portal configuration (flag, environment, config file) is wrong: bad input,
    exit 2."""

    exit_code = 2


def classify(method: str, status: int, code: Any, description: str) -> PortalError:
    upper = "" if code is None else str(code).upper()
    if upper == "QUERY_LIMIT_EXCEEDED":
        return QueryLimitExceeded(method, status, code, description)
    if upper == "OPERATION_TIME_LIMIT":
        return OperationTimeLimit(method, status, code, description)
    if upper == "INSUFFICIENT_SCOPE":
        return ScopeError(method, status, code, description)
    if upper == "ERROR_METHOD_NOT_FOUND":
        return MethodNotFound(method, status, code, description)
    if (
        upper
        in (
            "EXPIRED_TOKEN",
            "INVALID_TOKEN",
            "INVALID_CREDENTIALS",
            "NO_AUTH_FOUND",
            "WRONG_AUTH_TYPE",
            "INVALID_REQUEST",
        )
        or status == 401
    ):
        return AuthError(method, status, code, description)
    if transient(status):
        return ServerError(method, status, code, description)
    return PortalError(method, status, code, description)
