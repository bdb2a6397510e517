"""Sample networks for the firmware tests, the golden images and the fuzzer.

``golden_network(profile_id)`` builds a small network that uses every op, every
weight mode of the profile and (for lightspeeur) a host head.  Its weights come
from a pure-Python LCG with a fixed seed, not from numpy's generators, so the
golden images in tests/unit/golden/ depend on nothing but this file and the
format.  Regenerate them (only after a deliberate format change, and then update
the SHA-256 pinned in tests/unit/test_firmware_golden.py by hand) with::

    python3 -m edge_sdk.firmware.samples tests/unit/golden

``random_network(profile, seed)`` draws a random valid network with the
NetworkBuilder for round-trip tests.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..builder import NetworkBuilder
from ..chips import ChipProfile, load_profile
from ..network import Layer, Network
from ..tiling import compute_schedule

GOLDEN_PROFILES = ("lightspeeur-2803", "nqe-1mb")


class Lcg:
    """64-bit linear congruential generator (Knuth's MMIX constants), stable forever."""

    def __init__(self, seed: int) -> None:
        self.state = seed & (2**64 - 1)

    def next(self) -> int:
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        return self.state >> 33

    def ints(self, lo: int, hi: int, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """Integers lo..hi inclusive, C order."""
        n = int(np.prod(shape))
        return np.array([lo + self.next() % (hi - lo + 1) for _ in range(n)], dtype=dtype).reshape(shape)


def _conv(
    rng: Lcg,
    p: ChipProfile,
    name: str,
    src: int,
    in_shape: tuple,
    out_c: int,
    *,
    k: int = 3,
    s: int = 1,
    bits: int,
    groups: int = 1,
    shift: int = 6,
    output: str = "act",
) -> Layer:
    h, w, c = in_shape
    pad = (0, 0, 0, 0) if k == 1 else ((1, 1, 1, 1) if s == 1 else (1, 1, 0, 0))
    ho, wo = (h + pad[0] + pad[2] - k) // s + 1, (w + pad[1] + pad[3] - k) // s + 1
    mode = p.mode(bits)
    shape = (out_c, c // groups, k, k)
    if mode.decode == "binary":
        codes = (rng.ints(0, 1, shape, np.int8) * 2 - 1).astype(np.int8)
    else:
        codes = rng.ints(mode.min, mode.max, shape, np.int8)
    scalars = None
    if p.weight_scale == "per_kernel":
        top = min(p.weight_int_max // mode.max_level, (1 << (p.scalar_bits - 1)) - 1, 100)
        scalars = rng.ints(1, top, (out_c, c // groups), np.int16)
    bias = rng.ints(-500, 500, (out_c,), np.int32)
    act_bits = 32 if output == "raw" else p.activation_bits
    scale = 2.0**-shift if output == "raw" else 1.0 / p.act_max
    return Layer(
        name,
        "conv",
        (src,),
        in_shape,
        (ho, wo, out_c),
        kernel=k,
        stride=s,
        pad=pad,
        groups=groups,
        weight_bits=bits,
        act_bits=act_bits,
        output=output,
        shift=shift,
        codes=codes,
        scalars=scalars,
        bias=bias,
        out_scale=scale,
    )


def golden_network(profile_id: str = "lightspeeur-2803") -> Network:
    """The fixed network behind tests/unit/golden/<profile_id>.edgefw."""
    p = load_profile(profile_id)
    rng = Lcg(20240229 if profile_id == "lightspeeur-2803" else 19700101)
    layers = _golden_chip_layers(rng, p)
    meta = _golden_metadata(profile_id)
    if profile_id == "lightspeeur-2803":  # the nqe golden image stays chip-only (no HAS_HOST flag)
        layers += _golden_host_head(rng)
        meta["labels"] = ["cat", "dog", "bird"]
        meta["output"] = "class probabilities"
    net = Network(p, (8, 8, 3), layers, meta)
    net.validate()
    net.schedule = compute_schedule(net)
    return net


def _golden_chip_layers(rng: Lcg, p) -> list[Layer]:
    """stem, grouped conv, 1x1, residual add, max-pool, strided depthwise, raw 1x1 head."""
    modes = sorted(p.weight_modes)  # e.g. [1, 2, 3, 5]: every mode is used once below
    layers = [_conv(rng, p, "stem", -1, (8, 8, 3), 8, bits=modes[-1], shift=9)]
    layers.append(
        _conv(rng, p, "body.a", 0, (8, 8, 8), 8, bits=modes[0], groups=2 if p.groups == "any" else 1)
    )
    layers.append(_conv(rng, p, "body.b", 1, (8, 8, 8), 8, k=1, bits=modes[1]))
    act = p.activation_bits
    layers.append(
        Layer(
            "residual",
            "add",
            (0, 2),
            (8, 8, 8),
            (8, 8, 8),
            act_bits=act,
            shift=3,
            mults=(5, 3),
            out_scale=1.0 / p.act_max,
        )
    )
    layers.append(
        Layer(
            "pool",
            "maxpool",
            (3,),
            (8, 8, 8),
            (4, 4, 8),
            kernel=2,
            stride=2,
            act_bits=act,
            out_scale=1.0 / p.act_max,
        )
    )
    layers.append(
        _conv(rng, p, "dw/s2", 4, (4, 4, 8), 8, s=2, bits=modes[2] if len(modes) > 2 else modes[0], groups=8)
    )
    layers.append(_conv(rng, p, "head", 5, (2, 2, 8), 4, k=1, bits=modes[-1], output="raw", shift=2))
    return layers


def _golden_host_head(rng: Lcg) -> list[Layer]:
    """GAP -> dense -> softmax on the host, after the chip's 2x2x4 raw output."""
    w = (rng.ints(-1000, 1000, (3, 4), np.int64) / 1000.0).astype(np.float32)
    return [
        Layer("gap", "gap", (6,), (2, 2, 4), (1, 1, 4)),
        Layer(
            "fc",
            "dense",
            (7,),
            (1, 1, 4),
            (1, 1, 3),
            dense_w=w,
            dense_b=np.array([0.5, -0.25, 0], np.float32),
        ),
        Layer("prob", "softmax", (8,), (1, 1, 3), (1, 1, 3)),
    ]


def _golden_metadata(profile_id: str) -> dict[str, Any]:
    return {
        "model_name": f"golden-{profile_id}",
        "input": {"layout": "HWC", "mean": [0.0, 0.0, 0.0], "scale": 1.0 / 255.0},
        "provenance": {
            "source_model_sha256": "0" * 64,
            "converter_version": "golden",
            "options": {"seed": 1},
        },
        "blob": b"\x00\x01\xfe\xff",
    }


def _random_metadata(rng: np.random.Generator, depth: int = 0) -> Any:
    kind = int(rng.integers(0, 8 if depth < 3 else 6))
    if kind == 0:
        return int(rng.integers(-(2**40), 2**40))
    if kind == 1:
        return float(rng.normal())
    if kind == 2:
        return "".join(chr(int(c)) for c in rng.integers(32, 0x2FF, size=int(rng.integers(0, 8))))
    if kind == 3:
        return bytes(rng.integers(0, 256, size=int(rng.integers(0, 8)), dtype=np.uint8))
    if kind == 4:
        return [None, True, False][int(rng.integers(0, 3))]
    if kind == 5:
        return int(rng.integers(0, 2**63))
    if kind == 6:
        return [_random_metadata(rng, depth + 1) for _ in range(int(rng.integers(0, 4)))]
    return {
        f"k{int(rng.integers(0, 100))}": _random_metadata(rng, depth + 1)
        for _ in range(int(rng.integers(0, 4)))
    }


def random_metadata(seed: int) -> dict[str, Any]:
    """A random nested metadata map (lists, maps, strings, bytes, numbers, booleans, None)."""
    rng = np.random.default_rng(seed)
    meta = {f"key{i}": _random_metadata(rng) for i in range(int(rng.integers(1, 6)))}
    meta["labels"] = [f"class {i}" for i in range(3)]
    meta["provenance"] = {
        "source_model_sha256": "ab" * 32,
        "converter_version": "0.1.0",
        "options": {"bits": [1, 2], "nested": {"x": None}},
    }
    return meta


def random_network(profile: str, seed: int, *, host_head: Optional[bool] = None) -> Network:
    """A random valid network on ``profile``: conv in every weight mode, add, maxpool, optional host head."""
    rng = np.random.default_rng(seed)
    p = load_profile(profile)
    size = int(rng.choice([8, 12, 16]))
    b = NetworkBuilder(p, (size, size, int(rng.choice([1, 3]))), seed=seed, name=f"random-{seed}")
    width = int(rng.choice([4, 8, 16]))
    modes = list(p.weight_modes)
    rng.shuffle(modes)
    x = b.conv(width, bits=int(modes[0]))
    for bits in modes[1:] + [int(rng.choice(list(p.weight_modes)))]:
        kind = int(rng.integers(0, 4))
        if kind == 0 and b.layers[x].out_shape[0] >= 4:
            x = b.maxpool()
        if kind == 1:
            y = b.conv(width, bits=int(bits), kernel=1)
            x = b.add(x, y)
            continue
        groups = width if kind == 2 else (int(rng.choice([1, 2, 4])) if p.groups == "any" else 1)
        stride = int(rng.choice([1, 2])) if b.layers[x].out_shape[0] >= 4 else 1
        x = b.conv(width, bits=int(bits), groups=groups, stride=stride)
    raw = bool(rng.integers(0, 2))
    b.conv(width, kernel=1, bits=int(rng.choice(list(p.weight_modes))), output="raw" if raw else "act")
    if host_head if host_head is not None else bool(rng.integers(0, 2)):
        b.gap()
        b.dense(int(rng.integers(2, 6)))
        b.softmax()
    return b.build(random_metadata(seed))


def main(argv: Optional[list[str]] = None) -> int:
    """Write the golden images into a directory (default tests/unit/golden)."""
    from .writer import write_firmware

    out = Path((argv if argv is not None else sys.argv[1:] or ["tests/unit/golden"])[0])
    out.mkdir(parents=True, exist_ok=True)
    for pid in GOLDEN_PROFILES:
        (out / f"{pid}.edgefw").write_bytes(write_firmware(golden_network(pid)))
        print(out / f"{pid}.edgefw")
    return 0


if __name__ == "__main__":
    sys.exit(main())
