"""The device client: spool first, then send with acknowledgements and retransmission.

Every message is written durably to the :class:`~edge_sdk.client.spool.Spool` before
:meth:`DeviceClient.send_batch` returns, and leaves the spool only when the server
acknowledges it (the server acks only after the message is durable on its side).  A
background task keeps one authenticated connection open, sends spooled messages in
sequence order with at most ``window`` unacknowledged in flight, and on any failure
(connection drop, ack timeout, retryable ERROR, server restart) reconnects with
exponential backoff and resends everything still unacknowledged.  Duplicates this may
cause are removed by the server, which deduplicates on (device, seq).

Backpressure: the spool's byte bound is the only buffer.  With ``policy="block"`` (the
default) a full spool makes ``send_batch`` wait for acknowledgements (up to
``block_timeout``, then :class:`SpoolFullError`); ``"reject"`` raises at once;
``"drop_oldest"`` discards the oldest unacknowledged segment and counts the loss.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Optional

from ..errors import AuthError, EdgeSDKError, ProtocolError
from ..transport.auth import DeviceCredentials
from ..transport.base import ClientTransport, Connection
from ..transport.handshake import Session, client_handshake
from ..transport.protocol import Message, MsgType, encode
from .spool import Spool, SpoolFullError

log = logging.getLogger("edge_sdk.client")
CLIENT_POLICIES = ("block", "reject", "drop_oldest")


class ClientClosedError(RuntimeError, EdgeSDKError):
    """The client was closed, or stopped for good after the server refused its credentials."""


class _Reconnect(Exception):
    """Internal: drop this connection and start again (after backoff)."""


@dataclass
class ClientStats:
    """Counters for status displays and tests."""

    connects: int = 0
    sent: int = 0
    retransmits: int = 0
    acked: int = 0
    duplicates: int = 0
    rejected: int = 0
    bytes_spooled: int = 0
    last_error: str = ""
    ack_latency_s: deque = field(default_factory=lambda: deque(maxlen=1024))
    rejections: deque = field(default_factory=lambda: deque(maxlen=64))


@dataclass(frozen=True)
class Outgoing:
    """A message to send; the client assigns device id and sequence number."""

    type: MsgType
    body: dict
    frame: int = 0
    ts: int = 0


class DeviceClient:
    """Reliable, authenticated sender for one device (see module docstring)."""

    def __init__(
        self,
        transport: ClientTransport,
        credentials: DeviceCredentials,
        spool_dir: str,
        *,
        window: int = 64,
        spool_bytes: int = 64 << 20,
        segment_bytes: int = 1 << 20,
        policy: str = "block",
        block_timeout: float = 30.0,
        ack_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        backoff: tuple[float, float] = (0.05, 5.0),
        fsync: bool = True,
        on_ack: Optional[Callable[[int, float], None]] = None,
    ) -> None:
        if policy not in CLIENT_POLICIES:
            raise ValueError(f"client policy: expected one of {CLIENT_POLICIES}, found {policy!r}")
        self.transport, self.creds = transport, credentials
        self.window, self.policy, self.block_timeout = window, policy, block_timeout
        self.ack_timeout, self.connect_timeout, self.backoff = ack_timeout, connect_timeout, backoff
        self.on_ack = on_ack
        self.stats = ClientStats()
        self.spool = Spool(
            spool_dir,
            spool_bytes,
            segment_bytes,
            "drop_oldest" if policy == "drop_oldest" else "reject",
            fsync,
        )
        self._queue: deque[int] = deque()
        self._inflight: dict[int, float] = {}
        self._max_sent_before = -1  # highest seq sent on an earlier connection (retransmit accounting)
        self._max_sent = -1
        self._wakeup = asyncio.Event()
        self._slot = asyncio.Event()
        self._progress = asyncio.Event()  # any ack: space may be free, the spool may be empty
        self._connected = asyncio.Event()
        self._fatal: Optional[BaseException] = None
        self._task: Optional[asyncio.Task] = None
        self._closed = False

    @property
    def device(self) -> str:
        return self.creds.device

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def pending(self) -> int:
        """Messages spooled but not yet acknowledged (the status 'queue depth')."""
        return len(self.spool)

    def inflight(self) -> int:
        return len(self._inflight)

    def start(self) -> None:
        """Start the background connection task (call from a running event loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"edge-client-{self.device}"
            )

    def new_frame_id(self) -> int:
        """A frame id unique for this device across restarts (drawn from the seq space)."""
        return self.spool.next_seq()

    # ------------------------------------------------------------------ sending

    async def send(self, mtype: MsgType, body: dict, *, frame: int = 0, ts: int = 0) -> int:
        return (await self.send_batch([Outgoing(mtype, body, frame, ts)]))[0]

    async def send_batch(self, items: list[Outgoing]) -> list[int]:
        """Spool ``items`` durably (one fsync) and queue them; returns their seqs."""
        self._check_usable()
        records = []
        for item in items:
            seq = self.spool.next_seq()
            records.append(
                (seq, encode(Message(item.type, self.device, seq, item.frame, item.ts, item.body)))
            )
        deadline = time.monotonic() + self.block_timeout
        while True:
            try:
                await asyncio.get_running_loop().run_in_executor(None, self.spool.put, records)
                break
            except SpoolFullError:
                if self.policy != "block" or time.monotonic() >= deadline:
                    raise
                await self._wait_progress(deadline - time.monotonic())
                self._check_usable()
        seqs = [s for s, _ in records]
        self.stats.bytes_spooled += sum(len(p) for _, p in records)
        self._queue.extend(seqs)
        self._wakeup.set()
        return seqs

    async def _wait_progress(self, timeout: float) -> None:
        self._progress.clear()
        try:
            await asyncio.wait_for(self._progress.wait(), max(0.0, timeout))
        except asyncio.TimeoutError:
            pass

    def _check_usable(self) -> None:
        if self._fatal is not None:
            raise self._fatal
        if self._closed:
            raise ClientClosedError("client is closed")

    async def wait_connected(self, timeout: float) -> None:
        """Wait for an authenticated connection; raise AuthError or ConnectionError."""
        self.start()
        deadline = time.monotonic() + timeout
        while not self._connected.is_set():
            self._check_usable()
            if time.monotonic() >= deadline:
                raise ConnectionError(
                    f"server unreachable at {self.transport.describe()} after {timeout:.1f} s: {self.stats.last_error}"
                )
            await self._wait_progress(min(0.05, deadline - time.monotonic()))
        self._check_usable()

    async def flush(self, timeout: float) -> bool:
        """Wait until every spooled message is acknowledged; False on timeout."""
        deadline = time.monotonic() + timeout
        while len(self.spool):
            self._check_usable()
            if time.monotonic() >= deadline:
                return False
            await self._wait_progress(min(0.1, deadline - time.monotonic()))
        return True

    async def close(self, flush_timeout: float = 0.0) -> bool:
        """Optionally flush, then stop; unacknowledged messages stay in the spool for next time."""
        drained = True
        if flush_timeout > 0 and self._fatal is None and not self._closed:
            drained = await self.flush(flush_timeout)
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.spool.close()
        return drained

    # ------------------------------------------------------------------ connection loop

    async def _run(self) -> None:
        delay = self.backoff[0]
        while not self._closed:
            try:
                conn = await self.transport.connect(self.connect_timeout)
            except (OSError, asyncio.TimeoutError) as exc:
                self.stats.last_error = f"connect to {self.transport.describe()} failed: {exc!r}"
                await self._sleep_backoff(delay)
                delay = min(delay * 2, self.backoff[1])
                continue
            try:
                session = await client_handshake(conn, self.creds, self.connect_timeout)
                self.stats.connects += 1
                delay = self.backoff[0]
                self._connected.set()
                self._progress.set()
                await self._pump(conn, session)
            except AuthError as exc:
                # Wrong credentials never fix themselves: stop and let send()/wait_connected() raise.
                self._fatal = exc
                self._progress.set()
                log.error("%s", exc)
                return
            except (OSError, asyncio.TimeoutError, ProtocolError, _Reconnect) as exc:
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.info("connection to %s lost: %s", self.transport.describe(), self.stats.last_error)
            except Exception as exc:  # a bug must not silently stop delivery: log it, reconnect, resend
                self.stats.last_error = f"unexpected {type(exc).__name__}: {exc}"
                log.exception("client connection loop failed; reconnecting")
            finally:
                self._connected.clear()
                self._inflight.clear()
                self._max_sent_before = self._max_sent
                await conn.close()
            await self._sleep_backoff(delay)
            delay = min(delay * 2, self.backoff[1])

    async def _sleep_backoff(self, delay: float) -> None:
        self._progress.set()  # let wait_connected() look at last_error
        await asyncio.sleep(delay)

    async def _pump(self, conn: Connection, session: Session) -> None:
        self._queue = deque(self.spool.pending())  # resend everything unacknowledged, oldest first
        tasks = [
            asyncio.ensure_future(self._sender(conn, min(self.window, session.window))),
            asyncio.ensure_future(self._receiver(conn)),
            asyncio.ensure_future(self._watchdog()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                t.result()
            raise _Reconnect("connection tasks ended")
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _sender(self, conn: Connection, window: int) -> None:
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            while len(self._inflight) >= window:
                self._slot.clear()
                await self._slot.wait()
            seq = self._queue.popleft()
            payload = None if seq in self._inflight else self.spool.read(seq)
            if payload is None:
                continue  # already in flight, or acknowledged meanwhile
            self._inflight[seq] = time.monotonic()
            if seq <= self._max_sent_before:
                self.stats.retransmits += 1
            self._max_sent = max(self._max_sent, seq)
            await conn.send_raw(payload)
            self.stats.sent += 1

    async def _receiver(self, conn: Connection) -> None:
        while True:
            msg = await conn.recv()
            if msg.type == MsgType.ACK:
                self._on_ack(msg.seq, bool(msg.body.get("dup")))
            elif msg.type == MsgType.ERROR:
                self._on_error(msg)

    async def _watchdog(self) -> None:
        # A separate task, because cancelling a read in the middle of a frame would desync the stream.
        while True:
            await asyncio.sleep(min(1.0, self.ack_timeout / 4))
            if self._inflight and time.monotonic() - next(iter(self._inflight.values())) > self.ack_timeout:
                raise _Reconnect(f"no ack within {self.ack_timeout} s")

    def _on_ack(self, seq: int, dup: bool) -> None:
        sent_at = self._inflight.pop(seq, None)
        if self.spool.ack(seq):
            self.stats.acked += 1
            self.stats.duplicates += dup
            if sent_at is not None:
                latency = time.monotonic() - sent_at
                self.stats.ack_latency_s.append(latency)
                if self.on_ack is not None:
                    self.on_ack(seq, latency)
        self._slot.set()
        self._progress.set()

    def _on_error(self, msg: Message) -> None:
        text = f"server error {msg.body['code']} for seq {msg.seq}: {msg.body['msg']}"
        if msg.body.get("retry") or msg.seq not in self._inflight:
            raise _Reconnect(text)
        # The server will never accept this message: drop it from the spool, loudly.
        log.warning("message rejected: %s", text)
        self._inflight.pop(msg.seq, None)
        self.spool.ack(msg.seq)
        self.stats.rejected += 1
        self.stats.rejections.append((msg.seq, msg.body["code"], msg.body["msg"]))
        self._slot.set()
        self._progress.set()
