"""A Unix stream socket served on the asyncio loop that outlasts its clients: it caps how many are connected at
once, and when it runs out of file descriptors it waits and tries again, saying so once.

asyncio's own server (start_unix_server) does neither: 120 connections held open against a limit of 100 file
descriptors made it log a traceback for every failed accept, 57,918 of them (24.8 MB) in 35 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

log = logging.getLogger(__name__)

# Out of file descriptors (or another failure to accept): wait this long before accepting again.
ACCEPT_RETRY_S = 1.0
# Unable to accept for this long, the server counts as dead (see UnixServer.problem).
STARVED_S = 60.0
# The same trouble (connections over the cap, accept failing) is logged at most this often.
LOG_AGAIN_S = 60.0


class Client:
    """One connection. It is idle while it waits for the client to ask something; only an idle one is closed to
    make room for another."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.idle_since: float | None = time.monotonic()
        self.closed = False

    def busy(self) -> None:
        self.idle_since = None

    def idle(self) -> None:
        self.idle_since = time.monotonic()


Handler = Callable[[asyncio.StreamReader, Client], Awaitable[None]]


class UnixServer:
    """Listens on path (mode given) and runs handler for each connection, at most max_clients at once: one more
    closes the connection that has been idle longest, after writing goodbye to it."""

    def __init__(self, path: Path, mode: int, handler: Handler, limit: int, max_clients: int, goodbye: bytes) -> None:
        self.path = path
        self._mode = mode
        self._handler = handler
        self._limit = limit
        self._max_clients = max_clients
        self._goodbye = goodbye
        self._listener: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._clients: set[Client] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        # Since when no connection could be accepted (None while they can), and when each trouble was last logged.
        self._starved_since: float | None = None
        self._logged: dict[str, float] = {}

    def start(self) -> None:
        """Bind and listen (OSError if it cannot), then accept on the running loop."""
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(self.path))
            # Before listen(): nobody can connect while the socket still has the umask's mode.
            os.chmod(self.path, self._mode)
            listener.listen(self._max_clients)
        except OSError:
            listener.close()
            raise
        listener.setblocking(False)
        self._listener = listener
        self._accepting = asyncio.create_task(self._accept(listener))

    def problem(self) -> str | None:
        """What keeps the server from serving, or None while it serves."""
        if self._accepting is None:
            return "the socket is closed"
        if self._accepting.done():
            return "the socket no longer accepts connections"
        if self._starved_since is not None and time.monotonic() - self._starved_since > STARVED_S:
            return f"no connection could be accepted for {STARVED_S:.0f} s"
        return None

    async def close(self) -> None:
        if self._listener is None:
            return
        for task in (self._accepting, *self._tasks):
            if task is not None:
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._listener.close()
        self._listener = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                connection, _address = await loop.sock_accept(listener)
            except OSError as exc:
                # Out of file descriptors (EMFILE), most likely. Trying again at once would spin.
                if self._starved_since is None:
                    self._starved_since = time.monotonic()
                self._warn(
                    "accept",
                    f"cannot accept connections on {self.path} ({exc.strerror or exc}, {len(self._clients)} open); "
                    f"trying again every {ACCEPT_RETRY_S:.0f} s",
                )
                await asyncio.sleep(ACCEPT_RETRY_S)
                continue
            self._starved_since = None
            # Counted before the next accept: connections the daemon had not got to queue up while it was busy, and
            # taken in one burst, each in a task still to be started, none made room for the next, until the
            # burst ran out of file descriptors and nothing was left to free one (test_daemon_hostile.py).
            try:
                reader, writer = await asyncio.open_unix_connection(sock=connection, limit=self._limit)
            except OSError:
                connection.close()
                continue
            self._make_room()
            client = Client(writer)
            self._clients.add(client)
            task = asyncio.create_task(self._serve(reader, client))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _make_room(self) -> None:
        idle = [c for c in self._clients if c.idle_since is not None]
        # When every one of them is busy with a request (answered, or timed out, soon), the newcomer is let in too.
        if len(self._clients) < self._max_clients or not idle:
            return
        self._warn("cap", f"{self._max_clients} connections are open on {self.path}: each new one closes the idlest")
        oldest = min(idle, key=lambda c: c.idle_since or 0.0)
        self._clients.discard(oldest)
        oldest.closed = True
        oldest.writer.write(self._goodbye)
        oldest.writer.close()

    def _warn(self, what: str, message: str) -> None:
        now = time.monotonic()
        if now - self._logged.get(what, -LOG_AGAIN_S) >= LOG_AGAIN_S:
            self._logged[what] = now
            log.warning("%s", message)

    async def _serve(self, reader: asyncio.StreamReader, client: Client) -> None:
        try:
            await self._handler(reader, client)
        except ConnectionError:
            return
        finally:
            self._clients.discard(client)
            client.writer.close()
