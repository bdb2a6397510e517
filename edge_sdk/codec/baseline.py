"""``ours-baseline``: a non-learned patch codec that exercises the whole pipeline.

It is a *baseline*, not the learned codec: it only proves the harness end to end
(patches -> latents -> bit-planes -> arithmetic coder -> bitstream -> decoder) and
shows what a full-frame decoder buys over a patch-independent one at the same bytes.

Encoder (per ``p x p`` patch, as the chip would run it): RGB -> YCbCr (JPEG/BT.601
full range), ``f x f`` box average, uniform quantization of each of Y, Cb, Cr to
``bits`` bits, ``code = round(v * (2**bits - 1) / 255)``.  The latent of a patch is
``(p/f, p/f, 3)`` codes, i.e. ``3 * bits * (p/f)**2`` bits before entropy coding.

Decoders (bilinear upsampling with half-pixel centres, edges clamped):

* full-frame (:class:`FullFrameBilinear`): the latent maps of all patches are tiled
  into one latent image and upsampled as a whole, so interpolation crosses patch
  borders: no seams;
* patch-independent (:class:`PatchBilinear`): each patch is upsampled from its own
  latent only, clamped at its own border, which leaves visible seams.

The quality ladder :data:`LADDER` lists ``(f, bits)`` pairs in increasing raw rate.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .patches import DEFAULT_PATCH, PatchGrid
from .pipeline import PatchLatentCodec, PatchwiseDecoder

#: (downsampling factor, bits per value); rate and quality both increase along it on Kodak (rungs that
#: cost more bits for less PSNR than a neighbour, e.g. f=8 with 8 bits, are left out).
LADDER = ((16, 4), (16, 5), (16, 6), (8, 4), (8, 5), (8, 6), (4, 4), (4, 5), (4, 6), (2, 5), (2, 6))

_RGB_TO_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_YCC_TO_RGB = np.array([[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]])
_YCC_OFFSET = np.array([0.0, 128.0, 128.0])


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """uint8/float RGB (..., 3) -> float64 YCbCr (..., 3), each in 0..255."""
    return rgb.astype(np.float64) @ _RGB_TO_YCC.T + _YCC_OFFSET


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """float YCbCr (..., 3) -> uint8 RGB, rounded and clipped."""
    rgb = (ycc - _YCC_OFFSET) @ _YCC_TO_RGB.T
    return np.clip(np.floor(rgb + 0.5), 0, 255).astype(np.uint8)


def upsample_bilinear(img: np.ndarray, factor: int) -> np.ndarray:
    """(h, w, C) -> (h*factor, w*factor, C) bilinear, half-pixel centres, edge clamp."""

    def axis_weights(n: int) -> tuple:
        src = (np.arange(n * factor) + 0.5) / factor - 0.5
        src = np.clip(src, 0, n - 1)
        i0 = np.floor(src).astype(np.int64)
        i1 = np.minimum(i0 + 1, n - 1)
        return i0, i1, src - i0

    y0, y1, wy = axis_weights(img.shape[0])
    x0, x1, wx = axis_weights(img.shape[1])
    rows = img[y0] * (1 - wy)[:, None, None] + img[y1] * wy[:, None, None]
    return rows[:, x0] * (1 - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]


class BaselineEncoder:
    """The :class:`~edge_sdk.codec.pipeline.PatchEncoder` of the baseline (module docstring)."""

    def __init__(self, factor: int = 8, bits: int = 5, patch: int = DEFAULT_PATCH):
        if factor < 1 or patch % factor:
            raise InputError(f"factor must divide the patch size {patch}, found {factor}")
        if not 1 <= bits <= 8:
            raise InputError(f"bits must be 1..8, found {bits}")
        self.factor, self.bits, self.patch = factor, bits, patch
        side = patch // factor
        self.latent_shape = (side, side, 3)

    def encode_patches(self, patches: np.ndarray) -> np.ndarray:
        if patches.ndim != 4 or patches.shape[1:] != (self.patch, self.patch, 3):
            raise InputError(f"patches must be (N, {self.patch}, {self.patch}, 3), found {patches.shape}")
        n, side, f = len(patches), self.patch // self.factor, self.factor
        ycc = rgb_to_ycbcr(patches).reshape(n, side, f, side, f, 3).mean(axis=(2, 4))
        levels = (1 << self.bits) - 1
        return np.clip(np.floor(ycc * levels / 255.0 + 0.5), 0, levels).astype(np.uint8)

    def dequantize(self, codes: np.ndarray) -> np.ndarray:
        return codes.astype(np.float64) * (255.0 / ((1 << self.bits) - 1))


class FullFrameBilinear:
    """Full-frame decoder: upsample the whole assembled latent map at once (no seams)."""

    def __init__(self, encoder: BaselineEncoder):
        self.encoder = encoder

    def decode_map(self, latent_map: np.ndarray, grid: PatchGrid, channels: int) -> np.ndarray:
        ycc = upsample_bilinear(self.encoder.dequantize(latent_map), self.encoder.factor)
        return ycbcr_to_rgb(ycc)[: grid.height, : grid.width]


class PatchBilinear:
    """Per-patch decoder: each patch upsampled from its own latent (seams at patch borders)."""

    def __init__(self, encoder: BaselineEncoder):
        self.encoder = encoder

    def decode_patches(self, latents: np.ndarray, channels: int) -> np.ndarray:
        values = self.encoder.dequantize(latents)
        return np.stack([ycbcr_to_rgb(upsample_bilinear(v, self.encoder.factor)) for v in values])


class BaselineFamily:
    """The baseline at every rung of :data:`LADDER`, as a :class:`~edge_sdk.codec.pipeline.CodecFamily`."""

    def __init__(
        self,
        decoder: str = "full",
        mode: str = "patch",
        patch: int = DEFAULT_PATCH,
        backend=None,
        ladder=LADDER,
    ):
        if decoder not in ("full", "patch"):
            raise InputError(f"decoder must be 'full' or 'patch', found {decoder!r}")
        self.decoder, self.mode, self.patch, self.backend = decoder, mode, patch, backend
        self.ladder = tuple((f, b) for f, b in ladder if patch % f == 0)
        self.qualities = tuple(range(len(self.ladder)))
        self.name = f"ours-baseline-{decoder}" + ("" if mode == "patch" else "-framecoded")

    def at(self, quality: int) -> PatchLatentCodec:
        factor, bits = self.ladder[quality]
        enc = BaselineEncoder(factor, bits, self.patch)
        dec = FullFrameBilinear(enc) if self.decoder == "full" else PatchwiseDecoder(PatchBilinear(enc))
        return PatchLatentCodec(f"{self.name}[f={factor},b={bits}]", enc, dec, self.mode, self.backend)
