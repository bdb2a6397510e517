"""The container checks of the reader: header, section table, padding and checksums.

Steps 1-4 of docs/firmware-format.md section 6.  Nothing here allocates more than
the header and table it reads; every offset and length is checked against the
image size before it is used.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import FirmwareError
from .format import (
    ENTRY_SIZE,
    EXTENSIBLE,
    FLAGS_KNOWN,
    FLAGS_MUST_UNDERSTAND,
    HEADER_SIZE,
    MAGIC,
    MAX_SECTIONS,
    PROFILE_ID_SIZE,
    RECORD_SIZES,
    SCHEDULE_PREAMBLE,
    SECTION_OPTIONAL,
    VERSION_MAJOR,
    VERSION_MINOR,
    Header,
    Section,
    SectionInfo,
    align,
    crc32,
    image_sha256,
    section_name,
)

MAX_RECORD_SIZE = 4096  # a newer minor may lengthen records, but not absurdly


@dataclass
class Container:
    """A checked header and section table."""

    header: Header
    entries: list[SectionInfo]  # every entry, table order (unknown optional ones included)
    known: dict[Section, SectionInfo]
    newer: bool  # the image's minor version is newer than this reader's

    @property
    def profile_id(self) -> str:
        return self.header.profile_id.rstrip(b"\0").decode("ascii")


def _fail(message: str) -> FirmwareError:
    return FirmwareError(message)


def check_version(buf: memoryview) -> tuple[int, int]:
    """Magic and version, checked before anything else so a newer major is named correctly."""
    n = len(buf)
    if n < 12:
        raise _fail(f"image too short: expected at least 12 bytes (magic and version), found {n}")
    magic = bytes(buf[:8])
    if magic != MAGIC:
        raise _fail(f"not a firmware image: expected magic {MAGIC.hex(' ')}, found {magic.hex(' ')}")
    major, minor = struct.unpack("<HH", buf[8:12])
    if major != VERSION_MAJOR:
        raise _fail(
            f"image format version {major}.{minor} is not supported by this reader "
            f"(reads {VERSION_MAJOR}.x up to {VERSION_MAJOR}.{VERSION_MINOR})"
        )
    return major, minor


def _check_header(buf: memoryview, h: Header, newer: bool) -> None:
    n = len(buf)
    want = f">= {HEADER_SIZE}, a multiple of 16" if newer else f"{HEADER_SIZE}"
    if h.header_size < HEADER_SIZE or h.header_size % 16 or (not newer and h.header_size != HEADER_SIZE):
        raise _fail(f"header_size: expected {want}, found {h.header_size}")
    if h.total_size != n:
        raise _fail(
            f"total_size: header says {h.total_size} bytes, the image has {n} (truncated or extended?)"
        )
    if n % 16:
        raise _fail(f"image size must be a multiple of 16, found {n}")
    unknown = h.flags & ~FLAGS_KNOWN & (FLAGS_MUST_UNDERSTAND if newer else 0xFFFFFFFF)
    if unknown:
        raise _fail(f"header flags: unknown bits 0x{unknown:08x} set (known: 0x{FLAGS_KNOWN:08x})")
    if not 1 <= h.section_count <= MAX_SECTIONS:
        raise _fail(f"section_count: expected 1..{MAX_SECTIONS}, found {h.section_count}")
    want = ">= 32, a multiple of 8" if newer else f"{ENTRY_SIZE}"
    if (
        h.entry_size < ENTRY_SIZE
        or h.entry_size % 8
        or h.entry_size > MAX_RECORD_SIZE
        or (not newer and h.entry_size != ENTRY_SIZE)
    ):
        raise _fail(f"section_entry_size: expected {want}, found {h.entry_size}")
    if any(h.reserved):
        raise _fail(f"header reserved bytes 46..63 must be zero, found {h.reserved.hex()}")
    if min(h.input_shape) < 1:
        raise _fail(f"input_shape: expected 3 dimensions >= 1, found {h.input_shape}")
    pid = h.profile_id
    name = pid.split(b"\0", 1)[0]
    if not name or pid != name.ljust(PROFILE_ID_SIZE, b"\0") or not all(0x20 <= ch < 0x7F for ch in name):
        raise _fail(f"profile_id: expected printable ASCII padded with NUL, found {pid!r}")


def _check_entry(e: SectionInfo, prev_type: int, expect_offset: int, n: int, newer: bool) -> None:
    where = f"section {section_name(e.type)}"
    if e.type <= prev_type:
        raise _fail(
            f"{where}: section types must strictly increase along the table, found {e.type} after {prev_type}"
        )
    known = e.type in Section._value2member_map_
    if not known and not (newer and e.flags & SECTION_OPTIONAL):
        raise _fail(
            f"{where} is unknown to this reader (format {VERSION_MAJOR}.{VERSION_MINOR}) and not flagged "
            f"optional in a newer-minor image"
        )
    allowed = SECTION_OPTIONAL if newer else (0 if known else SECTION_OPTIONAL)
    if e.flags & ~allowed or e.reserved:
        raise _fail(
            f"{where}: flags 0x{e.flags:04x} / reserved {e.reserved} (allowed flags 0x{allowed:04x}, "
            f"reserved 0)"
        )
    if e.offset != expect_offset:
        raise _fail(
            f"{where}: expected offset {expect_offset} (sections are packed in table order, 16-byte "
            f"aligned), found {e.offset}"
        )
    if e.length > n - e.offset:
        raise _fail(f"{where}: {e.length} bytes at offset {e.offset} run past the image end ({n} bytes)")
    if known:
        _check_record_size(Section(e.type), e, newer)


def _check_record_size(kind: Section, e: SectionInfo, newer: bool) -> None:
    base = RECORD_SIZES[kind]
    ok = e.record_size == base or (newer and kind in EXTENSIBLE and base <= e.record_size <= MAX_RECORD_SIZE)
    if not ok:
        raise _fail(f"section {kind.name}: expected record_size {base}, found {e.record_size}")
    body = e.length - (SCHEDULE_PREAMBLE.size if kind == Section.SCHEDULE else 0)
    if body < 0 or body % e.record_size:
        raise _fail(
            f"section {kind.name}: length {e.length} is not "
            f"{'16 + ' if kind == Section.SCHEDULE else ''}a multiple of record_size {e.record_size}"
        )


def _check_zero(buf: memoryview, start: int, end: int, what: str) -> None:
    if end > start and any(buf[start:end]):
        raise _fail(
            f"{what}: padding bytes {start}..{end - 1} must be zero, found {bytes(buf[start:end]).hex()}"
        )


def parse_container(buf: memoryview) -> Container:
    """Check everything outside the section payloads, then the CRC-32s and the SHA-256."""
    _major, minor = check_version(buf)
    n = len(buf)
    if n < HEADER_SIZE:
        raise _fail(f"image truncated: expected at least the {HEADER_SIZE}-byte header, found {n} bytes")
    header = Header.unpack(bytes(buf[:HEADER_SIZE]))
    newer = minor > VERSION_MINOR
    _check_header(buf, header, newer)
    table_end = header.header_size + header.section_count * header.entry_size
    if table_end > n:
        raise _fail(
            f"section table: {header.section_count} entries of {header.entry_size} bytes end at "
            f"{table_end}, past the image end ({n})"
        )
    entries, prev_type, cursor = [], 0, align(table_end)
    _check_zero(buf, table_end, min(cursor, n), "after the section table")
    for k in range(header.section_count):
        at = header.header_size + k * header.entry_size
        entry = SectionInfo.unpack(bytes(buf[at : at + ENTRY_SIZE]))
        _check_entry(entry, prev_type, cursor, n, newer)
        end = entry.offset + entry.length
        cursor = align(end)
        _check_zero(buf, end, min(cursor, n), f"after section {entry.name}")
        entries.append(entry)
        prev_type = entry.type
    if cursor != n:
        raise _fail(f"image size: the sections end at {cursor}, the image has {n} bytes")
    known = {Section(e.type): e for e in entries if e.type in Section._value2member_map_}
    missing = [s.name for s in Section if s not in known]
    if missing:
        raise _fail(f"required sections missing: {', '.join(missing)}")
    _check_checksums(buf, header, entries)
    return Container(header, entries, known, newer)


def _check_checksums(buf: memoryview, header: Header, entries: list[SectionInfo]) -> None:
    # CRCs first: they say which section is damaged; the SHA-256 then covers everything else.
    for e in entries:
        found = crc32(buf[e.offset : e.offset + e.length])
        if found != e.crc32:
            raise _fail(
                f"section {e.name}: CRC-32 mismatch (table says {e.crc32:08x}, payload has {found:08x})"
            )
    digest = image_sha256(buf)
    if digest != header.sha256:
        raise _fail(f"SHA-256 mismatch: header says {header.sha256.hex()}, image hashes to {digest.hex()}")
