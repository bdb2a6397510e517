"""Runtime benchmark: ms/frame and GMAC/s of the emulator vs the numpy reference backend.

    python -m benchmarks.bench_runtime [--quick] [--json OUT] [--frames N] [--ref-frames N]

Networks: a 224x224 VGG-style lightspeeur-2803 network (2-bit weights, widths
32-64-128-256-256, two 3x3 convs per stage, a raw 1x1 conv and a host head; 2.83 GMAC)
and a 32x32 nqe-1mb encoder that fills the chip's 1 Mb weight memory (8-bit input,
grouped convs, shortcut adds; 0.09 GMAC).  Both backends run
the same frame through ``Device.run`` in the same process, one thread (the emulator's
kernels are single-threaded; "cpu ms" is the calling thread's CPU time per frame, so
cpu ~= wall means one core).  Every number is the median over the timed frames; the
emulator's output is checked bit for bit against the reference on the timed frame.
MACs = sum over conv layers of Ho*Wo*Cout*(Cin/groups)*k*k.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np

from edge_sdk.builder import NetworkBuilder, vgg_style
from edge_sdk.network import Network
from edge_sdk.runtime import emulator
from edge_sdk.runtime.device import Device
from edge_sdk.runtime.reference import ReferenceBackend

VGG_WIDTHS = (32, 64, 128, 256, 256)


def vgg224() -> Network:
    return vgg_style("lightspeeur-2803", 224, VGG_WIDTHS, bits=2, seed=0)


def nqe32() -> Network:
    """A CIFAR-scale nqe-1mb encoder that fills the chip's 1 Mb weight memory (~1.04 Mb of 2/3-bit codes).

    8-bit RGB input, a quinary stem, ternary 3x3 convs, grouped convs on shortcut branches with adds,
    max-pools, a raw 1x1 classifier conv and a host gap: 0.09 GMAC per frame.
    """
    b = NetworkBuilder("nqe-1mb", (32, 32, 3), seed=0, name="nqe32")
    b.conv(64, bits=3)  # 32x32x64, reads the 8-bit image
    b.conv(64, bits=2)
    b.maxpool()  # 16x16
    x = b.conv(128, bits=2)
    y = b.conv(128, bits=2, groups=4)
    b.add(x, y)
    b.maxpool()  # 8x8
    x = b.conv(256, bits=2)
    y = b.conv(256, bits=1, groups=8)
    b.add(x, y)
    b.conv(10, kernel=1, bits=2, output="raw")
    b.gap()
    return b.build()


def weight_bits_total(net: Network) -> int:
    return sum(layer.weight_count * layer.weight_bits for layer in net.layers if layer.op == "conv")


# name -> (builder, emulator frames, reference frames, quick emulator frames, quick reference frames)
NETWORKS: dict[str, tuple[Callable[[], Network], int, int, int, int]] = {
    "vgg224-lightspeeur-2803": (vgg224, 15, 3, 5, 1),
    "nqe32-nqe-1mb": (nqe32, 200, 30, 30, 5),
}


def count_macs(net: Network) -> int:
    total = 0
    for layer in net.layers:
        if layer.op == "conv":
            ho, wo, co = layer.out_shape
            total += ho * wo * co * (layer.in_shape[2] // layer.groups) * layer.kernel * layer.kernel
    return total


def time_frames(
    dev: Device, frame: np.ndarray, frames: int, warmup: int
) -> tuple[list[float], list[float], object]:
    """Wall and thread-CPU seconds of ``frames`` runs after ``warmup`` untimed ones; the last result."""
    result = None
    for _ in range(warmup):
        result = dev.run(frame)
    walls, cpus = [], []
    for _ in range(frames):
        w0, c0 = time.perf_counter(), time.thread_time()
        result = dev.run(frame)
        cpus.append(time.thread_time() - c0)
        walls.append(time.perf_counter() - w0)
    return walls, cpus, result


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_runtime",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", metavar="OUT")
    ap.add_argument("--frames", type=int, help="timed emulator frames per network")
    ap.add_argument("--ref-frames", type=int, help="timed reference frames per network")
    ap.add_argument("--networks", nargs="+", choices=sorted(NETWORKS), default=list(NETWORKS))
    ap.add_argument(
        "--isa",
        nargs="+",
        help="emulator kernel variants to time (default: the best one, plus the "
        "portable 'default' build in full runs)",
    )
    args, _unknown = ap.parse_known_args(argv)

    if not emulator.AVAILABLE:
        print(f"emulator not available: {emulator.IMPORT_ERROR}")
    isas = args.isa or []
    if not isas and emulator.AVAILABLE:
        best = emulator.EmulatorBackend().isa
        isas = [best] if args.quick or best == "default" else [best, "default"]

    rows = []
    rng = np.random.default_rng(0)
    for name in args.networks:
        build, n_emu, n_ref, q_emu, q_ref = NETWORKS[name]
        n_emu = args.frames or (q_emu if args.quick else n_emu)
        n_ref = args.ref_frames or (q_ref if args.quick else n_ref)
        net = build()
        macs = count_macs(net)
        frame = rng.integers(0, 256, size=net.input_shape, dtype=np.uint8)
        ref_dev = Device(ReferenceBackend()).load(net)
        walls, cpus, ref_result = time_frames(ref_dev, frame, n_ref, warmup=0)
        ref_ms, ref_cpu = statistics.median(walls) * 1e3, statistics.median(cpus) * 1e3
        rows.append(
            {
                "network": name,
                "gmac": macs / 1e9,
                "weight_bits": weight_bits_total(net),
                "backend": "reference",
                "isa": "numpy",
                "frames": n_ref,
                "ms": ref_ms,
                "cpu_ms": ref_cpu,
                "gmacs": macs / 1e9 / (ref_ms / 1e3),
                "gmacs_cpu": macs / 1e9 / (ref_cpu / 1e3),
                "speedup": 1.0,
                "speedup_cpu": 1.0,
                "exact": True,
                "min_ms": min(walls) * 1e3,
            }
        )
        for isa in isas:
            dev = Device(emulator.EmulatorBackend(isa)).load(net)
            walls, cpus, result = time_frames(dev, frame, n_emu, warmup=2)
            ms, cpu_ms = statistics.median(walls) * 1e3, statistics.median(cpus) * 1e3
            exact = bool(
                np.array_equal(result.codes, ref_result.codes)
                and np.array_equal(result.output, ref_result.output)
            )
            rows.append(
                {
                    "network": name,
                    "gmac": macs / 1e9,
                    "weight_bits": weight_bits_total(net),
                    "backend": "emulator",
                    "isa": isa,
                    "frames": n_emu,
                    "ms": ms,
                    "cpu_ms": cpu_ms,
                    "gmacs": macs / 1e9 / (ms / 1e3),
                    "gmacs_cpu": macs / 1e9 / (cpu_ms / 1e3),
                    "speedup": ref_ms / ms,
                    "speedup_cpu": ref_cpu / cpu_ms,
                    "exact": exact,
                    "min_ms": min(walls) * 1e3,
                }
            )

    header = (
        f"{'network':24s} {'GMAC':>6s} {'backend':9s} {'isa':10s} {'frames':>6s} {'ms/frame':>9s} "
        f"{'cpu ms':>8s} {'GMAC/s':>7s} {'(cpu)':>7s} {'speedup':>8s} {'(cpu)':>7s} {'exact':>5s}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['network']:24s} {r['gmac']:6.3f} {r['backend']:9s} {r['isa']:10s} {r['frames']:6d} "
            f"{r['ms']:9.2f} {r['cpu_ms']:8.2f} {r['gmacs']:7.2f} {r['gmacs_cpu']:7.2f} {r['speedup']:7.1f}x {r['speedup_cpu']:6.1f}x "
            f"{'yes' if r['exact'] else 'NO':>5s}"
        )
    print(
        "ms/frame: median wall time of Device.run; cpu ms: median CPU time of the calling thread (one core);\n"
        "GMAC/s and speedup from wall time; (cpu): the same from CPU time (robust on a loaded machine);\n"
        "exact: emulator == reference bit for bit on the timed frame."
    )
    out = {"rows": rows, "isas_available": emulator.available_isas()}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    if not all(r["exact"] for r in rows):
        raise AssertionError("emulator output differs from the reference")
    return out


if __name__ == "__main__":
    main()
