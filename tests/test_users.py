"""portal/users.py read_users: a user.get the portal failed is not "no such user"."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from b24kit.client import B24Client, PortalError, WebhookAuth, parse_webhook
from b24kit.portal.users import read_users
from b24kit.sandbox import Sandbox


class FailingOne(httpx.AsyncBaseTransport):
    """The sandbox, except that the batch command ``u5`` comes back failed, as a portal's
    command that hit an internal error does (the rest of the batch answered)."""

    def __init__(self, box: Sandbox) -> None:
        self.inner = box.transport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if not request.url.path.rstrip("/").endswith("/batch"):
            return response
        body = json.loads(await response.aread())
        inner = body["result"]
        inner["result"].pop("u5", None)
        errors = inner["result_error"] if isinstance(inner["result_error"], dict) else {}
        errors["u5"] = {"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal error"}
        inner["result_error"] = errors
        return httpx.Response(200, json=body)


def test_a_failed_user_get_is_raised_not_read_as_no_such_user() -> None:
    box = Sandbox(limits="off")
    hook = parse_webhook(box.webhook_url("http://sandbox.local"))

    async def go(transport: httpx.AsyncBaseTransport) -> object:
        async with B24Client(WebhookAuth(hook), transport=transport) as client:
            return await read_users(client, [3, 5])

    assert sorted(asyncio.run(go(box.transport()))) == [3, 5], "both users exist"
    with pytest.raises(PortalError, match="INTERNAL_SERVER_ERROR|Internal error"):
        asyncio.run(go(FailingOne(box)))
