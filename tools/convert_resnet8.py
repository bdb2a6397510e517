"""Convert the MLPerf-Tiny ResNet-8 (float .tflite) to a 5-bit lightspeeur-2803 image, measure it, write a model card.

    python tools/convert_resnet8.py [--data ../shared/data] [--out firmware_images] [--calib-count 1000]

Calibration: the first N CIFAR-10 *training* images (JPEG copies, ``x_jpeg``); never the test set.
Accuracy: the 1,000 pixel-exact test images, run through the written firmware image on the
Device (emulator when built) and, for comparison, the float and int8 .tflite files on LiteRT.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge_sdk.convert import convert_detailed  # noqa: E402
from edge_sdk.convert.importer import import_tflite, run_litert  # noqa: E402
from edge_sdk.convert.inputpad import prepare_frames  # noqa: E402
from edge_sdk.firmware import load_firmware, write_firmware  # noqa: E402
from edge_sdk.runtime import Device  # noqa: E402

NAME = "resnet8_cifar10_lightspeeur_5bit"


def evaluate(image_bytes: bytes, x: np.ndarray, backend: str) -> tuple[np.ndarray, str]:
    image = load_firmware(image_bytes)
    dev = Device(backend).load(image)
    return dev.run(prepare_frames(image.metadata, x)).output.argmax(axis=1), dev.backend.name


def card(args, res, data: bytes, acc: dict, backend: str, seconds: float) -> str:
    rows = [r for r in res.report.layers]
    chip = [r for r in rows if r.target == "chip"]
    chip_bits = int(round(sum(r.total_bytes for r in chip) * 8))
    lines = [
        f"# {NAME} (lightspeeur-2803)",
        "",
        f"Firmware image `{NAME}.edgefw` ({len(data):,} bytes, SHA-256 `{hashlib.sha256(data).hexdigest()}`), "
        "converted post-training (no QAT) from the MLPerf-Tiny ResNet-8 float `.tflite` "
        "(`models/mlperf_tiny/pretrainedResnet.tflite`, mlcommons/tiny, Apache-2.0) by `edge_sdk.convert`.",
        "",
        "## Figures",
        "",
        f"- **Top-1 on the chip: {100 * acc['chip']:.1f} %** on the 1,000 pixel-exact CIFAR-10 test images "
        f"(`x_exact`, labels `y[idx_exact]`), this image run on the `{backend}` backend.",
        f"- Float `.tflite` on LiteRT, same images: {100 * acc['float']:.1f} %; int8 `.tflite`: "
        f"{100 * acc['int8']:.1f} %. Top-1 agreement chip vs float: {100 * acc['agree']:.1f} %. "
        "(1,000 images: one standard error of an accuracy is about 1 point; the agreement is the steadier "
        "figure.)",
        f"- Weights: 5-bit codes with one 12-bit scalar per 3x3 kernel; activations 5-bit. Chip weights and "
        f"constants (codes + scalars + biases, bits x count): {chip_bits:,} bits = {chip_bits // 8:,} bytes.",
        "- Residual adds are folded into convolutions (the shortcut travels as extra channels of the conv before "
        "the add), so the chip runs 7 conv layers and no add layer; GAP + dense + softmax run on the host.",
        f"- Conversion time: {seconds:.0f} s on a shared 2-core CPU.",
        "",
        "## Data",
        "",
        f"Calibration and layer-wise reconstruction: the first {args.calib_count} CIFAR-10 training images as "
        "JPEG copies (`cifar10_train_20k.npz: x_jpeg`). The test set is never used for conversion.",
        "",
        "## Reproduce",
        "",
        "```",
        f"python tools/convert_resnet8.py --calib-count {args.calib_count}",
        "# or, with the CLI:",
        "edge-sdk convert pretrainedResnet.tflite -p lightspeeur-2803 -o resnet8.edgefw --bits 5 \\",
        f"    --calib cifar10_train_20k.npz:x_jpeg --calib-limit {args.calib_count}",
        "edge-sdk verify resnet8.edgefw --reference pretrainedResnet.tflite --data test_exact.npz"
        "   # x = x_exact, y = y[idx_exact]",
        "```",
        "",
        "## Layers",
        "",
        "| # | layer | op | where | bits | weights | bytes | SQNR dB (calibration images) | from |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        sq = "-" if r.sqnr_db is None else f"{r.sqnr_db:.1f}"
        lines.append(
            f"| {r.index} | {r.name} | {r.op} | {r.target} | {r.weight_bits or '-'} | {r.weight_count} | "
            f"{r.total_bytes:.0f} | {sq} | {', '.join(r.source_ops)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--out", default=str(REPO / "firmware_images"))
    ap.add_argument("--calib-count", type=int, default=1000)
    ap.add_argument("--backend", default="auto")
    args = ap.parse_args(argv)
    data_dir = Path(args.data)
    models = data_dir / "models" / "mlperf_tiny"
    calib = np.load(data_dir / "cifar10" / "cifar10_train_20k.npz")["x_jpeg"][: args.calib_count]
    test = np.load(data_dir / "cifar10" / "cifar10_test.npz")
    x, y = test["x_exact"], test["y"][test["idx_exact"]].astype(np.int64)
    labels = [str(c) for c in test["class_names"]]
    t0 = time.time()
    res = convert_detailed(
        models / "pretrainedResnet.tflite",
        profile="lightspeeur-2803",
        calib=calib,
        bits=5,
        labels=labels,
        name="resnet8_cifar10",
        progress=True,
    )
    seconds = time.time() - t0
    data = write_firmware(res.network)
    chip, backend = evaluate(data, x, args.backend)
    float_top1 = run_litert(res.imported, x).argmax(1)
    int8_top1 = run_litert(import_tflite(models / "pretrainedResnet_quant.tflite"), x).argmax(1)
    acc = {
        "chip": (chip == y).mean(),
        "float": (float_top1 == y).mean(),
        "int8": (int8_top1 == y).mean(),
        "agree": (chip == float_top1).mean(),
    }
    out = Path(args.out)
    (out / f"{NAME}.edgefw").write_bytes(data)
    (out / f"{NAME}.md").write_text(card(args, res, data, acc, backend, seconds))
    print(res.report.table())
    print({k: round(float(v), 4) for k, v in acc.items()}, f"backend={backend}", f"{len(data)} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
