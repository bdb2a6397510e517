"""Server load benchmark: N simulated devices on loopback for a bounded time.

    python -m benchmarks.bench_server [--quick] [--json OUT] [--devices 16] [--seconds 10] [--window 32]

The server runs as its own process (``python -m edge_sdk.server serve``, SQLite WAL with
synchronous=FULL, so every ack follows an fsync'd commit); the devices are authenticated
:class:`~edge_sdk.transport.rawclient.RawDevice` connections in this process, each
keeping ``--window`` messages in flight.  Traffic per device is a repeating frame: a
FRAME_BEGIN, 4 raw 32x32x3 latent patches (3 KiB each), a FRAME_END and a 256-d f16
descriptor (7 messages).  Latency is send -> ack per message.  Server memory is read from
/proc (RSS at start, peak VmHWM, RSS at the end) and server CPU is its user+system time.
Both processes share this machine's cores, so the figures are a lower bound for a
server on its own host.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from edge_sdk.server.run import ServerProcess
from edge_sdk.transport import auth
from edge_sdk.transport.descriptor import encode_descriptor
from edge_sdk.transport.protocol import MsgType
from edge_sdk.transport.rawclient import RawDevice


def frame_messages(frame: int, rng: np.random.Generator) -> list[tuple[MsgType, dict]]:
    patches = [
        (MsgType.LATENT_PATCH, {"i": i, "p": rng.integers(0, 256, 32 * 32 * 3, dtype=np.uint8).tobytes()})
        for i in range(4)
    ]
    return [
        (MsgType.FRAME_BEGIN, {"w": 64, "h": 64, "c": 3, "patch": 32, "n": 4, "codec": "raw"}),
        *patches,
        (MsgType.FRAME_END, {"n": 4}),
        (MsgType.DESCRIPTOR, {"vec": encode_descriptor(rng.normal(size=256), "f16")}),
    ]


async def one_device(host: str, port: int, creds, seconds: float, window: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    dev = await RawDevice(host, port, creds).connect(30)
    seq, frame, payload_bytes = 1, 1, 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for mtype, body in frame_messages(frame, rng):
            if not await dev.wait_outstanding_below(window, 30):
                raise RuntimeError(f"{creds.device}: acks stalled")
            await dev.send(mtype, body, seq, frame, time.time_ns())
            payload_bytes += len(body.get("p", b""))
            seq += 1
        frame += 1
    await dev.wait_outstanding_below(1, 30)
    await dev.close()
    return {
        "latencies": list(dev.acks.values()),
        "sent": seq - 1,
        "errors": len(dev.errors),
        "bytes": payload_bytes,
    }


def _proc(pid: int) -> dict:
    status = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                status[key] = int(value.split()[0])
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    status["cpu_s"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return status


def run(devices: int, seconds: float, window: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="edge-bench-"))
    creds = [
        auth.provision(work / "server.json", f"dev{i:03d}", work / f"dev{i:03d}.json") for i in range(devices)
    ]
    server = ServerProcess(work / "srv", work / "server.json").start()
    try:
        before = _proc(server.proc.pid)

        async def all_devices():
            host, port = server.address
            return await asyncio.gather(
                *(one_device(host, port, c, seconds, window, i) for i, c in enumerate(creds))
            )

        t0 = time.perf_counter()
        results = asyncio.run(all_devices())
        wall = time.perf_counter() - t0
        after = _proc(server.proc.pid)
    finally:
        server.stop(60)
    lat = sorted(x for r in results for x in r["latencies"])
    acked = len(lat)
    return {
        "devices": devices,
        "seconds": round(wall, 2),
        "window": window,
        "messages_acked": acked,
        "errors": sum(r["errors"] for r in results),
        "msgs_per_s": round(acked / wall, 1),
        "payload_mb_per_s": round(sum(r["bytes"] for r in results) / wall / 1e6, 2),
        "latency_ms": {
            "p50": round(1000 * lat[len(lat) // 2], 2),
            "p99": round(1000 * lat[int(0.99 * (len(lat) - 1))], 2),
            "max": round(1000 * lat[-1], 2),
            "mean": round(1000 * statistics.fmean(lat), 2),
        },
        "server_rss_mib": {
            "start": round(before["VmRSS"] / 1024, 1),
            "peak": round(after["VmHWM"] / 1024, 1),
            "end": round(after["VmRSS"] / 1024, 1),
        },
        "server_cpu_s": round(after["cpu_s"] - before["cpu_s"], 2),
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_server",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="3 s instead of --seconds")
    p.add_argument("--json", metavar="OUT")
    p.add_argument("--devices", type=int, default=16)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--window", type=int, default=32)
    args = p.parse_args(argv)
    res = run(args.devices, 3.0 if args.quick else args.seconds, args.window)
    lat, rss = res["latency_ms"], res["server_rss_mib"]
    print(
        f"{'devices':>7} {'seconds':>7} {'acked':>8} {'msgs/s':>8} {'MB/s':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'RSS start/peak/end MiB':>23} {'srv cpu s':>9}"
    )
    print(
        f"{res['devices']:>7} {res['seconds']:>7} {res['messages_acked']:>8} {res['msgs_per_s']:>8} {res['payload_mb_per_s']:>6} "
        f"{lat['p50']:>7} {lat['p99']:>7} {lat['max']:>7} {rss['start']:>7}/{rss['peak']}/{rss['end']:<7} {res['server_cpu_s']:>9}"
    )
    if res["errors"]:
        print(f"WARNING: {res['errors']} ERROR replies")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
