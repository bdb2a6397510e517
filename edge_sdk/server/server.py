"""``edge-sdk serve``: the asyncio ingestion server.

Per connection: the HMAC hello handshake (nothing else is read before it succeeds),
then a read loop that decodes each frame, hands data messages to the
:class:`~edge_sdk.server.ingest.Ingestor` and acks each one once it is committed.  A
malformed message inside a well-formed frame gets an ERROR and the connection goes on;
a bad frame length closes the connection (the stream cannot be resynchronised).  At
most ``2 * window`` messages per connection wait for their commit; beyond that the
server stops reading, so a fast device is slowed by TCP instead of growing our memory.

Graceful shutdown (:meth:`EdgeServer.stop`, SIGINT/SIGTERM under :func:`serve`): stop
accepting, stop reading, wait for every submitted message to commit and its ack to be
sent, drain post-processing, save the index.  Nothing acknowledged can be lost at any
point anyway, because acks follow commits; shutdown only avoids needless resends.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from ..errors import AuthError, ProtocolError
from ..transport.auth import CredentialStore
from ..transport.base import Connection
from ..transport.framing import FramingError
from ..transport.handshake import server_handshake
from ..transport.protocol import (
    DATA_TYPES,
    ErrorCode,
    Message,
    MsgType,
    decode,
    error_code_for,
    error_message,
)
from ..transport.tcp import TcpServerTransport, server_ssl_context
from . import storage
from .http import HttpEndpoint
from .index import IndexSet
from .ingest import Ingestor, Outcome
from .post import PostProcessor
from .query import QueryService

log = logging.getLogger("edge_sdk.server")


@dataclass
class ServerConfig:
    """Everything ``serve`` needs; ``port=0`` / ``http_port=0`` pick ephemeral ports."""

    data_dir: Path
    credentials: Union[Path, str, CredentialStore]
    host: str = "127.0.0.1"
    port: int = 0
    http_port: Optional[int] = None
    tls_cert: Optional[str] = None
    tls_key: Optional[str] = None
    window: int = 64
    handshake_timeout: float = 10.0
    idle_timeout: float = 600.0
    send_timeout: float = 30.0
    max_connections: int = 1024
    max_errors_per_connection: int = 100_000
    batch_max: int = 512


@dataclass
class ServerStats:
    connections: int = 0
    active: int = 0
    auth_failures: int = 0
    handshake_failures: int = 0
    protocol_errors: int = 0
    framing_errors: int = 0
    messages: int = 0
    duplicates: int = 0
    invalid: int = 0
    storage_errors: int = 0
    by_type: dict = field(default_factory=dict)


class _Session:
    def __init__(self, conn: Connection, device: str, window: int) -> None:
        self.conn, self.device = conn, device
        self.slots = asyncio.Semaphore(2 * window)
        self.pending: set[asyncio.Task] = set()
        self.reader: Optional[asyncio.Task] = None
        self.errors = 0


class EdgeServer:
    """The server; ``await start()``, then ``await stop()`` (see module docstring)."""

    def __init__(self, config: ServerConfig) -> None:
        self.cfg = config
        self.data_dir = Path(config.data_dir)
        creds = config.credentials
        self.credentials = creds if isinstance(creds, CredentialStore) else CredentialStore.load(creds)
        ssl_ctx = server_ssl_context(config.tls_cert, config.tls_key) if config.tls_cert else None
        self.transport = TcpServerTransport(config.host, config.port, ssl_ctx)
        self.stats = ServerStats()
        self.index = IndexSet(self.data_dir / "index")
        self.post = PostProcessor(self.data_dir, self.index)
        self.ingestor = Ingestor(self.data_dir, self.post, config.batch_max)
        self.post.writer = self.ingestor.write
        self.http: Optional[HttpEndpoint] = None
        self._sessions: dict[str, _Session] = {}
        self._handlers: set[asyncio.Task] = set()
        self._handshaking: set[asyncio.Task] = set()  # handlers still in the hello (cancelled at shutdown)
        self._closing = False
        self._stopped = asyncio.Event()

    @property
    def address(self) -> tuple[str, int]:
        return self.transport.address()

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        storage.init_db(self.data_dir / "edge.db")
        self.post.recover()
        self.post.start()
        self.ingestor.start()
        await self.transport.start(self._handle)
        if self.cfg.http_port is not None:
            self.http = HttpEndpoint(
                QueryService(self.data_dir, self.index), self.status, self.cfg.host, self.cfg.http_port
            )
            await self.http.start()
        log.info("serving on %s:%d (data in %s)", *self.address, self.data_dir)

    def status(self) -> dict:
        return {
            "stats": dict(self.stats.__dict__),
            "devices_connected": sorted(self._sessions),
            "decoded": self.post.decoded,
            "indexed": self.post.indexed,
        }

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    async def stop(self, timeout: float = 30.0) -> None:
        """Graceful shutdown: nothing submitted is left unacknowledged or uncommitted."""
        if self._closing:
            await self._stopped.wait()
            return
        self._closing = True
        await self.transport.stop()
        if self.http is not None:
            await self.http.stop()
        for s in list(self._sessions.values()):
            if s.reader is not None:
                s.reader.cancel()
        for task in list(self._handshaking):  # nothing of theirs was accepted yet
            task.cancel()
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=timeout)
        loop = asyncio.get_running_loop()
        # The post-processor writes through the ingestor: stop it first, then the writer.
        await loop.run_in_executor(None, self.post.stop, timeout)
        await loop.run_in_executor(None, self.ingestor.stop, timeout)
        self._stopped.set()

    # ------------------------------------------------------------------ connections

    async def _handle(self, conn: Connection) -> None:
        task = asyncio.current_task()
        self._handlers.add(task)
        try:
            await self._handle_inner(conn)
        finally:
            self._handlers.discard(task)

    async def _handle_inner(self, conn: Connection) -> None:
        self.stats.connections += 1
        if self._closing:
            await self._send(
                conn, error_message(ErrorCode.SHUTTING_DOWN, "server is shutting down; retry later")
            )
            return
        if self.stats.active >= self.cfg.max_connections:
            await self._send(
                conn,
                error_message(
                    ErrorCode.BUSY,
                    f"server at its limit of {self.cfg.max_connections} connections; retry later",
                ),
            )
            return
        self.stats.active += 1
        try:
            session = await self._authenticate(conn)
            if session is not None:
                await self._run_session(session)
        finally:
            self.stats.active -= 1

    async def _authenticate(self, conn: Connection) -> Optional[_Session]:
        task = asyncio.current_task()
        self._handshaking.add(task)
        try:
            granted = await asyncio.wait_for(
                server_handshake(conn, self.credentials, self.cfg.handshake_timeout, self.cfg.window),
                2 * self.cfg.handshake_timeout,
            )
        except AuthError as exc:  # before OSError: AuthError is a PermissionError
            self.stats.auth_failures += 1
            log.warning("%s: %s", conn.peer, exc)
            return None
        except (
            ProtocolError,
            ConnectionError,
            OSError,
            asyncio.TimeoutError,
            asyncio.IncompleteReadError,
        ) as exc:
            self.stats.handshake_failures += 1
            log.info("%s: handshake failed: %r", conn.peer, exc)
            return None
        finally:
            self._handshaking.discard(task)
        old = self._sessions.get(granted.device)
        if old is not None:  # a device reconnected (e.g. after a restart): the old stream is stale
            old.conn.abort()
        session = _Session(conn, granted.device, self.cfg.window)
        self._sessions[granted.device] = session
        return session

    async def _run_session(self, s: _Session) -> None:
        s.reader = asyncio.ensure_future(self._read_loop(s))
        try:
            await s.reader
        except asyncio.CancelledError:
            if not self._closing:
                raise
        finally:
            if s.pending:  # every message already submitted still gets its ack (graceful close)
                await asyncio.wait(list(s.pending), timeout=self.cfg.send_timeout)
            if self._sessions.get(s.device) is s:
                del self._sessions[s.device]

    async def _read_loop(self, s: _Session) -> None:
        while not self._closing:
            try:
                payload = await s.conn.recv_raw(self.cfg.idle_timeout)
            except FramingError as exc:
                self.stats.framing_errors += 1
                await self._send(s.conn, error_message(ErrorCode.TOO_LARGE, str(exc), device=s.device))
                return
            except (ConnectionError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                return
            if not await self._dispatch(s, payload):
                return

    async def _dispatch(self, s: _Session, payload: bytes) -> bool:
        """Handle one payload; False closes the connection."""
        try:
            msg = decode(payload)
        except ProtocolError as exc:
            return await self._reject(s, error_message(error_code_for(exc), str(exc), device=s.device))
        if msg.device != s.device:
            return await self._reject(
                s,
                error_message(
                    ErrorCode.NOT_AUTHENTICATED,
                    f"authenticated as {s.device!r}, not {msg.device!r}",
                    device=s.device,
                    seq=msg.seq,
                ),
            )
        if msg.type not in DATA_TYPES:
            return await self._reject(
                s,
                error_message(
                    ErrorCode.INVALID,
                    f"{msg.type.name} is not accepted after authentication",
                    device=s.device,
                    seq=msg.seq,
                ),
            )
        await s.slots.acquire()
        task = asyncio.ensure_future(self._ack_when_durable(s, msg, self.ingestor.submit(msg)))
        s.pending.add(task)
        task.add_done_callback(s.pending.discard)
        return True

    async def _reject(self, s: _Session, reply: Message) -> bool:
        self.stats.protocol_errors += 1
        s.errors += 1
        await self._send(s.conn, reply)
        return s.errors < self.cfg.max_errors_per_connection

    async def _ack_when_durable(self, s: _Session, msg: Message, fut: asyncio.Future) -> None:
        try:
            outcome: Outcome = await fut
        finally:
            s.slots.release()
        self._count(msg, outcome)
        if outcome.status in ("ok", "dup"):
            reply = Message(MsgType.ACK, s.device, msg.seq, msg.frame, body={"dup": outcome.status == "dup"})
        elif outcome.status == "invalid":
            reply = error_message(ErrorCode.INVALID, outcome.text, device=s.device, seq=msg.seq)
        else:
            reply = error_message(ErrorCode.BUSY, outcome.text, device=s.device, seq=msg.seq)
        await self._send(s.conn, reply)

    def _count(self, msg: Message, outcome: Outcome) -> None:
        st = self.stats
        st.messages += 1
        st.duplicates += outcome.status == "dup"
        st.invalid += outcome.status == "invalid"
        st.storage_errors += outcome.status == "error"
        st.by_type[msg.type.name] = st.by_type.get(msg.type.name, 0) + 1

    async def _send(self, conn: Connection, msg: Message) -> None:
        """Send, but never wait forever on a peer that stopped reading."""
        try:
            await asyncio.wait_for(conn.send(msg), self.cfg.send_timeout)
        except (ConnectionError, OSError, asyncio.TimeoutError):
            conn.abort()
