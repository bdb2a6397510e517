"""Random valid chip networks for the emulator tests (hypothesis strategies).

A network is drawn as a *recipe* (profile id, input shape, builder calls, seed) so the
same network can be rebuilt for another profile variant, e.g. one whose SRAM is
shrunk so every layer splits into many bands and channel groups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from hypothesis import strategies as st

from edge_sdk.builder import NetworkBuilder, same_pad
from edge_sdk.chips import ChipProfile, load_profile
from edge_sdk.network import Network, conv_out_size
from edge_sdk.tiling import layer_tiles, tile_act_bits, weight_bits

PROFILES = ("lightspeeur-2803", "nqe-1mb")


@dataclass
class Recipe:
    profile: str
    input_shape: tuple[int, int, int]
    seed: int
    calls: list[tuple[str, dict]] = field(default_factory=list)

    def build(self, profile: Optional[ChipProfile] = None) -> Network:
        b = NetworkBuilder(
            profile or load_profile(self.profile), self.input_shape, seed=self.seed, name="rand"
        )
        for method, kwargs in self.calls:
            getattr(b, method)(**kwargs)
        return b.build()


def _divisors(n: int) -> list[int]:
    return [d for d in range(2, n + 1) if n % d == 0]


def _pads_ok(h: int, w: int, k: int, s: int, pad: tuple[int, int, int, int]) -> bool:
    return conv_out_size(h, k, s, pad[0], pad[2]) >= 1 and conv_out_size(w, k, s, pad[1], pad[3]) >= 1


@st.composite
def conv_args(
    draw,
    p: ChipProfile,
    shape: tuple[int, int, int],
    *,
    keep_shape: bool = False,
    output: str = "act",
    max_channels: int = 12,
) -> dict:
    """Builder kwargs of a random valid conv reading ``shape`` (same output shape if ``keep_shape``)."""
    h, w, c = shape
    k = draw(st.sampled_from(p.kernels))
    s = 1 if keep_shape else draw(st.sampled_from(p.strides))
    if keep_shape:
        pad = same_pad(k, 1)
    elif k == 1:
        pad = (0, 0, 0, 0)
    else:
        lim = min(p.max_pad, k - 1)
        pad = draw(st.one_of(st.just(same_pad(k, s)), st.tuples(*[st.integers(0, lim)] * 4)))
        if not _pads_ok(h, w, k, s, pad):
            pad = (lim,) * 4
    kinds = ["dense"]
    if p.groups in ("depthwise", "any") and c > 1:
        kinds.append("depthwise")
    if p.groups == "any" and c > 1:
        kinds.append("grouped")
    kind = draw(st.sampled_from(kinds))
    if kind == "depthwise":
        groups, o = c, c
    elif kind == "grouped":
        groups = draw(st.sampled_from(_divisors(c)))
        o = c if keep_shape else groups * draw(st.integers(1, max(1, max_channels // groups)))
    else:
        groups = 1
        o = c if keep_shape else draw(st.integers(1, max_channels))
    bits = draw(st.sampled_from(sorted(p.weight_modes)))
    shift = draw(
        st.one_of(
            st.none(),
            st.none(),
            st.sampled_from([p.shift_min, p.shift_max]),
            st.integers(p.shift_min, p.shift_max),
        )
    )
    return {
        "out_channels": o,
        "kernel": k,
        "stride": s,
        "pad": pad,
        "groups": groups,
        "bits": bits,
        "shift": shift,
        "output": output,
    }


@st.composite
def recipes(
    draw, profile: Optional[str] = None, max_ops: int = 5, max_size: int = 11, max_channels: int = 12
) -> Recipe:
    """A random valid network: conv / maxpool / add (two producers), optional raw last conv and host head."""
    pid = profile or draw(st.sampled_from(PROFILES))
    p = load_profile(pid)
    shape = (
        draw(st.integers(1, max_size)),
        draw(st.integers(1, max_size)),
        draw(st.sampled_from(p.input_channels)),
    )
    r = Recipe(pid, shape, draw(st.integers(0, 2**31 - 1)))
    probe = NetworkBuilder(p, shape, seed=0)

    def call(method: str, **kwargs) -> int:
        r.calls.append((method, kwargs))
        return getattr(probe, method)(**kwargs)

    cur = -1
    for _ in range(draw(st.integers(1, max_ops))):
        h, w, c = probe._shape(cur)
        ops = ["conv", "conv", "add"] + (["maxpool"] if min(h, w) >= 2 else [])
        op = draw(st.sampled_from(ops))
        if op == "conv":
            cur = call("conv", src=cur, **draw(conv_args(p, (h, w, c), max_channels=max_channels)))
        elif op == "maxpool":
            cur = call("maxpool", src=cur)
        else:
            branch = call("conv", src=cur, **draw(conv_args(p, (h, w, c), keep_shape=True)))
            lim = 1 << (p.multiplier_bits - 1)
            mults = draw(
                st.one_of(st.none(), st.tuples(st.integers(-lim, lim - 1), st.integers(-lim, lim - 1)))
            )
            shift = draw(st.one_of(st.none(), st.integers(p.shift_min, p.shift_max)))
            a, b = (cur, branch) if draw(st.booleans()) else (branch, cur)
            cur = call("add", a=a, b=b, mults=mults, shift=shift)
    if draw(st.booleans()):
        h, w, c = probe._shape(cur)
        cur = call("conv", src=cur, **draw(conv_args(p, (h, w, c), output="raw", max_channels=max_channels)))
    head = draw(st.sampled_from(["none", "gap", "gap_dense", "dense_softmax"]))
    if head != "none":
        if head.startswith("gap"):
            call("gap", src=cur)
        if "dense" in head:
            call("dense", n=draw(st.integers(1, 5)))
        if head.endswith("softmax"):
            call("softmax")
    return r


def frames(shape: tuple[int, int, int], count: int = 1):
    """uint8 frames: uniform noise, all zeros, all 255 (saturating), as a strategy."""
    size = int(np.prod(shape)) * count
    return st.one_of(
        st.integers(0, 2**32 - 1).map(
            lambda s: np.random.default_rng(s).integers(0, 256, size, dtype=np.uint8)
        ),
        st.sampled_from([0, 255]).map(lambda v: np.full(size, v, dtype=np.uint8)),
    ).map(lambda a: a.reshape((count, *shape)) if count > 1 else a.reshape(shape))


def min_sram(net: Network) -> tuple[int, int]:
    """The smallest (activation, weight) SRAM bytes that still schedule every layer (one row, smallest group)."""
    act, wts = 1, 1
    for i, layer in enumerate(net.layers):
        if not layer.on_chip:
            continue
        co = layer.out_shape[2]
        step = co // layer.groups if layer.op == "conv" and layer.groups > 1 else 1
        act = max(act, max(tile_act_bits(net, i, t) for t in layer_tiles(net, i, 1, step)))
        wts = max(wts, weight_bits(net, layer, step))
    return math.ceil(act / 8), math.ceil(wts / 8)
