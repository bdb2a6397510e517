"""Retrieval benchmark: RNIP descriptor extraction time of one 1920x1080 frame, chip (emulator) vs float teacher.

    python -m benchmarks.bench_retrieval [--quick] [--runs N] [--json OUT] [--image PATH]

The frame: ``hires/coral_cat_1080p.jpg`` (1920x1080) from $EDGE_SDK_DATA, else --image
(resized to 1920x1080), else a synthetic 1920x1080 scene.  RNIP with the default
``RNIPConfig`` (scales 1.0 / 0.5, overlap 0.4, one rotation, 16 crops per device call):
21 crops.  Extractors:

* ``chip sample_lightspeeur``: firmware_images/sample_lightspeeur.edgefw (lightspeeur-2803,
  64x64 input, random weights: a smoke-test network, so only its time means anything), on
  the Device (``auto`` backend: the Cython emulator when built).
* ``chip descriptor 2-bit``: the shipped descriptor network
  (firmware_images/descriptor_lightspeeur_2bit.edgefw: 112x112 input, 2-bit weights, 7x7x1024
  map), the network ``retrieval-eval`` scores; on the Device (``auto`` backend).
* ``chip vgg224 (random)``: the 224x224 VGG-style lightspeeur-2803 network of
  bench_runtime (2-bit weights, 2.83 GMAC per crop, random weights), written to a firmware
  image in memory: what a 224-class chip input costs on the emulator.  No 224-input
  firmware image ships.
* ``teacher (LiteRT)``: the float teacher of retrieval-eval, Coral MobileNet-V1 1.0/224
  embedding extractor to ``Conv2d_13_pointwise/Relu6``, LiteRT, one thread.  Skipped
  when the model is not in $EDGE_SDK_DATA.

Per extractor: crops, cut ms (crop + bilinear resize of every crop, host), features ms
(the extractor on all crops), ms per crop (features / crops), total ms (the whole
``rnip`` call: cut + features + pooling), cpu ms (calling thread's CPU time of the total).
Every figure is the median over ``--runs`` runs after one warm-up run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Optional

import numpy as np

from edge_sdk.retrieval import RNIPConfig, rnip
from edge_sdk.retrieval.crops import check_frame, crop_grid, cut

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("EDGE_SDK_DATA", REPO.parent / "shared" / "data"))
TEACHER = "models/coral/mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"
TEACHER_TENSOR = "Conv2d_13_pointwise/Relu6"
SIZE = (1080, 1920)
DESCRIPTOR = "descriptor_lightspeeur_2bit.edgefw"


def _frame(path: Optional[str]) -> tuple[np.ndarray, str]:
    from PIL import Image

    for p in [path, DATA / "hires" / "coral_cat_1080p.jpg"]:
        if p and Path(p).is_file():
            with Image.open(p) as im:
                im = im.convert("RGB")
                if im.size != SIZE[::-1]:
                    im = im.resize(SIZE[::-1], Image.BILINEAR)
                return np.asarray(im, np.uint8), Path(p).name
    y, x = np.mgrid[0 : SIZE[0], 0 : SIZE[1]].astype(np.float64)
    scene = np.stack(
        [128 + 90 * np.sin(x / 53) * np.cos(y / 71), 128 + 80 * np.cos((x + y) / 91), 60 + x / 12], -1
    )
    return np.clip(scene, 0, 255).astype(np.uint8), "synthetic 1920x1080"


def _extractors(quick: bool) -> list[tuple[str, object, str]]:
    from edge_sdk.retrieval.extractors import ChipExtractor, TFLiteExtractor

    out = []
    chip = ChipExtractor(REPO / "firmware_images" / "sample_lightspeeur.edgefw")
    out.append(("chip sample_lightspeeur", chip, type(chip.device.backend).__name__))
    descriptor = REPO / "firmware_images" / DESCRIPTOR
    if descriptor.is_file():
        net = ChipExtractor(descriptor)
        out.append(("chip descriptor 2-bit", net, type(net.device.backend).__name__))
    if not quick:
        from benchmarks.bench_runtime import vgg224
        from edge_sdk.firmware import write_firmware

        vgg = ChipExtractor(write_firmware(vgg224()))
        out.append(("chip vgg224 (random)", vgg, type(vgg.device.backend).__name__))
    teacher = DATA / TEACHER
    if teacher.is_file():
        out.append(
            ("teacher (LiteRT)", TFLiteExtractor(str(teacher), tensor=TEACHER_TENSOR), "LiteRT 1 thread")
        )
    else:
        print(f"(float teacher not found at {teacher}: skipped)")
    return out


def bench_one(frame: np.ndarray, extractor, config: RNIPConfig, runs: int) -> dict:
    h_in, w_in, c_in = extractor.input_shape
    img = check_frame(frame, c_in)
    grid = crop_grid(img.shape[0], img.shape[1], config.scales, config.overlap)
    cuts, feats, totals, cpus = [], [], [], []
    for i in range(runs + 1):  # run 0 warms up
        t0 = time.perf_counter()
        crops = [cut(img, c, h_in, w_in) for c in grid]
        t1 = time.perf_counter()
        for j in range(0, len(crops), config.batch):
            extractor.features(np.stack(crops[j : j + config.batch]))
        t2 = time.perf_counter()
        c0 = time.thread_time()
        desc = rnip(frame, extractor, config)
        t3, c1 = time.perf_counter(), time.thread_time()
        if i:
            cuts.append(t1 - t0)
            feats.append(t2 - t1)
            totals.append(t3 - t2)
            cpus.append(c1 - c0)
    ms = statistics.median(feats) * 1e3
    return {
        "crops": len(grid),
        "input": f"{h_in}x{w_in}x{c_in}",
        "dim": int(desc.shape[0]),
        "runs": runs,
        "cut_ms": statistics.median(cuts) * 1e3,
        "features_ms": ms,
        "ms_per_crop": ms / len(grid),
        "total_ms": statistics.median(totals) * 1e3,
        "cpu_ms": statistics.median(cpus) * 1e3,
    }


def main(argv: Optional[list] = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_retrieval", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="2 runs, no vgg224 row")
    ap.add_argument("--runs", type=int, help="timed runs per extractor (default 5, --quick 2)")
    ap.add_argument("--image", help="frame to describe (resized to 1920x1080)")
    ap.add_argument("--json", help="write the results as JSON here")
    args = ap.parse_args(argv)
    runs = args.runs or (2 if args.quick else 5)
    frame, source = _frame(args.image)
    config = RNIPConfig()
    rows = []
    print(
        f"frame: {source} {frame.shape[1]}x{frame.shape[0]}; RNIP scales {config.scales}, overlap {config.overlap}"
    )
    header = (
        f"{'extractor':24s} {'backend':18s} {'input':10s} {'crops':>5s} {'cut ms':>7s} {'feat ms':>8s} "
        f"{'ms/crop':>8s} {'total ms':>9s} {'cpu ms':>8s}"
    )
    print(header)
    print("-" * len(header))
    for name, extractor, backend in _extractors(args.quick):
        r = {"extractor": name, "backend": backend, **bench_one(frame, extractor, config, runs)}
        rows.append(r)
        print(
            f"{name:24s} {backend:18s} {r['input']:10s} {r['crops']:5d} {r['cut_ms']:7.1f} {r['features_ms']:8.1f} "
            f"{r['ms_per_crop']:8.2f} {r['total_ms']:9.1f} {r['cpu_ms']:8.1f}",
            flush=True,
        )
    print(
        f"median of {runs} runs after a warm-up; cut: crop + resize of every crop (host); feat: the extractor on\n"
        "all crops (batches of 16); total: the whole rnip() call (cut + features + pooling); cpu: its CPU time."
    )
    out = {"frame": source, "runs": runs, "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
