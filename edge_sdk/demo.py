"""`make demo`: load a shipped firmware image, run it on the bundled picture, print what happened.

    python -m edge_sdk.demo [--firmware PATH] [--image PATH] [--backend auto|emulator|reference]

It runs the image on the chosen backend and on the numpy reference, checks the two
agree bit for bit, and prints the result (top classes when the image carries labels),
the timing and the per-layer plan.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLES = Path(__file__).with_name("samples")
# Preferred demo firmware, best first: trained models, then the smoke-test sample.
DEFAULT_FIRMWARE = (
    "resnet8_cifar10_lightspeeur_5bit.edgefw",
    "sample_lightspeeur.edgefw",
)


def find_firmware() -> Path:
    for name in DEFAULT_FIRMWARE:
        for folder in (REPO / "firmware_images", Path.cwd() / "firmware_images"):
            if (folder / name).is_file():
                return folder / name
    raise FileNotFoundError(
        f"no demo firmware found in firmware_images/ (looked for {', '.join(DEFAULT_FIRMWARE)})"
    )


def load_frame(path: str | Path, shape: Sequence[int]) -> np.ndarray:
    """An image file as uint8 HWC, bilinearly resized to (H, W) and converted to C channels."""
    from PIL import Image

    h, w, c = shape
    try:
        with Image.open(path) as im:
            im = im.convert("L" if c == 1 else "RGB").resize((w, h), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
    except OSError as exc:
        raise FileNotFoundError(f"cannot read image {path}: {exc}") from exc
    return arr.reshape(h, w, c)


def summarize(image: Any, result: Any, top: int = 3) -> str:
    out = np.asarray(result.output).reshape(-1)
    meta = getattr(image, "metadata", None) or {}
    labels = meta.get("labels") or (meta.get("output") or {}).get("labels")
    if labels and len(labels) == out.size:
        order = np.argsort(-out)[:top]
        return ", ".join(f"{labels[i]} {out[i]:.3f}" for i in order)
    return (
        f"output {out.shape[0]} values, min {out.min():.4g}, max {out.max():.4g}, argmax {int(out.argmax())}"
    )


def _timed(dev: Any, frame: np.ndarray, repeats: int) -> tuple[Any, float]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = dev.run(frame)
        times.append(time.perf_counter() - t0)
    return result, float(np.median(times))


def main(argv: Optional[Sequence[str]] = None) -> int:
    from .firmware import load_firmware
    from .runtime import Device

    parser = argparse.ArgumentParser(prog="python -m edge_sdk.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--firmware", type=Path, default=None, help="firmware image (default: a shipped one)")
    parser.add_argument("--image", type=Path, default=SAMPLES / "scene.png", help="picture to run")
    parser.add_argument("--backend", default="auto", choices=["auto", "emulator", "reference"])
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="work folder of the pipeline part")
    parser.add_argument("--chip-only", action="store_true", help="skip the server / camera pipeline part")
    args = parser.parse_args(argv)

    path = args.firmware or find_firmware()
    image = load_firmware(path)
    print(
        f"firmware  {path}  ({image.size} bytes, profile {image.profile.id}, sha256 {image.sha256[:16]}...)"
    )
    dev = Device(args.backend).load(image)
    frame = load_frame(args.image, dev.model_input_shape)
    print(f"input     {args.image} -> {frame.shape} uint8")
    result, t_dev = _timed(dev, frame, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = Device("reference").load(image)
    expected, t_ref = _timed(ref, frame, 1)
    exact = np.array_equal(result.codes, expected.codes) and np.array_equal(result.output, expected.output)
    print(f"result    {summarize(image, result)}")
    print(
        f"backend   {dev.backend.name}: {t_dev * 1e3:.2f} ms/frame (median of 5); reference {t_ref * 1e3:.1f} ms; "
        f"bit-exact vs reference: {'yes' if exact else 'NO'}"
    )
    for layer in dev.describe()["layers"]:
        where = f"{layer.get('tiles', 0)} tile(s)" if layer["target"] == "chip" else "host"
        print(
            f"  {layer['index']:2d} {layer['name']:14s} {layer['op']:8s} {str(tuple(layer['out_shape'])):16s} "
            f"w{layer['weight_bits']} a{layer['act_bits']:<2d} {where}"
        )
    if not exact:
        return 1
    return 0 if args.chip_only else _pipeline(path, args.out)


def _pipeline(firmware: Path, out: Path) -> int:
    from .demo_pipeline import run_pipeline

    print(f"\npipeline  server + camera app on the bundled pictures ({SAMPLES}) -> {out.resolve()}")
    report = run_pipeline(firmware, out)
    for mode in ("compress", "retrieve"):
        r = report[mode]
        print(
            f"  {mode:9s} {r['frames']} frames, {r['bytes_per_frame']} bytes/frame, {r['fps']:.1f} fps, "
            f"latency p50 {r['latency_ms_p50']:.1f} ms, {r['acked']} messages acknowledged, {r['pending']} pending"
        )
    print(
        f"  decoded frames ({len(report['decoded_frames'])}): {out.resolve() / 'server'}/"
        f"{report['decoded_frames'][0] if report['decoded_frames'] else '-'} ..."
    )
    print(
        f"  search: top-{len(report['search_results'])} for stored frame {report['query_frame']}: "
        + ", ".join(f"frame {h['frame']} ({h['score']:.3f})" for h in report["search_results"])
    )
    print(f"  report: {out.resolve() / 'report.json'}; server stopped (exit {report['server_exit']})")
    return 0 if report["server_exit"] == 0 and not report["compress"]["pending"] else 1


if __name__ == "__main__":
    sys.exit(main())
