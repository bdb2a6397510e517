"""Mutation fuzzing of the latent-bitstream reader, shared by the tests and tools/fuzz_bitstream.py.

Seeds are valid streams (per-patch records coded and raw, one per-frame record).
Each mutation flips bits, overwrites bytes or header fields with edge values,
deletes, inserts or truncates, and most of the time repairs both CRC32s afterwards
so that the parser behind the checksums is reached.  The oracle: decoding either
raises :class:`~edge_sdk.errors.BitstreamError` or returns latents of the shape the
header announces, within its bit depth.  Any other exception is a failure and is
recorded with the iteration and the mutated bytes (hex) to reproduce it.
"""

from __future__ import annotations

import re
import struct
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..errors import BitstreamError
from . import bitstream as bs
from .patches import PatchGrid

#: Latent bits a fuzzed header may claim: keeps every decode short, even with the Python coder.
FUZZ_MAX_BITS = 1 << 14
_FIELDS = [(4, "B"), (5, "B"), (6, "B"), (7, "B"), (8, "H"), (10, "H"), (12, "H"), (14, "B"), (15, "B"),
           (16, "H"), (18, "H"), (20, "H"), (22, "H"), (24, "I")]  # fmt: skip


def seed_streams(backend: Optional[str] = None) -> list:
    """Small valid streams covering both modes and both record codings."""
    grid = PatchGrid(40, 70, 16)
    rng = np.random.default_rng(0)
    flat = np.broadcast_to(rng.integers(0, 16, (grid.n_patches, 1, 1, 3)), (grid.n_patches, 2, 2, 3))
    noisy = rng.integers(0, 16, (grid.n_patches, 2, 2, 3))
    return [
        bs.encode_latents(flat, grid, 4, 3, "patch", backend),
        bs.encode_latents(noisy, grid, 4, 3, "patch", backend),
        bs.encode_latents(flat, grid, 4, 3, "frame", backend),
    ]


def fix_crcs(buf: bytearray) -> bytes:
    """Recompute the header and body CRC32s of a (mutated) stream in place, where they exist."""
    h = bs.HEADER_SIZE
    if len(buf) >= h:
        struct.pack_into("<I", buf, h - 4, zlib.crc32(bytes(buf[: h - 4])))
    if len(buf) >= h + bs.TRAILER_SIZE:
        struct.pack_into("<I", buf, len(buf) - 4, zlib.crc32(bytes(buf[h:-4])))
    return bytes(buf)


def mutate(data: bytes, rng: np.random.Generator) -> tuple:
    """One random mutation of a valid stream: (kind, mutated bytes)."""
    buf = bytearray(data)
    kind = ("bitflip", "byte", "field", "delete", "insert", "truncate", "body")[int(rng.integers(0, 7))]
    pos = int(rng.integers(0, len(buf)))
    if kind == "bitflip":
        buf[pos] ^= 1 << int(rng.integers(0, 8))
    elif kind == "byte":
        buf[pos] = int(rng.choice([0, 1, 0x7F, 0x80, 0xFF, int(rng.integers(0, 256))]))
    elif kind == "field":
        offset, char = _FIELDS[int(rng.integers(0, len(_FIELDS)))]
        top = (1 << (8 * struct.calcsize(char))) - 1
        value = int(rng.choice([0, 1, 2, 3, 17, 255, top, int(rng.integers(0, top + 1))])) & top
        struct.pack_into("<" + char, buf, offset, value)
    elif kind == "delete":
        del buf[pos : pos + int(rng.integers(1, 9))]
    elif kind == "insert":
        buf[pos:pos] = bytes(rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8))
    elif kind == "truncate":
        del buf[pos:]
    else:  # a byte inside the records, behind a valid header
        lo = min(bs.HEADER_SIZE, len(buf) - 1)
        buf[int(rng.integers(lo, len(buf)))] = int(rng.integers(0, 256))
    return kind, fix_crcs(buf) if rng.random() < 0.6 else bytes(buf)


@dataclass
class FuzzReport:
    """Outcome counts of a fuzz run and any failures (with reproducers)."""

    iterations: int = 0
    seconds: float = 0.0
    outcomes: Counter = field(default_factory=Counter)
    failures: list = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"{self.iterations} mutations in {self.seconds:.1f} s, {len(self.failures)} failures"]
        lines += [f"  {n:7d}  {what}" for what, n in self.outcomes.most_common(25)]
        lines += [f"  FAIL {f}" for f in self.failures[:20]]
        return "\n".join(lines)


def _category(message: str) -> str:
    head = re.sub(r"0x[0-9a-f]+|\d+", "N", message)
    return "BitstreamError: " + re.split(r"[(,;]", head)[0].strip()[:70]


def check_one(data: bytes, report: FuzzReport, tag: str, backend: Optional[str] = None) -> None:
    """Decode one mutated stream and apply the oracle."""
    try:
        out = bs.decode_latents(data, backend, max_bits=FUZZ_MAX_BITS)
    except BitstreamError as exc:
        report.outcomes[_category(str(exc))] += 1
        return
    except Exception as exc:  # noqa: BLE001 - exactly what the fuzzer is looking for
        report.failures.append(f"{tag}: {type(exc).__name__}: {exc} data={data.hex()}")
        return
    h = out.header
    if out.latents.shape != (h.grid.n_patches, *h.latent_shape) or int(out.latents.max()) >= 1 << h.bits:
        report.failures.append(f"{tag}: accepted latents {out.latents.shape} do not match the header")
    report.outcomes["accepted"] += 1


def run(iterations: int, seed: int = 0, backend: Optional[str] = None) -> FuzzReport:
    """Fuzz the reader ``iterations`` times from ``seed`` (deterministic)."""
    rng = np.random.default_rng(seed)
    seeds = seed_streams(backend)
    report = FuzzReport()
    start = time.perf_counter()
    for i in range(iterations):
        kind, data = mutate(seeds[i % len(seeds)], rng)
        check_one(data, report, f"seed={seed} iteration={i} kind={kind}", backend)
        report.iterations += 1
    report.seconds = time.perf_counter() - start
    return report
