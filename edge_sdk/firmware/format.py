"""Constants and fixed structures of firmware image format v1 (docs/firmware-format.md).

Everything with a byte layout lives here, so the writer, the reader and the fuzzer
agree on one definition: the header, the section table entry, the LAYERS and
SCHEDULE records, and the two checksums.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

MAGIC = b"\x89EFW\r\n\x1a\n"
VERSION_MAJOR = 1
VERSION_MINOR = 0

ALIGN = 16
MAX_SECTIONS = 64  # bounds the table a reader walks before any checksum is verified
MAX_DIM = 65535  # shapes are u16 fields
MAX_TILES = 1 << 18  # bounds the reader's schedule re-check (docs section 5.5)
# With MAX_TILES these bound the work of re-checking a schedule (tiling enumerates
# channel-group candidates per layer in O(C_out)): a crafted image cannot stall a reader.
MAX_CHIP_LAYERS = 1024
MAX_CHIP_CHANNELS = 1 << 18  # output channels summed over all chip layers
MAX_METADATA_DEPTH = 32

FLAG_HAS_HOST = 1 << 0
FLAGS_KNOWN = FLAG_HAS_HOST
FLAGS_MUST_UNDERSTAND = 0xFFFF  # bits 0..15; bits 16..31 are ignorable additions of newer minors

SECTION_OPTIONAL = 1 << 0

# Header: magic, major, minor, header_size, total_size, flags, section_count,
# section_entry_size, layer_count, input_shape[3], reserved[18], profile_id[32], sha256[32].
HEADER = struct.Struct("<8sHHIQIIII3H18s32s32s")
HEADER_SIZE = HEADER.size  # 128
SHA_OFFSET = 96
SHA_SIZE = 32
PROFILE_ID_SIZE = 32

# Section table entry: type, flags, crc32, offset, length, record_size, reserved.
ENTRY = struct.Struct("<HHIQQII")
ENTRY_SIZE = ENTRY.size  # 32

# LAYERS record: op, output, weight_bits, act_bits, kernel, stride, n_inputs, reserved,
# pad[4], shift, inputs[2], in_shape[3], out_shape[3], groups, reserved, mults[2],
# out_scale, then (offset, length) for name, weights, scalars, bias, host.
LAYER = struct.Struct("<8B4Bi2i3H3HHH2id10I")
LAYER_SIZE = LAYER.size  # 96

SCHEDULE_PREAMBLE = struct.Struct("<QQ")  # activation_sram_bits, weight_sram_bits
# SCHEDULE record: layer, band_rows, group_channels, weights_resident, reserved[3], act_bits, weight_bits.
SCHEDULE = struct.Struct("<IIIB3sQQ")
SCHEDULE_SIZE = SCHEDULE.size  # 32

OUTPUT_CODES = {"act": 0, "raw": 1}
OUTPUT_NAMES = {v: k for k, v in OUTPUT_CODES.items()}


class Section(IntEnum):
    """Section types of format 1.0, in the order they appear in an image."""

    PROFILE = 1
    LAYERS = 2
    WEIGHTS = 3
    SCALARS = 4
    BIAS = 5
    HOST = 6
    SCHEDULE = 7
    STRINGS = 8
    METADATA = 9


# Size of one element (arrays) or record (LAYERS, SCHEDULE) per section type.
RECORD_SIZES = {
    Section.PROFILE: 1,
    Section.LAYERS: LAYER_SIZE,
    Section.WEIGHTS: 1,
    Section.SCALARS: 2,
    Section.BIAS: 4,
    Section.HOST: 4,
    Section.SCHEDULE: SCHEDULE_SIZE,
    Section.STRINGS: 1,
    Section.METADATA: 1,
}
# Sections whose records a newer minor may lengthen (the reader reads the known prefix).
EXTENSIBLE = (Section.LAYERS, Section.SCHEDULE)


def section_name(code: int) -> str:
    """Name of a section type code ('type 0x00ab' if unknown)."""
    try:
        return Section(code).name
    except ValueError:
        return f"type 0x{code:04x}"


@dataclass
class Header:
    """The decoded fixed header (offsets in docs/firmware-format.md section 3)."""

    magic: bytes
    major: int
    minor: int
    header_size: int
    total_size: int
    flags: int
    section_count: int
    entry_size: int
    layer_count: int
    input_shape: tuple[int, int, int]
    reserved: bytes
    profile_id: bytes
    sha256: bytes

    def pack(self) -> bytes:
        return HEADER.pack(
            self.magic,
            self.major,
            self.minor,
            self.header_size,
            self.total_size,
            self.flags,
            self.section_count,
            self.entry_size,
            self.layer_count,
            *self.input_shape,
            self.reserved,
            self.profile_id,
            self.sha256,
        )

    @classmethod
    def unpack(cls, raw: bytes) -> Header:
        v = HEADER.unpack(raw)
        return cls(
            v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], (v[9], v[10], v[11]), v[12], v[13], v[14]
        )


@dataclass
class SectionInfo:
    """One section table entry, as FirmwareImage.sections lists it."""

    type: int
    flags: int
    crc32: int
    offset: int
    length: int
    record_size: int
    reserved: int = 0

    @property
    def name(self) -> str:
        return section_name(self.type)

    def pack(self) -> bytes:
        return ENTRY.pack(
            self.type, self.flags, self.crc32, self.offset, self.length, self.record_size, self.reserved
        )

    @classmethod
    def unpack(cls, raw: bytes) -> SectionInfo:
        return cls(*ENTRY.unpack(raw))

    def to_dict(self) -> dict:
        return {
            "type": self.name,
            "code": self.type,
            "flags": self.flags,
            "offset": self.offset,
            "length": self.length,
            "record_size": self.record_size,
            "crc32": f"{self.crc32:08x}",
        }


def align(n: int) -> int:
    """n rounded up to the section alignment (16)."""
    return (n + ALIGN - 1) // ALIGN * ALIGN


def crc32(data) -> int:
    """CRC-32 (zlib, ISO-HDLC) of a buffer, without copying it."""
    return zlib.crc32(data) & 0xFFFFFFFF


def image_sha256(buf) -> bytes:
    """SHA-256 of the whole image with the header's sha256 field taken as zero."""
    view = memoryview(buf).cast("B")
    h = hashlib.sha256()
    h.update(view[:SHA_OFFSET])
    h.update(bytes(SHA_SIZE))
    h.update(view[SHA_OFFSET + SHA_SIZE :])
    return h.digest()


def reseal(buf: bytearray) -> bytearray:
    """Recompute every in-bounds section CRC and the SHA-256 of an (edited) image in place.

    A test and fuzzing aid: after a deliberate edit, resealing makes the checksums
    agree again so that a reader's deeper validation is exercised, not just its
    checksums.  Entries that are unreadable or out of bounds are left alone.
    """
    if len(buf) < HEADER_SIZE:
        return buf
    header = Header.unpack(bytes(buf[:HEADER_SIZE]))
    entry_size = max(header.entry_size, ENTRY_SIZE)
    for k in range(min(header.section_count, MAX_SECTIONS)):
        at = header.header_size + k * entry_size
        if at + ENTRY_SIZE > len(buf):
            break
        entry = SectionInfo.unpack(bytes(buf[at : at + ENTRY_SIZE]))
        if entry.offset + entry.length <= len(buf):
            entry.crc32 = crc32(memoryview(buf)[entry.offset : entry.offset + entry.length])
            buf[at : at + ENTRY_SIZE] = entry.pack()
    buf[SHA_OFFSET : SHA_OFFSET + SHA_SIZE] = image_sha256(buf)
    return buf
