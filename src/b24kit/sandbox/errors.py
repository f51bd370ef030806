"""Errors the sandbox answers with, in the shapes a real portal uses (see docs/sandbox.md)."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answer: HTTP status plus the portal's ``error`` and ``error_description``."""

    def __init__(self, code: str | int, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "error_description": self.description}


def old_style(description: str, status: int = 400) -> ApiError:
    """Old-style CRM methods (crm.deal.*, crm.status.*) answer with an empty code."""
    return ApiError("", description, status)


def core(description: str) -> ApiError:
    return ApiError("ERROR_CORE", description, 400)


def not_found_new(description: str = "Element not found") -> ApiError:
    return ApiError("NOT_FOUND", description, 400)


def invalid_arg(description: str) -> ApiError:
    return ApiError("INVALID_ARG_VALUE", description, 400)


def required_arg(name: str) -> ApiError:
    """D7 controllers report a missing required argument with the numeric code 100."""
    return ApiError(100, f"Could not find value for parameter {{{name}}}", 400)


METHOD_NOT_FOUND = ("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)
QUERY_LIMIT = ("QUERY_LIMIT_EXCEEDED", "Too many requests", 503)
OPERATION_LIMIT = ("OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit.", 429)
INVALID_CREDENTIALS = ("INVALID_CREDENTIALS", "Invalid request credentials", 401)
NO_AUTH = ("NO_AUTH_FOUND", "Wrong authorization data", 401)
EXPIRED_TOKEN = ("expired_token", "The access token provided has expired.", 401)
INVALID_TOKEN = ("invalid_token", "Unable to get application by token", 401)
INSUFFICIENT_SCOPE = (  # _includes/system-errors.md: 403 (the ``scope-401`` reading: 401)
    "insufficient_scope",
    "The request requires higher privileges than provided by the webhook token",
    403,
)
INTERNAL = ("INTERNAL_SERVER_ERROR", "Internal server error", 500)


def make(spec: tuple[str, str, int]) -> ApiError:
    return ApiError(spec[0], spec[1], spec[2])
