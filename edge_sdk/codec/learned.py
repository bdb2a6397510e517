"""The learned patch codec: nqe-1mb chip encoder (firmware) + numpy full-frame decoder.

Device side, :class:`ChipPatchEncoder`: every 32x32 RGB patch runs through the encoder
firmware (``firmware_images/codec_nqe_encoder.edgefw``) on the chip (emulator here); the
last layer's raw accumulators ``acc + b`` give the latent bits ``acc + b > 0``, one per value
of a 4x4xL map.  A rate keeps the first ``L`` channels (8/16/32/64: 0.125/0.25/0.5/1 bpp
before entropy coding); the bits then go through the bit-plane arithmetic coder like any
other latent (docs/bitstream.md).

Server side, :class:`FullFrameDecoder`: the numpy twin of the torch decoder it was trained
as (``edge_sdk.train.codec_model.Decoder``), float32 im2col convolutions on BLAS, no torch.
It decodes the *tiled* latent map of the whole frame at once, so its receptive field
crosses patch borders (no seams); :class:`PatchIndependentDecoder` runs the same network on
each patch alone (the comparison that shows the seams).  Absent latent channels read 0,
present bits +-1, as in training.  Weights: ``firmware_images/codec_nqe_decoder.npz``
(format in docs/codec.md).
"""

from __future__ import annotations

import json
import os
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..errors import FirmwareError, InputError
from .patches import PatchGrid
from .pipeline import PatchLatentCodec, PatchwiseDecoder

DECODER_FORMAT = "edge_sdk.codec.decoder/1"
DECODER_LAYERS = ("head", "res0", "up1", "res1", "up2", "res2", "up3")
ENCODER_FILE = "codec_nqe_encoder.edgefw"
DECODER_FILE = "codec_nqe_decoder.npz"
RATES = (8, 16, 32, 64)  # latent channels kept: 0.125 / 0.25 / 0.5 / 1 bpp (32x32 patches)


def model_dir() -> Path:
    """Where the shipped codec models are: $EDGE_SDK_MODELS, else the repo's firmware_images/."""
    env = os.environ.get("EDGE_SDK_MODELS")
    if env:
        return Path(env)
    for folder in (Path(__file__).resolve().parents[2] / "firmware_images", Path.cwd() / "firmware_images"):
        if (folder / ENCODER_FILE).is_file():
            return folder
    return Path.cwd() / "firmware_images"


# ------------------------------------------------------------------ numpy ops
_BAND_FLOATS = 1 << 22  # im2col buffer per band (16 MiB): bounds memory, keeps BLAS matmuls large


def conv3x3(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """'same' 3x3 convolution, zero padding: x (..., H, W, C) float32, w (O, C, 3, 3) -> (..., H, W, O).

    Leading axes are independent images (each zero-padded on its own).  im2col + one BLAS matmul
    per band of rows, the band's column buffer reused (measured faster than 9 per-tap matmuls,
    whose K = C is too small for the narrow late layers).
    """
    *lead, h, wd, c = x.shape
    xp = np.zeros((*lead, h + 2, wd + 2, c), np.float32)
    xp[..., 1 : h + 1, 1 : wd + 1, :] = x
    wm = np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(9 * c, -1), dtype=np.float32)
    n_lead = int(np.prod(lead)) if lead else 1
    band = max(1, min(h, _BAND_FLOATS // max(1, n_lead * wd * 9 * c)))
    out = np.empty((*lead, h, wd, wm.shape[1]), np.float32)
    cols = np.empty((*lead, band, wd, 3, 3, c), np.float32)
    for y0 in range(0, h, band):
        rows = min(band, h - y0)
        buf = cols[..., :rows, :, :, :, :]
        for dy in range(3):
            for dx in range(3):
                buf[..., dy, dx, :] = xp[..., y0 + dy : y0 + dy + rows, dx : dx + wd, :]
        out[..., y0 : y0 + rows, :, :] = (buf.reshape(-1, 9 * c) @ wm).reshape(*lead, rows, wd, -1)
    out += b
    return out


def pixel_shuffle(x: np.ndarray, r: int = 2) -> np.ndarray:
    """(..., H, W, C*r*r) -> (..., H*r, W*r, C), channel order as torch.nn.functional.pixel_shuffle."""
    *lead, h, w, crr = x.shape
    c = crr // (r * r)
    n = len(lead)
    y = x.reshape(*lead, h, w, c, r, r)
    y = y.transpose(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return y.reshape(*lead, h * r, w * r, c)


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0, out=x)


# ------------------------------------------------------------------ decoder
class DecoderWeights:
    """The decoder's float32 weights + metadata, checked on load."""

    def __init__(self, layers: dict, meta: dict) -> None:
        self.layers, self.meta = layers, meta
        self.latent_channels = int(meta["latent_channels"])
        self.patch = int(meta["patch"])

    @classmethod
    def load(cls, path: Union[str, Path]) -> DecoderWeights:
        path = Path(path)
        if not path.is_file():
            raise FirmwareError(f"codec decoder weights not found: {path} (expected {DECODER_FILE})")
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                layers = {
                    n: (z[f"{n}.w"].astype(np.float32), z[f"{n}.b"].astype(np.float32))
                    for n in DECODER_LAYERS
                }
        except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise FirmwareError(f"{path}: not a codec decoder file ({exc})") from exc
        if meta.get("format") != DECODER_FORMAT:
            raise FirmwareError(f"{path}: decoder format {meta.get('format')!r}, expected {DECODER_FORMAT!r}")
        return cls(layers, meta)

    def save(self, path: Union[str, Path]) -> None:
        arrays = {"meta": np.array(json.dumps(self.meta))}
        for n, (w, b) in self.layers.items():
            arrays[f"{n}.w"], arrays[f"{n}.b"] = w, b
        np.savez_compressed(path, **arrays)


def decode_latent_image(weights: DecoderWeights, z: np.ndarray) -> np.ndarray:
    """(..., h, w, L) latent image(s) of +-1 / 0 -> float32 (..., 8h, 8w, 3) in [0, 1] (unclipped)."""
    lay = weights.layers
    x = relu(conv3x3(z.astype(np.float32), *lay["head"]))
    x = x + relu(conv3x3(x, *lay["res0"]))
    x = relu(pixel_shuffle(conv3x3(x, *lay["up1"])))
    x = x + relu(conv3x3(x, *lay["res1"]))
    x = relu(pixel_shuffle(conv3x3(x, *lay["up2"])))
    x = x + relu(conv3x3(x, *lay["res2"]))
    return pixel_shuffle(conv3x3(x, *lay["up3"])) + np.float32(0.5)


def _signed(latent_bits: np.ndarray, total: int) -> np.ndarray:
    """0/1 bits (..., L) -> +-1 float32 padded with zeros to ``total`` channels."""
    bits = np.asarray(latent_bits)
    out = np.zeros((*bits.shape[:-1], total), np.float32)
    out[..., : bits.shape[-1]] = np.where(bits > 0, 1.0, -1.0)
    return out


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(x * 255.0 + 0.5), 0, 255).astype(np.uint8)


class FullFrameDecoder:
    """:class:`~edge_sdk.codec.pipeline.LatentDecoder`: the whole frame's latent map at once."""

    def __init__(self, weights: DecoderWeights) -> None:
        self.weights = weights

    def decode_map(self, latent_map: np.ndarray, grid: PatchGrid, channels: int) -> np.ndarray:
        if channels != 3:
            raise InputError(f"the learned codec decodes RGB frames (3 channels), found {channels}")
        img = decode_latent_image(self.weights, _signed(latent_map, self.weights.latent_channels))
        return _to_uint8(img[: grid.height, : grid.width])


class PatchIndependentDecoder:
    """:class:`~edge_sdk.codec.pipeline.PatchDecoder`: the same network on one patch at a time."""

    def __init__(self, weights: DecoderWeights) -> None:
        self.weights = weights

    def decode_patches(self, latents: np.ndarray, channels: int) -> np.ndarray:
        if channels != 3:
            raise InputError(f"the learned codec decodes RGB patches (3 channels), found {channels}")
        z = _signed(latents, self.weights.latent_channels)
        step = 64  # patches per batch: bounded memory, BLAS-sized matrices
        return np.concatenate(
            [_to_uint8(decode_latent_image(self.weights, z[i : i + step])) for i in range(0, len(z), step)]
        )


# ------------------------------------------------------------------ encoder
class ChipPatchEncoder:
    """:class:`~edge_sdk.codec.pipeline.PatchEncoder`: the encoder firmware on a Device, first ``channels`` bits."""

    bits = 1

    def __init__(self, firmware, channels: int = 16, backend: str = "auto") -> None:
        from ..firmware import load_firmware
        from ..runtime import Device

        image = firmware if hasattr(firmware, "network") else load_firmware(firmware)
        self.device = Device(backend).load(image)
        h, w, c = self.device.input_shape
        out = self.device.describe()["layers"][-1]["out_shape"]
        if h != w or c != 3:
            raise FirmwareError(f"codec encoder must take square RGB patches, found input {h}x{w}x{c}")
        if not 1 <= channels <= out[2]:
            raise InputError(f"channels must be 1..{out[2]} (the encoder's latent width), found {channels}")
        self.patch, self.channels = h, int(channels)
        self.latent_shape = (int(out[0]), int(out[1]), self.channels)

    def encode_patches(self, patches: np.ndarray) -> np.ndarray:
        codes = self.device.run(patches).codes
        return (codes[..., : self.channels] > 0).astype(np.uint8)


class DecodeOnlyEncoder:
    """The latent format of the encoder without the encoder itself (server side: no firmware needed)."""

    bits = 1

    def __init__(self, patch: int, channels: int) -> None:
        self.patch, self.channels = patch, channels
        self.latent_shape = (patch // 8, patch // 8, channels)

    def encode_patches(self, patches: np.ndarray) -> np.ndarray:
        raise InputError("this codec was made for decoding only (learned_codec(..., encoder=False))")


# ------------------------------------------------------------------ codecs
@lru_cache(maxsize=4)
def _weights(path: str) -> DecoderWeights:
    return DecoderWeights.load(path)


def learned_codec(
    channels: int = 16,
    decoder: str = "full",
    *,
    folder: Optional[Union[str, Path]] = None,
    backend: str = "auto",
    mode: str = "patch",
    encoder: bool = True,
) -> PatchLatentCodec:
    """The shipped learned codec at one rate (``channels`` of the latent), full-frame or per-patch decoder.

    ``encoder=False``: decode only (a server needs the decoder weights, not the encoder firmware).
    """
    folder = Path(folder) if folder else model_dir()
    weights = _weights(str(folder / DECODER_FILE))
    if not 1 <= channels <= weights.latent_channels:
        raise InputError(f"channels must be 1..{weights.latent_channels}, found {channels}")
    if encoder:
        enc_path = folder / ENCODER_FILE
        if not enc_path.is_file():
            raise FirmwareError(
                f"codec encoder firmware not found: {enc_path} (set EDGE_SDK_MODELS or run tools/train_codec.py)"
            )
        enc = ChipPatchEncoder(enc_path, channels, backend)
    else:
        enc = DecodeOnlyEncoder(weights.patch, channels)
    if decoder == "full":
        dec = FullFrameDecoder(weights)
    elif decoder == "patch":
        dec = PatchwiseDecoder(PatchIndependentDecoder(weights))
    else:
        raise InputError(f"decoder must be 'full' or 'patch', found {decoder!r}")
    return PatchLatentCodec(f"ours-nqe-{decoder}[L={channels}]", enc, dec, mode)


class LearnedFamily:
    """The rates of the learned codec as a :class:`~edge_sdk.codec.pipeline.CodecFamily`."""

    def __init__(self, decoder: str = "full", folder=None, backend: str = "auto", qualities=RATES) -> None:
        self.name = f"ours-nqe-{decoder}"
        self.decoder, self.folder, self.backend = decoder, folder, backend
        self.qualities = tuple(qualities)
        self._cache: dict = {}

    def at(self, quality) -> PatchLatentCodec:
        if quality not in self._cache:
            self._cache[quality] = learned_codec(
                int(quality), self.decoder, folder=self.folder, backend=self.backend
            )
        return self._cache[quality]


__all__ = [
    "RATES",
    "ChipPatchEncoder",
    "DecodeOnlyEncoder",
    "DecoderWeights",
    "FullFrameDecoder",
    "LearnedFamily",
    "PatchIndependentDecoder",
    "conv3x3",
    "decode_latent_image",
    "learned_codec",
    "model_dir",
    "pixel_shuffle",
]
