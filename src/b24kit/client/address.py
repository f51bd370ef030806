"""Portal addresses: parse an inbound webhook URL and show it only redacted."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from b24kit.client.errors import ConfigError

_WEBHOOK = re.compile(
    r"^(?P<base>https?://[^/]+(?:/[^/]+)*?)/rest/(?P<user>\d+)/(?P<token>[^/]+)/?$"
)
_ANY_HOOK = re.compile(r"(/rest/\d+/)([^/\s\"']+)")
_AUTH_PARAM = re.compile(
    r"((?:^|[?&\s\"'])(?:auth|access_token|refresh_token|client_secret)=)([^&\s\"']+)"
)


@dataclass(frozen=True)
class WebhookAddress:
    base: str  # https://portal.bitrix24.ru
    user_id: int
    token: str

    @property
    def endpoint(self) -> str:
        return f"{self.base}/rest/{self.user_id}/{self.token}/"

    @property
    def redacted(self) -> str:
        return f"{_without_userinfo(self.base)}/rest/{self.user_id}/***/"

    def __repr__(self) -> str:  # never show the secret, not even in a debugger dump
        return f"WebhookAddress({self.redacted!r})"


_USERINFO = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]*@", re.IGNORECASE)


def _without_userinfo(url: str) -> str:
    """``https://user:password@host`` -> ``https://***@host``: a password is a secret too."""
    return _USERINFO.sub(r"\g<scheme>***@", url)


def parse_webhook(url: str) -> WebhookAddress:
    text = url.strip()
    match = _WEBHOOK.match(text)
    if not match:
        # Which part is the secret cannot be known in a malformed URL: show the host only.
        parts = urlsplit(text)
        host = parts.netloc.rsplit("@", 1)[-1]
        shown = f"{parts.scheme}://{host}/..." if parts.netloc else "(not a URL)"
        raise ConfigError(
            f"not a webhook URL: {shown}; expected https://PORTAL/rest/USER_ID/SECRET/"
        )
    parts = urlsplit(text)
    if parts.query or parts.fragment:
        raise ConfigError("a webhook URL has no query or fragment")
    return WebhookAddress(match.group("base"), int(match.group("user")), match.group("token"))


def redact(text: str) -> str:
    """Hide webhook secrets and token parameters anywhere in a string."""
    text = _ANY_HOOK.sub(r"\1***", text)
    text = re.sub(r"(https?://)[^/@\s\"']*@", r"\1***@", text)  # user:password@
    return _AUTH_PARAM.sub(r"\1***", text)
