"""Compress mode: a frame becomes a grid of latent patches (``PatchEncoder``).

The learned codec (the chip encoding each patch to binary measurements) lands later
from another engineer and will implement the same protocol.  Until then
:class:`RawPatchEncoder` sends raw pixels, matching the server's ``raw`` decoder: each
payload is exactly ``patch*patch*channels`` bytes, row-major HWC, and patches on the
right/bottom border are padded to full size by edge replication.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import InputError
from ..transport import limits


@dataclass(frozen=True)
class EncodedFrame:
    """What FRAME_BEGIN announces, plus the patch payloads."""

    width: int
    height: int
    channels: int
    patch: int
    codec: str
    patches: list  # of (patch index, payload bytes)

    @property
    def n_patches(self) -> int:
        return -(-self.height // self.patch) * -(-self.width // self.patch)


class PatchEncoder(Protocol):
    codec: str
    patch: int

    def encode(self, frame: np.ndarray) -> EncodedFrame: ...


class RawPatchEncoder:
    """Raw uint8 pixels per patch (see the module docstring)."""

    codec = "raw"

    def __init__(self, patch: int = 32) -> None:
        if not 1 <= patch <= limits.MAX_PATCH_SIDE or patch * patch * 3 > limits.MAX_PATCH_BYTES:
            raise InputError(
                f"patch size: expected 1..{int((limits.MAX_PATCH_BYTES / 3) ** 0.5)}, found {patch}"
            )
        self.patch = patch

    def encode(self, frame: np.ndarray) -> EncodedFrame:
        h, w, c = frame.shape
        p = self.patch
        rows, cols = -(-h // p), -(-w // p)
        if rows * cols > limits.MAX_PATCHES_PER_FRAME:
            raise InputError(
                f"frame {w}x{h} at patch {p}: expected <= {limits.MAX_PATCHES_PER_FRAME} patches, found {rows * cols}"
            )
        padded = np.pad(frame, ((0, rows * p - h), (0, cols * p - w), (0, 0)), mode="edge")
        patches = []
        for i in range(rows * cols):
            r, q = divmod(i, cols)
            patches.append(
                (i, np.ascontiguousarray(padded[r * p : (r + 1) * p, q * p : (q + 1) * p]).tobytes())
            )
        return EncodedFrame(w, h, c, p, self.codec, patches)


class BaselinePatchEncoder:
    """The non-learned patch codec of edge_sdk.codec (docs/codec.md): downsampled, quantized bit-plane latents,
    arithmetic-coded per patch; the server rebuilds the frame with its full-frame decoder.  Stands in for the
    learned chip encoder, which implements the same protocol."""

    def __init__(self, patch: int = 32, factor: int = 8, bits: int = 5) -> None:
        from ..codec.baseline import BaselineEncoder, FullFrameBilinear
        from ..codec.pipeline import PatchLatentCodec
        from ..codec.server_plugin import baseline_codec_name

        if patch % factor:
            raise InputError(
                f"baseline codec: patch {patch} must be a multiple of the downsampling factor {factor}"
            )
        enc = BaselineEncoder(factor, bits, patch)
        self._codec = PatchLatentCodec(f"ours-baseline[f={factor},b={bits}]", enc, FullFrameBilinear(enc))
        self.codec = baseline_codec_name(factor, bits)
        self.patch = patch

    def encode(self, frame: np.ndarray) -> EncodedFrame:
        from ..codec.server_plugin import frame_payloads

        h, w, c = frame.shape
        _, payloads = frame_payloads(self._codec, frame)
        return EncodedFrame(w, h, c, self.patch, self.codec, sorted(payloads.items()))


class LearnedPatchEncoder:
    """The learned codec (docs/codec.md): the nqe-1mb encoder firmware turns each 32x32 patch into
    binary latents (``channels`` per 4x4 position: 16 = 0.25 bpp before entropy coding), arithmetic-coded
    per patch; the server's full-frame decoder (``ours-nqe-L{channels}``) rebuilds the frame."""

    def __init__(self, patch: int = 32, channels: int = 16, backend: str = "auto") -> None:
        from ..codec.learned import learned_codec
        from ..codec.server_plugin import learned_codec_name

        if patch != 32:
            raise InputError(
                f"learned codec: the encoder firmware takes 32x32 patches, found --patch {patch}"
            )
        self._codec = learned_codec(channels, "full", backend=backend)
        self.codec = learned_codec_name(channels)
        self.patch = patch

    def encode(self, frame: np.ndarray) -> EncodedFrame:
        from ..codec.server_plugin import frame_payloads

        h, w, c = frame.shape
        if c != 3:
            raise InputError(f"learned codec: RGB frames only, found {c} channels")
        _, payloads = frame_payloads(self._codec, frame)
        return EncodedFrame(w, h, c, self.patch, self.codec, sorted(payloads.items()))


ENCODERS = {"raw": RawPatchEncoder, "baseline": BaselinePatchEncoder, "learned": LearnedPatchEncoder}
