"""Length-prefixed framing and the streaming unpacker."""

from __future__ import annotations

import asyncio
import struct

import pytest

from edge_sdk.errors import ProtocolError
from edge_sdk.transport import limits
from edge_sdk.transport.framing import (
    FrameReader,
    FramingError,
    MessageStream,
    frame,
    frame_message,
    read_frame,
)
from edge_sdk.transport.protocol import Message, MsgType


def msgs(n):
    return [
        Message(MsgType.LATENT_PATCH, "cam1", i, 1, 2, {"i": i % 4096, "p": bytes([i % 256]) * (i % 50)})
        for i in range(n)
    ]


def test_byte_by_byte_feed_reassembles_every_message():
    stream = MessageStream()
    want = msgs(20)
    got = []
    for byte in b"".join(frame_message(m) for m in want):
        stream.feed(bytes([byte]))
        got.extend(stream.messages())
    assert got == want
    assert stream.buffered() == 0


def test_oversized_prefix_raises_before_buffering_payload():
    reader = FrameReader()
    reader.feed(struct.pack(">I", limits.MAX_MESSAGE + 1))
    with pytest.raises(FramingError, match=r"expected 1..1048576, found 1048577"):
        list(reader)
    assert reader.buffered() == 4  # nothing of the announced payload was allocated


def test_zero_length_frame_is_malformed():
    reader = FrameReader()
    reader.feed(b"\0\0\0\0")
    with pytest.raises(FramingError):
        list(reader)


def test_frame_refuses_oversized_payload():
    with pytest.raises(ProtocolError, match="frame too large"):
        frame(b"x" * 11, max_len=10)


def test_bad_message_in_good_frame_keeps_stream_in_sync():
    stream = MessageStream()
    good = msgs(2)
    stream.feed(frame_message(good[0]) + frame(b"\xc1") + frame_message(good[1]))
    it = stream.messages()
    assert next(it) == good[0]
    with pytest.raises(ProtocolError):
        next(it)
    assert list(stream.messages()) == [good[1]]


def test_async_read_frame_and_eof():
    async def go():
        reader = asyncio.StreamReader()
        reader.feed_data(frame(b"abc") + struct.pack(">I", 5) + b"ab")
        reader.feed_eof()
        assert await read_frame(reader) == b"abc"
        with pytest.raises(asyncio.IncompleteReadError):
            await read_frame(reader)

    asyncio.run(asyncio.wait_for(go(), 10))
