"""The device client against a live server: drops, restarts, refusals, backpressure."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time

import numpy as np
import pytest
from edge_server_helpers import frame_items, run

from edge_sdk.client import DeviceClient, Outgoing, SpoolFullError
from edge_sdk.errors import AuthError
from edge_sdk.server.run import BackgroundServer
from edge_sdk.server.server import ServerConfig
from edge_sdk.transport.auth import DeviceCredentials
from edge_sdk.transport.protocol import MsgType
from edge_sdk.transport.tcp import TcpClientTransport


class CuttingProxy:
    """Loopback TCP proxy that aborts each connection after a random number of bytes upstream."""

    def __init__(self, upstream_port, lo=2_000, hi=40_000, seed=0):
        self.upstream_port, self.lo, self.hi = upstream_port, lo, hi
        self.rng = random.Random(seed)
        self.cuts = 0

    async def start(self):
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, creader, cwriter):
        budget = self.rng.randint(self.lo, self.hi)
        sreader, swriter = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def pipe(r, w, limited):
            nonlocal budget
            while True:
                data = await r.read(4096)
                if not data:
                    break
                if limited:
                    budget -= len(data)
                    if budget <= 0:  # cut mid-message: the worst case for framing and acks
                        w.write(data[: len(data) // 2])
                        self.cuts += 1
                        break
                w.write(data)
                await w.drain()

        up = asyncio.ensure_future(pipe(creader, swriter, True))
        down = asyncio.ensure_future(pipe(sreader, cwriter, False))
        await asyncio.wait([up, down], return_when=asyncio.FIRST_COMPLETED)
        for t in (up, down):
            t.cancel()
        for w in (cwriter, swriter):
            w.transport.abort()

    async def stop(self):
        self.server.close()


def db_counts(server):
    conn = sqlite3.connect(server.server.data_dir / "edge.db")
    try:
        frames = conn.execute("SELECT count(*), sum(n_patches) FROM frames").fetchone()
        patches = conn.execute("SELECT count(*) FROM patches").fetchone()[0]
        descs = conn.execute("SELECT count(*) FROM descriptors").fetchone()[0]
        return frames[0], frames[1], patches, descs
    finally:
        conn.close()


def test_dropped_connections_lose_nothing_and_duplicate_nothing(server, store, tmp_path):
    rng = np.random.default_rng(0)
    n_frames = 30

    async def go():
        proxy = await CuttingProxy(server.address[1]).start()
        client = DeviceClient(
            TcpClientTransport("127.0.0.1", proxy.port),
            store.creds["cam1"],
            str(tmp_path / "spool"),
            ack_timeout=2.0,
            backoff=(0.01, 0.2),
        )
        client.start()
        for _ in range(n_frames):
            await client.send_batch(frame_items(client.new_frame_id(), rng)[1])
        assert await client.flush(60), client.stats
        await client.close()
        await proxy.stop()
        return client.stats, proxy.cuts

    stats, cuts = run(go(), timeout=80)
    assert cuts >= 3 and stats.connects >= 3 and stats.retransmits > 0
    assert db_counts(server) == (n_frames, n_frames * 12, n_frames * 12, n_frames)
    assert (
        server.server.stats.messages - server.server.stats.duplicates == n_frames * 15
    )  # begin + 12 patches + end + descriptor


def test_unacked_messages_survive_a_client_restart(server, store, tmp_path):
    rng = np.random.default_rng(1)

    async def offline_then_online():
        # First "process": the server is unreachable, so everything stays in the spool.
        dead = DeviceClient(TcpClientTransport("127.0.0.1", 9), store.creds["cam1"], str(tmp_path / "spool"))
        dead.start()
        for _ in range(5):
            await dead.send_batch(frame_items(dead.new_frame_id(), rng)[1])
        assert dead.pending() == 5 * 15
        await dead.close()
        # Second "process": same spool directory, reachable server.
        alive = DeviceClient(
            TcpClientTransport(*server.address), store.creds["cam1"], str(tmp_path / "spool")
        )
        assert alive.pending() == 5 * 15
        alive.start()
        assert await alive.flush(20)
        await alive.close()

    run(offline_then_online())
    assert db_counts(server)[0] == 5


def test_server_restart_mid_stream(tmp_path, store):
    rng = np.random.default_rng(2)
    cfg = ServerConfig(tmp_path / "srv", store)
    first = BackgroundServer(cfg).start()
    port = first.address[1]

    async def go():
        client = DeviceClient(
            TcpClientTransport("127.0.0.1", port),
            store.creds["cam2"],
            str(tmp_path / "spool"),
            backoff=(0.02, 0.2),
        )
        client.start()
        for i in range(20):
            await client.send_batch(frame_items(client.new_frame_id(), rng)[1])
            if i == 8:
                await asyncio.get_running_loop().run_in_executor(None, first.stop)
                cfg.port = port  # the restarted server comes back on the address the device knows
                holder.append(BackgroundServer(cfg).start())
        assert await client.flush(30)
        await client.close()
        return client.stats

    holder = []
    stats = run(go(), timeout=60)
    second = holder[0]
    try:
        assert db_counts(second) == (20, 20 * 12, 20 * 12, 20)
        assert stats.connects >= 2
    finally:
        second.stop()


def test_wrong_credentials_are_a_clear_fatal_error(server, tmp_path):
    bad = DeviceCredentials("cam1", b"w" * 32)

    async def go():
        client = DeviceClient(TcpClientTransport(*server.address), bad, str(tmp_path / "spool"))
        with pytest.raises(AuthError, match="server rejected credentials for device 'cam1'"):
            await client.wait_connected(10)
        with pytest.raises(AuthError):
            await client.send(MsgType.CLASSIFICATION, {"cls": [1], "score": [1.0]}, frame=1)
        await client.close()

    run(go())
    deadline = time.monotonic() + 5  # the server counts the failure just after replying
    while server.server.stats.auth_failures < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.server.stats.auth_failures == 1
    assert db_counts(server)[0] == 0


def test_unreachable_server_is_a_clear_error(store, tmp_path):
    async def go():
        client = DeviceClient(
            TcpClientTransport("127.0.0.1", 9), store.creds["cam1"], str(tmp_path / "spool")
        )
        with pytest.raises(ConnectionError, match=r"server unreachable at tcp://127.0.0.1:9 after 0.5 s"):
            await client.wait_connected(0.5)
        await client.close()

    run(go())


def test_full_spool_blocks_then_raises(store, tmp_path):
    async def go():
        client = DeviceClient(
            TcpClientTransport("127.0.0.1", 9),
            store.creds["cam1"],
            str(tmp_path / "spool"),
            spool_bytes=64 << 10,
            segment_bytes=16 << 10,
            block_timeout=0.5,
        )
        client.start()
        big = Outgoing(MsgType.LATENT_PATCH, {"i": 0, "p": b"x" * 8000})
        t0 = time.monotonic()
        with pytest.raises(SpoolFullError):
            for _ in range(100):
                await client.send_batch([big])
        waited = time.monotonic() - t0
        assert client.spool.disk_bytes() <= 64 << 10
        await client.close()
        return waited

    assert run(go()) >= 0.5  # it blocked for block_timeout before giving up


def test_blocked_sender_resumes_when_acks_free_space(server, store, tmp_path):
    rng = np.random.default_rng(3)

    async def go():
        client = DeviceClient(
            TcpClientTransport(*server.address),
            store.creds["cam1"],
            str(tmp_path / "spool"),
            spool_bytes=64 << 10,
            segment_bytes=16 << 10,
            block_timeout=20,
        )
        client.start()
        for _ in range(40):  # ~40 * 10 KiB through a 64 KiB spool
            await client.send_batch(frame_items(client.new_frame_id(), rng, w=32, h=32)[1])
            assert client.spool.disk_bytes() <= 64 << 10
        assert await client.flush(20)
        await client.close()

    run(go(), timeout=60)
    assert db_counts(server)[0] == 40
