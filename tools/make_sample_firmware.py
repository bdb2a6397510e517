"""Build the smoke-test firmware images shipped in firmware_images/ (not trained networks).

    python tools/make_sample_firmware.py            # writes firmware_images/sample_*.edgefw

Each is a small VGG-style network with fixed-seed random integer weights, built in
code by edge_sdk.builder: it exercises every chip op (conv 3x3/1x1, stride 2,
depthwise, max-pool, residual add, a raw last layer) and a host head, so the demo
and the tests can load and run a real image on both profiles.  The writer is
deterministic: running this again reproduces the files byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from edge_sdk.builder import NetworkBuilder
from edge_sdk.firmware import write_firmware

OUT = Path(__file__).resolve().parents[1] / "firmware_images"
LABELS = [f"class_{i}" for i in range(10)]


def sample_network(profile: str, size: int, seed: int):
    """The sample network for one profile (every chip op and a host head)."""
    bits = {"lightspeeur-2803": (5, 3, 2, 1), "nqe-1mb": (3, 3, 2, 1)}[profile]
    b = NetworkBuilder(profile, (size, size, 3), seed=seed, name=f"sample-{profile}")
    b.conv(16, bits=bits[0])
    b.maxpool()
    a = b.conv(32, bits=bits[1])
    c = b.conv(32, bits=bits[2])
    b.add(a, c)
    b.conv(32, groups=32, stride=2, bits=bits[2])
    b.conv(64, kernel=1, bits=bits[3])
    b.maxpool()
    b.conv(64, bits=bits[2], output="raw")
    b.gap()
    b.dense(10)
    b.softmax()
    meta = {
        "description": "smoke-test image: fixed-seed random integer weights, NOT a trained model",
        "input": {"layout": "HWC", "dtype": "uint8", "preprocessing": "RGB 0..255, resized bilinearly"},
        "output": "softmax over 10 placeholder classes (meaningless: random weights)",
        "labels": LABELS,
        "provenance": {"tool": "tools/make_sample_firmware.py", "seed": seed},
    }
    return b.build(meta)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for profile, name, size in (
        ("lightspeeur-2803", "sample_lightspeeur", 64),
        ("nqe-1mb", "sample_nqe", 32),
    ):
        data = write_firmware(sample_network(profile, size, seed=2026))
        path = args.out / f"{name}.edgefw"
        path.write_bytes(data)
        print(f"{path}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
