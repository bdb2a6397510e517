"""The latent bitstream: round trips, raw fallback, version policy, exact error messages and a fuzz test."""

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_sdk.codec import bitstream as bs
from edge_sdk.codec import fuzz
from edge_sdk.codec.patches import PatchGrid
from edge_sdk.errors import BitstreamError, InputError


def _stream(mode="patch", seed=0, smooth=True, h=70, w=100, patch=32, shape=(4, 4, 3), bits=4):
    grid = PatchGrid(h, w, patch)
    rng = np.random.default_rng(seed)
    if smooth:
        base = rng.integers(0, 1 << bits, (grid.n_patches, 1, 1, shape[2]))
        latents = np.broadcast_to(base, (grid.n_patches, *shape)).copy()
    else:
        latents = rng.integers(0, 1 << bits, (grid.n_patches, *shape))
    return bs.encode_latents(latents, grid, bits, 3, mode), latents


def _fix_crcs(buf: bytearray) -> bytes:
    return fuzz.fix_crcs(buf)


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 130),
    st.integers(1, 130),
    st.sampled_from([8, 16, 32]),
    st.integers(1, 4),
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(1, 12),
    st.sampled_from(bs.MODES),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_round_trip_any_geometry(h, w, patch, lh, lw, lc, bits, mode, smooth, seed):
    data, latents = _stream(mode, seed, smooth, h, w, patch, (lh, lw, lc), bits)
    out = bs.decode_latents(data)
    assert np.array_equal(out.latents, latents)
    head = out.header
    assert (head.width, head.height, head.patch, head.bits, head.latent_shape, head.mode) == (
        w,
        h,
        patch,
        bits,
        (lh, lw, lc),
        mode,
    )
    assert len(out.codings) == (head.grid.n_patches if mode == "patch" else 1)


def test_raw_fallback_when_coding_does_not_pay_and_arith_when_it_does():
    noisy, _ = _stream(smooth=False, seed=3)
    assert set(bs.decode_latents(noisy).codings) == {"raw"}
    flat, _ = _stream(smooth=True)
    assert set(bs.decode_latents(flat).codings) == {"arith"}
    assert len(flat) < len(noisy)


def test_frame_mode_is_smaller_on_structured_latents():
    per_patch, latents = _stream("patch", h=256, w=256)
    per_frame, _ = _stream("frame", h=256, w=256)
    assert len(per_frame) < len(per_patch)


def test_patch_payloads_round_trip_and_reject_damage():
    latent = np.arange(48).reshape(4, 4, 3) % 16
    payload = bs.encode_patch(latent, 4)
    assert np.array_equal(bs.decode_patch(payload, (4, 4, 3), 4), latent)
    with pytest.raises(BitstreamError, match="expected .* found"):
        bs.decode_patch(payload + b"\x00", (4, 4, 3), 4)
    with pytest.raises(BitstreamError):
        bs.decode_patch(payload[:-1], (4, 4, 3), 4)
    with pytest.raises(BitstreamError, match="coding tag"):
        bs.decode_patch(bytes([payload[0] | 3]) + payload[1:], (4, 4, 3), 4)


def test_header_layout_is_the_documented_one():
    data, _ = _stream()
    assert data[:4] == b"EDLB" and data[4] == bs.VERSION and bs.HEADER_SIZE == 32
    assert struct.unpack_from("<HH", data, 8) == (100, 70) and struct.unpack_from("<H", data, 12) == (32,)
    assert data[14] == 4 and struct.unpack_from("<HHH", data, 16) == (4, 4, 3)
    (body_len,) = struct.unpack_from("<I", data, 24)
    assert len(data) == 32 + body_len + 4


def test_newer_versions_are_rejected_and_every_older_one_has_a_reader():
    data, _ = _stream()
    newer = bytearray(data)
    newer[4] = bs.VERSION + 1
    with pytest.raises(
        BitstreamError, match=f"version {bs.VERSION + 1} is newer .* expected <= {bs.VERSION}"
    ):
        bs.decode_latents(_fix_crcs(newer))
    newer[4] = 0
    with pytest.raises(BitstreamError, match="expected 1"):
        bs.decode_latents(_fix_crcs(newer))
    assert sorted(bs._PARSERS) == list(range(1, bs.VERSION + 1))


@pytest.mark.parametrize(
    "offset,value,message",
    [
        (0, b"XDLB", "expected magic"),
        (5, b"\x02", "coding mode: expected 0 .* found 2"),
        (6, b"\x09", "coder id: expected 1, found 9"),
        (7, b"\x00", "channels: expected 1..4, found 0"),
        (8, b"\x00\x00", "width: expected 1..65535, found 0"),
        (14, b"\x11", "latent bits: expected 1..16, found 17"),
        (15, b"\x01", "reserved header fields"),
        (16, b"\xff\xff", "latent bits per frame: expected at most"),
        (24, b"\x00\x00\x00\x00", "truncated stream|trailing bytes"),
    ],
)
def test_corrupt_header_fields_say_expected_and_found(offset, value, message):
    data, _ = _stream()
    buf = bytearray(data)
    buf[offset : offset + len(value)] = value
    with pytest.raises(BitstreamError, match=message):
        bs.decode_latents(_fix_crcs(buf) if offset else bytes(buf))


def test_crc_mismatches_name_both_values():
    data, _ = _stream()
    head = bytearray(data)
    head[9] ^= 1
    with pytest.raises(BitstreamError, match=r"header CRC32 mismatch: expected 0x[0-9a-f]{8}, found 0x"):
        bs.decode_latents(bytes(head))
    body = bytearray(data)
    body[40] ^= 1
    with pytest.raises(BitstreamError, match="body CRC32 mismatch"):
        bs.decode_latents(bytes(body))


def test_max_bits_caps_what_a_header_may_claim():
    data, _ = _stream()  # 12 patches x 192 bits
    assert bs.decode_latents(data, max_bits=12 * 192).latents.shape[0] == 12
    with pytest.raises(BitstreamError, match="expected at most 2303, found 2304"):
        bs.decode_latents(data, max_bits=12 * 192 - 1)


def test_every_truncation_and_any_trailing_byte_is_an_error():
    data, _ = _stream()
    for k in range(len(data)):
        with pytest.raises(BitstreamError):
            bs.decode_latents(data[:k])
    with pytest.raises(BitstreamError, match="trailing bytes after the stream: expected"):
        bs.decode_latents(data + b"\x00")


def test_writer_validates_its_arguments():
    grid = PatchGrid(32, 32, 32)
    with pytest.raises(InputError):
        bs.encode_latents(np.zeros((2, 1, 1, 1)), grid, 4)
    with pytest.raises(InputError):
        bs.encode_latents(np.full((1, 1, 1, 1), 16), grid, 4)
    with pytest.raises(InputError):
        bs.encode_latents(np.zeros((1, 1, 1, 1)), grid, 4, mode="tile")
    with pytest.raises(InputError):
        bs.encode_latents(np.zeros((1, 1, 1, 1)), grid, 4, channels=7)


def test_fuzz_only_bitstream_errors():
    """>= 5,000 mutations of valid streams (60 % with repaired CRCs): decode or BitstreamError, nothing else."""
    report = fuzz.run(6000, seed=2024)
    assert report.failures == [], report.summary()
    assert report.iterations == 6000 and report.outcomes["accepted"] < 3000
    deep = [k for k in report.outcomes if k.startswith("BitstreamError: patch") or "record" in k]
    assert deep, report.summary()  # the mutations reach the record parser, not only the checksums
