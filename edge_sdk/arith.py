"""The chip's integer arithmetic, shared by every backend (docs/datasheet.md section 2).

These few functions are the executable definition of rounding, requantization,
input conversion and weight decoding.  The numpy reference backend calls them
directly; the Cython emulator re-implements them and is tested bit for bit
against them.
"""

from __future__ import annotations

import numpy as np

from .chips import ChipProfile, WeightMode


def round_shift(acc: np.ndarray, shift: int, rounding: str) -> np.ndarray:
    """Divide int64 ``acc`` by 2**shift: half away from zero, or floor (arithmetic shift)."""
    acc = np.asarray(acc, dtype=np.int64)
    if shift == 0:
        return acc.copy()
    if rounding == "floor":
        return acc >> shift
    half = np.int64(1) << (shift - 1)
    magnitude = (np.abs(acc) + half) >> shift
    return np.where(acc < 0, -magnitude, magnitude)


def requantize(acc: np.ndarray, shift: int, profile: ChipProfile, output: str) -> np.ndarray:
    """Accumulator -> output codes: uint8 clamp to 0..2^a-1 ("act") or int32 ("raw")."""
    q = round_shift(acc, shift, profile.rounding)
    if output == "raw":
        return q.astype(np.int32)
    return np.clip(q, 0, profile.act_max).astype(np.uint8)


def convert_input(frame: np.ndarray, profile: ChipProfile) -> np.ndarray:
    """8-bit image -> the first layer's input codes (uint8)."""
    if profile.input_conversion == "identity":
        return frame.astype(np.uint8, copy=True)
    s = profile.input_shift
    x = frame.astype(np.int32)
    code = ((x >> (s - 1)) + 1) >> 1 if s > 0 else x
    return np.minimum(code, profile.act_max).astype(np.uint8)


def decode_levels(codes: np.ndarray, mode: WeightMode) -> np.ndarray:
    """Signed codes -> integer weight levels (int32): linear/binary as is, pow2 as sign*2^(|c|-1)."""
    c = codes.astype(np.int32)
    if mode.decode != "pow2":
        return c
    mag = np.where(c == 0, 0, np.left_shift(1, np.maximum(np.abs(c) - 1, 0)))
    return np.sign(c) * mag


def integer_weights(codes: np.ndarray, scalars: np.ndarray | None, mode: WeightMode) -> np.ndarray:
    """The integer weights the MAC array multiplies by: level(code) * scalar (int32, OIHW)."""
    levels = decode_levels(codes, mode)
    if scalars is None:
        return levels
    return levels * scalars.astype(np.int32)[:, :, None, None]
