"""A minimal authenticated sender without a spool: for load tests, fuzzing and probes.

It speaks exactly protocol v1 over TCP but keeps nothing on disk, so it is *not* a
reliable client (use :class:`edge_sdk.client.DeviceClient` on devices).  The benchmark
uses it to measure the server, not the device's SD card.
"""

from __future__ import annotations

import asyncio
import time
from typing import Optional

from .auth import DeviceCredentials
from .handshake import Session, client_handshake
from .protocol import Message, MsgType
from .tcp import TcpClientTransport, TcpConnection


class RawDevice:
    """Pipelined sender: ``send()`` returns at once, ``acks`` maps seq -> latency (s)."""

    def __init__(self, host: str, port: int, creds: DeviceCredentials, ssl_context=None) -> None:
        self.transport = TcpClientTransport(host, port, ssl_context)
        self.creds = creds
        self.conn: Optional[TcpConnection] = None
        self.session: Optional[Session] = None
        self.sent_at: dict[int, float] = {}
        self.acks: dict[int, float] = {}
        self.errors: list[Message] = []
        self.replies = 0  # every message received, duplicates of a seq included
        self._reader: Optional[asyncio.Task] = None
        self._ack_event = asyncio.Event()

    async def connect(self, timeout: float = 10.0) -> RawDevice:
        self.conn = await self.transport.connect(timeout)
        self.session = await client_handshake(self.conn, self.creds, timeout)
        self._reader = asyncio.ensure_future(self._read())
        return self

    async def _read(self) -> None:
        try:
            while True:
                msg = await self.conn.recv()
                self.replies += 1
                if msg.type == MsgType.ACK:
                    sent = self.sent_at.pop(msg.seq, None)
                    self.acks[msg.seq] = time.perf_counter() - sent if sent is not None else 0.0
                else:
                    self.errors.append(msg)
                self._ack_event.set()
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            self._ack_event.set()

    async def send(self, mtype: MsgType, body: dict, seq: int, frame: int = 0, ts: int = 0) -> None:
        self.sent_at[seq] = time.perf_counter()
        await self.conn.send(Message(mtype, self.creds.device, seq, frame, ts, body))

    def outstanding(self) -> int:
        return len(self.sent_at)

    async def wait_outstanding_below(self, n: int, timeout: float) -> bool:
        """Wait until fewer than ``n`` messages await an ack (False on timeout or EOF)."""
        deadline = time.monotonic() + timeout
        while len(self.sent_at) >= n:
            if self._reader.done() or time.monotonic() > deadline:
                return False
            self._ack_event.clear()
            try:
                await asyncio.wait_for(self._ack_event.wait(), max(0.001, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                return False
        return True

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self.conn is not None:
            await self.conn.close()
