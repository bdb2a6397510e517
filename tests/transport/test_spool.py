"""The device spool: durable, append-only, bounded, never reusing a sequence number."""

from __future__ import annotations

import os

import pytest

from edge_sdk.client.spool import SEQ_BLOCK, Spool, SpoolFullError


def fill(spool, n, size=100):
    seqs = [spool.next_seq() for _ in range(n)]
    spool.put([(s, bytes([s % 256]) * size) for s in seqs])
    return seqs


def test_records_survive_reopen_until_acked(tmp_path):
    sp = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=4096)
    seqs = fill(sp, 50)
    for s in seqs[:20]:
        assert sp.ack(s)
    assert not sp.ack(seqs[0])  # second ack is a no-op
    sp.close()
    again = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=4096)
    assert again.pending() == seqs[20:]
    assert again.read(seqs[25]) == bytes([seqs[25] % 256]) * 100
    assert again.read(seqs[0]) is None


def test_sequence_numbers_are_never_reused_across_restarts(tmp_path):
    sp = Spool(tmp_path)
    first = [sp.next_seq() for _ in range(5)]
    sp.close()  # nothing was ever put: only the reserved high-water mark protects us
    sp2 = Spool(tmp_path)
    later = sp2.next_seq()
    assert later > max(first)
    assert later >= SEQ_BLOCK  # the whole reserved block is skipped


def test_acked_segments_are_deleted(tmp_path):
    sp = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=1024)
    seqs = []
    for _ in range(10):
        seqs += fill(sp, 5)
    logs_before = len(list(tmp_path.glob("seg-*.log")))
    for s in seqs:
        sp.ack(s)
    assert logs_before > 3
    assert len(list(tmp_path.glob("seg-*.log"))) == 1  # only the active one stays
    assert len(sp) == 0


def test_torn_tail_is_truncated_and_earlier_records_kept(tmp_path):
    sp = Spool(tmp_path)
    seqs = fill(sp, 3)
    sp.close()
    log = sorted(tmp_path.glob("seg-*.log"))[-1]
    with open(log, "ab") as f:
        f.write(b"\x00\x00\x01\x00garbage")  # a crash in the middle of an append
    again = Spool(tmp_path)
    assert again.pending() == seqs
    assert log.stat().st_size == 3 * (16 + 100)


def test_corrupt_record_stops_the_scan(tmp_path):
    sp = Spool(tmp_path)
    seqs = fill(sp, 3)
    sp.close()
    log = sorted(tmp_path.glob("seg-*.log"))[-1]
    data = bytearray(log.read_bytes())
    data[16 + 116 + 5] ^= 0xFF  # flip a payload byte of the second record
    log.write_bytes(bytes(data))
    assert Spool(tmp_path).pending() == seqs[:1]


def test_reject_policy_raises_when_full(tmp_path):
    sp = Spool(tmp_path, max_bytes=4096, segment_bytes=1024, policy="reject")
    with pytest.raises(SpoolFullError, match="spool full"):
        for _ in range(100):
            fill(sp, 1, size=500)
    assert sp.dropped == 0
    assert sp.disk_bytes() <= 4096


def test_drop_oldest_policy_counts_every_loss(tmp_path):
    sp = Spool(tmp_path, max_bytes=4096, segment_bytes=1024, policy="drop_oldest")
    seqs = []
    for _ in range(40):
        seqs += fill(sp, 1, size=500)
    assert sp.disk_bytes() <= 4096
    assert sp.dropped + len(sp) == len(seqs)
    assert sp.dropped > 0 and sp.pending() == seqs[-len(sp) :]


def test_batch_larger_than_the_spool_is_refused(tmp_path):
    sp = Spool(tmp_path, max_bytes=4096, segment_bytes=1024, policy="drop_oldest")
    with pytest.raises(SpoolFullError, match="can never fit"):
        fill(sp, 1, size=5000)


def test_bad_configuration(tmp_path):
    with pytest.raises(ValueError, match="policy"):
        Spool(tmp_path, policy="yolo")
    with pytest.raises(ValueError, match="2 \\* segment_bytes"):
        Spool(tmp_path, max_bytes=1000, segment_bytes=1000)


def test_put_is_fsynced(tmp_path, monkeypatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    sp = Spool(tmp_path)
    calls.clear()
    fill(sp, 10)
    assert len(calls) == 1  # one fsync per batch, not per record and not zero
