"""How requests are authorised: an inbound webhook, or an OAuth app token with refresh."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from b24kit.client.address import WebhookAddress, redact
from b24kit.client.errors import AuthError


class Auth:
    """Where a method is sent and which parameters carry the credentials."""

    portal: str  # shown in messages; never holds a secret

    def url(self, method: str) -> str:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        return {}

    async def refresh(self, client: httpx.AsyncClient) -> bool:
        """Renew credentials after ``expired_token``; True if a retry makes sense."""
        return False

    def secrets(self) -> list[str]:
        return []


@dataclass
class WebhookAuth(Auth):
    address: WebhookAddress

    def __post_init__(self) -> None:
        self.portal = self.address.redacted

    def url(self, method: str) -> str:
        return self.address.endpoint + method

    def secrets(self) -> list[str]:
        return [self.address.token]


TokenSaver = Callable[[dict[str, Any]], Awaitable[None] | None]


@dataclass
class OAuthAuth(Auth):
    """An application token. On ``expired_token`` the client refreshes once and retries
    (the docs' recommended flow); each refresh returns a new refresh token, handed to
    ``on_tokens`` so the caller can store it."""

    rest_base: str  # https://portal.bitrix24.ru/rest/
    access_token: str
    refresh_token: str
    client_id: str
    client_secret: str
    token_url: str = "https://oauth.bitrix.info/oauth/token/"
    on_tokens: TokenSaver | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def __post_init__(self) -> None:
        self.portal = self.rest_base.rstrip("/")

    def url(self, method: str) -> str:
        return self.rest_base.rstrip("/") + "/" + method

    def params(self) -> dict[str, Any]:
        return {"auth": self.access_token}

    def secrets(self) -> list[str]:
        return [self.access_token, self.refresh_token, self.client_secret]

    async def refresh(self, client: httpx.AsyncClient) -> bool:
        stale = self.access_token
        async with self._lock:
            if self.access_token != stale:
                return True  # another request refreshed while we waited
            response = await client.get(
                self.token_url,
                params={
                    "grant_type": "refresh_token",
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                    "refresh_token": self.refresh_token,
                },
            )
            try:
                data = response.json()
            except ValueError:
                data = {}
            if response.status_code != 200 or "access_token" not in data:
                raise AuthError(
                    "oauth/token",
                    response.status_code,
                    data.get("error", ""),
                    redact(str(data.get("error_description", "refresh failed"))),
                )
            self.access_token = str(data["access_token"])
            self.refresh_token = str(data["refresh_token"])
            if self.on_tokens is not None:
                saved = self.on_tokens(data)
                if saved is not None:
                    await saved
            return True
