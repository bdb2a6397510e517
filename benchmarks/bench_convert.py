"""Converted ResNet-8 on the emulator vs the original .tflite on LiteRT: ms/image, one thread, same run.

    python -m benchmarks.bench_convert [--quick] [--json OUT] [--frames N] [--data DIR] [--image PATH] [--isas all]

The emulator runs the converted 5-bit lightspeeur-2803 ResNet-8 firmware image
(firmware_images/resnet8_cifar10_lightspeeur_5bit.edgefw; converted on the fly if
missing) through ``Device.run`` one frame at a time; LiteRT runs the MLPerf-Tiny
float32 and int8 ``.tflite`` with ``num_threads=1`` (XNNPACK), one frame per
invoke (set_tensor + invoke + get_tensor).  Same frames (pixel-exact CIFAR-10
test images), same process, interleaved per frame so load changes hit all three
alike.  Every figure is the median over the timed frames; "ratio" is
emulator ms / LiteRT ms.  Top-1 agreement on the timed frames is printed as a
sanity check.  ``--isas`` adds a row per forced kernel variant (portable C, AVX2, ...),
e.g. to see what a machine without AVX-512 or an aarch64 build (the portable C) gets.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
IMAGE = REPO / "firmware_images" / "resnet8_cifar10_lightspeeur_5bit.edgefw"


def _litert(path: Path):
    from edge_sdk.convert.importer import import_tflite
    from edge_sdk.litert import make_interpreter

    model = import_tflite(path)
    interp = make_interpreter(model.source, num_threads=1)
    inp, out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]

    def run(frame: np.ndarray) -> np.ndarray:
        interp.set_tensor(inp, model.litert_input(frame[None]))
        interp.invoke()
        return interp.get_tensor(out)[0]

    return run


def _device(image: Path, data: Path, isa: str = "auto"):
    from edge_sdk.convert.inputpad import prepare_frames
    from edge_sdk.firmware import load_firmware
    from edge_sdk.runtime import Device

    if not image.exists():
        from edge_sdk.convert import convert

        calib = np.load(data / "cifar10" / "cifar10_train_20k.npz")["x_jpeg"][:1000]
        image.write_bytes(
            convert(
                data / "models" / "mlperf_tiny" / "pretrainedResnet.tflite",
                profile="lightspeeur-2803",
                calib=calib,
                bits=5,
            )
        )
    fw = load_firmware(image.read_bytes())
    if isa == "auto":
        dev = Device("auto").load(fw)
    else:
        from edge_sdk.runtime.emulator import EmulatorBackend

        dev = Device(EmulatorBackend(isa)).load(fw)
    return (lambda frame: dev.run(prepare_frames(fw.metadata, frame)).output), dev.backend.name


def _variants(names: list[str]) -> list[str]:
    """Kernel variants to time besides the default backend ('all' expands to every one this CPU runs)."""
    from edge_sdk.runtime.emulator import available_isas

    if "all" in names:
        return available_isas()
    unknown = [n for n in names if n not in available_isas()]
    if unknown:
        raise SystemExit(f"--isas: {unknown} not available here (available: {available_isas()})")
    return list(names)


def _time(fn, frame) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    out = fn(frame)
    return (time.perf_counter() - t0) * 1e3, out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_convert",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--quick", action="store_true", help="30 frames instead of 300")
    ap.add_argument("--frames", type=int)
    ap.add_argument("--data", default=os.environ.get("EDGE_SDK_DATA", str(REPO.parent / "shared" / "data")))
    ap.add_argument("--image", default=str(IMAGE))
    ap.add_argument("--json", metavar="OUT")
    ap.add_argument(
        "--isas",
        nargs="*",
        default=[],
        metavar="ISA",
        help="also time these emulator kernel variants (e.g. default avx2; 'all': every variant this CPU runs)",
    )
    args = ap.parse_args(argv)
    data = Path(args.data)
    n = args.frames or (30 if args.quick else 300)
    x = np.load(data / "cifar10" / "cifar10_test.npz")["x_exact"][:n]
    models = data / "models" / "mlperf_tiny"
    chip, backend = _device(Path(args.image), data)
    runners = {
        "emulator": chip,
        "litert_float": _litert(models / "pretrainedResnet.tflite"),
        "litert_int8": _litert(models / "pretrainedResnet_quant.tflite"),
    }
    for isa in _variants(args.isas):
        runners[f"emulator[{isa}]"] = _device(Path(args.image), data, isa)[0]
    for fn in runners.values():  # warm up (allocation, XNNPACK packing, page faults)
        for frame in x[:5]:
            fn(frame)
    times: dict[str, list[float]] = {k: [] for k in runners}
    top1: dict[str, list[int]] = {k: [] for k in runners}
    for frame in x:
        for name, fn in runners.items():
            ms, out = _time(fn, frame)
            times[name].append(ms)
            top1[name].append(int(np.argmax(out)))
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "frames": n,
        "backend": backend,
        "threads": 1,
        "ms_per_image": {k: round(v, 4) for k, v in med.items()},
        "ratio_emulator_vs_litert_float": round(med["emulator"] / med["litert_float"], 3),
        "ratio_emulator_vs_litert_int8": round(med["emulator"] / med["litert_int8"], 3),
        "top1_agreement_vs_float": float(
            np.mean(np.array(top1["emulator"]) == np.array(top1["litert_float"]))
        ),
    }
    print(f"ResNet-8 (32x32x3), {n} frames, 1 thread, medians (chip backend: {backend})")
    for k, v in med.items():
        print(f"  {k:20s} {v:8.3f} ms/image")
    print(
        f"  emulator / LiteRT float = {result['ratio_emulator_vs_litert_float']:.2f}x, "
        f"emulator / LiteRT int8 = {result['ratio_emulator_vs_litert_int8']:.2f}x, "
        f"top-1 agreement with float {100 * result['top1_agreement_vs_float']:.1f} %"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
