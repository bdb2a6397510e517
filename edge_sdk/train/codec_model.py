"""The learned patch codec for training (torch, host only): chip encoder + full-frame decoder.

    model = PatchCodecNet()                       # nqe-1mb encoder, 64 latent channels max
    recon = model(crops_uint8_nhwc, channels=16)  # (N, 3, H, W) in [0, 1]; H, W multiples of 32

Encoder: a :class:`~edge_sdk.train.model.QNet` of nqe-1mb chip nodes (low-bit weights, 2-bit
activations, bit-shift normalization) mapping each 32x32 RGB patch to a 4x4 map of ``L``
raw accumulators; the latent bit is ``acc + b > 0`` (one sign per value, taken by the device
CPU).  Its training stages are the QAT flow of ``edge_sdk.train`` (float -> qweight -> calib
-> qact -> fused); the fused stage is the chip's integer arithmetic.

Rates share one encoder: the latent channels are ordered, and a rate keeps the first ``L``
of them (16 channels = 256 bits per 32x32 patch = 0.25 bpp); training samples ``L`` per
batch and the decoder sees absent channels as 0 (present bits are +-1).

Decoder: fully convolutional over the *tiled* latent map of the whole frame (its receptive
field crosses patch borders), three x2 sub-pixel upsamplings.  Its numpy twin for servers
is :class:`edge_sdk.codec.learned.FullFrameDecoder` (same weights, no torch).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .model import QNet

PATCH = 32
ENCODER_SPEC = [
    {"out": 32, "bits": 3, "s": 2, "name": "enc0"},
    {"out": 64, "bits": 2, "s": 2, "name": "enc1"},
    {"out": 96, "bits": 2, "s": 2, "name": "enc2"},
    {"out": 64, "bits": 2, "raw": True, "name": "latent"},
]
DECODER_WIDTHS = (96, 48, 32)


def binarize(y: torch.Tensor) -> torch.Tensor:
    """+-1 by sign (bit = y > 0), straight-through inside [-1, 1]."""
    hard = torch.where(y > 0, 1.0, -1.0).to(y.dtype)
    soft = torch.clamp(y, -1.0, 1.0)
    return soft + (hard - soft).detach()


def patches_of(x: torch.Tensor, patch: int = PATCH) -> torch.Tensor:
    """uint8 NHWC crops (H, W multiples of patch) -> NHWC patches in row-major grid order."""
    n, h, w, c = x.shape
    t = x.reshape(n, h // patch, patch, w // patch, patch, c).permute(0, 1, 3, 2, 4, 5)
    return t.reshape(-1, patch, patch, c)


def tile_latents(z: torch.Tensor, n: int, rows: int, cols: int) -> torch.Tensor:
    """Per-patch latents (n*rows*cols, L, lh, lw) -> tiled maps (n, L, rows*lh, cols*lw)."""
    _, L, lh, lw = z.shape
    t = z.reshape(n, rows, cols, L, lh, lw).permute(0, 3, 1, 4, 2, 5)
    return t.reshape(n, L, rows * lh, cols * lw)


class Decoder(nn.Module):
    """Latent map (N, L, h, w) of +-1 / 0 -> image (N, 3, 8h, 8w) in [0, 1] (plus overshoot)."""

    def __init__(self, latent: int = 64, widths: tuple = DECODER_WIDTHS) -> None:
        super().__init__()
        c0, c1, c2 = widths
        self.head = nn.Conv2d(latent, c0, 3, padding=1)
        self.res0 = nn.Conv2d(c0, c0, 3, padding=1)
        self.up1 = nn.Conv2d(c0, 4 * c1, 3, padding=1)
        self.res1 = nn.Conv2d(c1, c1, 3, padding=1)
        self.up2 = nn.Conv2d(c1, 4 * c2, 3, padding=1)
        self.res2 = nn.Conv2d(c2, c2, 3, padding=1)
        self.up3 = nn.Conv2d(c2, 4 * 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.head(z))
        h = h + F.relu(self.res0(h))
        h = F.relu(F.pixel_shuffle(self.up1(h), 2))
        h = h + F.relu(self.res1(h))
        h = F.relu(F.pixel_shuffle(self.up2(h), 2))
        h = h + F.relu(self.res2(h))
        return F.pixel_shuffle(self.up3(h), 2) + 0.5

    def layers(self) -> list[tuple[str, nn.Conv2d]]:
        return [(n, getattr(self, n)) for n in ("head", "res0", "up1", "res1", "up2", "res2", "up3")]


class PatchCodecNet(nn.Module):
    """Chip encoder (QNet, nqe-1mb) + float full-frame decoder."""

    def __init__(self, spec: list[dict] | None = None, widths: tuple = DECODER_WIDTHS) -> None:
        super().__init__()
        spec = [dict(s) for s in (spec or ENCODER_SPEC)]
        self.encoder = QNet("nqe-1mb", (PATCH, PATCH, 3), spec, classes=1)
        self.latent_channels = int(spec[-1]["out"])
        self.decoder = Decoder(self.latent_channels, widths)

    def set_stage(self, stage: str) -> None:
        self.encoder.set_stage(stage)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 NHWC crops -> +-1 latent maps (N, L, H/8, W/8), straight-through."""
        n, h, w, _ = x.shape
        feats, _ = self.encoder.features(patches_of(x))
        return tile_latents(binarize(feats.float()), n, h // PATCH, w // PATCH)

    def forward(self, x: torch.Tensor, channels: int | None = None) -> torch.Tensor:
        z = self.encode(x)
        keep = self.latent_channels if channels is None else int(channels)
        if keep < self.latent_channels:  # absent channels read as 0 (neither bit)
            z = torch.cat([z[:, :keep], torch.zeros_like(z[:, keep:])], dim=1)
        return self.decoder(z)


__all__ = ["DECODER_WIDTHS", "ENCODER_SPEC", "PATCH", "Decoder", "PatchCodecNet", "binarize", "tile_latents"]
