"""A simulated device process: deterministic frames through the real client and spool.

Used by the fault-injection tests and handy for trying a server without a camera::

    python -m edge_sdk.client.simulate --host 127.0.0.1 --port 7878 \\
        --credentials cam1.json --spool /tmp/cam1-spool --frames 100

Frame ``k`` is a pseudo-random image seeded by ``k`` (see :func:`frame_image`), sent as
raw-codec patches plus an f16 descriptor, with frame id ``k``.  ``--progress`` records the
last frame handed to the spool, so a restarted process resumes after it (a frame spooled
but not yet recorded is sent again, which the server's frame-level idempotence absorbs).
``--acked`` appends every acknowledged sequence number, for checking that nothing
acknowledged was lost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import numpy as np

from ..transport.auth import DeviceCredentials
from ..transport.descriptor import encode_descriptor
from ..transport.protocol import MsgType
from ..transport.tcp import TcpClientTransport
from .client import DeviceClient, Outgoing

WIDTH, HEIGHT, PATCH = 64, 48, 16


def frame_image(k: int) -> np.ndarray:
    return np.random.default_rng(k).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)


def frame_messages(k: int) -> list[Outgoing]:
    """The messages of frame ``k``: FRAME_BEGIN, raw patches, FRAME_END, DESCRIPTOR."""
    img = frame_image(k)
    rows, cols = HEIGHT // PATCH, WIDTH // PATCH
    ts = 1_000_000_000 * (k + 1)
    items = [
        Outgoing(
            MsgType.FRAME_BEGIN,
            {"w": WIDTH, "h": HEIGHT, "c": 3, "patch": PATCH, "n": rows * cols, "codec": "raw"},
            k,
            ts,
        )
    ]
    for i in range(rows * cols):
        r, c = divmod(i, cols)
        tile = img[r * PATCH : (r + 1) * PATCH, c * PATCH : (c + 1) * PATCH]
        items.append(Outgoing(MsgType.LATENT_PATCH, {"i": i, "p": tile.tobytes()}, k, ts))
    items.append(Outgoing(MsgType.FRAME_END, {"n": rows * cols}, k, ts))
    vec = img.reshape(-1, 3).astype(np.float64).mean(axis=0).tolist() + [float(k % 7)] * 5
    items.append(Outgoing(MsgType.DESCRIPTOR, {"vec": encode_descriptor(np.asarray(vec), "f16")}, k, ts))
    return items


def _read_progress(path: Path) -> int:
    try:
        return int(path.read_text().strip() or -1)
    except (FileNotFoundError, ValueError):
        return -1


def _write_progress(path: Path, k: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(str(k))
    os.replace(tmp, path)


async def run(args) -> int:
    creds = DeviceCredentials.load(args.credentials)
    acked = open(args.acked, "a", buffering=1) if args.acked else None  # noqa: SIM115 - lives as long as the run

    def on_ack(seq: int, latency: float) -> None:
        if acked is not None:
            acked.write(f"{seq}\n")

    client = DeviceClient(
        TcpClientTransport(args.host, args.port),
        creds,
        args.spool,
        ack_timeout=3.0,
        backoff=(0.05, 0.5),
        on_ack=on_ack,
    )
    client.start()
    progress = Path(args.progress) if args.progress else None
    start = _read_progress(progress) + 1 if progress else 0
    for k in range(start, args.frames):
        await client.send_batch(frame_messages(k))
        if progress:
            _write_progress(progress, k)
        if args.interval:
            await asyncio.sleep(args.interval)
    drained = await client.close(flush_timeout=args.flush_timeout)
    print(
        f"frames {start}..{args.frames - 1} sent; drained={drained}; {client.stats.connects} connections, {client.stats.retransmits} retransmits",
        flush=True,
    )
    return 0 if drained else 3


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m edge_sdk.client.simulate", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--credentials", required=True)
    p.add_argument("--spool", required=True)
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--interval", type=float, default=0.0, help="seconds between frames")
    p.add_argument("--progress", help="file recording the last spooled frame (resume point)")
    p.add_argument("--acked", help="append acknowledged seqs here")
    p.add_argument("--flush-timeout", type=float, default=60.0)
    return asyncio.run(run(p.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
