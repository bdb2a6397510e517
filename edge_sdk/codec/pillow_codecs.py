"""JPEG and WebP through Pillow, as codec families for the rate-matched comparison.

JPEG: libjpeg(-turbo) baseline, Pillow's defaults (4:2:0 chroma subsampling, standard
quantization tables scaled by ``quality`` 1..95).  WebP: libwebp lossy, ``quality``
0..100, ``method=4`` (Pillow's default effort).  Pillow is imported lazily (it is an
optional extra).
"""

from __future__ import annotations

import io

import numpy as np

from ..errors import InputError


def _pil():
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise InputError(f"JPEG/WebP need Pillow (pip install Pillow): {exc}") from None
    return Image


class PillowCodec:
    """One Pillow format at one quality."""

    def __init__(self, name: str, fmt: str, quality: int, **options):
        self.name, self.fmt, self.quality, self.options = name, fmt, quality, options

    def encode(self, frame: np.ndarray) -> bytes:
        if (
            not isinstance(frame, np.ndarray)
            or frame.dtype != np.uint8
            or frame.ndim != 3
            or frame.shape[2] != 3
        ):
            raise InputError(
                f"{self.name} needs uint8 (H, W, 3) frames, found {getattr(frame, 'shape', frame)}"
            )
        buf = io.BytesIO()
        _pil().fromarray(frame).save(buf, format=self.fmt, quality=self.quality, **self.options)
        return buf.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        with _pil().open(io.BytesIO(data)) as img:
            return np.asarray(img.convert("RGB"))


class PillowFamily:
    """A Pillow format over its quality range (rate increases with quality)."""

    def __init__(self, name: str, fmt: str, qualities, **options):
        self.name, self.fmt, self.qualities, self.options = name, fmt, tuple(qualities), options

    def at(self, quality: int) -> PillowCodec:
        return PillowCodec(f"{self.name}[q={quality}]", self.fmt, quality, **self.options)


def jpeg_family() -> PillowFamily:
    return PillowFamily("jpeg", "JPEG", range(1, 96))


def webp_family() -> PillowFamily:
    return PillowFamily("webp", "WEBP", range(0, 101), method=4)
