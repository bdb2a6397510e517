"""Descriptor encodings on the wire: L2-normalised float16, int8 or packed sign bits.

The device computes a float feature vector (the network's dequantized output), then::

    f32 / f16:  v / ||v||                     as float32 / float16
    i8:         round(127 * v / ||v||)        clipped to -127..127 (a scale of 1/127)
    bin:        sign bits of v, packed MSB-first (dim must be a multiple of 8)

The server maps all of them to one search space per kind (see
:mod:`edge_sdk.server.index`), so the same function serves the device and the query.
"""

from __future__ import annotations

from typing import Union

import numpy as np

from ..errors import InputError
from . import limits
from .ext import PackedBits

DESCRIPTOR_KINDS = ("f16", "i8", "bin", "f32")
WireVector = Union[np.ndarray, PackedBits]


def encode_descriptor(vec: np.ndarray, kind: str) -> WireVector:
    """Normalise and quantise a float vector for a DESCRIPTOR message."""
    v = np.asarray(vec, np.float64).reshape(-1)
    if not 1 <= v.size <= limits.MAX_DESCRIPTOR_DIM:
        raise InputError(f"descriptor: expected 1..{limits.MAX_DESCRIPTOR_DIM} values, found {v.size}")
    if not np.all(np.isfinite(v)):
        raise InputError("descriptor: expected finite values, found NaN or inf")
    norm = np.linalg.norm(v)
    unit = v / norm if norm > 0 else v
    if kind == "f32":
        return unit.astype(np.float32)
    if kind == "f16":
        return unit.astype(np.float16)
    if kind == "i8":
        return np.clip(np.round(unit * 127.0), -127, 127).astype(np.int8)
    if kind == "bin":
        if v.size % 8:
            raise InputError(f"binary descriptor: expected a multiple of 8 values, found {v.size}")
        return PackedBits.from_signs(unit)
    raise InputError(f"descriptor kind: expected one of {DESCRIPTOR_KINDS}, found {kind!r}")
