"""The pluggable codec interfaces and the patch-latent codec that joins them to the bitstream.

Where the learned models plug in (docs/codec.md):

* :class:`PatchEncoder` runs on the device, one ``p x p`` patch at a time (the QAT
  encoder on the nqe-1mb chip): uint8 patches -> unsigned ``bits``-bit latent codes.
* :class:`LatentDecoder` runs on the server on the assembled latent map of a whole
  frame (the full-frame decoder); :class:`PatchwiseDecoder` turns a per-patch decoder
  into one, decoding every patch on its own (the "patch-independent" comparison).
* :class:`PatchLatentCodec` = encoder + decoder + the latent bitstream, and is a
  :class:`Codec` (``encode(frame) -> bytes``, ``decode(bytes) -> frame``), the protocol
  the evaluation harness scores.  A :class:`CodecFamily` is a set of codecs indexed by
  an integer quality whose rate grows with it (JPEG quality, a ladder of latent
  sizes), which lets the harness match bit rates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Optional, Protocol, runtime_checkable

import numpy as np

from ..errors import BitstreamError, InputError
from .bitstream import decode_latents, decode_patch, encode_latents
from .patches import LatentAssembler, PatchGrid, merge, split, tile_map, untile_map


@runtime_checkable
class Codec(Protocol):
    """Anything the harness can score: frame -> bytes -> frame."""

    name: str

    def encode(self, frame: np.ndarray) -> bytes: ...

    def decode(self, data: bytes) -> np.ndarray: ...


@runtime_checkable
class CodecFamily(Protocol):
    """Codecs indexed by ``qualities`` (ascending rate): the harness searches them for a target bpp."""

    name: str
    qualities: Sequence

    def at(self, quality) -> Codec: ...


class PatchEncoder(Protocol):
    """Device side: ``(N, p, p, C)`` uint8 patches -> ``(N, *latent_shape)`` codes in ``0 .. 2**bits - 1``."""

    patch: int
    latent_shape: tuple
    bits: int

    def encode_patches(self, patches: np.ndarray) -> np.ndarray: ...


class LatentDecoder(Protocol):
    """Server side: latent map ``(rows*lh, cols*lw, lc)`` of a grid -> uint8 frame ``(H, W, C)``."""

    def decode_map(self, latent_map: np.ndarray, grid: PatchGrid, channels: int) -> np.ndarray: ...


class PatchDecoder(Protocol):
    """Decodes one patch from its latent alone: ``(N, lh, lw, lc)`` -> ``(N, p, p, C)`` uint8."""

    def decode_patches(self, latents: np.ndarray, channels: int) -> np.ndarray: ...


class PatchwiseDecoder:
    """A :class:`LatentDecoder` that decodes every patch independently (seams included)."""

    def __init__(self, patch_decoder: PatchDecoder):
        self.patch_decoder = patch_decoder

    def decode_map(self, latent_map: np.ndarray, grid: PatchGrid, channels: int) -> np.ndarray:
        tiles = self.patch_decoder.decode_patches(untile_map(latent_map, grid), channels)
        return merge(tiles, grid)


class PatchLatentCodec:
    """Patch encoder + latent bitstream + decoder, as a :class:`Codec`.

    ``mode`` is the bitstream's record mode: ``"patch"`` (one record per patch, what a
    chip sends as it goes) or ``"frame"`` (one record for the whole latent map).
    """

    def __init__(
        self,
        name: str,
        encoder: PatchEncoder,
        decoder: LatentDecoder,
        mode: str = "patch",
        backend: Optional[str] = None,
    ):
        self.name = name
        self.encoder = encoder
        self.decoder = decoder
        self.mode = mode
        self.backend = backend

    def encode(self, frame: np.ndarray) -> bytes:
        tiles, grid = split(frame, self.encoder.patch)
        if tiles.ndim != 4:
            raise InputError(f"{self.name} needs (H, W, C) frames, found shape {frame.shape}")
        latents = self.encoder.encode_patches(tiles)
        return encode_latents(latents, grid, self.encoder.bits, tiles.shape[3], self.mode, self.backend)

    def decode(self, data: bytes) -> np.ndarray:
        stream = decode_latents(data, self.backend)
        h = stream.header
        self._check_format(h.patch, h.latent_shape, h.bits)
        return self.decoder.decode_map(tile_map(stream.latents, h.grid), h.grid, h.channels)

    def decode_payloads(
        self, grid: PatchGrid, payloads: Mapping, channels: int = 3, concealment: str = "neighbours"
    ) -> tuple:
        """Server path: per-patch payloads (index -> bytes, any order, some missing) -> (frame, report).

        A payload that fails to decode is recorded as rejected and its patch concealed.
        """
        enc = self.encoder
        assembler = LatentAssembler(
            grid, enc.latent_shape, np.uint16 if enc.bits > 8 else np.uint8, concealment
        )
        for index, payload in payloads.items():
            try:
                latent = decode_patch(payload, enc.latent_shape, enc.bits, self.backend)
            except BitstreamError as exc:
                assembler.reject(index, str(exc))
                continue
            assembler.add(index, latent)
        latent_map, report = assembler.assemble()
        return self.decoder.decode_map(latent_map, grid, channels), report

    def _check_format(self, patch: int, latent_shape: tuple, bits: int) -> None:
        enc = self.encoder
        if (patch, tuple(latent_shape), bits) != (enc.patch, tuple(enc.latent_shape), enc.bits):
            raise BitstreamError(
                f"{self.name}: expected patch {enc.patch}, latent {tuple(enc.latent_shape)} x {enc.bits} bits, "
                f"found patch {patch}, latent {tuple(latent_shape)} x {bits} bits"
            )
