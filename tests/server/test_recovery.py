"""Restart recovery and limits: undecoded frames, lost PNGs and index files, connection cap."""

from __future__ import annotations

import asyncio
import sqlite3

import numpy as np
from edge_server_helpers import frame_items, run

from edge_sdk.client import DeviceClient
from edge_sdk.server.run import BackgroundServer
from edge_sdk.server.server import ServerConfig
from edge_sdk.transport.framing import frame_message, read_frame
from edge_sdk.transport.protocol import ErrorCode, Message, MsgType, decode
from edge_sdk.transport.rawclient import RawDevice
from edge_sdk.transport.tcp import TcpClientTransport


def fill(server, store, tmp_path, n=5):
    rng = np.random.default_rng(4)

    async def go():
        client = DeviceClient(
            TcpClientTransport(*server.address), store.creds["cam1"], str(tmp_path / "spool")
        )
        client.start()
        for _ in range(n):
            await client.send_batch(frame_items(client.new_frame_id(), rng)[1])
        assert await client.flush(20)
        await client.close()

    run(go())
    assert server.server.post.wait_idle(20)


def test_restart_redoes_lost_derived_work(tmp_path, store):
    cfg = ServerConfig(tmp_path / "srv", store)
    first = BackgroundServer(cfg).start()
    fill(first, store, tmp_path)
    first.stop()
    data = tmp_path / "srv"
    conn = sqlite3.connect(data / "edge.db")
    frames = [r[0] for r in conn.execute("SELECT frame FROM frames ORDER BY frame")]
    # Simulate a crash before decoding frame 0, a power cut that lost frame 1's PNG, and a lost index.
    conn.execute("UPDATE frames SET decoded=0, png=NULL WHERE frame=?", (frames[0],))
    conn.commit()
    conn.close()
    (data / "frames" / "cam1" / f"{frames[0]}.png").unlink()
    (data / "frames" / "cam1" / f"{frames[1]}.png").unlink()
    for p in (data / "index").iterdir():
        p.unlink()
    second = BackgroundServer(cfg).start()
    try:
        assert second.server.post.wait_idle(20)
        assert second.server.index.total() == 5
        for f in frames[:2]:
            assert (data / "frames" / "cam1" / f"{f}.png").stat().st_size > 0
        conn = sqlite3.connect(data / "edge.db")
        assert conn.execute("SELECT count(*) FROM frames WHERE decoded=1").fetchone()[0] == 5
    finally:
        second.stop()


def test_corrupt_index_file_is_rebuilt_from_the_database(tmp_path, store):
    cfg = ServerConfig(tmp_path / "srv", store)
    first = BackgroundServer(cfg).start()
    fill(first, store, tmp_path, n=3)
    first.stop()
    for p in (tmp_path / "srv" / "index").glob("*.faiss"):
        p.write_bytes(b"garbage")
    second = BackgroundServer(cfg).start()
    try:
        assert second.server.post.wait_idle(20)
        assert second.server.index.total() == 3
    finally:
        second.stop()


def test_connection_limit_and_shutdown_replies(tmp_path, store):
    bs = BackgroundServer(ServerConfig(tmp_path / "srv", store, max_connections=1)).start()

    async def go():
        first = await RawDevice(*bs.address, store.creds["cam1"]).connect(5)
        reader, writer = await asyncio.open_connection(*bs.address)
        writer.write(frame_message(Message(MsgType.HELLO, "cam2", body={"nonce": b"n" * 32})))
        reply = decode(await asyncio.wait_for(read_frame(reader), 5))
        writer.close()
        await first.close()
        return reply

    reply = run(go())
    assert reply.type == MsgType.ERROR and reply.body["code"] == ErrorCode.BUSY and reply.body["retry"]
    bs.stop()


def test_graceful_stop_does_not_wait_for_silent_handshakes(tmp_path, store):
    import socket
    import time

    bs = BackgroundServer(ServerConfig(tmp_path / "srv", store)).start()
    silent = [socket.create_connection(bs.address, timeout=5) for _ in range(3)]  # connect, say nothing
    time.sleep(0.2)
    t0 = time.monotonic()
    bs.stop()
    assert time.monotonic() - t0 < 5.0  # not the 10 s handshake timeout
    for s in silent:
        s.close()
