"""On-disk spool of unacknowledged messages: append-only, fsync'd, bounded.

Layout of the spool directory::

    seq                  8-byte big-endian sequence high-water mark (atomic replace + fsync)
    seg-000000000001.log records: >IIQ (payload length, crc32(seq||payload), seq) + payload
    seg-000000000001.ack 8-byte big-endian seqs acknowledged by the server (append-only)

Durability: :meth:`Spool.put` returns only after the records *and* the segment file's
directory entry are fsync'd, so a message handed to the spool survives a crash or power
loss of the device.  Acks are appended without fsync on purpose: losing an ack only
makes the client send that message again, and the server deduplicates by (device, seq).

Sequence numbers are reserved in blocks of :data:`SEQ_BLOCK` whose end is fsync'd before
any number of the block is used, so a restarted device never reuses a sequence number
(the server would silently drop the new message as a duplicate).

Bound and policy when full (``max_bytes`` counts all segment files on disk):

* ``"reject"`` (the spool's own behaviour): :meth:`put` raises :class:`SpoolFullError`;
  the async client turns this into *blocking* backpressure (``policy="block"``) that
  waits for acks to free space, and raises after its timeout.
* ``"drop_oldest"``: whole oldest segments are deleted, unacknowledged records included,
  to make room; the loss is counted in :attr:`Spool.dropped` and never silent.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Optional

from ..errors import EdgeSDKError

RECORD = struct.Struct(">IIQ")
SEQ = struct.Struct(">Q")
SEQ_BLOCK = 1024
POLICIES = ("reject", "drop_oldest")


class SpoolFullError(BufferError, EdgeSDKError):
    """The spool reached its byte bound and its policy refuses new messages."""


class _Segment:
    def __init__(self, directory: Path, number: int) -> None:
        self.number = number
        self.log_path = directory / f"seg-{number:012d}.log"
        self.ack_path = directory / f"seg-{number:012d}.ack"
        self.fd = os.open(self.log_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self.size = os.fstat(self.fd).st_size
        self.live = 0  # records not yet acknowledged

    def delete(self) -> None:
        os.close(self.fd)
        for p in (self.log_path, self.ack_path):
            try:
                p.unlink()
            except FileNotFoundError:
                pass


class Spool:
    """Thread-safe persistent queue of (seq, encoded message) records."""

    def __init__(
        self,
        directory: str | os.PathLike,
        max_bytes: int = 64 << 20,
        segment_bytes: int = 1 << 20,
        policy: str = "reject",
        fsync: bool = True,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"spool policy: expected one of {POLICIES}, found {policy!r}")
        if segment_bytes * 2 > max_bytes:
            raise ValueError(
                f"spool: expected max_bytes >= 2 * segment_bytes, found {max_bytes} < 2 * {segment_bytes}"
            )
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes, self.segment_bytes, self.policy, self.fsync = max_bytes, segment_bytes, policy, fsync
        self.dropped = 0
        self._lock = threading.Lock()
        self._segments: OrderedDict[int, _Segment] = OrderedDict()
        self._index: OrderedDict[int, tuple[_Segment, int, int]] = (
            OrderedDict()
        )  # seq -> (segment, offset, length)
        self._recover()

    # ------------------------------------------------------------------ recovery

    def _recover(self) -> None:
        numbers = sorted(int(p.name[4:16]) for p in self.dir.glob("seg-*.log"))
        max_seq = -1
        for n in numbers:
            seg = _Segment(self.dir, n)
            self._segments[n] = seg
            acked = self._read_acks(seg)
            for seq, off, length in self._scan(seg):
                max_seq = max(max_seq, seq)
                if seq not in acked:
                    self._index[seq] = (seg, off, length)
                    seg.live += 1
        for seg in list(self._segments.values()):
            if seg.live == 0:
                self._remove_segment(seg)
        self._next_seq = max(self._read_high_water(), max_seq + 1, 1)
        self._reserve()
        self._active = self._new_segment((numbers[-1] if numbers else 0) + 1)

    def _scan(self, seg: _Segment) -> list[tuple[int, int, int]]:
        """Valid records of a segment; a torn or corrupt tail is truncated away."""
        data = Path(seg.log_path).read_bytes()
        out, off = [], 0
        while off + RECORD.size <= len(data):
            length, crc, seq = RECORD.unpack_from(data, off)
            body = data[off + RECORD.size : off + RECORD.size + length]
            if len(body) != length or zlib.crc32(SEQ.pack(seq) + body) != crc:
                break
            out.append((seq, off + RECORD.size, length))
            off += RECORD.size + length
        if off != len(data):  # a crash mid-append: drop the partial record (it was never acknowledged)
            os.truncate(seg.log_path, off)
            seg.size = off
        return out

    @staticmethod
    def _read_acks(seg: _Segment) -> set[int]:
        try:
            data = seg.ack_path.read_bytes()
        except FileNotFoundError:
            return set()
        whole = len(data) - len(data) % SEQ.size
        return {SEQ.unpack_from(data, i)[0] for i in range(0, whole, SEQ.size)}

    def _read_high_water(self) -> int:
        try:
            return SEQ.unpack((self.dir / "seq").read_bytes()[: SEQ.size])[0]
        except (FileNotFoundError, struct.error):
            return 0

    def _reserve(self) -> None:
        self._high_water = self._next_seq + SEQ_BLOCK
        tmp = self.dir / "seq.tmp"
        with open(tmp, "wb") as f:
            f.write(SEQ.pack(self._high_water))
            f.flush()
            if self.fsync:
                os.fsync(f.fileno())
        os.replace(tmp, self.dir / "seq")
        self._sync_dir()

    def _sync_dir(self) -> None:
        if not self.fsync:
            return
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ segments

    def _new_segment(self, number: int) -> _Segment:
        seg = _Segment(self.dir, number)
        self._segments[number] = seg
        self._sync_dir()
        return seg

    def _remove_segment(self, seg: _Segment) -> None:
        self._segments.pop(seg.number, None)
        seg.delete()

    def _disk_bytes(self) -> int:
        return sum(s.size for s in self._segments.values())

    def _make_room(self, need: int) -> None:
        while self._disk_bytes() + need > self.max_bytes:
            oldest = next(iter(self._segments.values()))
            if self.policy == "reject" or oldest is self._active:
                raise SpoolFullError(
                    f"spool full: {self._disk_bytes()} + {need} bytes > max {self.max_bytes} ({len(self._index)} messages unacknowledged)"
                )
            for seq in [s for s, (seg, _, _) in self._index.items() if seg is oldest]:
                del self._index[seq]
                self.dropped += 1
            self._remove_segment(oldest)

    # ------------------------------------------------------------------ public API

    def next_seq(self) -> int:
        """Allocate a sequence number never used before by this spool, even across restarts."""
        with self._lock:
            seq = self._next_seq
            self._next_seq += 1
            if self._next_seq >= self._high_water:
                self._reserve()
            return seq

    def put(self, records: list[tuple[int, bytes]]) -> None:
        """Append records durably (one fsync for the whole batch)."""
        blob = b"".join(RECORD.pack(len(p), zlib.crc32(SEQ.pack(s) + p), s) + p for s, p in records)
        with self._lock:
            if len(blob) > self.max_bytes - self.segment_bytes:
                raise SpoolFullError(
                    f"batch of {len(blob)} bytes can never fit a spool of {self.max_bytes} bytes"
                )
            if self._active.size + len(blob) > self.segment_bytes and self._active.size > 0:
                old, self._active = self._active, self._new_segment(self._active.number + 1)
                if old.live == 0:
                    self._remove_segment(old)
            self._make_room(len(blob))
            seg, off = self._active, self._active.size
            os.write(seg.fd, blob)
            if self.fsync:
                os.fsync(seg.fd)
            for s, p in records:
                self._index[s] = (seg, off + RECORD.size, len(p))
                off += RECORD.size + len(p)
                seg.live += 1
            seg.size += len(blob)

    def read(self, seq: int) -> Optional[bytes]:
        """The payload of a pending record, or None if it was acked or dropped meanwhile."""
        with self._lock:
            entry = self._index.get(seq)
            if entry is None:
                return None
            seg, off, length = entry
            return os.pread(seg.fd, length, off)

    def ack(self, seq: int) -> bool:
        """Mark ``seq`` acknowledged; fully acknowledged old segments are deleted."""
        with self._lock:
            entry = self._index.pop(seq, None)
            if entry is None:
                return False
            seg = entry[0]
            with open(seg.ack_path, "ab") as f:
                f.write(SEQ.pack(seq))
            seg.live -= 1
            if seg.live == 0 and seg is not self._active:
                self._remove_segment(seg)
            return True

    def pending(self) -> list[int]:
        """Unacknowledged sequence numbers, oldest first."""
        with self._lock:
            return list(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def disk_bytes(self) -> int:
        with self._lock:
            return self._disk_bytes()

    def close(self) -> None:
        with self._lock:
            for seg in self._segments.values():
                os.close(seg.fd)
            self._segments.clear()
