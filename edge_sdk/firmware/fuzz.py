"""Mutation fuzzing of the reader, shared by the test suite and tools/fuzz_firmware.py.

Each mutation edits a valid image (bit flips, byte changes, truncation, extension,
edits of structured fields, record swaps) and, most of the time, recomputes the
CRC-32s and the SHA-256 afterwards (``format.reseal``), so the reader's deeper
checks are reached instead of only its checksums.  The oracle:

- the reader raises FirmwareError, without using its safety net for unexpected
  exceptions;
- or it accepts the image, and then (for a 1.0 image) re-encoding the network
  gives back the identical bytes: an accepted image is always canonical.

Anything else (another exception type, a safety-net message, a non-canonical
acceptance) is a failure, recorded with the seed that reproduces it.
"""

from __future__ import annotations

import re
import struct
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from ..errors import FirmwareError
from .format import (
    ENTRY,
    HEADER,
    HEADER_SIZE,
    LAYER,
    SCHEDULE,
    SCHEDULE_PREAMBLE,
    Header,
    SectionInfo,
    reseal,
)
from .reader import load_firmware
from .writer import write_firmware

SAFETY_NET = "malformed image (unexpected"
_DEEP = re.compile(
    r"^(PROFILE|LAYERS|SCHEDULE|METADATA|section (WEIGHTS|SCALARS|BIAS|HOST|STRINGS):|header flag HAS|"
    r"the stored network)"
)


def struct_fields(st: struct.Struct, base: int = 0) -> list[tuple[int, str]]:
    """(offset, format char) of every scalar field of a little-endian struct ('s' blobs become bytes)."""
    out, offset = [], base
    for count, char in re.findall(r"(\d*)([a-zA-Z])", st.format.lstrip("<")):
        n = int(count or 1)
        if char == "s":
            out += [(offset + i, "B") for i in range(n)]
            offset += n
            continue
        size = struct.calcsize("<" + char)
        out += [(offset + i * size, char) for i in range(n)]
        offset += n * size
    return out


def _interesting(rng: np.random.Generator, char: str, old: int) -> int:
    bits = 8 * struct.calcsize("<" + char)
    signed = char.islower()
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    choices = [
        0,
        1,
        -1,
        2,
        16,
        255,
        256,
        65535,
        65536,
        lo,
        hi,
        old + 1,
        old - 1,
        old * 2,
        old + 16,
        old // 2,
        int(rng.integers(0, 1 << min(bits, 62))),
    ]
    value = choices[int(rng.integers(0, len(choices)))]
    return (
        value
        if lo <= value <= hi
        else (value % (1 << bits)) + (lo if signed and value % (1 << bits) > hi else 0)
    )


@dataclass
class Layout:
    """Where the structured fields of a valid image are (computed once per seed image)."""

    fields: list[tuple[int, str]] = field(default_factory=list)
    records: list[tuple[int, int]] = field(default_factory=list)  # (offset, size) of LAYERS/SCHEDULE records
    sections: list[SectionInfo] = field(default_factory=list)

    @classmethod
    def of(cls, data: bytes) -> Layout:
        h = Header.unpack(data[:HEADER_SIZE])
        out = cls(fields=struct_fields(HEADER))
        for k in range(h.section_count):
            at = h.header_size + k * h.entry_size
            e = SectionInfo.unpack(data[at : at + ENTRY.size])
            out.sections.append(e)
            out.fields += struct_fields(ENTRY, at)
            if e.type == 2:
                for j in range(e.length // e.record_size):
                    out.records.append((e.offset + j * e.record_size, e.record_size))
                    out.fields += struct_fields(LAYER, e.offset + j * e.record_size)
            if e.type == 7:
                out.fields += struct_fields(SCHEDULE_PREAMBLE, e.offset)
                base = e.offset + SCHEDULE_PREAMBLE.size
                for j in range((e.length - SCHEDULE_PREAMBLE.size) // e.record_size):
                    out.fields += struct_fields(SCHEDULE, base + j * e.record_size)
        return out


def _set_total(buf: bytearray) -> None:
    if len(buf) >= 24:
        struct.pack_into("<Q", buf, 16, len(buf))


def mutate(data: bytes, layout: Layout, rng: np.random.Generator) -> tuple[str, bytes]:
    """One random mutation of a valid image: (kind, mutated bytes)."""
    buf = bytearray(data)
    kind = ("bitflip", "byte", "field", "field", "field", "section", "swap", "truncate", "extend")[
        int(rng.integers(0, 9))
    ]
    if kind == "bitflip":
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(0, len(buf)))
            buf[i] ^= 1 << int(rng.integers(0, 8))
    elif kind == "byte":
        i = int(rng.integers(0, len(buf)))
        buf[i] = int(rng.choice([0, 1, 0x7F, 0x80, 0xFF, int(rng.integers(0, 256))]))
    elif kind == "field":
        offset, char = layout.fields[int(rng.integers(0, len(layout.fields)))]
        old = struct.unpack_from("<" + char, buf, offset)[0]
        struct.pack_into("<" + char, buf, offset, _interesting(rng, char, old))
    elif kind == "section":  # a byte inside one chosen (non-empty) payload
        e = [s for s in layout.sections if s.length][
            int(rng.integers(0, sum(1 for s in layout.sections if s.length)))
        ]
        i = e.offset + int(rng.integers(0, e.length))
        buf[i] = (buf[i] + int(rng.integers(1, 256))) % 256 if rng.integers(0, 2) else buf[i] ^ 1
    elif kind == "swap" and len(layout.records) >= 2:  # two whole LAYERS records change places
        a, b = (layout.records[int(j)] for j in rng.choice(len(layout.records), 2, replace=False))
        buf[a[0] : a[0] + a[1]], buf[b[0] : b[0] + b[1]] = data[b[0] : b[0] + b[1]], data[a[0] : a[0] + a[1]]
    elif kind == "truncate":
        del buf[int(rng.integers(0, len(buf))) :]
        if rng.integers(0, 2):
            _set_total(buf)
    elif kind == "extend":
        extra = 16 * int(rng.integers(1, 4)) if rng.integers(0, 2) else int(rng.integers(1, 64))
        buf += bytes(extra) if rng.integers(0, 2) else bytes(rng.integers(0, 256, extra, dtype=np.uint8))
        if rng.integers(0, 2):
            _set_total(buf)
    if rng.random() < 0.9:  # reach the deeper checks; the rest tests the checksums themselves
        reseal(buf)
    return kind, bytes(buf)


@dataclass
class FuzzReport:
    iterations: int = 0
    seconds: float = 0.0
    outcomes: Counter = field(default_factory=Counter)  # outcome -> count
    kinds: Counter = field(default_factory=Counter)  # mutation kind -> count
    failures: list[str] = field(default_factory=list)
    slowest: float = 0.0
    deep: int = 0  # rejections found past the container checks and checksums

    def summary(self) -> str:
        lines = [
            f"{self.iterations} mutations in {self.seconds:.1f} s (slowest load {self.slowest * 1000:.1f} ms), "
            f"{self.deep} rejected by section or network checks, {len(self.failures)} failures"
        ]
        lines += [f"  {n:7d}  {what}" for what, n in self.outcomes.most_common()]
        lines += [f"  FAIL {f}" for f in self.failures[:20]]
        return "\n".join(lines)


def _category(message: str) -> str:
    """A stable outcome label: the message's first clause, numbers and quoted names normalized."""
    head = re.sub(r"'[^' ]*'", "'…'", message)
    head = re.sub(r"\b[0-9a-f]{8,}\b|0x[0-9a-f]+|\d+", "N", head)
    return "FirmwareError: " + re.split(r"[(,;]", head)[0].strip()[:70]


def check_one(mutated: bytes, report: FuzzReport, tag: str) -> None:
    """Load one mutated image and apply the oracle, recording the outcome."""
    start = time.perf_counter()
    try:
        image = load_firmware(mutated)
    except FirmwareError as exc:
        msg = str(exc)
        report.outcomes[_category(msg)] += 1
        report.deep += bool(_DEEP.match(msg))
        if SAFETY_NET in msg:
            report.failures.append(f"{tag}: safety net: {msg[:300]}")
    except Exception as exc:  # the bug this fuzzer exists to find
        report.outcomes[f"CRASH {type(exc).__name__}"] += 1
        report.failures.append(f"{tag}: {type(exc).__name__}: {str(exc)[:300]}")
    else:
        report.outcomes["accepted"] += 1
        if image.version == (1, 0) and write_firmware(image.network) != mutated:
            report.failures.append(f"{tag}: accepted a non-canonical image")
    report.slowest = max(report.slowest, time.perf_counter() - start)


def run_fuzz(
    images: list[bytes],
    *,
    iterations: Optional[int] = None,
    seconds: Optional[float] = None,
    seed: int = 0,
    progress: Optional[Callable[[FuzzReport], None]] = None,
) -> FuzzReport:
    """Mutate ``images`` round-robin until ``iterations`` or ``seconds`` is reached (whichever first)."""
    if iterations is None and seconds is None:
        raise ValueError("give iterations, seconds or both")
    layouts = [Layout.of(d) for d in images]
    report, start = FuzzReport(), time.perf_counter()
    rng = np.random.default_rng(seed)
    while iterations is None or report.iterations < iterations:
        if seconds is not None and time.perf_counter() - start >= seconds:
            break
        k = report.iterations % len(images)
        kind, mutated = mutate(images[k], layouts[k], rng)
        report.kinds[kind] += 1
        check_one(mutated, report, f"seed {seed} iteration {report.iterations} ({kind})")
        report.iterations += 1
        if progress and report.iterations % 10000 == 0:
            report.seconds = time.perf_counter() - start
            progress(report)
    report.seconds = time.perf_counter() - start
    return report
