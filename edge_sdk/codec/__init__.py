"""Patch-by-patch latent compression: patch grid, GF(2) bit-planes, arithmetic coder, bitstream, evaluation.

The chip encodes each patch of a frame into a small latent; the server assembles the
latents into one map and decodes the whole frame (docs/codec.md).  Everything here is
numpy only; Pillow is needed for JPEG/WebP, image loading and the RD plot, and the
Cython coder (``edge_sdk.codec._arith``) is optional: without it the pure-Python
reference coder writes the same bytes, slower.
"""

from __future__ import annotations

from .arith import AVAILABLE as CODER_COMPILED
from .bitstream import DecodedStream, StreamHeader, decode_latents, decode_patch, encode_latents, encode_patch
from .patches import AssemblyReport, LatentAssembler, PatchGrid, merge, split
from .pipeline import Codec, CodecFamily, LatentDecoder, PatchEncoder, PatchLatentCodec, PatchwiseDecoder

__all__ = [
    "CODER_COMPILED",
    "AssemblyReport",
    "Codec",
    "CodecFamily",
    "DecodedStream",
    "LatentAssembler",
    "LatentDecoder",
    "PatchEncoder",
    "PatchGrid",
    "PatchLatentCodec",
    "PatchwiseDecoder",
    "StreamHeader",
    "decode_latents",
    "decode_patch",
    "encode_latents",
    "encode_patch",
    "merge",
    "split",
]
