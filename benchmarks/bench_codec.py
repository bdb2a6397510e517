"""Codec benchmark: arithmetic-coder throughput (Cython vs reference) and per-frame encode/decode time.

    python -m benchmarks.bench_codec [--quick] [--repeat N] [--json OUT] [--image PATH]

Throughput is in MB/s of *input bits* (bits / 8 / second) on two inputs: fair coin
bits (no compression possible: the coder's worst case) and a real latent map (the
baseline's 6-bit latents of a 768x512 frame, which compress).  Frame figures are
for the non-learned baseline at the ~0.25 bpp rung (f=8, 6 bits, per-patch records):
the whole decode (bitstream parse, 384 per-patch arithmetic decodes, bilinear
upsampling), and the entropy-decode part alone.  Best of ``--repeat`` runs.  The learned codec
(``ours-nqe``, 16 channels = 0.25 bpp raw; chip encoder on the emulator, numpy decoders) and JPEG at
the same bytes: medians of at least 3 runs, same frame, same run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np

from edge_sdk.codec import arith, baseline, bitstream
from edge_sdk.codec.bitplanes import latent_planes
from edge_sdk.codec.patches import split, tile_map


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _frame(path: Optional[str]) -> tuple:
    """A 768x512 RGB frame: --image, else Kodak kodim23 from $EDGE_SDK_DATA, else a synthetic scene."""
    candidates = [path] if path else []
    root = Path(
        os.environ.get("EDGE_SDK_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data")
    )
    candidates.append(str(root / "kodak" / "kodim23.png"))
    for c in candidates:
        if c and Path(c).is_file():
            from PIL import Image

            with Image.open(c) as img:
                return np.asarray(img.convert("RGB")), Path(c).name
    y, x = np.mgrid[0:512, 0:768].astype(np.float64)
    scene = np.stack(
        [128 + 90 * np.sin(x / 23) * np.cos(y / 31), 128 + 80 * np.cos((x + y) / 41), 60 + x / 4], -1
    )
    return np.clip(scene, 0, 255).astype(np.uint8), "synthetic 768x512"


def coder_rows(frame: np.ndarray, repeat: int) -> list:
    enc = baseline.BaselineEncoder(factor=8, bits=6)
    tiles, grid = split(frame, 32)
    inputs = {
        "latent map (18x64x96)": (latent_planes(tile_map(enc.encode_patches(tiles), grid), 6), 6),
        "coin flips (8x256x256)": (
            (np.random.default_rng(0).random((8, 256, 256)) < 0.5).astype(np.uint8),
            8,
        ),
    }
    backends = ["cython"] * arith.AVAILABLE + ["reference"]
    rows = []
    for label, (planes, group) in inputs.items():
        for backend in backends:
            rows.append(_coder_row(label, planes, group, backend, repeat))
    return rows


def _coder_row(label: str, planes: np.ndarray, group: int, backend: str, repeat: int) -> dict:
    """Throughput of one backend on one input (the pure-Python reference on a slice, once)."""
    if backend == "reference":
        planes, repeat = planes[: max(group, 2 * group * (planes.shape[0] // 16))], 1
    data = arith.encode_planes(planes, group, backend)
    t_enc = _best(lambda: arith.encode_planes(planes, group, backend), repeat)
    t_dec = _best(lambda: arith.decode_planes(data, planes.shape, group, backend), repeat)
    n_bits = int(planes.size)
    return {
        "input": label,
        "backend": backend,
        "bits": n_bits,
        "bytes_out": len(data),
        "encode_MBps": n_bits / 8 / t_enc / 1e6,
        "decode_MBps": n_bits / 8 / t_dec / 1e6,
    }


def frame_rows(frame: np.ndarray, repeat: int) -> dict:
    codec = baseline.BaselineFamily("full").at(5)  # f=8, 6 bits
    data = codec.encode(frame)
    return {
        "setting": codec.name,
        "bpp": len(data) * 8 / (frame.shape[0] * frame.shape[1]),
        "encode_ms": 1000 * _best(lambda: codec.encode(frame), repeat),
        "decode_ms": 1000 * _best(lambda: codec.decode(data), repeat),
        "entropy_decode_ms": 1000 * _best(lambda: bitstream.decode_latents(data), repeat),
        "backend": arith.resolve_backend(),
    }


def learned_rows(frame: np.ndarray, repeat: int) -> list:
    """The learned codec at 0.25 bpp (16 latent channels): chip encoder (emulator) and numpy decoders,
    with JPEG (Pillow) at the same bytes in the same run as the peer.  Medians of ``repeat`` runs."""
    from edge_sdk.codec import learned
    from edge_sdk.codec.evaluate import match_rate
    from edge_sdk.codec.metrics import psnr
    from edge_sdk.codec.pillow_codecs import jpeg_family
    from edge_sdk.errors import FirmwareError

    try:
        codecs = [learned.learned_codec(16, dec) for dec in ("full", "patch")]
    except FirmwareError as exc:
        print(f"learned codec skipped: {exc}")
        return []
    rows = []
    for codec in codecs:
        data = codec.encode(frame)
        bpp = len(data) * 8 / (frame.shape[0] * frame.shape[1])
        rows.append(_timed_row(codec, frame, data, repeat, psnr))
        jpeg, jdata = match_rate(jpeg_family(), frame, bpp)
    rows.append(_timed_row(jpeg, frame, jdata, repeat, psnr))
    return rows


def _timed_row(codec, frame, data, repeat: int, psnr) -> dict:
    def median_ms(fn) -> float:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return 1000 * float(np.median(times))

    return {
        "setting": codec.name,
        "bpp": len(data) * 8 / (frame.shape[0] * frame.shape[1]),
        "psnr": psnr(frame, codec.decode(data)),
        "encode_ms": median_ms(lambda: codec.encode(frame)),
        "decode_ms": median_ms(lambda: codec.decode(data)),
    }


def main(argv: Optional[list] = None) -> dict:
    """Run the benchmark, print a table, return the figures (benchmarks/run.py convention)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_codec", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="one run of each measurement")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--image", help="a 768x512 RGB image (default: Kodak kodim23, else synthetic)")
    parser.add_argument("--json", help="write the figures here")
    args, _unknown = parser.parse_known_args(argv)
    repeat = 1 if args.quick else args.repeat
    frame, source = _frame(args.image)
    coder, per_frame = coder_rows(frame, repeat), frame_rows(frame, repeat)
    print(f"arithmetic coder (MB/s of input bits), frame source: {source}")
    for r in coder:
        print(
            f"  {r['input']:24s} {r['backend']:9s} {r['bits']:>9d} bits -> {r['bytes_out']:>7d} B   "
            f"encode {r['encode_MBps']:7.2f} MB/s   decode {r['decode_MBps']:7.2f} MB/s"
        )
    f = per_frame
    print(
        f"per {frame.shape[1]}x{frame.shape[0]} frame, {f['setting']} ({f['bpp']:.3f} bpp, {f['backend']} coder): "
        f"encode {f['encode_ms']:.1f} ms, decode {f['decode_ms']:.1f} ms "
        f"(entropy decode {f['entropy_decode_ms']:.1f} ms)"
    )
    learned_figures = learned_rows(frame, max(repeat, 3))
    for r in learned_figures:
        print(
            f"  {r['setting']:26s} {r['bpp']:.3f} bpp  PSNR {r['psnr']:.2f} dB  "
            f"encode {r['encode_ms']:7.1f} ms  decode {r['decode_ms']:7.1f} ms (median)"
        )
    results = {"source": source, "coder": coder, "frame": per_frame, "learned": learned_figures}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
    sys.exit(0)
