"""Helpers shared by the server tests (a uniquely named module, not conftest, so imports are unambiguous)."""

from __future__ import annotations

import asyncio

import numpy as np

from edge_sdk.client import Outgoing
from edge_sdk.transport.protocol import MsgType


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


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
