"""The RNIP crop grid: chip-sized crops on a multi-scale grid with overlap, covering any frame.

At scale s the crop side is ``round(s * min(H, W))`` source pixels; crops are placed
on a regular grid whose step is at most ``side * (1 - overlap)``, the first crop at
the top-left corner and the last flush with the bottom/right edge, so every pixel is
covered and neighbours overlap by at least ``overlap``.  Each crop is resized to the
chip input (bilinear) and optionally rotated by 90/180/270 degrees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

MIN_SIDE = 16  # a frame smaller than this carries too little to describe


@dataclass(frozen=True)
class Crop:
    scale: float
    y: int
    x: int
    side: int


def check_frame(frame: np.ndarray, channels: int) -> np.ndarray:
    """uint8 HWC (or HW grey) -> uint8 HWC with ``channels`` channels; clear errors otherwise."""
    if not isinstance(frame, np.ndarray):
        raise InputError(f"frame must be a numpy uint8 array (H, W[, C]), found {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise InputError(f"frame dtype must be uint8, found {frame.dtype}")
    if frame.ndim == 2:
        frame = frame[:, :, None]
    if frame.ndim != 3 or frame.shape[2] not in (1, 3, 4):
        raise InputError(f"frame must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), found {frame.shape}")
    if min(frame.shape[:2]) < MIN_SIDE:
        raise InputError(f"frame {frame.shape[:2]} is smaller than the minimum {MIN_SIDE}x{MIN_SIDE} pixels")
    frame = frame[:, :, :3] if frame.shape[2] == 4 else frame  # alpha is dropped
    if frame.shape[2] == 1 and channels == 3:
        frame = np.repeat(frame, 3, axis=2)  # grey frames are described as grey RGB (documented)
    elif frame.shape[2] == 3 and channels == 1:
        frame = np.round(frame @ np.array([0.299, 0.587, 0.114])).clip(0, 255).astype(np.uint8)[:, :, None]
    return np.ascontiguousarray(frame)


def _positions(extent: int, side: int, step: float) -> list[int]:
    if side >= extent:
        return [0]
    n = math.ceil((extent - side) / step) + 1
    return sorted({int(round(v)) for v in np.linspace(0, extent - side, n)})


def crop_grid(height: int, width: int, scales=(1.0, 0.5), overlap: float = 0.4) -> list[Crop]:
    if not 0.0 <= overlap < 1.0:
        raise InputError(f"overlap must be in [0, 1), found {overlap}")
    if not scales or any(not 0.0 < s <= 1.0 for s in scales):
        raise InputError(f"scales must be in (0, 1], found {scales}")
    crops = []
    for s in scales:
        side = max(MIN_SIDE, int(round(s * min(height, width))))
        step = max(1.0, side * (1.0 - overlap))
        crops += [
            Crop(s, y, x, side) for y in _positions(height, side, step) for x in _positions(width, side, step)
        ]
    return crops


def resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear resize of a uint8 HWC image (Pillow)."""
    from PIL import Image

    if img.shape[:2] == (h, w):
        return img
    mode = "L" if img.shape[2] == 1 else "RGB"
    out = Image.fromarray(img[:, :, 0] if mode == "L" else img, mode).resize((w, h), Image.BILINEAR)
    return np.asarray(out, dtype=np.uint8).reshape(h, w, img.shape[2])


def cut(frame: np.ndarray, crop: Crop, h: int, w: int, rotation: int = 0) -> np.ndarray:
    patch = resize(frame[crop.y : crop.y + crop.side, crop.x : crop.x + crop.side], h, w)
    return np.ascontiguousarray(np.rot90(patch, k=rotation // 90)) if rotation else patch
