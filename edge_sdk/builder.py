"""Build integer networks in code: random-but-valid chip networks for tests, benchmarks and samples.

    b = NetworkBuilder("lightspeeur-2803", (32, 32, 3), seed=0)
    x = b.conv(16, bits=2)
    x = b.maxpool()
    b.conv(32, bits=5, output="raw")
    b.gap(); b.dense(10); b.softmax()
    net = b.build()          # validated, with a tiling schedule

Weights are drawn from the layer's weight mode; shifts are chosen so activations
spread over the code range instead of saturating (realistic for timing and
bit-exactness tests).  Padding "same" follows the chip convention: 3x3 stride 1
pads 1 on every side, 3x3 stride 2 pads the top and left by 1 (docs/datasheet.md).
"""

from __future__ import annotations

import math
from typing import Optional, Union

import numpy as np

from .chips import ChipProfile, load_profile
from .network import Layer, Network, conv_out_size
from .tiling import compute_schedule

Pad = Union[str, tuple[int, int, int, int]]


def same_pad(kernel: int, stride: int) -> tuple[int, int, int, int]:
    if kernel == 1:
        return (0, 0, 0, 0)
    return (1, 1, 1, 1) if stride == 1 else (1, 1, 0, 0)


class NetworkBuilder:
    def __init__(
        self,
        profile: Union[str, ChipProfile],
        input_shape: tuple[int, int, int],
        *,
        seed: int = 0,
        name: str = "network",
    ) -> None:
        self.profile = load_profile(profile)
        self.input_shape = tuple(int(v) for v in input_shape)
        self.rng = np.random.default_rng(seed)
        self.layers: list[Layer] = []
        self.name = name

    # helpers ---------------------------------------------------------------
    def _src(self, src: Optional[int]) -> int:
        return len(self.layers) - 1 if src is None else src

    def _shape(self, src: int) -> tuple[int, int, int]:
        return self.input_shape if src < 0 else self.layers[src].out_shape

    def _bits_of(self, src: int) -> int:
        if src >= 0:
            return self.layers[src].act_bits
        return self.profile.activation_bits if self.profile.input_conversion == "round_shift" else 8

    def _shift_for(self, spread: float) -> int:
        """Shift that maps an accumulator spread onto about half the activation range."""
        p = self.profile
        ideal = math.log2(max(spread, 1.0) / max(p.act_max / 2, 1.0))
        return int(np.clip(round(ideal), p.shift_min, p.shift_max))

    def _weights(
        self, o: int, i: int, k: int, bits: int, a_mag: float
    ) -> tuple[np.ndarray, Optional[np.ndarray], float]:
        p = self.profile
        mode = p.mode(bits)
        if mode.decode == "binary":
            codes = self.rng.choice(np.array([-1, 1], dtype=np.int8), size=(o, i, k, k))
        else:
            codes = self.rng.integers(mode.min, mode.max + 1, size=(o, i, k, k)).astype(np.int8)
        scalars, scale = None, 1.0
        if p.weight_scale == "per_kernel":
            # Keep the accumulator spread reachable by the largest shift, so codes do not saturate.
            reach = (
                p.act_max / 2 * 2.0**p.shift_max / (math.sqrt(i * k * k) * a_mag * max(mode.max_level, 1) / 2)
            )
            top = max(1, min(p.weight_int_max // mode.max_level, (1 << (p.scalar_bits - 1)) - 1, int(reach)))
            scalars = self.rng.integers(max(1, top // 4), top + 1, size=(o, i)).astype(np.int16)
            scale = float(scalars.mean())
        return codes, scalars, scale * max(mode.max_level, 1) / 2

    # layers ----------------------------------------------------------------
    def conv(
        self,
        out_channels: int,
        *,
        kernel: int = 3,
        stride: int = 1,
        bits: Optional[int] = None,
        groups: int = 1,
        pad: Pad = "same",
        output: str = "act",
        src: Optional[int] = None,
        shift: Optional[int] = None,
        name: Optional[str] = None,
    ) -> int:
        src = self._src(src)
        h, w, c = self._shape(src)
        bits = max(self.profile.weight_modes) if bits is None else bits
        pads = same_pad(kernel, stride) if pad == "same" else tuple(pad)
        ho = conv_out_size(h, kernel, stride, pads[0], pads[2])
        wo = conv_out_size(w, kernel, stride, pads[1], pads[3])
        fan_in = (c // groups) * kernel * kernel
        a_mag = ((1 << self._bits_of(src)) - 1) / 2
        codes, scalars, w_mag = self._weights(out_channels, c // groups, kernel, bits, a_mag)
        spread = math.sqrt(fan_in) * a_mag * w_mag
        shift = self._shift_for(spread) if shift is None else shift
        bias_lim = min((1 << (self.profile.bias_bits - 1)) - 1, int(spread) + 1)
        bias = self.rng.integers(-bias_lim // 2, bias_lim // 2 + 1, size=out_channels).astype(np.int32)
        act_bits = 32 if output == "raw" else self.profile.activation_bits
        layer = Layer(
            name or f"conv{len(self.layers)}",
            "conv",
            (src,),
            (h, w, c),
            (ho, wo, out_channels),
            kernel=kernel,
            stride=stride,
            pad=pads,
            groups=groups,
            weight_bits=bits,
            act_bits=act_bits,
            output=output,
            shift=shift,
            codes=codes,
            scalars=scalars,
            bias=bias,
            out_scale=2.0**-shift if output == "raw" else 1.0 / self.profile.act_max,
        )
        self.layers.append(layer)
        return len(self.layers) - 1

    def maxpool(self, src: Optional[int] = None, name: Optional[str] = None) -> int:
        src = self._src(src)
        h, w, c = self._shape(src)
        bits = self._bits_of(src)
        scale = self.layers[src].out_scale if src >= 0 else 1.0
        self.layers.append(
            Layer(
                name or f"pool{len(self.layers)}",
                "maxpool",
                (src,),
                (h, w, c),
                (h // 2, w // 2, c),
                kernel=2,
                stride=2,
                act_bits=bits,
                out_scale=scale,
            )
        )
        return len(self.layers) - 1

    def add(
        self,
        a: int,
        b: int,
        *,
        mults: Optional[tuple[int, int]] = None,
        shift: Optional[int] = None,
        name: Optional[str] = None,
    ) -> int:
        shape = self._shape(a)
        lim = 1 << (self.profile.multiplier_bits - 2)
        mults = mults or (int(self.rng.integers(lim // 2, lim)), int(self.rng.integers(lim // 2, lim)))
        shift = self._shift_for(self.profile.act_max * (mults[0] + mults[1]) / 2) if shift is None else shift
        self.layers.append(
            Layer(
                name or f"add{len(self.layers)}",
                "add",
                (a, b),
                shape,
                shape,
                act_bits=self.profile.activation_bits,
                shift=shift,
                mults=tuple(mults),
                out_scale=1.0 / self.profile.act_max,
            )
        )
        return len(self.layers) - 1

    def gap(self, src: Optional[int] = None) -> int:
        src = self._src(src)
        h, w, c = self._shape(src)
        self.layers.append(Layer(f"gap{len(self.layers)}", "gap", (src,), (h, w, c), (1, 1, c)))
        return len(self.layers) - 1

    def dense(
        self,
        n: int,
        src: Optional[int] = None,
        *,
        w: Optional[np.ndarray] = None,
        b: Optional[np.ndarray] = None,
    ) -> int:
        src = self._src(src)
        shape = self._shape(src)
        k = int(np.prod(shape))
        w = self.rng.normal(0, 1 / math.sqrt(k), size=(n, k)).astype(np.float32) if w is None else w
        b = np.zeros(n, np.float32) if b is None else b
        self.layers.append(
            Layer(
                f"dense{len(self.layers)}",
                "dense",
                (src,),
                shape,
                (1, 1, n),
                dense_w=np.ascontiguousarray(w, np.float32),
                dense_b=np.asarray(b, np.float32),
            )
        )
        return len(self.layers) - 1

    def softmax(self, src: Optional[int] = None) -> int:
        src = self._src(src)
        shape = self._shape(src)
        self.layers.append(Layer(f"softmax{len(self.layers)}", "softmax", (src,), shape, shape))
        return len(self.layers) - 1

    def build(self, metadata: Optional[dict] = None, *, schedule: bool = True) -> Network:
        meta = {"model_name": self.name}
        meta.update(metadata or {})
        net = Network(self.profile, self.input_shape, list(self.layers), meta)
        net.validate()
        if schedule:
            net.schedule = compute_schedule(net)
        return net


def vgg_style(
    profile: Union[str, ChipProfile],
    input_size: int,
    widths: tuple[int, ...],
    *,
    bits: int,
    seed: int = 0,
    convs_per_stage: int = 2,
    classes: int = 10,
) -> Network:
    """A VGG-style chip network: stages of 3x3 convs then a 2x2 max-pool, a raw last conv and a host head."""
    b = NetworkBuilder(profile, (input_size, input_size, 3), seed=seed, name=f"vgg{input_size}")
    for stage, width in enumerate(widths):
        for _ in range(convs_per_stage):
            b.conv(width, bits=bits)
        if stage < len(widths) - 1:
            b.maxpool()
    b.conv(widths[-1], kernel=1, bits=bits, output="raw")
    b.gap()
    b.dense(classes)
    return b.build()
