"""Host-side input padding: keep zero padding exact when the model's input has an offset.

The chip pads with code 0.  When the model's real input is ``a * pixel + c``
with ``c != 0`` (e.g. MobileNet's ``pixel / 128 - 1``), code 0 means the real
value ``c``, not the 0 TFLite pads with, so folding ``c`` into the first conv's
bias would be wrong on every border pixel (and the error spreads inward layer
by layer).  Instead the host pads the frame with the pixel whose code means
real 0 (``-c / a``: 128 for MobileNet) and the first conv runs unpadded: exact.
The firmware's input shape is the padded one; metadata ``input.host_pad``
tells the host what to do (:func:`pad_frames`).

The frame-side functions (padding, dithering, :class:`InputPrep`,
:func:`prepare_frames`) live in :mod:`edge_sdk.runtime.inputprep`, so the
on-device runtime applies them without the converter; they are re-exported here.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..chips import ChipProfile
from ..errors import ConversionError
from ..runtime.inputprep import (
    DITHER_OFFSETS,
    HostPad,
    InputPrep,
    dither_frames,
    from_metadata,
    model_input_shape,
    pad_frames,
    prep_from_metadata,
    prepare_frames,
)
from .graph import Graph
from .plan_types import Plan

__all__ = [
    "DITHER_OFFSETS",
    "HostPad",
    "InputPrep",
    "dither_frames",
    "from_metadata",
    "host_padding",
    "model_input_shape",
    "pad_frames",
    "prep_from_metadata",
    "prepare_frames",
    "zero_pixel",
]


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
