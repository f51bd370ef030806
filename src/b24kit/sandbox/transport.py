"""An httpx transport that answers from a Sandbox in-process: no socket, same bytes.

Faults surface as the exceptions a real connection would raise, so a client cannot
tell this transport from a flaky network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from b24kit.sandbox.app import Sandbox


class SandboxTransport(httpx.AsyncBaseTransport):
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        response = await self.sandbox.handle(
            request.method,
            request.url.path,
            request.url.query,
            request.headers.get("content-type", ""),
            body,
        )
        if response.fault is not None:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        return httpx.Response(
            response.status,
            headers={"content-type": response.content_type},
            content=response.body,
            request=request,
        )
