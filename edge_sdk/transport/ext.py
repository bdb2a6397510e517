"""msgpack extension types of protocol v1: typed arrays, packed bits and tiny images.

One table (mirrored in docs/protocol.md):

====  ==========  ===========================================================
code  name        payload layout
====  ==========  ===========================================================
1     F16_ARRAY   little-endian IEEE float16 values, 1-D
2     I8_ARRAY    int8 values, 1-D
3     BITS        uint32 LE bit count n, then ceil(n/8) bytes (MSB first)
4     F32_ARRAY   little-endian IEEE float32 values, 1-D
5     U8_IMAGE    uint16 LE height, uint16 LE width, uint8 channels, then
                  height*width*channels uint8 bytes, row-major HWC
====  ==========  ===========================================================

Any other code (including msgpack's reserved -1 timestamp) is a ``ProtocolError``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import msgpack
import numpy as np

from ..errors import ProtocolError
from . import limits

F16_ARRAY = 1
I8_ARRAY = 2
BITS = 3
F32_ARRAY = 4
U8_IMAGE = 5

EXT_NAMES = {
    F16_ARRAY: "F16_ARRAY",
    I8_ARRAY: "I8_ARRAY",
    BITS: "BITS",
    F32_ARRAY: "F32_ARRAY",
    U8_IMAGE: "U8_IMAGE",
}

_ARRAY_DTYPES = {F16_ARRAY: np.dtype("<f2"), I8_ARRAY: np.dtype("i1"), F32_ARRAY: np.dtype("<f4")}
_BITS_HEADER = struct.Struct("<I")
_IMAGE_HEADER = struct.Struct("<HHB")


@dataclass(frozen=True)
class PackedBits:
    """A vector of ``nbits`` sign bits packed MSB-first (``numpy.packbits`` order)."""

    nbits: int
    data: bytes

    def __post_init__(self) -> None:
        if len(self.data) != (self.nbits + 7) // 8:
            raise ProtocolError(
                f"BITS: expected {(self.nbits + 7) // 8} bytes for {self.nbits} bits, found {len(self.data)}"
            )

    @classmethod
    def from_signs(cls, vec: np.ndarray) -> PackedBits:
        """Pack ``vec > 0`` (one bit per element)."""
        bits = np.asarray(vec).reshape(-1) > 0
        return cls(int(bits.size), np.packbits(bits).tobytes())

    def unpack(self) -> np.ndarray:
        """The bits as a uint8 0/1 vector of length ``nbits``."""
        return np.unpackbits(np.frombuffer(self.data, np.uint8))[: self.nbits]


def _dim_ok(n: int, what: str) -> None:
    if not 1 <= n <= limits.MAX_DESCRIPTOR_DIM:
        raise ProtocolError(f"{what}: expected 1..{limits.MAX_DESCRIPTOR_DIM} elements, found {n}")


def pack_ext(obj: object) -> msgpack.ExtType:
    """``default=`` hook for msgpack.packb: numpy arrays and PackedBits become ext types."""
    if isinstance(obj, PackedBits):
        return msgpack.ExtType(BITS, _BITS_HEADER.pack(obj.nbits) + obj.data)
    if isinstance(obj, np.ndarray):
        if obj.dtype == np.uint8 and obj.ndim in (2, 3):
            img = obj if obj.ndim == 3 else obj[:, :, None]
            h, w, c = img.shape
            return msgpack.ExtType(
                U8_IMAGE, _IMAGE_HEADER.pack(h, w, c) + np.ascontiguousarray(img).tobytes()
            )
        for code, dtype in _ARRAY_DTYPES.items():
            if obj.dtype.kind == dtype.kind and obj.dtype.itemsize == dtype.itemsize and obj.ndim == 1:
                return msgpack.ExtType(code, obj.astype(dtype, copy=False).tobytes())
        raise ProtocolError(
            f"cannot encode array: expected 1-D float16/int8/float32 or HxW[xC] uint8, found {obj.dtype} {obj.shape}"
        )
    raise ProtocolError(f"cannot encode object of type {type(obj).__name__}")


def unpack_ext(code: int, data: bytes) -> object:
    """``ext_hook=`` for msgpack.Unpacker: validates lengths before allocating anything."""
    if code in _ARRAY_DTYPES:
        dtype = _ARRAY_DTYPES[code]
        if len(data) % dtype.itemsize:
            raise ProtocolError(
                f"{EXT_NAMES[code]}: length {len(data)} is not a multiple of {dtype.itemsize}"
            )
        _dim_ok(len(data) // dtype.itemsize, EXT_NAMES[code])
        return np.frombuffer(data, dtype).copy()
    if code == BITS:
        if len(data) < _BITS_HEADER.size:
            raise ProtocolError(f"BITS: expected >= {_BITS_HEADER.size} bytes, found {len(data)}")
        (nbits,) = _BITS_HEADER.unpack_from(data)
        _dim_ok(nbits, "BITS")
        return PackedBits(nbits, bytes(data[_BITS_HEADER.size :]))
    if code == U8_IMAGE:
        return _unpack_image(data)
    raise ProtocolError(f"unknown ext type: expected one of {sorted(EXT_NAMES)}, found {code}")


def _unpack_image(data: bytes) -> np.ndarray:
    if len(data) < _IMAGE_HEADER.size:
        raise ProtocolError(f"U8_IMAGE: expected >= {_IMAGE_HEADER.size} bytes, found {len(data)}")
    h, w, c = _IMAGE_HEADER.unpack_from(data)
    side = limits.MAX_THUMB_SIDE
    if not (1 <= h <= side and 1 <= w <= side and c in limits.ALLOWED_CHANNELS):
        raise ProtocolError(
            f"U8_IMAGE: expected 1..{side} x 1..{side} x {limits.ALLOWED_CHANNELS}, found {h}x{w}x{c}"
        )
    body = data[_IMAGE_HEADER.size :]
    if len(body) != h * w * c:
        raise ProtocolError(f"U8_IMAGE: expected {h * w * c} pixel bytes, found {len(body)}")
    return np.frombuffer(body, np.uint8).reshape(h, w, c).copy()
