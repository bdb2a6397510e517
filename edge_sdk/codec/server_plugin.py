"""Connects a :class:`~edge_sdk.codec.pipeline.PatchLatentCodec` to the server's frame assembler.

Device side: :func:`frame_payloads` cuts a frame into patches and returns one self-contained
payload (one bitstream record, docs/bitstream.md) per patch, to send with the transport's
per-patch messages.  Server side: :func:`frame_decoder` wraps the codec as an
``edge_sdk.server.decoders.FrameDecoder``; :func:`register_baseline` registers every rung of
the non-learned baseline under the codec name ``ours-baseline-f{factor}b{bits}`` and
:func:`register_learned` every rate of the learned codec as ``ours-nqe-L{channels}`` (decoder
weights only: the server needs no encoder firmware and no torch).

The wrapped decoder conceals missing and corrupt patches in latent space (from the
neighbours' latents, :mod:`edge_sdk.codec.patches`) before the full-frame decoder runs, so it
reports ``handles_missing = True`` and the assembler's pixel concealment is not used.  The
server module is imported only when a decoder is made or registered.
"""

from __future__ import annotations

import numpy as np

from .baseline import LADDER, BaselineEncoder, FullFrameBilinear
from .bitstream import encode_patch
from .patches import PatchGrid, split
from .pipeline import PatchLatentCodec


def frame_payloads(codec: PatchLatentCodec, frame: np.ndarray) -> tuple:
    """Device side: (grid, {patch index: payload bytes}) for one frame."""
    tiles, grid = split(frame, codec.encoder.patch)
    latents = codec.encoder.encode_patches(tiles)
    return grid, {
        i: encode_patch(latents[i], codec.encoder.bits, codec.backend) for i in range(grid.n_patches)
    }


def frame_decoder(codec: PatchLatentCodec, name: str):
    """A server ``FrameDecoder`` (codec name ``name``) that decodes per-patch payloads with ``codec``."""
    from ..server.decoders import DecodedFrame, FrameDecoder

    class _LatentFrameDecoder(FrameDecoder):
        handles_missing = True

        def decode(self, geometry, patches):
            grid = PatchGrid(geometry.height, geometry.width, geometry.patch)
            image, report = codec.decode_payloads(grid, patches, geometry.channels)
            corrupt = sorted(i for i, _ in report.rejected if isinstance(i, (int, np.integer)))
            return DecodedFrame(image, corrupt)

    _LatentFrameDecoder.codec = name
    return _LatentFrameDecoder()


def baseline_codec_name(factor: int, bits: int) -> str:
    return f"ours-baseline-f{factor}b{bits}"


def register_baseline(patch: int = 32) -> list:
    """Register the baseline's full-frame decoder for every ladder rung; returns the codec names."""
    from ..server.decoders import register_decoder

    names = []
    for factor, bits in LADDER:
        if patch % factor:
            continue
        enc = BaselineEncoder(factor, bits, patch)
        codec = PatchLatentCodec(f"ours-baseline[f={factor},b={bits}]", enc, FullFrameBilinear(enc))
        name = baseline_codec_name(factor, bits)
        register_decoder(name, lambda codec=codec, name=name: frame_decoder(codec, name))
        names.append(name)
    return names


def learned_codec_name(channels: int) -> str:
    return f"ours-nqe-L{channels}"


def register_learned(folder=None) -> list:
    """Register the learned codec's full-frame decoder for every rate; returns the codec names.

    The decoder weights load on the first frame (a missing file is a DecoderError then)."""
    from ..errors import EdgeSDKError
    from ..server.decoders import DecoderError, register_decoder
    from .learned import RATES, learned_codec

    def factory(channels: int, name: str):
        try:
            codec = learned_codec(channels, "full", folder=folder, encoder=False)
        except EdgeSDKError as exc:
            raise DecoderError(f"{name}: {exc}") from exc
        return frame_decoder(codec, name)

    names = []
    for channels in RATES:
        name = learned_codec_name(channels)
        register_decoder(name, lambda channels=channels, name=name: factory(channels, name))
        names.append(name)
    return names
