"""Descriptor encodings for the wire (docs/retrieval.md has the byte layouts).

| encoding | bytes for D dims | layout |
|---|---|---|
| float16 | 2·D | little-endian IEEE half floats |
| int8 | 4 + D | float32 LE scale s, then D int8 q; x ≈ q·s, s = max|x| / 127 |
| binary | ceil(D/8) | sign bits (x > 0 → 1), numpy packbits order (MSB first in each byte) |
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

ENCODINGS = ("float16", "int8", "binary")


def encoded_size(encoding: str, dim: int) -> int:
    return {"float16": 2 * dim, "int8": 4 + dim, "binary": (dim + 7) // 8}[check_encoding(encoding)]


def check_encoding(encoding: str) -> str:
    if encoding not in ENCODINGS:
        raise InputError(f"descriptor encoding must be one of {ENCODINGS}, found {encoding!r}")
    return encoding


def encode(desc: np.ndarray, encoding: str) -> bytes:
    v = np.asarray(desc, np.float32).reshape(-1)
    check_encoding(encoding)
    if not np.all(np.isfinite(v)):
        raise InputError("descriptor has NaN or infinite values")
    if encoding == "float16":
        return v.astype("<f2").tobytes()
    if encoding == "int8":
        scale = float(np.abs(v).max()) / 127 or 1.0
        q = np.clip(np.round(v / scale), -127, 127).astype(np.int8)
        return np.float32(scale).astype("<f4").tobytes() + q.tobytes()
    return np.packbits(v > 0).tobytes()


def decode(data: bytes, encoding: str, dim: int) -> np.ndarray:
    """Bytes -> float32 vector (binary: ±1 per bit); wrong lengths raise InputError."""
    want = encoded_size(encoding, dim)
    if len(data) != want:
        raise InputError(f"{encoding} descriptor of {dim} dims must be {want} bytes, found {len(data)}")
    if encoding == "float16":
        return np.frombuffer(data, "<f2").astype(np.float32)
    if encoding == "int8":
        scale = np.frombuffer(data[:4], "<f4")[0]
        return np.frombuffer(data[4:], np.int8).astype(np.float32) * scale
    bits = np.unpackbits(np.frombuffer(data, np.uint8))[:dim]
    return bits.astype(np.float32) * 2 - 1
