"""asyncio TCP transport (optionally TLS via :mod:`ssl`) for protocol v1."""

from __future__ import annotations

import asyncio
import ssl
from typing import Optional

from . import limits
from .base import ClientTransport, Connection, Handler, ServerTransport
from .framing import frame, read_frame
from .protocol import Message, decode, encode

#: Bytes queued in the socket writer before ``send`` waits (backpressure toward the app).
WRITE_HIGH_WATER = 256 * 1024


class TcpConnection(Connection):
    """One TCP (or TLS) stream carrying length-prefixed protocol messages."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        max_message: int = limits.MAX_MESSAGE,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._max = max_message
        # One writer at a time: concurrent drain() calls are not safe on every Python we support.
        self._lock = asyncio.Lock()
        writer.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)

    async def send(self, msg: Message) -> None:
        await self.send_raw(encode(msg))

    async def send_raw(self, payload: bytes) -> None:
        """Send an already-encoded payload (the client spool stores encoded bytes)."""
        data = frame(payload, self._max)
        async with self._lock:
            if self._writer.is_closing():
                raise ConnectionResetError(f"connection to {self.peer} is closed")
            self._writer.write(data)
            await self._writer.drain()

    async def recv_raw(self, timeout: Optional[float] = None) -> bytes:
        """Read one framed payload (FramingError on a bad prefix, ConnectionError at EOF)."""
        try:
            return await asyncio.wait_for(read_frame(self._reader, self._max), timeout)
        except asyncio.IncompleteReadError:
            raise ConnectionResetError(f"connection to {self.peer} closed") from None

    async def recv(self, timeout: Optional[float] = None) -> Message:
        return decode(await self.recv_raw(timeout))

    async def close(self) -> None:
        if self._writer.is_closing():
            return
        self._writer.close()
        try:
            await asyncio.wait_for(self._writer.wait_closed(), 2.0)
        except (OSError, asyncio.TimeoutError, ssl.SSLError):
            pass  # the peer vanished first; nothing left to flush

    def abort(self) -> None:
        """Drop the connection at once (no flushing), e.g. for a protocol violation."""
        self._writer.transport.abort()

    @property
    def closed(self) -> bool:
        return self._writer.is_closing()


class TcpClientTransport(ClientTransport):
    """Connects to ``host:port``; pass an ``ssl.SSLContext`` for TLS."""

    def __init__(
        self,
        host: str,
        port: int,
        ssl_context: Optional[ssl.SSLContext] = None,
        server_hostname: Optional[str] = None,
    ) -> None:
        self.host, self.port = host, port
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname

    async def connect(self, timeout: float) -> TcpConnection:
        kwargs = {}
        if self.ssl_context is not None:
            kwargs = {"ssl": self.ssl_context, "server_hostname": self.server_hostname or self.host}
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, limit=2**16, **kwargs), timeout
        )
        return TcpConnection(reader, writer)

    def describe(self) -> str:
        scheme = "tls" if self.ssl_context else "tcp"
        return f"{scheme}://{self.host}:{self.port}"


class TcpServerTransport(ServerTransport):
    """Listens on ``host:port`` (port 0 picks an ephemeral port; see :meth:`address`)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: Optional[ssl.SSLContext] = None,
        backlog: int = 256,
    ) -> None:
        self.host, self.port = host, port
        self.ssl_context = ssl_context
        self.backlog = backlog
        self._server: Optional[asyncio.AbstractServer] = None

    async def start(self, handler: Handler) -> None:
        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            conn = TcpConnection(reader, writer)
            try:
                await handler(conn)
            finally:
                await conn.close()

        self._server = await asyncio.start_server(
            on_connect,
            self.host,
            self.port,
            ssl=self.ssl_context,
            backlog=self.backlog,
            limit=2**16,
            reuse_address=True,
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            # From Python 3.12 on, wait_closed() also waits for every open connection;
            # the handlers close those themselves, so a short bound is enough here.
            try:
                await asyncio.wait_for(self._server.wait_closed(), 5.0)
            except asyncio.TimeoutError:
                pass

    def address(self) -> tuple[str, int]:
        if self._server is None or not self._server.sockets:
            return (self.host, self.port)
        host, port = self._server.sockets[0].getsockname()[:2]
        return (host, port)


def server_ssl_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    """TLS for the server side (TLS 1.2+)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile, keyfile)
    return ctx


def client_ssl_context(cafile: Optional[str] = None) -> ssl.SSLContext:
    """TLS for a device: verifies the server against ``cafile`` (or the system store)."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx
