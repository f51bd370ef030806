"""Serve a Sandbox over real HTTP with uvicorn (foreground, or a background thread for tests)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import uvicorn

from b24kit.asgi import ListenError, listen_socket
from b24kit.sandbox.app import Sandbox

__all__ = ["ListenError", "RunningServer", "listen_socket", "serve", "start_in_thread"]


def _config(sandbox: Sandbox, host: str, port: int) -> uvicorn.Config:
    # Dropped connections are the point of the drop/lost faults; keep uvicorn quiet about them.
    logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
    return uvicorn.Config(
        sandbox, host=host, port=port, log_level="critical", access_log=False, lifespan="off"
    )


def serve(
    sandbox: Sandbox,
    host: str = "127.0.0.1",
    port: int = 8765,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve in the foreground until interrupted (SIGINT or SIGTERM: a graceful stop, then
    :class:`KeyboardInterrupt`); ``on_ready`` gets the base URL once the socket is bound
    (so ``port=0`` reports the port it got). A port that cannot be had is a
    :class:`ListenError` before anything starts."""
    sock = listen_socket(host, port)

    async def run() -> None:
        server = uvicorn.Server(_config(sandbox, host, port))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                await task
                raise ListenError(f"the sandbox server failed to start on {host}:{port}")
            await asyncio.sleep(0.01)
        if on_ready is not None:
            on_ready(f"http://{host}:{sock.getsockname()[1]}")
        await task

    try:
        asyncio.run(run())
    except SystemExit as exc:  # uvicorn's way to say that it could not start
        raise ListenError(
            f"the sandbox server failed to start on {host}:{port} (exit {exc.code})"
        ) from None
    finally:
        sock.close()


@dataclass
class RunningServer:
    server: uvicorn.Server
    thread: threading.Thread
    base_url: str

    def stop(self, wait: bool = False) -> None:
        """Ask the server to stop. It stops taking connections at its next tick (a tenth
        of a second) and is gone a tenth later, on its own thread; ``wait`` waits for
        that (a test that stops and starts many servers need not)."""
        self.server.should_exit = True
        if wait:
            self.thread.join(timeout=10)


def start_in_thread(sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Start on a loopback port (0 = any free one) and return once it accepts connections."""
    sock = listen_socket(host, port)
    server = uvicorn.Server(_config(sandbox, host, port))
    server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            sock.close()
            raise ListenError(f"the sandbox server failed to start on {host}:{port}")
        threading.Event().wait(0.01)
    return RunningServer(server, thread, f"http://{host}:{sock.getsockname()[1]}")
