"""The validating reader: versioning, container rules and targeted corruptions.

Each test edits a valid image, usually recomputing its checksums (``reseal``) so
that the check under test, not the CRC or SHA-256, is what rejects it.
"""

from __future__ import annotations

import dataclasses
import json
import struct

import msgpack
import pytest

from edge_sdk.builder import NetworkBuilder
from edge_sdk.errors import EdgeSDKError, FirmwareError
from edge_sdk.firmware import load_firmware, write_firmware
from edge_sdk.firmware.format import (
    ENTRY_SIZE,
    HEADER_SIZE,
    LAYER,
    SCHEDULE_PREAMBLE,
    SECTION_OPTIONAL,
    Header,
    Section,
    SectionInfo,
    align,
    crc32,
    reseal,
)
from edge_sdk.firmware.samples import golden_network


@pytest.fixture(scope="module")
def light() -> bytes:
    return write_firmware(golden_network("lightspeeur-2803"))


@pytest.fixture(scope="module")
def nqe() -> bytes:
    return write_firmware(golden_network("nqe-1mb"))


def sections(data: bytes) -> dict[int, SectionInfo]:
    h = Header.unpack(data[:HEADER_SIZE])
    out = {}
    for k in range(h.section_count):
        at = h.header_size + k * h.entry_size
        e = SectionInfo.unpack(data[at : at + ENTRY_SIZE])
        out[e.type] = e
    return out


def payload(data: bytes, kind: int) -> bytes:
    e = sections(data)[kind]
    return data[e.offset : e.offset + e.length]


def rebuild(
    data: bytes, *, minor=0, header_extra=0, entry_extra=0, record_extra=0, flags_or=0, extra=(), replace=None
):
    """Re-lay an image out with other container parameters (what a newer-minor writer could produce)."""
    h = Header.unpack(data[:HEADER_SIZE])
    secs = sections(data)
    items = {t: (e.flags, payload(data, t), e.record_size) for t, e in secs.items()}
    for t, body in (replace or {}).items():
        items[t] = (items[t][0], body, items[t][2])
    if record_extra:  # lengthen every LAYERS and SCHEDULE record by trailing 0xEE bytes
        f, body, rs = items[Section.LAYERS]
        items[Section.LAYERS] = (
            f,
            b"".join(body[i : i + rs] + b"\xee" * record_extra for i in range(0, len(body), rs)),
            rs + record_extra,
        )
        f, body, rs = items[Section.SCHEDULE]
        pre, recs = body[: SCHEDULE_PREAMBLE.size], body[SCHEDULE_PREAMBLE.size :]
        recs = b"".join(recs[i : i + rs] + b"\xee" * record_extra for i in range(0, len(recs), rs))
        items[Section.SCHEDULE] = (f, pre + recs, rs + record_extra)
    for t, flags, body, rs in extra:
        items[t] = (flags, body, rs)
    header_size, entry_size = HEADER_SIZE + header_extra, ENTRY_SIZE + entry_extra
    offset = align(header_size + len(items) * entry_size)
    entries = []
    for t in sorted(items):
        flags, body, rs = items[t]
        entries.append(SectionInfo(t, flags, crc32(body), offset, len(body), rs))
        offset = align(offset + len(body))
    buf = bytearray(offset)
    new_h = dataclasses.replace(
        h,
        minor=minor,
        header_size=header_size,
        entry_size=entry_size,
        section_count=len(entries),
        total_size=offset,
        flags=h.flags | flags_or,
    )
    buf[:HEADER_SIZE] = new_h.pack()
    buf[HEADER_SIZE:header_size] = b"\xaa" * header_extra
    for k, e in enumerate(entries):
        at = header_size + k * entry_size
        buf[at : at + entry_size] = e.pack() + b"\xbb" * entry_extra
        buf[e.offset : e.offset + e.length] = items[e.type][1]
    return bytes(reseal(buf))


def edit(data: bytes, offset: int, value: bytes, *, seal: bool = True) -> bytes:
    buf = bytearray(data)
    buf[offset : offset + len(value)] = value
    return bytes(reseal(buf)) if seal else bytes(buf)


def rejects(data, match: str) -> FirmwareError:
    with pytest.raises(FirmwareError, match=match) as info:
        load_firmware(data)
    assert isinstance(info.value, (ValueError, EdgeSDKError))
    return info.value


def layer_field(data: bytes, index: int, name_offset: int) -> int:
    """Image offset of a LAYERS record field (name_offset = the field's offset in the record)."""
    return sections(data)[Section.LAYERS].offset + index * LAYER.size + name_offset


# --- versioning -----------------------------------------------------------------------------------------------------


def test_newer_major_is_rejected_naming_both_versions(light):
    err = rejects(edit(light, 8, struct.pack("<HH", 2, 3)), "version 2.3 is not supported")
    assert "1.0" in str(err) and "2.3" in str(err)
    rejects(
        light[:8] + struct.pack("<HH", 7, 0), "version 7.0 is not supported"
    )  # a v7 header we cannot parse
    rejects(edit(light, 8, struct.pack("<H", 0)), "version 0.0 is not supported")


def test_newer_minor_with_only_ignorable_extensions_is_accepted(light):
    future = rebuild(
        light,
        minor=1,
        header_extra=16,
        entry_extra=8,
        record_extra=8,
        flags_or=1 << 20,
        extra=[(0x0100, SECTION_OPTIONAL, b"future data", 1)],
    )
    image = load_firmware(future)
    assert image.version == (1, 1)
    assert write_firmware(image.network) == light
    assert any(s.type == 0x0100 for s in image.sections)


def test_newer_minor_with_a_required_unknown_section_is_rejected(light):
    rejects(
        rebuild(light, minor=1, extra=[(0x0100, 0, b"x", 1)]), "unknown to this reader.*not flagged optional"
    )


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(extra=[(0x0100, SECTION_OPTIONAL, b"x", 1)]), "unknown to this reader"),
        (dict(header_extra=16), "header_size: expected 128"),
        (dict(entry_extra=8), "section_entry_size: expected 32"),
        (dict(record_extra=8), "expected record_size 96"),
        (dict(flags_or=1 << 20), "unknown bits"),
        (
            dict(minor=1, flags_or=1 << 3),
            "unknown bits",
        ),  # bits 0..15 must be understood even in newer minors
    ],
)
def test_extensions_are_rejected_where_not_allowed(light, change, match):
    rejects(rebuild(light, **change), match)


def test_rebuild_without_changes_is_identity(light, nqe):
    assert rebuild(light) == light and rebuild(nqe) == nqe


# --- container ------------------------------------------------------------------------------------------------------


def test_every_truncation_is_rejected(nqe):
    for cut in range(0, len(nqe), 5):
        with pytest.raises(FirmwareError):
            load_firmware(nqe[:cut])


def test_bad_magic_and_sizes(light):
    rejects(b"", "too short: expected at least 12 bytes")
    rejects(b"PK\x03\x04" + light[4:], "not a firmware image: expected magic 89 45 46 57")
    rejects(light + bytes(16), "total_size: header says")
    rejects(edit(light + bytes(16), 16, struct.pack("<Q", len(light) + 16)), "sections end at")
    rejects(light[: HEADER_SIZE - 1], "truncated")


def test_checksums_name_the_damage(light):
    w = sections(light)[Section.WEIGHTS]
    rejects(
        edit(light, w.offset, bytes([light[w.offset] ^ 1]), seal=False), "section WEIGHTS: CRC-32 mismatch"
    )
    rejects(edit(light, 96, bytes(32), seal=False), "SHA-256 mismatch")
    buf = bytearray(light)
    buf[w.offset] ^= 1
    at = HEADER_SIZE + [e.type for e in sections(light).values()].index(Section.WEIGHTS) * ENTRY_SIZE
    struct.pack_into("<I", buf, at + 4, crc32(buf[w.offset : w.offset + w.length]))
    rejects(bytes(buf), "SHA-256 mismatch")  # CRC fixed, SHA not


def test_huge_lengths_are_rejected_before_allocation(light):
    at = HEADER_SIZE + 2 * ENTRY_SIZE  # the WEIGHTS entry
    rejects(edit(light, at + 16, struct.pack("<Q", 2**62)), "run past the image end")
    rejects(edit(light, 28, struct.pack("<I", 2**31)), "section_count")
    rejects(edit(light, 36, struct.pack("<I", 2**31)), "layer_count is 2147483648")


def test_padding_and_reserved_bytes_must_be_zero(light):
    e = sections(light)[Section.PROFILE]
    end = e.offset + e.length
    assert end % 16, "the golden profile JSON should leave padding"
    rejects(edit(light, end, b"\x01"), "padding bytes .* must be zero")
    rejects(edit(light, 50, b"\x01"), "reserved bytes")
    rejects(edit(light, HEADER_SIZE + 28, b"\x01"), "reserved")
    rejects(edit(light, layer_field(light, 0, 7), b"\x01"), "reserved fields must be zero")


def test_section_order_and_offsets(light):
    rejects(
        edit(light, HEADER_SIZE + 8, struct.pack("<Q", sections(light)[1].offset + 16)), "expected offset"
    )
    rejects(edit(light, HEADER_SIZE, struct.pack("<H", 3)), "strictly increase")


# --- section contents -----------------------------------------------------------------------------------------------


def _weights_of(data: bytes, index: int) -> int:
    off = struct.unpack_from("<I", data, layer_field(data, index, 64))[0]
    return sections(data)[Section.WEIGHTS].offset + off


def test_code_ranges_are_checked_per_weight_mode(light):
    net = golden_network("lightspeeur-2803")
    ternary = next(i for i, lay in enumerate(net.layers) if lay.weight_bits == 2)
    at = _weights_of(light, ternary)
    rejects(
        edit(light, at, bytes([(light[at] & ~0b11) | 0b10])),
        "2-bit linear code -2 at index 0 is outside .*-1..1",
    )
    five = next(i for i, lay in enumerate(net.layers) if lay.weight_bits == 5)
    at = _weights_of(light, five)
    rejects(edit(light, at, bytes([(light[at] & ~0b11111) | 0b10000])), "5-bit linear code -16 .* -15..15")


def test_pad_bits_after_the_last_code_must_be_zero():
    b = NetworkBuilder("nqe-1mb", (8, 8, 3), seed=0)
    b.conv(3, bits=3)  # 3*3*3*3 = 81 codes x 3 bits = 243 bits: 5 pad bits in the last byte
    data = write_firmware(b.build())
    last = sections(data)[Section.WEIGHTS].offset + (243 + 7) // 8 - 1
    assert data[last] >> 3 == 0
    rejects(edit(data, last, bytes([data[last] | 0x80])), "pad bits")


def test_data_references_must_be_canonical(light):
    rejects(edit(light, layer_field(light, 1, 64), struct.pack("<I", 1)), "weights reference")
    rejects(edit(light, layer_field(light, 0, 84), struct.pack("<I", 4)), "bias reference")
    rejects(edit(light, layer_field(light, 3, 68), struct.pack("<I", 8)), "weights reference")


def test_record_fields_are_range_checked(light):
    rejects(edit(light, layer_field(light, 0, 0), b"\x09"), "op code must be one of")
    rejects(edit(light, layer_field(light, 0, 1), b"\x02"), "output must be 0")
    rejects(edit(light, layer_field(light, 2, 16), struct.pack("<i", 5)), "inputs must be")
    rejects(edit(light, layer_field(light, 0, 48), struct.pack("<d", float("inf"))), "out_scale")
    rejects(edit(light, layer_field(light, 0, 12), struct.pack("<i", 99)), "not valid for profile .*shift 99")
    rejects(edit(light, layer_field(light, 0, 2), b"\x04"), "weight_bits 4 is not a weight mode")


def test_schedule_is_rechecked(light):
    e = sections(light)[Section.SCHEDULE]
    rec = e.offset + SCHEDULE_PREAMBLE.size
    act = struct.unpack_from("<Q", light, rec + 16)[0]
    rejects(edit(light, rec + 16, struct.pack("<Q", act + 1)), "SCHEDULE does not match.*recorded")
    rejects(edit(light, e.offset, struct.pack("<Q", 8)), "SRAM limits")
    rejects(edit(light, rec + 12, b"\x02"), "weights_resident")


def test_profile_must_be_canonical_and_consistent(light):
    prof = json.loads(payload(light, Section.PROFILE))
    rejects(
        rebuild(light, replace={Section.PROFILE: json.dumps(prof, indent=1).encode()}), "not canonical JSON"
    )
    prof["sram"]["activation_bytes"] = 64
    smaller = json.dumps(prof, sort_keys=True, separators=(",", ":")).encode()
    rejects(rebuild(light, replace={Section.PROFILE: smaller}), "SRAM limits")
    rejects(rebuild(light, replace={Section.PROFILE: b"[" * 100000}), "PROFILE")
    rejects(rebuild(light, replace={Section.PROFILE: b'{"id": 3}'}), "PROFILE")


def test_metadata_must_be_canonical(light):
    unsorted = msgpack.packb({"z": 1, "a": 2})
    rejects(rebuild(light, replace={Section.METADATA: unsorted}), "METADATA: not in canonical form")
    rejects(rebuild(light, replace={Section.METADATA: msgpack.packb([1, 2])}), "expected a msgpack map")
    rejects(rebuild(light, replace={Section.METADATA: b"\x91" * 5000}), "METADATA")
    rejects(
        rebuild(light, replace={Section.METADATA: msgpack.packb({"t": msgpack.ExtType(5, b"x")})}), "METADATA"
    )


def test_names_must_be_utf8(light):
    at = sections(light)[Section.STRINGS].offset
    rejects(edit(light, at, b"\xff"), "not valid UTF-8")


def test_bad_sources(tmp_path):
    rejects(12345, "expects a path, bytes")
    rejects(str(tmp_path / "missing.edgefw"), "cannot read firmware image")
    rejects(tmp_path, "cannot read firmware image")
    empty = tmp_path / "empty.edgefw"
    empty.write_bytes(b"")
    rejects(empty, "too short")
