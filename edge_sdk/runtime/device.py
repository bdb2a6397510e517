"""The Device: runs a firmware image on a backend, tile by tile, following its schedule.

    import edge_sdk
    image = edge_sdk.load_firmware("firmware_images/sample_lightspeeur.edgefw")
    dev = edge_sdk.Device()                 # "auto": emulator if built, else reference
    dev.load(image)
    result = dev.run(frame)                 # uint8 HWC (or NHWC) of dev.model_input_shape

Frames are taken at the model's logical input size (``dev.model_input_shape``)
and prepared as the image's metadata says (host padding, input dithering: see
:mod:`edge_sdk.runtime.inputprep`) before the chip sees them; frames already at
the chip's input size (``dev.input_shape``) pass unchanged, and
``run(frame, prepare=False)`` accepts only those.  Without input preparation in
the image the two shapes are the same and frames go to the chip as they are.

``result.codes`` are the last chip layer's integer outputs (uint8 activation codes,
or int32 raw accumulators), ``result.output`` the network's float32 output (host
layers applied, or the chip output dequantized), ``result.taps`` every layer's
output when ``run(frame, taps=True)``.  One Device per thread; kernels release the
GIL, so several Devices run in parallel.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np

from ..arith import convert_input
from ..errors import BackendError, InputError
from ..network import Network
from ..tiling import compute_schedule, layer_tiles
from .backend import Backend
from .host import dequantize, run_host_layer
from .inputprep import InputPrep, model_input_shape, prep_from_metadata

BACKENDS = ("auto", "emulator", "reference")


@dataclass
class RunResult:
    codes: np.ndarray  # last chip layer: uint8 codes or int32 raw accumulators (HWC; N-first for batches)
    output: np.ndarray  # float32 network output
    taps: dict[str, np.ndarray] = field(default_factory=dict)


def make_backend(name: str = "auto") -> Backend:
    """A backend by name; "auto" honours $EDGE_SDK_BACKEND, then prefers the emulator."""
    from . import emulator
    from .reference import ReferenceBackend

    if name == "auto":
        name = os.environ.get("EDGE_SDK_BACKEND", "auto")
        if name == "auto":
            name = "emulator" if emulator.AVAILABLE else "reference"
            if name == "reference":
                emulator.warn_missing()
    if name not in BACKENDS[1:]:
        raise BackendError(f"unknown backend {name!r}; choose one of {BACKENDS}")
    if name == "reference":
        return ReferenceBackend()
    return emulator.EmulatorBackend()


class Device:
    """One accelerator (emulated); not shared between threads."""

    def __init__(self, backend: Union[str, Backend] = "auto") -> None:
        self.backend = backend if isinstance(backend, Backend) else make_backend(backend)
        self.network: Network | None = None
        self.image: Any = None
        self._tiles: dict[int, list] = {}
        self._prep = InputPrep()
        self._model_shape: tuple[int, int, int] | None = None

    def load(self, image: Any) -> Device:
        """Load a FirmwareImage, a Network, image bytes or a path to an image file."""
        if isinstance(image, (bytes, bytearray, memoryview, str, Path)):
            from ..firmware import load_firmware

            image = load_firmware(image)
        net = image if isinstance(image, Network) else getattr(image, "network", None)
        if not isinstance(net, Network):
            raise InputError(
                f"Device.load expects a FirmwareImage, Network, bytes or path, found {type(image).__name__}"
            )
        prep = prep_from_metadata(net.metadata)  # FirmwareError on malformed input metadata
        model_shape = model_input_shape(net.metadata, net.input_shape)
        if net.schedule is None:
            net.schedule = compute_schedule(net)
        self.image, self.network = image, net
        self._prep, self._model_shape = prep, model_shape
        self.backend.load(net)
        self._tiles = {
            ls.layer: layer_tiles(net, ls.layer, ls.band_rows, ls.group_channels)
            for ls in net.schedule.layers
        }
        return self

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The chip's input shape (HWC): frames after the image's input preparation."""
        return tuple(self._net().input_shape)

    @property
    def model_input_shape(self) -> tuple[int, int, int]:
        """The model's logical input shape (HWC): what ``run`` takes before input preparation.

        Equal to :attr:`input_shape` when the image has no input preparation.
        """
        self._net()
        return self._model_shape

    @property
    def input_prep(self) -> InputPrep:
        """The loaded image's input preparation (identity when it has none)."""
        self._net()
        return self._prep

    def _net(self) -> Network:
        if self.network is None:
            raise BackendError("no firmware loaded: call Device.load(image) first")
        return self.network

    def _check_frame(self, frame: Any, prepare: bool = True) -> np.ndarray:
        """The chip's input frame(s) for ``frame``: prepared if at the model's size, else checked."""
        chip = self.input_shape
        model = self.model_input_shape
        prepares = prepare and model != chip
        if not isinstance(frame, np.ndarray):
            shapes = f"{model} or (N, *{model})" if prepares else f"{chip} or (N, *{chip})"
            raise InputError(
                f"frame must be a numpy uint8 array of shape {shapes}, found {type(frame).__name__}"
            )
        if frame.dtype != np.uint8:
            raise InputError(
                f"frame dtype must be uint8, found {frame.dtype} (convert and scale to 0..255 first)"
            )
        if frame.ndim in (3, 4):
            if frame.shape[-3:] == chip:
                return frame
            if prepares and frame.shape[-3:] == model:
                return self._prep.apply(frame)
        if model == chip:
            raise InputError(f"frame shape must be {chip} (HWC) or (N, *{chip}) (NHWC), found {frame.shape}")
        if prepares:
            raise InputError(
                f"frame shape must be the model's input {model} (HWC) or (N, *{model}) (NHWC), "
                f"prepared by the device ({self._prep}), or the chip's input {chip} / (N, *{chip}) "
                f"already prepared, found {frame.shape}"
            )
        raise InputError(
            f"frame shape must be the chip's input {chip} (HWC) or (N, *{chip}) (NHWC) with prepare=False; "
            f"the model's input {model} needs prepare=True ({self._prep}), found {frame.shape}"
        )

    def run(self, frame: np.ndarray, *, taps: bool = False, prepare: bool = True) -> RunResult:
        """Run one HWC frame or an NHWC batch; see the module docstring for the result.

        ``frame`` is uint8 at :attr:`model_input_shape` (prepared here as the image's
        metadata says) or at :attr:`input_shape` (passed to the chip unchanged).
        ``prepare=False`` accepts only the chip's input shape.
        """
        frame = self._check_frame(frame, prepare)
        if frame.ndim == 3:
            return self._run_one(frame, taps)
        results = [self._run_one(f, taps) for f in frame]
        stacked_taps = {k: np.stack([r.taps[k] for r in results]) for k in results[0].taps} if taps else {}
        return RunResult(
            np.stack([r.codes for r in results]), np.stack([r.output for r in results]), stacked_taps
        )

    def _run_one(self, frame: np.ndarray, taps: bool) -> RunResult:
        net = self._net()
        x = convert_input(frame, net.profile)
        outs: list[np.ndarray] = []
        for i, layer in enumerate(net.layers):
            srcs = [x if s < 0 else outs[s] for s in layer.inputs]
            if layer.on_chip:
                outs.append(self._run_chip_layer(i, srcs))
            else:
                producer = net.layers[layer.inputs[0]]
                src = dequantize(srcs[0], producer) if producer.on_chip else srcs[0]
                outs.append(run_host_layer(layer, src))
        last_chip = net.n_chip - 1
        codes = outs[last_chip]
        output = outs[-1] if net.n_chip < len(net.layers) else dequantize(codes, net.layers[last_chip])
        tapped = {layer.name: out for layer, out in zip(net.layers, outs)} if taps else {}
        return RunResult(codes, output.reshape(-1) if output.shape[:2] == (1, 1) else output, tapped)

    def _run_chip_layer(self, index: int, srcs: list[np.ndarray]) -> np.ndarray:
        net, be = self._net(), self.backend
        layer = net.layers[index]
        dtype = np.int32 if layer.output == "raw" else np.uint8
        out = np.empty(layer.out_shape, dtype=dtype)
        for t in self._tiles[index]:
            for slot, src in enumerate(srcs):
                be.write_tile(slot, src[t.in_row0 : t.in_row0 + t.in_rows, :, t.in_ch0 : t.in_ch0 + t.in_chn])
            be.run(index, t)
            out[t.out_row0 : t.out_row0 + t.out_rows, :, t.ch0 : t.ch0 + t.chn] = be.read_tile()
        return out

    def describe(self) -> dict[str, Any]:
        """What is loaded: backend, profile, shapes, and per layer op, bits and tiling."""
        net = self._net()
        layers = []
        for i, layer in enumerate(net.layers):
            entry = layer.summary(i)
            if layer.on_chip:
                ls = net.schedule.for_layer(i)
                entry["tiles"] = len(self._tiles[i])
                entry["activation_sram_bits"] = ls.act_bits
                entry["weight_sram_bits"] = ls.weight_bits
            layers.append(entry)
        return {
            "backend": self.backend.name,
            "profile": net.profile.id,
            "input_shape": list(net.input_shape),
            "model_input_shape": list(self.model_input_shape),
            "input_prep": self._prep.to_dict(),
            "metadata": dict(net.metadata),
            "layers": layers,
        }
