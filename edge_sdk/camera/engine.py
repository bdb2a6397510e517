"""What runs the network on a frame: the chip via a firmware image, or a stand-in.

The camera app only needs the small :class:`Engine` protocol, so it can be tested with
a fake and run before a firmware image exists.

* :class:`FirmwareEngine` — ``edge_sdk.load_firmware`` + ``edge_sdk.Device(backend="auto")``;
  ``run`` returns ``res.output`` (the dequantized network output) as float32.
* :class:`PixelEngine` — **not a neural network**: an 8x8x3 average-pooled thumbnail,
  mean-removed (192 values).  It stands in when no ``--firmware`` is given so the whole
  pipeline (transport, server, index, queries) can be exercised; its "descriptors"
  retrieve near-identical images only, and its classify output is meaningless.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Protocol, Union

import numpy as np
from PIL import Image

from ..errors import InputError


class Engine(Protocol):
    """Runs the network: ``run(frame)`` takes uint8 HWC of exactly ``input_shape``."""

    name: str
    input_shape: tuple[int, int, int]
    labels: Optional[list[str]]

    def run(self, frame: np.ndarray) -> np.ndarray: ...


def fit_to_input(frame: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Resize (bilinear, Pillow) and convert channels so ``frame`` is exactly ``shape``."""
    h, w, c = shape
    if frame.ndim != 3 or frame.dtype != np.uint8:
        raise InputError(f"frame: expected uint8 HxWxC, found {frame.dtype} {frame.shape}")
    img = Image.fromarray(frame if frame.shape[2] == 3 else frame[:, :, 0])
    if img.size != (w, h):
        img = img.resize((w, h), Image.BILINEAR)
    img = img.convert("L" if c == 1 else "RGB")
    out = np.asarray(img, dtype=np.uint8)
    return out[:, :, None] if c == 1 else out


class FirmwareEngine:
    """The chip (or its bit-exact emulator) running a firmware image."""

    def __init__(self, firmware: Union[str, Path, bytes], backend: str = "auto") -> None:
        import edge_sdk

        self.image = edge_sdk.load_firmware(firmware)
        self.device = edge_sdk.Device(backend=backend)
        self.device.load(self.image)
        meta = dict(getattr(self.image, "metadata", {}) or {})
        # the model's input size: the Device applies the image's input prep (padding, dithering)
        self.input_shape = tuple(int(v) for v in self.device.model_input_shape)
        # trained images carry "labels"; converted ones "output": {"labels": ...} (docs/converter.md)
        labels = meta.get("labels") or (meta.get("output") or {}).get("labels")
        self.labels = list(labels) if labels else None
        self.name = str(
            meta.get("model_name")
            or (Path(firmware).stem if isinstance(firmware, (str, Path)) else "firmware")
        )

    def prepare(self, frame: np.ndarray) -> np.ndarray:
        return fit_to_input(frame, self.input_shape)

    def run(self, frame: np.ndarray) -> np.ndarray:
        return np.asarray(self.device.run(frame).output, dtype=np.float32).reshape(-1)


class PixelEngine:
    """A stand-in that is not a network (see the module docstring)."""

    name = "pixels"
    labels = None

    def __init__(self, size: int = 32) -> None:
        self.input_shape = (size, size, 3)

    def prepare(self, frame: np.ndarray) -> np.ndarray:
        return fit_to_input(frame, self.input_shape)

    def run(self, frame: np.ndarray) -> np.ndarray:
        h, w, _ = self.input_shape
        pooled = frame.astype(np.float32).reshape(8, h // 8, 8, w // 8, 3).mean(axis=(1, 3))
        return (pooled - pooled.mean()).reshape(-1)


def load_engine(firmware: Optional[Union[str, Path]] = None) -> Union[FirmwareEngine, PixelEngine]:
    """The firmware engine for a path, or the pixels stand-in when ``firmware`` is None/'pixels'."""
    if firmware is None or str(firmware) == "pixels":
        return PixelEngine()
    if not Path(firmware).is_file():
        raise InputError(
            f"firmware image not found: {firmware} (expected a .edgefw file, e.g. firmware_images/*.edgefw)"
        )
    return FirmwareEngine(firmware)
