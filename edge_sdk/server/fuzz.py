"""Hostile-input fuzzing of a running server (used by tests/server and tools/fuzz_server.py).

Two kinds of hostile input, both against a real server over loopback TCP:

* **pre-auth** — one fresh connection per case: random bytes, random payloads in valid
  frames, huge and zero length prefixes, truncated frames, wrong versions and types,
  data before HELLO, garbage after HELLO.  Expected: an ERROR reply and/or the server
  closing the connection, never silence.
* **post-auth** — an authenticated ``fuzz`` device pipelines mutated and structurally
  wrong messages in valid frames: byte flips, truncations, insertions, fields of the
  wrong type, bad versions, unknown types, spoofed device ids, oversized values.
  Expected: exactly one reply per message (ERROR, or ACK when the mutation happens to
  still be a valid message), or a closed connection.

Meanwhile a well-behaved device keeps sending frames through the real client; the run
checks all of them are acknowledged, and samples the server's RSS.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Optional

import msgpack
import numpy as np

from ..transport import limits
from ..transport.auth import DeviceCredentials
from ..transport.descriptor import encode_descriptor
from ..transport.ext import pack_ext
from ..transport.framing import HEADER, frame, read_frame
from ..transport.protocol import Message, MsgType, decode, encode
from ..transport.rawclient import RawDevice

# ----------------------------------------------------------------------------- generators


def templates(device: str, rng: random.Random) -> list[bytes]:
    """Valid encoded messages of every data type, the seeds for mutation."""
    seq = rng.randrange(1, 1 << 40)
    vec = encode_descriptor(
        np.asarray([rng.gauss(0, 1) for _ in range(32)]), rng.choice(["f16", "i8", "bin", "f32"])
    )
    msgs = [
        Message(
            MsgType.FRAME_BEGIN,
            device,
            seq,
            7,
            1,
            {"w": 64, "h": 32, "c": 3, "patch": 32, "n": 2, "codec": "raw"},
        ),
        Message(
            MsgType.LATENT_PATCH,
            device,
            seq + 1,
            7,
            1,
            {"i": 1, "p": bytes(rng.randrange(256) for _ in range(64))},
        ),
        Message(MsgType.FRAME_END, device, seq + 2, 7, 1, {"n": 2}),
        Message(MsgType.DESCRIPTOR, device, seq + 3, 8, 1, {"vec": vec, "model": "m"}),
        Message(
            MsgType.CLASSIFICATION,
            device,
            seq + 4,
            9,
            1,
            {"cls": [1, 2], "score": [0.5, 0.25], "names": ["a", "b"]},
        ),
    ]
    return [encode(m) for m in msgs]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """A random byte-level mutation (never longer than the message bound)."""
    b = bytearray(data)
    op = rng.randrange(6)
    if op == 0:
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif op == 1:
        b = b[: rng.randrange(1, len(b))]
    elif op == 2:
        pos = rng.randrange(len(b))
        b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif op == 3:
        del b[rng.randrange(len(b))]
    elif op == 4:
        b[rng.randrange(len(b))] = rng.choice(
            [0xC1, 0xDD, 0xDF, 0xC6, 0xC9, 0xDB]
        )  # invalid / huge-length markers
    else:
        b += bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    return bytes(b) or b"\xc1"


def structural(device: str, rng: random.Random) -> bytes:
    """A well-formed msgpack envelope that is wrong at the protocol level."""
    env = {
        "v": 1,
        "t": int(MsgType.FRAME_END),
        "d": device,
        "s": rng.randrange(1 << 40),
        "f": 1,
        "ts": 0,
        "b": {"n": 0},
    }
    key = rng.choice(["v", "t", "d", "s", "f", "ts", "b", "b.n", "extra", "drop"])
    bad_values = [
        None,
        True,
        -1,
        2**64 - 1,
        3.5,
        "x" * 300,
        b"\0" * 10,
        [1] * 5,
        {"k": 1},
        msgpack.ExtType(99, b"z"),
    ]
    if key == "v":
        env["v"] = rng.choice([0, 2, 255, "1", None])
    elif key == "t":
        env["t"] = rng.choice([0, 5, 99, 255, -1, "ack"])
    elif key == "b.n":
        env["b"] = {"n": rng.choice(bad_values)}
    elif key == "extra":
        env[rng.choice(["zz", "b2"])] = rng.choice(bad_values)
        env["t"] = rng.choice([9, 99])  # so the message is still invalid
    elif key == "drop":
        del env[rng.choice(["v", "t", "d", "s"])]
    else:
        env[key] = rng.choice(bad_values)
    if rng.random() < 0.1:
        env = [env] if rng.random() < 0.5 else {1: 2}
    return msgpack.packb(env, use_bin_type=True, default=pack_ext, strict_types=False)


def post_auth_payload(device: str, rng: random.Random, seeds: list[bytes]) -> bytes:
    r = rng.random()
    if r < 0.45:
        return mutate(rng.choice(seeds), rng)
    if r < 0.85:
        return structural(device, rng)
    if r < 0.95:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    spoof = Message(
        MsgType.CLASSIFICATION, "someone-else", rng.randrange(1 << 30), 1, body={"cls": [1], "score": [1.0]}
    )
    return encode(spoof)


def pre_auth_case(device: str, rng: random.Random) -> tuple[str, bytes]:
    """(case name, raw bytes to write on a fresh connection)."""
    case = rng.choice(
        [
            "random",
            "random_frame",
            "huge_len",
            "zero_len",
            "truncated",
            "bad_version",
            "data_first",
            "hello_garbage",
        ]
    )
    hello = encode(Message(MsgType.HELLO, device, body={"nonce": rng.randbytes(32)}))
    if case == "random":
        data = bytes(rng.randrange(256) for _ in range(rng.randint(1, 200)))
    elif case == "random_frame":
        data = frame(bytes(rng.randrange(256) for _ in range(rng.randint(1, 200))))
    elif case == "huge_len":
        data = HEADER.pack(rng.randrange(limits.MAX_MESSAGE + 1, 1 << 32)) + b"x" * rng.randint(0, 64)
    elif case == "zero_len":
        data = HEADER.pack(0)
    elif case == "truncated":
        full = frame(hello)
        data = full[: rng.randrange(1, len(full))]
    elif case == "bad_version":
        env = msgpack.unpackb(hello, strict_map_key=False)
        env["v"] = rng.choice([0, 2, 7])
        data = frame(msgpack.packb(env))
    elif case == "data_first":
        data = frame(rng.choice(templates(device, rng)))
    else:
        data = frame(hello) + frame(bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))))
    return case, data


# ----------------------------------------------------------------------------- runners


@dataclass
class FuzzReport:
    pre_auth: Counter = field(default_factory=Counter)
    post_auth: Counter = field(default_factory=Counter)
    cases: Counter = field(default_factory=Counter)
    good_frames_sent: int = 0
    good_frames_acked: int = 0
    good_ack_ms: dict = field(default_factory=dict)
    seconds: float = 0.0
    rss_kib: list = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.pre_auth.values()) + sum(self.post_auth.values())

    @property
    def silent(self) -> int:
        """Cases that got neither a reply nor a closed connection (must be 0)."""
        return self.pre_auth["timeout"] + self.post_auth["unanswered"]

    def to_json(self) -> dict:
        return {
            "total": self.total,
            "silent": self.silent,
            "pre_auth": dict(self.pre_auth),
            "post_auth": dict(self.post_auth),
            "cases": dict(self.cases),
            "good_frames_sent": self.good_frames_sent,
            "good_frames_acked": self.good_frames_acked,
            "good_ack_ms": self.good_ack_ms,
            "seconds": round(self.seconds, 2),
            "rss_kib": {"first": self.rss_kib[0], "max": max(self.rss_kib), "last": self.rss_kib[-1]}
            if self.rss_kib
            else {},
        }


async def one_pre_auth(host: str, port: int, data: bytes, timeout: float) -> str:
    """Send ``data`` on a fresh connection, half-close, classify what comes back."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, asyncio.TimeoutError):
        return "connect_failed"
    outcome = "closed"
    try:
        writer.write(data)
        await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        deadline = time.monotonic() + timeout
        while True:
            try:
                payload = await asyncio.wait_for(
                    read_frame(reader, limits.MAX_MESSAGE), max(0.01, deadline - time.monotonic())
                )
            except asyncio.TimeoutError:
                return "timeout"
            except (asyncio.IncompleteReadError, ConnectionError, OSError, ValueError):
                return outcome
            if decode(payload).type == MsgType.ERROR:
                outcome = "error"
    finally:
        writer.transport.abort()


async def post_auth_session(
    host: str, port: int, creds: DeviceCredentials, payloads: list[bytes], timeout: float
) -> Counter:
    """Pipeline ``payloads`` on one authenticated connection; one reply expected for each."""
    dev = await RawDevice(host, port, creds).connect(timeout)
    out: Counter = Counter()

    def count() -> int:
        return dev.replies

    for i, p in enumerate(payloads):
        try:
            if dev._reader.done():
                raise ConnectionResetError
            await dev.conn.send_raw(p)
        except (ConnectionError, OSError):
            out["closed"] += len(payloads) - i
            break
        stall = time.monotonic() + timeout
        while (
            i + 1 - count() > 256 and not dev._reader.done() and time.monotonic() < stall
        ):  # bounded pipelining
            await asyncio.sleep(0.001)
    deadline = time.monotonic() + timeout
    while count() < len(payloads) - out["closed"] and not dev._reader.done() and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    out["error"] += len(dev.errors)
    out["ack"] += dev.replies - len(dev.errors)
    missing = len(payloads) - out["closed"] - count()
    if missing > 0:
        out["closed" if dev._reader.done() else "unanswered"] += missing
    await dev.close()
    return out


async def good_device(
    host: str,
    port: int,
    creds: DeviceCredentials,
    spool: str,
    stop: asyncio.Event,
    report: FuzzReport,
    interval: float,
) -> None:
    """A well-behaved device sending small frames until ``stop`` is set."""
    from ..client import DeviceClient
    from ..client.simulate import frame_messages
    from ..transport.tcp import TcpClientTransport

    acked: set[int] = set()
    client = DeviceClient(
        TcpClientTransport(host, port), creds, spool, ack_timeout=5.0, on_ack=lambda seq, _: acked.add(seq)
    )
    client.start()
    frames: list[list[int]] = []
    while not stop.is_set():
        frames.append(await client.send_batch(frame_messages(len(frames))))
        report.good_frames_sent = len(frames)
        await asyncio.sleep(interval)
    await client.flush(30)
    report.good_frames_acked = sum(all(s in acked for s in seqs) for seqs in frames)
    lat = sorted(client.stats.ack_latency_s)
    if lat:
        report.good_ack_ms = {
            "p50": round(1000 * lat[len(lat) // 2], 2),
            "p99": round(1000 * lat[int(0.99 * (len(lat) - 1))], 2),
        }
    await client.close()


async def run_fuzz(
    host: str,
    port: int,
    fuzz_creds: DeviceCredentials,
    good_creds: DeviceCredentials,
    spool: str,
    *,
    n_pre: int,
    n_post: int,
    seed: int = 0,
    concurrency: int = 8,
    rss: Optional[Callable[[], int]] = None,
    timeout: float = 10.0,
    good_interval: float = 0.02,
) -> FuzzReport:
    """Run ``n_pre`` pre-auth and ``n_post`` post-auth cases (see module docstring)."""
    rng = random.Random(seed)
    report = FuzzReport()
    stop = asyncio.Event()
    t0 = time.monotonic()
    sampler = asyncio.ensure_future(_sample_rss(rss, report, stop)) if rss else None
    good = asyncio.ensure_future(good_device(host, port, good_creds, spool, stop, report, good_interval))
    sem = asyncio.Semaphore(concurrency)

    async def pre(case: str, data: bytes) -> None:
        async with sem:
            report.pre_auth[await one_pre_auth(host, port, data, timeout)] += 1
            report.cases[case] += 1

    seeds = templates(fuzz_creds.device, rng)
    post_batches = [
        [post_auth_payload(fuzz_creds.device, rng, seeds) for _ in range(min(1000, n_post - i))]
        for i in range(0, n_post, 1000)
    ]
    pre_cases = [pre_auth_case(fuzz_creds.device, rng) for _ in range(n_pre)]

    async def post() -> None:
        # One session at a time: a device's new connection replaces its old one on the server.
        for batch in post_batches:
            report.post_auth.update(await post_auth_session(host, port, fuzz_creds, batch, 60.0))

    await asyncio.gather(post(), *(pre(c, d) for c, d in pre_cases))
    stop.set()
    await good
    if sampler is not None:
        await sampler
    report.seconds = time.monotonic() - t0
    return report


async def _sample_rss(rss: Callable[[], int], report: FuzzReport, stop: asyncio.Event) -> None:
    while True:
        report.rss_kib.append(rss())
        if stop.is_set():
            return
        await asyncio.sleep(0.2)


def proc_rss_kib(pid: int) -> int:
    """Resident set size of a process from /proc (Linux), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
