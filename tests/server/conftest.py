"""Fixtures for server tests: credentials, a loopback server, bounded asyncio runs.

Every test is bounded: a SIGALRM fires if one runs past its budget.  Servers bind
127.0.0.1 on ephemeral ports only.
"""

from __future__ import annotations

import asyncio
import signal

import numpy as np
import pytest

from edge_sdk.client import Outgoing
from edge_sdk.server.run import BackgroundServer
from edge_sdk.server.server import ServerConfig
from edge_sdk.transport.auth import CredentialStore
from edge_sdk.transport.protocol import MsgType

TEST_BUDGET_S = 90


@pytest.fixture(autouse=True)
def _deadline():
    def boom(signum, frame):
        raise TimeoutError(f"test exceeded {TEST_BUDGET_S} s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.setitimer(signal.ITIMER_REAL, TEST_BUDGET_S)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture
def store():
    s = CredentialStore({})
    s.creds = {d: s.add_device(d) for d in ("cam1", "cam2", "fuzzer")}
    return s


@pytest.fixture
def server(tmp_path, store):
    bs = BackgroundServer(ServerConfig(tmp_path / "srv", store, http_port=0, handshake_timeout=3.0)).start()
    yield bs
    bs.stop()


def frame_items(frame_id, rng, w=64, h=48, patch=16, with_descriptor=True):
    """The messages of one compress-mode frame (raw codec) plus a descriptor."""
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    rows, cols = -(-h // patch), -(-w // patch)
    items = [
        Outgoing(
            MsgType.FRAME_BEGIN,
            {"w": w, "h": h, "c": 3, "patch": patch, "n": rows * cols, "codec": "raw"},
            frame_id,
            1,
        )
    ]
    for i in range(rows * cols):
        r, c = divmod(i, cols)
        tile = np.zeros((patch, patch, 3), np.uint8)
        part = img[r * patch : (r + 1) * patch, c * patch : (c + 1) * patch]
        tile[: part.shape[0], : part.shape[1]] = part
        items.append(Outgoing(MsgType.LATENT_PATCH, {"i": i, "p": tile.tobytes()}, frame_id, 1))
    items.append(Outgoing(MsgType.FRAME_END, {"n": rows * cols}, frame_id, 1))
    if with_descriptor:
        from edge_sdk.transport.descriptor import encode_descriptor

        items.append(
            Outgoing(MsgType.DESCRIPTOR, {"vec": encode_descriptor(rng.normal(size=32), "f16")}, frame_id, 1)
        )
    return img, items
