"""The Bitrix24 REST client: async, batched, rate-aware, retry-safe. It speaks REST
only: which portal to talk to (flags, environment, profiles, the sandbox) is chosen above
it, in b24kit.connect, as httpx's Client knows no MockTransport.

    from b24kit.client import B24Client, WebhookAuth, parse_webhook, read_all
    client = B24Client(WebhookAuth(parse_webhook("https://portal.bitrix24.ru/rest/1/SECRET/")))
    deals = await read_all(client, "crm.deal.list", {"select": ["ID", "TITLE"]})
"""

from b24kit.client.address import WebhookAddress, parse_webhook, redact
from b24kit.client.auth import Auth, OAuthAuth, WebhookAuth
from b24kit.client.core import B24Client, BatchResult, Envelope, RetryPolicy
from b24kit.client.errors import (
    AuthError,
    B24Error,
    BadResponse,
    ConfigError,
    DeadlinePassed,
    IncompleteRead,
    MethodNotFound,
    OperationTimeLimit,
    PortalError,
    QueryLimitExceeded,
    ScopeError,
    ServerError,
    TransportFailure,
    UnknownOutcome,
)
from b24kit.client.executor import Command, DependencyFailed, Executor, Outcome, Ref
from b24kit.client.limiter import Bucket, OperatingTracker
from b24kit.client.paging import iterate, read_all

__all__ = [
    "Auth",
    "AuthError",
    "B24Client",
    "B24Error",
    "BadResponse",
    "BatchResult",
    "Bucket",
    "Command",
    "ConfigError",
    "DeadlinePassed",
    "DependencyFailed",
    "Envelope",
    "Executor",
    "IncompleteRead",
    "MethodNotFound",
    "OAuthAuth",
    "OperatingTracker",
    "OperationTimeLimit",
    "Outcome",
    "PortalError",
    "QueryLimitExceeded",
    "Ref",
    "RetryPolicy",
    "ScopeError",
    "ServerError",
    "TransportFailure",
    "UnknownOutcome",
    "WebhookAddress",
    "WebhookAuth",
    "iterate",
    "parse_webhook",
    "read_all",
    "redact",
]
