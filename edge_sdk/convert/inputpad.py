"""Host-side input padding: keep zero padding exact when the model's input has an offset.

The chip pads with code 0.  When the model's real input is ``a * pixel + c``
with ``c != 0`` (e.g. MobileNet's ``pixel / 128 - 1``), code 0 means the real
value ``c``, not the 0 TFLite pads with, so folding ``c`` into the first conv's
bias would be wrong on every border pixel (and the error spreads inward layer
by layer).  Instead the host pads the frame with the pixel whose code means
real 0 (``-c / a``: 128 for MobileNet) and the first conv runs unpadded: exact.
The firmware's input shape is the padded one; metadata ``input.pad`` /
``input.pad_value`` tell the host what to do (:func:`pad_frames`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..chips import ChipProfile
from ..errors import ConversionError
from .graph import Graph
from .plan_types import Plan


@dataclass(frozen=True)
class HostPad:
    pad: tuple[int, int, int, int]  # top, left, bottom, right
    value: tuple[int, ...]  # per channel: the pixel whose code is real 0
    shape: tuple[int, int, int]  # padded frame shape

    def to_dict(self) -> dict:
        return {"pad": list(self.pad), "pad_value": list(self.value), "padded_shape": list(self.shape)}


def zero_pixel(g: Graph, p: ChipProfile) -> np.ndarray:
    """Per channel, the uint8 pixel closest to real 0 whose chip code is exact."""
    c = g.shape(g.input)[-1]
    scale = np.broadcast_to(np.asarray(g.input_scale, np.float64), (c,))
    offset = np.broadcast_to(np.asarray(g.input_offset, np.float64), (c,))
    step = 2**p.input_shift if p.input_conversion == "round_shift" else 1
    value = np.clip(np.round(-offset / scale / step) * step, 0, 255)
    return value.astype(np.int64)


def host_padding(g: Graph, plan: Plan, p: ChipProfile) -> Optional[HostPad]:
    """Move the first convs' padding to the host when the input offset is non-zero (plan edited in place)."""
    if not np.any(np.asarray(g.input_offset)):
        return None
    readers = [pl for pl in plan.layers if -1 in pl.src]
    pads = {tuple(pl.pad) for pl in readers}
    if not any(any(pad) for pad in pads):
        return None
    if len(pads) != 1 or any(pl.op != "conv" for pl in readers):
        raise ConversionError(
            "the input has an offset and its readers pad differently; cannot pad on the host"
        )
    pad = pads.pop()
    for pl in readers:
        pl.host_pad, pl.pad = pl.pad, (0, 0, 0, 0)
    h, w, c = g.shape(g.input)
    value = zero_pixel(g, p)
    return HostPad(pad, tuple(int(v) for v in value), (h + pad[0] + pad[2], w + pad[1] + pad[3], c))


def pad_frames(frames: np.ndarray, hp: Optional[HostPad]) -> np.ndarray:
    """uint8 frames at the model's input size -> what the chip takes (padded with the zero pixel)."""
    if hp is None:
        return frames
    single = frames.ndim == 3
    x = frames[None] if single else frames
    t, left, _, _ = hp.pad
    out = np.empty((len(x),) + tuple(hp.shape), np.uint8)
    out[...] = np.asarray(hp.value, np.uint8)
    out[:, t : t + x.shape[1], left : left + x.shape[2]] = x
    return out[0] if single else out


def from_metadata(metadata: dict) -> Optional[HostPad]:
    """The host padding recorded in a converted network's metadata (None if none)."""
    entry = (metadata or {}).get("input", {}).get("host_pad")
    if not entry:
        return None
    return HostPad(tuple(entry["pad"]), tuple(entry["pad_value"]), tuple(entry["padded_shape"]))


# ---------------------------------------------------------------------- input dithering
DITHER_OFFSETS = np.array([[-3, 1], [3, -1]])  # four thresholds 2 apart inside one 8-wide code step


def dither_frames(frames: np.ndarray, factor: int) -> np.ndarray:
    """Repeat each pixel over a factor x factor block with offsets, so the 5-bit codes carry 2 more bits.

    The chip's input conversion floor((x + 4) / 8) is a staircase with 8-wide steps;
    four copies offset by -3, -1, 1, 3 (mean 0) cross their thresholds 2 apart, so the
    block's code sum resolves x to about 2 (7 bits).  The first chip layer averages
    the block back (``plan.Planner`` adds it).
    """
    if factor == 1:
        return frames
    if factor != 2:
        raise ConversionError(f"input dither factor must be 1 or 2, found {factor}")
    x = frames.astype(np.int16)
    up = np.repeat(np.repeat(x, 2, axis=-3), 2, axis=-2)
    offsets = np.tile(DITHER_OFFSETS, (x.shape[-3], x.shape[-2]))[..., None]
    return np.clip(up + offsets, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class InputPrep:
    """What the host does to a frame at the model's input size before the chip sees it."""

    host_pad: Optional[HostPad] = None
    dither: int = 1

    def apply(self, frames: np.ndarray) -> np.ndarray:
        return pad_frames(dither_frames(frames, self.dither), self.host_pad)

    def to_dict(self) -> dict:
        return {
            "host_pad": self.host_pad.to_dict() if self.host_pad else None,
            "dither": None
            if self.dither == 1
            else {"factor": self.dither, "offsets": DITHER_OFFSETS.tolist()},
        }


def prep_from_metadata(metadata: dict) -> InputPrep:
    entry = (metadata or {}).get("input", {})
    dither = entry.get("dither") or {}
    return InputPrep(from_metadata(metadata), int(dither.get("factor", 1)))


def prepare_frames(metadata: dict, frames: np.ndarray) -> np.ndarray:
    """uint8 frames at the model's input size -> the chip's input frames, as the image's metadata says."""
    return prep_from_metadata(metadata).apply(frames)
