"""Rate-distortion evaluation of codecs on a folder of images (``edge-sdk codec-eval``).

For every method and every target bit rate, each image is coded at the highest
quality whose *actual* stream (every byte of it: headers, lengths, CRCs) stays at or
under the target bpp, found by binary search over the family's qualities (rate is
assumed to grow with quality); if even the lowest quality overshoots, the lowest is
used and its real bpp is reported.  A plain :class:`~edge_sdk.codec.pipeline.Codec`
(fixed rate, e.g. a learned codec) is simply run once.

Per image and as means over images: bpp, PSNR-RGB (dB), MS-SSIM (and in dB),
encode / decode wall time (one timed run of the chosen setting, after the search) and
the patch-seam statistics (:func:`edge_sdk.codec.metrics.seam_stats`).  The JSON
has one CompressAI-style entry per method: ``{"name", "description", "results":
{"bpp": [...], "psnr-rgb": [...], "ms-ssim": [...], ...}}`` with one list element
per target rate (means over images), plus ``per_image`` rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import DatasetError
from . import metrics

IMAGE_SUFFIXES = (".png", ".bmp", ".ppm", ".tif", ".tiff", ".jpg", ".jpeg", ".webp")
PSNR_CAP_DB = 100.0  # identical images: JSON has no infinity
RESULT_KEYS = (
    "bpp",
    "psnr-rgb",
    "ms-ssim",
    "ms-ssim-db",
    "encoding_time",
    "decoding_time",
    "seam_ratio",
    "seam_ratio_midline",
)


@dataclass
class Method:
    """A named codec or codec family to evaluate."""

    name: str
    codec: object  # pipeline.Codec or pipeline.CodecFamily
    description: str = ""


def load_images(folder, limit: Optional[int] = None) -> list:
    """[(name, uint8 RGB array)] of the images in ``folder``, sorted by name (DatasetError if none)."""
    from PIL import Image

    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"image folder not found: {root}")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {root}")
    out = []
    for path in files[:limit]:
        try:
            with Image.open(path) as img:
                out.append((path.name, np.asarray(img.convert("RGB"))))
        except OSError as exc:
            raise DatasetError(f"cannot read image {path}: {exc}") from None
    return out


def bits_per_pixel(data: bytes, frame: np.ndarray) -> float:
    return len(data) * 8.0 / (frame.shape[0] * frame.shape[1])


def match_rate(family, frame: np.ndarray, target_bpp: float) -> tuple:
    """(codec, stream) of the highest quality of ``family`` whose bpp <= target (module docstring)."""
    qualities = list(family.qualities)
    cache: dict = {}

    def trial(i: int) -> tuple:
        if i not in cache:
            codec = family.at(qualities[i])
            cache[i] = (codec, codec.encode(frame))
        return cache[i]

    lo, hi, best = 0, len(qualities) - 1, 0
    if bits_per_pixel(trial(0)[1], frame) > target_bpp:
        return trial(0)
    while lo <= hi:  # invariant: quality index ``best`` fits the target
        mid = (lo + hi) // 2
        if bits_per_pixel(trial(mid)[1], frame) <= target_bpp:
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    return trial(best)


def evaluate_image(method: Method, frame: np.ndarray, target_bpp: Optional[float], patch: int) -> dict:
    """Code one image with one method at one target: the per-image result row."""
    codec = method.codec
    if hasattr(codec, "qualities"):
        codec, _ = match_rate(codec, frame, target_bpp)
    t0 = time.perf_counter()
    data = codec.encode(frame)
    t1 = time.perf_counter()
    decoded = codec.decode(data)
    t2 = time.perf_counter()
    seam = metrics.seam_stats(frame, decoded, patch)
    value = metrics.ms_ssim(frame, decoded)
    return {
        "setting": codec.name,
        "bytes": len(data),
        "bpp": bits_per_pixel(data, frame),
        "psnr-rgb": metrics.psnr(frame, decoded, max_db=PSNR_CAP_DB),
        "ms-ssim": value,
        "ms-ssim-db": metrics.ms_ssim_db(value),
        "encoding_time": t1 - t0,
        "decoding_time": t2 - t1,
        "seam_ratio": seam["ratio"],
        "seam_ratio_midline": seam["ratio_midline"],
        "seam_border_mse": seam["border_mse"],
        "seam_interior_mse": seam["interior_mse"],
    }


def run_eval(images: list, methods: list, targets=(0.25,), patch: int = 32, progress=None) -> dict:
    """Evaluate every method at every target on every image; see the module docstring for the layout."""
    entries = []
    for method in methods:
        results = {key: [] for key in RESULT_KEYS}
        per_image = []
        for target in targets:
            rows = []
            for name, frame in images:
                row = evaluate_image(method, frame, target, patch)
                rows.append({"image": name, "target_bpp": target, **row})
                if progress:
                    progress(method.name, name, rows[-1])
            for key in RESULT_KEYS:
                results[key].append(float(np.mean([r[key] for r in rows])))
            per_image.extend(rows)
        entries.append(
            {
                "name": method.name,
                "description": method.description,
                "results": results,
                "per_image": per_image,
            }
        )
    return {
        "dataset": {"images": len(images)},
        "targets_bpp": list(targets),
        "patch": patch,
        "methods": entries,
    }


def format_table(result: dict) -> str:
    """The mean figures, one line per method and target."""
    head = (
        f"{'method':28s} {'target':>6s} {'bpp':>6s} {'PSNR':>6s} {'MS-SSIM':>8s} {'dB':>6s} "
        f"{'enc ms':>7s} {'dec ms':>7s} {'seam':>5s} {'seam/mid':>8s}"
    )
    lines = [head, "-" * len(head)]
    for entry in result["methods"]:
        r = entry["results"]
        for i, target in enumerate(result["targets_bpp"]):
            lines.append(
                f"{entry['name']:28s} {target:6.3f} {r['bpp'][i]:6.3f} {r['psnr-rgb'][i]:6.2f} "
                f"{r['ms-ssim'][i]:8.4f} {r['ms-ssim-db'][i]:6.2f} {1000 * r['encoding_time'][i]:7.1f} "
                f"{1000 * r['decoding_time'][i]:7.1f} {r['seam_ratio'][i]:5.2f} {r['seam_ratio_midline'][i]:8.2f}"
            )
    return "\n".join(lines)
