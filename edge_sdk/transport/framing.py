"""Length-prefixed framing: ``uint32 big-endian length || payload`` (docs/protocol.md).

The length is checked against the bound *before* any payload byte is buffered, so a
peer announcing a 4 GiB frame costs us four bytes, not four gigabytes.  After an
oversized or otherwise bad prefix the stream cannot be resynchronised: the caller must
close the connection.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator

from ..errors import ProtocolError
from . import limits
from .protocol import Message, decode, encode

HEADER = struct.Struct(">I")


class FramingError(ProtocolError):
    """The length prefix itself is bad: the byte stream is out of sync and must be closed."""


def frame(payload: bytes, max_len: int = limits.MAX_MESSAGE) -> bytes:
    """Prefix ``payload`` with its length (ProtocolError if over ``max_len``)."""
    if len(payload) > max_len:
        raise ProtocolError(f"frame too large: expected <= {max_len} bytes, found {len(payload)}")
    return HEADER.pack(len(payload)) + payload


def check_length(n: int, max_len: int = limits.MAX_MESSAGE) -> int:
    """Validate a decoded length prefix (0 is malformed: no empty message exists)."""
    if n == 0 or n > max_len:
        raise FramingError(f"frame length too large or zero: expected 1..{max_len}, found {n}")
    return n


def frame_message(msg: Message) -> bytes:
    """Encode and frame one message."""
    return frame(encode(msg))


class FrameReader:
    """Incremental splitter for a byte stream: ``feed()`` bytes, iterate whole payloads.

    Memory is bounded by ``max_len + 4`` plus whatever one ``feed`` call passes in:
    complete frames are consumed as soon as they are iterated.
    """

    def __init__(self, max_len: int = limits.MAX_MESSAGE) -> None:
        self.max_len = max_len
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        self._buf += data

    def buffered(self) -> int:
        return len(self._buf)

    def __iter__(self) -> Iterator[bytes]:
        while len(self._buf) >= HEADER.size:
            (n,) = HEADER.unpack_from(self._buf)
            check_length(n, self.max_len)
            if len(self._buf) < HEADER.size + n:
                return
            payload = bytes(self._buf[HEADER.size : HEADER.size + n])
            del self._buf[: HEADER.size + n]
            yield payload


class MessageStream(FrameReader):
    """The streaming unpacker: ``feed()`` raw socket bytes, iterate decoded messages.

    A bad *frame* (length prefix) raises and poisons the stream; a bad *message* inside a
    well-formed frame also raises, but the stream stays in sync and may be iterated on.
    """

    def messages(self) -> Iterator[Message]:
        for payload in self:
            yield decode(payload)


async def read_frame(reader: asyncio.StreamReader, max_len: int = limits.MAX_MESSAGE) -> bytes:
    """Read one payload from an asyncio stream (IncompleteReadError at EOF)."""
    header = await reader.readexactly(HEADER.size)
    (n,) = HEADER.unpack(header)
    return await reader.readexactly(check_length(n, max_len))
