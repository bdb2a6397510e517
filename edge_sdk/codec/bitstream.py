"""The versioned latent bitstream (docs/bitstream.md is the byte-by-byte spec).

A stream carries one frame's latents: a 32-byte header (magic, version, coding mode,
frame size, patch size, latent shape and bit depth, body length, header CRC32), a
body of *records* and the body's CRC32.  A record is one arithmetic-coded or raw
block of latent bit-planes: one per patch (``mode="patch"``: every patch decodable on
its own, what the chip sends patch by patch) or one for the whole latent map
(``mode="frame"``: contexts cross patch borders, fewer bytes).  Each record falls back
to raw packed bits when arithmetic coding does not make it shorter.

The same record is the per-patch payload a device sends on its own
(:func:`encode_patch` / :func:`decode_patch`).  Every parse error is a
:class:`~edge_sdk.errors.BitstreamError` that says what was expected and what was found;
older versions are read, newer ones rejected.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import BitstreamError, InputError
from . import arith
from .bitplanes import check_codes, code_dtype, latent_from_planes, latent_planes, pack_bits, unpack_bits
from .patches import PatchGrid, tile_map, untile_map

MAGIC = b"EDLB"
VERSION = 1
MODES = ("patch", "frame")
CODER_ARITH_V1 = 1  # adaptive binary arithmetic coder, context model 1 (arith_ref.py)
CODING_RAW, CODING_ARITH = 0, 1
CODING_NAMES = {CODING_RAW: "raw", CODING_ARITH: "arith"}
MAX_PATCH = 4096
MAX_CHANNELS = 4
MAX_BITS = 16
_HEAD = struct.Struct("<4sBBBBHHHBBHHHHI")  # everything up to the header CRC
HEADER_SIZE = _HEAD.size + 4
TRAILER_SIZE = 4
_VARINT_MAX_BYTES = 5


@dataclass(frozen=True)
class StreamHeader:
    """The decoded header of a latent bitstream."""

    version: int
    mode: str
    channels: int
    width: int
    height: int
    patch: int
    bits: int
    latent_shape: tuple
    body_length: int = 0

    @property
    def grid(self) -> PatchGrid:
        return PatchGrid(self.height, self.width, self.patch)

    @property
    def bits_per_patch(self) -> int:
        lh, lw, lc = self.latent_shape
        return lh * lw * lc * self.bits


@dataclass
class DecodedStream:
    """Header, latents ``(N, lh, lw, lc)`` and the coding of each record ("arith"/"raw")."""

    header: StreamHeader
    latents: np.ndarray
    codings: list


# ---------------------------------------------------------------- records


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(buf: bytes, pos: int, what: str) -> tuple:
    value = 0
    for i in range(_VARINT_MAX_BYTES):
        if pos + i >= len(buf):
            raise BitstreamError(f"{what}: truncated record header at byte {pos + i} of {len(buf)}")
        byte = buf[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos + i + 1
    raise BitstreamError(f"{what}: record header longer than {_VARINT_MAX_BYTES} bytes")


def encode_block(latent: np.ndarray, bits: int, backend: Optional[str] = None) -> tuple:
    """One (H, W, C) block of codes -> (record bytes, coding name), raw if coding does not pay."""
    planes = latent_planes(latent, bits)
    raw = pack_bits(planes)
    coded = arith.encode_planes(planes, bits, backend)
    tag, body = (CODING_ARITH, coded) if len(coded) < len(raw) else (CODING_RAW, raw)
    return _varint(len(body) << 2 | tag) + body, CODING_NAMES[tag]


def _decode_record(buf: bytes, pos: int, shape: tuple, bits: int, backend: Optional[str], what: str) -> tuple:
    """Parse the record at ``pos``: (codes (H, W, C), coding name, next position)."""
    head, pos = _read_varint(buf, pos, what)
    tag, length = head & 3, head >> 2
    if tag not in CODING_NAMES:
        raise BitstreamError(f"{what}: coding tag expected 0 (raw) or 1 (arith), found {tag}")
    if length > len(buf) - pos:
        raise BitstreamError(f"{what}: record of {length} bytes but only {len(buf) - pos} left")
    body = buf[pos : pos + length]
    h, w, c = shape
    plane_shape = (c * bits, h, w)
    try:
        if tag == CODING_RAW:
            planes = unpack_bits(body, plane_shape)
        else:
            planes = arith.decode_planes(body, plane_shape, bits, backend)
    except BitstreamError as exc:
        raise BitstreamError(f"{what}: {exc}") from None
    return latent_from_planes(planes, bits), CODING_NAMES[tag], pos + length


def encode_patch(latent, bits: int, backend: Optional[str] = None) -> bytes:
    """One patch's latent ``(lh, lw, lc)`` -> its self-contained payload (one record)."""
    return encode_block(_check_latent(latent, bits, 3), bits, backend)[0]


def decode_patch(payload, latent_shape: tuple, bits: int, backend: Optional[str] = None) -> np.ndarray:
    """Inverse of :func:`encode_patch` (BitstreamError if the payload is corrupt or not one record)."""
    buf = bytes(payload)
    latent, _, end = _decode_record(buf, 0, tuple(latent_shape), bits, backend, "patch payload")
    if end != len(buf):
        raise BitstreamError(f"patch payload: expected {end} bytes, found {len(buf)}")
    return latent


def _check_latent(latent, bits: int, ndim: int) -> np.ndarray:
    arr = check_codes(latent, bits)
    if arr.ndim != ndim:
        raise InputError(f"latents must have {ndim} dimensions, found shape {arr.shape}")
    return arr


# ---------------------------------------------------------------- frames


def encode_latents(
    latents, grid: PatchGrid, bits: int, channels: int = 3, mode: str = "patch", backend: Optional[str] = None
) -> bytes:
    """Per-patch latents ``(N, lh, lw, lc)`` of ``grid`` -> a complete bitstream."""
    arr = _check_latent(latents, bits, 4)
    if arr.shape[0] != grid.n_patches:
        raise InputError(f"expected {grid.n_patches} patch latents, found {arr.shape[0]}")
    if mode not in MODES:
        raise InputError(f"mode must be one of {MODES}, found {mode!r}")
    header = StreamHeader(VERSION, mode, channels, grid.width, grid.height, grid.patch, bits, arr.shape[1:])
    _validate_header(header)
    if mode == "patch":
        body = b"".join(encode_block(lat, bits, backend)[0] for lat in arr)
    else:
        body = encode_block(tile_map(arr, grid), bits, backend)[0]
    lh, lw, lc = arr.shape[1:]
    head = _HEAD.pack(
        MAGIC,
        VERSION,
        MODES.index(mode),
        CODER_ARITH_V1,
        channels,
        grid.width,
        grid.height,
        grid.patch,
        bits,
        0,
        lh,
        lw,
        lc,
        0,
        len(body),
    )
    return head + struct.pack("<I", zlib.crc32(head)) + body + struct.pack("<I", zlib.crc32(body))


def read_header(data, max_bits: int = arith.MAX_SYMBOLS) -> StreamHeader:
    """Parse and check the header (BitstreamError: bad magic, newer version, CRC, impossible fields).

    ``max_bits`` caps the latent bits a frame may claim (at most :data:`arith.MAX_SYMBOLS`), so a
    hostile header cannot make the decoder allocate or decode more than the caller expects.
    """
    buf = bytes(data)
    if len(buf) < 5:
        raise BitstreamError(f"truncated stream: expected at least {HEADER_SIZE} bytes, found {len(buf)}")
    if buf[:4] != MAGIC:
        raise BitstreamError(f"not a latent bitstream: expected magic {MAGIC!r}, found {buf[:4]!r}")
    version = buf[4]
    if version > VERSION:
        raise BitstreamError(f"bitstream version {version} is newer than this reader: expected <= {VERSION}")
    if version < 1:
        raise BitstreamError(f"bitstream version: expected 1..{VERSION}, found {version}")
    return _PARSERS[version](buf, min(int(max_bits), arith.MAX_SYMBOLS))


def _parse_header_v1(buf: bytes, max_bits: int) -> StreamHeader:
    if len(buf) < HEADER_SIZE:
        raise BitstreamError(f"truncated header: expected {HEADER_SIZE} bytes, found {len(buf)}")
    (_, version, mode, coder, channels, width, height, patch, bits, res1, lh, lw, lc, res2, body_length) = (
        _HEAD.unpack_from(buf)
    )
    (crc,) = struct.unpack_from("<I", buf, _HEAD.size)
    actual = zlib.crc32(buf[: _HEAD.size])
    if crc != actual:
        raise BitstreamError(f"header CRC32 mismatch: expected {crc:#010x}, found {actual:#010x}")
    if mode >= len(MODES):
        raise BitstreamError(f"coding mode: expected 0 (patch) or 1 (frame), found {mode}")
    if coder != CODER_ARITH_V1:
        raise BitstreamError(f"coder id: expected {CODER_ARITH_V1}, found {coder}")
    if res1 or res2:
        raise BitstreamError(f"reserved header fields: expected 0, found {res1} and {res2}")
    header = StreamHeader(
        version, MODES[mode], channels, width, height, patch, bits, (lh, lw, lc), body_length
    )
    _validate_header(header, BitstreamError, max_bits)
    return header


def _validate_header(h: StreamHeader, error=InputError, max_bits: int = arith.MAX_SYMBOLS) -> None:
    """Field ranges and the total-size limit (the same checks for the writer and the reader)."""
    checks = [
        ("channels", h.channels, 1, MAX_CHANNELS),
        ("width", h.width, 1, 0xFFFF),
        ("height", h.height, 1, 0xFFFF),
        ("patch size", h.patch, 1, MAX_PATCH),
        ("latent bits", h.bits, 1, MAX_BITS),
    ] + [(f"latent {n}", v, 1, 0xFFFF) for n, v in zip(("height", "width", "channels"), h.latent_shape)]
    for name, value, lo, hi in checks:
        if not lo <= value <= hi:
            raise error(f"{name}: expected {lo}..{hi}, found {value}")
    total = h.grid.n_patches * h.bits_per_patch
    if total > max_bits:
        raise error(f"latent bits per frame: expected at most {max_bits}, found {total}")


_PARSERS = {1: _parse_header_v1}


def decode_latents(data, backend: Optional[str] = None, max_bits: int = arith.MAX_SYMBOLS) -> DecodedStream:
    """A complete bitstream -> header, per-patch latents ``(N, lh, lw, lc)`` and record codings.

    ``max_bits``: the most latent bits the caller accepts per frame (see :func:`read_header`).
    """
    buf = bytes(data)
    header = read_header(buf, max_bits)
    expected = HEADER_SIZE + header.body_length + TRAILER_SIZE
    if len(buf) != expected:
        kind = "truncated stream" if len(buf) < expected else "trailing bytes after the stream"
        raise BitstreamError(f"{kind}: expected {expected} bytes, found {len(buf)}")
    body = buf[HEADER_SIZE : HEADER_SIZE + header.body_length]
    (crc,) = struct.unpack_from("<I", buf, expected - TRAILER_SIZE)
    if crc != zlib.crc32(body):
        raise BitstreamError(f"body CRC32 mismatch: expected {crc:#010x}, found {zlib.crc32(body):#010x}")
    grid, (lh, lw, lc) = header.grid, header.latent_shape
    if header.mode == "frame":
        latent_map, coding, pos = _decode_record(
            body, 0, (grid.rows * lh, grid.cols * lw, lc), header.bits, backend, "frame record"
        )
        latents, codings = untile_map(latent_map, grid), [coding]
    else:
        latents = np.empty((grid.n_patches, lh, lw, lc), code_dtype(header.bits))
        codings, pos = [], 0
        for i in range(grid.n_patches):
            latents[i], coding, pos = _decode_record(
                body, pos, (lh, lw, lc), header.bits, backend, f"patch {i}"
            )
            codings.append(coding)
    if pos != len(body):
        raise BitstreamError(f"body: records end at byte {pos}, expected {len(body)}")
    return DecodedStream(header, latents, codings)
