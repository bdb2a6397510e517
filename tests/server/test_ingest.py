"""Ingestion through a live server: acks after commit, dedupe, validation, isolation."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time

import numpy as np
from edge_server_helpers import run

from edge_sdk.transport.descriptor import encode_descriptor
from edge_sdk.transport.protocol import ErrorCode, Message, MsgType
from edge_sdk.transport.rawclient import RawDevice

BEGIN = {"w": 32, "h": 32, "c": 3, "patch": 16, "n": 4, "codec": "raw"}


def db(server):
    conn = sqlite3.connect(server.server.data_dir / "edge.db")
    conn.row_factory = sqlite3.Row
    return conn


async def device(server, store, name="cam1"):
    return await RawDevice(*server.address, store.creds[name]).connect(5)


async def wait_errors(dev, n_errors, timeout=10):
    """Wait for ``n_errors`` ERROR replies and for everything else to be acked."""
    deadline = time.monotonic() + timeout
    while len(dev.errors) < n_errors or dev.outstanding() > n_errors:
        if time.monotonic() > deadline:
            raise TimeoutError(f"errors={len(dev.errors)} outstanding={dev.outstanding()}")
        await asyncio.sleep(0.02)


def test_ack_means_committed(server, store):
    seen_at_ack = []

    async def go():
        dev = await device(server, store)
        for seq in range(1, 21):
            await dev.send(MsgType.CLASSIFICATION, {"cls": [1], "score": [0.5], "model": "m"}, seq, frame=seq)
        assert await dev.wait_outstanding_below(1, 10)
        # Every acked seq must already be visible to an independent reader.
        with db(server) as conn:
            seen_at_ack.extend(r[0] for r in conn.execute("SELECT seq FROM seen WHERE device='cam1'"))
        await dev.close()
        return sorted(dev.acks)

    acked = run(go())
    assert acked == list(range(1, 21))
    assert set(acked) <= set(seen_at_ack)


def test_duplicate_seq_is_acked_but_applied_once(server, store):
    async def go():
        dev = await device(server, store)
        body = {"cls": [3], "score": [0.9], "model": "m"}
        await dev.send(MsgType.CLASSIFICATION, body, 5, frame=1)
        assert await dev.wait_outstanding_below(1, 10)
        await dev.send(
            MsgType.CLASSIFICATION, {"cls": [4], "score": [0.1], "model": "other"}, 5, frame=2
        )  # same seq
        assert await dev.wait_outstanding_below(1, 10)
        await dev.close()

    run(go())
    with db(server) as conn:
        assert conn.execute("SELECT count(*) FROM results").fetchone()[0] == 1
        assert conn.execute("SELECT model FROM results").fetchone()[0] == "m"
    assert server.server.stats.duplicates == 1


def test_same_frame_resent_under_new_seqs_lands_once(server, store):
    async def go():
        dev = await device(server, store)
        vec = encode_descriptor(np.arange(16.0), "i8")
        for base in (0, 100):  # a device that re-sent frame 9 after a crash
            await dev.send(MsgType.FRAME_BEGIN, BEGIN, base + 1, frame=9)
            for i in range(4):
                await dev.send(MsgType.LATENT_PATCH, {"i": i, "p": bytes(16 * 16 * 3)}, base + 2 + i, frame=9)
            await dev.send(MsgType.FRAME_END, {"n": 4}, base + 6, frame=9)
            await dev.send(MsgType.DESCRIPTOR, {"vec": vec}, base + 7, frame=9)
        assert await dev.wait_outstanding_below(1, 10)
        assert not dev.errors
        await dev.close()

    run(go())
    server.server.post.wait_idle(10)
    with db(server) as conn:
        assert conn.execute("SELECT count(*) FROM frames").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM patches").fetchone()[0] == 4
        assert conn.execute("SELECT count(*) FROM descriptors").fetchone()[0] == 1
    assert server.server.index.total() == 1


def test_semantically_invalid_messages_get_non_retryable_errors(server, store):
    async def go():
        dev = await device(server, store)
        await dev.send(MsgType.LATENT_PATCH, {"i": 0, "p": b"x"}, 1, frame=77)  # never begun
        await dev.send(MsgType.FRAME_BEGIN, BEGIN, 2, frame=5)
        await dev.send(MsgType.LATENT_PATCH, {"i": 4, "p": b"x"}, 3, frame=5)  # index out of range
        await dev.send(MsgType.FRAME_BEGIN, {**BEGIN, "w": 48, "n": 6}, 4, frame=5)  # geometry changed
        await dev.send(MsgType.DESCRIPTOR, {"vec": encode_descriptor(np.ones(12), "f16")}, 5, frame=5)  # fine
        await wait_errors(dev, 3)
        await dev.close()
        return dev

    dev = run(go())
    errors = {m.seq: m for m in dev.errors}
    assert set(errors) == {1, 3, 4}
    assert all(m.body["code"] == ErrorCode.INVALID and not m.body["retry"] for m in errors.values())
    assert "never begun" in errors[1].body["msg"] and "expected 0..3" in errors[3].body["msg"]
    assert set(dev.acks) == {2, 5}
    with db(server) as conn:  # the rejected ones left no trace, not even in the dedupe table
        assert sorted(r[0] for r in conn.execute("SELECT seq FROM seen")) == [2, 5]


def test_a_device_cannot_write_as_another(server, store):
    async def go():
        dev = await device(server, store, "cam1")
        await dev.conn.send(Message(MsgType.CLASSIFICATION, "cam2", 1, 1, body={"cls": [1], "score": [1.0]}))
        await dev.send(MsgType.HELLO, {"nonce": b"n" * 32}, 2)  # handshake types are refused after auth
        await wait_errors(dev, 2)
        await dev.close()
        return dev

    dev = run(go())
    codes = sorted(m.body["code"] for m in dev.errors)
    assert codes == [ErrorCode.NOT_AUTHENTICATED, ErrorCode.INVALID]
    with db(server) as conn:
        assert conn.execute("SELECT count(*) FROM seen").fetchone()[0] == 0


def test_thumbnails_are_stored_as_png(server, store):
    thumb = np.arange(8 * 8 * 3, dtype=np.uint8).reshape(8, 8, 3)

    async def go():
        dev = await device(server, store)
        await dev.send(
            MsgType.DESCRIPTOR, {"vec": encode_descriptor(np.ones(8), "bin"), "thumb": thumb}, 1, frame=4
        )
        assert await dev.wait_outstanding_below(1, 10)
        await dev.close()

    run(go())
    assert server.server.post.wait_idle(10)  # the file is written after the commit, from the stored bytes
    from PIL import Image

    path = server.server.data_dir / "thumbs" / "cam1" / "4.png"
    assert np.array_equal(np.asarray(Image.open(path)), thumb)


def test_missing_patch_is_concealed_then_fixed_by_a_late_patch(server, store):
    from PIL import Image

    img = np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    tiles = {
        i: img[(i // 2) * 16 : (i // 2 + 1) * 16, (i % 2) * 16 : (i % 2 + 1) * 16].tobytes() for i in range(4)
    }
    conn_db = lambda: db(server)  # noqa: E731

    async def send(dev, seqs_and_msgs):
        for seq, mtype, body in seqs_and_msgs:
            await dev.send(mtype, body, seq, frame=3)
        assert await dev.wait_outstanding_below(1, 10)

    async def go():
        dev = await device(server, store)
        await send(
            dev,
            [(1, MsgType.FRAME_BEGIN, BEGIN)]
            + [(2 + i, MsgType.LATENT_PATCH, {"i": i, "p": tiles[i]}) for i in (0, 1, 3)]
            + [(9, MsgType.FRAME_END, {"n": 3})],
        )
        assert server.server.post.wait_idle(10)
        with conn_db() as c:
            first = json.loads(c.execute("SELECT missing FROM frames").fetchone()[0])
        await send(dev, [(10, MsgType.LATENT_PATCH, {"i": 2, "p": tiles[2]})])  # arrives after FRAME_END
        assert server.server.post.wait_idle(10)
        await dev.close()
        return first

    first = run(go())
    assert first["missing"] == [2] and first["concealed"] == [2]
    with db(server) as c:
        row = c.execute("SELECT missing, png, version FROM frames").fetchone()
    assert json.loads(row[0])["missing"] == [] and row[2] == 2
    assert np.array_equal(np.asarray(Image.open(server.server.data_dir / row[1])), img)
