"""The integer network: what a firmware image stores and what the runtime executes.

A :class:`Network` is a list of :class:`Layer` in topological order.  Chip layers
(conv, maxpool, add) carry integer codes and fixed-point constants exactly as the
chip consumes them; host layers (gap, dense, softmax) run on the CPU in float32
after the chip part.  Every layer carries its own precision (bit width is data).
Feature maps are HWC.  ``inputs`` index earlier layers; ``-1`` is the network input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .chips import ChipProfile
from .errors import ProfileError

CHIP_OPS = ("conv", "maxpool", "add")
HOST_OPS = ("gap", "dense", "softmax")
OP_CODES = {"conv": 1, "maxpool": 2, "add": 3, "gap": 16, "dense": 17, "softmax": 18}
OP_NAMES = {v: k for k, v in OP_CODES.items()}
OUTPUT_MODES = ("act", "raw")
Shape = tuple[int, int, int]


@dataclass
class Layer:
    """One layer.  Unused fields keep their defaults (e.g. ``codes`` for maxpool)."""

    name: str
    op: str
    inputs: tuple[int, ...]
    in_shape: Shape
    out_shape: Shape
    kernel: int = 1
    stride: int = 1
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right (zero codes)
    groups: int = 1
    weight_bits: int = 0
    act_bits: int = 0  # bits of the output codes ("act"); 32 for "raw" accumulators
    output: str = "act"
    shift: int = 0
    codes: Optional[np.ndarray] = None  # int8 (O, I/groups, k, k): signed weight codes
    scalars: Optional[np.ndarray] = None  # int16 (O, I/groups): per-kernel scalar (per_kernel profiles)
    bias: Optional[np.ndarray] = None  # int32 (O,): added to the accumulator before the shift
    mults: tuple[int, int] = (1, 1)  # add: integer multipliers of the two operands
    out_scale: float = 1.0  # real value of one output unit (code or raw accumulator step)
    dense_w: Optional[np.ndarray] = None  # float32 (N, K) for host dense
    dense_b: Optional[np.ndarray] = None  # float32 (N,)

    @property
    def on_chip(self) -> bool:
        return self.op in CHIP_OPS

    @property
    def weight_count(self) -> int:
        return 0 if self.codes is None else int(self.codes.size)

    def summary(self, index: int) -> dict[str, Any]:
        """The fields every per-layer report starts with (image info, ``Device.describe``)."""
        return {
            "index": index,
            "name": self.name,
            "op": self.op,
            "target": "chip" if self.on_chip else "host",
            "in_shape": list(self.in_shape),
            "out_shape": list(self.out_shape),
            "weight_bits": self.weight_bits,
            "act_bits": self.act_bits,
            "output": self.output,
        }


@dataclass
class Network:
    profile: ChipProfile
    input_shape: Shape
    layers: list[Layer]
    metadata: dict[str, Any] = field(default_factory=dict)
    schedule: Any = None  # edge_sdk.tiling.Schedule once computed

    @property
    def chip_layers(self) -> list[Layer]:
        return [layer for layer in self.layers if layer.on_chip]

    @property
    def n_chip(self) -> int:
        """Chip layers form a prefix of the layer list (validated)."""
        return len(self.chip_layers)

    def input_bits(self, index: int) -> int:
        """Bits of the codes that layer ``index`` reads (its first input)."""
        from .tiling import _source_bits

        return _source_bits(self, self.layers[index].inputs[0])

    def input_max(self, index: int) -> int:
        return (1 << self.input_bits(index)) - 1

    def producer_shape(self, src: int) -> Shape:
        return self.input_shape if src < 0 else self.layers[src].out_shape

    def validate(self) -> None:
        """Check every layer against the profile and the arithmetic bounds (ProfileError)."""
        validate_network(self)


def conv_out_size(size: int, kernel: int, stride: int, pad_lo: int, pad_hi: int) -> int:
    return (size + pad_lo + pad_hi - kernel) // stride + 1


def _fail(layer: Layer, i: int, message: str) -> None:
    raise ProfileError(f"layer {i} ({layer.name!r}, {layer.op}): {message}")


def validate_network(net: Network) -> None:
    p = net.profile
    if len(net.input_shape) != 3 or min(net.input_shape) < 1:
        raise ProfileError(f"input shape must be (H, W, C) positive, found {net.input_shape}")
    if net.input_shape[2] not in p.input_channels:
        raise ProfileError(
            f"profile {p.id!r} takes {p.input_channels} input channels, found {net.input_shape[2]}"
        )
    if max(net.input_shape[:2]) > p.max_feature_size:
        raise ProfileError(
            f"input {net.input_shape[:2]} exceeds the profile's max feature size {p.max_feature_size}"
        )
    if net.n_chip > p.max_layers:
        raise ProfileError(f"{net.n_chip} chip layers exceed the profile's budget of {p.max_layers}")
    seen_host = False
    for i, layer in enumerate(net.layers):
        if layer.op not in OP_CODES:
            _fail(layer, i, f"unknown op (known: {sorted(OP_CODES)})")
        if layer.on_chip and layer.op not in p.ops:
            _fail(layer, i, f"op not supported by profile {p.id!r}")
        if layer.on_chip and seen_host:
            _fail(layer, i, "chip layers must come before every host layer")
        seen_host |= not layer.on_chip
        n_in = 2 if layer.op == "add" else 1
        if len(layer.inputs) != n_in or any(not -1 <= s < i for s in layer.inputs):
            _fail(layer, i, f"needs {n_in} input(s) among earlier layers, found {layer.inputs}")
        for s in layer.inputs:
            if s >= 0 and net.layers[s].output == "raw" and layer.on_chip:
                _fail(layer, i, f"reads layer {s}'s raw accumulators; chip layers need activation codes")
        if tuple(net.producer_shape(layer.inputs[0])) != tuple(layer.in_shape):
            _fail(
                layer,
                i,
                f"in_shape {layer.in_shape} != producer's output {net.producer_shape(layer.inputs[0])}",
            )
        _CHECKS[layer.op](net, i, layer)


def _check_output(net: Network, i: int, layer: Layer) -> None:
    p = net.profile
    if layer.output not in OUTPUT_MODES:
        _fail(layer, i, f"output must be one of {OUTPUT_MODES}, found {layer.output!r}")
    want = 32 if layer.output == "raw" else p.activation_bits
    if layer.act_bits != want:
        _fail(layer, i, f"act_bits must be {want} for output {layer.output!r}, found {layer.act_bits}")
    if not p.shift_min <= layer.shift <= p.shift_max:
        _fail(layer, i, f"shift {layer.shift} outside the profile's {p.shift_min}..{p.shift_max}")
    if max(layer.out_shape[:2]) > p.max_feature_size:
        _fail(layer, i, f"feature size {layer.out_shape[:2]} exceeds {p.max_feature_size}")
    if not p.channels_min <= layer.out_shape[2] <= p.channels_max:
        _fail(layer, i, f"{layer.out_shape[2]} channels outside {p.channels_min}..{p.channels_max}")


def _check_conv(net: Network, i: int, layer: Layer) -> None:
    p = net.profile
    h, w, c = layer.in_shape
    k, s, g = layer.kernel, layer.stride, layer.groups
    o = layer.out_shape[2]
    if k not in p.kernels or s not in p.strides:
        _fail(layer, i, f"kernel {k} / stride {s} not in the profile's {p.kernels} / {p.strides}")
    if len(layer.pad) != 4 or not all(0 <= v <= min(p.max_pad, k - 1) for v in layer.pad):
        _fail(layer, i, f"padding {layer.pad} must be 4 values in 0..{min(p.max_pad, k - 1)}")
    if g < 1 or c % g or o % g:
        _fail(layer, i, f"groups {g} must divide input channels {c} and output channels {o}")
    if g > 1 and not (p.groups == "any" or (p.groups == "depthwise" and g == c == o)):
        _fail(layer, i, f"groups={g} not supported by profile {p.id!r} (supports {p.groups})")
    ho = conv_out_size(h, k, s, layer.pad[0], layer.pad[2])
    wo = conv_out_size(w, k, s, layer.pad[1], layer.pad[3])
    if (ho, wo) != tuple(layer.out_shape[:2]) or ho < 1 or wo < 1:
        _fail(layer, i, f"out_shape {layer.out_shape} inconsistent with the conv (expected {(ho, wo, o)})")
    mode = p.mode(layer.weight_bits)
    _check_array(layer, i, "codes", layer.codes, (o, c // g, k, k), np.int8)
    if layer.codes.size and (layer.codes.min() < mode.min or layer.codes.max() > mode.max):
        _fail(layer, i, f"weight codes outside the {mode.bits}-bit range {mode.min}..{mode.max}")
    if mode.decode == "binary" and np.any(layer.codes == 0):
        _fail(layer, i, "binary weight codes must be -1 or +1")
    wmax = mode.max_level
    if p.weight_scale == "per_kernel":
        _check_array(layer, i, "scalars", layer.scalars, (o, c // g), np.int16)
        smax = int(np.abs(layer.scalars).max()) if layer.scalars.size else 0
        if layer.scalars.size and layer.scalars.min() < 0 or smax >= 1 << (p.scalar_bits - 1):
            _fail(layer, i, f"scalars must be 0..{(1 << (p.scalar_bits - 1)) - 1}")
        wmax *= smax
    elif layer.scalars is not None:
        _fail(layer, i, "per-layer profiles take no per-kernel scalars")
    if wmax > p.weight_int_max:
        _fail(layer, i, f"largest integer weight {wmax} exceeds the chip's {p.weight_int_max}")
    _check_array(layer, i, "bias", layer.bias, (o,), np.int32)
    bmax = int(np.abs(layer.bias.astype(np.int64)).max()) if o else 0
    if bmax >= 1 << (p.bias_bits - 1):
        _fail(layer, i, f"bias magnitude {bmax} needs more than the profile's {p.bias_bits} bits")
    worst = (c // g) * k * k * net.input_max(i) * wmax + bmax
    if worst >= 1 << (p.accumulator_bits - 1):
        _fail(layer, i, f"worst-case accumulator {worst} overflows {p.accumulator_bits} bits")
    _check_output(net, i, layer)


def _check_maxpool(net: Network, i: int, layer: Layer) -> None:
    h, w, c = layer.in_shape
    if (layer.kernel, layer.stride) != (2, 2) or layer.out_shape != (h // 2, w // 2, c) or h < 2 or w < 2:
        _fail(
            layer,
            i,
            f"maxpool is 2x2/2 from {layer.in_shape} to {(h // 2, w // 2, c)}, found {layer.out_shape}",
        )
    if layer.output != "act" or layer.act_bits != net.input_bits(i):
        _fail(layer, i, "maxpool keeps its input's activation codes")


def _check_add(net: Network, i: int, layer: Layer) -> None:
    p = net.profile
    other = net.producer_shape(layer.inputs[1])
    if tuple(other) != tuple(layer.in_shape) or tuple(layer.out_shape) != tuple(layer.in_shape):
        _fail(layer, i, f"add needs equal shapes, found {layer.in_shape}, {other} -> {layer.out_shape}")
    lim = 1 << (p.multiplier_bits - 1)
    if len(layer.mults) != 2 or not all(-lim <= m < lim for m in layer.mults):
        _fail(layer, i, f"multipliers {layer.mults} must fit {p.multiplier_bits} signed bits")
    _check_output(net, i, layer)


def _check_host(net: Network, i: int, layer: Layer) -> None:
    if layer.op == "dense":
        k = int(np.prod(layer.in_shape))
        n = layer.out_shape[2]
        _check_array(layer, i, "dense_w", layer.dense_w, (n, k), np.float32)
        _check_array(layer, i, "dense_b", layer.dense_b, (n,), np.float32)
        if layer.out_shape != (1, 1, n):
            _fail(layer, i, f"dense output must be (1, 1, N), found {layer.out_shape}")
    elif layer.op == "gap" and layer.out_shape != (1, 1, layer.in_shape[2]):
        _fail(layer, i, f"gap output must be (1, 1, C), found {layer.out_shape}")
    elif layer.op == "softmax" and layer.out_shape != layer.in_shape:
        _fail(layer, i, "softmax keeps its input shape")


def _check_array(layer: Layer, i: int, name: str, arr: Any, shape: tuple, dtype: type) -> None:
    if not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.shape != tuple(shape):
        found = (
            "None"
            if arr is None
            else f"{getattr(arr, 'dtype', type(arr).__name__)} {getattr(arr, 'shape', '')}"
        )
        _fail(layer, i, f"{name} must be {np.dtype(dtype).name} {tuple(shape)}, found {found}")


_CHECKS = {
    "conv": _check_conv,
    "maxpool": _check_maxpool,
    "add": _check_add,
    "gap": _check_host,
    "dense": _check_host,
    "softmax": _check_host,
}
