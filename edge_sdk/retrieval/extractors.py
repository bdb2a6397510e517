"""Feature extractors: something that maps a batch of chip-sized crops to feature maps.

``ChipExtractor`` runs a firmware image on a Device and reads one layer's output
(dequantized); ``TFLiteExtractor`` runs a float or int8 ``.tflite`` teacher through
LiteRT and reads one tensor (the float reference for "2-bit vs float").
"""

from __future__ import annotations

from typing import Any, Optional, Protocol

import numpy as np

from ..errors import InputError
from ..runtime.host import dequantize


class FeatureExtractor(Protocol):
    input_shape: tuple[int, int, int]

    def features(self, batch: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, C) -> float32 (N, h, w, D) non-negative feature maps."""


class ChipExtractor:
    """Feature maps from a firmware image on the chip (emulated): a chip layer's output, dequantized."""

    def __init__(self, image: Any, *, layer: Optional[str] = None, backend: str = "auto") -> None:
        from ..firmware import load_firmware
        from ..runtime import Device

        if not hasattr(image, "network"):
            image = load_firmware(image)
        self.image = image
        self.device = Device(backend).load(image)
        net = image.network
        names = [ly.name for ly in net.layers]
        self.layer = layer or net.layers[net.n_chip - 1].name
        if self.layer not in names:
            raise InputError(f"no layer {self.layer!r} in the firmware image (layers: {names})")
        self._layer = net.layers[names.index(self.layer)]
        # the last chip layer is the run's own ``codes``: no need to stack every layer's output
        self._tap = names.index(self.layer) != net.n_chip - 1
        self.input_shape = self.device.model_input_shape  # the Device applies the image's input prep

    def features(self, batch: np.ndarray) -> np.ndarray:
        res = self.device.run(batch, taps=self._tap)
        fmap = res.taps[self.layer] if self._tap else res.codes
        if self._layer.on_chip:
            fmap = dequantize(fmap, self._layer)
        return np.maximum(np.asarray(fmap, np.float32), 0.0)


class TFLiteExtractor:
    """Feature maps of one tensor of a .tflite model run by LiteRT (float or quantized; dequantized)."""

    def __init__(self, model_path: str, *, tensor: Optional[str] = None, num_threads: int = 1) -> None:
        from ..litert import make_interpreter

        self.interp = make_interpreter(
            model_path, num_threads=num_threads, preserve_all_tensors=tensor is not None
        )
        inp = self.interp.get_input_details()[0]
        self._in = inp
        self.input_shape = tuple(int(v) for v in inp["shape"][1:])
        self._out = (
            _find_tensor(self.interp, tensor, model_path) if tensor else self.interp.get_output_details()[0]
        )

    def _one(self, img: np.ndarray) -> np.ndarray:
        x = img[None]
        if self._in["dtype"] == np.float32:
            scale, zero = self._in["quantization"]
            x = x.astype(np.float32) if scale == 0 else (x.astype(np.float32) - zero) * scale
        self.interp.set_tensor(self._in["index"], x.astype(self._in["dtype"]))
        self.interp.invoke()
        y = self.interp.get_tensor(self._out["index"])[0]
        scale, zero = self._out["quantization"]
        y = y.astype(np.float32) if scale == 0 else (y.astype(np.float32) - zero) * scale
        return y.reshape((1, 1, -1)) if y.ndim == 1 else y

    def features(self, batch: np.ndarray) -> np.ndarray:
        return np.maximum(np.stack([self._one(img) for img in batch]), 0.0)


def _find_tensor(interp: Any, tensor: str, model_path: str) -> dict:
    """A tensor by exact name, or by a substring that matches exactly one tensor name."""
    details = interp.get_tensor_details()
    exact = [d for d in details if d["name"] == tensor]
    matches = exact or [d for d in details if tensor in d["name"]]
    if len(matches) != 1:
        raise InputError(
            f"tensor {tensor!r} matches {len(matches)} tensors in {model_path} (need exactly one)"
        )
    return matches[0]
