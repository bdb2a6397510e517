"""Input preparation recorded in a firmware image: what the host does to a frame before the chip sees it.

A converted image may ask the host to change each uint8 frame taken at the
model's *logical* input size (what the camera or dataset gives, resized) into
the chip's input frame (``Network.input_shape``):

* ``metadata["input"]["dither"] = {"factor": 2, "offsets": [[-3, 1], [3, -1]]}``:
  repeat each pixel over a 2x2 block with those offsets (:func:`dither_frames`);
  the chip's first layer averages the block back (7-bit input on a 5-bit chip);
* ``metadata["input"]["host_pad"] = {"pad": [top, left, bottom, right],
  "pad_value": [per channel], "padded_shape": [H, W, C]}``: pad with the pixel
  whose code means real 0 (:func:`pad_frames`), because the chip pads with code 0.

Dithering comes first, then padding: ``chip = pad(dither(frame))``.  The logical
input shape is ``metadata["input"]["model_shape"]`` (written by the converter);
an image that does not record it gets it derived from the chip's input shape:
``H = (H_chip - top - bottom) / factor``, ``W = (W_chip - left - right) / factor``,
``C = C_chip``.  Without input preparation the logical shape *is* the chip's.

Pure numpy, no converter imports: :class:`edge_sdk.runtime.Device` applies it on
the device (``Device.run`` takes frames at ``Device.model_input_shape``), and
``edge_sdk.convert.inputpad`` re-exports it for the converter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..errors import FirmwareError, InputError

DITHER_OFFSETS = np.array([[-3, 1], [3, -1]])  # four thresholds 2 apart inside one 8-wide code step
DITHER_FACTORS = (1, 2)


@dataclass(frozen=True)
class HostPad:
    pad: tuple[int, int, int, int]  # top, left, bottom, right
    value: tuple[int, ...]  # per channel: the pixel whose code is real 0
    shape: tuple[int, int, int]  # padded frame shape

    def to_dict(self) -> dict:
        return {"pad": list(self.pad), "pad_value": list(self.value), "padded_shape": list(self.shape)}


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


def from_metadata(metadata: Optional[Mapping]) -> Optional[HostPad]:
    """The host padding recorded in a converted network's metadata (None if none)."""
    entry = _input_entry(metadata).get("host_pad")
    if not entry:
        return None
    try:
        hp = HostPad(
            tuple(int(v) for v in entry["pad"]),
            tuple(int(v) for v in entry["pad_value"]),
            tuple(int(v) for v in entry["padded_shape"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise FirmwareError(
            f"metadata input.host_pad must have pad, pad_value and padded_shape, found {entry!r}"
        ) from exc
    if len(hp.pad) != 4 or len(hp.shape) != 3 or min(hp.pad) < 0 or len(hp.value) != hp.shape[2]:
        raise FirmwareError(
            f"metadata input.host_pad: expected 4 non-negative pads, a 3-d padded_shape and one "
            f"pad_value per channel, found {entry!r}"
        )
    return hp


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
        raise InputError(f"input dither factor must be 1 or 2, found {factor}")
    x = frames.astype(np.int16)
    up = np.repeat(np.repeat(x, 2, axis=-3), 2, axis=-2)
    offsets = np.tile(DITHER_OFFSETS, (x.shape[-3], x.shape[-2]))[..., None]
    return np.clip(up + offsets, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class InputPrep:
    """What the host does to a frame at the model's input size before the chip sees it."""

    host_pad: Optional[HostPad] = None
    dither: int = 1

    @property
    def identity(self) -> bool:
        """True when frames go to the chip unchanged."""
        return self.host_pad is None and self.dither == 1

    def apply(self, frames: np.ndarray) -> np.ndarray:
        return pad_frames(dither_frames(frames, self.dither), self.host_pad)

    def chip_shape(self, model_shape: Sequence[int]) -> tuple[int, int, int]:
        """The chip's input shape for frames of ``model_shape`` (HWC)."""
        h, w, c = (int(v) for v in model_shape)
        h, w = h * self.dither, w * self.dither
        if self.host_pad is not None:
            t, left, b, r = self.host_pad.pad
            h, w = h + t + b, w + left + r
        return (h, w, c)

    def model_shape(self, chip_shape: Sequence[int]) -> tuple[int, int, int]:
        """The logical input shape for a chip input shape: (chip - pads) / dither factor (HWC)."""
        h, w, c = (int(v) for v in chip_shape)
        if self.host_pad is not None:
            t, left, b, r = self.host_pad.pad
            h, w = h - t - b, w - left - r
        if h <= 0 or w <= 0 or h % self.dither or w % self.dither:
            raise FirmwareError(
                f"the chip's input shape {tuple(chip_shape)} does not fit the image's input prep ({self})"
            )
        return (h // self.dither, w // self.dither, c)

    def __str__(self) -> str:
        parts = []
        if self.dither != 1:
            parts.append(f"dither x{self.dither}")
        if self.host_pad is not None:
            parts.append(f"pad {self.host_pad.pad} with pixel {self.host_pad.value}")
        return ", then ".join(parts) or "none"

    def to_dict(self) -> dict:
        return {
            "host_pad": self.host_pad.to_dict() if self.host_pad else None,
            "dither": None
            if self.dither == 1
            else {"factor": self.dither, "offsets": DITHER_OFFSETS.tolist()},
        }


def _input_entry(metadata: Optional[Mapping]) -> Mapping:
    entry = (metadata or {}).get("input")
    return entry if isinstance(entry, Mapping) else {}


def prep_from_metadata(metadata: Optional[Mapping]) -> InputPrep:
    """The input preparation a converted network's metadata asks for (identity if none)."""
    dither = _input_entry(metadata).get("dither") or {}
    if not isinstance(dither, Mapping):
        raise FirmwareError(f"metadata input.dither must be a mapping or null, found {dither!r}")
    factor = dither.get("factor", 1)
    if factor not in DITHER_FACTORS:
        raise FirmwareError(f"metadata input.dither.factor must be one of {DITHER_FACTORS}, found {factor!r}")
    offsets = dither.get("offsets")
    if factor != 1 and offsets is not None and not np.array_equal(np.asarray(offsets), DITHER_OFFSETS):
        raise FirmwareError(
            f"metadata input.dither.offsets {offsets!r} differ from this runtime's {DITHER_OFFSETS.tolist()}"
        )
    return InputPrep(from_metadata(metadata), int(factor))


def model_input_shape(metadata: Optional[Mapping], chip_shape: Sequence[int]) -> tuple[int, int, int]:
    """The logical input shape: ``input.model_shape`` when recorded, else derived (module docstring).

    Raises :class:`FirmwareError` when the recorded shape and the input prep do not
    give ``chip_shape``.
    """
    chip = tuple(int(v) for v in chip_shape)
    prep = prep_from_metadata(metadata)
    if prep.identity:
        return chip
    if prep.host_pad is not None and prep.host_pad.shape != chip:
        raise FirmwareError(
            f"metadata input.host_pad.padded_shape {list(prep.host_pad.shape)} is not the chip's input {list(chip)}"
        )
    recorded: Any = _input_entry(metadata).get("model_shape")
    shape = tuple(int(v) for v in recorded) if recorded else prep.model_shape(chip)
    if len(shape) != 3 or prep.chip_shape(shape) != chip:
        raise FirmwareError(
            f"metadata input.model_shape {list(shape)} with input prep ({prep}) gives "
            f"{list(prep.chip_shape(shape)) if len(shape) == 3 else '?'}, not the chip's input {list(chip)}"
        )
    return shape


def prepare_frames(metadata: Optional[Mapping], frames: np.ndarray) -> np.ndarray:
    """uint8 frames at the model's input size -> the chip's input frames, as the image's metadata says."""
    return prep_from_metadata(metadata).apply(frames)
