"""The transport interface: what the client and server need from a byte carrier.

TCP (:mod:`edge_sdk.transport.tcp`) is the only backend today.  A broker backend (MQTT
for fleets) would implement the same three classes: its ``Connection`` would publish to
``edge/<device>/up`` and read ``edge/<device>/down``, and its ``ServerTransport`` would
subscribe to ``edge/+/up`` and hand one ``Connection`` per device to the handler.  The
protocol layer (messages, auth, acks, dedupe) sits above and does not change.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable
from typing import Callable, Optional

from .protocol import Message


class Connection(abc.ABC):
    """A bidirectional, ordered, message-oriented channel to one peer."""

    #: Human-readable peer description for logs ("127.0.0.1:53211").
    peer: str = "?"

    @abc.abstractmethod
    async def send(self, msg: Message) -> None:
        """Send one message; waits while the peer is slow (backpressure)."""

    @abc.abstractmethod
    async def recv(self, timeout: Optional[float] = None) -> Message:
        """Receive one message.

        Raises ProtocolError for a malformed message (``fatal`` attribute True when the
        stream cannot continue), ConnectionError at EOF, asyncio.TimeoutError on timeout.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the channel (idempotent)."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Drop the channel at once, without flushing (a peer that misbehaves)."""

    @property
    @abc.abstractmethod
    def closed(self) -> bool:
        """True once either side closed."""


Handler = Callable[[Connection], Awaitable[None]]


class ClientTransport(abc.ABC):
    """Opens connections to a server."""

    @abc.abstractmethod
    async def connect(self, timeout: float) -> Connection:
        """Connect (ConnectionError / OSError / asyncio.TimeoutError on failure)."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Where this transport connects to, for error messages."""


class ServerTransport(abc.ABC):
    """Accepts connections and runs ``handler`` once per connection."""

    @abc.abstractmethod
    async def start(self, handler: Handler) -> None:
        """Start accepting (returns once listening)."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop accepting new connections (existing ones are the handler's business).

        Must return promptly even while handlers still run.
        """

    @abc.abstractmethod
    def address(self) -> tuple[str, int]:
        """The bound address (useful with port 0)."""
